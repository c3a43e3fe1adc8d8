//! Reference 3: the `automerge` crate, one document per case, stored as
//! `docs(id TEXT PRIMARY KEY /* random UUID-like */, doc BLOB /* Automerge::save() */, seq)`.
//! Extra columns: `idx` (workload index -> doc mapping) and `src` (the peer the doc was last
//! synced with, so it is not offered back to it).
//!
//! Document shape: the 12 fields as scalar root keys (strings; priority/status as ints) and
//! `events`, a list of maps {kind, text, at}. Concurrent puts of one key: automerge's own rule
//! (all values kept as conflicts, the one with the highest op id reads as the value; the digest
//! uses the read value). Concurrent event appends both survive.
//!
//! Sync: the automerge sync protocol (`SyncDoc`, a fresh `sync::State` per doc per exchange,
//! i.e. no persisted sync state) run for every document changed since the peer's mark, in
//! pages of `PAGE` documents: all of a page's per-document sync messages travel in one
//! envelope per direction, round trip after round trip, until neither side has anything left
//! to say. Phase 1 pages are the client's changed docs, phase 2 pages the server's.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use automerge::sync::{self, SyncDoc};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::harness::{
    self, uuid_like, CaseEdit, CaseReplica, CaseSeed, FieldChange, Traffic, FIELD_NAMES,
};
use crate::workload::Rng;

const PAGE: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct Item {
    id: String,
    idx: u32,
    msg: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    mark: i64,
    items: Vec<Item>,
}

pub struct AutomergeDocs {
    conn: Connection,
    path: PathBuf,
    replica: u32,
    actor: ActorId,
    seq: i64,
    rng: Rng,
}

struct Loaded {
    idx: u32,
    doc: Automerge,
    state: sync::State,
    heads0: Vec<ChangeHash>,
}

/// One side of a page being synced: the docs it has loaded for this page.
struct Side<'a> {
    db: &'a mut AutomergeDocs,
    docs: HashMap<String, Loaded>,
}

impl Side<'_> {
    fn load(&mut self, id: &str, idx: u32) {
        if self.docs.contains_key(id) {
            return;
        }
        let blob: Option<Vec<u8>> = self
            .db
            .conn
            .prepare_cached("SELECT doc FROM docs WHERE id = ?1")
            .unwrap()
            .query_row([id], |r| r.get(0))
            .optional()
            .unwrap();
        let doc = match blob {
            Some(b) => Automerge::load(&b).expect("load doc"),
            None => Automerge::new(),
        }
        .with_actor(self.db.actor.clone());
        let heads0 = doc.get_heads();
        self.docs.insert(
            id.to_string(),
            Loaded {
                idx,
                doc,
                state: sync::State::new(),
                heads0,
            },
        );
    }

    fn generate(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        for (id, l) in self.docs.iter_mut() {
            if let Some(m) = l.doc.generate_sync_message(&mut l.state) {
                out.push(Item {
                    id: id.clone(),
                    idx: l.idx,
                    msg: m.encode(),
                });
            }
        }
        out
    }

    fn receive(&mut self, items: Vec<Item>) {
        for it in items {
            self.load(&it.id, it.idx);
            let l = self.docs.get_mut(&it.id).unwrap();
            let m = sync::Message::decode(&it.msg).unwrap_or_else(|e| harness::decode_err(e));
            l.doc
                .receive_sync_message(&mut l.state, m)
                .expect("receive");
        }
    }

    /// Persist the docs whose heads moved, marking them as in sync with `peer`. Returns the
    /// ids of the docs left untouched.
    fn save(&mut self, peer: u32) -> Vec<String> {
        let mut untouched = Vec::new();
        self.db.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for (id, l) in &self.docs {
            if l.doc.get_heads() != l.heads0 {
                let bytes = l.doc.save();
                self.db.write(id, l.idx, &bytes, Some(peer));
            } else {
                untouched.push(id.clone());
            }
        }
        self.db.conn.execute_batch("COMMIT").unwrap();
        untouched
    }
}

fn ship(t: &mut Traffic, mark: i64, items: Vec<Item>) -> Vec<Item> {
    let bytes = postcard::to_stdvec(&Envelope { mark, items }).unwrap();
    t.record(&bytes);
    let env: Envelope = postcard::from_bytes(&bytes).unwrap_or_else(|e| harness::decode_err(e));
    env.items
}

