//! Scoped sync between the sync server and devices that hold only the cases
//! of their units.
//!
//! Server side, a device's position is a cursor in the server's arrival
//! order (`ops.seq`). Each exchange sends the operations after the cursor
//! whose case is in the device's scope now; a case that enters the scope
//! comes with its whole history, and a case that leaves it is named in
//! `removed`. `peer_cases` remembers which device was given what, and both
//! the history and the removal are sent again until the device's cursor
//! shows it received them, so a lost response costs a resend, never a gap.

use super::writer::{op_from_row, Writer};
use super::Store;
use crate::error::{BatchError, Result};
use crate::ids::{CaseId, Dot, ReplicaId};
use crate::model::Field;
use crate::op::{Op, OpBody};
use crate::sync::protocol::{
    DeviceReport, QuarantineReport, ScopeToken, SyncRequest, SyncResponse, MAX_REPORT_TEXT,
};
use crate::ApplyOutcome;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Which cases a device may read and write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every case (the USSD gateway's intake role, supervisors).
    All,
    /// The cases of these units.
    Units(Vec<String>),
}

impl Scope {
    pub fn contains(&self, unit: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Units(units) => units.iter().any(|u| u == unit),
        }
    }

    /// A stable text form (units sorted), to remember what a device holds.
    fn to_text(&self) -> String {
        match self {
            Scope::All => "*".into(),
            Scope::Units(units) => {
                let mut units = units.clone();
                units.sort();
                units.dedup();
                units.join("\n")
            }
        }
    }

    fn from_text(text: &str) -> Scope {
        match text {
            "*" => Scope::All,
            "" => Scope::Units(Vec::new()),
            units => Scope::Units(units.split('\n').map(str::to_string).collect()),
        }
    }

    /// The units of both.
    fn intersection(&self, other: &Scope) -> Scope {
        match (self, other) {
            (Scope::All, s) | (s, Scope::All) => s.clone(),
            (Scope::Units(a), b) => {
                Scope::Units(a.iter().filter(|u| b.contains(u)).cloned().collect())
            }
        }
    }

    /// Names the scope in a `ScopeToken`: FNV-1a of its text form, the
    /// same in every process and release.
    fn token(&self) -> u64 {
        self.to_text().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

/// Where the time of one exchange went, for logs and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeTimes {
    /// Checking and applying the device's operations.
    pub merging: Duration,
    /// Gathering what the device lacks.
    pub answering: Duration,
}

/// The next part of a device's scope, for one sync response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerChanges {
    pub ops: Vec<Op>,
    pub cursor: u64,
    pub more: bool,
    pub removed: Vec<CaseId>,
    /// Where the device stands in taking its scope.
    pub scope: Option<ScopeToken>,
}

/// Rows of the arrival order read per query while scanning for a device.
const SCAN_CHUNK: i64 = 2_000;
/// Rows scanned per response at most, so that a device with a small scope
/// on a large server still gets an answer quickly (and a cursor to go on).
const MAX_SCAN: usize = 50_000;

#[derive(Clone, Copy)]
struct PeerCase {
    in_scope: bool,
    changed_at: u64,
    /// See `seal_left_cases`.
    sealed: Option<u64>,
    /// Given again after it was withdrawn.
    returned: bool,
}

/// What a device may write to one case.
#[derive(Clone, Copy)]
pub(super) enum CaseScope {
    Writable,
    /// Its writes up to this counter of its own.
    WritableUpTo(u64),
    Outside,
    Unknown,
}

