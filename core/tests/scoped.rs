//! Devices that hold only their units' cases, syncing through a server.

mod common;

use common::held_ids;
use guichet_core::sync::protocol::{SyncRequest, SyncResponse};
use guichet_core::{
    CaseId, CaseQuery, Channel, Error, EventKind, Field, NewCase, Priority, Scope, Status, Store,
    Value,
};
use tempfile::TempDir;

const SERVER: &str = "https://sync.example";

struct Device {
    store: Store,
    scope: Scope,
}

fn new_case(unit: &str, name: &str) -> NewCase {
    NewCase {
        service: "sante".into(),
        requester_phone: "+22370123456".into(),
        requester_name: name.into(),
        requester_language: "bm".into(),
        locality: "Ségou".into(),
        channel: Channel::Ussd,
        mediator: None,
        unit: unit.into(),
        assignee: None,
        priority: Priority::Normal,
        description: "Carnet de vaccination".into(),
        status: Status::Received,
    }
}

fn device(dir: &TempDir, replica: u32, scope: Scope) -> Device {
    let store = Store::open(dir.path().join(format!("d{replica}.db")), replica).unwrap();
    Device { store, scope }
}

/// A request as the sync client makes it.
fn request(d: &Device, upload: usize) -> SyncRequest {
    d.store.sync_request(SERVER, upload, 15, "test").unwrap()
}

/// One request/response; the response may be lost on the way back.
fn exchange(server: &mut Store, d: &mut Device, lose_response: bool) -> SyncResponse {
    let request = request(d, 20);
    let (response, _) = server
        .serve_sync(d.store.replica(), &d.scope, &request, 1 << 20)
        .unwrap();
    if !lose_response {
        d.store.apply_sync_response(SERVER, &response).unwrap();
    }
    response
}

fn sync(server: &mut Store, d: &mut Device) {
    for _ in 0..100 {
        let r = exchange(server, d, false);
        if !r.more && d.store.pending_ops(SERVER, 1).unwrap().is_empty() {
            return;
        }
    }
    panic!("sync did not finish");
}

fn units(store: &Store) -> Vec<String> {
    let all = store
        .list_cases(&CaseQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let mut units: Vec<_> = all.into_iter().map(|c| c.unit).collect();
    units.sort();
    units.dedup();
    units
}

fn setup(dir: &TempDir) -> (Store, Device, Device, Device, Vec<CaseId>) {
    let mut server = Store::open(dir.path().join("server.db"), 1).unwrap();
    let mut gateway = device(dir, 2, Scope::All);
    let a = device(dir, 3, Scope::Units(vec!["unit-a".into()]));
    let b = device(dir, 4, Scope::Units(vec!["unit-b".into()]));
    let ids = gateway
        .store
        .write(|w| {
            (0..12)
                .map(|i| {
                    let unit = if i % 3 == 0 { "unit-b" } else { "unit-a" };
                    w.create_case(&new_case(unit, &format!("Citoyen {i}")))
                })
                .collect()
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    (server, gateway, a, b, ids)
}

#[test]
fn each_device_receives_only_its_units_cases() {
    let dir = TempDir::new().unwrap();
    let (mut server, _gateway, mut a, mut b, _) = setup(&dir);
    sync(&mut server, &mut a);
    sync(&mut server, &mut b);
    assert_eq!(a.store.count_cases().unwrap(), 8);
    assert_eq!(b.store.count_cases().unwrap(), 4);
    assert_eq!(units(&a.store), vec!["unit-a"]);
    assert_eq!(units(&b.store), vec!["unit-b"]);
}

#[test]
fn a_device_cannot_write_outside_its_scope_or_as_another_replica() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, mut b, ids) = setup(&dir);
    sync(&mut server, &mut a);
    // b forges an edit to a unit-a case it was never given.
    let mut forged = a.store.pending_ops(SERVER, 1).unwrap();
    assert!(forged.is_empty());
    a.store
        .write(|w| w.add_event(ids[1], EventKind::Note, "x"))
        .unwrap();
    forged = a.store.pending_ops(SERVER, 1).unwrap();
    let as_b = SyncRequest::new(0, forged.clone(), 10);
    let err = server.serve_sync(4, &b.scope, &as_b, 1 << 20).unwrap_err();
    assert!(
        err.to_string().contains("only operations it authored"),
        "{err}"
    );
    // b opens a case in a unit it does not serve: kept in quarantine, not
    // applied, and b moves past it.
    b.store
        .write(|w| w.create_case(&new_case("unit-a", "Intrus")))
        .unwrap();
    let before = server.count_cases().unwrap();
    sync(&mut server, &mut b);
    assert_eq!(server.count_cases().unwrap(), before);
    let held = server.quarantined(Some(4), true).unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].reason.contains("not one of the device's units"));
    // The gateway (intake) may open cases in any unit.
    gateway
        .store
        .write(|w| w.create_case(&new_case("unit-z", "Awa")))
        .unwrap();
    sync(&mut server, &mut gateway);
    assert_eq!(server.count_cases().unwrap(), before + 1);
}

