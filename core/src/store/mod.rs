//! The SQLite store: one file per replica.
//!
//! Tables: `ops` holds every operation ever integrated (the source of truth
//! and of the timeline), `replicas` the version vector, `cases` the current
//! state of each case (winning values, plus the merge heads as a small blob)
//! with the indexes a tablet queries, `cases_fts` the accent-insensitive
//! text index (which a replica may drop: `Store::keep_text_index`).

mod history;
mod peer;
mod quarantine;
mod query;
mod schema;
mod writer;

pub use history::{CaseHistory, HistoryReader};
pub use peer::{PeerChanges, Scope, ServeTimes};
pub use quarantine::{QuarantineEntry, QuarantineState, ReleaseOutcome};
pub use query::{CaseQuery, Touched};
pub use writer::Writer;

use crate::error::{Error, Result};
use crate::hlc::{Hlc, Stamp};
use crate::ids::{Dot, ReplicaId, VersionVector, MAX_REPLICA};
use crate::op::Op;
use crate::wire::Batch;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, as the device believes.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

/// After a write this large (a first sync, a bulk import), the query
/// planner's statistics are refreshed.
const REFRESH_STATISTICS_AFTER: usize = 1_000;

/// Bounds on one batch returned by [`Store::changes_since`].
#[derive(Clone, Copy, Debug)]
pub struct BatchLimit {
    pub max_ops: usize,
    /// Approximate encoded size before compression.
    pub max_bytes: usize,
}

impl Default for BatchLimit {
    fn default() -> Self {
        BatchLimit {
            max_ops: 2_000,
            max_bytes: 1 << 20,
        }
    }
}

/// What a replica remembers of its syncs with one peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncStatus {
    pub last_attempt_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Local operations the peer has not confirmed yet.
    pub pending_ops: u64,
    pub ops_sent: u64,
    pub ops_received: u64,
    /// Own operations the peer keeps in quarantine, not applied: it
    /// counts them as received, so they are not pending.
    pub quarantined_ops: u64,
    /// The most recent of them and why, as the peer last listed them.
    pub quarantined: Vec<crate::sync::protocol::QuarantinedOp>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    replica: ReplicaId,
    clock: Clock,
    /// Committed state, mirrored in memory; a writer works on a copy and
    /// hands it back only once its transaction has committed.
    state: ReplicaState,
}

#[derive(Clone, Debug)]
pub(crate) struct ReplicaState {
    pub vv: VersionVector,
    pub hlc: Hlc,
    pub next_reference: u64,
    pub clock_offset_ms: i64,
    pub store_id: i64,
    /// Whether `cases_fts` is kept (see `Store::keep_text_index`).
    pub text_index: bool,
}

impl Store {
    /// Opens the store at `path` for `replica`, creating it if there is no
    /// file. A file that cannot be used is refused and left untouched.
    pub fn open(path: impl AsRef<Path>, replica: ReplicaId) -> Result<Store> {
        Store::open_with_clock(path, replica, system_clock())
    }

