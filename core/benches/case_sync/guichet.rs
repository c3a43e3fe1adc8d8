//! guichet-core itself, driven through its public API as a tablet, the
//! server and the gateway use it.

use crate::harness::{self, CaseEdit, CaseReplica, CaseSeed, FieldChange, Traffic};
use guichet_core::{
    wire, BatchLimit, CaseId, CaseQuery, Channel, EventKind, Field, NewCase, Priority, Status,
    Store, TimelineWhat, Value,
};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

pub struct Guichet {
    store: Store,
    path: PathBuf,
    /// Workload index -> case id. Every case is created by A, in index
    /// order, so ids sorted are indexes in order on every replica.
    ids: Vec<CaseId>,
}

/// Operations per sync message, as the sync client asks for.
const LIMIT: BatchLimit = BatchLimit {
    max_ops: 2_000,
    max_bytes: 1 << 20,
};

impl Guichet {
    fn case_id(&mut self, index: u32) -> CaseId {
        if self.ids.len() <= index as usize {
            self.ids = all_ids(&self.store);
        }
        self.ids[index as usize]
    }
}

/// Counts one message as it travels: `plain` before compression.
fn record(t: &mut Traffic, plain: usize, wire: usize) {
    t.messages += 1;
    t.raw_bytes += plain as u64;
    t.wire_bytes += wire as u64;
}

fn all_ids(store: &Store) -> Vec<CaseId> {
    store.case_ids().unwrap()
}

fn event_kind(kind: &str) -> EventKind {
    match kind {
        "visit" => EventKind::Visit,
        "contact" => EventKind::Contact,
        _ => EventKind::Note,
    }
}

impl CaseReplica for Guichet {
    const NAME: &'static str = "guichet";

    fn open(path: &Path, replica: u32) -> Self {
        // Replica numbers start at 1.
        let store = Store::open(path, replica + 1).unwrap();
        let ids = all_ids(&store);
        Guichet {
            store,
            path: path.to_owned(),
            ids,
        }
    }

    fn seed(&mut self, cases: &[CaseSeed]) {
        let created = self
            .store
            .write(|w| {
                let mut ids = Vec::with_capacity(cases.len());
                for c in cases {
                    let id = w.create_case(&NewCase {
                        service: c.service.into(),
                        requester_phone: c.requester_phone.clone(),
                        requester_name: c.requester_name.clone(),
                        requester_language: c.requester_language.into(),
                        locality: c.locality.into(),
                        channel: c.channel.parse().unwrap_or(Channel::Field),
                        mediator: None,
                        unit: c.unit.clone(),
                        assignee: Some(c.assignee.clone()),
                        priority: Priority::from_code(c.priority).unwrap(),
                        description: c.description.clone(),
                        status: Status::from_code(c.status).unwrap(),
                    })?;
                    for e in &c.events {
                        w.add_event(id, event_kind(e.kind), &e.text)?;
                    }
                    ids.push(id);
                }
                Ok(ids)
            })
            .unwrap();
        self.ids.extend(created);
    }

    fn edit(&mut self, edits: &[CaseEdit]) {
        let targets: Vec<CaseId> = edits.iter().map(|e| self.case_id(e.index)).collect();
        self.store
            .write(|w| {
                for (e, id) in edits.iter().zip(&targets) {
                    let changes: Vec<(Field, Value)> = e
                        .fields
                        .iter()
                        .map(|f| match f {
                            FieldChange::Assignee(a) => (Field::Assignee, Value::text(a)),
                            FieldChange::Status(s) => (Field::Status, Value::Int(*s)),
                            FieldChange::Priority(p) => (Field::Priority, Value::Int(*p)),
                            FieldChange::Description(d) => (Field::Description, Value::text(d)),
                            FieldChange::Locality(l) => (Field::Locality, Value::text(*l)),
                        })
                        .collect();
                    w.update(*id, &changes)?;
                    w.add_event(*id, event_kind(e.event.kind), &e.event.text)?;
                }
                Ok(())
            })
            .unwrap();
    }

