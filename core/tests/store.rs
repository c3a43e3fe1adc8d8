//! What a tablet, the server and the gateway rely on the store for.

use guichet_core::{
    wire, Batch, BatchError, BatchLimit, CaseQuery, Channel, Clock, Dot, Error, EventKind, Field,
    FieldWrite, HistoryReader, NewCase, Op, OpBody, Priority, Stamp, Status, Store, SyncOutcome,
    TimelineWhat, Value,
};
use std::sync::Arc;
use tempfile::TempDir;

const DAY: u64 = 86_400_000;
const NOW: u64 = 1_790_000_000_000;

fn fixed_clock(ms: u64) -> Clock {
    Arc::new(move || ms)
}

fn store(dir: &TempDir, replica: u32) -> Store {
    store_at(dir, replica, NOW)
}

fn store_at(dir: &TempDir, replica: u32, ms: u64) -> Store {
    let path = dir.path().join(format!("r{replica}.db"));
    Store::open_with_clock(path, replica, fixed_clock(ms)).unwrap()
}

fn new_case(name: &str, locality: &str) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: "+221771234567".into(),
        requester_name: name.into(),
        requester_language: "wo".into(),
        locality: locality.into(),
        channel: Channel::Field,
        mediator: None,
        unit: "unit-01".into(),
        assignee: None,
        priority: Priority::Normal,
        description: "Extrait d'acte de naissance pour l'inscription à l'école".into(),
        status: Status::Received,
    }
}

/// Sends everything `from` has that `to` lacks.
fn sync(from: &Store, to: &mut Store) {
    loop {
        let batch = from
            .changes_since(to.version_vector(), BatchLimit::default())
            .unwrap();
        to.apply(&batch).unwrap();
        if !batch.more {
            break;
        }
    }
}

fn both_ways(a: &mut Store, b: &mut Store) {
    sync(a, b);
    sync(b, a);
}

fn status_value(s: Status) -> Value {
    Value::Int(s.code() as i64)
}

#[test]
fn a_created_case_is_found_by_id_and_reference_and_typos_are_refused() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 7);
    let id = s
        .write(|w| w.create_case(&new_case("Awa Diop", "Ndande")))
        .unwrap();
    let detail = s.get_case(id).unwrap();
    assert_eq!(detail.case.requester_name, "Awa Diop");
    assert_eq!(detail.case.status, Status::Received);
    assert_eq!(detail.timeline.len(), 1);
    let reference = detail.case.reference.clone();
    assert_eq!(reference.len(), 8);
    assert_eq!(s.find_by_reference(&reference).unwrap().id, id);
    let mut typo = reference.clone().into_bytes();
    typo[3] = if typo[3] == b'9' { b'0' } else { typo[3] + 1 };
    let typo = String::from_utf8(typo).unwrap();
    assert!(matches!(
        s.find_by_reference(&typo),
        Err(Error::InvalidReference(_))
    ));
    let second = s
        .write(|w| w.create_case(&new_case("Moussa Ba", "Kébémer")))
        .unwrap();
    assert_ne!(s.get_case(second).unwrap().case.reference, reference);
}

#[test]
fn the_workflow_refuses_invalid_transitions_and_early_ratings() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let id = s
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    let err = s
        .write(|w| w.change_status(id, Status::Closed))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidTransition {
            from: Status::Received,
            to: Status::Closed
        }
    ));
    assert!(matches!(
        s.write(|w| w.rate(id, 5)),
        Err(Error::InvalidInput(_))
    ));
    s.write(|w| {
        w.change_status(id, Status::InProgress)?;
        w.change_status(id, Status::Resolved)?;
        w.rate(id, 4)
    })
    .unwrap();
    let case = s.get_case(id).unwrap().case;
    assert_eq!((case.status, case.rating), (Status::Resolved, Some(4)));
    assert!(matches!(
        s.write(|w| w.rate(id, 9)),
        Err(Error::InvalidInput(_))
    ));
    let same = s.write(|w| w.change_status(id, Status::Resolved));
    assert!(matches!(same, Err(Error::InvalidTransition { .. })));
    s.write(|w| w.change_status(id, Status::InProgress))
        .unwrap();
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let result = s.write(|w| {
        let id = w.create_case(&new_case("Awa", "Thiès"))?;
        w.change_status(id, Status::Closed)
    });
    assert!(result.is_err());
    assert_eq!(s.count_cases().unwrap(), 0);
    assert!(s.version_vector().is_empty());
    // The next case still gets the first counter and reference.
    let id = s
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    assert_eq!(id.dot().counter, 1);
    assert_eq!(
        s.get_case(id).unwrap().case.reference,
        guichet_core::reference::make(1, 1)
    );
}