    pub fn open_with_clock(
        path: impl AsRef<Path>,
        replica: ReplicaId,
        clock: Clock,
    ) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if !(1..=MAX_REPLICA).contains(&replica) {
            return Err(Error::InvalidInput(format!(
                "replica numbers go from 1 to {MAX_REPLICA}"
            )));
        }
        let existed = path.exists();
        let cannot_open = |reason: String| Error::CannotOpen {
            path: path.clone(),
            reason,
        };
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if !existed {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|e| cannot_open(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| cannot_open(e.to_string()))?;
        // Nothing is written to an existing file, not even its journal mode,
        // before it is known to be a Guichet store this build can use.
        let version = if existed {
            recognise(&conn).map_err(cannot_open)?
        } else {
            0
        };
        prepare_connection(&mut conn).map_err(|e| cannot_open(e.to_string()))?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if version == 0 {
            schema::create(&tx)?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('replica', ?1)",
                [replica],
            )?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('store_id', ?1)",
                [random_id()],
            )?;
        } else if version < schema::CURRENT_VERSION {
            schema::upgrade(&tx, version)
                .map_err(|e| cannot_open(format!("upgrade failed: {e}")))?;
        }
        let found: ReplicaId = meta(&tx, "replica")?
            .ok_or_else(|| cannot_open("the replica number is missing".into()))?;
        if found != replica {
            return Err(Error::WrongReplica {
                expected: replica,
                found,
            });
        }
        tx.commit()?;
        let state = load_state(&conn)?;
        // Gathers statistics that are missing or stale since the last open.
        if let Err(e) = conn.execute_batch("PRAGMA optimize = 0x10002") {
            tracing::warn!(error = %e, "refreshing query statistics failed");
        }
        Ok(Store {
            conn,
            path,
            replica,
            clock,
            state,
        })
    }

    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// Keeps or drops the text index that `CaseQuery::text` searches. A
    /// replica nobody searches (the USSD gateway's) saves writing it with
    /// every case, and holds no second copy of names and descriptions.
    /// Kept again, it is rebuilt from the cases. The choice is stored.
    pub fn keep_text_index(&mut self, keep: bool) -> Result<()> {
        if keep == self.state.text_index {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let command = if keep { "rebuild" } else { "delete-all" };
        tx.execute("INSERT INTO cases_fts(cases_fts) VALUES (?1)", [command])?;
        set_meta(&tx, TEXT_INDEX, keep as i64)?;
        tx.commit()?;
        self.state.text_index = keep;
        Ok(())
    }

    /// A random number drawn when this store file was created: tells one
    /// server's store from another's (a restored or replaced server).
    pub fn store_id(&self) -> i64 {
        self.state.store_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything this replica holds, as a version vector.
    pub fn version_vector(&self) -> &VersionVector {
        &self.state.vv
    }

    /// The time this device stamps writes with: its clock corrected by the
    /// offset the sync server last reported.
    pub fn now_ms(&self) -> u64 {
        ((self.clock)() as i64)
            .saturating_add(self.state.clock_offset_ms)
            .max(0) as u64
    }

    /// The correction currently applied to this device's clock.
    pub fn clock_offset(&self) -> i64 {
        self.state.clock_offset_ms
    }

    /// Makes this device stamp in the sync server's time from now on.
    pub fn adopt_server_time(&mut self, server_time_ms: u64) -> Result<()> {
        let offset = server_time_ms as i64 - (self.clock)() as i64;
        self.set_clock_offset(offset)
    }

    /// Records how far this device's clock is from the sync server's, so
    /// that new stamps are made in the server's time.
    pub fn set_clock_offset(&mut self, offset_ms: i64) -> Result<()> {
        set_meta(&self.conn, "clock_offset_ms", offset_ms)?;
        self.state.clock_offset_ms = offset_ms;
        Ok(())
    }

    /// Runs `work` as one transaction: every write in it lands, or none.
    pub fn write<T>(&mut self, work: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let now = self.now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut writer = Writer::new(&tx, self.replica, self.state.clone(), now);
        let out = work(&mut writer)?;
        let (state, integrated) = writer.finish()?;
        tx.commit()?;
        self.state = state;
        if integrated >= REFRESH_STATISTICS_AFTER {
            self.refresh_statistics();
        }
        Ok(out)
    }

    /// Integrates a batch received from a peer: all of it, or nothing.
    /// Operations already held are skipped; see [`crate::BatchError`] for
    /// what makes a batch refused.
    pub fn apply(&mut self, batch: &Batch) -> Result<ApplyOutcome> {
        if batch.schema != crate::op::OP_SCHEMA {
            return Err(crate::BatchError::UnsupportedSchema(batch.schema).into());
        }
        self.write(|w| {
            let mut outcome = ApplyOutcome::default();
            for op in &batch.ops {
                if w.receive(op)? {
                    outcome.applied += 1;
                } else {
                    outcome.duplicates += 1;
                }
            }
            Ok(outcome)
        })
    }

    /// Decodes and applies a batch in the wire format.
    pub fn apply_encoded(&mut self, bytes: &[u8]) -> Result<ApplyOutcome> {
        let batch = crate::wire::decode(bytes)?;
        self.apply(&batch)
    }

    /// The operations a peer knowing `theirs` lacks, oldest first, in an
    /// order where each comes after what it depends on. `more` is set when
    /// the limit cut the batch.
    pub fn changes_since(&self, theirs: &VersionVector, limit: BatchLimit) -> Result<Batch> {
        let mut rows: Vec<(i64, Op, usize)> = Vec::new();
        let mut more = false;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, replica, counter, case_id, stamp, body FROM ops
             WHERE replica = ?1 AND counter > ?2 ORDER BY counter LIMIT ?3",
        )?;
        for (&replica, &mine) in &self.state.vv.dots {
            let known = theirs.get(&replica);
            if mine <= known {
                continue;
            }
            // Within one replica, counter order is arrival order, so the
            // first `max_ops` of each replica contain the batch.
            let lacking = (mine - known) as usize;
            more |= lacking > limit.max_ops;
            let mut rs = stmt.query(params![replica, known as i64, limit.max_ops as i64])?;
            while let Some(row) = rs.next()? {
                let body: Vec<u8> = row.get(5)?;
                let size = body.len() + 24;
                let op =
                    writer::op_from_row(row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, &body)?;
                rows.push((row.get(0)?, op, size));
            }
        }
        // Arrival order respects dependencies across replicas.
        rows.sort_unstable_by_key(|(seq, _, _)| *seq);
        let mut ops = Vec::with_capacity(rows.len().min(limit.max_ops));
        let mut bytes = 0;
        for (_, op, size) in rows {
            if ops.len() >= limit.max_ops || (bytes + size > limit.max_bytes && !ops.is_empty()) {
                more = true;
                break;
            }
            bytes += size;
            ops.push(op);
        }
        Ok(Batch::new(ops, more))
    }

    /// Lets SQLite refresh the statistics its query planner relies on
    /// (bounded work). Without them it can prefer an index that avoids a
    /// sort and scan thousands of rows: a 20 ms query instead of 0.01 ms.
    /// Failing here loses nothing, so it is only logged.
    fn refresh_statistics(&self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA optimize") {
            tracing::warn!(error = %e, "refreshing query statistics failed");
        }
    }

    /// Runs SQLite's full integrity check; `Ok(())` when the file is sound.
    pub fn check_integrity(&self) -> Result<()> {
        let report: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if report == "ok" {
            Ok(())
        } else {
            Err(Error::CannotOpen {
                path: self.path.clone(),
                reason: format!("integrity check failed: {report}"),
            })
        }
    }

    /// The sync history with `peer` (a server URL or a replica name).
    pub fn sync_status(&self, peer: &str) -> Result<SyncStatus> {
        let mine = self.state.vv.get(&self.replica);
        let status = self
            .conn
            .query_row(
                "SELECT last_attempt, last_success, last_error, acked, sent, received, quarantined
                 FROM sync_state WHERE peer = ?1",
                [peer],
                |r| {
                    Ok(SyncStatus {
                        last_attempt_ms: r.get::<_, Option<i64>>(0)?.map(|t| t as u64),
                        last_success_ms: r.get::<_, Option<i64>>(1)?.map(|t| t as u64),
                        last_error: r.get(2)?,
                        pending_ops: mine.saturating_sub(r.get::<_, i64>(3)? as u64),
                        ops_sent: r.get::<_, i64>(4)? as u64,
                        ops_received: r.get::<_, i64>(5)? as u64,
                        quarantined_ops: r.get::<_, i64>(6)? as u64,
                        quarantined: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut status) = status else {
            return Ok(SyncStatus {
                pending_ops: mine,
                ..SyncStatus::default()
            });
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT replica, counter, case_id, reason FROM refused_ops WHERE peer = ?1
             ORDER BY counter",
        )?;
        let rows = stmt.query_map([peer], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (replica, counter, case, reason) = row?;
            if let Some(case) = crate::ids::CaseId::from_i64(case) {
                status
                    .quarantined
                    .push(crate::sync::protocol::QuarantinedOp {
                        dot: Dot::new(replica, counter as u64),
                        case,
                        reason,
                    });
            }
        }
        Ok(status)
    }

    /// Records the outcome of one sync attempt with `peer`. `acked` is the
    /// highest of our own counters the peer now holds.
    pub fn record_sync(&mut self, peer: &str, outcome: &SyncOutcome) -> Result<()> {
        let now = self.now_ms() as i64;
        let (success, error) = match &outcome.result {
            Ok(()) => (Some(now), None),
            Err(e) => (None, Some(e.as_str())),
        };
        self.conn.execute(
            "INSERT INTO sync_state(peer, last_attempt, last_success, last_error, acked, sent, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(peer) DO UPDATE SET
               last_attempt = excluded.last_attempt,
               last_success = COALESCE(excluded.last_success, last_success),
               last_error = excluded.last_error,
               acked = max(acked, excluded.acked),
               sent = sent + excluded.sent,
               received = received + excluded.received",
            params![
                peer,
                now,
                success,
                error,
                outcome.acked as i64,
                outcome.ops_sent as i64,
                outcome.ops_received as i64
            ],
        )?;
        Ok(())
    }

    /// Every operation of one author from `after`+1 on, in counter order:
    /// for tests and audits.
    pub fn ops_of(&self, replica: ReplicaId, after: u64) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT replica, counter, case_id, stamp, body FROM ops
             WHERE replica = ?1 AND counter > ?2 ORDER BY counter",
        )?;
        let mut rows = stmt.query(params![replica, after as i64])?;
        let mut ops = Vec::new();
        while let Some(r) = rows.next()? {
            let body: Vec<u8> = r.get(4)?;
            ops.push(writer::op_from_row(
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                &body,
            )?);
        }
        Ok(ops)
    }

    /// Whether this replica holds the operation `dot`.
    pub fn has_op(&self, dot: Dot) -> bool {
        self.state.vv.get(&dot.actor) >= dot.counter
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// What [`Store::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub applied: usize,
    pub duplicates: usize,
}

/// One sync attempt, as the sync client reports it.
#[derive(Clone, Debug)]
pub struct SyncOutcome {
    pub result: std::result::Result<(), String>,
    pub acked: u64,
    pub ops_sent: u64,
    pub ops_received: u64,
}

fn random_id() -> i64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // Uniqueness, not secrecy: a time-based fallback is good enough.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = (system_clock()() as i64).to_le_bytes();
    }
    i64::from_le_bytes(bytes) & i64::MAX
}

