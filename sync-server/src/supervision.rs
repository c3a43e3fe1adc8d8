//! What the server keeps for supervision besides cases: how the gateway's
//! USSD sessions ended (`supervision.db`). Reports are stored once per
//! (gateway, session number), so a gateway resending them counts nothing twice.

use guichet_core::sync::protocol::UssdSessionReport;
use guichet_core::ReplicaId;
use rusqlite::{params, Connection};
use std::path::Path;

/// Most reports accepted in one request.
pub const MAX_REPORTS: usize = 5_000;

pub struct SupervisionDb {
    conn: Connection,
}

impl SupervisionDb {
    pub fn open(path: &Path) -> rusqlite::Result<SupervisionDb> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ussd_sessions(gateway INTEGER NOT NULL, id INTEGER NOT NULL,
               outcome TEXT NOT NULL, flow TEXT NOT NULL, language TEXT, service TEXT, unit TEXT,
               ended_at INTEGER NOT NULL, PRIMARY KEY(gateway, id)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS ussd_sessions_ended ON ussd_sessions(ended_at);",
        )?;
        Ok(SupervisionDb { conn })
    }

    /// Stores a gateway's reports, all or none; returns the highest id
    /// stored from that gateway.
    pub fn store_reports(
        &mut self,
        gateway: ReplicaId,
        reports: &[UssdSessionReport],
    ) -> rusqlite::Result<u64> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO ussd_sessions(gateway, id, outcome, flow, language, service, unit, ended_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in reports {
                insert.execute(params![
                    gateway,
                    r.id as i64,
                    r.outcome,
                    r.flow,
                    r.language,
                    r.service,
                    r.unit,
                    r.ended_ms as i64
                ])?;
            }
        }
        let up_to: i64 = tx.query_row(
            "SELECT coalesce(max(id), 0) FROM ussd_sessions WHERE gateway = ?1",
            [gateway],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(up_to as u64)
    }

    /// Sessions that ended in `[from_ms, to_ms)`, as their gateway reported
    /// them (`id` is the gateway's own number for the session).
    pub fn sessions(&self, from_ms: u64, to_ms: u64) -> rusqlite::Result<Vec<UssdSessionReport>> {
        self.conn
            .prepare_cached(
                "SELECT id, outcome, flow, language, service, unit, ended_at FROM ussd_sessions
                 WHERE ended_at >= ?1 AND ended_at < ?2",
            )?
            .query_map(
                params![from_ms as i64, to_ms as i64],
                UssdSessionReport::from_row,
            )?
            .collect()
    }
}

/// A report the server refuses to store: the whole request is refused.
pub fn check_report(r: &UssdSessionReport) -> Result<(), String> {
    let short = |s: &str| !s.is_empty() && s.len() <= 64;
    if !matches!(r.outcome.as_str(), "completed" | "abandoned" | "failed") {
        return Err(format!("session {}: unknown outcome", r.id));
    }
    let optional_ok = [&r.language, &r.service, &r.unit]
        .iter()
        .all(|o| o.as_deref().is_none_or(short));
    if !short(&r.flow) || !optional_ok || r.id == 0 {
        return Err(format!("session {}: malformed", r.id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: u64, outcome: &str) -> UssdSessionReport {
        UssdSessionReport {
            id,
            outcome: outcome.into(),
            flow: "new_request".into(),
            language: Some("wo".into()),
            service: None,
            unit: None,
            ended_ms: 1_000 + id,
        }
    }

    #[test]
    fn reports_are_stored_once_per_gateway_and_session() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut db = SupervisionDb::open(&dir.path().join("supervision.db")).unwrap();
        let batch = vec![report(1, "completed"), report(2, "abandoned")];
        assert_eq!(db.store_reports(3, &batch).unwrap(), 2);
        assert_eq!(db.store_reports(3, &batch).unwrap(), 2, "a resend");
        assert_eq!(db.store_reports(4, &batch[..1]).unwrap(), 1);
        assert_eq!(db.sessions(0, u64::MAX >> 2).unwrap().len(), 3);
        assert_eq!(db.sessions(1_002, 1_003).unwrap().len(), 1);
        assert!(check_report(&report(1, "completed")).is_ok());
        assert!(check_report(&report(1, "exploded")).is_err());
        assert!(check_report(&report(0, "completed")).is_err());
    }
}