#[test]
fn the_timeline_keeps_every_event_and_change() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let id = s
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    s.write(|w| {
        w.add_event(id, EventKind::Visit, "Visite au domicile")?;
        w.change_status(id, Status::Assigned)?;
        w.add_event(id, EventKind::Note, "Pièces reçues")
    })
    .unwrap();
    let timeline = s.get_case(id).unwrap().timeline;
    assert_eq!(timeline.len(), 4);
    assert_eq!(timeline[0].what, TimelineWhat::Created);
    assert!(matches!(
        &timeline[1].what,
        TimelineWhat::Event {
            kind: EventKind::Visit,
            ..
        }
    ));
    assert_eq!(
        timeline[2].what,
        TimelineWhat::Changed(vec![(Field::Status, status_value(Status::Assigned))])
    );
}

#[test]
fn concurrent_edits_are_kept_as_a_conflict_until_settled() {
    let dir = TempDir::new().unwrap();
    let mut a = store_at(&dir, 1, NOW);
    let mut b = store_at(&dir, 2, NOW + 1_000);
    let id = a
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    both_ways(&mut a, &mut b);
    a.write(|w| w.update(id, &[(Field::Locality, Value::text("Pire"))]))
        .unwrap();
    b.write(|w| w.update(id, &[(Field::Locality, Value::text("Tivaouane"))]))
        .unwrap();
    both_ways(&mut a, &mut b);
    for s in [&a, &b] {
        let d = s.get_case(id).unwrap();
        // b's clock is later: its value is shown, a's is kept beside it.
        assert_eq!(d.case.locality, "Tivaouane");
        assert!(d.case.needs_attention);
        assert_eq!(d.conflicts.len(), 1);
        let values: Vec<_> = d.conflicts[0]
            .values
            .iter()
            .map(|v| v.value.clone())
            .collect();
        assert_eq!(values, vec![Value::text("Tivaouane"), Value::text("Pire")]);
        let flagged = s.list_cases(&CaseQuery {
            needs_attention: true,
            ..Default::default()
        });
        assert_eq!(flagged.unwrap().len(), 1);
    }
    a.write(|w| w.resolve_conflict(id, Field::Locality, Value::text("Pire")))
        .unwrap();
    both_ways(&mut a, &mut b);
    for s in [&a, &b] {
        let d = s.get_case(id).unwrap();
        assert_eq!(d.case.locality, "Pire");
        assert!(d.conflicts.is_empty() && !d.case.needs_attention);
    }
}

#[test]
fn a_write_made_after_seeing_another_wins_even_with_a_slow_clock() {
    let dir = TempDir::new().unwrap();
    let mut a = store_at(&dir, 1, NOW);
    let mut slow = store_at(&dir, 2, NOW - 6 * 3_600_000);
    let id = a
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    a.write(|w| w.update(id, &[(Field::Assignee, Value::text("agent-a"))]))
        .unwrap();
    sync(&a, &mut slow);
    slow.write(|w| w.update(id, &[(Field::Assignee, Value::text("agent-b"))]))
        .unwrap();
    sync(&slow, &mut a);
    let d = a.get_case(id).unwrap();
    assert_eq!(d.case.assignee.as_deref(), Some("agent-b"));
    assert!(d.conflicts.is_empty());
}

