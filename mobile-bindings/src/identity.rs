//! The device's identity: its Ed25519 key and its enrolment.
//!
//! Where the private key lives is the app's choice:
//! - `DeviceIdentity.loadOrCreate(dir)`: in `dir/device-key.pk8` (PKCS#8,
//!   permissions 0600, created once and never overwritten), with the
//!   enrolment in `dir/enrolment.json`. `dir` is the app's private storage
//!   (Android `Context.filesDir`, iOS Application Support with data
//!   protection), beside the store file.
//! - `DeviceIdentity.generate()` / `fromPrivateKey(bytes, enrolment)`: the
//!   library keeps nothing on disk; the app stores `privateKey()` itself
//!   (encrypted with an Android Keystore key, or in the iOS Keychain) and the
//!   `Enrolment`, and passes them back at each start.

use crate::error::{GuichetError, Result};
use crate::types::Enrolment;
use guichet_core::ids::MAX_REPLICA;
use guichet_core::sync::signing::DeviceKey;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const KEY_FILE: &str = "device-key.pk8";
const ENROLMENT_FILE: &str = "enrolment.json";

/// A device's key pair and, once the administrator has enrolled it, its
/// enrolment (replica number, agent, units, server).
#[derive(uniffi::Object)]
pub struct DeviceIdentity {
    pkcs8: Vec<u8>,
    public_key: String,
    dir: Option<PathBuf>,
    enrolment: Mutex<Option<Enrolment>>,
}

impl std::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("public_key", &self.public_key)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl DeviceIdentity {
    /// The identity kept in `dir`: loads the key (and enrolment) found
    /// there, or generates a key and writes it (0600) on first use. A key
    /// or enrolment file that cannot be read is reported, never replaced.
    #[uniffi::constructor]
    pub fn load_or_create(dir: String) -> Result<Arc<DeviceIdentity>> {
        let dir = PathBuf::from(dir);
        create_private_dir(&dir)?;
        let key_path = dir.join(KEY_FILE);
        let key = if key_path.exists() {
            read_key(&key_path)?
        } else {
            let key = new_key()?;
            write_new_key(&key_path, key.pkcs8())?;
            // Another process may have won the race: use what is on disk.
            read_key(&key_path)?
        };
        let enrolment_path = dir.join(ENROLMENT_FILE);
        let enrolment = if enrolment_path.exists() {
            let text = std::fs::read_to_string(&enrolment_path)
                .map_err(|e| storage(format!("cannot read {}: {e}", enrolment_path.display())))?;
            let enrolment: Enrolment = serde_json::from_str(&text).map_err(|e| {
                storage(format!(
                    "{} is damaged ({e}); it was kept untouched",
                    enrolment_path.display()
                ))
            })?;
            Some(check_enrolment(enrolment)?)
        } else {
            None
        };
        Ok(Arc::new(DeviceIdentity::new(key, Some(dir), enrolment)))
    }

    /// A fresh identity kept in memory only: store `privateKey()` yourself.
    #[uniffi::constructor]
    pub fn generate() -> Result<Arc<DeviceIdentity>> {
        Ok(Arc::new(DeviceIdentity::new(new_key()?, None, None)))
    }

    /// The identity whose PKCS#8 key the app kept (see `privateKey()`), with
    /// its enrolment if it has one.
    #[uniffi::constructor(default(enrolment = None))]
    pub fn from_private_key(
        private_key: Vec<u8>,
        enrolment: Option<Enrolment>,
    ) -> Result<Arc<DeviceIdentity>> {
        let key = DeviceKey::from_pkcs8(&private_key).map_err(|e| {
            GuichetError::InvalidInput(format!("not a device key (PKCS#8 Ed25519): {e}"))
        })?;
        let enrolment = enrolment.map(check_enrolment).transpose()?;
        Ok(Arc::new(DeviceIdentity::new(key, None, enrolment)))
    }

    /// The public key, base64: what the administrator enrols
    /// (`guichet-sync-server enrol --public-key ...`).
    pub fn public_key(&self) -> String {
        self.public_key.clone()
    }

