//! The one path by which anything changes a store: local edits are turned
//! into operations and integrated exactly like operations from peers.

use super::{set_meta, ReplicaState};
use crate::error::{BatchError, Error, Result};
use crate::hlc::Stamp;
use crate::ids::{CaseId, Dot, ReplicaId};
use crate::merge::{self, CaseHeads, Head};
use crate::model::{Channel, EventKind, Field, NewCase, Status, Value};
use crate::op::{FieldWrite, Op, OpBody};
use crate::reference;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use std::collections::{BTreeSet, HashMap};

/// Makes and integrates operations inside one transaction.
pub struct Writer<'c> {
    conn: &'c Connection,
    replica: ReplicaId,
    state: ReplicaState,
    now: u64,
    rows: HashMap<CaseId, CaseRow>,
    authors: BTreeSet<ReplicaId>,
    /// Operations integrated by this transaction.
    integrated: usize,
}

impl<'c> Writer<'c> {
    pub(super) fn new(
        conn: &'c Connection,
        replica: ReplicaId,
        state: ReplicaState,
        now: u64,
    ) -> Self {
        Writer {
            conn,
            replica,
            state,
            now,
            rows: HashMap::new(),
            authors: BTreeSet::new(),
            integrated: 0,
        }
    }

    /// Opens a new case and returns its id. Its reference is made here,
    /// from this replica's own sequence.
    pub fn create_case(&mut self, new: &NewCase) -> Result<CaseId> {
        let fields = new.fields();
        for (field, value) in &fields {
            field.check(value)?;
        }
        if !new.status.can_start_in() {
            return Err(Error::InvalidInput(format!(
                "a case cannot start as {}",
                new.status
            )));
        }
        if (new.channel == Channel::Mediator) != new.mediator.is_some() {
            return Err(Error::InvalidInput(
                "a case names a mediator exactly when it came through one".into(),
            ));
        }
        let reference = reference::make(self.replica, self.state.next_reference);
        self.state.next_reference += 1;
        let dot = self.next_dot()?;
        let case =
            CaseId::from_dot(dot).ok_or_else(|| Error::InvalidInput("counter exhausted".into()))?;
        self.author(
            case,
            OpBody::Create {
                reference,
                channel: new.channel,
                fields,
            },
        )?;
        Ok(case)
    }

    /// Writes fields of a case. A value equal to the one shown, on a field
    /// without conflict, is not written. Writing a field in conflict settles
    /// it. Returns whether anything was written.
    pub fn update(&mut self, case: CaseId, changes: &[(Field, Value)]) -> Result<bool> {
        self.row(case)?;
        self.refuse_if_leaving(case)?;
        let row = &self.rows[&case];
        let creation = row.creation_head();
        let mut writes = Vec::with_capacity(changes.len());
        for (i, (field, value)) in changes.iter().enumerate() {
            field.check(value)?;
            if changes[..i].iter().any(|(f, _)| f == field) {
                return Err(Error::InvalidInput(format!("{field} is written twice")));
            }
            let heads = row.heads.of(*field, creation);
            if heads.len() == 1 && row.value(*field) == value {
                continue;
            }
            if *field == Field::Status {
                let to = status_of(value)?;
                let from = head_statuses(self.conn, row, &heads)?;
                if !merge::status_write_is_valid(&from, to) {
                    return Err(Error::InvalidTransition {
                        from: row.status(),
                        to,
                    });
                }
            }
            writes.push(FieldWrite {
                field: *field,
                value: value.clone(),
                supersedes: heads.iter().map(|h| h.dot).collect(),
            });
        }
        let rated = writes
            .iter()
            .any(|w| w.field == Field::Rating && w.value != Value::Null);
        if rated {
            let status = match writes.iter().find(|w| w.field == Field::Status) {
                Some(w) => status_of(&w.value)?,
                None => row.status(),
            };
            if !status.is_done() {
                return Err(Error::InvalidInput(
                    "a case is rated once it is resolved".into(),
                ));
            }
        }
        if writes.is_empty() {
            return Ok(false);
        }
        self.author(case, OpBody::Update(writes))?;
        Ok(true)
    }

