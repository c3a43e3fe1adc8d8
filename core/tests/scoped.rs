//! Devices that hold only their units' cases, syncing through a server.

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

/// One request/response; the response may be lost on the way back.
fn exchange(server: &mut Store, d: &mut Device, lose_response: bool) -> SyncResponse {
    let request = SyncRequest::new(
        d.store.sync_cursor(SERVER).unwrap(),
        d.store.pending_ops(SERVER, 20).unwrap(),
        15,
    );
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
    // b opens a case in a unit it does not serve: refused, nothing applied.
    b.store
        .write(|w| w.create_case(&new_case("unit-a", "Intrus")))
        .unwrap();
    let request = SyncRequest::new(0, b.store.pending_ops(SERVER, 10).unwrap(), 10);
    let before = server.count_cases().unwrap();
    assert!(matches!(
        server.serve_sync(4, &b.scope, &request, 1 << 20),
        Err(Error::Batch(_))
    ));
    assert_eq!(server.count_cases().unwrap(), before);
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
    let held = |s: &Store| -> Vec<CaseId> {
        let q = CaseQuery {
            limit: 100,
            ..Default::default()
        };
        let mut ids: Vec<_> = s
            .list_cases(&q)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(held(&a.store), expect("unit-a"));
    assert_eq!(held(&b.store), expect("unit-b"));
    for id in held(&a.store) {
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
