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
use crate::op::{Op, OpBody};
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

/// Keeps every case's history in memory and, at each call, reads only the
/// operations that arrived since the last one (by arrival position), so a
/// supervisor's repeated views cost what changed, not the whole store.
pub struct HistoryReader {
    conn: Connection,
    cases: Vec<CaseHistory>,
    index: HashMap<CaseId, usize>,
    /// Arrival position (`ops.seq`) of the last operation read.
    read_up_to: i64,
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
        Ok(HistoryReader {
            conn,
            cases: Vec::new(),
            index: HashMap::new(),
            read_up_to: 0,
        })
    }

    /// The history of every case, as the store holds it now. Reads in one
    /// transaction, so the cases and their operations are from the same
    /// moment; a failed read leaves what was read before untouched.
    pub fn histories(&mut self) -> Result<&[CaseHistory]> {
        if self.cases.is_empty() {
            self.read_all()?;
        } else {
            self.read_new()?;
        }
        Ok(&self.cases)
    }

    /// The first read: every case row, then every operation, streamed.
    fn read_all(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut cases = Vec::new();
        let mut index = HashMap::new();
        let mut read_up_to = 0;
        {
            let mut stmt = tx.prepare(&format!("{CASE_COLUMNS} ORDER BY case_id"))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let case = case_row(r)?;
                index.insert(case.id, cases.len());
                cases.push(case);
            }
            let mut stmt = tx.prepare(OPS_AFTER)?;
            let mut rows = stmt.query([0])?;
            while let Some(r) = rows.next()? {
                let (seq, op) = op_row(r)?;
                read_up_to = seq;
                if let Some(&i) = index.get(&op.case) {
                    record(&mut cases[i], &op);
                }
            }
        }
        for case in &mut cases {
            sort(case);
        }
        (self.cases, self.index, self.read_up_to) = (cases, index, read_up_to);
        Ok(())
    }

    /// Later reads: the operations that arrived since, and the current
    /// values of the cases they touch. Nothing changes if a read fails.
    fn read_new(&mut self) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut new_ops = Vec::new();
        {
            let mut stmt = tx.prepare_cached(OPS_AFTER)?;
            let mut rows = stmt.query([self.read_up_to])?;
            while let Some(r) = rows.next()? {
                new_ops.push(op_row(r)?);
            }
        }
        let mut touched: Vec<CaseId> = new_ops.iter().map(|(_, op)| op.case).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut fresh = Vec::with_capacity(touched.len());
        {
            let mut stmt = tx.prepare_cached(&format!("{CASE_COLUMNS} WHERE case_id = ?1"))?;
            for id in &touched {
                let mut found = stmt.query([id.as_i64()])?;
                if let Some(r) = found.next()? {
                    fresh.push(case_row(r)?);
                }
            }
        }
        drop(tx);
        for row in fresh {
            match self.index.get(&row.id) {
                Some(&i) => {
                    let case = &mut self.cases[i];
                    case.unit = row.unit;
                    case.service = row.service;
                    case.language = row.language;
                    case.status = row.status;
                    case.rating = row.rating;
                }
                None => {
                    self.index.insert(row.id, self.cases.len());
                    self.cases.push(row);
                }
            }
        }
        for (seq, op) in &new_ops {
            self.read_up_to = *seq;
            if let Some(&i) = self.index.get(&op.case) {
                record(&mut self.cases[i], op);
            }
        }
        for id in &touched {
            if let Some(&i) = self.index.get(id) {
                sort(&mut self.cases[i]);
            }
        }
        Ok(())
    }
}

const CASE_COLUMNS: &str = "SELECT case_id, unit, service, channel, requester_language, status, rating, created_at FROM cases";
const OPS_AFTER: &str =
    "SELECT seq, replica, counter, case_id, stamp, body FROM ops WHERE seq > ?1 ORDER BY seq";

fn op_row(r: &rusqlite::Row<'_>) -> Result<(i64, Op)> {
    let body: Vec<u8> = r.get(5)?;
    let op = op_from_row(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, &body)?;
    Ok((r.get(0)?, op))
}

/// Lists in clock order (operations arrive in causal, not clock, order).
fn sort(case: &mut CaseHistory) {
    case.status_changes.sort_by_key(|(ms, s)| (*ms, s.code()));
    case.events.sort_by_key(|(ms, kind)| (*ms, kind.code()));
}

/// A case's current values, its lists still empty.
fn case_row(r: &rusqlite::Row<'_>) -> Result<CaseHistory> {
    let damaged = |what: &str| Error::Damaged(format!("case row: {what}"));
    let id = CaseId::from_i64(r.get(0)?).ok_or_else(|| damaged("id"))?;
    let created: i64 = r.get(7)?;
    Ok(CaseHistory {
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
    })
}

/// What one operation adds to its case's history.
fn record(case: &mut CaseHistory, op: &Op) {
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
                    (Field::Rating, Value::Int(_)) => {
                        case.rated_ms = Some(case.rated_ms.map_or(ms, |r| r.max(ms)))
                    }
                    _ => {}
                }
            }
        }
        OpBody::Event { kind, .. } => case.events.push((ms, *kind)),
    }
}