#[test]
fn a_tablet_far_in_the_future_wins_only_until_someone_writes_after_it() {
    let dir = TempDir::new().unwrap();
    let mut a = store_at(&dir, 1, NOW);
    let mut future = store_at(&dir, 2, NOW + 30 * DAY);
    let id = a
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    sync(&a, &mut future);
    future
        .write(|w| w.update(id, &[(Field::Priority, Value::Int(2))]))
        .unwrap();
    a.write(|w| w.update(id, &[(Field::Priority, Value::Int(0))]))
        .unwrap();
    both_ways(&mut a, &mut future);
    let d = a.get_case(id).unwrap();
    assert_eq!(d.case.priority, Priority::Urgent);
    assert_eq!(d.conflicts.len(), 1, "the local value is kept, not dropped");
    // a has seen the future write: its next write supersedes it, and its
    // clock was not dragged thirty days ahead.
    a.write(|w| w.update(id, &[(Field::Priority, Value::Int(0))]))
        .unwrap();
    both_ways(&mut a, &mut future);
    for s in [&a, &future] {
        let d = s.get_case(id).unwrap();
        assert_eq!(d.case.priority, Priority::Low);
        assert!(d.conflicts.is_empty());
    }
    let last = a.ops_of(1, 0).unwrap().last().unwrap().stamp;
    assert!(
        last.millis() <= NOW + 60_000,
        "a's clock followed the future tablet"
    );
}

#[test]
fn concurrent_status_changes_conflict_and_a_faulty_transition_is_flagged() {
    let dir = TempDir::new().unwrap();
    let mut a = store_at(&dir, 1, NOW);
    let mut b = store_at(&dir, 2, NOW + 5);
    let id = a
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    a.write(|w| w.change_status(id, Status::InProgress))
        .unwrap();
    both_ways(&mut a, &mut b);
    a.write(|w| w.change_status(id, Status::Assigned)).unwrap();
    b.write(|w| w.change_status(id, Status::WaitingForCitizen))
        .unwrap();
    both_ways(&mut a, &mut b);
    let d = a.get_case(id).unwrap();
    assert_eq!(d.case.status, Status::WaitingForCitizen);
    assert_eq!(d.conflicts[0].field, Field::Status);
    // Settling on "assigned" is allowed although waiting -> assigned is not
    // a transition: it is one of the values in conflict.
    a.write(|w| w.change_status(id, Status::Assigned)).unwrap();
    assert!(a.get_case(id).unwrap().conflicts.is_empty());

    // A faulty peer jumps from assigned to closed: kept, and shown.
    let head = a.ops_of(1, 0).unwrap().last().unwrap().dot;
    let bad = Op {
        dot: Dot::new(2, a.version_vector().get(&2) + 1),
        stamp: Stamp::new(NOW + 10_000, 0),
        case: id,
        body: OpBody::Update(vec![FieldWrite {
            field: Field::Status,
            value: status_value(Status::Closed),
            supersedes: vec![head],
        }]),
    };
    a.apply(&Batch::new(vec![bad], false)).unwrap();
    let d = a.get_case(id).unwrap();
    assert_eq!(d.case.status, Status::Closed);
    assert!(d.case.needs_attention);
    assert_eq!(d.status_anomalies.len(), 1);
    assert_eq!(d.status_anomalies[0].from, vec![Status::Assigned]);
    // Moving on from there clears the flag.
    a.write(|w| w.change_status(id, Status::InProgress))
        .unwrap();
    assert!(!a.get_case(id).unwrap().case.needs_attention);
}

#[test]
fn apply_is_idempotent_and_all_or_nothing() {
    let dir = TempDir::new().unwrap();
    let mut a = store(&dir, 1);
    let mut b = store(&dir, 2);
    a.write(|w| {
        for i in 0..5 {
            let id = w.create_case(&new_case(&format!("Awa {i}"), "Thiès"))?;
            w.add_event(id, EventKind::Note, "note")?;
        }
        Ok(())
    })
    .unwrap();
    let batch = a
        .changes_since(b.version_vector(), BatchLimit::default())
        .unwrap();
    assert_eq!(b.apply(&batch).unwrap().applied, 10);
    let again = b.apply(&batch).unwrap();
    assert_eq!((again.applied, again.duplicates), (0, 10));

    // A batch whose last operation is broken is refused whole.
    let mut c = store(&dir, 3);
    let mut broken = batch.clone();
    if let OpBody::Event { text, .. } = &mut broken.ops[9].body {
        *text = "x".repeat(10_000);
    }
    let err = c.apply(&broken).unwrap_err();
    assert!(
        matches!(err, Error::Batch(BatchError::InvalidOperation { .. })),
        "{err}"
    );
    assert_eq!(c.count_cases().unwrap(), 0);
    assert!(c.version_vector().is_empty());

    // Gaps, rewritten history and unknown dependencies are refused.
    let mut gap = batch.clone();
    gap.ops.remove(0);
    assert!(matches!(
        c.apply(&gap),
        Err(Error::Batch(BatchError::Gap { .. }))
    ));
    let mut rewritten = batch.clone();
    if let OpBody::Event { text, .. } = &mut rewritten.ops[1].body {
        *text = "tampered".into();
    }
    assert!(matches!(
        b.apply(&rewritten),
        Err(Error::Batch(BatchError::ConflictingDuplicate(_)))
    ));
    let event_of_unknown_case = Op {
        dot: Dot::new(9, 1),
        ..batch.ops[1].clone()
    };
    assert!(matches!(
        c.apply(&Batch::new(vec![event_of_unknown_case], false)),
        Err(Error::Batch(BatchError::MissingDependency { .. }))
    ));
    assert_eq!(c.apply(&batch).unwrap().applied, 10);
}

