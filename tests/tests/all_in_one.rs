//! One command starts the whole service: the gateway with the sync server
//! inside it, as the example configuration does. A tablet enrolled with the
//! server's CLI receives a request filed by USSD.

use guichet_core::sync::client::{ClientOptions, SyncClient};
use guichet_core::sync::signing::DeviceKey;
use guichet_core::Store;
use guichet_e2e::*;
use std::time::Duration;
use tempfile::TempDir;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_example_configuration_starts_the_whole_service() {
    let dir = TempDir::new().unwrap();
    let server_dir = dir.path().join("server");
    let server_url = format!("http://127.0.0.1:{}", free_port());
    // The example configuration, with this test's paths and ports.
    let example =
        std::fs::read_to_string(repo().join("ussd-gateway/gateway.example.toml")).unwrap();
    let config = example
        .replace("listen = \"127.0.0.1:8710\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "server_url = \"http://127.0.0.1:8700\"",
            &format!("server_url = \"{server_url}\""),
        )
        .replace("interval_secs = 10", "interval_secs = 1")
        .replace(
            "\"../guichet-data/server\"",
            &format!("\"{}\"", server_dir.display()),
        )
        .replace(
            "\"../guichet-data/gateway\"",
            &format!("\"{}\"", dir.path().join("gateway").display()),
        )
        .replace(
            "\"../locales\"",
            &format!("\"{}\"", repo().join("locales").display()),
        );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let gateway = gateway(&path);

    let callback = gateway.at("/at/local-secret/ussd");
    let first = dial(&callback, "s1", "+221771112233", &[]).await;
    let english = option(&first[0], "English");
    let screens = dial(
        &callback,
        "s2",
        "+221771112233",
        &[&english, "1", "1", "1", "Extrait", "1"],
    )
    .await;
    let reference = reference_in(screens.last().unwrap());

    let key = DeviceKey::generate().unwrap();
    let enrolment = sync_admin(
        &server_dir,
        &[
            "enrol",
            "--public-key",
            &key.public_key(),
            "--agent",
            "agent-1",
            "--unit",
            "unit-thies-01",
        ],
    );
    let replica = serde_json::from_str::<serde_json::Value>(&enrolment).unwrap()["replica"]
        .as_u64()
        .unwrap();
    let mut tablet = Store::open(dir.path().join("tablet.db"), replica as u32).unwrap();
    let client = SyncClient::new(&server_url, key, ClientOptions::default()).unwrap();
    for _ in 0..50 {
        client.sync(&mut tablet, |_| {}).await.unwrap();
        if tablet.find_by_reference(&reference).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the tablet never received request {reference}");
}