/// The schema version of an existing file, or why it cannot be used: it
/// only reads (a damaged or foreign file fails here, untouched).
fn recognise(conn: &Connection) -> std::result::Result<i64, String> {
    let read = |e: rusqlite::Error| e.to_string();
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(read)?;
    let version = schema::version(conn).map_err(read)?;
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(read)?
        > 0;
    match version {
        0 if objects == 0 => Ok(0),
        v if v > schema::CURRENT_VERSION => Err(format!(
            "it was written by a newer Guichet (schema {v}, this one knows up to {})",
            schema::CURRENT_VERSION
        )),
        v if v >= 1 && has_meta => Ok(v),
        _ => Err("this is an SQLite file but not a Guichet store".into()),
    }
}

fn prepare_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    // WAL: readers never block the writer. FULL: a commit survives power
    // loss, and tablets lose power.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    // Statistics from a sample: enough to choose indexes, cheap on any size.
    conn.pragma_update(None, "analysis_limit", 400)?;
    Ok(())
}

/// Meta key: 0 once the text index is no longer kept.
const TEXT_INDEX: &str = "text_index";

fn meta<T: rusqlite::types::FromSql>(conn: &Connection, key: &str) -> Result<Option<T>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(
    conn: &Connection,
    key: &str,
    value: impl rusqlite::ToSql,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

fn load_state(conn: &Connection) -> Result<ReplicaState> {
    let mut vv = VersionVector::new();
    let mut stmt = conn.prepare("SELECT replica, counter FROM replicas")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (replica, counter) = row?;
        vv.dots.insert(replica, counter as u64);
    }
    Ok(ReplicaState {
        vv,
        hlc: Hlc::starting_at(Stamp(meta::<i64>(conn, "hlc")?.unwrap_or(0) as u64)),
        next_reference: meta::<i64>(conn, "next_reference")?.unwrap_or(1) as u64,
        clock_offset_ms: meta(conn, "clock_offset_ms")?.unwrap_or(0),
        store_id: match meta(conn, "store_id")? {
            Some(id) => id,
            None => {
                let id = random_id();
                set_meta(conn, "store_id", id)?;
                id
            }
        },
        text_index: meta::<i64>(conn, TEXT_INDEX)?.unwrap_or(1) == 1,
    })
}
