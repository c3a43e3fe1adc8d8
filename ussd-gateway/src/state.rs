//! The gateway's own durable state, in `gateway.db` beside its case
//! replica: each phone's language and opt-out, the SMS outbox, which status
//! of each case its requester was told, and how USSD sessions ended.
//! (Sessions themselves live in memory: see `gateway::Sessions`.)

use guichet_core::sync::protocol::UssdSessionReport;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS phones(phone TEXT PRIMARY KEY, language TEXT, stopped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY, event_key TEXT NOT NULL UNIQUE, phone TEXT NOT NULL,
  text TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  provider TEXT, provider_id TEXT, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_at);
DROP INDEX IF EXISTS outbox_provider_id;
CREATE INDEX IF NOT EXISTS outbox_sent_as ON outbox(provider, provider_id) WHERE provider_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS notified(case_id INTEGER PRIMARY KEY, status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ussd_outcomes(id INTEGER PRIMARY KEY, provider TEXT NOT NULL, session_id TEXT NOT NULL,
  outcome TEXT NOT NULL, flow TEXT NOT NULL, hops INTEGER, at INTEGER NOT NULL,
  language TEXT, service TEXT, unit TEXT);
";

/// Columns added after the first release, for files created before.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("ussd_outcomes", "language TEXT"),
    ("ussd_outcomes", "service TEXT"),
    ("ussd_outcomes", "unit TEXT"),
];

/// A delivery report's message, by the provider's id (index `outbox_sent_as`).
const BY_PROVIDER_ID: &str = "SELECT id FROM outbox WHERE provider = ?1 AND provider_id = ?2";

/// The next messages to send, oldest first.
const DUE_SMS: &str = "SELECT id, event_key, phone, text, status, attempts, provider_id, last_error
    FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2";

/// Where the last USSD session reported to the sync server is kept (meta).
const USSD_REPORTED_UP_TO: &str = "ussd_reported_up_to";

/// What the figures keep of a USSD session when it ends: never the phone.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSummary {
    pub flow: &'static str,
    pub language: String,
    pub service: Option<String>,
    pub unit: Option<String>,
}

