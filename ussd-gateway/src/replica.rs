//! The gateway as a replica: its device key, its enrolment, and the loop
//! that syncs with the sync server as an intake device. Citizens are served
//! from the local replica whether or not the server answers.

use crate::gateway::{locked, Gateway};
use guichet_core::sync::client::{ClientOptions, SyncClient};
use guichet_core::sync::protocol::{UssdSessionReports, UssdSessionsStored, USSD_SESSIONS_PATH};
use guichet_core::sync::signing::DeviceKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const KEY_FILE: &str = "device.key";
pub const ENROLMENT_FILE: &str = "enrolment.json";

/// What `guichet-sync-server enrol` printed for this gateway.
#[derive(Debug, Deserialize)]
pub struct Enrolment {
    pub replica: u32,
}

/// The gateway's private key, created on first use (readable by its owner only).
pub fn load_or_create_key(data_dir: &Path) -> Result<DeviceKey, String> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return DeviceKey::from_pkcs8(&bytes).map_err(|e| format!("{}: {e}", path.display()));
    }
    let key = DeviceKey::generate().map_err(|e| e.to_string())?;
    write_private(&path, key.pkcs8())?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn enrolment(data_dir: &Path) -> Result<Option<Enrolment>, String> {
    let path: PathBuf = data_dir.join(ENROLMENT_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{}: {e} (expected what `guichet-sync-server enrol` printed)",
            path.display()
        )
    })
}

/// Starts the sync server inside this process (see
/// `SyncConfig::embedded_server_data_dir`) and enrols this gateway with it
/// as the intake device the first time.
pub async fn start_embedded_server(
    server_url: &str,
    server_dir: &Path,
    utc_offset_minutes: i32,
    gateway_dir: &Path,
    key: &DeviceKey,
) -> Result<(), String> {
    use guichet_sync_server::app::{router, AppState};
    use guichet_sync_server::config::Config;
    use guichet_sync_server::registry::Role;
    let address = server_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse::<std::net::SocketAddr>()
        .map_err(|_| {
            format!("sync.server_url '{server_url}': an embedded server needs http://IP:PORT")
        })?;
    let config = Config {
        listen: address,
        data_dir: server_dir.to_path_buf(),
        utc_offset_minutes,
        ..Config::default()
    };
    let state = AppState::open(config)?;
    if enrolment(gateway_dir)?.is_none() {
        let device = {
            let registry = locked(&state.registry);
            registry
                .enrol(
                    "ussd-gateway",
                    Role::Intake,
                    &[],
                    &key.public_key(),
                    crate::gateway::now_ms(),
                )
                .map_err(|e| format!("enrolling the gateway: {e}"))?
        };
        let json = serde_json::to_string_pretty(&device).map_err(|e| e.to_string())?;
        std::fs::write(gateway_dir.join(ENROLMENT_FILE), json).map_err(|e| e.to_string())?;
        tracing::info!(
            replica = device.replica,
            "the gateway enrolled itself with the embedded sync server"
        );
    }
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!("embedded sync server ready at http://{address}");
    let app = router(std::sync::Arc::new(state));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the embedded sync server stopped");
        }
    });
    Ok(())
}

/// Syncs every `interval`, then tells requesters what moved.
pub async fn sync_loop(gw: Arc<Gateway>, server_url: String, key: DeviceKey, interval: Duration) {
    let client = match SyncClient::new(&server_url, key, ClientOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the sync client cannot start; serving offline");
            return;
        }
    };
    loop {
        match client.sync_shared(&gw.store, |_| {}).await {
            Ok(p) => tracing::info!(sent = p.ops_sent, received = p.ops_received, "synced"),
            Err(e) => {
                tracing::warn!(error = %e, "sync failed; still serving from the local replica")
            }
        }
        housekeeping(&gw).await;
        if let Err(e) = report_ussd_sessions(&gw, &client).await {
            tracing::warn!(error = %e, "reporting USSD sessions failed; will retry");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Sends the sync server how USSD sessions ended, for the supervisor's
/// abandonment figures, until none is left to send. The server stores
/// them idempotently, so a lost answer only costs a resend.
async fn report_ussd_sessions(gw: &Arc<Gateway>, client: &SyncClient) -> Result<(), String> {
    loop {
        let sessions = locked(&gw.db)
            .unreported_ussd_outcomes(REPORT_BATCH)
            .map_err(|e| e.to_string())?;
        let Some(last) = sessions.last().map(|s| s.id) else {
            return Ok(());
        };
        let full = sessions.len() == REPORT_BATCH;
        let answer = client
            .send_to(
                &gw.store,
                USSD_SESSIONS_PATH,
                &UssdSessionReports::new(sessions),
            )
            .await
            .map_err(|e| e.to_string())?;
        let stored: UssdSessionsStored =
            guichet_core::wire::decode_message(&answer).map_err(|e| e.to_string())?;
        locked(&gw.db)
            .ussd_outcomes_reported(stored.up_to.min(last))
            .map_err(|e| e.to_string())?;
        if !full {
            return Ok(());
        }
    }
}

const REPORT_BATCH: usize = 500;

/// Tells requesters what moved and counts lapsed sessions as abandoned.
async fn housekeeping(gw: &Arc<Gateway>) {
    let gw = gw.clone();
    let _ = tokio::task::spawn_blocking(move || {
        gw.notify_status_changes();
        gw.expire_sessions();
    })
    .await;
}

/// Without a sync server: local changes are still notified and sessions expired.
pub async fn housekeeping_loop(gw: Arc<Gateway>, interval: Duration) {
    loop {
        housekeeping(&gw).await;
        tokio::time::sleep(interval).await;
    }
}
