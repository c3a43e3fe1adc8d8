//! Sends what the outbox holds, with retries and backoff. Each message is
//! marked as being sent, durably, before it leaves: a stop in between never
//! makes it leave twice.

use crate::gateway::{locked, now_ms, Gateway};
use crate::providers::{SendResult, SmsSender};
use crate::state::{GatewayDb, OutboxSms};
use guichet_core::privacy::mask_phone;
use std::sync::Arc;
use std::time::Duration;

const FIRST_RETRY_MS: u64 = 5_000;
const MAX_RETRY_MS: u64 = 3_600_000;

/// The delay before attempt `attempts + 1`.
pub fn backoff(attempts: u32) -> u64 {
    FIRST_RETRY_MS
        .saturating_mul(1u64 << attempts.min(20))
        .min(MAX_RETRY_MS)
}

/// How many messages are taken, and in flight, at once.
const BATCH: usize = 32;

/// One batch sent, with each message's result.
type Sent = Vec<(OutboxSms, SendResult)>;

/// Records the results of the batch just sent and takes the next batch,
/// marked as being sent, in one transaction: one commit per batch. Results
/// that could not be recorded are handed back, to be recorded next turn;
/// meanwhile their messages stay marked as being sent, never sent twice.
async fn record_and_take(
    gw: &Arc<Gateway>,
    name: &'static str,
    sent: Sent,
) -> (Vec<OutboxSms>, Sent) {
    let gw = gw.clone();
    let turn = tokio::task::spawn_blocking(move || {
        let db = locked(&gw.db);
        let max = gw.config.sms.max_attempts;
        let now = now_ms();
        let taken = db.transaction(|| {
            for (sms, result) in &sent {
                record(&db, name, max, sms, result, now)?;
            }
            db.take_due_sms(now, BATCH)
        });
        (taken, sent)
    })
    .await;
    match turn {
        Ok((Ok(due), _)) => (due, Sent::new()),
        Ok((Err(e), sent)) => {
            tracing::error!(error = %e, "recording SMS attempts or reading the outbox failed");
            (Vec::new(), sent)
        }
        Err(e) => {
            tracing::error!(error = %e, "recording SMS attempts or reading the outbox stopped");
            (Vec::new(), Sent::new())
        }
    }
}