#[test]
fn a_case_that_moves_leaves_one_tablet_with_its_edits_and_reaches_the_other_whole() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, mut b, ids) = setup(&dir);
    sync(&mut server, &mut a);
    sync(&mut server, &mut b);
    let moving = ids[1];
    // Offline, a works on the case while the gateway moves it to unit-b.
    a.store
        .write(|w| {
            w.change_status(moving, Status::InProgress)?;
            w.add_event(moving, EventKind::Visit, "Visite faite avant le transfert")
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    gateway
        .store
        .write(|w| w.update(moving, &[(Field::Unit, Value::text("unit-b"))]))
        .unwrap();
    sync(&mut server, &mut gateway);
    sync(&mut server, &mut a);
    assert!(a.store.get_case(moving).is_err(), "a no longer holds it");
    assert_eq!(a.store.count_cases().unwrap(), 7);
    sync(&mut server, &mut b);
    let at_b = b.store.get_case(moving).unwrap();
    assert_eq!(at_b.case.unit, "unit-b");
    assert_eq!(
        at_b.case.status,
        Status::InProgress,
        "a's edit was not lost"
    );
    assert_eq!(at_b.timeline.len(), 4);
    assert_eq!(at_b, server.get_case(moving).unwrap());
}

#[test]
fn lost_responses_cost_a_resend_never_a_gap() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, mut b, ids) = setup(&dir);
    a.store
        .write(|w| w.create_case(&new_case("unit-a", "Fanta")))
        .unwrap();
    // Every other response is lost, including the ones carrying a case
    // entering the scope and one leaving it.
    gateway
        .store
        .write(|w| {
            w.update(ids[0], &[(Field::Unit, Value::text("unit-a"))])?;
            w.update(ids[2], &[(Field::Unit, Value::text("unit-b"))])
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    for round in 0..60 {
        let r = exchange(&mut server, &mut a, round % 2 == 0);
        if round % 2 == 1 && !r.more && a.store.pending_ops(SERVER, 1).unwrap().is_empty() {
            break;
        }
    }
    sync(&mut server, &mut b);
    let expect = |unit: &str| -> Vec<CaseId> {
        let q = CaseQuery {
            unit: Some(unit.into()),
            limit: 100,
            ..Default::default()
        };
        let mut ids: Vec<_> = server
            .list_cases(&q)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(held_ids(&a.store), expect("unit-a"));
    assert_eq!(held_ids(&b.store), expect("unit-b"));
    for id in held_ids(&a.store) {
        assert_eq!(a.store.get_case(id).unwrap(), server.get_case(id).unwrap());
    }
    assert_eq!(a.store.sync_status(SERVER).unwrap().pending_ops, 0);
}

#[test]
fn the_server_clock_corrects_the_device_stamps() {
    let dir = TempDir::new().unwrap();
    let (mut server, _gateway, _a, _b, _) = setup(&dir);
    let late = std::sync::Arc::new(|| 1_000u64);
    let mut d = Device {
        store: Store::open_with_clock(dir.path().join("late.db"), 9, late).unwrap(),
        scope: Scope::Units(vec!["unit-a".into()]),
    };
    sync(&mut server, &mut d);
    let now = server.now_ms();
    assert!(d.store.now_ms().abs_diff(now) < 60_000, "offset applied");
}

#[test]
fn a_replaced_server_is_noticed_and_given_everything_again() {
    let dir = TempDir::new().unwrap();
    let (mut server, _gateway, mut a, _b, _) = setup(&dir);
    a.store
        .write(|w| w.create_case(&new_case("unit-a", "Fanta")))
        .unwrap();
    sync(&mut server, &mut a);
    let cursor = a.store.sync_cursor(SERVER).unwrap();
    assert!(cursor > 0);
    // The server is restored from an empty backup behind the same address.
    let mut replaced = Store::open(dir.path().join("replaced.db"), 1).unwrap();
    let request = SyncRequest::new(cursor, a.store.pending_ops(SERVER, 20).unwrap(), 15);
    let (response, _) = replaced.serve_sync(3, &a.scope, &request, 1 << 20).unwrap();
    assert!(matches!(
        a.store.apply_sync_response(SERVER, &response),
        Err(Error::ServerChanged)
    ));
    assert_eq!(a.store.sync_cursor(SERVER).unwrap(), 0);
    assert_eq!(
        a.store.sync_status(SERVER).unwrap().pending_ops,
        1,
        "our case is sent again"
    );
    sync(&mut replaced, &mut a);
    assert_eq!(replaced.count_cases().unwrap(), 1);
}

#[test]
fn a_refused_operation_is_quarantined_and_never_stalls_the_device() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, _b, ids) = setup(&dir);
    sync(&mut server, &mut a);
    // a opens a case in unit-b, which it does not serve, edits it, and
    // works on one of its own cases after that.
    let outside = a
        .store
        .write(|w| {
            let id = w.create_case(&new_case("unit-b", "Hors unité"))?;
            w.add_event(id, EventKind::Note, "suite")?;
            w.add_event(ids[1], EventKind::Visit, "visite")?;
            Ok(id)
        })
        .unwrap();
    let total = a.store.version_vector().get(&3);
    sync(&mut server, &mut a);
    // The server took the edit of a's own unit and holds the two others.
    assert_eq!(server.get_case(ids[1]).unwrap().timeline.len(), 2);
    assert!(server.get_case(outside).is_err());
    let held = server.quarantined(Some(3), true).unwrap();
    assert_eq!(held.len(), 2);
    assert!(held[1].reason.contains("depends on operation"), "{held:?}");
    // a's queue moved past them, and its status says why.
    let status = a.store.sync_status(SERVER).unwrap();
    assert_eq!(status.pending_ops, 0);
    assert_eq!(status.quarantined_ops, 2);
    assert_eq!(status.quarantined.len(), 2);
    assert!(status.quarantined[0].reason.contains("units"));
    assert_eq!(server.version_vector().get(&3), total);
    // a keeps receiving its unit's work and sending its own.
    gateway
        .store
        .write(|w| w.add_event(ids[2], EventKind::Note, "du guichet"))
        .unwrap();
    sync(&mut server, &mut gateway);
    a.store
        .write(|w| w.add_event(ids[4], EventKind::Note, "après"))
        .unwrap();
    sync(&mut server, &mut a);
    assert_eq!(a.store.get_case(ids[2]).unwrap().timeline.len(), 2);
    assert_eq!(server.get_case(ids[4]).unwrap().timeline.len(), 2);
    // Resent (its answer lost), a quarantined operation is not taken twice.
    let again = SyncRequest::new(0, a.store.ops_of(3, 0).unwrap(), 15);
    server.serve_sync(3, &a.scope, &again, 1 << 20).unwrap();
    assert_eq!(server.quarantined(None, false).unwrap().len(), 2);

    // Released while a still does not serve unit-b: nothing changes.
    let outcome = server.release_quarantined(3, &a.scope, "mariama").unwrap();
    assert_eq!((outcome.released, outcome.still_held), (0, 2));
    // Once a serves unit-b, releasing applies both, in order.
    a.scope = Scope::Units(vec!["unit-a".into(), "unit-b".into()]);
    let outcome = server.release_quarantined(3, &a.scope, "mariama").unwrap();
    assert_eq!((outcome.released, outcome.still_held), (2, 0));
    assert_eq!(server.get_case(outside).unwrap().timeline.len(), 2);
    sync(&mut server, &mut a);
    assert_eq!(a.store.sync_status(SERVER).unwrap().quarantined_ops, 0);
    assert!(a.store.sync_status(SERVER).unwrap().quarantined.is_empty());
    assert_eq!(
        a.store.get_case(outside).unwrap(),
        server.get_case(outside).unwrap()
    );
    let all = server.quarantined(None, false).unwrap();
    assert!(all
        .iter()
        .all(|e| e.state == guichet_core::QuarantineState::Released));
    assert_eq!(all[0].resolved_by.as_deref(), Some("mariama"));
}

