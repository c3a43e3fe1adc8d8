//! Supervisors: the people who read the figures, in a browser or through
//! the JSON API, with a name and a password, for some units or for all.
//! Kept in `registry.db` beside the devices. Passwords are stored as
//! PBKDF2 hashes; browser sessions as the SHA-256 of their token, so a
//! copy of the registry opens no session.

use crate::registry::{Registry, RegistryError};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};
use rusqlite::{params, OptionalExtension};
use std::num::NonZeroU32;
use std::sync::Mutex;

pub const MIN_PASSWORD_LEN: usize = 10;
/// How long a browser session lasts without logging in again.
pub const SESSION_MS: u64 = 12 * 3_600_000;
const PBKDF2_ROUNDS: u32 = 100_000;
/// Wrong passwords allowed for one name within LOCKOUT_MS.
const MAX_FAILURES: u32 = 5;
const LOCKOUT_MS: u64 = 15 * 60_000;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS supervisors(name TEXT PRIMARY KEY, password TEXT NOT NULL,
  units TEXT, created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS supervisor_failures(name TEXT PRIMARY KEY, failures INTEGER NOT NULL,
  since INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS supervisor_sessions(token_hash BLOB PRIMARY KEY, name TEXT NOT NULL,
  expires_at INTEGER NOT NULL) WITHOUT ROWID;
";

/// The supervisor, if the password is theirs. After MAX_FAILURES wrong
/// passwords for a name, that name is refused for LOCKOUT_MS whatever the
/// password. The registry is locked only around its reads and writes, never
/// during the deliberately slow hashing, so syncs do not wait on a sign-in.
pub fn sign_in(
    registry: &Mutex<Registry>,
    name: &str,
    password: &str,
    now_ms: u64,
) -> Result<Option<Supervisor>, RegistryError> {
    let lock = || registry.lock().unwrap_or_else(|p| p.into_inner());
    let record = lock().supervisor_record(name, now_ms)?;
    let Some((stored, units)) = record else {
        // The same work as for a known name, so timing tells nothing. A
        // locked name stays locked; an unknown one is not recorded, so
        // guessing names cannot fill the registry.
        let _ = hash_password(password);
        return Ok(None);
    };
    let ok = verify_password(&stored, password);
    lock().record_sign_in(name, ok, now_ms)?;
    Ok(ok.then(|| Supervisor {
        name: name.to_string(),
        units: units.and_then(|u| serde_json::from_str(&u).ok()),
    }))
}

/// Who is looking at the figures, and which units they may see.
#[derive(Clone, Debug, PartialEq)]
pub struct Supervisor {
    pub name: String,
    /// None: every unit.
    pub units: Option<Vec<String>>,
}

impl Supervisor {
    pub fn may_see(&self, unit: &str) -> bool {
        self.units
            .as_ref()
            .is_none_or(|units| units.iter().any(|u| u == unit))
    }
}

impl Registry {
    /// Adds a supervisor, or gives an existing one a new password and units.
    pub fn set_supervisor(
        &self,
        name: &str,
        password: &str,
        units: Option<&[String]>,
        now_ms: u64,
    ) -> Result<(), RegistryError> {
        if name.trim().is_empty() || name.contains(':') {
            return Err(RegistryError::Invalid(
                "a supervisor's name is not empty and has no ':'".into(),
            ));
        }
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(RegistryError::Invalid(format!(
                "a password has at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        if units.is_some_and(|u| u.is_empty()) {
            return Err(RegistryError::Invalid(
                "give the supervisor's units, or all units".into(),
            ));
        }
        let units = units.map(|u| serde_json::to_string(u).expect("strings serialize"));
        self.conn().execute(
            "INSERT INTO supervisors(name, password, units, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET password = ?2, units = ?3",
            params![name, hash_password(password)?, units, now_ms as i64],
        )?;
        // A new password ends the sessions opened with the old one.
        self.conn()
            .execute("DELETE FROM supervisor_sessions WHERE name = ?1", [name])?;
        Ok(())
    }

    /// A supervisor's password hash and units, unless their sign-in is
    /// locked after too many failures.
    fn supervisor_record(
        &self,
        name: &str,
        now_ms: u64,
    ) -> Result<Option<(String, Option<String>)>, RegistryError> {
        let locked: bool = self.conn().query_row(
            "SELECT count(*) FROM supervisor_failures WHERE name = ?1 AND failures >= ?2 AND since > ?3",
            params![name, MAX_FAILURES, now_ms.saturating_sub(LOCKOUT_MS) as i64],
            |r| r.get(0),
        )?;
        if locked {
            return Ok(None);
        }
        Ok(self
            .conn()
            .prepare_cached("SELECT password, units FROM supervisors WHERE name = ?1")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Counts a failed sign-in (a window of LOCKOUT_MS from the first), or
    /// forgets the failures after a successful one.
    fn record_sign_in(&self, name: &str, ok: bool, now_ms: u64) -> Result<(), RegistryError> {
        if ok {
            self.conn()
                .execute("DELETE FROM supervisor_failures WHERE name = ?1", [name])?;
        } else {
            self.conn().execute(
                "INSERT INTO supervisor_failures(name, failures, since) VALUES (?1, 1, ?2)
                 ON CONFLICT(name) DO UPDATE SET
                   failures = CASE WHEN since > ?3 THEN failures + 1 ELSE 1 END,
                   since = CASE WHEN since > ?3 THEN since ELSE ?2 END",
                params![
                    name,
                    now_ms as i64,
                    now_ms.saturating_sub(LOCKOUT_MS) as i64
                ],
            )?;
        }
        Ok(())
    }

    /// Opens a browser session; returns its token (for the cookie).
    pub fn open_supervisor_session(
        &self,
        name: &str,
        now_ms: u64,
    ) -> Result<String, RegistryError> {
        let mut token = [0u8; 32];
        SystemRandom::new()
            .fill(&mut token)
            .map_err(|_| RegistryError::Invalid("no randomness".into()))?;
        let token = hex(&token);
        self.conn().execute(
            "DELETE FROM supervisor_sessions WHERE expires_at < ?1",
            [now_ms as i64],
        )?;
        self.conn().execute(
            "INSERT INTO supervisor_sessions(token_hash, name, expires_at) VALUES (?1, ?2, ?3)",
            params![token_hash(&token), name, (now_ms + SESSION_MS) as i64],
        )?;
        Ok(token)
    }

    /// The supervisor a session token belongs to, while it lasts.
    pub fn supervisor_session(
        &self,
        token: &str,
        now_ms: u64,
    ) -> Result<Option<Supervisor>, RegistryError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT s.name, s.units FROM supervisor_sessions t JOIN supervisors s ON s.name = t.name
                 WHERE t.token_hash = ?1 AND t.expires_at >= ?2",
            )?
            .query_row(params![token_hash(token), now_ms as i64], |r| {
                let units: Option<String> = r.get(1)?;
                Ok(Supervisor {
                    name: r.get(0)?,
                    units: units.and_then(|u| serde_json::from_str(&u).ok()),
                })
            })
            .optional()?)
    }

    pub fn close_supervisor_session(&self, token: &str) -> Result<(), RegistryError> {
        self.conn().execute(
            "DELETE FROM supervisor_sessions WHERE token_hash = ?1",
            [token_hash(token)],
        )?;
        Ok(())
    }
}

fn rounds() -> NonZeroU32 {
    NonZeroU32::new(PBKDF2_ROUNDS).expect("non-zero")
}

/// `pbkdf2-sha256$ROUNDS$SALT$HASH`, base64 without padding.
fn hash_password(password: &str) -> Result<String, RegistryError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| RegistryError::Invalid("no randomness".into()))?;
    let mut hash = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds(),
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "pbkdf2-sha256${PBKDF2_ROUNDS}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    ))
}

fn verify_password(stored: &str, password: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["pbkdf2-sha256", rounds, salt, hash] = parts.as_slice() else {
        return false;
    };
    let (Some(rounds), Ok(salt), Ok(hash)) = (
        rounds.parse().ok().and_then(NonZeroU32::new),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervisor_signs_in_with_the_password_only_and_sessions_expire() {
        let dir = tempfile::TempDir::new().unwrap();
        let reg = Mutex::new(Registry::open(&dir.path().join("registry.db")).unwrap());
        let check = |name: &str, password: &str| sign_in(&reg, name, password, 0).unwrap();
        let units = vec!["unit-01".to_string()];
        let r = || reg.lock().unwrap();
        assert!(r().set_supervisor("awa", "short", None, 0).is_err());
        r().set_supervisor("awa", "a long password", Some(&units), 0)
            .unwrap();
        assert_eq!(check("awa", "a long passwore"), None);
        assert_eq!(check("nobody", "a long password"), None);
        let awa = check("awa", "a long password").unwrap();
        assert!(awa.may_see("unit-01") && !awa.may_see("unit-02"));

        let token = r().open_supervisor_session("awa", 1_000).unwrap();
        assert_eq!(r().supervisor_session(&token, 2_000).unwrap(), Some(awa));
        assert_eq!(r().supervisor_session("forged", 2_000).unwrap(), None);
        let expired = 1_000 + SESSION_MS + 1;
        assert_eq!(r().supervisor_session(&token, expired).unwrap(), None);
        // A new password closes the sessions opened before it.
        let token = r().open_supervisor_session("awa", 1_000).unwrap();
        r().set_supervisor("awa", "another long one", None, 0)
            .unwrap();
        assert_eq!(r().supervisor_session(&token, 2_000).unwrap(), None);
        assert!(check("awa", "another long one").unwrap().may_see("unit-99"));
        let token = r().open_supervisor_session("awa", 1_000).unwrap();
        r().close_supervisor_session(&token).unwrap();
        assert_eq!(r().supervisor_session(&token, 2_000).unwrap(), None);
    }

    #[test]
    fn guessing_locks_the_name_for_a_while() {
        let dir = tempfile::TempDir::new().unwrap();
        let reg = Mutex::new(Registry::open(&dir.path().join("registry.db")).unwrap());
        let r = || reg.lock().unwrap();
        r().set_supervisor("awa", "a long password", None, 0)
            .unwrap();
        let at = |ms: u64, password: &str| sign_in(&reg, "awa", password, ms).unwrap();
        // A success forgets earlier failures.
        for i in 0..MAX_FAILURES - 1 {
            assert_eq!(at(i as u64, "guess"), None);
        }
        assert!(at(10, "a long password").is_some());
        for i in 0..MAX_FAILURES {
            assert_eq!(at(20 + i as u64, "guess"), None);
        }
        assert_eq!(
            at(100, "a long password"),
            None,
            "locked, even the right one"
        );
        assert!(at(20 + LOCKOUT_MS + 1, "a long password").is_some());
    }
}