/// Run the sync protocol to completion for the docs `ids` of the initiating side. Returns the
/// ids of the docs the responder did not have to change.
fn sync_page(
    t: &mut Traffic,
    init: &mut AutomergeDocs,
    resp: &mut AutomergeDocs,
    ids: &[(String, u32)],
    mark: i64,
) -> Vec<String> {
    let (init_id, resp_id) = (init.replica, resp.replica);
    let mut a = Side {
        db: init,
        docs: HashMap::new(),
    };
    let mut b = Side {
        db: resp,
        docs: HashMap::new(),
    };
    for (id, idx) in ids {
        a.load(id, *idx);
    }
    let mut out = a.generate();
    let mut to_b = true;
    while !out.is_empty() {
        let items = ship(t, mark, out);
        let rx = if to_b { &mut b } else { &mut a };
        rx.receive(items);
        out = rx.generate();
        to_b = !to_b;
    }
    for (id, l) in &a.docs {
        let other = b.docs.get(id).expect("both sides saw the doc");
        assert_eq!(
            l.doc.get_heads(),
            other.doc.get_heads(),
            "doc {id} not in sync"
        );
    }
    a.save(resp_id);
    b.save(init_id)
}

impl AutomergeDocs {
    fn write(&mut self, id: &str, idx: u32, doc: &[u8], src: Option<u32>) {
        self.seq += 1;
        self.conn
            .prepare_cached(
                "INSERT INTO docs(id, idx, doc, seq, src) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, seq = excluded.seq, src = excluded.src",
            )
            .unwrap()
            .execute(params![id, idx, doc, self.seq, src])
            .unwrap();
    }

