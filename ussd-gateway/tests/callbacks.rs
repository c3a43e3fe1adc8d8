//! An SMS callback is answered 200 only once what it brought is recorded:
//! otherwise an error, so that the provider calls again; a repeat is
//! recognised and answered once.

mod common;

use common::*;

async fn at_dlr(gw: &Gateway, id: &str) -> u16 {
    let form = [
        ("id", id),
        ("status", "Success"),
        ("phoneNumber", "+221771234567"),
    ];
    reqwest::Client::new()
        .post(gw.at(&format!("/at/{SECRET}/dlr")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn status(data: &std::path::Path) -> Vec<String> {
    let db = rusqlite::Connection::open(data.join("gateway.db")).unwrap();
    let mut stmt = db.prepare("SELECT status FROM outbox ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_reply_or_report_that_cannot_be_recorded_is_refused_so_the_provider_retries() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let (fake, sent) = fake_africastalking().await;
    let kannel = format!(
        "\n[providers.kannel]\nsecret = \"{SECRET}\"\nsendsms_url = \"http://127.0.0.1:9/sendsms\"\n\
         username = \"u\"\npassword = \"p\"\ncallback_base_url = \"http://127.0.0.1:8710\"\n"
    );
    let gw = start_gateway(
        &(config(&data, &fake, "standalone_replica = 999") + &kannel),
        dir.path(),
    );
    // Another writer holds gateway.db for longer than the gateway waits.
    let other = rusqlite::Connection::open(data.join("gateway.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let phone = "+221771234567";
    assert_eq!(
        at_sms(&gw, phone, "HELP", "ATXid_in_1").await,
        503,
        "the reply could not be queued"
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(at_sms(&gw, phone, "HELP", "ATXid_in_1").await, 200);
    assert_eq!(wait_for_sms(&sent, 1).await.len(), 1);
    // The provider calls once more (our 200 was lost): answered once.
    assert_eq!(at_sms(&gw, phone, "HELP", "ATXid_in_1").await, 200);
    assert_eq!(status(&data).len(), 1, "one reply queued");
    // The provider's id is recorded: its report can find the message.
    for _ in 0..200 {
        if status(&data) == ["sent"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status(&data), ["sent"]);

    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(
        at_dlr(&gw, "ATXid_0").await,
        503,
        "the report is not recorded"
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(at_dlr(&gw, "ATXid_0").await, 200);
    assert_eq!(status(&data), ["delivered"], "one reply, delivered");

    // Kannel's reports name our own id.
    let kannel_dlr = || async {
        let url = gw.at(&format!("/kannel/{SECRET}/dlr?id=1&type=2"));
        reqwest::get(url).await.unwrap().status().as_u16()
    };
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(kannel_dlr().await, 503, "the report is not recorded");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(kannel_dlr().await, 200);
    assert_eq!(status(&data), ["failed"]);
}
