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
        return DeviceKey::from_pkcs8(&bytes).map_err(|e| {
            format!(
                "{}: {e} (not a device key: if this gateway was never enrolled, remove it to make a new one)",
                path.display()
            )
        });
    }
    let key = DeviceKey::generate().map_err(|e| e.to_string())?;
    write_durably(&path, key.pkcs8())?;
    Ok(key)
}

/// Writes a file so that a crash or a power cut at any moment leaves it
/// absent or whole, never partly written: a temporary file beside it
/// (readable by its owner only), synced, renamed over it, and the rename
/// synced with the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed)
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
    enrol_with(&locked(&state.registry), gateway_dir, key)?;
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

/// Enrols this gateway with the embedded server's registry unless its
/// enrolment is saved. Crash-safe at every step: the enrolment is saved
/// whole or not at all, and a registry that already holds this gateway's
/// key (a crash came between enrolling and saving) gives its device back
/// rather than refuse to enrol it twice. Returns the replica number.
pub fn enrol_with(
    registry: &guichet_sync_server::registry::Registry,
    gateway_dir: &Path,
    key: &DeviceKey,
) -> Result<u32, String> {
    use guichet_sync_server::registry::Role;
    if let Some(saved) = enrolment(gateway_dir)? {
        return Ok(saved.replica);
    }
    let public_key = key.public_key();
    let raw_key = guichet_core::sync::signing::parse_public_key(&public_key)
        .map_err(|e| format!("the gateway's public key: {e}"))?;
    let enrolled = registry
        .devices()
        .map_err(|e| format!("reading the embedded server's devices: {e}"))?
        .into_iter()
        .find(|d| d.public_key == raw_key);
    let device = match enrolled {
        Some(device) if device.revoked => {
            return Err(format!(
                "this gateway's key is revoked on the embedded sync server (device {}): \
                 remove {} to enrol a new key",
                device.replica,
                gateway_dir.join(KEY_FILE).display()
            ))
        }
        Some(device) => device,
        None => registry
            .enrol(
                "ussd-gateway",
                Role::Intake,
                &[],
                &public_key,
                crate::gateway::now_ms(),
            )
            .map_err(|e| format!("enrolling the gateway: {e}"))?,
    };
    let json = serde_json::to_string_pretty(&device).map_err(|e| e.to_string())?;
    write_durably(&gateway_dir.join(ENROLMENT_FILE), json.as_bytes())?;
    tracing::info!(
        replica = device.replica,
        "the gateway enrolled itself with the embedded sync server"
    );
    Ok(device.replica)
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

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_sync_server::registry::{Registry, Role};

    /// The embedded server enrolled the gateway's key, then the gateway
    /// stopped before saving its enrolment: the next start finishes it
    /// with the same device instead of refusing a second enrolment.
    #[test]
    fn a_crash_between_enrolling_and_saving_is_finished_on_restart() {
        let dir = tempfile::TempDir::new().unwrap();
        let registry = Registry::open(&dir.path().join("registry.db")).unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let tablet = DeviceKey::generate().unwrap();
        registry
            .enrol(
                "agent",
                Role::Tablet,
                &["u".into()],
                &tablet.public_key(),
                1,
            )
            .unwrap();
        let crashed = registry
            .enrol("ussd-gateway", Role::Intake, &[], &key.public_key(), 2)
            .unwrap();
        assert_eq!(enrolment(dir.path()).unwrap().map(|e| e.replica), None);

        let replica = enrol_with(&registry, dir.path(), &key).unwrap();
        assert_eq!(replica, crashed.replica);
        assert_eq!(
            enrolment(dir.path()).unwrap().map(|e| e.replica),
            Some(crashed.replica)
        );
        assert_eq!(enrol_with(&registry, dir.path(), &key), Ok(crashed.replica));
        assert_eq!(registry.devices().unwrap().len(), 2, "enrolled once");
    }

    #[test]
    fn a_revoked_key_is_not_enrolled_again_silently() {
        let dir = tempfile::TempDir::new().unwrap();
        let registry = Registry::open(&dir.path().join("registry.db")).unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let device = registry
            .enrol("ussd-gateway", Role::Intake, &[], &key.public_key(), 2)
            .unwrap();
        registry.revoke(device.replica).unwrap();
        let refused = enrol_with(&registry, dir.path(), &key).unwrap_err();
        assert!(refused.contains("revoked"), "{refused}");
        assert!(enrolment(dir.path()).unwrap().is_none());
    }

    /// Written through a synced temporary file renamed over it: whole,
    /// private, and nothing else left beside it.
    #[test]
    fn the_key_and_the_enrolment_are_written_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::TempDir::new().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let again = load_or_create_key(dir.path()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let enrolment_file = dir.path().join(ENROLMENT_FILE);
        write_durably(&enrolment_file, b"{\"replica\": 5}").unwrap();
        write_durably(&enrolment_file, b"{\"replica\": 7}").unwrap();
        assert_eq!(enrolment(dir.path()).unwrap().map(|e| e.replica), Some(7));
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, [KEY_FILE, ENROLMENT_FILE]);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
