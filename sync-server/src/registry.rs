//! Enrolled devices: who may sync, as which replica, for which units.
//! Kept in `registry.db` beside the store, with the nonces of recent
//! requests so that a replay is refused even across a restart.

use guichet_core::sync::signing::{parse_public_key, MAX_CLOCK_SKEW_MS};
use guichet_core::{ReplicaId, Scope};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;

/// The server's own replica number; devices get the following ones.
pub const SERVER_REPLICA: ReplicaId = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An agent's tablet: the cases of its units.
    Tablet,
    /// The USSD/SMS gateway: opens cases for any unit, reads their status.
    Intake,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Tablet => "tablet",
            Role::Intake => "intake",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "tablet" => Some(Role::Tablet),
            "intake" => Some(Role::Intake),
            _ => None,
        }
    }
}

/// What enrolment hands back to the device, and what the server knows of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    pub replica: ReplicaId,
    pub agent: String,
    pub role: Role,
    pub units: Vec<String>,
    #[serde(skip)]
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

impl Device {
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Tablet => Scope::Units(self.units.clone()),
            Role::Intake => Scope::All,
        }
    }
}

/// What one successful sync told the server of a device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncSeen {
    /// Its own operations the server does not hold yet.
    pub pending_ops: u64,
    /// Its operations held in quarantine.
    pub quarantined_ops: u64,
    pub app_version: Option<String>,
    /// How its previous sync failed, as it says.
    pub device_error: Option<String>,
}

/// A device's sync health, as supervisors see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncHealth {
    pub enrolled_ms: u64,
    pub last_attempt_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub pending_ops: u64,
    pub quarantined_ops: u64,
    pub app_version: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("registry storage: {0}")]
    Storage(#[from] rusqlite::Error),
}