#[test]
fn deltas_come_in_bounded_batches_that_respect_dependencies() {
    let dir = TempDir::new().unwrap();
    let mut a = store(&dir, 1);
    let mut b = store(&dir, 2);
    let mut c = store(&dir, 3);
    let ids: Vec<_> = a
        .write(|w| {
            (0..30)
                .map(|i| w.create_case(&new_case(&format!("P{i}"), "Louga")))
                .collect()
        })
        .unwrap();
    sync(&a, &mut b);
    b.write(|w| {
        for id in &ids {
            w.add_event(*id, EventKind::Contact, "appel")?;
        }
        Ok(())
    })
    .unwrap();
    // c learns everything from b alone, 7 operations at a time.
    let limit = BatchLimit {
        max_ops: 7,
        max_bytes: 1 << 20,
    };
    let mut rounds = 0;
    loop {
        let batch = b.changes_since(c.version_vector(), limit).unwrap();
        assert!(batch.ops.len() <= 7);
        c.apply_encoded(&wire::encode(&batch)).unwrap();
        rounds += 1;
        if !batch.more {
            break;
        }
    }
    assert_eq!(rounds, 9);
    assert_eq!(c.version_vector(), b.version_vector());
    assert_eq!(c.get_case(ids[29]).unwrap(), b.get_case(ids[29]).unwrap());
    let nothing = c.changes_since(b.version_vector(), limit).unwrap();
    assert!(nothing.ops.is_empty() && !nothing.more);
}