#[test]
fn an_acknowledged_operation_stays_unapplied_and_so_do_its_followers() {
    let dir = TempDir::new().unwrap();
    let (mut server, _gateway, mut a, _b, _) = setup(&dir);
    sync(&mut server, &mut a);
    let outside = a
        .store
        .write(|w| w.create_case(&new_case("unit-z", "Ailleurs")))
        .unwrap();
    sync(&mut server, &mut a);
    let held = server.quarantined(Some(3), true).unwrap();
    server
        .acknowledge_quarantined(held[0].id, "mariama")
        .unwrap();
    assert!(server.acknowledge_quarantined(held[0].id, "x").is_err());
    // A later edit of the acknowledged case depends on it: held as well.
    a.store
        .write(|w| w.add_event(outside, EventKind::Note, "encore"))
        .unwrap();
    sync(&mut server, &mut a);
    let status = a.store.sync_status(SERVER).unwrap();
    assert_eq!((status.pending_ops, status.quarantined_ops), (0, 1));
    assert!(server.get_case(outside).is_err());
    assert_eq!(server.quarantined(Some(3), false).unwrap().len(), 2);
}

#[test]
fn an_operation_that_cannot_be_applied_is_quarantined_not_refused_forever() {
    let dir = TempDir::new().unwrap();
    let (mut server, _gateway, mut a, _b, _) = setup(&dir);
    a.store
        .write(|w| w.create_case(&new_case("unit-a", "Awa")))
        .unwrap();
    sync(&mut server, &mut a);
    // A tablet restored from an old copy opens a case under a reference it
    // already issued: every check before applying passes, applying fails.
    let created = a.store.ops_of(3, 0).unwrap().pop().unwrap();
    let dot = guichet_core::Dot::new(3, created.dot.counter + 1);
    let reused = guichet_core::Op {
        dot,
        case: CaseId::from_dot(dot).unwrap(),
        ..created.clone()
    };
    let request = SyncRequest::new(a.store.sync_cursor(SERVER).unwrap(), vec![reused], 15);
    let (response, _) = server.serve_sync(3, &a.scope, &request, 1 << 20).unwrap();
    assert_eq!(response.acked, dot.counter, "counted as received");
    let held = server.quarantined(Some(3), true).unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].reason.contains("reference"), "{}", held[0].reason);
    assert_eq!(server.count_cases().unwrap(), 13);
    // An update of a case the server never heard of: it used to fail
    // applying, answer 500, and be sent again forever.
    let dot = guichet_core::Dot::new(3, dot.counter + 1);
    let orphan = guichet_core::Op {
        dot,
        stamp: created.stamp,
        case: CaseId::from_dot(guichet_core::Dot::new(9, 500)).unwrap(),
        body: guichet_core::OpBody::Update(vec![guichet_core::FieldWrite {
            field: Field::Assignee,
            value: Value::text("awa"),
            supersedes: vec![],
        }]),
    };
    let request = SyncRequest::new(a.store.sync_cursor(SERVER).unwrap(), vec![orphan], 15);
    let (response, _) = server.serve_sync(3, &a.scope, &request, 1 << 20).unwrap();
    assert_eq!(response.acked, dot.counter);
    let held = server.quarantined(Some(3), true).unwrap();
    assert_eq!(held.len(), 2);
    assert!(held[1].reason.contains("unknown"), "{}", held[1].reason);
}