    /// Moves a case along the workflow.
    pub fn change_status(&mut self, case: CaseId, to: Status) -> Result<()> {
        let row = self.row(case)?;
        let shown = row.status();
        if shown == to && !row.heads.conflicts().any(|(f, _)| f == Field::Status) {
            return Err(Error::InvalidTransition { from: shown, to });
        }
        self.update(case, &[(Field::Status, Value::Int(to.code() as i64))])?;
        Ok(())
    }

    /// The citizen's satisfaction, 1 to 5, once the case is resolved.
    pub fn rate(&mut self, case: CaseId, rating: u8) -> Result<()> {
        if !self.row(case)?.status().is_done() {
            return Err(Error::InvalidInput(
                "a case is rated once it is resolved".into(),
            ));
        }
        self.update(case, &[(Field::Rating, Value::Int(rating as i64))])?;
        Ok(())
    }

    /// Settles a conflict on `field` by writing the value to keep.
    pub fn resolve_conflict(&mut self, case: CaseId, field: Field, value: Value) -> Result<()> {
        self.update(case, &[(field, value)])?;
        Ok(())
    }

    /// Adds a note, contact, visit or complaint to a case's timeline.
    pub fn add_event(&mut self, case: CaseId, kind: EventKind, text: &str) -> Result<()> {
        crate::model::check_event_text(text)?;
        self.row(case)?;
        self.refuse_if_leaving(case)?;
        self.author(
            case,
            OpBody::Event {
                kind,
                text: text.to_string(),
            },
        )
    }

    /// Integrates an operation from a peer. Returns false for one already
    /// held (identical), an error for anything inconsistent.
    pub(super) fn receive(&mut self, op: &Op) -> Result<bool> {
        op.check()?;
        let held = self.state.vv.get(&op.dot.actor);
        if op.dot.counter <= held {
            let stored = self.stored_op(op.dot)?;
            return match stored {
                Some(stored) if stored == *op => Ok(false),
                _ => Err(BatchError::ConflictingDuplicate(op.dot).into()),
            };
        }
        self.refuse_gap(op)?;
        if let Some(missing) = op
            .dependencies()
            .find(|d| self.state.vv.get(&d.actor) < d.counter)
        {
            return Err(BatchError::MissingDependency {
                dot: op.dot,
                missing,
            }
            .into());
        }
        self.state.hlc.observe(op.stamp, self.now);
        self.integrate(op)?;
        self.state.vv.dots.insert(op.dot.actor, op.dot.counter);
        Ok(true)
    }

    /// Integrates an operation from the sync server to a device that holds
    /// only its scope: other authors' counters may have gaps, so presence
    /// and dependencies are looked up rather than read off the version
    /// vector. Returns false for one already held.
    pub(super) fn receive_scoped(&mut self, op: &Op) -> Result<bool> {
        op.check()?;
        if let Some(stored) = self.stored_op(op.dot)? {
            return if stored == *op {
                Ok(false)
            } else {
                Err(BatchError::ConflictingDuplicate(op.dot).into())
            };
        }
        if op.dot.actor == self.replica && op.dot.counter > self.state.vv.get(&self.replica) {
            return Err(
                BatchError::invalid(op.dot, "claims to be ours but we never wrote it").into(),
            );
        }
        for dep in op.dependencies() {
            if !self.holds(dep)? {
                return Err(BatchError::MissingDependency {
                    dot: op.dot,
                    missing: dep,
                }
                .into());
            }
        }
        self.state.hlc.observe(op.stamp, self.now);
        self.integrate(op)?;
        // The version vector counts the unbroken run from 1.
        let mut held = self.state.vv.get(&op.dot.actor);
        while held < op.dot.counter && self.holds(Dot::new(op.dot.actor, held + 1))? {
            held += 1;
        }
        self.state.vv.dots.insert(op.dot.actor, held);
        Ok(true)
    }

