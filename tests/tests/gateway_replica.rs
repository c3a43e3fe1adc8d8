//! The USSD gateway as a replica: a request filed by USSD reaches the tablet
//! of the right unit through the sync server; the agent's status change
//! comes back and the citizen is told by SMS; the gateway keeps serving
//! while the sync server is down.

use guichet_core::Status;
use guichet_e2e::*;
use std::time::Duration;
use tempfile::TempDir;

const SECRET: &str = "e2e-secret-0123456789";

fn gateway_config(gateway_dir: &std::path::Path, server: &str, fake_at: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{gw}"
locales_dir = "{locales}"
default_language = "fr"
[sync]
server_url = "{server}"
interval_secs = 1
[sms]
provider = "africastalking"
[[services]]
id = "etat-civil"
names = {{ fr = "État civil", en = "Civil registration" }}
[[units]]
id = "unit-thies-01"
localities = ["Thiès", "Pire"]
[[units]]
id = "unit-louga-01"
localities = ["Louga"]
[providers.africastalking]
secret = "{SECRET}"
username = "sandbox"
api_key = "k"
base_url = "{fake_at}"
"#,
        gw = gateway_dir.display(),
        locales = repo().join("locales").display(),
    )
}

#[tokio::test]
async fn a_ussd_request_reaches_the_tablet_and_the_citizen_hears_back_by_sms() {
    let dir = TempDir::new().unwrap();
    let (server_dir, gateway_dir) = (dir.path().join("server"), dir.path().join("gateway"));
    let mut server = sync_server(&server_dir, "127.0.0.1:0");
    enrol_gateway(&server_dir, &gateway_dir);
    let (fake_at, sent) = fake_africastalking().await;
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        gateway_config(&gateway_dir, &server.url(), &fake_at),
    )
    .unwrap();
    let gateway = gateway(&config);
    let callback = format!("{}/at/{SECRET}/ussd", gateway.url());

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

/// Issue 6's loop, in Wolof: a citizen files by USSD; the agent assigns,
/// works offline and resolves it; the citizen is invited by SMS, in Wolof,
/// to rate; rates by SMS; the rating reaches the tablet.
#[tokio::test]
async fn a_wolof_speaker_files_hears_back_and_rates_by_sms() {
    let dir = TempDir::new().unwrap();
    let (server_dir, gateway_dir) = (dir.path().join("server"), dir.path().join("gateway"));
    let server = sync_server(&server_dir, "127.0.0.1:0");
    enrol_gateway(&server_dir, &gateway_dir);
    let (fake_at, sent) = fake_africastalking().await;
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        gateway_config(&gateway_dir, &server.url(), &fake_at),
    )
    .unwrap();
    let gateway = gateway(&config);
    let callback = format!("{}/at/{SECRET}/ussd", gateway.url());

    let citizen = "+221775550101";
    let first = dial(&callback, "w1", citizen, &[]).await;
    let wolof = option(&first[0], "Wolof");
    let screens = dial(&callback, "w2", citizen, &[&wolof, "1", "1", "1", "0", "1"]).await;
    let end = screens.last().unwrap();
    assert!(
        end.starts_with("END ") && end.contains("Sa laaj bindu na"),
        "in Wolof: {screens:?}"
    );
    let reference = reference_in(end);

    let mut tablet = Tablet::enrol(
        &server_dir,
        &server.url(),
        "agent-7",
        "unit-thies-01",
        &dir.path().join("tablet.db"),
    );
    let case = tablet.receive(&reference).await;
    assert_eq!(case.requester_language, "wo");
    tablet
        .store
        .write(|w| {
            w.update(
                case.id,
                &[(
                    guichet_core::Field::Assignee,
                    guichet_core::Value::text("agent-7"),
                )],
            )?;
            w.change_status(case.id, Status::Assigned)?;
            w.change_status(case.id, Status::InProgress)?;
            w.add_event(case.id, guichet_core::EventKind::Visit, "Visite faite")?;
            w.change_status(case.id, Status::Resolved)
        })
        .unwrap();
    tablet.sync().await;
    let invite = wait_sms(&sent, 20, |(to, text)| {
        to == citizen && text.contains("NATT") && text.contains(&reference)
    })
    .await;
    assert!(
        invite.is_some(),
        "the Wolof invitation to rate: {:?}",
        sent.lock().unwrap()
    );

    // The citizen rates by SMS; the rating reaches the tablet.
    let form = [
        ("from", citizen),
        ("to", "12345"),
        ("text", &format!("natt {reference} 5")),
        ("id", "in-1"),
    ];
    let status = reqwest::Client::new()
        .post(format!("{}/at/{SECRET}/sms", gateway.url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let thanks = wait_sms(&sent, 10, |(to, text)| {
        to == citizen && text.contains("jërëjëf")
    })
    .await;
    assert!(
        thanks.is_some(),
        "thanked in Wolof: {:?}",
        sent.lock().unwrap()
    );
    for _ in 0..100 {
        tablet.sync().await;
        if tablet.store.case(case.id).unwrap().rating == Some(5) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the rating never reached the tablet");
}
