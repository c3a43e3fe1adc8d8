//! A stop (SIGTERM) lets the outbox finish the batch in flight: the
//! provider's answer is recorded before the process exits, so the message
//! is neither sent again nor left unknown.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Africa's Talking's messaging API, answering each request only once
/// `answer` is rung; `asked` gets a permit per request received.
async fn slow_africastalking() -> (String, Arc<Notify>, Arc<Semaphore>) {
    use axum::routing::post;
    let (answer, asked) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
    let (ring, count) = (answer.clone(), asked.clone());
    let app = axum::Router::new().route(
        "/version1/messaging",
        post(move || {
            let (ring, count) = (ring.clone(), count.clone());
            async move {
                count.add_permits(1);
                ring.notified().await;
                axum::Json(
                    serde_json::json!({"SMSMessageData": {"Message": "Sent to 1/1",
                    "Recipients": [{"statusCode": 101, "number": "+221771234567",
                    "status": "Success", "cost": "KES 0.8000", "messageId": "ATXid_late"}]}}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, answer, asked)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_records_the_batch_in_flight_before_exiting() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let (fake, answer, asked) = slow_africastalking().await;
    let mut gw = start_gateway(
        &config(&data, &fake, "standalone_replica = 999"),
        dir.path(),
    );
    assert_eq!(
        at_sms(&gw, "+221771234567", "HELP", "ATXid_in_1").await,
        200
    );
    // The reply is with the provider, unanswered, when the stop comes.
    asked.acquire().await.unwrap().forget();
    let pid = gw.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(term.unwrap().success());
    while !gw.log_text().contains("shutting down") {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answer.notify_one();
    let exit = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit}");
    let db = rusqlite::Connection::open(data.join("gateway.db")).unwrap();
    let (status, provider_id): (String, Option<String>) = db
        .query_row("SELECT status, provider_id FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(status, "sent", "the answer was recorded before the exit");
    assert_eq!(provider_id.as_deref(), Some("ATXid_late"));
}
