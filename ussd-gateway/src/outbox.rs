//! Sends what the outbox holds, with retries and backoff.
//!
//! What a crash or a power cut may do to each kind of message:
//! - the marks of messages being sent and their results are committed
//!   durably (`GatewayDb::durable`) before the gateway acts on them, and
//!   with them everything queued before; so is a reply queued for a
//!   provider that will not call again;
//! - a message is marked as being sent, durably, before it leaves. If the
//!   gateway stops before the provider's answer is recorded, it may or may
//!   not have left. A reference SMS (`created:`, `consent:`) is then sent
//!   again: at least once, since it is the citizen's only copy of their
//!   reference and a second copy is harmless. Any other SMS (a status
//!   change, a reply) is never sent twice: at most once, marked unknown,
//!   and a delivery report may still tell;
//! - a request stored in the case store (which syncs every commit) whose
//!   reference SMS is not in the outbox (the gateway stopped between the
//!   two commits, or a power cut undid gateway.db's) gets it at the next
//!   start (`queue_missing_references`): a filing's commit in gateway.db
//!   need not wait on the disk. Status SMS are derived from the case store
//!   likewise, from the last position notified, which is undone with them.
//!
//! On shutdown the batch in flight is sent and its results recorded
//! (`Outbox::stop`, bounded by `SHUTDOWN_WAIT`) before the process exits.

use crate::config::Config;
use crate::flow::FlowError;
use crate::gateway::{locked, now_ms, Gateway};
use crate::i18n::Catalog;
use crate::providers::{SendResult, SmsSender};
use crate::state::{GatewayDb, OutboxSms};
use guichet_core::privacy::mask_phone;
use guichet_core::{Case, Channel};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
/// meanwhile their messages stay marked as being sent, not sent again.
async fn record_and_take(
    gw: &Arc<Gateway>,
    name: &'static str,
    sent: Sent,
    take: usize,
) -> (Vec<OutboxSms>, Sent) {
    let gw = gw.clone();
    let turn = tokio::task::spawn_blocking(move || {
        let db = locked(&gw.db);
        let max = gw.config.sms.max_attempts;
        let now = now_ms();
        let taken = db.durable(|| {
            for (sms, result) in &sent {
                record(&db, name, max, sms, result, now)?;
            }
            db.take_due_sms(now, take)
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

/// How long a shutdown waits for the batch in flight: its sends (each
/// bounded by the HTTP client's timeout) and the record of their results.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// The outbox, running until `stop`.
pub struct Outbox {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// Queues what the gateway owes (`queue_missing_references`), then
    /// sends until stopped.
    pub fn start(gw: Arc<Gateway>, sender: Arc<dyn SmsSender>) -> Outbox {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let owed = gw.clone();
            match tokio::task::spawn_blocking(move || queue_missing_references(&owed)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::warn!(n, "reference SMS that were never queued are queued now")
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "looking for reference SMS never queued failed")
                }
                Err(e) => {
                    tracing::error!(error = %e, "looking for reference SMS never queued stopped")
                }
            }
            run_resting(gw, sender, IDLE_PAUSE, stopped).await
        });
        Outbox { stop, task }
    }

    /// Stops taking messages; the batch in flight is sent and its results
    /// recorded, within `SHUTDOWN_WAIT`. Messages still being sent after
    /// that are treated at the next start as after a crash (see the module).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(SHUTDOWN_WAIT, self.task)
            .await
            .is_err()
        {
            tracing::warn!("the outbox did not finish its batch in time: its results are settled at the next start");
        }
    }
}

