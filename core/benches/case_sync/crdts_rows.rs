//! Reference 2: a straightforward `crdts` store. One state per case:
//! `Map<field, MVReg<String, actor>, actor>` for the 12 fields + a `GSet` of events, postcard
//! encoded into one row `cases(id TEXT PRIMARY KEY /* random UUID-like */, <columns>, state BLOB, seq)`.
//! Extra columns: `idx` (workload index -> case mapping) and `src` (the peer that delivered
//! the current state, so it is not echoed back to it).
//!
//! Beside the state, the row holds the case's current values in the store's columns
//! (`harness::cases_schema`: the tablet's query indexes and FTS5 index), rewritten on every
//! write of the state (seed, edit, merge of received state). A field holding several concurrent
//! values shows the greatest one (by value) in its column; `created_at` / `updated_at` are the
//! earliest / latest event time. The FTS index is maintained in batches as the floor does.
//!
//! Sync is state based: ship the whole state of every case changed since the peer's mark;
//! the receiver merges (`CvRDT::merge`) and writes the row back. Concurrent writes of one field
//! are kept side by side by the MVReg (the digest hashes the sorted set of values).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crdts::{CmRDT, CvRDT, GSet, MVReg, Map};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde::{Deserialize, Serialize};

use crate::harness::{
    self, uuid_like, CaseCols, CaseEdit, CaseReplica, CaseSeed, Traffic, CASE_COLS, FIELD_NAMES,
    INT_FIELDS,
};
use crate::workload::Rng;

const PAGE: usize = 1000;

