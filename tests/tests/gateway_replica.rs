//! The USSD gateway as a replica: a request filed by USSD reaches the tablet
//! of the right unit through the sync server; the agent's status change
//! comes back and the citizen is told by SMS; the gateway keeps serving
//! while the sync server is down.

use guichet_core::Status;
use guichet_e2e::*;
use tempfile::TempDir;

#[tokio::test]
async fn a_ussd_request_reaches_the_tablet_and_the_citizen_hears_back_by_sms() {
    let dir = TempDir::new().unwrap();
    let Service {
        mut server,
        server_dir,
        gateway: _gateway,
        callback,
        sent,
    } = service(dir.path()).await;

    // A citizen files a request by USSD.
    let citizen = "+221771112233";
    let first = dial(&callback, "s1", citizen, &[]).await;
    let english = option(&first[0], "English");
    let screens = dial(
        &callback,
        "s2",
        citizen,
        &[&english, "1", "1", "1", "Extrait de naissance", "1"],
    )
    .await;
    let end = screens.last().unwrap();
    assert!(end.starts_with("END "), "{screens:?}");
    let reference = reference_in(end);

    // The tablet of unit-thies-01 receives it through the sync server.
    let mut tablet = Tablet::enrol(
        &server_dir,
        &server.url(),
        "agent-7",
        "unit-thies-01",
        &dir.path().join("tablet.db"),
    );
    let case = tablet.receive(&reference).await;
    assert_eq!(
        (case.unit.as_str(), case.status),
        ("unit-thies-01", Status::Received)
    );
    assert_eq!(case.requester_phone, citizen);

    // The agent works on it offline, then syncs; the citizen is told.
    tablet
        .store
        .write(|w| w.change_status(case.id, Status::InProgress))
        .unwrap();
    tablet.sync().await;
    let told = wait_sms(&sent, 20, |(to, text)| {
        to == citizen && text.contains(&reference) && text.contains("in progress")
    })
    .await;
    assert!(
        told.is_some(),
        "the citizen was told: {:?}",
        sent.lock().unwrap()
    );

    // The sync server goes down: citizens are still served.
    server.kill();
    let track = dial(&callback, "s3", citizen, &["2", &reference]).await;
    assert!(track.last().unwrap().contains("in progress"), "{track:?}");
    let another = dial(&callback, "s4", citizen, &["1", "1", "2", "0", "1"]).await;
    assert!(another.last().unwrap().starts_with("END "), "{another:?}");
    let count = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(to, t)| to == citizen && t.contains(&reference))
        .count();
    assert_eq!(
        count, 2,
        "one SMS when filed, one for the status change, no more"
    );
}
