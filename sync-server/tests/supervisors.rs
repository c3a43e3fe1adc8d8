//! The supervisor's side as a real server process on loopback: checks that
//! fail closed, the lockout under concurrent guesses, Basic credentials
//! remembered only while they hold, and the devices' sync health.

mod common;

use common::*;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use rusqlite::Connection;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const DAY_MS: i64 = 86_400_000;

/// `guichet-sync-server supervisor`, as an administrator runs it while the
/// server runs; no units means every unit.
fn add_supervisor(data: &Path, name: &str, password: &str, units: &[&str]) {
    let mut command = Command::new(BIN);
    command
        .args(["supervisor", "--data-dir"])
        .arg(data)
        .args(["--name", name])
        .env("GUICHET_SUPERVISOR_PASSWORD", password);
    if units.is_empty() {
        command.arg("--all-units");
    }
    for unit in units {
        command.args(["--unit", unit]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The registry's SQLite file, opened beside the server as an administrator
/// (or a disk fault) could.
fn registry(data: &Path) -> Connection {
    let conn = Connection::open(data.join("registry.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// GET with HTTP Basic credentials: the status and the body.
async fn get_as(url: &str, name: &str, password: &str) -> (StatusCode, String) {
    let answer = client()
        .get(url)
        .basic_auth(name, Some(password))
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

/// Signs in through the page's form; the session cookie, if it opened one.
async fn log_in(server: &Server, name: &str, password: &str) -> (StatusCode, Option<String>) {
    let answer = client()
        .post(server.at("/supervisor/login"))
        .form(&[("name", name), ("password", password), ("lang", "en")])
        .send()
        .await
        .unwrap();
    let cookie = answer
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (answer.status(), cookie)
}

async fn get_with_cookie(url: &str, cookie: &str) -> StatusCode {
    client()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_supervisor_whose_units_cannot_be_read_sees_nothing() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    add_supervisor(&data, "awa", "a long password", &["unit-a"]);
    let figures = server.at("/v1/figures");
    let (status, _) = get_as(&figures, "awa", "a long password").await;
    assert_eq!(status, StatusCode::OK);
    let (status, cookie) = log_in(&server, "awa", "a long password").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("a session cookie");
    assert_eq!(
        get_with_cookie(&server.at("/supervisor"), &cookie).await,
        StatusCode::OK
    );

    // Whatever the units column holds that is not a list of units, the
    // supervisor is refused: by password (remembered or not), by session,
    // on the API and on the pages; never shown every unit.
    for corrupted in ["[\"unit-a\"", "unit-a", "null", "{\"all\": true}", ""] {
        registry(&data)
            .execute("UPDATE supervisors SET units = ?1", [corrupted])
            .unwrap();
        for path in ["/v1/figures", "/v1/devices"] {
            let (status, body) = get_as(&server.at(path), "awa", "a long password").await;
            assert_eq!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{corrupted}: {body}"
            );
            assert!(
                !body.contains("figures") && !body.contains("devices"),
                "{body}"
            );
        }
        for page in ["/supervisor", "/supervisor/devices"] {
            let status = get_with_cookie(&server.at(page), &cookie).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{corrupted}");
        }
        let (status, cookie) = log_in(&server, "awa", "a long password").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{corrupted}");
        assert_eq!(cookie, None);
    }
    // Put right, the supervisor is back, in their unit only.
    registry(&data)
        .execute("UPDATE supervisors SET units = '[\"unit-a\"]'", [])
        .unwrap();
    let (status, _) = get_as(&figures, "awa", "a long password").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_as(&format!("{figures}?unit=unit-b"), "awa", "a long password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Failures counted for `name` in the registry.
fn failures(data: &Path, name: &str) -> u32 {
    registry(data)
        .query_row(
            "SELECT coalesce(max(failures), 0) FROM supervisor_failures WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn concurrent_wrong_passwords_cannot_pass_the_lockout() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    add_supervisor(&data, "awa", "a long password", &[]);
    let figures = server.at("/v1/figures");

    // Twelve guesses at once: more than the five a name is allowed.
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let url = figures.clone();
            tokio::spawn(async move { get_as(&url, "awa", &format!("guess number {i}")).await })
        })
        .collect();
    // Wait until the server has taken the guesses in (the registry counts
    // them), for at most two seconds: hashing twelve takes longer.
    let started = Instant::now();
    while failures(&data, "awa") < 5 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The right password, while the guesses are still being checked: the
    // name is locked already.
    let (status, body) = get_as(&figures, "awa", "a long password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    for guess in guesses {
        assert_eq!(guess.await.unwrap().0, StatusCode::UNAUTHORIZED);
    }
    // And after them, for the rest of the 15 minutes.
    let (status, _) = get_as(&figures, "awa", "a long password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, cookie) = log_in(&server, "awa", "a long password").await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    assert!(failures(&data, "awa") >= 5);
}

#[tokio::test]
async fn basic_credentials_are_remembered_only_while_they_hold() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    add_supervisor(&data, "awa", "a long password", &["unit-a"]);
    add_supervisor(&data, "binta", "binta's long password", &["unit-b"]);
    let of_unit = |unit: &str| server.at(&format!("/v1/figures?unit={unit}"));
    for _ in 0..3 {
        let (status, _) = get_as(&of_unit("unit-a"), "awa", "a long password").await;
        assert_eq!(status, StatusCode::OK);
    }
    // Remembered for awa: any other password, or another's name, is refused.
    for (name, password) in [
        ("awa", "a long passwore"),
        ("awa", "a long password "),
        ("awa", "binta's long password"),
        ("binta", "a long password"),
        ("awa", ""),
    ] {
        let (status, _) = get_as(&of_unit("unit-a"), name, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}:{password}");
    }
    let (status, _) = get_as(&of_unit("unit-a"), "awa", "a long password").await;
    assert_eq!(status, StatusCode::OK, "four failures do not lock");

    // The administrator (another process) changes awa's password and units:
    // the old password is refused at once, the new units apply at once.
    add_supervisor(&data, "awa", "a new long password", &["unit-b"]);
    let (status, _) = get_as(&of_unit("unit-b"), "awa", "a long password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&of_unit("unit-b"), "awa", "a new long password").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_as(&of_unit("unit-a"), "awa", "a new long password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Removed from the registry: refused, remembered or not.
    registry(&data)
        .execute("DELETE FROM supervisors WHERE name = 'awa'", [])
        .unwrap();
    let (status, _) = get_as(&of_unit("unit-b"), "awa", "a new long password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&of_unit("unit-b"), "binta", "binta's long password").await;
    assert_eq!(status, StatusCode::OK);
}

fn devices_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// (replica, units, silent) of each device in a `/v1/devices` answer.
fn lines(answer: &serde_json::Value) -> Vec<(u64, Vec<String>, bool)> {
    answer["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let units = d["units"].as_array().unwrap();
            let units = units.iter().map(|u| u.as_str().unwrap().to_string());
            (
                d["replica"].as_u64().unwrap(),
                units.collect(),
                d["silent"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_supervisor_sees_the_sync_health_of_their_units_devices() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let a = enrol(&data, dir.path(), "agent-a", "tablet", &["unit-a"]);
    let b = enrol(&data, dir.path(), "agent-b", "tablet", &["unit-b"]);
    let ab = enrol(
        &data,
        dir.path(),
        "agent-ab",
        "tablet",
        &["unit-a", "unit-b"],
    );
    let gateway = enrol(&data, dir.path(), "gateway", "intake", &[]);
    // Agent A's tablet was enrolled ten days ago and has never synced.
    let ten_days_ago = guichet_sync_server::app::now_ms() as i64 - 10 * DAY_MS;
    registry(&data)
        .execute(
            "UPDATE devices SET enrolled_at = ?1 WHERE replica = ?2",
            (ten_days_ago, a.replica),
        )
        .unwrap();
    add_supervisor(&data, "awa", "awa's long password", &["unit-a"]);
    add_supervisor(&data, "chef", "chef's long password", &[]);
    add_supervisor(&data, "cira", "cira's long password", &["unit-c"]);
    add_supervisor(&data, "dado", "dado's long password", &["unit-a"]);
    registry(&data)
        .execute(
            "UPDATE supervisors SET units = 'unit-a' WHERE name = 'dado'",
            [],
        )
        .unwrap();
    let server = start_server(&data, "127.0.0.1:0");
    let api = server.at("/v1/devices");

    let (status, body) = get_as(&api, "awa", "awa's long password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = devices_json(&body);
    assert_eq!(
        lines(&answer),
        [
            (a.replica as u64, vec!["unit-a".to_string()], true),
            (ab.replica as u64, vec!["unit-a".to_string()], false),
        ],
        "unit A's devices only, and of them only unit A"
    );
    assert_eq!(answer["silent"], 1);
    assert_eq!(answer["silent_after_days"], 3);
    let first = &answer["devices"][0];
    assert_eq!(first["agent"], "agent-a");
    assert_eq!(first["role"], "tablet");
    assert_eq!(first["revoked"], false);
    assert_eq!(first["last_sync_ms"], serde_json::Value::Null);
    assert_eq!(first["enrolled_ms"], ten_days_ago);
    for field in [
        "pending_ops",
        "quarantined_ops",
        "last_error",
        "app_version",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert!(
        !body.contains("agent-b") && !body.contains("gateway"),
        "{body}"
    );

    let (status, body) = get_as(&api, "chef", "chef's long password").await;
    assert_eq!(status, StatusCode::OK);
    let everyone = devices_json(&body);
    let replicas: Vec<u64> = lines(&everyone).iter().map(|l| l.0).collect();
    let enrolled = [a.replica, b.replica, ab.replica, gateway.replica].map(u64::from);
    assert_eq!(replicas, enrolled);
    assert_eq!(everyone["silent"], 1);
    let (status, body) = get_as(
        &format!("{api}?unit=unit-b"),
        "chef",
        "chef's long password",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let replicas: Vec<u64> = lines(&devices_json(&body)).iter().map(|l| l.0).collect();
    assert_eq!(replicas, [b.replica, ab.replica].map(u64::from));

    // Fail closed: another unit, no devices in scope, no or wrong
    // credentials, units that cannot be read.
    let (status, _) = get_as(&format!("{api}?unit=unit-b"), "awa", "awa's long password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get_as(&api, "cira", "cira's long password").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines(&devices_json(&body)), []);
    let status = client().get(&api).send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&api, "awa", "chef's long password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = get_as(&api, "dado", "dado's long password").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("agent"), "{body}");

    // The page: the same devices, the silent one flagged, in both languages.
    let page = server.at("/supervisor/devices");
    let (status, html) = get_as(&format!("{page}?lang=en"), "awa", "awa's long password").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(
        "data-replica=\"{}\" data-silent=\"true\"",
        a.replica
    )));
    assert!(html.contains(&format!(
        "data-replica=\"{}\" data-silent=\"false\"",
        ab.replica
    )));
    assert!(html.contains("Silent for more than 3 days") && html.contains(">silent<"));
    assert!(
        !html.contains("agent-b") && !html.contains(&format!("data-replica=\"{}\"", b.replica))
    );
    let (_, html) = get_as(&format!("{page}?lang=fr"), "awa", "awa's long password").await;
    assert!(html.contains("Silencieux depuis plus de 3 jours") && html.contains(">silencieux<"));
    let status = client().get(&page).send().await.unwrap().status();
    assert_eq!(status, StatusCode::SEE_OTHER, "to the sign-in page");
    drop(server);

    // The number of days is a setting.
    let config = dir.path().join("sync.toml");
    std::fs::write(&config, "silent_device_days = 20\n").unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config);
    let server = Server::start(command);
    let (_, body) = get_as(&server.at("/v1/devices"), "awa", "awa's long password").await;
    let answer = devices_json(&body);
    assert_eq!(answer["silent_after_days"], 20);
    assert_eq!(answer["silent"], 0);
}