/// An SMS's life in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsStatus {
    /// Waiting for its (next) attempt.
    Queued,
    /// Handed to the provider's HTTP API; the answer has not been recorded.
    Sending,
    /// The provider accepted it.
    Sent,
    Delivered,
    /// The provider or the network gave up on it.
    Failed,
    /// The gateway stopped while sending: it may or may not have left.
    /// Not sent again (at most once), unless a delivery report tells. A
    /// reference SMS is queued again instead (at least once).
    Unknown,
}

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Failed => "failed",
            SmsStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<SmsStatus> {
        [
            SmsStatus::Queued,
            SmsStatus::Sending,
            SmsStatus::Sent,
            SmsStatus::Delivered,
            SmsStatus::Failed,
            SmsStatus::Unknown,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutboxSms {
    pub id: i64,
    pub event_key: String,
    pub phone: String,
    pub text: String,
    pub status: SmsStatus,
    pub attempts: u32,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
}

pub struct GatewayDb {
    conn: Connection,
    /// Each phone's language as last read or written (None: not chosen
    /// yet), so that a returning caller's first screen does not query the
    /// file. Emptied when it holds `LANGUAGES_KEPT` phones.
    languages: RefCell<HashMap<String, Option<String>>>,
}

/// About 5 MB of phone numbers: a busy week's callers.
const LANGUAGES_KEPT: usize = 50_000;

type Res<T> = rusqlite::Result<T>;

impl GatewayDb {
    pub fn open(path: &Path) -> Res<GatewayDb> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: every commit survives a crash of the process; a power cut
        // may lose the last few (a language, a session's end), except what
        // `durable` commits, and every commit before one.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Plans made once per statement. Otherwise SQLite plans a statement
        // with a bound LIMIT again on every run, for the value bound: the
        // outbox's query was parsed anew each time it ran (4% of the
        // gateway's CPU at saturation). Without statistics in this file
        // there is nothing else that bound values could improve.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(PIN_TRIES_SCHEMA)?;
        for (table, column) in ADDED_COLUMNS {
            let name = column.split(' ').next().unwrap_or(column);
            let present: bool = conn.query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                [name],
                |r| r.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"))?;
            }
        }
        // Sends interrupted by a stop: they may have left. A reference is
        // sent again (at least once), any other message never twice.
        conn.execute(
            "UPDATE outbox SET status = CASE WHEN event_key LIKE 'created:%' OR event_key LIKE 'consent:%'
               THEN 'queued' ELSE 'unknown' END,
             last_error = 'interrupted while sending' WHERE status = 'sending'",
            [],
        )?;
        Ok(GatewayDb {
            conn,
            languages: RefCell::default(),
        })
    }

    /// Runs `work` as one transaction: one commit for many writes. It
    /// survives a crash of the process; a power cut may undo it, unless a
    /// `durable` commit followed (the write-ahead log is synced in order).
    /// Work started inside a transaction joins it.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &self,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if !self.conn.is_autocommit() {
            return work();
        }
        let tx = self.conn.unchecked_transaction()?;
        let out = work()?;
        tx.commit()?;
        Ok(out)
    }

    /// As `transaction`, and durable once this returns, power cut or not:
    /// the write-ahead log is synced at the commit, and with it every
    /// commit before. For what the gateway promises without any way to
    /// derive it again: the marks of SMS being sent and their results, a
    /// reply queued for a provider that will not call again, an opt-out.
    /// (A filing's reference SMS is derived again from the case store at
    /// start if lost: see `outbox::queue_missing_references`.)
    pub fn durable<T, E: From<rusqlite::Error>>(
        &self,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if !self.conn.is_autocommit() {
            return work();
        }
        // The level can only change between transactions.
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        let done = self.transaction(work);
        // Whatever `work` did is committed by now: its result stands.
        if let Err(e) = self.conn.execute_batch("PRAGMA synchronous = NORMAL") {
            tracing::warn!(error = %e, "gateway.db stays at synchronous=FULL");
        }
        done
    }

    pub fn language(&self, phone: &str) -> Res<Option<String>> {
        if let Some(known) = self.languages.borrow().get(phone) {
            return Ok(known.clone());
        }
        let language = self
            .conn
            .prepare_cached("SELECT language FROM phones WHERE phone = ?1")?
            .query_row([phone], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten();
        if !self.conn.is_autocommit() {
            // Inside a transaction: what it reads may yet be rolled back.
            return Ok(language);
        }
        let mut languages = self.languages.borrow_mut();
        if languages.len() >= LANGUAGES_KEPT {
            languages.clear();
        }
        languages.insert(phone.to_string(), language.clone());
        Ok(language)
    }

    pub fn set_language(&self, phone: &str, language: &str) -> Res<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO phones(phone, language) VALUES (?1, ?2)
                 ON CONFLICT(phone) DO UPDATE SET language = excluded.language",
            )?
            .execute([phone, language])?;
        // Read again from the file next time: this write may yet be rolled
        // back with a transaction around it.
        self.languages.borrow_mut().remove(phone);
        Ok(())
    }

    pub fn stopped(&self, phone: &str) -> Res<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT stopped FROM phones WHERE phone = ?1")?
            .query_row([phone], |r| r.get(0))
            .optional()?
            .unwrap_or(false))
    }

    /// An opt-out (or back in), durable: the citizen is told it holds.
    pub fn set_stopped(&self, phone: &str, stopped: bool) -> Res<()> {
        self.durable(|| {
            self.conn
                .prepare_cached(
                    "INSERT INTO phones(phone, stopped) VALUES (?1, ?2)
                     ON CONFLICT(phone) DO UPDATE SET stopped = excluded.stopped",
                )?
                .execute(params![phone, stopped])?;
            Ok(())
        })
    }

    pub fn record_ussd_outcome(
        &self,
        provider: &str,
        session_id: &str,
        outcome: &str,
        session: &SessionSummary,
        hops: Option<u32>,
        at: u64,
    ) -> Res<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO ussd_outcomes(provider, session_id, outcome, flow, hops, at, language, service, unit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                provider,
                session_id,
                outcome,
                session.flow,
                hops,
                at as i64,
                session.language,
                session.service,
                session.unit
            ])?;
        Ok(())
    }

    /// Session outcomes the sync server has not stored yet, oldest first.
    pub fn unreported_ussd_outcomes(&self, limit: usize) -> Res<Vec<UssdSessionReport>> {
        let after = self.meta(USSD_REPORTED_UP_TO)?.unwrap_or(0);
        self.conn
            .prepare_cached(
                "SELECT id, outcome, flow, language, service, unit, at FROM ussd_outcomes
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(
                params![after as i64, limit as i64],
                UssdSessionReport::from_row,
            )?
            .collect()
    }

    /// The sync server stored every outcome up to `id`.
    pub fn ussd_outcomes_reported(&self, id: u64) -> Res<()> {
        if self.meta(USSD_REPORTED_UP_TO)?.unwrap_or(0) < id {
            self.set_meta(USSD_REPORTED_UP_TO, id)?;
        }
        Ok(())
    }

    /// (outcome, count) over every recorded USSD session.
    pub fn ussd_outcomes(&self) -> Res<Vec<(String, u64)>> {
        self.conn
            .prepare_cached(
                "SELECT outcome, count(*) FROM ussd_outcomes GROUP BY outcome ORDER BY outcome",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect()
    }

    /// Queues an SMS for an event; false if that event already has one.
    /// Durable on its own; inside a transaction, as that transaction.
    pub fn enqueue_sms(&self, event_key: &str, phone: &str, text: &str, now: u64) -> Res<bool> {
        self.durable(|| {
            let inserted = self
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO outbox(event_key, phone, text, status, next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?4)",
                )?
                .execute(params![event_key, phone, text, now as i64])?;
            Ok(inserted == 1)
        })
    }

    /// Whether an SMS is queued (or was sent) for an event.
    pub fn has_sms(&self, event_key: &str) -> Res<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM outbox WHERE event_key = ?1")?
            .query_row([event_key], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }

    /// Takes the SMS due now, marking them as being sent (durably, before
    /// any leaves), in one transaction.
    pub fn take_due_sms(&self, now: u64, limit: usize) -> Res<Vec<OutboxSms>> {
        self.durable(|| {
            let due: Vec<OutboxSms> = self
                .conn
                .prepare_cached(DUE_SMS)?
                .query_map(params![now as i64, limit as i64], outbox_row)?
                .collect::<Res<_>>()?;
            for sms in &due {
                self.set_sms(sms.id, SmsStatus::Sending, None, None, now)?;
            }
            Ok(due)
        })
    }

    pub fn sms(&self, id: i64) -> Res<Option<OutboxSms>> {
        self.conn
            .prepare_cached(
                "SELECT id, event_key, phone, text, status, attempts, provider_id, last_error FROM outbox WHERE id = ?1",
            )?
            .query_row([id], outbox_row)
            .optional()
    }

    pub fn outbox(&self) -> Res<Vec<OutboxSms>> {
        self.conn
            .prepare_cached(
                "SELECT id, event_key, phone, text, status, attempts, provider_id, last_error FROM outbox ORDER BY id",
            )?
            .query_map([], outbox_row)?
            .collect()
    }

    /// (status, count) of the outbox, for metrics.
    pub fn outbox_counts(&self) -> Res<Vec<(String, u64)>> {
        self.conn
            .prepare_cached("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect()
    }

    pub fn sms_sent(
        &self,
        id: i64,
        provider: &str,
        provider_id: Option<&str>,
        now: u64,
    ) -> Res<()> {
        self.conn
            .prepare_cached(
                // A delivery report may beat the provider's answer: never
                // take a message back from delivered or failed to sent.
                "UPDATE outbox SET status = CASE status WHEN 'sending' THEN 'sent' ELSE status END,
                 provider = ?2, provider_id = ?3, attempts = attempts + 1,
                 last_error = NULL, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, provider, provider_id, now as i64])?;
        Ok(())
    }

    /// A failed attempt: try again at `retry_at`, or give up.
    pub fn sms_attempt_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<u64>,
        now: u64,
    ) -> Res<()> {
        let (status, next) = match retry_at {
            Some(at) => ("queued", at),
            None => ("failed", now),
        };
        self.conn
            .prepare_cached(
                "UPDATE outbox SET status = ?2, attempts = attempts + 1, last_error = ?3,
                 next_attempt_at = ?4, updated_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status, error, next as i64, now as i64])?;
        Ok(())
    }

    fn set_sms(
        &self,
        id: i64,
        status: SmsStatus,
        provider_id: Option<&str>,
        error: Option<&str>,
        now: u64,
    ) -> Res<()> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET status = ?2, provider_id = COALESCE(?3, provider_id),
                 last_error = COALESCE(?4, last_error), updated_at = ?5 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), provider_id, error, now as i64])?;
        Ok(())
    }

    /// A delivery report, by our own id (Kannel) or the provider's (Africa's
    /// Talking). Returns whether a message matched.
    pub fn delivery_report(
        &self,
        matching: DlrKey<'_>,
        status: SmsStatus,
        error: Option<&str>,
        now: u64,
    ) -> Res<bool> {
        let id: Option<i64> = match matching {
            DlrKey::Ours(id) => Some(id),
            DlrKey::Provider(provider, pid) => self
                .conn
                .prepare_cached(BY_PROVIDER_ID)?
                .query_row([provider, pid], |r| r.get(0))
                .optional()?,
        };
        let Some(id) = id else { return Ok(false) };
        // Reports arrive out of order ("sent to the SMSC" after "delivered"):
        // a final status stays.
        let current = self.sms(id)?.map(|s| s.status);
        if status == SmsStatus::Sent
            && matches!(current, Some(SmsStatus::Delivered | SmsStatus::Failed))
        {
            return Ok(true);
        }
        self.set_sms(id, status, None, error, now)?;
        Ok(true)
    }

    pub fn meta(&self, key: &str) -> Res<Option<u64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|v| v as u64))
    }

    pub fn set_meta(&self, key: &str, value: u64) -> Res<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?
            .execute(params![key, value as i64])?;
        Ok(())
    }

    pub fn notified_status(&self, case_id: i64) -> Res<Option<i64>> {
        self.conn
            .prepare_cached("SELECT status FROM notified WHERE case_id = ?1")?
            .query_row([case_id], |r| r.get(0))
            .optional()
    }

    pub fn set_notified(&self, case_id: i64, status: i64) -> Res<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO notified(case_id, status) VALUES (?1, ?2)")?
            .execute([case_id, status])?;
        Ok(())
    }
}

