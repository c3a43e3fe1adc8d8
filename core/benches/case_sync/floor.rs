//! Reference 1: the plain SQLite floor. The real store's rows and indexes, written in place;
//! no merge metadata, no history. The only additions are sync bookkeeping side tables:
//! `case_log` / `event_log` (change seq + which peer delivered the row) and `peers` watermarks.
//!
//! Conflict rule ("last arrival wins", made deterministic): a whole case row replaces another
//! iff its `(updated_at, postcard bytes of the row)` is greater. That is a total order on row
//! versions, so every replica keeps the same winner whatever the arrival order and the four
//! replicas converge. Concurrent edits of different fields of one case lose all but one edit.
//! Events are immutable rows keyed by (case_id, event_id), so they simply union.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::harness::{self, CaseEdit, CaseReplica, CaseSeed, FieldChange, Traffic};

/// Rows per sync message.
const PAGE: usize = 1000;

/// The floor's own tables besides `harness::cases_schema` (the case table, its indexes and FTS).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events(case_id INTEGER NOT NULL, event_id INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(case_id, event_id)) WITHOUT ROWID;
-- sync bookkeeping (not part of the store's data model): one shared change seq;
-- case rows are re-logged on every write, events (immutable) are logged once, append-only
CREATE TABLE IF NOT EXISTS case_log(case_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, src INTEGER);
CREATE INDEX IF NOT EXISTS case_log_seq ON case_log(seq);
CREATE TABLE IF NOT EXISTS event_log(seq INTEGER PRIMARY KEY, case_id INTEGER NOT NULL, event_id INTEGER NOT NULL, src INTEGER);
";

const CASE_COLS: &str = "case_id, reference, service, requester_phone, requester_name, requester_language, locality, channel, mediator, unit, assignee, priority, description, status, rating, created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CaseRow {
    case_id: i64,
    reference: String,
    service: String,
    requester_phone: String,
    requester_name: String,
    requester_language: String,
    locality: String,
    channel: String,
    mediator: Option<String>,
    unit: String,
    assignee: Option<String>,
    priority: i64,
    description: String,
    status: i64,
    rating: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl CaseRow {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(CaseRow {
            case_id: r.get(0)?,
            reference: r.get(1)?,
            service: r.get(2)?,
            requester_phone: r.get(3)?,
            requester_name: r.get(4)?,
            requester_language: r.get(5)?,
            locality: r.get(6)?,
            channel: r.get(7)?,
            mediator: r.get(8)?,
            unit: r.get(9)?,
            assignee: r.get(10)?,
            priority: r.get(11)?,
            description: r.get(12)?,
            status: r.get(13)?,
            rating: r.get(14)?,
            created_at: r.get(15)?,
            updated_at: r.get(16)?,
        })
    }

    /// (column name, value) of every column but the key.
    fn columns(&self) -> [(&'static str, Value); 16] {
        let t = |s: &String| Value::Text(s.clone());
        let o = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
        [
            ("reference", t(&self.reference)),
            ("service", t(&self.service)),
            ("requester_phone", t(&self.requester_phone)),
            ("requester_name", t(&self.requester_name)),
            ("requester_language", t(&self.requester_language)),
            ("locality", t(&self.locality)),
            ("channel", t(&self.channel)),
            ("mediator", o(&self.mediator)),
            ("unit", t(&self.unit)),
            ("assignee", o(&self.assignee)),
            ("priority", Value::Integer(self.priority)),
            ("description", t(&self.description)),
            ("status", Value::Integer(self.status)),
            ("rating", self.rating.map_or(Value::Null, Value::Integer)),
            ("created_at", Value::Integer(self.created_at)),
            ("updated_at", Value::Integer(self.updated_at)),
        ]
    }

    /// Deterministic LWW key: (updated_at, encoded row).
    fn lww_key(&self) -> (i64, Vec<u8>) {
        (self.updated_at, postcard::to_stdvec(self).unwrap())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EventRow {
    case_id: i64,
    event_id: i64,
    kind: String,
    text: String,
    at: i64,
}

/// One sync message. `mark`: in a push, the client's receive watermark for this server (where
/// the server starts its answer); in an answer, the server's change seq at the time.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Batch {
    mark: i64,
    cases: Vec<CaseRow>,
    events: Vec<EventRow>,
}

/// A window (after, upper] of the change log: up to PAGE changed cases + the events logged in
/// the same seq window.
struct Page {
    cases: Vec<i64>,
    events: Vec<(i64, i64)>,
    upper: i64,
    full: bool,
}

pub struct Floor {
    conn: Connection,
    path: PathBuf,
    replica: u32,
    /// Last change seq used.
    seq: i64,
    /// Last event counter used by this replica for event ids ((replica+1) << 32 | counter).
    event_counter: i64,
}

impl Floor {
    fn bump(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    fn log_case(&mut self, case_id: i64, src: Option<u32>) {
        let seq = self.bump();
        self.conn
            .prepare_cached(
                "INSERT INTO case_log(case_id, seq, src) VALUES (?1, ?2, ?3)
                 ON CONFLICT(case_id) DO UPDATE SET seq = excluded.seq, src = excluded.src",
            )
            .unwrap()
            .execute(params![case_id, seq, src])
            .unwrap();
    }

    fn log_event(&mut self, case_id: i64, event_id: i64, src: Option<u32>) {
        let seq = self.bump();
        self.conn
            .prepare_cached(
                "INSERT INTO event_log(seq, case_id, event_id, src) VALUES (?1, ?2, ?3, ?4)",
            )
            .unwrap()
            .execute(params![seq, case_id, event_id, src])
            .unwrap();
    }

    /// Removes these cases' current text from the FTS index (before their row changes).
    fn fts_remove(&self, ids: &[i64]) {
        harness::fts_remove(&self.conn, "case_id", ids);
    }

    /// Indexes these cases' current text (after their row was written).
    fn fts_add(&self, ids: &[i64]) {
        harness::fts_add(&self.conn, "case_id", ids);
    }

    fn insert_case(&self, c: &CaseRow) {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO cases({CASE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .unwrap()
            .execute(params![
                c.case_id,
                c.reference,
                c.service,
                c.requester_phone,
                c.requester_name,
                c.requester_language,
                c.locality,
                c.channel,
                c.mediator,
                c.unit,
                c.assignee,
                c.priority,
                c.description,
                c.status,
                c.rating,
                c.created_at,
                c.updated_at
            ])
            .unwrap();
    }

    /// Write only the columns that differ (a careful in-place update: indexes on unchanged
    /// columns are not touched; the FTS trigger fires on every UPDATE regardless).
    fn overwrite_case(&self, local: &CaseRow, c: &CaseRow) {
        let changed: Vec<(&'static str, Value)> = c
            .columns()
            .into_iter()
            .zip(local.columns())
            .filter(|(new, old)| new.1 != old.1)
            .map(|(new, _)| new)
            .collect();
        self.update_columns(c.case_id, changed);
    }

    fn update_columns(&self, case_id: i64, cols: Vec<(&'static str, Value)>) {
        if cols.is_empty() {
            return;
        }
        let n = harness::update_columns(&self.conn, "case_id", &case_id, cols);
        assert_eq!(n, 1, "update of unknown case {case_id}");
    }

    fn get_case(&self, case_id: i64) -> Option<CaseRow> {
        self.conn
            .prepare_cached(&format!("SELECT {CASE_COLS} FROM cases WHERE case_id = ?1"))
            .unwrap()
            .query_row([case_id], CaseRow::from_row)
            .optional()
            .unwrap()
    }

    /// Returns true if the event was new.
    fn insert_event(&self, e: &EventRow) -> bool {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events(case_id, event_id, kind, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap()
            .execute(params![e.case_id, e.event_id, e.kind, e.text, e.at])
            .unwrap()
            == 1
    }

    /// Changes with seq in (after, top], not delivered by `exclude`: up to PAGE cases, and
    /// the events logged up to the last of those cases' seq.
    fn changed_page(&self, after: i64, top: i64, exclude: u32) -> Page {
        let logged: Vec<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT case_id, seq FROM case_log
                 WHERE seq > ?1 AND seq <= ?2 AND (src IS NULL OR src != ?3) ORDER BY seq LIMIT ?4",
            )
            .unwrap()
            .query_map(params![after, top, exclude, PAGE as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let full = logged.len() == PAGE;
        let upper = if full { logged[PAGE - 1].1 } else { top };
        let events = self
            .conn
            .prepare_cached(
                "SELECT case_id, event_id FROM event_log
                 WHERE seq > ?1 AND seq <= ?2 AND (src IS NULL OR src != ?3) ORDER BY seq",
            )
            .unwrap()
            .query_map(params![after, upper, exclude], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Page {
            cases: logged.into_iter().map(|(c, _)| c).collect(),
            events,
            upper,
            full,
        }
    }

    fn load_batch(&self, cases: &[i64], events: &[(i64, i64)], mark: i64) -> Batch {
        let mut ev = self
            .conn
            .prepare_cached(
                "SELECT case_id, event_id, kind, text, at FROM events WHERE case_id = ?1 AND event_id = ?2",
            )
            .unwrap();
        Batch {
            mark,
            cases: cases
                .iter()
                .map(|&c| self.get_case(c).expect("logged case"))
                .collect(),
            events: events
                .iter()
                .map(|&(c, e)| {
                    ev.query_row([c, e], |r| {
                        Ok(EventRow {
                            case_id: r.get(0)?,
                            event_id: r.get(1)?,
                            kind: r.get(2)?,
                            text: r.get(3)?,
                            at: r.get(4)?,
                        })
                    })
                    .unwrap()
                })
                .collect(),
        }
    }

    /// Apply a peer's rows in one transaction. Returns (our rows that beat the incoming ones,
    /// which the server sends back; ids of cases left untouched, which the server must not send
    /// again in this exchange). On the client side (`answer_losers == false`) a local row that
    /// wins is re-logged as a local change so it is pushed next time.
    fn apply(&mut self, batch: Batch, from: u32, answer_losers: bool) -> (Vec<CaseRow>, Vec<i64>) {
        let mut ours = Vec::new();
        let mut untouched = Vec::new();
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Decide every row first, so the text index is updated in two statements.
        let decided: Vec<(CaseRow, Option<CaseRow>)> = batch
            .cases
            .into_iter()
            .map(|row| {
                let local = self.get_case(row.case_id);
                (row, local)
            })
            .collect();
        let overwritten: Vec<i64> = decided
            .iter()
            .filter(|(row, local)| local.as_ref().is_some_and(|l| row.lww_key() > l.lww_key()))
            .map(|(row, _)| row.case_id)
            .collect();
        self.fts_remove(&overwritten);
        let mut reindex = Vec::new();
        for (row, local) in decided {
            match local {
                None => {
                    self.insert_case(&row);
                    self.log_case(row.case_id, Some(from));
                    reindex.push(row.case_id);
                }
                Some(local) => match row.lww_key().cmp(&local.lww_key()) {
                    std::cmp::Ordering::Greater => {
                        self.overwrite_case(&local, &row);
                        self.log_case(row.case_id, Some(from));
                        reindex.push(row.case_id);
                    }
                    std::cmp::Ordering::Equal => untouched.push(row.case_id),
                    std::cmp::Ordering::Less => {
                        untouched.push(row.case_id);
                        if answer_losers {
                            ours.push(local);
                        } else {
                            self.log_case(row.case_id, None);
                        }
                    }
                },
            }
        }
        self.fts_add(&reindex);
        for e in batch.events {
            if self.insert_event(&e) {
                self.log_event(e.case_id, e.event_id, Some(from));
            }
        }
        self.conn.execute_batch("COMMIT").unwrap();
        (ours, untouched)
    }
}

fn ship(t: &mut Traffic, b: &Batch) -> Batch {
    let bytes = postcard::to_stdvec(b).unwrap();
    t.record(&bytes);
    postcard::from_bytes(&bytes).unwrap_or_else(|e| harness::decode_err(e))
}

impl CaseReplica for Floor {
    const NAME: &'static str = "floor";

    fn open(path: &Path, replica: u32) -> Self {
        let conn = harness::open_sqlite(path);
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(&harness::cases_schema("case_id INTEGER PRIMARY KEY", ""))
            .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(harness::PEERS_SQL).unwrap();
        let seq = conn
            .query_row(
                "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM case_log), (SELECT COALESCE(MAX(seq), 0) FROM event_log))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let event_counter = conn
            .query_row(
                "SELECT COALESCE(MAX(event_id & 4294967295), 0) FROM events WHERE (event_id >> 32) = ?1",
                [replica as i64 + 1],
                |r| r.get(0),
            )
            .unwrap();
        Floor {
            conn,
            path: path.to_owned(),
            replica,
            seq,
            event_counter,
        }
    }

    fn seed(&mut self, cases: &[CaseSeed]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for c in cases {
            let row = CaseRow {
                case_id: c.index as i64,
                reference: c.reference.clone(),
                service: c.service.to_string(),
                requester_phone: c.requester_phone.clone(),
                requester_name: c.requester_name.clone(),
                requester_language: c.requester_language.to_string(),
                locality: c.locality.to_string(),
                channel: c.channel.to_string(),
                mediator: None,
                unit: c.unit.clone(),
                assignee: Some(c.assignee.clone()),
                priority: c.priority,
                description: c.description.clone(),
                status: c.status,
                rating: None,
                created_at: c.created_at,
                updated_at: c.created_at,
            };
            self.insert_case(&row);
            self.log_case(row.case_id, None);
            for (i, e) in c.events.iter().enumerate() {
                let ev = EventRow {
                    case_id: row.case_id,
                    event_id: i as i64,
                    kind: e.kind.to_string(),
                    text: e.text.clone(),
                    at: e.at,
                };
                self.insert_event(&ev);
                self.log_event(ev.case_id, ev.event_id, None);
            }
        }
        let ids: Vec<i64> = cases.iter().map(|c| c.index as i64).collect();
        self.fts_add(&ids);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn edit(&mut self, edits: &[CaseEdit]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut ids: Vec<i64> = edits.iter().map(|e| e.index as i64).collect();
        ids.sort_unstable();
        ids.dedup();
        self.fts_remove(&ids);
        for e in edits {
            let case_id = e.index as i64;
            let mut cols: Vec<(&'static str, Value)> = e
                .fields
                .iter()
                .map(|f| {
                    let v = match f {
                        FieldChange::Status(i) | FieldChange::Priority(i) => Value::Integer(*i),
                        other => Value::Text(other.text()),
                    };
                    (f.name(), v)
                })
                .collect();
            cols.push(("updated_at", Value::Integer(e.at)));
            self.update_columns(case_id, cols);
            self.log_case(case_id, None);
            self.event_counter += 1;
            let ev = EventRow {
                case_id,
                event_id: ((self.replica as i64 + 1) << 32) | self.event_counter,
                kind: e.event.kind.to_string(),
                text: e.event.text.clone(),
                at: e.event.at,
            };
            self.insert_event(&ev);
            self.log_event(case_id, ev.event_id, None);
        }
        self.fts_add(&ids);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    /// Phase 1: the client pushes its rows changed since its `sent` mark (skipping rows it got
    /// from this server), page by page; the server applies each page and answers with its rows
    /// that win. Phase 2: the server sends its rows changed since the client's `recv` mark that
    /// the client did not deliver and did not just push.
    fn sync(c: &mut Self, s: &mut Self) -> Traffic {
        let mut t = Traffic::default();
        let (c_sent, c_recv) = harness::peer_marks(&c.conn, s.replica);
        let c_top = c.seq;
        // cases the server already has in the client's version after phase 1 (not re-sent)
        let mut skip: HashSet<i64> = HashSet::new();

        let mut after = c_sent;
        loop {
            let page = c.changed_page(after, c_top, s.replica);
            after = page.upper;
            let batch = ship(&mut t, &c.load_batch(&page.cases, &page.events, c_recv));
            let (ours, untouched) = s.apply(batch, c.replica, true);
            skip.extend(untouched);
            if !ours.is_empty() {
                let answer = Batch {
                    mark: s.seq,
                    cases: ours,
                    events: vec![],
                };
                let answer = ship(&mut t, &answer);
                c.apply(answer, s.replica, false);
            }
            if !page.full {
                break;
            }
        }

        let s_top = s.seq;
        let mut after = c_recv;
        let mut sent_any = false;
        loop {
            let mut page = s.changed_page(after, s_top, c.replica);
            after = page.upper;
            page.cases.retain(|id| !skip.contains(id));
            if !page.cases.is_empty() || !page.events.is_empty() || (!page.full && !sent_any) {
                let batch = ship(&mut t, &s.load_batch(&page.cases, &page.events, s_top));
                c.apply(batch, s.replica, false);
                sent_any = true;
            }
            if !page.full {
                break;
            }
        }
        harness::set_peer_marks(&c.conn, s.replica, c_top, s_top);
        t
    }

    fn digest(&self) -> u64 {
        let mut cases = self
            .conn
            .prepare(
                "SELECT case_id, reference, service, requester_phone, requester_name, requester_language,
                 locality, channel, unit, assignee, priority, description, status FROM cases ORDER BY case_id",
            )
            .unwrap();
        let mut events = self
            .conn
            .prepare("SELECT case_id, kind, text, at FROM events ORDER BY case_id")
            .unwrap();
        let mut ev_rows = events
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    (
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ),
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .peekable();
        let mut acc = 0u64;
        let mut rows = cases.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let case_id: i64 = r.get(0).unwrap();
            let mut fields = Vec::with_capacity(12);
            for i in 1..=12 {
                let v: rusqlite::types::Value = r.get(i).unwrap();
                fields.push(match v {
                    rusqlite::types::Value::Text(s) => s,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                });
            }
            let mut evs = Vec::new();
            while let Some((cid, _)) = ev_rows.peek() {
                if *cid < case_id {
                    ev_rows.next();
                } else if *cid == case_id {
                    evs.push(ev_rows.next().unwrap().1);
                } else {
                    break;
                }
            }
            acc = acc.wrapping_add(harness::case_hash(case_id as u32, &fields, &mut evs));
        }
        acc
    }

    fn file_bytes(&self) -> u64 {
        harness::db_file_bytes(&self.path)
    }
}