/// Sends `due`; the results in the same order. Phones are served
/// concurrently, but a phone's own messages leave in the order queued, so
/// that replies arrive in the order the citizen wrote.
async fn send_all(sender: &dyn SmsSender, due: &[OutboxSms]) -> Vec<SendResult> {
    let mut by_phone: Vec<Vec<usize>> = Vec::new();
    for (i, sms) in due.iter().enumerate() {
        match by_phone.iter_mut().find(|g| due[g[0]].phone == sms.phone) {
            Some(group) => group.push(i),
            None => by_phone.push(vec![i]),
        }
    }
    let sent = futures_util::future::join_all(by_phone.into_iter().map(|group| async move {
        let mut results = Vec::with_capacity(group.len());
        for i in group {
            results.push((i, sender.send(&due[i]).await));
        }
        results
    }))
    .await;
    let mut results: Vec<(usize, SendResult)> = sent.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Records one attempt: sent, to retry after the backoff, or given up.
fn record(
    db: &GatewayDb,
    name: &str,
    max_attempts: u32,
    sms: &OutboxSms,
    result: &SendResult,
    now: u64,
) -> rusqlite::Result<()> {
    let (id, attempts) = (sms.id, sms.attempts);
    match result {
        SendResult::Accepted(provider_id) => db.sms_sent(id, name, provider_id.as_deref(), now),
        SendResult::Retry(why) if attempts + 1 < max_attempts => {
            tracing::warn!(sms = id, to = %mask_phone(&sms.phone), attempt = attempts + 1, %why, "SMS not sent, will retry");
            db.sms_attempt_failed(id, why, Some(now + backoff(attempts)), now)
        }
        SendResult::Retry(why) | SendResult::Refused(why) => {
            tracing::warn!(sms = id, to = %mask_phone(&sms.phone), %why, "SMS given up");
            db.sms_attempt_failed(id, why, None, now)
        }
    }
}

/// How long the outbox rests when nothing is due, unless SMS are queued
/// meanwhile: messages waiting for a retry come due within this.
const IDLE_PAUSE: Duration = Duration::from_millis(250);

/// Runs until the process stops.
pub async fn run(gw: Arc<Gateway>, sender: Arc<dyn SmsSender>) {
    run_resting(gw, sender, IDLE_PAUSE).await
}

/// Each batch is marked as being sent in one transaction, sent
/// concurrently (each phone's messages one after another, in order), and
/// its results recorded in the transaction that takes the next.
async fn run_resting(gw: Arc<Gateway>, sender: Arc<dyn SmsSender>, idle_pause: Duration) {
    let mut sent = Sent::new();
    loop {
        let (due, unrecorded) = record_and_take(&gw, sender.name(), sent).await;
        sent = unrecorded;
        if due.is_empty() {
            gw.wait_for_sms(idle_pause).await;
            continue;
        }
        let results = send_all(sender.as_ref(), &due).await;
        sent.extend(due.into_iter().zip(results));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SendFuture;
    use crate::state::SmsStatus;
    use std::sync::Mutex;

    /// Records the order messages leave in; the first message of phone B
    /// waits, so that a sender without per-phone order would reorder.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<i64>>);

    impl SmsSender for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn send<'a>(&'a self, sms: &'a OutboxSms) -> SendFuture<'a> {
            Box::pin(async move {
                if sms.id == 2 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                self.0.lock().unwrap().push(sms.id);
                if sms.id % 2 == 0 {
                    SendResult::Accepted(Some(format!("p{}", sms.id)))
                } else {
                    SendResult::Retry(format!("busy {}", sms.id))
                }
            })
        }
    }

    fn sms(id: i64, phone: &str) -> OutboxSms {
        OutboxSms {
            id,
            event_key: format!("e{id}"),
            phone: phone.into(),
            text: "t".into(),
            status: SmsStatus::Sending,
            attempts: 0,
            provider_id: None,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn phones_are_served_together_and_each_phone_in_order() {
        let due = [
            sms(1, "A"),
            sms(2, "B"),
            sms(3, "A"),
            sms(4, "B"),
            sms(5, "C"),
        ];
        let sender = Recorder::default();
        let results = send_all(&sender, &due).await;
        let expected: Vec<SendResult> = (1..=5)
            .map(|id| match id % 2 {
                0 => SendResult::Accepted(Some(format!("p{id}"))),
                _ => SendResult::Retry(format!("busy {id}")),
            })
            .collect();
        assert_eq!(results, expected, "each result beside its message");
        let order = sender.0.lock().unwrap().clone();
        let at = |id| order.iter().position(|&x| x == id).unwrap();
        assert!(
            at(1) < at(3) && at(2) < at(4),
            "one phone's in order: {order:?}"
        );
        assert!(at(3) < at(2), "A did not wait for B's slow send: {order:?}");
    }

    #[tokio::test]
    async fn queued_sms_leave_without_waiting_for_the_pause() {
        let dir = tempfile::TempDir::new().unwrap();
        let gw = Arc::new(crate::sms::tests::gateway(dir.path()));
        let sender = Arc::new(Recorder::default());
        // Resting for an hour when idle: only the wake-up can send.
        let outbox = tokio::spawn(run_resting(
            gw.clone(),
            sender.clone(),
            Duration::from_secs(3600),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(sender.0.lock().unwrap().is_empty(), "nothing to send yet");
        let queued = locked(&gw.db).enqueue_sms("created:1", "+221770000001", "hello", 0);
        assert!(queued.unwrap());
        gw.sms_queued();
        let sent = async {
            while sender.0.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let woken = tokio::time::timeout(Duration::from_secs(30), sent).await;
        outbox.abort();
        assert!(woken.is_ok(), "the queued SMS was sent without the pause");
    }

    #[tokio::test]
    async fn results_that_could_not_be_recorded_are_recorded_next_turn() {
        let dir = tempfile::TempDir::new().unwrap();
        let gw = Arc::new(crate::sms::tests::gateway(dir.path()));
        let queued = locked(&gw.db).enqueue_sms("created:1", "+221770000001", "hello", 0);
        assert!(queued.unwrap());
        let (due, unrecorded) = record_and_take(&gw, "recorder", Sent::new()).await;
        assert!(unrecorded.is_empty());
        let id = due[0].id;
        let sent: Sent = due
            .into_iter()
            .map(|sms| (sms, SendResult::Accepted(Some("p1".into()))))
            .collect();
        // Another writer holds the file for longer than the busy timeout.
        let other = rusqlite::Connection::open(dir.path().join("gateway.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (due, unrecorded) = record_and_take(&gw, "recorder", sent).await;
        assert!(due.is_empty());
        assert_eq!(unrecorded.len(), 1, "the result is handed back");
        let status = |gw: &Gateway| locked(&gw.db).sms(id).unwrap().unwrap().status;
        assert_eq!(status(&gw), SmsStatus::Sending, "never sent twice");
        other.execute_batch("ROLLBACK").unwrap();
        let (_, unrecorded) = record_and_take(&gw, "recorder", unrecorded).await;
        assert!(unrecorded.is_empty());
        assert_eq!(status(&gw), SmsStatus::Sent);
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), 5_000);
        assert_eq!(backoff(1), 10_000);
        assert_eq!(backoff(30), 3_600_000);
    }
}