/// How a delivery report names its message.
pub enum DlrKey<'a> {
    Ours(i64),
    Provider(&'a str, &'a str),
}

fn outbox_row(r: &rusqlite::Row<'_>) -> Res<OutboxSms> {
    let status: String = r.get(4)?;
    Ok(OutboxSms {
        id: r.get(0)?,
        event_key: r.get(1)?,
        phone: r.get(2)?,
        text: r.get(3)?,
        status: SmsStatus::parse(&status).unwrap_or(SmsStatus::Unknown),
        attempts: r.get::<_, i64>(5)? as u32,
        provider_id: r.get(6)?,
        last_error: r.get(7)?,
    })
}

/// Each mediator's wrong PIN tries, kept across sessions and restarts.
const PIN_TRIES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pin_tries(mediator TEXT PRIMARY KEY, failures INTEGER NOT NULL,
  locked_until INTEGER NOT NULL) WITHOUT ROWID;
";

/// A mediator's wrong PIN tries since their last right one, and until when
/// (ms since the epoch; 0: not) they may not try again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinTries {
    pub failures: u32,
    pub locked_until: u64,
}

impl GatewayDb {
    pub fn pin_tries(&self, mediator: &str) -> Res<PinTries> {
        Ok(self
            .conn
            .prepare_cached("SELECT failures, locked_until FROM pin_tries WHERE mediator = ?1")?
            .query_row([mediator], |r| {
                Ok(PinTries {
                    failures: r.get::<_, i64>(0)? as u32,
                    locked_until: r.get::<_, i64>(1)? as u64,
                })
            })
            .optional()?
            .unwrap_or_default())
    }