impl Store {
    /// Server side: why the device may not send `op`, if it may not. A
    /// device opens cases only in its units, and writes to cases of its
    /// units or that it holds; once it has been told a case left its units
    /// (it has been sealed), only its writes made before that still land.
    pub(super) fn scope_refusal(
        &self,
        peer: ReplicaId,
        scope: &Scope,
        op: &Op,
        known: &mut HashMap<CaseId, CaseScope>,
    ) -> Result<Option<&'static str>> {
        if let OpBody::Create { .. } = &op.body {
            let unit = op
                .value_of(Field::Unit)
                .and_then(|v| v.as_text())
                .unwrap_or("");
            if !scope.contains(unit) {
                return Ok(Some("the case's unit is not one of the device's units"));
            }
            known.insert(op.case, CaseScope::Writable);
            return Ok(None);
        }
        let case_scope = match known.get(&op.case) {
            Some(s) => *s,
            None => {
                let unit: Option<String> = self
                    .conn()
                    .prepare_cached("SELECT unit FROM cases WHERE case_id = ?1")?
                    .query_row([op.case.as_i64()], |r| r.get(0))
                    .optional()?;
                let s = match (unit, peer_case(self.conn(), peer, op.case)?) {
                    (Some(u), _) if scope.contains(&u) => CaseScope::Writable,
                    (_, Some(p)) if p.in_scope => CaseScope::Writable,
                    (_, Some(p)) => match p.sealed {
                        None => CaseScope::Writable,
                        Some(counter) => CaseScope::WritableUpTo(counter),
                    },
                    (Some(_), None) => CaseScope::Outside,
                    (None, None) => CaseScope::Unknown,
                };
                known.insert(op.case, s);
                s
            }
        };
        Ok(match case_scope {
            CaseScope::Writable => None,
            CaseScope::WritableUpTo(c) if op.dot.counter <= c => None,
            CaseScope::WritableUpTo(_) => Some("the case had left the device's units"),
            CaseScope::Outside => Some("the case is not in one of the device's units"),
            CaseScope::Unknown => Some("the case is unknown to the server"),
        })
    }

    /// Server side: one whole exchange with a device. Its operations are
    /// taken in one transaction: those it may not send or that cannot be
    /// applied are kept in quarantine (counted as received, never applied),
    /// the others applied. Then the answer carries what it lacks.
    /// `max_bytes` bounds the answer.
    pub fn serve_sync(
        &mut self,
        peer: ReplicaId,
        scope: &Scope,
        request: &SyncRequest,
        max_bytes: usize,
    ) -> Result<(SyncResponse, ServeTimes)> {
        if request.schema != crate::op::OP_SCHEMA {
            return Err(BatchError::UnsupportedSchema(request.schema).into());
        }
        let started = Instant::now();
        if let Some(op) = request.ops.iter().find(|op| op.dot.actor != peer) {
            return Err(BatchError::OutOfScope {
                dot: op.dot,
                why: "a device sends only operations it authored".into(),
            }
            .into());
        }
        // How far the device's own writes went when it made this request:
        // it says so; of a first-release device, only what the server
        // already holds is sure (later writes to a case that left would be
        // quarantined, never lost).
        let counter = match &request.device {
            Some(d) => d.counter,
            None => self.version_vector().get(&peer),
        };
        seal_left_cases(self.conn(), peer, request.cursor, counter)?;
        self.take_device_ops(peer, scope, &request.ops)?;
        let merged = Instant::now();
        let changes = self.changes_for_peer(
            peer,
            scope,
            request.cursor,
            request.device.as_ref(),
            request.max_ops as usize,
            max_bytes,
        )?;
        let quarantine = match request.device {
            Some(_) => Some(self.quarantine_report(peer)?),
            None => None,
        };
        let response = SyncResponse {
            schema: crate::op::OP_SCHEMA,
            server_id: self.store_id(),
            server_time_ms: self.now_ms(),
            acked: self.version_vector().get(&peer),
            ops: changes.ops,
            cursor: changes.cursor,
            more: changes.more,
            removed: changes.removed,
            quarantine,
            scope: request.device.as_ref().and(changes.scope),
        };
        let times = ServeTimes {
            merging: merged - started,
            answering: merged.elapsed(),
        };
        Ok((response, times))
    }

    /// Takes a device's operations in one transaction, quarantining each
    /// one it may not send, that depends on one quarantined, or that
    /// cannot be applied. Refuses the whole batch only for what no device
    /// of ours sends (a gap in its counters, a counter reused with other
    /// content): the device then has something to repair, not to skip.
    fn take_device_ops(&mut self, peer: ReplicaId, scope: &Scope, ops: &[Op]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut known = HashMap::new();
        let mut refused: HashMap<Dot, String> = HashMap::new();
        for op in ops {
            if let Some(why) = self.scope_refusal(peer, scope, op, &mut known)? {
                refused.insert(op.dot, why.to_string());
            }
        }
        // What quarantine already holds of this device's, and will never
        // apply unless released: operations depending on one are held too.
        let mut unapplied: HashSet<Dot> = HashSet::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT counter FROM quarantine WHERE replica = ?1 AND state != 'released'",
        )?;
        for counter in stmt.query_map([peer], |r| r.get::<_, i64>(0))? {
            unapplied.insert(Dot::new(peer, counter? as u64));
        }
        drop(stmt);
        // Each failed attempt quarantines one more operation: bounded.
        for _ in 0..=ops.len() {
            let mut failed_at: Option<Dot> = None;
            let attempt = self.write(|w| {
                let mut held_back = unapplied.clone();
                for op in ops {
                    if op.dot.counter <= w.held_counter(op.dot.actor) {
                        // Sent before (the answer was lost): taken then,
                        // whatever its scope is now; only checked the same.
                        match w.quarantined_op(op.dot)? {
                            Some(kept) if kept != *op => {
                                return Err(BatchError::ConflictingDuplicate(op.dot).into())
                            }
                            Some(_) => {}
                            None => {
                                w.receive(op)?;
                            }
                        }
                        continue;
                    }
                    let reason = hold_reason(op, refused.get(&op.dot), &held_back);
                    if let Some(reason) = reason {
                        w.hold_back(peer, op, &reason)?;
                        held_back.insert(op.dot);
                        continue;
                    }
                    failed_at = Some(op.dot);
                    w.receive(op)?;
                    failed_at = None;
                }
                Ok(())
            });
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) => match blamed_op(&e).or(failed_at) {
                    Some(dot) if quarantinable(&e) && ops.iter().any(|op| op.dot == dot) => {
                        refused.insert(dot, e.to_string());
                    }
                    _ => return Err(e),
                },
            }
        }
        Err(crate::Error::Damaged(
            "quarantining a batch did not settle".into(),
        ))
    }

    /// Server side: what a device with `scope` lacks after `cursor`; its
    /// report says where it stands in taking its scope.
    pub fn changes_for_peer(
        &mut self,
        peer: ReplicaId,
        scope: &Scope,
        cursor: u64,
        report: Option<&DeviceReport>,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<PeerChanges> {
        let tx = self.conn_mut().transaction()?;
        let mut answer = Answer::new(cursor, max_ops.max(1), max_bytes);
        let token = take_scope(&tx, peer, scope, report, &mut answer)?;
        if !answer.full() {
            scan_for_peer(&tx, peer, scope, &mut answer)?;
        }
        record_decisions(&tx, peer, &answer, answer.out.cursor)?;
        tx.commit()?;
        let mut changes = answer.out;
        changes.scope = Some(token);
        Ok(changes)
    }

    /// Device side: integrates a sync response from the server `peer`, all of
    /// it or nothing: operations, the new cursor and acknowledgement, the
    /// cases that left the scope, and the server's clock.
    pub fn apply_sync_response(
        &mut self,
        peer: &str,
        response: &SyncResponse,
    ) -> Result<ApplyOutcome> {
        if response.schema != crate::op::OP_SCHEMA {
            return Err(BatchError::UnsupportedSchema(response.schema).into());
        }
        let known: Option<Option<i64>> = self
            .conn()
            .query_row(
                "SELECT server_id FROM sync_state WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?;
        if known.flatten().is_some_and(|id| id != response.server_id) {
            // This answer was computed from a position another server gave:
            // start over, resending what this server may lack.
            self.conn().execute(
                "UPDATE sync_state SET server_id = ?2, cursor = 0, acked = 0 WHERE peer = ?1",
                params![peer, response.server_id],
            )?;
            return Err(crate::Error::ServerChanged);
        }
        let outcome = self.write(|w| {
            let mut outcome = ApplyOutcome::default();
            let mut given = HashSet::new();
            for op in &response.ops {
                if w.receive_scoped(op)? {
                    outcome.applied += 1;
                } else {
                    outcome.duplicates += 1;
                }
                given.insert(op.case);
            }
            // A case given again came back into scope: it no longer leaves.
            w.stay(&given)?;
            w.leave(&response.removed, response.acked)?;
            if let Some(quarantine) = &response.quarantine {
                record_refusals(w.conn(), peer, quarantine)?;
            }
            w.conn()
                .prepare_cached(
                    "INSERT INTO sync_state(peer, server_id, acked, cursor, quarantined, scope_hash,
                       scope_after)
                     VALUES (?1, ?2, ?3, ?4, COALESCE(?5, 0), ?6, ?7)
                     ON CONFLICT(peer) DO UPDATE SET server_id = excluded.server_id,
                       acked = max(acked, excluded.acked), cursor = excluded.cursor,
                       quarantined = COALESCE(?5, quarantined),
                       scope_hash = excluded.scope_hash, scope_after = excluded.scope_after",
                )?
                .execute(params![
                    peer,
                    response.server_id,
                    response.acked as i64,
                    response.cursor as i64,
                    response.quarantine.as_ref().map(|q| q.held as i64),
                    response.scope.map(|t| t.scope as i64),
                    response.scope.and_then(|t| t.after)
                ])?;
            Ok(outcome)
        })?;
        self.adopt_server_time(response.server_time_ms)?;
        Ok(outcome)
    }

    /// Device side: the next request to the server `peer`, with at most
    /// `upload` own operations and asking for at most `download`.
    pub fn sync_request(
        &self,
        peer: &str,
        upload: usize,
        download: u32,
        app_version: &str,
    ) -> Result<SyncRequest> {
        let status = self.sync_status(peer)?;
        let scope: Option<(Option<i64>, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT scope_hash, scope_after FROM sync_state WHERE peer = ?1",
                [peer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let scope = scope.and_then(|(hash, after)| {
            hash.map(|h| ScopeToken {
                scope: h as u64,
                after,
            })
        });
        let report = DeviceReport {
            counter: self.version_vector().get(&self.replica()),
            app_version: bounded(app_version),
            last_error: status.last_error.as_deref().map(bounded),
            scope,
        };
        Ok(SyncRequest::new(
            self.sync_cursor(peer)?,
            self.pending_ops(peer, upload)?,
            download,
        )
        .with_device(report))
    }

    /// Device side: the server position this device holds everything up to.
    pub fn sync_cursor(&self, peer: &str) -> Result<u64> {
        let cursor: Option<i64> = self
            .conn()
            .query_row(
                "SELECT cursor FROM sync_state WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(cursor.unwrap_or(0) as u64)
    }

    /// Device side: own operations the server has not acknowledged, oldest
    /// first, at most `limit`.
    pub fn pending_ops(&self, peer: &str, limit: usize) -> Result<Vec<Op>> {
        let acked = self.acked(peer)?;
        let mut ops = self.ops_of(self.replica(), acked)?;
        ops.truncate(limit);
        Ok(ops)
    }

    /// Device side: the highest own counter the server `peer` confirmed.
    pub fn acked(&self, peer: &str) -> Result<u64> {
        let acked: Option<i64> = self
            .conn()
            .query_row(
                "SELECT acked FROM sync_state WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(acked.unwrap_or(0) as u64)
    }
}

impl Writer<'_> {
    /// Cases back in this device's scope are no longer leaving it.
    fn stay(&mut self, cases: &HashSet<CaseId>) -> Result<()> {
        let mut stmt = self
            .conn()
            .prepare_cached("DELETE FROM leaving_cases WHERE case_id = ?1")?;
        for case in cases {
            stmt.execute([case.as_i64()])?;
        }
        Ok(())
    }

    /// Marks cases as leaving this device and removes those whose local
    /// edits the server holds (`acked`).
    fn leave(&mut self, removed: &[CaseId], acked: u64) -> Result<()> {
        for case in removed {
            self.conn()
                .prepare_cached("INSERT OR IGNORE INTO leaving_cases(case_id) VALUES (?1)")?
                .execute([case.as_i64()])?;
        }
        let leaving: Vec<i64> = self
            .conn()
            .prepare("SELECT case_id FROM leaving_cases")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for case in leaving.into_iter().filter_map(CaseId::from_i64) {
            if !self.has_own_ops_after(case, acked)? {
                self.purge_case(case)?;
            }
        }
        Ok(())
    }
}

/// Why `op` stays out, if it does: it depends on one held back, or it was
/// refused for itself.
pub(super) fn hold_reason(
    op: &Op,
    refused: Option<&String>,
    held_back: &HashSet<Dot>,
) -> Option<String> {
    match op.dependencies().find(|d| held_back.contains(d)) {
        Some(d) => Some(format!(
            "it depends on operation {}-{}, which is in quarantine",
            d.actor, d.counter
        )),
        None => refused.cloned(),
    }
}

/// The operation an error names, if it names one.
fn blamed_op(e: &crate::Error) -> Option<Dot> {
    match e {
        crate::Error::Batch(
            BatchError::InvalidOperation { dot, .. }
            | BatchError::MissingDependency { dot, .. }
            | BatchError::OutOfScope { dot, .. },
        ) => Some(*dot),
        _ => None,
    }
}

/// Whether one operation failing so is kept in quarantine rather than
/// refusing its whole batch: it is wrong in itself. A gap or a reused
/// counter is the device's whole history being off, and storage errors
/// pass.
fn quarantinable(e: &crate::Error) -> bool {
    matches!(
        e,
        crate::Error::Batch(
            BatchError::InvalidOperation { .. }
                | BatchError::MissingDependency { .. }
                | BatchError::OutOfScope { .. }
        ) | crate::Error::NotFound(_)
            | crate::Error::InvalidInput(_)
            | crate::Error::InvalidTransition { .. }
    )
}

/// Server side: a device whose cursor shows it was told that cases left
/// its units is held, for those cases, to the writes it had made by then.
fn seal_left_cases(conn: &Connection, peer: ReplicaId, cursor: u64, counter: u64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE peer_cases SET sealed = ?3
         WHERE peer = ?1 AND in_scope = 0 AND sealed IS NULL AND changed_at <= ?2",
    )?
    .execute(params![peer, cursor as i64, counter as i64])?;
    Ok(())
}

/// At most `MAX_REPORT_TEXT` bytes of `text`, cut at a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_REPORT_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Device side: what the server last said it holds in quarantine of ours.
fn record_refusals(conn: &Connection, peer: &str, report: &QuarantineReport) -> Result<()> {
    conn.prepare_cached("DELETE FROM refused_ops WHERE peer = ?1")?
        .execute([peer])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO refused_ops(peer, replica, counter, case_id, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for op in &report.recent {
        insert.execute(params![
            peer,
            op.dot.actor,
            op.dot.counter as i64,
            op.case.as_i64(),
            op.reason
        ])?;
    }
    Ok(())
}

fn peer_case(conn: &Connection, peer: ReplicaId, case: CaseId) -> Result<Option<PeerCase>> {
    Ok(conn
        .prepare_cached(
            "SELECT in_scope, changed_at, sealed, returned FROM peer_cases
             WHERE peer = ?1 AND case_id = ?2",
        )?
        .query_row(params![peer, case.as_i64()], |r| {
            Ok(PeerCase {
                in_scope: r.get(0)?,
                changed_at: r.get::<_, i64>(1)? as u64,
                sealed: r.get::<_, Option<i64>>(2)?.map(|c| c as u64),
                returned: r.get(3)?,
            })
        })
        .optional()?)
}

/// One answer being filled, within its bounds.
struct Answer {
    out: PeerChanges,
    /// The device's position when it asked.
    cursor: u64,
    bytes: usize,
    max_ops: usize,
    max_bytes: usize,
    /// What this answer decided per case: given (true) or removed (false).
    decided: HashMap<CaseId, bool>,
    /// Cases handed over or withdrawn for a change of the device's units.
    handed_over: HashSet<CaseId>,
    /// Cases whose operations go to the device whole, its own included:
    /// it may have dropped them with the case (handed over by this answer,
    /// or come back to it after it was told to drop them).
    whole: HashMap<CaseId, bool>,
}

impl Answer {
    fn new(cursor: u64, max_ops: usize, max_bytes: usize) -> Answer {
        Answer {
            out: PeerChanges {
                cursor,
                ..PeerChanges::default()
            },
            cursor,
            bytes: 0,
            max_ops,
            max_bytes,
            decided: HashMap::new(),
            handed_over: HashSet::new(),
            whole: HashMap::new(),
        }
    }

    fn full(&self) -> bool {
        self.out.ops.len() >= self.max_ops || self.bytes >= self.max_bytes
    }

    fn push(&mut self, op: Op, size: usize) {
        self.bytes += size;
        self.out.ops.push(op);
    }
}

/// Server side: when a device's units changed since it last held all of
/// its scope, hands over the cases of the units it gained (their history
/// up to its position; later operations come with the scan) and withdraws
/// those of the units it lost, until it echoes a complete token.
fn take_scope(
    conn: &Connection,
    peer: ReplicaId,
    scope: &Scope,
    report: Option<&DeviceReport>,
    answer: &mut Answer,
) -> Result<ScopeToken> {
    let mut token = ScopeToken {
        scope: scope.token(),
        after: None,
    };
    let target = scope.to_text();
    let settle = |text: &str| -> Result<()> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO peer_scopes(peer, scope, taking) VALUES (?1, ?2, NULL)",
        )?
        .execute(params![peer, text])?;
        Ok(())
    };
    let known: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT scope, taking FROM peer_scopes WHERE peer = ?1")?
        .query_row([peer], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let held = match known {
        // First contact since scopes are remembered: what it holds is
        // what it was given.
        None => return settle(&target).map(|()| token),
        Some((held, None)) if held == target => return Ok(token),
        Some((held, _)) => Scope::from_text(&held),
    };
    let echoed = report
        .and_then(|r| r.scope)
        .filter(|t| t.scope == token.scope);
    let after = match echoed {
        Some(ScopeToken { after: None, .. }) => {
            // It applied every answer of the hand-over: what they gave is held.
            confirm_hand_over(conn, peer, answer.cursor)?;
            return settle(&target).map(|()| token);
        }
        Some(ScopeToken {
            after: Some(after), ..
        }) => after,
        None => i64::MIN,
    };
    // Until it confirms, it holds every case only of the units it kept all
    // along; `taking` says a change is under way.
    let kept = held.intersection(scope);
    conn.prepare_cached("UPDATE peer_scopes SET scope = ?2, taking = ?3 WHERE peer = ?1")?
        .execute(params![peer, kept.to_text(), target])?;
    // Every case it may hold outside its scope (of a unit it lost, or one
    // that moved meanwhile) is withdrawn again in every answer until it
    // confirms: one may be lost.
    let mut stmt = conn.prepare_cached(
        "SELECT p.case_id, c.unit FROM peer_cases p JOIN cases c ON c.case_id = p.case_id
         WHERE p.peer = ?1",
    )?;
    let given = stmt
        .query_map([peer], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (case, unit) in given {
        if let Some(case) = CaseId::from_i64(case) {
            if !scope.contains(&unit) {
                answer.decided.insert(case, false);
                answer.out.removed.push(case);
                if report.is_some() {
                    answer.handed_over.insert(case);
                }
            }
        }
    }
    let mut gained = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT case_id, unit FROM cases WHERE case_id > ?1 AND (?2 IS NULL OR unit = ?2)",
    )?;
    let units: Vec<Option<&str>> = match scope {
        Scope::All => vec![None],
        Scope::Units(units) => units.iter().map(|u| Some(u.as_str())).collect(),
    };
    for unit in units {
        for row in stmt.query_map(params![after, unit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })? {
            let (case, unit) = row?;
            if !kept.contains(&unit) {
                gained.extend(CaseId::from_i64(case));
            }
        }
    }
    gained.sort();
    gained.dedup();
    let mut handed = after;
    for case in gained {
        if answer.full() {
            answer.out.more = true;
            token.after = Some(handed);
            return Ok(token);
        }
        answer.decided.insert(case, true);
        if report.is_some() {
            // A first-release device cannot confirm: held as any given case.
            answer.handed_over.insert(case);
        }
        answer.whole.insert(case, true);
        for (op, size) in case_history(conn, case, answer.cursor + 1)? {
            answer.push(op, size);
        }
        handed = case.as_i64();
    }
    if report.is_none() {
        // A first-release device cannot confirm: trust this answer.
        settle(&target)?;
    }
    Ok(token)
}

fn scan_for_peer(
    conn: &Connection,
    peer: ReplicaId,
    scope: &Scope,
    answer: &mut Answer,
) -> Result<()> {
    let cursor = answer.cursor;
    let mut scanned = 0;
    let mut stmt = conn.prepare_cached(
        "SELECT o.seq, o.replica, o.counter, o.case_id, o.stamp, o.body, c.unit
         FROM ops o JOIN cases c ON c.case_id = o.case_id
         WHERE o.seq > ?1 ORDER BY o.seq LIMIT ?2",
    )?;
    'scan: loop {
        let mut rows = stmt.query(params![answer.out.cursor as i64, SCAN_CHUNK])?;
        let mut seen_any = false;
        while let Some(row) = rows.next()? {
            seen_any = true;
            if answer.full() || scanned >= MAX_SCAN {
                answer.out.more = true;
                break 'scan;
            }
            scanned += 1;
            let seq = row.get::<_, i64>(0)? as u64;
            let body: Vec<u8> = row.get(5)?;
            let unit: String = row.get(6)?;
            let op = op_from_row(row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, &body)?;
            let case = op.case;
            if scope.contains(&unit) {
                if let Entry::Vacant(slot) = answer.decided.entry(case) {
                    slot.insert(true);
                    let held = peer_case(conn, peer, case)?
                        .is_some_and(|p| p.in_scope && p.changed_at <= cursor);
                    if !held && !matches!(op.body, OpBody::Create { .. }) {
                        // The case entered the scope: its earlier history first.
                        answer.whole.insert(case, true);
                        for (earlier, size) in case_history(conn, case, seq)? {
                            answer.push(earlier, size);
                        }
                    }
                }
                let whole = match answer.whole.get(&case) {
                    Some(whole) => *whole,
                    None if op.dot.actor == peer => {
                        let returned = peer_case(conn, peer, case)?.is_some_and(|p| p.returned);
                        answer.whole.insert(case, returned);
                        returned
                    }
                    None => false,
                };
                if op.dot.actor != peer || whole {
                    answer.push(op, op_size(&body));
                }
            } else if let Entry::Vacant(slot) = answer.decided.entry(case) {
                // It holds a case it was given, or one it wrote to (opened
                // it, say, then moved it to another unit).
                let given = peer_case(conn, peer, case)?;
                let told = given.is_some_and(|p| !p.in_scope && p.changed_at <= cursor);
                if (given.is_some() || op.dot.actor == peer) && !told {
                    slot.insert(false);
                    answer.out.removed.push(case);
                }
            }
            answer.out.cursor = seq;
        }
        if !seen_any {
            break;
        }
    }
    Ok(())
}

/// Every operation of a case that arrived before `before`, in arrival
/// order, with its size as counted against an answer's bound.
fn case_history(conn: &Connection, case: CaseId, before: u64) -> Result<Vec<(Op, usize)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT replica, counter, case_id, stamp, body FROM ops
         WHERE case_id = ?1 AND seq < ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![case.as_i64(), before as i64])?;
    let mut ops = Vec::new();
    while let Some(r) = rows.next()? {
        let body: Vec<u8> = r.get(4)?;
        let op = op_from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, &body)?;
        ops.push((op, op_size(&body)));
    }
    Ok(ops)
}

