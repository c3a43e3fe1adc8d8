//! One command starts the whole service: the gateway with the sync server
//! inside it, as the example configuration does. A tablet enrolled with the
//! server's CLI receives a request filed by USSD; a supervisor added with
//! the CLI (while the service runs) reads the figures.

use guichet_e2e::*;
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

    let mut tablet = Tablet::enrol(
        &server_dir,
        &server_url,
        "agent-1",
        "unit-thies-01",
        &dir.path().join("tablet.db"),
    );
    tablet.receive(&reference).await;

    add_supervisor(&server_dir, "mariama", "a-long-password", &[]);
    let (status, body) = figures(&server_url, "", ("mariama", "a-long-password")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["figures"]["received"]["total"], 1);
    for url in [gateway.at("/metrics"), format!("{server_url}/metrics")] {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert!(
            text.contains("guichet_http_requests_total"),
            "{url}: {text}"
        );
    }
}