    /// Server side: keeps an operation a device sent without applying it
    /// (quarantine). It counts as received, so the device moves past it;
    /// the caller has checked it is not a duplicate.
    pub(super) fn hold_back(&mut self, device: ReplicaId, op: &Op, reason: &str) -> Result<()> {
        self.refuse_gap(op)?;
        let body = postcard::to_stdvec(&op.body).expect("encoding to memory cannot fail");
        self.conn
            .prepare_cached(
                "INSERT INTO quarantine(device, replica, counter, case_id, stamp, body, reason, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                device,
                op.dot.actor,
                op.dot.counter as i64,
                op.case.as_i64(),
                op.stamp.0 as i64,
                body,
                reason,
                self.now as i64
            ])?;
        self.state.vv.dots.insert(op.dot.actor, op.dot.counter);
        self.authors.insert(op.dot.actor);
        Ok(())
    }

    /// An operation must follow its author's last one received.
    fn refuse_gap(&self, op: &Op) -> Result<()> {
        let held = self.state.vv.get(&op.dot.actor);
        if op.dot.counter != held + 1 {
            return Err(BatchError::Gap {
                replica: op.dot.actor,
                have: held,
                got: op.dot.counter,
            }
            .into());
        }
        Ok(())
    }

    /// The highest counter of `replica` this store counts as received.
    pub(super) fn held_counter(&self, replica: ReplicaId) -> u64 {
        self.state.vv.get(&replica)
    }

    /// The operation `dot` as quarantine holds it, if it does.
    pub(super) fn quarantined_op(&self, dot: Dot) -> Result<Option<Op>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT case_id, stamp, body FROM quarantine WHERE replica = ?1 AND counter = ?2",
            )?
            .query_row(params![dot.actor, dot.counter as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?))
            })
            .optional()?;
        row.map(|(case, stamp, body)| {
            op_from_row(dot.actor, dot.counter as i64, case, stamp, &body)
        })
        .transpose()
    }

    /// Device side: a case that left this device's units takes no new
    /// local writes (the server would refuse them); it goes once its
    /// earlier edits are synced.
    fn refuse_if_leaving(&self, case: CaseId) -> Result<()> {
        let leaving = self
            .conn
            .prepare_cached("SELECT 1 FROM leaving_cases WHERE case_id = ?1")?
            .query_row([case.as_i64()], |_| Ok(()))
            .optional()?
            .is_some();
        if leaving {
            return Err(Error::InvalidInput(format!(
                "case {case} has moved to a unit this device does not serve"
            )));
        }
        Ok(())
    }

    fn holds(&self, dot: Dot) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM ops WHERE replica = ?1 AND counter = ?2")?
            .query_row(params![dot.actor, dot.counter as i64], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Removes a case that left this device's scope: its row, its text index
    /// entry and its operations. Only once the server holds every local edit
    /// to it (the caller checks).
    pub(super) fn purge_case(&mut self, case: CaseId) -> Result<()> {
        self.rows.remove(&case);
        self.update_text_index(FTS_REMOVE, &[case.as_i64()])?;
        for sql in [
            "DELETE FROM cases WHERE case_id = ?1",
            "DELETE FROM ops WHERE case_id = ?1",
            "DELETE FROM leaving_cases WHERE case_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([case.as_i64()])?;
        }
        Ok(())
    }

    /// Whether this replica wrote to `case` after its counter `acked`.
    pub(super) fn has_own_ops_after(&self, case: CaseId, acked: u64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM ops WHERE replica = ?1 AND counter > ?2 AND case_id = ?3 LIMIT 1",
            )?
            .query_row(params![self.replica, acked as i64, case.as_i64()], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn next_dot(&self) -> Result<Dot> {
        let dot = Dot::new(self.replica, self.state.vv.get(&self.replica) + 1);
        if crate::ids::valid_dot(dot) {
            Ok(dot)
        } else {
            Err(Error::InvalidInput(
                "this replica's counter is exhausted".into(),
            ))
        }
    }

    fn author(&mut self, case: CaseId, body: OpBody) -> Result<()> {
        let op = Op {
            dot: self.next_dot()?,
            stamp: self.state.hlc.tick(self.now),
            case,
            body,
        };
        // Local operations pass the checks every peer will make: one that
        // a peer would refuse would block this replica's sync for good.
        op.check().map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.integrate(&op)?;
        self.state.vv.dots.insert(op.dot.actor, op.dot.counter);
        Ok(())
    }

    fn integrate(&mut self, op: &Op) -> Result<()> {
        let body = postcard::to_stdvec(&op.body).expect("encoding to memory cannot fail");
        self.conn
            .prepare_cached(
                "INSERT INTO ops(replica, counter, case_id, stamp, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                op.dot.actor,
                op.dot.counter as i64,
                op.case.as_i64(),
                op.stamp.0 as i64,
                body
            ])?;
        self.authors.insert(op.dot.actor);
        self.integrated += 1;
        let head = Head {
            dot: op.dot,
            stamp: op.stamp,
        };
        match &op.body {
            OpBody::Create {
                reference,
                channel,
                fields,
            } => {
                let row = CaseRow::created(op.case, reference.clone(), *channel, op.stamp, fields);
                self.rows.insert(op.case, row);
            }
            OpBody::Update(writes) => {
                self.row(op.case)?;
                let conn = self.conn;
                let row = self.rows.get_mut(&op.case).expect("loaded above");
                for write in writes {
                    merge_write(conn, row, write, head)?;
                }
                row.touch(op.stamp);
            }
            OpBody::Event { .. } => {
                self.row(op.case)?;
                self.rows
                    .get_mut(&op.case)
                    .expect("loaded above")
                    .touch(op.stamp);
            }
        }
        Ok(())
    }

    /// The reference of a case, as this transaction sees it.
    pub fn reference(&mut self, case: CaseId) -> Result<String> {
        Ok(self.row(case)?.reference.clone())
    }

    /// The case's row, from this transaction's cache or from the table.
    fn row(&mut self, case: CaseId) -> Result<&CaseRow> {
        if !self.rows.contains_key(&case) {
            let row = CaseRow::load(self.conn, case)?
                .ok_or_else(|| Error::NotFound(format!("case {case}")))?;
            self.rows.insert(case, row);
        }
        Ok(&self.rows[&case])
    }

    pub(super) fn conn(&self) -> &'c Connection {
        self.conn
    }

    fn stored_op(&self, dot: Dot) -> Result<Option<Op>> {
        load_op(self.conn, dot)
    }

    /// Writes back every touched row, their text index entries and the
    /// replica's counters; returns the new state and how many operations
    /// were integrated.
    pub(super) fn finish(self) -> Result<(ReplicaState, usize)> {
        let mut reindex = Vec::new();
        let mut stale = Vec::new();
        for row in self.rows.values() {
            if row.is_new {
                reindex.push(row.id.as_i64());
            } else if row.dirty_fields & TEXT_INDEXED != 0 {
                reindex.push(row.id.as_i64());
                stale.push(row.id.as_i64());
            }
        }
        self.update_text_index(FTS_REMOVE, &stale)?;
        for row in self.rows.values() {
            row.save(self.conn)?;
        }
        self.update_text_index(FTS_ADD, &reindex)?;
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO replicas(replica, counter) VALUES (?1, ?2)")?;
        for replica in &self.authors {
            stmt.execute(params![replica, self.state.vv.get(replica) as i64])?;
        }
        set_meta(self.conn, "hlc", self.state.hlc.last().0 as i64)?;
        set_meta(
            self.conn,
            "next_reference",
            self.state.next_reference as i64,
        )?;
        Ok((self.state, self.integrated))
    }
}

