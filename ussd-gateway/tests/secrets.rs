//! Nothing secret or personal in the gateway's logs (info and above) nor in
//! the error texts it stores, when its SMS provider fails: Kannel
//! unreachable, Africa's Talking answering errors that echo the request.

mod common;

use common::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PHONE: &str = "+221771234567";
const KANNEL_PASSWORD: &str = "kannel-pass-7Hq2";
const AT_API_KEY: &str = "test-api-key";

/// Every SMS of the outbox as stored: (text, status, last_error).
fn outbox(data: &Path) -> Vec<(String, String, Option<String>)> {
    let db = rusqlite::Connection::open(data.join("gateway.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT text, status, last_error FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Waits until every SMS of the outbox was given up.
async fn all_given_up(data: &Path) -> Vec<(String, String, Option<String>)> {
    for _ in 0..300 {
        let sms = outbox(data);
        if !sms.is_empty() && sms.iter().all(|(_, status, _)| status == "failed") {
            return sms;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the SMS were not given up: {:?}", outbox(data));
}

/// What must appear nowhere: the secrets, the number (with or without its
/// `+`, as sent or percent-encoded) and the text of each message.
fn forbidden(texts: &[String]) -> Vec<String> {
    let mut all: Vec<String> = [KANNEL_PASSWORD, AT_API_KEY, SECRET, "771234567"]
        .map(String::from)
        .to_vec();
    for text in texts {
        all.push(text.clone());
        all.push(serde_urlencoded::to_string([("", text)]).unwrap()[1..].to_string());
        // A part of it is enough to tell: its first words.
        all.push(text.chars().take(24).collect());
    }
    all
}

fn assert_clean(gw: &Gateway, sms: &[(String, String, Option<String>)]) {
    let texts: Vec<String> = sms.iter().map(|(t, _, _)| t.clone()).collect();
    let log = gw.log_text();
    assert!(
        log.contains("SMS given up"),
        "the failure was logged: {log}"
    );
    for bad in forbidden(&texts) {
        for line in log.lines() {
            assert!(!line.contains(&bad), "{bad:?} in the log: {line}");
        }
        for (_, _, error) in sms {
            let error = error.as_deref().expect("an error text is stored");
            assert!(!error.contains(&bad), "{bad:?} in last_error: {error}");
        }
    }
}

/// An SMS that the gateway answers: its reply goes through the outbox.
async fn ask_for_help(gw: &Gateway) {
    assert_eq!(at_sms(gw, PHONE, "HELP", "ATXid_in_1").await, 200);
}

#[tokio::test]
async fn an_unreachable_kannel_leaves_no_secret_in_logs_or_stored_errors() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    // A port nobody listens on: every sendsms fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sendsms = format!("http://{}/cgi-bin/sendsms", closed.local_addr().unwrap());
    drop(closed);
    let text = config(&data, "http://127.0.0.1:9", "standalone_replica = 999")
        .replace("provider = \"africastalking\"", "provider = \"kannel\"")
        .replace("per_minute = 20", "per_minute = 20\nmax_attempts = 2")
        + &format!(
            "\n[providers.kannel]\nsecret = \"{SECRET}\"\nsendsms_url = \"{sendsms}\"\n\
             username = \"guichet\"\npassword = \"{KANNEL_PASSWORD}\"\n\
             callback_base_url = \"http://127.0.0.1:8710\"\n"
        );
    let gw = start_gateway(&text, dir.path());
    ask_for_help(&gw).await;
    let sms = all_given_up(&data).await;
    assert_clean(&gw, &sms);
}

/// Answers 500 and then 400, each echoing what it was sent: the key, the
/// number and the text.
async fn failing_africastalking() -> String {
    use axum::routing::post;
    let calls = Arc::new(Mutex::new(0));
    let app = axum::Router::new().route(
        "/version1/messaging",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                let call = {
                    let mut calls = calls.lock().unwrap();
                    *calls += 1;
                    *calls
                };
                let echo = format!(
                    "apiKey={:?} {} {}",
                    headers.get("apiKey"),
                    String::from_utf8_lossy(&body),
                    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                        .unwrap()
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                let status = match call {
                    1 => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    _ => axum::http::StatusCode::BAD_REQUEST,
                };
                (status, echo)
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn africas_talking_errors_leave_no_secret_in_logs_or_stored_errors() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let fake = failing_africastalking().await;
    let text = config(&data, &fake, "standalone_replica = 999")
        .replace("per_minute = 20", "per_minute = 20\nmax_attempts = 3");
    let gw = start_gateway(&text, dir.path());
    ask_for_help(&gw).await;
    let sms = all_given_up(&data).await;
    assert_clean(&gw, &sms);
}