    /// As the sync protocol does it: the client sends its version vector
    /// and what the server lacks, the server answers with what the client
    /// lacks; again while either side had more.
    fn sync(client: &mut Self, server: &mut Self) -> Traffic {
        let mut t = Traffic::default();
        loop {
            let vv = postcard::to_stdvec(&client.store.version_vector().dots).unwrap();
            let up = client
                .store
                .changes_since(server.store.version_vector(), LIMIT)
                .unwrap();
            let up_wire = wire::encode(&up);
            let up_plain = postcard::to_stdvec(&up).unwrap().len();
            record(&mut t, vv.len() + up_plain, vv.len() + up_wire.len());
            server.store.apply_encoded(&up_wire).unwrap();
            let down = server
                .store
                .changes_since(client.store.version_vector(), LIMIT)
                .unwrap();
            let down_wire = wire::encode(&down);
            record(
                &mut t,
                postcard::to_stdvec(&down).unwrap().len(),
                down_wire.len(),
            );
            client.store.apply_encoded(&down_wire).unwrap();
            if !up.more && !down.more {
                return t;
            }
        }
    }

    fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for id in all_ids(&self.store) {
            let d = self.store.get_case(id).unwrap();
            format!("{:?}", d.case).hash(&mut h);
            format!("{:?}", d.conflicts).hash(&mut h);
            let mut events: Vec<String> = d
                .timeline
                .iter()
                .filter_map(|e| match &e.what {
                    TimelineWhat::Event { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect();
            events.sort();
            events.hash(&mut h);
        }
        h.finish()
    }

    fn file_bytes(&self) -> u64 {
        harness::db_file_bytes(&self.path)
    }

    fn query_latencies(&self) -> Vec<(&'static str, f64)> {
        query_latencies(&self.store)
    }
}

/// Query latencies on a replica holding the whole workload: what a tablet
/// asks its store, each timed over several runs.
/// One query, run for its latency.
type Query<'a> = Box<dyn Fn() + 'a>;

fn query_latencies(store: &Store) -> Vec<(&'static str, f64)> {
    let unit = Some("unit-07".to_string());
    let any = store
        .list_cases(&CaseQuery {
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    let (reference, phone) = (any[0].reference.clone(), any[0].requester_phone.clone());
    let queries: Vec<(&'static str, Query)> = vec![
        (
            "unit + status, 50 newest",
            Box::new(|| {
                let q = CaseQuery {
                    unit: unit.clone(),
                    status: Some(Status::InProgress),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "unit + assignee",
            Box::new(|| {
                let q = CaseQuery {
                    unit: unit.clone(),
                    assignee: Some("agent-042".into()),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "unit + locality",
            Box::new(|| {
                let q = CaseQuery {
                    unit: unit.clone(),
                    locality: Some("Ndiaganiao".into()),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "unit, recently changed",
            Box::new(|| {
                store
                    .list_cases(&CaseQuery {
                        unit: unit.clone(),
                        ..Default::default()
                    })
                    .unwrap();
            }),
        ),
        (
            "by reference",
            Box::new(|| {
                store.find_by_reference(&reference).unwrap();
            }),
        ),
        (
            "by requester phone",
            Box::new(|| {
                let q = CaseQuery {
                    requester_phone: Some(phone.clone()),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "text 'ndeye' (accents ignored)",
            Box::new(|| {
                let q = CaseQuery {
                    text: Some("ndeye".into()),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "text 'ndeye' in one unit",
            Box::new(|| {
                let q = CaseQuery {
                    text: Some("ndeye".into()),
                    unit: unit.clone(),
                    ..Default::default()
                };
                store.list_cases(&q).unwrap();
            }),
        ),
        (
            "case with timeline",
            Box::new(|| {
                store.get_case(any[0].id).unwrap();
            }),
        ),
        (
            "no-change delta (changes_since own vv)",
            Box::new(|| {
                store.changes_since(store.version_vector(), LIMIT).unwrap();
            }),
        ),
    ];
    queries
        .into_iter()
        .map(|(name, run)| {
            run();
            let t = std::time::Instant::now();
            let rounds = 20;
            for _ in 0..rounds {
                run();
            }
            (name, t.elapsed().as_secs_f64() * 1e3 / rounds as f64)
        })
        .collect()
}