/// Fields in the `cases_fts` index.
const TEXT_INDEXED: u16 =
    1 << Field::RequesterName as u16 | 1 << Field::Locality as u16 | 1 << Field::Description as u16;

const FTS_REMOVE: &str =
    "INSERT INTO cases_fts(cases_fts, rowid, requester_name, locality, description)
    SELECT 'delete', case_id, requester_name, locality, description FROM cases
    WHERE case_id IN (SELECT value FROM json_each(?1))";

const FTS_ADD: &str = "INSERT INTO cases_fts(rowid, requester_name, locality, description)
    SELECT case_id, requester_name, locality, description FROM cases
    WHERE case_id IN (SELECT value FROM json_each(?1))";

impl Writer<'_> {
    /// Runs one text-index statement for a whole set of cases (FTS5 flushes
    /// its pending work at every statement, so one statement per
    /// transaction), if this replica keeps the index.
    fn update_text_index(&self, sql: &str, ids: &[i64]) -> Result<()> {
        if ids.is_empty() || !self.state.text_index {
            return Ok(());
        }
        let list = format!(
            "[{}]",
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        );
        self.conn.prepare_cached(sql)?.execute([list])?;
        Ok(())
    }
}

/// Applies one field write to a case row: the merge rule, then the shown
/// value and the status check.
fn merge_write(conn: &Connection, row: &mut CaseRow, write: &FieldWrite, head: Head) -> Result<()> {
    let field = write.field;
    let mut heads = row.heads.of(field, row.creation_head());
    let shown_before = heads[0].dot;
    let status_before = row.status();
    merge::integrate(&mut heads, head, &write.supersedes);
    let shown = heads[0].dot;
    if shown == head.dot {
        row.set(field, write.value.clone());
    } else if shown != shown_before {
        let value = op_value(conn, shown, field)?;
        row.set(field, value);
    }
    let mut anomaly = false;
    if field == Field::Status {
        let to = status_of(&write.value)?;
        let mut from = Vec::with_capacity(write.supersedes.len());
        for dot in &write.supersedes {
            if *dot == shown_before {
                from.push(status_before);
            } else if let Value::Int(code) = op_value(conn, *dot, field)? {
                from.extend(Status::from_code(code));
            }
        }
        anomaly = !merge::status_write_is_valid(&from, to);
    }
    row.heads.set(field, heads);
    if anomaly {
        row.heads.mark_anomaly(head.dot);
    }
    row.heads_dirty = true;
    Ok(())
}

