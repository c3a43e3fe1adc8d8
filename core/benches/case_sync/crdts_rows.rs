//! Reference 2: a straightforward `crdts` store. One state per case:
//! `Map<field, MVReg<String, actor>, actor>` for the 12 fields + a `GSet` of events, postcard
//! encoded into one row `cases(id TEXT PRIMARY KEY /* random UUID-like */, state BLOB, seq)`.
//! Extra columns: `idx` (workload index -> case mapping) and `src` (the peer that delivered
//! the current state, so it is not echoed back to it).
//!
//! Sync is state based: ship the whole state of every case changed since the peer's mark;
//! the receiver merges (`CvRDT::merge`) and writes the row back. Concurrent writes of one field
//! are kept side by side by the MVReg (the digest hashes the sorted set of values).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crdts::{CmRDT, CvRDT, GSet, MVReg, Map};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::harness::{self, uuid_like, CaseEdit, CaseReplica, CaseSeed, Traffic, FIELD_NAMES};
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

    fn write(&mut self, id: &str, idx: u32, state: &[u8], src: Option<u32>) {
        let seq = self.bump();
        self.conn
            .prepare_cached(
                "INSERT INTO cases(id, idx, state, seq, src) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, seq = excluded.seq, src = excluded.src",
            )
            .unwrap()
            .execute(params![id, idx, state, seq, src])
            .unwrap();
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
        for item in batch.items {
            let local: Option<Vec<u8>> = self
                .conn
                .prepare_cached("SELECT state FROM cases WHERE id = ?1")
                .unwrap()
                .query_row([&item.id], |r| r.get(0))
                .optional()
                .unwrap();
            match local {
                None => self.write(&item.id, item.idx, &item.state, Some(from)),
                Some(local) => {
                    let local = CaseState::decode(&local);
                    let incoming = CaseState::decode(&item.state);
                    let mut merged = local.clone();
                    merged.merge_from(incoming.clone());
                    let same_as_incoming = merged == incoming;
                    if merged != local {
                        let bytes = merged.encode();
                        let src = (same_as_incoming || answer).then_some(from);
                        self.write(&item.id, item.idx, &bytes, src);
                    } else {
                        untouched.push(item.id.clone());
                    }
                    if !same_as_incoming && answer {
                        back.push(Item {
                            id: item.id,
                            idx: item.idx,
                            state: merged.encode(),
                        });
                    }
                }
            }
        }
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
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS cases(id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, state BLOB NOT NULL, seq INTEGER NOT NULL, src INTEGER);
             CREATE INDEX IF NOT EXISTS cases_seq ON cases(seq);",
        )
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
        for c in cases {
            let mut st = CaseState::default();
            for (name, val) in FIELD_NAMES.iter().zip(c.field_texts()) {
                st.put(self.replica, name, val);
            }
            for e in &c.events {
                st.add_event(self.replica, e.kind, &e.text, e.at);
            }
            let id = uuid_like(&mut self.rng);
            self.write(&id, c.index, &st.encode(), None);
        }
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn edit(&mut self, edits: &[CaseEdit]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for e in edits {
            let (id, bytes): (String, Vec<u8>) = self
                .conn
                .prepare_cached("SELECT id, state FROM cases WHERE idx = ?1")
                .unwrap()
                .query_row([e.index], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            let mut st = CaseState::decode(&bytes);
            for f in &e.fields {
                st.put(self.replica, f.name(), f.text());
            }
            st.add_event(self.replica, e.event.kind, &e.event.text, e.event.at);
            self.write(&id, e.index, &st.encode(), None);
        }
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