    pub fn set_pin_tries(&self, mediator: &str, tries: PinTries) -> Res<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO pin_tries(mediator, failures, locked_until) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                mediator,
                tries.failures as i64,
                tries.locked_until as i64
            ])?;
        Ok(())
    }

    /// The right PIN: the count starts over.
    pub fn clear_pin_tries(&self, mediator: &str) -> Res<()> {
        self.conn
            .prepare_cached("DELETE FROM pin_tries WHERE mediator = ?1")?
            .execute([mediator])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_query_is_planned_once_not_on_every_run() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        for (i, limit) in [(0, 10), (1, 64), (2, 1)] {
            db.enqueue_sms(&format!("created:{i}"), "+221770000001", "hi", 10)
                .unwrap();
            assert_eq!(db.take_due_sms(10, limit).unwrap().len(), 1);
        }
        let statement = db.conn.prepare_cached(DUE_SMS).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
    }

    #[test]
    fn one_sms_per_event_and_an_interrupted_send_is_repeated_only_for_a_reference() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("gateway.db");
        let db = GatewayDb::open(&path).unwrap();
        assert!(db
            .enqueue_sms("status:1:2:3", "+221770000001", "moved", 10)
            .unwrap());
        assert!(!db
            .enqueue_sms("status:1:2:3", "+221770000001", "moved", 11)
            .unwrap());
        assert!(db
            .enqueue_sms("created:2", "+221770000002", "your reference", 10)
            .unwrap());
        let due = db.take_due_sms(10, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(db.take_due_sms(10, 10).unwrap().is_empty(), "taken once");
        drop(db);
        // The gateway stopped before recording the provider's answer.
        let db = GatewayDb::open(&path).unwrap();
        let status = |db: &GatewayDb, id| db.sms(id).unwrap().unwrap().status;
        assert_eq!(status(&db, due[0].id), SmsStatus::Unknown, "at most once");
        assert_eq!(status(&db, due[1].id), SmsStatus::Queued, "at least once");
        let again = db.take_due_sms(1_000, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].event_key, "created:2");
        assert!(db
            .delivery_report(DlrKey::Ours(due[0].id), SmsStatus::Delivered, None, 20)
            .unwrap());
        assert_eq!(status(&db, due[0].id), SmsStatus::Delivered);
    }

    #[test]
    fn a_report_by_the_providers_id_finds_its_message_through_the_index() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        db.enqueue_sms("k", "+221770000001", "x", 0).unwrap();
        let sms = db.take_due_sms(0, 1).unwrap().remove(0);
        db.sms_sent(sms.id, "africastalking", Some("ATXid_1"), 1)
            .unwrap();
        let found = db.delivery_report(
            DlrKey::Provider("africastalking", "ATXid_1"),
            SmsStatus::Delivered,
            None,
            2,
        );
        assert!(found.unwrap());
        assert_eq!(
            db.sms(sms.id).unwrap().unwrap().status,
            SmsStatus::Delivered
        );
        // Reports come for every message sent: never a scan of the outbox.
        let plan: String = db
            .conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {BY_PROVIDER_ID}"),
                ["africastalking", "ATXid_1"],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("outbox_sent_as"), "{plan}");
    }

    #[test]
    fn a_report_that_beats_the_send_or_arrives_late_never_moves_a_message_back() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        db.enqueue_sms("k", "+221770000001", "x", 0).unwrap();
        let sms = db.take_due_sms(0, 1).unwrap().remove(0);
        db.delivery_report(DlrKey::Ours(sms.id), SmsStatus::Delivered, None, 1)
            .unwrap();
        db.sms_sent(sms.id, "kannel", Some("1"), 2).unwrap();
        assert_eq!(
            db.sms(sms.id).unwrap().unwrap().status,
            SmsStatus::Delivered
        );
        db.delivery_report(DlrKey::Ours(sms.id), SmsStatus::Sent, None, 3)
            .unwrap();
        assert_eq!(
            db.sms(sms.id).unwrap().unwrap().status,
            SmsStatus::Delivered
        );
    }

    #[test]
    fn failed_attempts_are_retried_then_given_up() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        db.enqueue_sms("k", "+221770000001", "x", 0).unwrap();
        let sms = db.take_due_sms(0, 1).unwrap().remove(0);
        db.sms_attempt_failed(sms.id, "timeout", Some(500), 1)
            .unwrap();
        assert!(db.take_due_sms(499, 1).unwrap().is_empty());
        let again = db.take_due_sms(500, 1).unwrap().remove(0);
        assert_eq!(again.attempts, 1);
        db.sms_attempt_failed(again.id, "rejected", None, 600)
            .unwrap();
        assert_eq!(db.sms(again.id).unwrap().unwrap().status, SmsStatus::Failed);
    }

    #[test]
    fn preferences_persist() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        db.set_language("+2217", "wo").unwrap();
        db.set_stopped("+2217", true).unwrap();
        assert_eq!(db.language("+2217").unwrap().as_deref(), Some("wo"));
        assert!(db.stopped("+2217").unwrap());
    }

    /// Languages are kept in memory once read; a change, or a change
    /// rolled back, is never hidden by what was kept.
    #[test]
    fn a_kept_language_follows_every_change() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        assert_eq!(db.language("+2217").unwrap(), None, "not chosen yet");
        db.set_language("+2217", "wo").unwrap();
        assert_eq!(db.language("+2217").unwrap().as_deref(), Some("wo"));
        db.set_language("+2217", "ff").unwrap();
        assert_eq!(db.language("+2217").unwrap().as_deref(), Some("ff"));
        let rolled_back = db.transaction(|| {
            db.set_language("+2217", "bm")?;
            assert_eq!(db.language("+2217")?.as_deref(), Some("bm"));
            Err::<(), _>(rusqlite::Error::InvalidQuery)
        });
        assert!(rolled_back.is_err());
        assert_eq!(db.language("+2217").unwrap().as_deref(), Some("ff"));
        let reopened = GatewayDb::open(&dir.path().join("gateway.db")).unwrap();
        assert_eq!(reopened.language("+2217").unwrap().as_deref(), Some("ff"));
    }
}