/// Statuses currently shown or in conflict.
fn head_statuses(conn: &Connection, row: &CaseRow, heads: &[Head]) -> Result<Vec<Status>> {
    let mut statuses = vec![row.status()];
    for head in &heads[1..] {
        if let Value::Int(code) = op_value(conn, head.dot, Field::Status)? {
            statuses.extend(Status::from_code(code));
        }
    }
    Ok(statuses)
}

fn status_of(value: &Value) -> Result<Status> {
    value
        .as_int()
        .and_then(Status::from_code)
        .ok_or_else(|| Error::InvalidInput("not a status".into()))
}

/// The value operation `dot` gave `field` (Null if it did not write it).
pub(crate) fn op_value(conn: &Connection, dot: Dot, field: Field) -> Result<Value> {
    Ok(load_op(conn, dot)?
        .and_then(|op| op.value_of(field).cloned())
        .unwrap_or(Value::Null))
}

pub(crate) fn load_op(conn: &Connection, dot: Dot) -> Result<Option<Op>> {
    let mut stmt = conn.prepare_cached(
        "SELECT replica, counter, case_id, stamp, body FROM ops WHERE replica = ?1 AND counter = ?2",
    )?;
    let row = stmt
        .query_row(params![dot.actor, dot.counter as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })
        .optional()?;
    row.map(|(a, c, case, s, body)| op_from_row(a, c, case, s, &body))
        .transpose()
}

/// Rebuilds an operation from its row.
pub(crate) fn op_from_row(
    replica: u32,
    counter: i64,
    case: i64,
    stamp: i64,
    body: &[u8],
) -> Result<Op> {
    let damaged = |why: String| Error::Damaged(format!("operation {replica}-{counter}: {why}"));
    let case = CaseId::from_i64(case).ok_or_else(|| damaged("bad case id".into()))?;
    let body = postcard::from_bytes(body).map_err(|e| damaged(e.to_string()))?;
    Ok(Op {
        dot: Dot::new(replica, counter as u64),
        stamp: Stamp(stamp as u64),
        case,
        body,
    })
}

/// The current state of one case, as kept in the `cases` table.
pub(crate) struct CaseRow {
    pub id: CaseId,
    pub reference: String,
    pub channel: Channel,
    pub created_at: Stamp,
    pub updated_at: Stamp,
    /// Indexed by `Field::code`.
    pub values: Vec<Value>,
    pub heads: CaseHeads,
    is_new: bool,
    dirty_fields: u16,
    heads_dirty: bool,
    touched: bool,
}

/// Columns in `Field::code` order; the column names are the field names.
pub(crate) const FIELD_COLUMNS: &str = "service, requester_phone, requester_name, requester_language, locality, mediator, unit, assignee, priority, description, status, rating";

impl CaseRow {
    fn created(
        id: CaseId,
        reference: String,
        channel: Channel,
        stamp: Stamp,
        fields: &[(Field, Value)],
    ) -> CaseRow {
        let mut values = vec![Value::Null; Field::ALL.len()];
        for (field, value) in fields {
            values[field.code() as usize] = value.clone();
        }
        CaseRow {
            id,
            reference,
            channel,
            created_at: stamp,
            updated_at: stamp,
            values,
            heads: CaseHeads::default(),
            is_new: true,
            dirty_fields: 0,
            heads_dirty: false,
            touched: false,
        }
    }

