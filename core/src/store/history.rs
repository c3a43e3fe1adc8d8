//! Case histories for supervision: when each case was received, when its
//! status changed, and when events happened, read from the operations.
//!
//! Read through its own read-only connection, so that figures computed on
//! a large store never hold up a sync (WAL readers do not block writers).

use super::schema;
use super::writer::op_from_row;
use crate::error::{Error, Result};
use crate::ids::CaseId;
use crate::model::{Channel, EventKind, Field, Status, Value};
use crate::op::OpBody;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::Path;

/// One case as supervision sees it: no personal data, only what figures
/// count.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseHistory {
    pub id: CaseId,
    pub unit: String,
    pub service: String,
    pub channel: Channel,
    pub language: String,
    pub status: Status,
    pub rating: Option<u8>,
    /// When the case was opened (its creating operation's clock), in ms.
    pub received_ms: u64,
    /// Every status written, the initial one included, by author clock.
    pub status_changes: Vec<(u64, Status)>,
    /// When the rating was written, if rated.
    pub rated_ms: Option<u64>,
    /// Every timeline event, by author clock.
    pub events: Vec<(u64, EventKind)>,
}

impl CaseHistory {
    /// When the case first became resolved or closed, if it did.
    pub fn first_resolved_ms(&self) -> Option<u64> {
        self.status_changes
            .iter()
            .find(|(_, s)| s.is_done())
            .map(|(ms, _)| *ms)
    }

    /// Whether work started again after the case was first resolved.
    pub fn reopened(&self) -> bool {
        let Some(resolved) = self.first_resolved_ms() else {
            return false;
        };
        self.status_changes
            .iter()
            .any(|(ms, s)| *ms > resolved && !s.is_done())
    }
}

pub struct HistoryReader {
    conn: Connection,
}

impl HistoryReader {
    /// Opens a store file read-only. The store must exist and be of the
    /// current schema (opening it with [`super::Store::open`] ensures both).
    pub fn open(path: impl AsRef<Path>) -> Result<HistoryReader> {
        let path = path.as_ref();
        let cannot_open = |reason: String| Error::CannotOpen {
            path: path.to_path_buf(),
            reason,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| cannot_open(e.to_string()))?;
        let version = schema::version(&conn).map_err(|e| cannot_open(e.to_string()))?;
        if version != schema::CURRENT_VERSION {
            return Err(cannot_open(format!(
                "store schema {version}, this build reads {}",
                schema::CURRENT_VERSION
            )));
        }
        Ok(HistoryReader { conn })
    }

    /// The history of every case. Reads in one transaction, so the cases
    /// and their operations are from the same moment.
    pub fn histories(&mut self) -> Result<Vec<CaseHistory>> {
        let tx = self.conn.transaction()?;
        let mut cases = Vec::new();
        let mut index = HashMap::new();
        {
            let mut stmt = tx.prepare(
                "SELECT case_id, unit, service, channel, requester_language, status, rating, created_at
                 FROM cases ORDER BY case_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let damaged = |what: &str| Error::Damaged(format!("case row: {what}"));
                let id = CaseId::from_i64(r.get(0)?).ok_or_else(|| damaged("id"))?;
                let created: i64 = r.get(7)?;
                index.insert(id, cases.len());
                cases.push(CaseHistory {
                    id,
                    unit: r.get(1)?,
                    service: r.get(2)?,
                    channel: Channel::from_code(r.get(3)?).ok_or_else(|| damaged("channel"))?,
                    language: r.get(4)?,
                    status: Status::from_code(r.get(5)?).ok_or_else(|| damaged("status"))?,
                    rating: r.get::<_, Option<i64>>(6)?.map(|r| r as u8),
                    received_ms: crate::Stamp(created as u64).millis(),
                    status_changes: Vec::new(),
                    rated_ms: None,
                    events: Vec::new(),
                });
            }
        }
        // Arrival order, then each case's lists sorted by clock: cheaper than
        // sorting every operation.
        let mut stmt = tx.prepare("SELECT replica, counter, case_id, stamp, body FROM ops")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let body: Vec<u8> = r.get(4)?;
            let op = op_from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, &body)?;
            let Some(&i) = index.get(&op.case) else {
                continue;
            };
            let case = &mut cases[i];
            let ms = op.stamp.millis();
            match &op.body {
                OpBody::Create { fields, .. } => {
                    for (field, value) in fields {
                        if let (Field::Status, Value::Int(code)) = (field, value) {
                            case.status_changes
                                .extend(Status::from_code(*code).map(|s| (ms, s)));
                        }
                    }
                }
                OpBody::Update(writes) => {
                    for write in writes {
                        match (write.field, &write.value) {
                            (Field::Status, Value::Int(code)) => {
                                case.status_changes
                                    .extend(Status::from_code(*code).map(|s| (ms, s)));
                            }
                            (Field::Rating, Value::Int(_)) => case.rated_ms = Some(ms),
                            _ => {}
                        }
                    }
                }
                OpBody::Event { kind, .. } => case.events.push((ms, *kind)),
            }
        }
        for case in &mut cases {
            case.status_changes.sort_by_key(|(ms, s)| (*ms, s.code()));
            case.events.sort_by_key(|(ms, kind)| (*ms, kind.code()));
        }
        Ok(cases)
    }
}
