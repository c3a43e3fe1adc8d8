//! Sends what the outbox holds, with retries and backoff. Each message is
//! marked as being sent, durably, before it leaves: a stop in between never
//! makes it leave twice.

use crate::gateway::{locked, now_ms, Gateway};
use crate::providers::{SendResult, SmsSender};
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

/// Sends every due message once; returns how many were attempted.
pub async fn drain(gw: &Arc<Gateway>, sender: &dyn SmsSender) -> usize {
    let taken = {
        let gw = gw.clone();
        tokio::task::spawn_blocking(move || {
            let db = locked(&gw.db);
            db.take_due_sms(now_ms(), 20)
        })
        .await
    };
    let due = match taken {
        Ok(Ok(due)) => due,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the outbox failed");
            return 0;
        }
        Err(_) => return 0,
    };
    for sms in &due {
        let result = sender.send(sms).await;
        let gw = gw.clone();
        let (id, attempts, name) = (sms.id, sms.attempts, sender.name());
        let max = gw.config.sms.max_attempts;
        let _ = tokio::task::spawn_blocking(move || {
            let db = locked(&gw.db);
            let now = now_ms();
            let recorded = match result {
                SendResult::Accepted(provider_id) => db.sms_sent(id, name, provider_id.as_deref(), now),
                SendResult::Retry(why) if attempts + 1 < max => {
                    tracing::warn!(sms = id, attempt = attempts + 1, %why, "SMS not sent, will retry");
                    db.sms_attempt_failed(id, &why, Some(now + backoff(attempts)), now)
                }
                SendResult::Retry(why) | SendResult::Refused(why) => {
                    tracing::warn!(sms = id, %why, "SMS given up");
                    db.sms_attempt_failed(id, &why, None, now)
                }
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "recording an SMS attempt failed");
            }
        })
        .await;
    }
    due.len()
}

/// Runs until the process stops.
pub async fn run(gw: Arc<Gateway>, sender: Arc<dyn SmsSender>) {
    loop {
        if drain(&gw, sender.as_ref()).await == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0), 5_000);
        assert_eq!(backoff(1), 10_000);
        assert_eq!(backoff(30), 3_600_000);
    }
}