#[test]
fn the_wire_format_refuses_damage() {
    let dir = TempDir::new().unwrap();
    let mut a = store(&dir, 1);
    a.write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    let batch = a
        .changes_since(&Default::default(), BatchLimit::default())
        .unwrap();
    let bytes = wire::encode(&batch);
    assert_eq!(wire::decode(&bytes).unwrap(), batch);
    for cut in [0, 2, 3, bytes.len() / 2, bytes.len() - 1] {
        assert!(wire::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut future = bytes.clone();
    future[2] = 9;
    assert_eq!(
        wire::decode(&future),
        Err(BatchError::UnsupportedWireVersion(9))
    );
    let mut schema = batch.clone();
    schema.schema = 99;
    assert_eq!(
        wire::decode(&wire::encode(&schema)),
        Err(BatchError::UnsupportedSchema(99))
    );
    let mut b = store(&dir, 2);
    assert!(matches!(
        b.apply(&schema),
        Err(Error::Batch(BatchError::UnsupportedSchema(99)))
    ));
    assert!(wire::decode(b"GC\x01garbage").is_err());
}

#[test]
fn queries_filter_by_unit_status_assignee_locality_phone_and_text() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let (ndeye, other) = s
        .write(|w| {
            let mut c = new_case("Ndèye Fatou Diop", "Ndiaganiao");
            c.requester_phone = "+221770000001".into();
            let ndeye = w.create_case(&c)?;
            let mut c = new_case("Moussa Sow", "Kébémer");
            c.unit = "unit-02".into();
            c.assignee = Some("agent-7".into());
            c.description = "Carte d'identité perdue".into();
            let other = w.create_case(&c)?;
            w.change_status(other, Status::Assigned)?;
            Ok((ndeye, other))
        })
        .unwrap();
    let ids = |q: CaseQuery| -> Vec<_> {
        s.list_cases(&q)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    let some = |u: &str| Some(u.to_string());
    let q = CaseQuery::default;
    assert_eq!(
        ids(CaseQuery {
            unit: some("unit-01"),
            ..q()
        }),
        vec![ndeye]
    );
    assert_eq!(
        ids(CaseQuery {
            status: Some(Status::Assigned),
            ..q()
        }),
        vec![other]
    );
    assert_eq!(
        ids(CaseQuery {
            assignee: some("agent-7"),
            ..q()
        }),
        vec![other]
    );
    assert_eq!(
        ids(CaseQuery {
            locality: some("Kébémer"),
            ..q()
        }),
        vec![other]
    );
    assert_eq!(
        ids(CaseQuery {
            requester_phone: some("+221770000001"),
            ..q()
        }),
        vec![ndeye]
    );
    assert_eq!(ids(q()), vec![other, ndeye], "most recent first");
    for typed in [
        "ndeye",
        "NDÈYE",
        "ndey",
        "Fatou diop",
        "kebemer",
        "identite",
    ] {
        assert_eq!(
            ids(CaseQuery {
                text: some(typed),
                ..q()
            })
            .len(),
            1,
            "{typed}"
        );
    }
    assert!(ids(CaseQuery {
        text: some("ndeye"),
        unit: some("unit-02"),
        ..q()
    })
    .is_empty());
    for hostile in ["\"", "NEAR(a b)", "*", "a OR", ")("] {
        assert!(s
            .list_cases(&CaseQuery {
                text: some(hostile),
                ..q()
            })
            .is_ok());
    }
    let newest = s.get_case(other).unwrap().case.updated_at;
    assert!(ids(CaseQuery {
        changed_after: Some(newest),
        ..q()
    })
    .is_empty());
    assert_eq!(
        ids(CaseQuery {
            limit: 1,
            offset: 1,
            ..q()
        }),
        vec![ndeye]
    );
}

#[test]
fn a_store_reopens_with_everything_it_had() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("tablet.db");
    let (reference, vv) = {
        let mut s = Store::open(&path, 12).unwrap();
        let id = s
            .write(|w| w.create_case(&new_case("Awa", "Thiès")))
            .unwrap();
        (
            s.get_case(id).unwrap().case.reference,
            s.version_vector().clone(),
        )
    };
    let mut s = Store::open(&path, 12).unwrap();
    assert_eq!(s.version_vector(), &vv);
    assert_eq!(
        s.find_by_reference(&reference).unwrap().requester_name,
        "Awa"
    );
    let next = s
        .write(|w| w.create_case(&new_case("Binta", "Thiès")))
        .unwrap();
    assert_ne!(s.get_case(next).unwrap().case.reference, reference);
    drop(s);
    assert!(matches!(
        Store::open(&path, 13),
        Err(Error::WrongReplica {
            expected: 13,
            found: 12
        })
    ));
}

#[test]
fn a_file_that_cannot_be_opened_is_refused_and_kept_byte_for_byte() {
    let dir = TempDir::new().unwrap();
    let garbage = dir.path().join("garbage.db");
    let content: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&garbage, &content).unwrap();
    assert!(matches!(
        Store::open(&garbage, 1),
        Err(Error::CannotOpen { .. })
    ));
    assert_eq!(std::fs::read(&garbage).unwrap(), content);

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE photos(id INTEGER PRIMARY KEY)")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    assert!(matches!(
        Store::open(&foreign, 1),
        Err(Error::CannotOpen { .. })
    ));
    // Not even switched to WAL (which rewrites the header).
    assert!(
        std::fs::read(&foreign).unwrap() == before,
        "the file changed"
    );
    assert!(!dir.path().join("foreign.db-wal").exists());

    // A schema version no Guichet wrote (negative): refused, no panic.
    let unknown = dir.path().join("unknown.db");
    drop(Store::open(&unknown, 1).unwrap());
    let conn = rusqlite::Connection::open(&unknown).unwrap();
    conn.pragma_update(None, "user_version", -3).unwrap();
    drop(conn);
    let before = std::fs::read(&unknown).unwrap();
    assert!(matches!(
        Store::open(&unknown, 1),
        Err(Error::CannotOpen { .. })
    ));
    assert!(
        std::fs::read(&unknown).unwrap() == before,
        "the file changed"
    );

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer, 1).unwrap());
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let before = std::fs::read(&newer).unwrap();
    let err = Store::open(&newer, 1).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(std::fs::read(&newer).unwrap(), before);
}