/// The device took every answer of a hand-over: the cases they gave are
/// held as of `cursor`.
fn confirm_hand_over(conn: &Connection, peer: ReplicaId, cursor: u64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE peer_cases SET changed_at = ?2 WHERE peer = ?1 AND changed_at = ?3",
    )?
    .execute(params![peer, cursor as i64, HANDED_OVER])?;
    Ok(())
}

/// `peer_cases.changed_at` of a case handed over or withdrawn for a change
/// of units, until the device confirms it took the hand-over.
const HANDED_OVER: i64 = i64::MAX;

/// An operation's size in an answer: its body and its dot, stamp and case.
fn op_size(body: &[u8]) -> usize {
    body.len() + 24
}

/// Remembers what this response gave or withdrew. A case keeps the cursor
/// of the first response that gave it, so that a device whose cursor is
/// below it (that response was lost) is given the history again.
fn record_decisions(
    conn: &Connection,
    peer: ReplicaId,
    answer: &Answer,
    cursor: u64,
) -> Result<()> {
    let mut give = conn.prepare_cached(
        "INSERT INTO peer_cases(peer, case_id, in_scope, changed_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT(peer, case_id) DO UPDATE SET in_scope = 1, sealed = NULL,
           returned = CASE WHEN in_scope THEN returned ELSE 1 END,
           changed_at = CASE WHEN in_scope THEN changed_at ELSE excluded.changed_at END",
    )?;
    // A case the device opened itself and moved away has no row yet: it
    // gets one, so that its writes are sealed like any other's.
    let mut withdraw = conn.prepare_cached(
        "INSERT INTO peer_cases(peer, case_id, in_scope, changed_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT(peer, case_id) DO UPDATE SET in_scope = 0, changed_at = excluded.changed_at
         WHERE in_scope = 1",
    )?;
    for (case, given) in &answer.decided {
        // Handed over or withdrawn with a change of units, the answer's
        // cursor may not move: settled once the device confirms (see
        // `take_scope`).
        let at = match answer.handed_over.contains(case) {
            true => HANDED_OVER,
            false => cursor as i64,
        };
        let args = params![peer, case.as_i64(), at];
        if *given {
            give.execute(args)?;
        } else {
            withdraw.execute(args)?;
        }
    }
    Ok(())
}