type Actor = u32;
type Fields = Map<String, MVReg<String, Actor>, Actor>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Event {
    id: u64,
    kind: String,
    text: String,
    at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CaseState {
    fields: Fields,
    events: GSet<Event>,
}

impl CaseState {
    fn put(&mut self, actor: Actor, field: &str, val: String) {
        let ctx = self.fields.read_ctx().derive_add_ctx(actor);
        let op = self
            .fields
            .update(field, ctx, |reg, ctx| reg.write(val, ctx));
        self.fields.apply(op);
    }

    fn add_event(&mut self, actor: Actor, kind: &str, text: &str, at: i64) {
        // unique per (actor, case): the actor sees its own earlier events
        let id = ((actor as u64 + 1) << 32) | (self.events.read().len() as u64 + 1);
        self.events.insert(Event {
            id,
            kind: kind.to_string(),
            text: text.to_string(),
            at,
        });
    }

    /// CvRDT merge of both parts.
    fn merge_from(&mut self, other: CaseState) {
        self.fields.merge(other.fields);
        self.events.merge(other.events);
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap()
    }

    fn decode(bytes: &[u8]) -> Self {
        postcard::from_bytes(bytes).unwrap_or_else(|e| harness::decode_err(e))
    }

    /// The store's columns: each field's value (the greatest of concurrent values).
    fn columns(&self) -> CaseCols {
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for e in self.events.read() {
            first = first.min(e.at);
            last = last.max(e.at);
        }
        if first > last {
            (first, last) = (0, 0);
        }
        harness::case_cols(
            |name| {
                let vals = self
                    .fields
                    .get(&name.to_string())
                    .val
                    .map(|reg| reg.read().val)
                    .unwrap_or_default();
                if INT_FIELDS.contains(&name) {
                    let max = vals
                        .iter()
                        .map(|v| v.parse::<i64>().expect("int field"))
                        .max();
                    Value::Integer(max.unwrap_or(0))
                } else {
                    Value::Text(vals.into_iter().max().unwrap_or_default())
                }
            },
            first,
            last,
        )
    }
}

/// What applying one received state does to the local row.
struct Merge {
    /// The row's columns (None: the case is new here; the received state is inserted as is).
    old: Option<CaseCols>,
    /// The columns of the state to write, if any (new here, or changed by the merge).
    new: Option<CaseCols>,
    /// The merged state, encoded if it is written or sent back (None for a new case).
    merged: Option<Vec<u8>>,
    same_as_incoming: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    id: String,
    idx: u32,
    state: Vec<u8>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Batch {
    mark: i64,
    items: Vec<Item>,
}

pub struct CrdtsRows {
    conn: Connection,
    path: PathBuf,
    replica: u32,
    seq: i64,
    rng: Rng,
}

impl CrdtsRows {
    fn bump(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    /// Insert a new case row: its columns, then its state.
    fn insert(&mut self, id: &str, idx: u32, cols: &CaseCols, state: &[u8], src: Option<u32>) {
        let seq = self.bump();
        let sql = format!(
            "INSERT INTO cases(id, idx, {}, state, seq, src) VALUES ({})",
            CASE_COLS.join(", "),
            (1..=CASE_COLS.len() + 5)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut params: Vec<&dyn ToSql> = vec![&id, &idx];
        params.extend(cols.iter().map(|v| v as &dyn ToSql));
        params.extend([&state as &dyn ToSql, &seq, &src]);
        self.conn
            .prepare_cached(&sql)
            .unwrap()
            .execute(params.as_slice())
            .unwrap();
    }

    /// Rewrite a case row's state, and those of its columns that changed.
    fn update(&mut self, id: &str, old: &CaseCols, new: CaseCols, state: &[u8], src: Option<u32>) {
        let seq = self.bump();
        let mut cols = harness::changed_columns(old, new);
        cols.extend([
            ("state", Value::Blob(state.to_vec())),
            ("seq", Value::Integer(seq)),
            ("src", src.map_or(Value::Null, |s| Value::Integer(s.into()))),
        ]);
        let n = harness::update_columns(&self.conn, "id", &id, cols);
        assert_eq!(n, 1, "update of unknown case {id}");
    }

    /// A case row's columns and state, by id.
    fn get(&self, id: &str) -> Option<(CaseCols, Vec<u8>)> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {}, state FROM cases WHERE id = ?1",
                CASE_COLS.join(", ")
            ))
            .unwrap()
            .query_row([id], |r| {
                Ok((harness::read_case_cols(r, 0)?, r.get(CASE_COLS.len())?))
            })
            .optional()
            .unwrap()
    }

    fn changed_page(
        &self,
        after: i64,
        upto: i64,
        exclude: u32,
    ) -> Vec<(String, u32, Vec<u8>, i64)> {
        self.conn
            .prepare_cached(
                "SELECT id, idx, state, seq FROM cases
                 WHERE seq > ?1 AND seq <= ?2 AND (src IS NULL OR src != ?3) ORDER BY seq LIMIT ?4",
            )
            .unwrap()
            .query_map(params![after, upto, exclude, PAGE as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Merge a peer's states in one transaction. Returns (the merged states that differ from
    /// what the peer sent, which the server sends back; ids of rows left untouched, which the
    /// server must not send again in this exchange). On the client side a merge result that
    /// differs from the incoming state is recorded as a local change (pushed next time).
    fn apply(&mut self, batch: Batch, from: u32, answer: bool) -> (Vec<Item>, Vec<String>) {
        let mut back = Vec::new();
        let mut untouched = Vec::new();
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Merge every state first, so the text index is updated in two statements.
        let decided: Vec<(Item, Merge)> = batch
            .items
            .into_iter()
            .map(|item| {
                let incoming = CaseState::decode(&item.state);
                let merge = match self.get(&item.id) {
                    None => Merge {
                        old: None,
                        new: Some(incoming.columns()),
                        merged: None,
                        same_as_incoming: true,
                    },
                    Some((old, bytes)) => {
                        let local = CaseState::decode(&bytes);
                        let mut merged = local.clone();
                        merged.merge_from(incoming.clone());
                        let changed = merged != local;
                        let same_as_incoming = merged == incoming;
                        Merge {
                            old: Some(old),
                            new: changed.then(|| merged.columns()),
                            merged: (changed || (!same_as_incoming && answer))
                                .then(|| merged.encode()),
                            same_as_incoming,
                        }
                    }
                };
                (item, merge)
            })
            .collect();
        let overwritten: Vec<&str> = decided
            .iter()
            .filter(|(_, m)| m.old.is_some() && m.new.is_some())
            .map(|(item, _)| item.id.as_str())
            .collect();
        harness::fts_remove(&self.conn, "id", &overwritten);
        let mut reindex = Vec::new();
        for (item, m) in decided {
            match (m.old, m.new) {
                (None, Some(cols)) => {
                    self.insert(&item.id, item.idx, &cols, &item.state, Some(from));
                    reindex.push(item.id);
                    continue;
                }
                (Some(old), Some(new)) => {
                    let bytes = m.merged.as_deref().expect("changed state is encoded");
                    let src = (m.same_as_incoming || answer).then_some(from);
                    self.update(&item.id, &old, new, bytes, src);
                    reindex.push(item.id.clone());
                }
                _ => untouched.push(item.id.clone()),
            }
            if !m.same_as_incoming && answer {
                back.push(Item {
                    id: item.id,
                    idx: item.idx,
                    state: m.merged.expect("answered state is encoded"),
                });
            }
        }
        harness::fts_add(&self.conn, "id", &reindex);
        self.conn.execute_batch("COMMIT").unwrap();
        (back, untouched)
    }
}

fn ship(t: &mut Traffic, b: &Batch) -> Batch {
    let bytes = postcard::to_stdvec(b).unwrap();
    t.record(&bytes);
    postcard::from_bytes(&bytes).unwrap_or_else(|e| harness::decode_err(e))
}

impl CaseReplica for CrdtsRows {
    const NAME: &'static str = "crdts";

    fn open(path: &Path, replica: u32) -> Self {
        let conn = harness::open_sqlite(path);
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(&harness::cases_schema(
            "id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE",
            "state BLOB NOT NULL, seq INTEGER NOT NULL, src INTEGER",
        ))
        .unwrap();
        conn.execute_batch("CREATE INDEX IF NOT EXISTS cases_seq ON cases(seq);")
            .unwrap();
        conn.execute_batch(harness::PEERS_SQL).unwrap();
        let seq = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM cases", [], |r| r.get(0))
            .unwrap();
        CrdtsRows {
            conn,
            path: path.to_owned(),
            replica,
            seq,
            rng: Rng::new(0xC0DE_0000 + replica as u64 + ((seq as u64) << 8)),
        }
    }

    fn seed(&mut self, cases: &[CaseSeed]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut ids = Vec::with_capacity(cases.len());
        for c in cases {
            let mut st = CaseState::default();
            for (name, val) in FIELD_NAMES.iter().zip(c.field_texts()) {
                st.put(self.replica, name, val);
            }
            for e in &c.events {
                st.add_event(self.replica, e.kind, &e.text, e.at);
            }
            let id = uuid_like(&mut self.rng);
            self.insert(&id, c.index, &st.columns(), &st.encode(), None);
            ids.push(id);
        }
        harness::fts_add(&self.conn, "id", &ids);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn edit(&mut self, edits: &[CaseEdit]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Read every edited row first, so the text index is updated in two statements.
        // (A batch names each case once: `workload::edit_plan` is a set.)
        let rows: Vec<(String, CaseCols, Vec<u8>)> = edits
            .iter()
            .map(|e| {
                self.conn
                    .prepare_cached(&format!(
                        "SELECT id, {}, state FROM cases WHERE idx = ?1",
                        CASE_COLS.join(", ")
                    ))
                    .unwrap()
                    .query_row([e.index], |r| {
                        Ok((
                            r.get(0)?,
                            harness::read_case_cols(r, 1)?,
                            r.get(CASE_COLS.len() + 1)?,
                        ))
                    })
                    .unwrap()
            })
            .collect();
        let ids: Vec<&str> = rows.iter().map(|(id, ..)| id.as_str()).collect();
        harness::fts_remove(&self.conn, "id", &ids);
        for (e, (id, cols, bytes)) in edits.iter().zip(&rows) {
            let mut st = CaseState::decode(bytes);
            for f in &e.fields {
                st.put(self.replica, f.name(), f.text());
            }
            st.add_event(self.replica, e.event.kind, &e.event.text, e.event.at);
            self.update(id, cols, st.columns(), &st.encode(), None);
        }
        harness::fts_add(&self.conn, "id", &ids);
        self.conn.execute_batch("COMMIT").unwrap();
    }

    /// Same two phases as the floor: the client pushes the states it changed since its `sent`
    /// mark, the server merges and answers the merged states that differ from what was pushed;
    /// then the server sends the states it changed since the client's `recv` mark.
    fn sync(c: &mut Self, s: &mut Self) -> Traffic {
        let mut t = Traffic::default();
        let (c_sent, c_recv) = harness::peer_marks(&c.conn, s.replica);
        let c_top = c.seq;
        // rows the server already has in the client's version after phase 1 (not re-sent)
        let mut skip: HashSet<String> = HashSet::new();

        let mut after = c_sent;
        let mut first = true;
        loop {
            let page = c.changed_page(after, c_top, s.replica);
            if page.is_empty() && !first {
                break;
            }
            first = false;
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = last.3;
            }
            let items = page
                .into_iter()
                .map(|(id, idx, state, _)| Item { id, idx, state })
                .collect();
            let batch = ship(
                &mut t,
                &Batch {
                    mark: c_recv,
                    items,
                },
            );
            let (back, untouched) = s.apply(batch, c.replica, true);
            skip.extend(untouched);
            if !back.is_empty() {
                let answer = ship(
                    &mut t,
                    &Batch {
                        mark: s.seq,
                        items: back,
                    },
                );
                c.apply(answer, s.replica, false);
            }
            if !full {
                break;
            }
        }

        let s_top = s.seq;
        let mut after = c_recv;
        let mut sent_any = false;
        loop {
            let page = s.changed_page(after, s_top, c.replica);
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = last.3;
            }
            let items: Vec<Item> = page
                .into_iter()
                .filter(|(id, ..)| !skip.contains(id))
                .map(|(id, idx, state, _)| Item { id, idx, state })
                .collect();
            if !items.is_empty() || (!full && !sent_any) {
                let batch = ship(&mut t, &Batch { mark: s_top, items });
                c.apply(batch, s.replica, false);
                sent_any = true;
            }
            if !full {
                break;
            }
        }
        harness::set_peer_marks(&c.conn, s.replica, c_top, s_top);
        t
    }

    fn digest(&self) -> u64 {
        let mut stmt = self.conn.prepare("SELECT idx, state FROM cases").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut acc = 0u64;
        while let Some(r) = rows.next().unwrap() {
            let idx: u32 = r.get(0).unwrap();
            let st = CaseState::decode(r.get_ref(1).unwrap().as_blob().unwrap());
            let fields: Vec<String> = FIELD_NAMES
                .iter()
                .map(|name| {
                    let mut vals = st
                        .fields
                        .get(&name.to_string())
                        .val
                        .map(|reg| reg.read().val)
                        .unwrap_or_default();
                    vals.sort();
                    vals.join("\u{1f}")
                })
                .collect();
            let mut evs: Vec<(String, String, i64)> = st
                .events
                .read()
                .into_iter()
                .map(|e| (e.kind, e.text, e.at))
                .collect();
            acc = acc.wrapping_add(harness::case_hash(idx, &fields, &mut evs));
        }
        acc
    }

    fn file_bytes(&self) -> u64 {
        harness::db_file_bytes(&self.path)
    }
}