#[test]
fn a_version_1_store_is_upgraded_in_place_and_keeps_its_cases() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("old.db");
    let id = {
        let mut s = Store::open(&path, 3).unwrap();
        s.write(|w| w.create_case(&new_case("Awa", "Thiès")))
            .unwrap()
    };
    // Make it what an older app left: version 1, without the sync table.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE sync_state; DROP TABLE peer_cases; DROP TABLE leaving_cases; DROP TABLE quarantine; DROP TABLE refused_ops; DROP TABLE peer_scopes; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let mut s = Store::open(&path, 3).unwrap();
    assert_eq!(s.get_case(id).unwrap().case.requester_name, "Awa");
    let ok = SyncOutcome {
        result: Ok(()),
        acked: 1,
        ops_sent: 1,
        ops_received: 0,
    };
    s.record_sync("https://sync.example", &ok).unwrap();
    assert_eq!(
        s.sync_status("https://sync.example").unwrap().pending_ops,
        0
    );
}

#[test]
fn sync_status_tells_failures_and_pending_work() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let peer = "https://sync.example";
    s.write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    assert_eq!(s.sync_status(peer).unwrap().pending_ops, 1);
    let ok = SyncOutcome {
        result: Ok(()),
        acked: 1,
        ops_sent: 1,
        ops_received: 3,
    };
    s.record_sync(peer, &ok).unwrap();
    s.write(|w| w.create_case(&new_case("Binta", "Thiès")))
        .unwrap();
    let failed = SyncOutcome {
        result: Err("connection reset".into()),
        acked: 0,
        ops_sent: 0,
        ops_received: 0,
    };
    s.record_sync(peer, &failed).unwrap();
    let status = s.sync_status(peer).unwrap();
    assert_eq!(status.pending_ops, 1);
    assert_eq!(status.last_error.as_deref(), Some("connection reset"));
    assert_eq!(status.last_success_ms, Some(NOW));
    assert_eq!((status.ops_sent, status.ops_received), (1, 3));
}

#[test]
fn invalid_new_cases_are_refused_with_a_reason() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let mut bad_phone = new_case("Awa", "Thiès");
    bad_phone.requester_phone = "77 123 45 67".into();
    let mut closed = new_case("Awa", "Thiès");
    closed.status = Status::Closed;
    let mut mediated = new_case("Awa", "Thiès");
    mediated.channel = Channel::Mediator;
    for case in [bad_phone, closed, mediated] {
        assert!(matches!(
            s.write(|w| w.create_case(&case)),
            Err(Error::InvalidInput(_))
        ));
    }
}

/// How many cases a text search finds.
fn text_search(s: &Store, text: &str) -> Result<usize, Error> {
    let q = CaseQuery {
        text: Some(text.into()),
        ..Default::default()
    };
    s.list_cases(&q).map(|found| found.len())
}

#[test]
fn text_search_follows_edits_and_merges() {
    let dir = TempDir::new().unwrap();
    let mut a = store(&dir, 1);
    let mut b = store(&dir, 2);
    let id = a
        .write(|w| w.create_case(&new_case("Awa Diop", "Thiès")))
        .unwrap();
    let found = |s: &Store, text: &str| text_search(s, text).unwrap();
    a.write(|w| {
        let changes = [
            (Field::Description, Value::text("Certificat de résidence")),
            (Field::RequesterName, Value::text("Awa Ndiaye")),
        ];
        w.update(id, &changes)
    })
    .unwrap();
    sync(&a, &mut b);
    for s in [&a, &b] {
        assert_eq!(found(s, "residence"), 1);
        assert_eq!(found(s, "ndiaye"), 1);
        assert_eq!(
            found(s, "naissance"),
            0,
            "the old description is gone from the index"
        );
        assert_eq!(found(s, "diop"), 0);
    }
}

