//! The HTTP surface: every provider's callbacks, `/health` and `/metrics`.

use crate::gateway::{locked, Gateway};
use crate::providers::{self, AppState};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use guichet_sync_server::metrics::{answer, track, Metrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// Providers answer USSD within seconds: a hop still running after this is over.
const HOP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 64 * 1024;

pub fn router(gw: Arc<Gateway>) -> Router {
    let metrics = Arc::new(GatewayMetrics::new());
    let http = metrics.http.clone();
    providers::routes(&gw.config)
        .route("/health", get(health))
        .route(
            "/metrics",
            get(move |State(gw): State<AppState>| render_metrics(gw, metrics.clone())),
        )
        .route_layer(axum::middleware::from_fn_with_state(http, track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HOP_TIMEOUT,
        ))
        .with_state(gw)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The gateway's metrics: HTTP requests (every provider callback) and
/// what its state holds, read when scraped.
struct GatewayMetrics {
    http: Arc<Metrics>,
    outbox: Family<StatusLabels, Gauge>,
    ussd_sessions: Family<OutcomeLabels, Gauge>,
    sync_pending: Gauge,
    sync_last_success: Gauge,
    cases: Gauge,
}

impl GatewayMetrics {
    fn new() -> GatewayMetrics {
        let outbox = Family::<StatusLabels, Gauge>::default();
        let ussd_sessions = Family::<OutcomeLabels, Gauge>::default();
        let (sync_pending, sync_last_success, cases) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let http = Metrics::new(|r| {
            r.register(
                "outbox_messages",
                "SMS in the outbox by status: queued is the depth, failed were given up",
                outbox.clone(),
            );
            r.register(
                "ussd_sessions_ended",
                "USSD sessions ended since the gateway's data began, by outcome",
                ussd_sessions.clone(),
            );
            r.register(
                "sync_pending_operations",
                "Operations of the gateway the sync server has not confirmed",
                sync_pending.clone(),
            );
            r.register(
                "sync_last_success_timestamp_seconds",
                "When the gateway last synced successfully (0: never)",
                sync_last_success.clone(),
            );
            r.register("cases", "Cases in the gateway's replica", cases.clone());
        });
        GatewayMetrics {
            http: Arc::new(http),
            outbox,
            ussd_sessions,
            sync_pending,
            sync_last_success,
            cases,
        }
    }
}

async fn render_metrics(gw: AppState, metrics: Arc<GatewayMetrics>) -> Response {
    let read = tokio::task::spawn_blocking(move || {
        let (outbox, sessions) = {
            let db = locked(&gw.db);
            (db.outbox_counts(), db.ussd_outcomes())
        };
        let store = locked(&gw.store);
        let sync = gw
            .config
            .sync
            .as_ref()
            .map(|s| store.sync_status(s.server_url.trim_end_matches('/')))
            .transpose();
        (outbox, sessions, sync, store.count_cases())
    })
    .await;
    let Ok((Ok(outbox), Ok(sessions), Ok(sync), Ok(cases))) = read else {
        tracing::error!("reading the gateway's state for metrics failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // A status no message has any more must not keep its last count.
    metrics.outbox.clear();
    for (status, n) in outbox {
        metrics
            .outbox
            .get_or_create(&StatusLabels { status })
            .set(n as i64);
    }
    for (outcome, n) in sessions {
        metrics
            .ussd_sessions
            .get_or_create(&OutcomeLabels { outcome })
            .set(n as i64);
    }
    if let Some(sync) = sync {
        metrics.sync_pending.set(sync.pending_ops as i64);
        metrics
            .sync_last_success
            .set(sync.last_success_ms.unwrap_or(0) as i64 / 1000);
    }
    metrics.cases.set(cases as i64);
    answer(metrics.http.render())
}

async fn health(State(gw): State<AppState>) -> Response {
    let counts = tokio::task::spawn_blocking(move || {
        let cases = locked(&gw.store).count_cases().unwrap_or(0);
        let outbox = locked(&gw.db).outbox_counts().unwrap_or_default();
        (cases, outbox)
    })
    .await;
    match counts {
        Ok((cases, outbox)) => {
            let outbox: serde_json::Map<String, serde_json::Value> =
                outbox.into_iter().map(|(k, v)| (k, v.into())).collect();
            Json(serde_json::json!({"status": "ok", "cases": cases, "outbox": outbox}))
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
