//! Reference 3: the `automerge` crate, one document per case, stored as
//! `cases(id TEXT PRIMARY KEY /* random UUID-like */, <columns>, doc BLOB /* Automerge::save() */, seq)`.
//! Extra columns: `idx` (workload index -> doc mapping) and `src` (the peer the doc was last
//! synced with, so it is not offered back to it).
//!
//! Document shape: the 12 fields as scalar root keys (strings; priority/status as ints) and
//! `events`, a list of maps {kind, text, at}. Concurrent puts of one key: automerge's own rule
//! (all values kept as conflicts, the one with the highest op id reads as the value; the digest
//! uses the read value). Concurrent event appends both survive.
//!
//! Beside the document, the row holds the case's current values in the store's columns
//! (`harness::cases_schema`: the tablet's query indexes and FTS5 index), rewritten whenever the
//! document is saved (seed, edit, sync). Each column shows the document's read value;
//! `created_at` / `updated_at` are the earliest / latest event time. The FTS index is
//! maintained in batches as the floor does.
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
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde::{Deserialize, Serialize};

use crate::harness::{
    self, uuid_like, CaseCols, CaseEdit, CaseReplica, CaseSeed, FieldChange, Traffic, CASE_COLS,
    FIELD_NAMES,
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
    /// The row's columns when loaded (None: the doc is new here).
    cols: Option<CaseCols>,
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
        let row = self.db.get(id);
        let (cols, doc) = match row {
            Some((cols, b)) => (Some(cols), Automerge::load(&b).expect("load doc")),
            None => (None, Automerge::new()),
        };
        let doc = doc.with_actor(self.db.actor.clone());
        let heads0 = doc.get_heads();
        self.docs.insert(
            id.to_string(),
            Loaded {
                idx,
                cols,
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
        let mut moved = Vec::new();
        for (id, l) in &self.docs {
            if l.doc.get_heads() != l.heads0 {
                moved.push((id.as_str(), l));
            } else {
                untouched.push(id.clone());
            }
        }
        self.db.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let overwritten: Vec<&str> = moved
            .iter()
            .filter(|(_, l)| l.cols.is_some())
            .map(|(id, _)| *id)
            .collect();
        harness::fts_remove(&self.db.conn, "id", &overwritten);
        for (id, l) in &moved {
            let bytes = l.doc.save();
            let cols = columns(&l.doc);
            match &l.cols {
                None => self.db.insert(id, l.idx, &cols, &bytes, Some(peer)),
                Some(old) => self.db.update(id, old, cols, &bytes, Some(peer)),
            }
        }
        let ids: Vec<&str> = moved.iter().map(|(id, _)| *id).collect();
        harness::fts_add(&self.db.conn, "id", &ids);
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
    fn bump(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    /// Insert a new case row: its columns, then its document.
    fn insert(&mut self, id: &str, idx: u32, cols: &CaseCols, doc: &[u8], src: Option<u32>) {
        let seq = self.bump();
        let sql = format!(
            "INSERT INTO cases(id, idx, {}, doc, seq, src) VALUES ({})",
            CASE_COLS.join(", "),
            (1..=CASE_COLS.len() + 5)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut params: Vec<&dyn ToSql> = vec![&id, &idx];
        params.extend(cols.iter().map(|v| v as &dyn ToSql));
        params.extend([&doc as &dyn ToSql, &seq, &src]);
        self.conn
            .prepare_cached(&sql)
            .unwrap()
            .execute(params.as_slice())
            .unwrap();
    }

    /// Rewrite a case row's document, and those of its columns that changed.
    fn update(&mut self, id: &str, old: &CaseCols, new: CaseCols, doc: &[u8], src: Option<u32>) {
        let seq = self.bump();
        let mut cols = harness::changed_columns(old, new);
        cols.extend([
            ("doc", SqlValue::Blob(doc.to_vec())),
            ("seq", SqlValue::Integer(seq)),
            (
                "src",
                src.map_or(SqlValue::Null, |s| SqlValue::Integer(s.into())),
            ),
        ]);
        let n = harness::update_columns(&self.conn, "id", &id, cols);
        assert_eq!(n, 1, "update of unknown case {id}");
    }

    /// A case row's columns and document, by id.
    fn get(&self, id: &str) -> Option<(CaseCols, Vec<u8>)> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {}, doc FROM cases WHERE id = ?1",
                CASE_COLS.join(", ")
            ))
            .unwrap()
            .query_row([id], |r| {
                Ok((harness::read_case_cols(r, 0)?, r.get(CASE_COLS.len())?))
            })
            .optional()
            .unwrap()
    }

    fn changed_page(&self, after: i64, upto: i64, exclude: u32) -> Vec<(String, u32, i64)> {
        self.conn
            .prepare_cached(
                "SELECT id, idx, seq FROM cases
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

/// The store's columns of a case document: each field's read value.
fn columns(doc: &Automerge) -> CaseCols {
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    if let Some((_, events)) = doc.get(ROOT, "events").unwrap() {
        for i in 0..doc.length(&events) {
            let (_, m) = doc.get(&events, i).unwrap().expect("event");
            if let SqlValue::Integer(at) = scalar_value(doc.get(&m, "at").unwrap()) {
                first = first.min(at);
                last = last.max(at);
            }
        }
    }
    if first > last {
        (first, last) = (0, 0);
    }
    harness::case_cols(
        |name| scalar_value(doc.get(ROOT, name).unwrap()),
        first,
        last,
    )
}

fn scalar_value(v: Option<(Value<'_>, automerge::ObjId)>) -> SqlValue {
    match v {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(s) => SqlValue::Text(s.to_string()),
            ScalarValue::Int(i) => SqlValue::Integer(*i),
            _ => SqlValue::Null,
        },
        _ => SqlValue::Null,
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
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(&harness::cases_schema(
            "id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE",
            "doc BLOB NOT NULL, seq INTEGER NOT NULL, src INTEGER",
        ))
        .unwrap();
        conn.execute_batch("CREATE INDEX IF NOT EXISTS cases_seq ON cases(seq);")
            .unwrap();
        conn.execute_batch(harness::PEERS_SQL).unwrap();
        let seq = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM cases", [], |r| r.get(0))
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
        let mut ids = Vec::with_capacity(cases.len());
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
            self.insert(&id, c.index, &columns(&doc), &bytes, None);
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
                        "SELECT id, {}, doc FROM cases WHERE idx = ?1",
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
        for (e, (id, cols, blob)) in edits.iter().zip(&rows) {
            let mut doc = Automerge::load(blob)
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
            self.update(id, cols, columns(&doc), &bytes, None);
        }
        harness::fts_add(&self.conn, "id", &ids);
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
        let mut stmt = self.conn.prepare("SELECT idx, doc FROM cases").unwrap();
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
