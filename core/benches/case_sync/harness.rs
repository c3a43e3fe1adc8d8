//! The interface every benchmarked case store implements, plus small helpers shared by the
//! reference implementations (SQLite setup, the tablet's case table with its query and FTS5
//! indexes, traffic accounting, canonical digest).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::AddAssign;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, Row, ToSql};
use serde::Serialize;

pub use crate::workload::{CaseEdit, CaseSeed, FieldChange};

/// Traffic of one or more sync exchanges. `wire_bytes` = zstd level 3 size of each message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub messages: u64,
    pub raw_bytes: u64,
    pub wire_bytes: u64,
}

/// Time spent inside `Traffic::record` compressing messages for the wire-size measurement.
/// The runner subtracts it from the sync phase times (it is accounting, not protocol work).
pub static COMPRESS_NANOS: AtomicU64 = AtomicU64::new(0);

impl Traffic {
    /// Account for one message as it would travel on the wire.
    pub fn record(&mut self, msg: &[u8]) {
        let t = Instant::now();
        let wire = zstd::bulk::compress(msg, 3).expect("zstd").len();
        COMPRESS_NANOS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.messages += 1;
        self.raw_bytes += msg.len() as u64;
        self.wire_bytes += wire as u64;
    }
}

impl AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.messages += o.messages;
        self.raw_bytes += o.raw_bytes;
        self.wire_bytes += o.wire_bytes;
    }
}

pub trait CaseReplica: Sized {
    const NAME: &'static str;
    /// One SQLite file per replica. `replica` is a small id, unique among the replicas of a run.
    fn open(path: &Path, replica: u32) -> Self;
    /// Phase 1: create these cases (one call = one transaction).
    fn seed(&mut self, cases: &[CaseSeed]);
    /// Phase 3: apply these edits (one call = one transaction). `CaseEdit::index` names the case.
    fn edit(&mut self, edits: &[CaseEdit]);
    /// One complete bidirectional exchange: both sides end with the union of what each had.
    fn sync(client: &mut Self, server: &mut Self) -> Traffic;
    /// Hash over all cases' current field values + event set; equal iff same content.
    fn digest(&self) -> u64;
    /// Size of the db file + wal.
    fn file_bytes(&self) -> u64;
    /// Milliseconds per query a tablet makes, on a replica holding everything
    /// (for implementations that offer those queries).
    fn query_latencies(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}

// ---------------------------------------------------------------- shared helpers

/// Open a SQLite database with the settings every implementation uses (WAL, synchronous=FULL).
pub fn open_sqlite(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open sqlite");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn
}

/// Size of `path` plus its `-wal` file.
pub fn db_file_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}

/// The store's case columns (after each implementation's own key columns), in table order.
pub const CASE_COLS: [&str; 16] = [
    "reference",
    "service",
    "requester_phone",
    "requester_name",
    "requester_language",
    "locality",
    "channel",
    "mediator",
    "unit",
    "assignee",
    "priority",
    "description",
    "status",
    "rating",
    "created_at",
    "updated_at",
];

/// One case's values of `CASE_COLS`, in that order.
pub type CaseCols = [Value; 16];

/// The tablet's case table with its query indexes and its FTS5 index, shared by the three
/// references. `key` declares the implementation's leading columns (its primary key, ...),
/// `tail` its trailing ones (CRDT state, sync bookkeeping), each with no leading/trailing comma.
/// `cases_fts` indexes the table's rowid (the floor's `case_id` is that rowid).
pub fn cases_schema(key: &str, tail: &str) -> String {
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!(", {tail}")
    };
    format!(
        "
CREATE TABLE IF NOT EXISTS cases({key}, reference TEXT NOT NULL UNIQUE, service TEXT NOT NULL, requester_phone TEXT NOT NULL, requester_name TEXT NOT NULL, requester_language TEXT NOT NULL, locality TEXT NOT NULL, channel TEXT NOT NULL, mediator TEXT, unit TEXT NOT NULL, assignee TEXT, priority INTEGER NOT NULL, description TEXT NOT NULL, status INTEGER NOT NULL, rating INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL{tail});
CREATE INDEX IF NOT EXISTS cases_unit_status ON cases(unit, status);
CREATE INDEX IF NOT EXISTS cases_unit_assignee ON cases(unit, assignee);
CREATE INDEX IF NOT EXISTS cases_unit_locality ON cases(unit, locality);
CREATE INDEX IF NOT EXISTS cases_unit_updated ON cases(unit, updated_at);
CREATE INDEX IF NOT EXISTS cases_phone ON cases(requester_phone);
CREATE VIRTUAL TABLE IF NOT EXISTS cases_fts USING fts5(requester_name, locality, description, content='cases', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
-- cases_fts is maintained in batches, one statement per transaction, as guichet-core does
-- (FTS5 flushes at every statement savepoint, so per-row triggers would cost the floor ~25%).
"
    )
}

/// Removes the current text of the cases whose `key` column is in `keys` from the FTS index
/// (call before their rows change; one statement).
pub fn fts_remove<K: Serialize>(conn: &Connection, key: &str, keys: &[K]) {
    fts_batch(
        conn,
        &format!(
            "INSERT INTO cases_fts(cases_fts, rowid, requester_name, locality, description)
             SELECT 'delete', rowid, requester_name, locality, description FROM cases
             WHERE {key} IN (SELECT value FROM json_each(?1))"
        ),
        keys,
    );
}