pub struct Registry {
    conn: Connection,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: a power cut may forget the last nonces, which a replay
        // could then reuse only within the few minutes a timestamp is valid;
        // not worth an fsync on every request. Enrolments are rare and
        // checkpointed like any WAL write.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The CLI (enrol, supervisor) writes while the server runs.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS devices(replica INTEGER PRIMARY KEY, agent TEXT NOT NULL,
               role TEXT NOT NULL, units TEXT NOT NULL, public_key BLOB NOT NULL UNIQUE,
               revoked INTEGER NOT NULL DEFAULT 0, enrolled_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS nonces(nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)
               WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expires_at);
             CREATE TABLE IF NOT EXISTS device_health(replica INTEGER PRIMARY KEY,
               last_attempt INTEGER NOT NULL, last_success INTEGER, pending INTEGER NOT NULL DEFAULT 0,
               quarantined INTEGER NOT NULL DEFAULT 0, app_version TEXT, last_error TEXT);",
        )?;
        conn.execute_batch(crate::supervisors::SCHEMA)?;
        Ok(Registry { conn })
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Enrols a device's public key and gives it the next replica number.
    pub fn enrol(
        &self,
        agent: &str,
        role: Role,
        units: &[String],
        public_key_b64: &str,
        now_ms: u64,
    ) -> Result<Device, RegistryError> {
        let public_key = parse_public_key(public_key_b64).map_err(|_| {
            RegistryError::Invalid("the public key is not a base64 Ed25519 key".into())
        })?;
        if agent.trim().is_empty() {
            return Err(RegistryError::Invalid("name the agent or device".into()));
        }
        if role == Role::Tablet && units.is_empty() {
            return Err(RegistryError::Invalid(
                "a tablet serves at least one unit".into(),
            ));
        }
        let next: i64 = self.conn.query_row(
            "SELECT max(coalesce(max(replica), 0), ?1) + 1 FROM devices",
            [SERVER_REPLICA],
            |r| r.get(0),
        )?;
        let units_json = serde_json::to_string(units).expect("strings serialize");
        self.conn
            .execute(
                "INSERT INTO devices(replica, agent, role, units, public_key, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    next,
                    agent,
                    role.as_str(),
                    units_json,
                    public_key,
                    now_ms as i64
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    RegistryError::Invalid("this public key is already enrolled".into())
                }
                e => e.into(),
            })?;
        Ok(self.device(next as ReplicaId)?.expect("just inserted"))
    }

    pub fn revoke(&self, replica: ReplicaId) -> Result<(), RegistryError> {
        let changed = self.conn.execute(
            "UPDATE devices SET revoked = 1 WHERE replica = ?1",
            [replica],
        )?;
        if changed == 0 {
            return Err(RegistryError::Invalid(format!("no device {replica}")));
        }
        Ok(())
    }

    pub fn device(&self, replica: ReplicaId) -> Result<Option<Device>, RegistryError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT replica, agent, role, units, public_key, revoked FROM devices WHERE replica = ?1",
            )?
            .query_row([replica], device_from_row)
            .optional()?)
    }

    pub fn devices(&self) -> Result<Vec<Device>, RegistryError> {
        let mut stmt = self.conn.prepare(
            "SELECT replica, agent, role, units, public_key, revoked FROM devices ORDER BY replica",
        )?;
        let rows = stmt.query_map([], device_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records how a device's sync went, for its health as supervisors see
    /// it. `seen` is what a successful exchange learnt; a failed one
    /// records only its error.
    pub fn record_sync(
        &self,
        replica: ReplicaId,
        now_ms: u64,
        outcome: Result<&SyncSeen, &str>,
    ) -> Result<(), RegistryError> {
        let (success, seen, error) = match outcome {
            Ok(seen) => (
                Some(now_ms as i64),
                Some(seen),
                seen.device_error.as_deref(),
            ),
            Err(error) => (None, None, Some(error)),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO device_health(replica, last_attempt, last_success, pending, quarantined,
                   app_version, last_error)
                 VALUES (?1, ?2, ?3, COALESCE(?4, 0), COALESCE(?5, 0), ?6, ?7)
                 ON CONFLICT(replica) DO UPDATE SET last_attempt = excluded.last_attempt,
                   last_success = COALESCE(excluded.last_success, last_success),
                   pending = COALESCE(?4, pending), quarantined = COALESCE(?5, quarantined),
                   app_version = COALESCE(?6, app_version), last_error = excluded.last_error",
            )?
            .execute(params![
                replica,
                now_ms as i64,
                success,
                seen.map(|s| s.pending_ops as i64),
                seen.map(|s| s.quarantined_ops as i64),
                seen.and_then(|s| s.app_version.as_deref()),
                error
            ])?;
        Ok(())
    }

    /// Every device's sync health, by replica; devices that never synced
    /// have none.
    pub fn sync_health(
        &self,
    ) -> Result<std::collections::HashMap<ReplicaId, SyncHealth>, RegistryError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.replica, d.enrolled_at, h.last_attempt, h.last_success, h.pending,
                    h.quarantined, h.app_version, h.last_error
             FROM devices d LEFT JOIN device_health h ON h.replica = d.replica",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, ReplicaId>(0)?,
                SyncHealth {
                    enrolled_ms: r.get::<_, i64>(1)? as u64,
                    last_attempt_ms: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                    last_success_ms: r.get::<_, Option<i64>>(3)?.map(|t| t as u64),
                    pending_ops: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
                    quarantined_ops: r.get::<_, Option<i64>>(5)?.unwrap_or(0) as u64,
                    app_version: r.get(6)?,
                    last_error: r.get(7)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a request nonce; false if it was seen before (a replay).
    /// Nonces are kept as long as their request's timestamp is acceptable.
    pub fn first_use_of_nonce(&self, nonce: &str, now_ms: u64) -> Result<bool, RegistryError> {
        self.conn
            .prepare_cached("DELETE FROM nonces WHERE expires_at < ?1")?
            .execute([now_ms as i64])?;
        let inserted = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO nonces(nonce, expires_at) VALUES (?1, ?2)")?
            .execute(params![nonce, (now_ms + 2 * MAX_CLOCK_SKEW_MS) as i64])?;
        Ok(inserted == 1)
    }
}

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    let role: String = r.get(2)?;
    let units: String = r.get(3)?;
    Ok(Device {
        replica: r.get(0)?,
        agent: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Tablet),
        units: serde_json::from_str(&units).unwrap_or_default(),
        public_key: r.get(4)?,
        revoked: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_core::sync::signing::DeviceKey;

    #[test]
    fn enrolment_numbers_devices_after_the_server_and_refuses_bad_keys() {
        let dir = tempfile::TempDir::new().unwrap();
        let reg = Registry::open(&dir.path().join("registry.db")).unwrap();
        let key = DeviceKey::generate().unwrap();
        let units = vec!["unit-01".to_string()];
        let d = reg
            .enrol("agent-7", Role::Tablet, &units, &key.public_key(), 0)
            .unwrap();
        assert_eq!(d.replica, SERVER_REPLICA + 1);
        assert_eq!(d.scope(), Scope::Units(units.clone()));
        assert!(reg
            .enrol("agent-8", Role::Tablet, &units, &key.public_key(), 0)
            .is_err());
        assert!(reg
            .enrol("agent-8", Role::Tablet, &units, "not a key", 0)
            .is_err());
        assert!(reg
            .enrol(
                "agent-8",
                Role::Tablet,
                &[],
                &DeviceKey::generate().unwrap().public_key(),
                0
            )
            .is_err());
        let gw = reg
            .enrol(
                "gateway",
                Role::Intake,
                &[],
                &DeviceKey::generate().unwrap().public_key(),
                0,
            )
            .unwrap();
        assert_eq!((gw.replica, gw.scope()), (SERVER_REPLICA + 2, Scope::All));
        reg.revoke(d.replica).unwrap();
        assert!(reg.device(d.replica).unwrap().unwrap().revoked);
        assert!(reg.revoke(99).is_err());
    }

    #[test]
    fn a_nonce_is_accepted_once() {
        let dir = tempfile::TempDir::new().unwrap();
        let reg = Registry::open(&dir.path().join("registry.db")).unwrap();
        assert!(reg.first_use_of_nonce("abc", 1_000).unwrap());
        assert!(!reg.first_use_of_nonce("abc", 2_000).unwrap());
        let much_later = 1_000 + 3 * MAX_CLOCK_SKEW_MS;
        assert!(
            reg.first_use_of_nonce("abc", much_later).unwrap(),
            "expired nonces are forgotten"
        );
    }
}
