//! The HTTP surface: `/health`, `/metrics`, the signed `/v1/sync` exchange
//! and USSD session reports, and the supervisor's dashboard (`dashboard`).

use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::{Device, Registry, RegistryError, Role, SyncSeen};
use crate::supervision::{check_report, SupervisionDb, MAX_REPORTS};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use guichet_core::sync::protocol::{
    SyncRequest, UssdSessionReports, UssdSessionsStored, CONTENT_TYPE, SYNC_PATH,
    USSD_SESSIONS_PATH,
};
use guichet_core::sync::signing::{self, SignedHeaders, HEADER_SERVER_TIME};
use guichet_core::{wire, BatchError, Error as CoreError, HistoryReader, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::timeout::TimeoutLayer;

pub struct AppState {
    pub store: Mutex<Store>,
    pub registry: Mutex<Registry>,
    pub supervision: Mutex<SupervisionDb>,
    /// Reads case histories for the figures beside the store's writes.
    pub histories: Mutex<HistoryReader>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    sync_ops: Family<DirectionLabels, Counter>,
    cases: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    /// `received` from devices, or `sent` to them.
    direction: &'static str,
}

impl AppState {
    /// Opens the server's store and device registry under its data directory.
    pub fn open(config: Config) -> Result<AppState, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
        let registry =
            Registry::open(&config.data_dir.join("registry.db")).map_err(|e| e.to_string())?;
        let store_path = config.data_dir.join("server.db");
        let store =
            Store::open(&store_path, crate::registry::SERVER_REPLICA).map_err(|e| e.to_string())?;
        let histories = HistoryReader::open(&store_path).map_err(|e| e.to_string())?;
        let supervision_path = config.data_dir.join("supervision.db");
        let supervision = SupervisionDb::open(&supervision_path)
            .map_err(|e| format!("{}: {e}", supervision_path.display()))?;
        let sync_ops = Family::<DirectionLabels, Counter>::default();
        let cases = Gauge::default();
        let metrics = Metrics::new(|registry| {
            registry.register(
                "sync_operations",
                "Case operations received from and sent to devices",
                sync_ops.clone(),
            );
            registry.register("cases", "Cases held by the server", cases.clone());
        });
        Ok(AppState {
            store: Mutex::new(store),
            registry: Mutex::new(registry),
            supervision: Mutex::new(supervision),
            histories: Mutex::new(histories),
            config,
            metrics: Arc::new(metrics),
            sync_ops,
            cases,
        })
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route(SYNC_PATH, post(sync))
        .route(USSD_SESSIONS_PATH, post(ussd_sessions))
        .merge(crate::dashboard::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(stamp_server_time))
        .with_state(state)
}

/// Every answer carries the server's clock, so that a device whose clock
/// is too far off to sign acceptably can correct it and try again.
async fn stamp_server_time(mut response: Response) -> Response {
    if let Ok(value) = now_ms().to_string().parse() {
        response.headers_mut().insert(HEADER_SERVER_TIME, value);
    }
    response
}

async fn health(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let cases = blocking(move || lock(&state.store)?.count_cases().map_err(ApiError::from)).await?;
    Ok(Json(serde_json::json!({ "status": "ok", "cases": cases })).into_response())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let cases = blocking({
        let state = state.clone();
        move || lock(&state.store)?.count_cases().map_err(ApiError::from)
    })
    .await?;
    state.cases.set(cases as i64);
    Ok(crate::metrics::answer(state.metrics.render()))
}

async fn sync(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let answer = blocking(move || serve(&state, &method, &uri, &headers, &body)).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], answer).into_response())
}

fn serve(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let started = Instant::now();
    let device = authenticate(state, method, uri, headers, body)?;
    let served = serve_device(state, &device, body, started);
    // What the device's sync health shows supervisors; failing to record
    // it must not fail the sync it describes.
    let outcome = served
        .as_ref()
        .map(|(_, seen)| seen)
        .map_err(ApiError::message);
    let recorded = lock(&state.registry).and_then(|r| {
        r.record_sync(device.replica, now_ms(), outcome)
            .map_err(ApiError::from)
    });
    if recorded.is_err() {
        tracing::warn!(
            device = device.replica,
            "recording the device's sync health failed"
        );
    }
    served.map(|(answer, _)| answer)
}

