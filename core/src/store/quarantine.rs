//! Server side: operations a device sent that the server keeps without
//! applying them (see `Store::serve_sync`). They are never deleted. A
//! supervisor releases them once the reason is gone (the device was given
//! the unit, say), which applies them, or acknowledges them, which records
//! that someone looked and they stay unapplied.

use super::peer::hold_reason;
use super::writer::op_from_row;
use super::Store;
use crate::error::{Error, Result};
use crate::ids::{CaseId, Dot, ReplicaId};
use crate::op::Op;
use crate::store::Scope;
use crate::sync::protocol::{QuarantineReport, QuarantinedOp, MAX_QUARANTINE_LISTED};
use rusqlite::params;
use std::collections::{HashMap, HashSet};

/// One quarantined operation, for supervisors. No case content: the
/// operation itself stays in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineEntry {
    pub id: i64,
    /// The device that sent it.
    pub device: ReplicaId,
    pub dot: Dot,
    pub case: CaseId,
    /// `create`, `update` or `event`.
    pub kind: &'static str,
    pub reason: String,
    pub received_ms: u64,
    pub state: QuarantineState,
    pub resolved_by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarantineState {
    Held,
    Released,
    Acknowledged,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Held => "held",
            QuarantineState::Released => "released",
            QuarantineState::Acknowledged => "acknowledged",
        }
    }

    fn parse(s: &str) -> Option<QuarantineState> {
        [Self::Held, Self::Released, Self::Acknowledged]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// What releasing a device's quarantined operations did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseOutcome {
    pub released: usize,
    /// Still refused, with the reason now.
    pub still_held: usize,
}

impl Store {
    /// The quarantined operations, oldest first: of one device or of all,
    /// only those held or every one.
    pub fn quarantined(
        &self,
        device: Option<ReplicaId>,
        held_only: bool,
    ) -> Result<Vec<QuarantineEntry>> {
        Ok(self
            .quarantine_rows(device, held_only)?
            .into_iter()
            .map(|(entry, _)| entry)
            .collect())
    }

    fn quarantine_rows(
        &self,
        device: Option<ReplicaId>,
        held_only: bool,
    ) -> Result<Vec<(QuarantineEntry, Op)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, device, replica, counter, case_id, stamp, body, reason, received_at, state,
                    resolved_by
             FROM quarantine
             WHERE (?1 IS NULL OR device = ?1) AND (NOT ?2 OR state = 'held')
             ORDER BY id",
        )?;
        let mut rows = stmt.query(params![device, held_only])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let body: Vec<u8> = r.get(6)?;
            let op = op_from_row(r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, &body)?;
            let state: String = r.get(9)?;
            let entry = QuarantineEntry {
                id,
                device: r.get(1)?,
                dot: op.dot,
                case: op.case,
                kind: op.body.kind(),
                reason: r.get(7)?,
                received_ms: r.get::<_, i64>(8)? as u64,
                state: QuarantineState::parse(&state)
                    .ok_or_else(|| Error::Damaged(format!("quarantine {id}: state {state}")))?,
                resolved_by: r.get(10)?,
            };
            out.push((entry, op));
        }
        Ok(out)
    }

    /// What a device is told of its quarantined operations.
    pub(crate) fn quarantine_report(&self, device: ReplicaId) -> Result<QuarantineReport> {
        let held: i64 = self.conn().query_row(
            "SELECT count(*) FROM quarantine WHERE device = ?1 AND state = 'held'",
            [device],
            |r| r.get(0),
        )?;
        if held == 0 {
            return Ok(QuarantineReport::default());
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT replica, counter, case_id, reason FROM quarantine
             WHERE device = ?1 AND state = 'held' ORDER BY id DESC LIMIT ?2",
        )?;
        let recent = stmt
            .query_map(params![device, MAX_QUARANTINE_LISTED as i64], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(replica, counter, case, reason)| {
                Some(QuarantinedOp {
                    dot: Dot::new(replica, counter as u64),
                    case: CaseId::from_i64(case)?,
                    reason,
                })
            })
            .collect();
        Ok(QuarantineReport {
            held: held as u64,
            recent,
        })
    }

    /// Applies a device's held operations that its scope now allows, in the
    /// order it wrote them; the others stay held, with the reason now.
    pub fn release_quarantined(
        &mut self,
        device: ReplicaId,
        scope: &Scope,
        by: &str,
    ) -> Result<ReleaseOutcome> {
        let held: Vec<(i64, Op)> = self
            .quarantine_rows(Some(device), true)?
            .into_iter()
            .map(|(entry, op)| (entry.id, op))
            .collect();
        if held.is_empty() {
            return Ok(ReleaseOutcome::default());
        }
        let mut refused: HashMap<i64, String> = HashMap::new();
        let mut known = HashMap::new();
        for (id, op) in &held {
            if let Some(why) = self.scope_refusal(device, scope, op, &mut known)? {
                refused.insert(*id, why.to_string());
            }
        }
        let now = self.now_ms() as i64;
        // Each failed attempt keeps one more operation held: bounded.
        for _ in 0..=held.len() {
            let mut failed: Option<(i64, String)> = None;
            let attempt = self.write(|w| {
                let mut staying: HashSet<Dot> = HashSet::new();
                let mut outcome = ReleaseOutcome::default();
                for (id, op) in &held {
                    let reason = hold_reason(op, refused.get(id), &staying);
                    if let Some(reason) = reason {
                        w.conn()
                            .prepare_cached("UPDATE quarantine SET reason = ?2 WHERE id = ?1")?
                            .execute(params![id, reason])?;
                        staying.insert(op.dot);
                        outcome.still_held += 1;
                        continue;
                    }
                    if let Err(e) = w.receive_scoped(op) {
                        failed = Some((*id, e.to_string()));
                        return Err(e);
                    }
                    w.conn()
                        .prepare_cached(
                            "UPDATE quarantine SET state = 'released', resolved_by = ?2,
                               resolved_at = ?3 WHERE id = ?1",
                        )?
                        .execute(params![id, by, now])?;
                    outcome.released += 1;
                }
                Ok(outcome)
            });
            match (attempt, failed) {
                (Ok(outcome), _) => return Ok(outcome),
                (Err(e), Some((id, why))) if !matches!(e, Error::Storage(_)) => {
                    refused.insert(id, why);
                }
                (Err(e), _) => return Err(e),
            }
        }
        Err(Error::Damaged("releasing quarantine did not settle".into()))
    }

    /// Records that a supervisor looked at a held operation and leaves it
    /// unapplied for good.
    pub fn acknowledge_quarantined(&mut self, id: i64, by: &str) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE quarantine SET state = 'acknowledged', resolved_by = ?2, resolved_at = ?3
             WHERE id = ?1 AND state = 'held'",
            params![id, by, self.now_ms() as i64],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("held quarantined operation {id}")));
        }
        Ok(())
    }
}
