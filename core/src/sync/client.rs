//! The sync client: runs the exchange with the sync server to completion,
//! with retries and backoff, reports progress, and records the outcome so
//! that a failed sync always says so (`Store::sync_status`).

use super::protocol::{SyncResponse, CONTENT_TYPE, SYNC_PATH};
use super::signing::{DeviceKey, HEADER_SERVER_TIME, MAX_CLOCK_SKEW_MS};
use crate::ids::CaseId;
use crate::store::{Store, SyncOutcome};
use crate::wire;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Own operations sent per request.
    pub upload_batch: usize,
    /// Operations asked for per response.
    pub download_batch: u32,
    /// Attempts per exchange before giving up (network errors, 5xx).
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// One request, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// The application and its version, shown to supervisors with the
    /// device's sync health (e.g. `guichet-agent/2.3.1`).
    pub app_version: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            upload_batch: 1_000,
            download_batch: 2_000,
            max_attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            app_version: concat!("guichet-core/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Where a sync stands; reported after every exchange.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncProgress {
    pub ops_sent: u64,
    pub ops_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub round_trips: u32,
    /// Cases that left this device's scope during the sync.
    pub removed: Vec<CaseId>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the server refused this device: {0}")]
    Unauthorized(String),
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("network: {0}")]
    Network(String),
    #[error("the server failed ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("the server's answer is unreadable: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

pub struct SyncClient {
    http: reqwest::Client,
    base_url: String,
    key: DeviceKey,
    options: ClientOptions,
}

impl SyncClient {
    pub fn new(base_url: &str, key: DeviceKey, options: ClientOptions) -> Result<Self, SyncError> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| SyncError::Network(e.to_string()))?;
        Ok(SyncClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            options,
        })
    }

    /// Syncs until the server holds every local operation and the device
    /// holds everything of its scope. The outcome is recorded either way.
    pub async fn sync(
        &self,
        store: &mut Store,
        progress: impl FnMut(&SyncProgress),
    ) -> Result<SyncProgress, SyncError> {
        self.sync_shared(&std::sync::Mutex::new(store), progress)
            .await
    }

    /// The same, for a store others use meanwhile: it is locked only to
    /// prepare a request and to apply an answer, never while waiting on the
    /// network, so a slow or unreachable server never blocks local work.
    pub async fn sync_shared<S: std::borrow::BorrowMut<Store>>(
        &self,
        store: &std::sync::Mutex<S>,
        mut progress: impl FnMut(&SyncProgress),
    ) -> Result<SyncProgress, SyncError> {
        let mut report = SyncProgress::default();
        let result = self.run(store, &mut report, &mut progress).await;
        with(store, |s| {
            let outcome = SyncOutcome {
                result: result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                acked: s.acked(&self.base_url)?,
                ops_sent: report.ops_sent,
                ops_received: report.ops_received,
            };
            s.record_sync(&self.base_url, &outcome)
        })?;
        result.map(|()| report)
    }

    async fn run<S: std::borrow::BorrowMut<Store>>(
        &self,
        store: &std::sync::Mutex<S>,
        report: &mut SyncProgress,
        progress: &mut impl FnMut(&SyncProgress),
    ) -> Result<(), SyncError> {
        let peer = self.base_url.as_str();
        let mut restarted = false;
        loop {
            let (request, acked_before) = with(store, |s| {
                let request = s.sync_request(
                    peer,
                    self.options.upload_batch,
                    self.options.download_batch,
                    &self.options.app_version,
                )?;
                Ok::<_, crate::Error>((request, s.acked(peer)?))
            })?;
            let body = request.encode();
            let answer = self.exchange(store, SYNC_PATH, &body).await?;
            let response =
                SyncResponse::decode(&answer).map_err(|e| SyncError::BadAnswer(e.to_string()))?;
            let applied = with(store, |s| s.apply_sync_response(peer, &response));
            let outcome = match applied {
                Err(crate::Error::ServerChanged) if !restarted => {
                    restarted = true;
                    tracing::info!("the sync server changed; starting over with it");
                    continue;
                }
                other => other?,
            };
            report.ops_sent += response.acked.saturating_sub(acked_before);
            report.ops_received += outcome.applied as u64;
            report.bytes_sent += body.len() as u64;
            report.bytes_received += answer.len() as u64;
            report.round_trips += 1;
            report.removed.extend(&response.removed);
            progress(report);
            let more_to_send = with(store, |s| s.pending_ops(peer, 1))?.len() == 1;
            if !response.more && !more_to_send {
                return Ok(());
            }
            if more_to_send && response.acked == acked_before && !request.ops.is_empty() {
                return Err(SyncError::BadAnswer(
                    "the server did not take our operations".into(),
                ));
            }
        }
    }

    /// Sends `message` to another signed endpoint of the server (such as
    /// the gateway's USSD session reports), with the same signature,
    /// retries and clock correction as a sync; returns the answer's body.
    pub async fn send_to<S: std::borrow::BorrowMut<Store>>(
        &self,
        store: &std::sync::Mutex<S>,
        path: &str,
        message: &impl serde::Serialize,
    ) -> Result<Vec<u8>, SyncError> {
        self.exchange(store, path, &wire::encode_message(message))
            .await
    }

    /// One signed request, retried with backoff while the failure may pass.
    async fn exchange<S: std::borrow::BorrowMut<Store>>(
        &self,
        store: &std::sync::Mutex<S>,
        path: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, SyncError> {
        let url = format!("{}{path}", self.base_url);
        let mut backoff = self.options.first_backoff;
        let mut clock_fixed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A fresh timestamp and nonce for every attempt: a retry is not a replay.
            let (replica, now) = with(store, |s| (s.replica(), s.now_ms()));
            let signed = self.key.sign(replica, "POST", path, body, now);
            let mut request = self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(body.to_vec());
            for (name, value) in signed.pairs() {
                request = request.header(name, value);
            }
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let server_time = response
                        .headers()
                        .get(HEADER_SERVER_TIME)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes.to_vec()),
                        Ok(bytes) => {
                            let message = String::from_utf8_lossy(&bytes).into_owned();
                            match status.as_u16() {
                                // Our clock is too far off to sign acceptably:
                                // take the server's time and try once more.
                                401 if !clock_fixed
                                    && server_time
                                        .is_some_and(|t| t.abs_diff(now) > MAX_CLOCK_SKEW_MS) =>
                                {
                                    let t = server_time.unwrap_or_default();
                                    with(store, |s| s.adopt_server_time(t))?;
                                    clock_fixed = true;
                                    continue;
                                }
                                401 => return Err(SyncError::Unauthorized(message)),
                                408 | 429 | 500..=599 => SyncError::Server {
                                    status: status.as_u16(),
                                    message,
                                },
                                code => {
                                    return Err(SyncError::Refused {
                                        status: code,
                                        message,
                                    })
                                }
                            }
                        }
                        Err(e) => SyncError::Network(e.to_string()),
                    }
                }
                Err(e) => SyncError::Network(e.to_string()),
            };
            if attempt >= self.options.max_attempts {
                return Err(failure);
            }
            tracing::debug!(attempt, error = %failure, "sync exchange failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }
}

/// Runs `f` on the locked store. A panic elsewhere while it was locked
/// cannot have left it half-written (every write is a transaction), so a
/// poisoned lock is taken over rather than given up.
fn with<S: std::borrow::BorrowMut<Store>, R>(
    store: &std::sync::Mutex<S>,
    f: impl FnOnce(&mut Store) -> R,
) -> R {
    let mut guard = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.borrow_mut())
}