#[test]
fn a_case_that_leaves_and_comes_back_is_never_purged_while_in_scope() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, _b, ids) = setup(&dir);
    sync(&mut server, &mut a);
    let case = ids[1];
    // a has more edits of the case than one request carries.
    a.store
        .write(|w| {
            for i in 0..25 {
                w.add_event(case, EventKind::Note, &format!("note {i}"))?;
            }
            Ok(())
        })
        .unwrap();
    gateway
        .store
        .write(|w| w.update(case, &[(Field::Unit, Value::text("unit-b"))]))
        .unwrap();
    sync(&mut server, &mut gateway);
    // One exchange: 20 edits land, a is told the case left, and keeps it
    // until its last 5 edits are in. Meanwhile no new local writes to it.
    exchange(&mut server, &mut a, false);
    assert!(a.store.get_case(case).is_ok());
    let refused = a
        .store
        .write(|w| w.add_event(case, EventKind::Note, "trop tard"));
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    // The case comes back to unit-a before a syncs again.
    gateway
        .store
        .write(|w| w.update(case, &[(Field::Unit, Value::text("unit-a"))]))
        .unwrap();
    sync(&mut server, &mut gateway);
    sync(&mut server, &mut a);
    assert!(a.store.get_case(case).is_ok(), "back in scope, kept");
    assert_eq!(a.store.sync_status(SERVER).unwrap().quarantined_ops, 0);
    // Later work on it reaches a, and a may write to it again.
    gateway
        .store
        .write(|w| w.add_event(case, EventKind::Visit, "du guichet"))
        .unwrap();
    sync(&mut server, &mut gateway);
    sync(&mut server, &mut a);
    a.store
        .write(|w| w.add_event(case, EventKind::Note, "de retour"))
        .unwrap();
    sync(&mut server, &mut a);
    assert_eq!(
        a.store.get_case(case).unwrap(),
        server.get_case(case).unwrap()
    );
    assert_eq!(held_ids(&a.store).len(), 8);
}