fn serve_device(
    state: &AppState,
    device: &Device,
    body: &[u8],
    started: Instant,
) -> Result<(Vec<u8>, SyncSeen), ApiError> {
    let request = SyncRequest::decode(body).map_err(CoreError::from)?;
    let uploaded = request.ops.len();
    let (response, times) = lock(&state.store)?.serve_sync(
        device.replica,
        &device.scope(),
        &request,
        state.config.max_response_bytes,
    )?;
    let encoded = response.encode();
    let count = |direction| state.sync_ops.get_or_create(&DirectionLabels { direction });
    count("received").inc_by(uploaded as u64);
    count("sent").inc_by(response.ops.len() as u64);
    let quarantined = response.quarantine.as_ref().map_or(0, |q| q.held);
    tracing::info!(
        device = device.replica,
        ops_in = uploaded,
        ops_out = response.ops.len(),
        removed = response.removed.len(),
        quarantined,
        bytes_in = body.len(),
        bytes_out = encoded.len(),
        more = response.more,
        merge_us = times.merging.as_micros() as u64,
        answer_us = times.answering.as_micros() as u64,
        ms = started.elapsed().as_millis() as u64,
        "sync"
    );
    let report = request.device.as_ref();
    let seen = SyncSeen {
        pending_ops: report.map_or(0, |d| d.counter.saturating_sub(response.acked)),
        quarantined_ops: quarantined,
        app_version: report.map(|d| d.app_version.clone()),
        device_error: report.and_then(|d| d.last_error.clone()),
    };
    Ok((encoded, seen))
}

/// The enrolled, unrevoked device that signed this request, once.
fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, ApiError> {
    let now = now_ms();
    let signed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let registry = lock(&state.registry)?;
    let device = registry
        .device(signed.device)?
        .ok_or_else(|| ApiError::Unauthorized("unknown device".into()))?;
    signing::verify(
        &device.public_key,
        &signed,
        method.as_str(),
        uri.path(),
        body,
        now,
    )
    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if device.revoked {
        return Err(ApiError::Forbidden("this device has been revoked".into()));
    }
    if !registry.first_use_of_nonce(&signed.nonce, now)? {
        return Err(ApiError::Unauthorized("replayed request".into()));
    }
    Ok(device)
}

async fn ussd_sessions(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let answer = blocking(move || {
        let device = authenticate(&state, &method, &uri, &headers, &body)?;
        if device.role != Role::Intake {
            return Err(ApiError::Forbidden(
                "only the gateway reports USSD sessions".into(),
            ));
        }
        let reports: UssdSessionReports = wire::decode_message(&body).map_err(CoreError::from)?;
        if reports.sessions.len() > MAX_REPORTS {
            return Err(ApiError::BadRequest("too many reports at once".into()));
        }
        for report in &reports.sessions {
            check_report(report).map_err(ApiError::BadRequest)?;
        }
        let up_to = lock(&state.supervision)?
            .store_reports(device.replica, &reports.sessions)
            .map_err(|e| {
                tracing::error!(error = %e, "storing USSD session reports failed");
                ApiError::Internal
            })?;
        tracing::info!(
            device = device.replica,
            sessions = reports.sessions.len(),
            "USSD sessions reported"
        );
        Ok(wire::encode_message(&UssdSessionsStored::new(up_to)))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], answer).into_response())
}

/// Runs `work` off the async workers: it locks databases and may wait on
/// the disk.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::Internal)?
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ApiError> {
    m.lock().map_err(|_| ApiError::Internal)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Every failure, as the client sees it. Messages never carry personal data.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    Conflict(String),
    Internal,
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Batch(BatchError::OutOfScope { .. }) => ApiError::Forbidden(e.to_string()),
            CoreError::Batch(
                BatchError::Gap { .. }
                | BatchError::MissingDependency { .. }
                | BatchError::ConflictingDuplicate(_),
            ) => ApiError::Conflict(e.to_string()),
            CoreError::Batch(_)
            | CoreError::InvalidInput(_)
            | CoreError::NotFound(_)
            | CoreError::InvalidTransition { .. } => ApiError::BadRequest(e.to_string()),
            other => {
                tracing::error!(error = %other, "sync failed on the server");
                ApiError::Internal
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        tracing::error!(error = %e, "device registry failed");
        ApiError::Internal
    }
}

impl ApiError {
    /// What the client is told, as text.
    fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::Conflict(m) => m,
            ApiError::Internal => "internal error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
        };
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::info!(status = status.as_u16(), %message, "request refused");
        }
        (status, message).into_response()
    }
}
