//! Supervisors: the people who read the figures, in a browser or through
//! the JSON API, with a name and a password, for some units or for all.
//! Kept in `registry.db` beside the devices. Passwords are stored as
//! PBKDF2 hashes; browser sessions as the SHA-256 of their token, so a
//! copy of the registry opens no session.

use crate::registry::{Registry, RegistryError};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::HashMap;
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

/// How long a verified name and password are remembered, so that API
/// calls with HTTP Basic credentials do not each run the slow hash.
const REMEMBER_MS: u64 = 5 * 60_000;

/// Sign-ins by name and password, with the credentials verified lately.
///
/// What is remembered is an HMAC, under a key drawn at random when the
/// process starts, of the name, the stored password hash and the password:
/// never the password. A new password changes the stored hash, so the old
/// one is refused at once (whoever changed it: this process or the CLI);
/// units are read from the registry on every call, and a removed
/// supervisor or a locked name is refused before what is remembered is
/// looked at.
pub struct SignIns {
    /// None if the system had no randomness: then nothing is remembered.
    key: Option<hmac::Key>,
    verified: Mutex<HashMap<String, Verified>>,
}

struct Verified {
    tag: hmac::Tag,
    until_ms: u64,
}

impl Default for SignIns {
    fn default() -> Self {
        SignIns {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok(),
            verified: Mutex::new(HashMap::new()),
        }
    }
}

impl SignIns {
    /// The supervisor, if the password is theirs. After MAX_FAILURES wrong
    /// passwords for a name, that name is refused for LOCKOUT_MS whatever
    /// the password. The registry is locked only around its reads and
    /// writes, never during the deliberately slow hashing, so syncs do not
    /// wait on a sign-in; an attempt is counted as a failure before the
    /// hashing (and forgiven if right), so concurrent guesses cannot all pass
    /// the check before any is counted.
    pub fn sign_in(
        &self,
        registry: &Mutex<Registry>,
        name: &str,
        password: &str,
        now_ms: u64,
    ) -> Result<Option<Supervisor>, RegistryError> {
        let lock = || registry.lock().unwrap_or_else(|p| p.into_inner());
        let record = lock().supervisor_record(name, now_ms)?;
        if let Some(record) = record {
            if self.remembers(name, &record.password, password, now_ms) {
                // A success forgets earlier failures, remembered or not.
                if record.failures > 0 {
                    lock().forget_failures(name)?;
                }
                return record.supervisor(name).map(Some);
            }
        }
        let Some(record) = lock().reserve_sign_in(name, now_ms)? else {
            // The same work as for a known name, so timing tells nothing. A
            // locked name stays locked; an unknown one is not recorded, so
            // guessing names cannot fill the registry.
            let _ = hash_password(password);
            return Ok(None);
        };
        if !verify_password(&record.password, password) {
            return Ok(None);
        }
        lock().forget_failures(name)?;
        let who = record.supervisor(name)?;
        self.remember(name, &record.password, password, now_ms);
        Ok(Some(who))
    }

    /// What is remembered of a name, its stored hash and a password.
    fn message(name: &str, stored: &str, password: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(24 + name.len() + stored.len() + password.len());
        for part in [name, stored, password] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        message
    }

    fn remembers(&self, name: &str, stored: &str, password: &str, now_ms: u64) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified.get(name).is_some_and(|v| {
            now_ms < v.until_ms
                && hmac::verify(key, &Self::message(name, stored, password), v.tag.as_ref()).is_ok()
        })
    }

    fn remember(&self, name: &str, stored: &str, password: &str, now_ms: u64) {
        let Some(key) = &self.key else {
            return;
        };
        let tag = hmac::sign(key, &Self::message(name, stored, password));
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified.retain(|_, v| now_ms < v.until_ms);
        verified.insert(
            name.to_string(),
            Verified {
                tag,
                until_ms: now_ms + REMEMBER_MS,
            },
        );
    }
}

/// A supervisor's row: the password hash and the units as stored.
struct Record {
    password: String,
    units: Option<String>,
    /// Wrong passwords within the current lockout window.
    failures: u32,
}

impl Record {
    fn supervisor(&self, name: &str) -> Result<Supervisor, RegistryError> {
        Ok(Supervisor {
            name: name.to_string(),
            units: parse_units(self.units.as_deref())?,
        })
    }
}

/// Units as stored: NULL is every unit, else a JSON list of units.
/// Anything else refuses the supervisor: it never widens what they see.
fn parse_units(stored: Option<&str>) -> Result<Option<Vec<String>>, RegistryError> {
    let Some(text) = stored else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|_| RegistryError::Invalid("a supervisor's units cannot be read".into()))
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

    /// A supervisor's password hash, units and recent failures, unless
    /// their sign-in is locked after too many failures.
    fn supervisor_record(&self, name: &str, now_ms: u64) -> Result<Option<Record>, RegistryError> {
        let record = self
            .conn()
            .prepare_cached(
                "SELECT s.password, s.units, coalesce((SELECT f.failures FROM supervisor_failures f
                   WHERE f.name = s.name AND f.since > ?2), 0)
                 FROM supervisors s WHERE s.name = ?1",
            )?
            .query_row(
                params![name, now_ms.saturating_sub(LOCKOUT_MS) as i64],
                |r| {
                    Ok(Record {
                        password: r.get(0)?,
                        units: r.get(1)?,
                        failures: r.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(record.filter(|r| r.failures < MAX_FAILURES))
    }

    /// A supervisor's record for a sign-in attempt, counted at once as a
    /// failure (a window of LOCKOUT_MS from the first); None if the name is
    /// unknown (not counted) or locked. Checked and counted in one
    /// transaction, before the hashing.
    fn reserve_sign_in(&self, name: &str, now_ms: u64) -> Result<Option<Record>, RegistryError> {
        let tx = Transaction::new_unchecked(self.conn(), TransactionBehavior::Immediate)?;
        let record = self.supervisor_record(name, now_ms)?;
        if record.is_some() {
            tx.execute(
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
        tx.commit()?;
        Ok(record)
    }

    /// After a successful sign-in: the failures counted for the name are forgotten.
    fn forget_failures(&self, name: &str) -> Result<(), RegistryError> {
        self.conn()
            .execute("DELETE FROM supervisor_failures WHERE name = ?1", [name])?;
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
        let found: Option<(String, Option<String>)> = self
            .conn()
            .prepare_cached(
                "SELECT s.name, s.units FROM supervisor_sessions t JOIN supervisors s ON s.name = t.name
                 WHERE t.token_hash = ?1 AND t.expires_at >= ?2",
            )?
            .query_row(params![token_hash(token), now_ms as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((name, units)) = found else {
            return Ok(None);
        };
        Ok(Some(Supervisor {
            name,
            units: parse_units(units.as_deref())?,
        }))
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
        let sign_ins = SignIns::default();
        let check = |name: &str, password: &str| sign_ins.sign_in(&reg, name, password, 0).unwrap();
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
        let sign_ins = SignIns::default();
        let at = |ms: u64, password: &str| sign_ins.sign_in(&reg, "awa", password, ms).unwrap();
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