    /// The private key (PKCS#8 DER), for apps that keep it in the Android
    /// Keystore or the iOS Keychain. Never log or send it.
    pub fn private_key(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    /// Records the enrolment the administrator received from
    /// `guichet-sync-server enrol` (its JSON output, as is) and the sync
    /// server's URL. Written to `enrolment.json` for a `loadOrCreate`
    /// identity. A device enrolled again (a new replica number) needs a new
    /// store file: a store belongs to one replica.
    pub fn enrol(&self, enrolment_json: String, server_url: String) -> Result<Enrolment> {
        #[derive(serde::Deserialize)]
        struct FromServer {
            replica: u32,
            agent: String,
            role: String,
            #[serde(default)]
            units: Vec<String>,
            #[serde(default)]
            revoked: bool,
        }
        let given: FromServer = serde_json::from_str(&enrolment_json).map_err(|e| {
            GuichetError::InvalidInput(format!(
                "not an enrolment as printed by guichet-sync-server enrol: {e}"
            ))
        })?;
        if given.revoked {
            return Err(GuichetError::InvalidInput(
                "this enrolment was revoked by the administrator".into(),
            ));
        }
        let enrolment = check_enrolment(Enrolment {
            replica: given.replica,
            agent: given.agent,
            role: given.role,
            units: given.units,
            server_url,
        })?;
        if let Some(dir) = &self.dir {
            let json = serde_json::to_vec_pretty(&enrolment)
                .map_err(|e| storage(format!("cannot encode the enrolment: {e}")))?;
            write_replace(&dir.join(ENROLMENT_FILE), &json)?;
        }
        *self.enrolment.lock().map_err(crate::error::poisoned)? = Some(enrolment.clone());
        Ok(enrolment)
    }

    /// The enrolment, once `enrol` was called (or loaded from disk).
    pub fn enrolment(&self) -> Option<Enrolment> {
        match self.enrolment.lock() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl DeviceIdentity {
    fn new(key: DeviceKey, dir: Option<PathBuf>, enrolment: Option<Enrolment>) -> Self {
        DeviceIdentity {
            public_key: key.public_key(),
            pkcs8: key.pkcs8().to_vec(),
            dir,
            enrolment: Mutex::new(enrolment),
        }
    }

    pub(crate) fn key(&self) -> Result<DeviceKey> {
        DeviceKey::from_pkcs8(&self.pkcs8)
            .map_err(|e| GuichetError::Storage(format!("the device key is unusable: {e}")))
    }
}

fn storage(message: String) -> GuichetError {
    GuichetError::Storage(message)
}

fn new_key() -> Result<DeviceKey> {
    DeviceKey::generate().map_err(|e| storage(format!("cannot generate a device key: {e}")))
}

fn read_key(path: &Path) -> Result<DeviceKey> {
    let bytes =
        std::fs::read(path).map_err(|e| storage(format!("cannot read {}: {e}", path.display())))?;
    DeviceKey::from_pkcs8(&bytes).map_err(|e| {
        storage(format!(
            "{} is not a usable device key ({e}); it was kept untouched",
            path.display()
        ))
    })
}

/// Checks what an app or the server gave, and normalises the URL.
pub(crate) fn check_enrolment(mut e: Enrolment) -> Result<Enrolment> {
    if !(1..=MAX_REPLICA).contains(&e.replica) {
        return Err(GuichetError::InvalidInput(format!(
            "replica numbers go from 1 to {MAX_REPLICA}, not {}",
            e.replica
        )));
    }
    e.server_url = check_url(&e.server_url)?;
    Ok(e)
}

pub(crate) fn check_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(url.to_string())
        }
        _ => Err(GuichetError::InvalidInput(format!(
            "'{url}' is not a sync server URL such as https://sync.example"
        ))),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Writes `bytes` to a temporary file beside `path`, durably.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = private_file(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(storage(format!("cannot write {}: {e}", path.display())))
        }
    }
}

fn sync_dir(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// The key appears whole or not at all, and an existing key is never
/// replaced: a hard link fails when the name is taken (where hard links
/// are refused, a rename once the name is checked free).
fn write_new_key(path: &Path, pkcs8: &[u8]) -> Result<()> {
    let temp = write_temp(path, pkcs8)?;
    let placed = match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) if path.exists() => Ok(()),
        Err(_) => std::fs::rename(&temp, path),
    };
    let _ = std::fs::remove_file(&temp);
    placed.map_err(|e| storage(format!("cannot write {}: {e}", path.display())))?;
    sync_dir(path);
    Ok(())
}

fn write_replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = write_temp(path, bytes)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        storage(format!("cannot write {}: {e}", path.display()))
    })?;
    sync_dir(path);
    Ok(())
}