/// A replica that drops its text index refuses text searches, stays so
/// across a restart, and once it keeps the index again finds every case as
/// it is now, written or edited meanwhile included.
#[test]
fn a_dropped_text_index_is_rebuilt_when_kept_again() {
    let dir = TempDir::new().unwrap();
    let mut s = store(&dir, 1);
    let before = s
        .write(|w| w.create_case(&new_case("Awa Diop", "Thiès")))
        .unwrap();
    let search = text_search;
    assert_eq!(search(&s, "diop").unwrap(), 1);
    s.keep_text_index(false).unwrap();
    assert!(matches!(search(&s, "diop"), Err(Error::InvalidInput(_))));
    s.write(|w| w.update(before, &[(Field::RequesterName, Value::text("Awa Ndiaye"))]))
        .unwrap();
    s.write(|w| w.create_case(&new_case("Binta Sow", "Pout")))
        .unwrap();
    drop(s);
    let mut s = store(&dir, 1);
    assert!(
        matches!(search(&s, "sow"), Err(Error::InvalidInput(_))),
        "still dropped after a restart"
    );
    s.keep_text_index(true).unwrap();
    assert_eq!(search(&s, "ndiaye").unwrap(), 1);
    assert_eq!(search(&s, "sow").unwrap(), 1);
    assert_eq!(search(&s, "diop").unwrap(), 0, "the old name is gone");
    s.write(|w| w.create_case(&new_case("Coumba Fall", "Pire")))
        .unwrap();
    assert_eq!(search(&s, "fall").unwrap(), 1, "kept again for new cases");
}

#[test]
fn histories_tell_when_a_case_was_received_resolved_reopened_rated_and_asked_about() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("r2.db");
    let time = Arc::new(std::sync::atomic::AtomicU64::new(NOW));
    let now = || time.load(std::sync::atomic::Ordering::SeqCst);
    let advance = |ms| time.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    let clock = time.clone();
    let mut store = Store::open_with_clock(
        &path,
        2,
        Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst)),
    )
    .unwrap();
    let id = store
        .write(|w| w.create_case(&new_case("Awa", "Thiès")))
        .unwrap();
    let untouched = store
        .write(|w| w.create_case(&new_case("Binta", "Pout")))
        .unwrap();
    let received = now();
    advance(DAY);
    store
        .write(|w| w.add_event(id, EventKind::Inquiry, "tracked by USSD"))
        .unwrap();
    advance(DAY);
    store
        .write(|w| w.change_status(id, Status::Resolved))
        .unwrap();
    let resolved = now();
    advance(DAY);
    store
        .write(|w| w.change_status(id, Status::InProgress))
        .unwrap();
    store
        .write(|w| w.change_status(id, Status::Resolved))
        .unwrap();
    store.write(|w| w.rate(id, 4)).unwrap();

    let mut reader = HistoryReader::open(&path).unwrap();
    let histories = reader.histories().unwrap().to_vec();
    assert_eq!(histories.len(), 2);
    let case = histories.iter().find(|h| h.id == id).unwrap();
    assert_eq!(case.received_ms, received);
    assert_eq!(case.first_resolved_ms(), Some(resolved));
    assert!(case.reopened());
    assert_eq!(case.rating, Some(4));
    assert_eq!(case.rated_ms, Some(now()));
    assert_eq!(case.events, vec![(received + DAY, EventKind::Inquiry)]);
    assert_eq!(
        case.status_changes.first(),
        Some(&(received, Status::Received))
    );
    assert_eq!(case.status, Status::Resolved);
    let other = histories.iter().find(|h| h.id == untouched).unwrap();
    assert_eq!(other.first_resolved_ms(), None);
    assert!(!other.reopened());

    // Later reads take in what arrived since, and agree with a fresh read.
    let third = store
        .write(|w| w.create_case(&new_case("Coumba", "Pire")))
        .unwrap();
    store
        .write(|w| w.change_status(untouched, Status::Cancelled))
        .unwrap();
    store
        .write(|w| w.add_event(id, EventKind::Complaint, "too slow"))
        .unwrap();
    let again = reader.histories().unwrap().to_vec();
    let mut fresh = HistoryReader::open(&path).unwrap();
    assert_eq!(again, fresh.histories().unwrap());
    assert_eq!(again.len(), 3);
    assert!(again.iter().any(|h| h.id == third));
    let other = again.iter().find(|h| h.id == untouched).unwrap();
    assert_eq!(other.status, Status::Cancelled);
    let case = again.iter().find(|h| h.id == id).unwrap();
    assert_eq!(case.events.len(), 2);

    // Read-only: a file that is not a store is refused and left as it was.
    let foreign = dir.path().join("foreign.db");
    std::fs::write(&foreign, b"not a database at all").unwrap();
    assert!(matches!(
        HistoryReader::open(&foreign),
        Err(Error::CannotOpen { .. })
    ));
    assert_eq!(std::fs::read(&foreign).unwrap(), b"not a database at all");
}