    pub(crate) fn load(conn: &Connection, id: CaseId) -> Result<Option<CaseRow>> {
        let sql = format!(
            "SELECT reference, channel, created_at, updated_at, heads, {FIELD_COLUMNS} FROM cases WHERE case_id = ?1"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let row = stmt
            .query_row([id.as_i64()], |r| {
                let mut values = Vec::with_capacity(Field::ALL.len());
                for i in 0..Field::ALL.len() {
                    values.push(value_from_sql(r.get_ref(5 + i)?));
                }
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    values,
                ))
            })
            .optional()?;
        let Some((reference, channel, created, updated, heads, values)) = row else {
            return Ok(None);
        };
        let damaged = |why: &str| Error::Damaged(format!("case {id}: {why}"));
        let heads = match heads {
            Some(blob) => postcard::from_bytes(&blob).map_err(|_| damaged("unreadable heads"))?,
            None => CaseHeads::default(),
        };
        Ok(Some(CaseRow {
            id,
            reference,
            channel: Channel::from_code(channel).ok_or_else(|| damaged("unknown channel"))?,
            created_at: Stamp(created as u64),
            updated_at: Stamp(updated as u64),
            values,
            heads,
            is_new: false,
            dirty_fields: 0,
            heads_dirty: false,
            touched: false,
        }))
    }

    pub(crate) fn creation_head(&self) -> Head {
        Head {
            dot: self.id.dot(),
            stamp: self.created_at,
        }
    }

    pub(crate) fn value(&self, field: Field) -> &Value {
        &self.values[field.code() as usize]
    }

    pub(crate) fn status(&self) -> Status {
        self.value(Field::Status)
            .as_int()
            .and_then(Status::from_code)
            .unwrap_or(Status::Received)
    }

    fn set(&mut self, field: Field, value: Value) {
        self.values[field.code() as usize] = value;
        self.dirty_fields |= 1 << field.code();
    }

    fn touch(&mut self, stamp: Stamp) {
        if stamp > self.updated_at {
            self.updated_at = stamp;
            self.touched = true;
        }
    }

    fn heads_blob(&self) -> Option<Vec<u8>> {
        (!self.heads.is_empty())
            .then(|| postcard::to_stdvec(&self.heads).expect("encoding to memory cannot fail"))
    }

    /// Inserts or updates the row, writing only the columns that changed so
    /// that SQLite leaves the other indexes alone.
    fn save(&self, conn: &Connection) -> Result<()> {
        if self.is_new {
            let sql = format!(
                "INSERT INTO cases(case_id, reference, channel, created_at, updated_at, heads, needs_attention, {FIELD_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let head: [&dyn ToSql; 7] = [
                &self.id.as_i64(),
                &self.reference,
                &self.channel.code(),
                &(self.created_at.0 as i64),
                &(self.updated_at.0 as i64),
                &self.heads_blob(),
                &self.heads.needs_attention(),
            ];
            let all: Vec<&dyn ToSql> = head
                .into_iter()
                .chain(self.values.iter().map(|v| v as &dyn ToSql))
                .collect();
            return match stmt.execute(all.as_slice()) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(BatchError::invalid(
                        self.id.dot(),
                        "its reference is already used by another case",
                    )
                    .into())
                }
                other => other.map(|_| ()).map_err(Into::into),
            };
        }
        if self.dirty_fields == 0 && !self.heads_dirty && !self.touched {
            return Ok(());
        }
        let updated = self.updated_at.0 as i64;
        let blob = self.heads_blob();
        let attention = self.heads.needs_attention();
        let mut sql = String::from("UPDATE cases SET updated_at = ?1");
        let mut args: Vec<&dyn ToSql> = vec![&updated];
        if self.heads_dirty {
            sql.push_str(", heads = ?2, needs_attention = ?3");
            args.push(&blob);
            args.push(&attention);
        }
        for field in Field::ALL {
            if self.dirty_fields & (1 << field.code()) != 0 {
                args.push(&self.values[field.code() as usize]);
                sql.push_str(&format!(", {} = ?{}", field.as_str(), args.len()));
            }
        }
        args.push(&self.id);
        sql.push_str(&format!(" WHERE case_id = ?{}", args.len()));
        conn.prepare_cached(&sql)?.execute(args.as_slice())?;
        Ok(())
    }
}

impl ToSql for CaseId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_i64()))
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
        })
    }
}

pub(crate) fn value_from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        _ => Value::Null,
    }
}