#[test]
fn writes_made_after_a_device_learnt_a_case_left_are_quarantined() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, _b, ids) = setup(&dir);
    sync(&mut server, &mut a);
    let case = ids[1];
    a.store
        .write(|w| w.add_event(case, EventKind::Note, "avant"))
        .unwrap();
    gateway
        .store
        .write(|w| w.update(case, &[(Field::Unit, Value::text("unit-b"))]))
        .unwrap();
    sync(&mut server, &mut gateway);
    // a's edit made before it knew lands; a is told and drops the case.
    sync(&mut server, &mut a);
    assert_eq!(server.get_case(case).unwrap().timeline.len(), 3);
    assert!(a.store.get_case(case).is_err());
    // A device that writes to it anyway (a faulty one) is held to what it
    // had written by then.
    let late = guichet_core::Op {
        dot: guichet_core::Dot::new(3, a.store.version_vector().get(&3) + 1),
        stamp: guichet_core::Stamp(a.store.now_ms() << 16),
        case,
        body: guichet_core::OpBody::Event {
            kind: EventKind::Note,
            text: "après".into(),
        },
    };
    let request = SyncRequest::new(a.store.sync_cursor(SERVER).unwrap(), vec![late], 15);
    server.serve_sync(3, &a.scope, &request, 1 << 20).unwrap();
    let held = server.quarantined(Some(3), true).unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].reason.contains("had left"), "{}", held[0].reason);
    assert_eq!(server.get_case(case).unwrap().timeline.len(), 3);
}

#[test]
fn an_answer_respects_its_byte_bound_with_whole_histories() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, _b, _) = setup(&dir);
    sync(&mut server, &mut a);
    // 40 cases with long notes enter a's scope at once, their history with them.
    let long = "x".repeat(4_000);
    let moved = gateway
        .store
        .write(|w| {
            let mut ids = Vec::new();
            for i in 0..40 {
                let id = w.create_case(&new_case("unit-b", &format!("C{i}")))?;
                for _ in 0..5 {
                    w.add_event(id, EventKind::Note, &long)?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    // a's position passes them while they are not its unit's.
    sync(&mut server, &mut a);
    gateway
        .store
        .write(|w| {
            for id in &moved {
                w.update(*id, &[(Field::Unit, Value::text("unit-a"))])?;
            }
            Ok(())
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    let bound = 64 << 10;
    let mut request = request(&a, 20);
    request.max_ops = 2_000;
    let (response, _) = server.serve_sync(3, &a.scope, &request, bound).unwrap();
    let size: usize = response
        .ops
        .iter()
        .map(|op| postcard::to_stdvec(op).unwrap().len())
        .sum();
    // One case's history (7 operations, about 20 KB) may go past the bound.
    assert!(
        size < bound + 25_000,
        "{size} bytes against a bound of {bound}"
    );
    assert!(response.more);
}

#[test]
fn a_case_dropped_while_leaving_comes_back_with_the_devices_own_edits() {
    let dir = TempDir::new().unwrap();
    let (mut server, mut gateway, mut a, _b, _) = setup(&dir);
    sync(&mut server, &mut a);
    // Offline, a opens a case, hands it to unit-b, and takes it back.
    let case = a
        .store
        .write(|w| w.create_case(&new_case("unit-a", "Aller-retour")))
        .unwrap();
    for unit in ["unit-b", "unit-a"] {
        a.store
            .write(|w| w.update(case, &[(Field::Unit, Value::text(unit))]))
            .unwrap();
    }
    // Its first two writes land and it is told the case left.
    let first = a.store.sync_request(SERVER, 2, 15, "test").unwrap();
    let (response, _) = server.serve_sync(3, &a.scope, &first, 1 << 20).unwrap();
    assert_eq!(response.removed, vec![case]);
    a.store.apply_sync_response(SERVER, &response).unwrap();
    // Meanwhile the gateway files more than one answer holds.
    gateway
        .store
        .write(|w| {
            for i in 0..20 {
                w.create_case(&new_case("unit-a", &format!("G{i}")))?;
            }
            Ok(())
        })
        .unwrap();
    sync(&mut server, &mut gateway);
    // Its last write lands too; the answer stops before reaching it, so a
    // drops the case, its edits all on the server.
    exchange(&mut server, &mut a, false);
    assert!(a.store.get_case(case).is_err());
    sync(&mut server, &mut a);
    assert_eq!(
        a.store.get_case(case).unwrap(),
        server.get_case(case).unwrap(),
        "back whole, a's own last edit included"
    );
    assert_eq!(a.store.get_case(case).unwrap().case.unit, "unit-a");
}