/// Each batch is marked as being sent in one transaction, sent
/// concurrently (each phone's messages one after another, in order), and
/// its results recorded in the transaction that takes the next; once
/// `stopped`, the last results are recorded and nothing more is taken.
async fn run_resting(
    gw: Arc<Gateway>,
    sender: Arc<dyn SmsSender>,
    idle_pause: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut sent = Sent::new();
    loop {
        // A dropped handle stops the outbox too.
        let stopping = *stopped.borrow() || stopped.has_changed().is_err();
        let take = if stopping { 0 } else { BATCH };
        let (due, unrecorded) = record_and_take(&gw, sender.name(), sent, take).await;
        sent = unrecorded;
        if stopping {
            if !sent.is_empty() {
                tracing::warn!(
                    n = sent.len(),
                    "SMS results not recorded at shutdown: settled at the next start"
                );
            }
            return;
        }
        if due.is_empty() {
            tokio::select! {
                _ = gw.wait_for_sms(idle_pause) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let results = send_all(sender.as_ref(), &due).await;
        sent.extend(due.into_iter().zip(results));
    }
}

/// Reference SMS are not looked for in requests older than this: a
/// reference that comes weeks late would puzzle more than help.
const OWED_FOR_MS: u64 = 7 * 24 * 3_600_000;

/// Where `queue_missing_references` got to: the last of this gateway's
/// cases looked at, per replica number (gateway.db's meta).
const REFERENCES_CHECKED_UP_TO: &str = "references_checked_up_to";

/// Queues the reference SMS of every request this gateway stored whose SMS
/// is not in the outbox: the gateway stopped between the case store's
/// commit and gateway.db's. The event keys are the filing's own, so a
/// filing that commits meanwhile, or a second start, queues nothing twice.
/// Returns how many were queued.
pub fn queue_missing_references(gw: &Gateway) -> Result<usize, FlowError> {
    let store = locked(&gw.store);
    let db = locked(&gw.db);
    let position = format!("{REFERENCES_CHECKED_UP_TO}:{}", store.replica());
    let checked = db.meta(&position)?;
    let ours: Vec<_> = store
        .case_ids()?
        .into_iter()
        .filter(|id| id.dot().actor == store.replica())
        .filter(|id| checked.is_none_or(|up_to| id.as_i64() as u64 > up_to))
        .collect();
    let last = ours.last().map_or(0, |id| id.as_i64() as u64);
    if checked.is_none() {
        // The first start of a gateway, or of one from before this look:
        // its requests had their SMS queued as they were filed.
        db.durable(|| db.set_meta(&position, last))?;
        return Ok(0);
    }
    if ours.is_empty() {
        return Ok(0);
    }
    let now = now_ms();
    let queued = db.durable(|| {
        let mut queued = 0;
        for id in &ours {
            let case = store.case(*id)?;
            if now.saturating_sub(case.created_at.millis()) > OWED_FOR_MS {
                continue;
            }
            let Some((key, text)) = reference_sms(&gw.config, &gw.catalog, &case) else {
                continue;
            };
            if !db.has_sms(&key)? {
                db.enqueue_sms(&key, &case.requester_phone, &text, now)?;
                queued += 1;
            }
        }
        db.set_meta(&position, last)?;
        Ok::<_, FlowError>(queued)
    })?;
    if queued > 0 {
        gw.sms_queued();
    }
    Ok(queued)
}

/// The SMS a filing sends (its event key and text), as `flow::filed`
/// writes it: the mediator's request asks the citizen's consent, the
/// citizen's own tells them the reference. None for a request that came
/// some other way (a tablet's).
fn reference_sms(config: &Config, catalog: &Catalog, case: &Case) -> Option<(String, String)> {
    let mediator = match (case.channel, &case.mediator) {
        (Channel::Mediator, Some(mediator)) => Some(mediator.as_str()),
        (Channel::Ussd, _) => None,
        _ => return None,
    };
    Some(crate::flow::filing_sms(
        config,
        catalog,
        case.id,
        &case.reference,
        &case.service,
        &case.requester_language,
        mediator,
    ))
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
        let (_stop, stopped) = watch::channel(false);
        let outbox = tokio::spawn(run_resting(
            gw.clone(),
            sender.clone(),
            Duration::from_secs(3600),
            stopped,
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
        let (due, unrecorded) = record_and_take(&gw, "recorder", Sent::new(), BATCH).await;
        assert!(unrecorded.is_empty());
        let id = due[0].id;
        let sent: Sent = due
            .into_iter()
            .map(|sms| (sms, SendResult::Accepted(Some("p1".into()))))
            .collect();
        // Another writer holds the file for longer than the busy timeout.
        let other = rusqlite::Connection::open(dir.path().join("gateway.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (due, unrecorded) = record_and_take(&gw, "recorder", sent, BATCH).await;
        assert!(due.is_empty());
        assert_eq!(unrecorded.len(), 1, "the result is handed back");
        let status = |gw: &Gateway| locked(&gw.db).sms(id).unwrap().unwrap().status;
        assert_eq!(status(&gw), SmsStatus::Sending, "never sent twice");
        other.execute_batch("ROLLBACK").unwrap();
        let (_, unrecorded) = record_and_take(&gw, "recorder", unrecorded, BATCH).await;
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