/// Indexes the current text of the cases whose `key` column is in `keys` (call after their
/// rows were written; one statement).
pub fn fts_add<K: Serialize>(conn: &Connection, key: &str, keys: &[K]) {
    fts_batch(
        conn,
        &format!(
            "INSERT INTO cases_fts(rowid, requester_name, locality, description)
             SELECT rowid, requester_name, locality, description FROM cases
             WHERE {key} IN (SELECT value FROM json_each(?1))"
        ),
        keys,
    );
}

fn fts_batch<K: Serialize>(conn: &Connection, sql: &str, keys: &[K]) {
    if keys.is_empty() {
        return;
    }
    let list = serde_json::to_string(keys).unwrap();
    conn.prepare_cached(sql).unwrap().execute([list]).unwrap();
}

/// `UPDATE cases SET <cols> WHERE <key> = key` (only the given columns, so indexes on the
/// others are not touched). Returns the number of rows updated.
pub fn update_columns(
    conn: &Connection,
    key: &str,
    key_val: &dyn ToSql,
    cols: Vec<(&'static str, Value)>,
) -> usize {
    if cols.is_empty() {
        return 0;
    }
    let set: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (name, _))| format!("{name} = ?{}", i + 2))
        .collect();
    let sql = format!("UPDATE cases SET {} WHERE {key} = ?1", set.join(", "));
    let params: Vec<&dyn ToSql> = std::iter::once(key_val)
        .chain(cols.iter().map(|(_, v)| v as &dyn ToSql))
        .collect();
    conn.prepare_cached(&sql)
        .unwrap()
        .execute(params.as_slice())
        .unwrap()
}

/// The columns of `new` that differ from `old`, as (name, value).
pub fn changed_columns(old: &CaseCols, new: CaseCols) -> Vec<(&'static str, Value)> {
    CASE_COLS
        .into_iter()
        .zip(new)
        .zip(old)
        .filter(|((_, n), o)| n != *o)
        .map(|(c, _)| c)
        .collect()
}

/// Reads `CASE_COLS` from `row`, starting at column `first`.
pub fn read_case_cols(row: &Row, first: usize) -> rusqlite::Result<CaseCols> {
    let mut out: CaseCols = std::array::from_fn(|_| Value::Null);
    for (i, v) in out.iter_mut().enumerate() {
        *v = row.get(first + i)?;
    }
    Ok(out)
}

/// The columns of a case held in a CRDT: `field(name)` gives the current value of each of the
/// 12 fields (`FIELD_NAMES`; integers for `INT_FIELDS`), no mediator or rating.
pub fn case_cols(
    mut field: impl FnMut(&'static str) -> Value,
    created_at: i64,
    updated_at: i64,
) -> CaseCols {
    CASE_COLS.map(|c| match c {
        "mediator" | "rating" => Value::Null,
        "created_at" => Value::Integer(created_at),
        "updated_at" => Value::Integer(updated_at),
        f => field(f),
    })
}

/// The fields stored as INTEGER columns.
pub const INT_FIELDS: [&str; 2] = ["priority", "status"];

/// Sync bookkeeping table used by all three references: per peer, `sent` = our change seq up to
/// which everything has been offered to that peer, `recv` = the peer's change seq up to which we
/// have received everything from it.
pub const PEERS_SQL: &str =
    "CREATE TABLE IF NOT EXISTS peers(peer INTEGER PRIMARY KEY, sent INTEGER NOT NULL, recv INTEGER NOT NULL);";

pub fn peer_marks(conn: &rusqlite::Connection, peer: u32) -> (i64, i64) {
    conn.query_row(
        "SELECT sent, recv FROM peers WHERE peer = ?1",
        [peer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0))
}

pub fn set_peer_marks(conn: &rusqlite::Connection, peer: u32, sent: i64, recv: i64) {
    conn.execute(
        "INSERT INTO peers(peer, sent, recv) VALUES (?1, ?2, ?3)
         ON CONFLICT(peer) DO UPDATE SET sent = excluded.sent, recv = excluded.recv",
        rusqlite::params![peer, sent, recv],
    )
    .unwrap();
}

/// Canonical per-case content hash. `fields` must be given in `FIELD_NAMES` order, each as its
/// canonical text (a multi-value register joins its sorted values with '\u{1f}').
/// Events are sorted here, so storage order does not matter. Cases are combined with a
/// wrapping add, so the order in which cases are visited does not matter either.
pub fn case_hash(index: u32, fields: &[String], events: &mut [(String, String, i64)]) -> u64 {
    debug_assert_eq!(fields.len(), FIELD_NAMES.len());
    events.sort();
    let mut h = DefaultHasher::new();
    index.hash(&mut h);
    fields.hash(&mut h);
    events.hash(&mut h);
    h.finish()
}

/// The 12 case fields, in digest order.
pub const FIELD_NAMES: [&str; 12] = [
    "reference",
    "service",
    "requester_phone",
    "requester_name",
    "requester_language",
    "locality",
    "channel",
    "unit",
    "assignee",
    "priority",
    "description",
    "status",
];

/// A random UUID-like string (v4 layout).
pub fn uuid_like(rng: &mut crate::workload::Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

pub fn decode_err<E: std::fmt::Debug>(e: E) -> ! {
    panic!("decode: {e:?}")
}