    fn changed_page(&self, after: i64, upto: i64, exclude: u32) -> Vec<(String, u32, i64)> {
        self.conn
            .prepare_cached(
                "SELECT id, idx, seq FROM docs
                 WHERE seq > ?1 AND seq <= ?2 AND (src IS NULL OR src != ?3) ORDER BY seq LIMIT ?4",
            )
            .unwrap()
            .query_map(params![after, upto, exclude, PAGE as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

fn scalar_text(v: Option<(Value<'_>, automerge::ObjId)>) -> String {
    match v {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        },
        Some((other, _)) => format!("{other:?}"),
        None => String::new(),
    }
}

fn put_field(tx: &mut impl Transactable, f: &FieldChange) {
    match f {
        FieldChange::Assignee(s) | FieldChange::Description(s) => {
            tx.put(ROOT, f.name(), s.as_str())
        }
        FieldChange::Status(i) | FieldChange::Priority(i) => tx.put(ROOT, f.name(), *i),
        FieldChange::Locality(s) => tx.put(ROOT, f.name(), *s),
    }
    .unwrap();
}

impl CaseReplica for AutomergeDocs {
    const NAME: &'static str = "automerge";

    fn open(path: &Path, replica: u32) -> Self {
        let conn = harness::open_sqlite(path);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs(id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, doc BLOB NOT NULL, seq INTEGER NOT NULL, src INTEGER);
             CREATE INDEX IF NOT EXISTS docs_seq ON docs(seq);",
        )
        .unwrap();
        conn.execute_batch(harness::PEERS_SQL).unwrap();
        let seq = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM docs", [], |r| r.get(0))
            .unwrap();
        let mut actor = vec![0x47u8; 16];
        actor[15] = replica as u8;
        actor[14] = (replica >> 8) as u8;
        AutomergeDocs {
            conn,
            path: path.to_owned(),
            replica,
            actor: ActorId::from(actor),
            seq,
            rng: Rng::new(0xA070_0000 + replica as u64 + ((seq as u64) << 8)),
        }
    }

    fn seed(&mut self, cases: &[CaseSeed]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for c in cases {
            let mut doc = Automerge::new().with_actor(self.actor.clone());
            let mut tx = doc.transaction();
            for (name, val) in FIELD_NAMES.iter().zip(c.field_texts()) {
                match *name {
                    "priority" => tx.put(ROOT, *name, c.priority),
                    "status" => tx.put(ROOT, *name, c.status),
                    _ => tx.put(ROOT, *name, val),
                }
                .unwrap();
            }
            let events = tx.put_object(ROOT, "events", ObjType::List).unwrap();
            for (i, e) in c.events.iter().enumerate() {
                let m = tx.insert_object(&events, i, ObjType::Map).unwrap();
                tx.put(&m, "kind", e.kind).unwrap();
                tx.put(&m, "text", e.text.as_str()).unwrap();
                tx.put(&m, "at", e.at).unwrap();
            }
            tx.commit_with(CommitOptions::default().with_time(c.created_at / 1000));
            let id = uuid_like(&mut self.rng);
            let bytes = doc.save();
            self.write(&id, c.index, &bytes, None);
        }
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn edit(&mut self, edits: &[CaseEdit]) {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        for e in edits {
            let (id, blob): (String, Vec<u8>) = self
                .conn
                .prepare_cached("SELECT id, doc FROM docs WHERE idx = ?1")
                .unwrap()
                .query_row([e.index], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            let mut doc = Automerge::load(&blob)
                .expect("load doc")
                .with_actor(self.actor.clone());
            let (_, events) = doc.get(ROOT, "events").unwrap().expect("events list");
            let len = doc.length(&events);
            let mut tx = doc.transaction();
            for f in &e.fields {
                put_field(&mut tx, f);
            }
            let m = tx.insert_object(&events, len, ObjType::Map).unwrap();
            tx.put(&m, "kind", e.event.kind).unwrap();
            tx.put(&m, "text", e.event.text.as_str()).unwrap();
            tx.put(&m, "at", e.event.at).unwrap();
            tx.commit_with(CommitOptions::default().with_time(e.at / 1000));
            let bytes = doc.save();
            self.write(&id, e.index, &bytes, None);
        }
        self.conn.execute_batch("COMMIT").unwrap();
    }

    fn sync(c: &mut Self, s: &mut Self) -> Traffic {
        let mut t = Traffic::default();
        let (c_sent, c_recv) = harness::peer_marks(&c.conn, s.replica);
        let c_top = c.seq;
        // docs the server already had in the client's version in phase 1 (not re-synced)
        let mut skip: HashSet<String> = HashSet::new();

        // phase 1: the client's changed docs
        let mut after = c_sent;
        let mut first = true;
        loop {
            let page = c.changed_page(after, c_top, s.replica);
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = last.2;
            }
            let ids: Vec<(String, u32)> = page.into_iter().map(|(id, idx, _)| (id, idx)).collect();
            if ids.is_empty() {
                if first {
                    // nothing to offer: the opening message only carries the client's mark
                    ship(&mut t, c_recv, Vec::new());
                }
            } else {
                skip.extend(sync_page(&mut t, c, s, &ids, c_recv));
            }
            first = false;
            if !full {
                break;
            }
        }

        // phase 2: the server's changed docs the client has not just synced
        let s_top = s.seq;
        let mut after = c_recv;
        let mut sent_any = false;
        loop {
            let page = s.changed_page(after, s_top, c.replica);
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = last.2;
            }
            let ids: Vec<(String, u32)> = page
                .into_iter()
                .filter(|(id, ..)| !skip.contains(id))
                .map(|(id, idx, _)| (id, idx))
                .collect();
            if !ids.is_empty() {
                sync_page(&mut t, s, c, &ids, s_top);
                sent_any = true;
            }
            if !full {
                break;
            }
        }
        if !sent_any {
            // the server still answers the client's opening message with its mark
            ship(&mut t, s_top, Vec::new());
        }
        harness::set_peer_marks(&c.conn, s.replica, c_top, s.seq);
        t
    }

    fn digest(&self) -> u64 {
        let mut stmt = self.conn.prepare("SELECT idx, doc FROM docs").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut acc = 0u64;
        while let Some(r) = rows.next().unwrap() {
            let idx: u32 = r.get(0).unwrap();
            let doc = Automerge::load(r.get_ref(1).unwrap().as_blob().unwrap()).unwrap();
            let fields: Vec<String> = FIELD_NAMES
                .iter()
                .map(|name| scalar_text(doc.get(ROOT, *name).unwrap()))
                .collect();
            let (_, events) = doc.get(ROOT, "events").unwrap().expect("events list");
            let mut evs: Vec<(String, String, i64)> = (0..doc.length(&events))
                .map(|i| {
                    let (_, m) = doc.get(&events, i).unwrap().expect("event");
                    let at = scalar_text(doc.get(&m, "at").unwrap()).parse().unwrap();
                    (
                        scalar_text(doc.get(&m, "kind").unwrap()),
                        scalar_text(doc.get(&m, "text").unwrap()),
                        at,
                    )
                })
                .collect();
            acc = acc.wrapping_add(harness::case_hash(idx, &fields, &mut evs));
        }
        acc
    }

    fn file_bytes(&self) -> u64 {
        harness::db_file_bytes(&self.path)
    }
}
