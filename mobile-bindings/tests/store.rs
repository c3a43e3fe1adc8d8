//! The case store as the apps call it, from Rust: what is refused before
//! it is written, what goes on while a sync waits on the network, and
//! store files that cannot be used. Real SQLite files, real sockets.

use guichet_mobile::{
    CaseQuery, CaseStatus, CaseStore, Channel, DeviceIdentity, Enrolment, EventKind, FieldValue,
    GuichetError, NewCase, Priority, SyncSettings,
};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{mpsc, Arc};

fn identity(replica: u32, role: &str, units: &[&str], server_url: &str) -> Arc<DeviceIdentity> {
    let key = DeviceIdentity::generate().unwrap().private_key();
    let enrolment = Enrolment {
        replica,
        agent: format!("agent-{replica}"),
        role: role.into(),
        units: units.iter().map(|u| u.to_string()).collect(),
        server_url: server_url.into(),
    };
    DeviceIdentity::from_private_key(key, Some(enrolment)).unwrap()
}

fn open(path: &Path, identity: &Arc<DeviceIdentity>) -> Arc<CaseStore> {
    CaseStore::open(path.to_string_lossy().into_owned(), identity.clone()).unwrap()
}

fn new_case(unit: &str) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: "+221771234567".into(),
        requester_name: "Awa Ndiaye".into(),
        requester_language: "wo".into(),
        locality: "Thiès".into(),
        channel: Channel::Field,
        unit: unit.into(),
        priority: Priority::Normal,
        status: CaseStatus::Received,
        description: "Extrait de naissance".into(),
        mediator: None,
        assignee: None,
    }
}

fn refused_unit(result: Result<impl std::fmt::Debug, GuichetError>, unit: &str) {
    match result {
        Err(GuichetError::InvalidInput(m)) if m.starts_with("unit: ") && m.contains(unit) => {}
        other => panic!("expected InvalidInput naming the unit field and {unit}, got {other:?}"),
    }
}

#[test]
fn a_tablet_opens_cases_only_in_its_units_and_intake_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let tablet = identity(3, "tablet", &["unit-a", "unit-b"], "http://127.0.0.1:9");
    let store = open(&dir.path().join("tablet.db"), &tablet);

    refused_unit(store.create_case(new_case("unit-z")), "unit-z");
    assert_eq!(store.count_cases().unwrap(), 0);
    assert_eq!(
        store.sync_status().unwrap().pending_ops,
        0,
        "nothing to send"
    );

    let case = store.create_case(new_case("unit-b")).unwrap();
    // A tablet may hand one of its cases to another unit (the server takes
    // it); the case then leaves the tablet at its next sync.
    let moved = store
        .update_case(
            case.id.clone(),
            vec![FieldValue::Unit {
                value: "unit-z".into(),
            }],
        )
        .unwrap();
    assert_eq!(moved.unit, "unit-z");

    // The intake role (the USSD gateway) serves every unit.
    let intake = identity(4, "intake", &[], "http://127.0.0.1:9");
    let gateway = open(&dir.path().join("intake.db"), &intake);
    let anywhere = gateway.create_case(new_case("unit-z")).unwrap();
    gateway
        .update_case(
            anywhere.id,
            vec![FieldValue::Unit {
                value: "unit-y".into(),
            }],
        )
        .unwrap();
}

#[test]
fn writes_and_reads_go_on_while_a_sync_waits_on_the_network() {
    // A server that takes the request and never answers: a slow link.
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let (asked, request_arrived) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let stalling = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut buf = [0u8; 4096];
        asked.send(conn.read(&mut buf).unwrap()).unwrap();
        let _ = released.recv();
    });

    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir.path().join("tablet.db"),
        &identity(5, "tablet", &["unit-a"], &url),
    );
    // One attempt; the timeout only bounds how long a broken build waits.
    store
        .set_sync_settings(SyncSettings {
            max_attempts: 1,
            first_backoff_ms: 10,
            max_backoff_ms: 10,
            timeout_ms: 15_000,
        })
        .unwrap();
    let first = store.create_case(new_case("unit-a")).unwrap();

    let syncing = store.clone();
    let sync = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(syncing.sync(None))
    });
    assert!(request_arrived.recv().unwrap() > 0, "the sync sent nothing");

    // The sync now waits on the network; the tablet works on.
    assert!(store.sync_status().unwrap().syncing);
    let second = store.create_case(new_case("unit-a")).unwrap();
    store
        .update_case(
            first.id.clone(),
            vec![FieldValue::Locality {
                value: "Touba".into(),
            }],
        )
        .unwrap();
    store
        .add_event(first.id.clone(), EventKind::Visit, "Visite".into())
        .unwrap();
    assert_eq!(
        store.get_case(first.id.clone()).unwrap().case.locality,
        "Touba"
    );
    assert_eq!(store.count_cases().unwrap(), 2);
    let listed = store.list_cases(CaseQuery::default()).unwrap();
    assert_eq!(listed.len(), 2);
    let status = store.sync_status().unwrap();
    assert!(
        status.syncing,
        "the writes waited for the sync to end instead of going on beside it"
    );
    assert!(status.pending_ops >= 2, "{status:?}");

    // Cancelled while it still waits: what was written stays, to send next time.
    store.cancel_sync();
    let outcome = sync.join().unwrap();
    assert!(
        matches!(outcome, Err(GuichetError::Cancelled(_))),
        "{outcome:?}"
    );
    release.send(()).unwrap();
    stalling.join().unwrap();
    let status = store.sync_status().unwrap();
    assert!(
        !status.syncing && status.last_error.as_deref() == Some("cancelled"),
        "{status:?}"
    );
    assert!(status.pending_ops >= 4, "{status:?}");
    assert_eq!(store.get_case(second.id).unwrap().case.unit, "unit-a");
}

#[test]
fn a_store_file_with_a_negative_schema_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tablet.db");
    let tablet = identity(6, "tablet", &["unit-a"], "http://127.0.0.1:9");
    {
        let store = open(&path, &tablet);
        store.create_case(new_case("unit-a")).unwrap();
    }
    // A valid store whose schema version reads negative (a bad copy, a
    // tool that wrote the pragma).
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", -1).unwrap();
    }
    let before = std::fs::read(&path).unwrap();

    let opened = CaseStore::open(path.to_string_lossy().into_owned(), tablet.clone());
    assert!(
        matches!(opened, Err(GuichetError::Storage(_))),
        "expected Storage, got {opened:?}"
    );
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the file was changed"
    );
    // The failure did not leave the process unable to open stores.
    let other = open(&dir.path().join("other.db"), &tablet);
    assert_eq!(other.count_cases().unwrap(), 0);
}
