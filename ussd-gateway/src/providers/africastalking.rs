//! Africa's Talking: USSD callback, end-of-session notification, incoming
//! SMS, delivery reports, and sending SMS through its messaging API.
//!
//! Callback URLs (form-encoded POSTs):
//! - `/at/{secret}/ussd` — reply `CON ...` or `END ...` in text/plain;
//!   `text` holds every input of the session joined by `*`;
//! - `/at/{secret}/ussd/end` — end-of-session notification;
//! - `/at/{secret}/sms` — incoming SMS (replies go out through the outbox);
//! - `/at/{secret}/dlr` — delivery reports.

use super::{authorized, e164, AppState, Peer, Refusal, SendFuture, SendResult, SmsSender};
use crate::config::AfricasTalkingConfig;
use crate::flow::Reply;
use crate::gateway::{locked, now_ms, Gateway, Hop, SessionEnd};
use crate::state::{DlrKey, OutboxSms, SmsStatus};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;

pub const NAME: &str = "africastalking";

/// Longest session id and `text` accepted; AT's are far shorter.
const MAX_SESSION_ID: usize = 128;
const MAX_TEXT: usize = 1_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/at/{secret}/ussd", post(ussd))
        .route("/at/{secret}/ussd/end", post(session_end))
        .route("/at/{secret}/sms", post(incoming_sms))
        .route("/at/{secret}/dlr", post(delivery_report))
}

/// The form of an authorized callback, or the response to give instead.
/// The secret is checked before anything is read, so a stranger learns
/// nothing, not even that the route exists.
fn form<T: serde::de::DeserializeOwned>(
    gw: &Gateway,
    secret: &str,
    peer: Option<SocketAddr>,
    body: &[u8],
) -> Result<T, Refusal> {
    let allowed = gw
        .config
        .providers
        .africastalking
        .as_ref()
        .is_some_and(|c| authorized(&c.auth, secret, peer));
    if !allowed {
        return Err(Refusal::NotFound);
    }
    // A form is read as UTF-8 or refused: read leniently, what the caller
    // typed would reach a case as replacement characters.
    if !is_utf8_form(body) {
        return Err(Refusal::BadRequest("the form is not UTF-8".into()));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| Refusal::BadRequest(format!("malformed form: {e}")))
}

/// Whether every name and value of a form decodes to UTF-8.
fn is_utf8_form(body: &[u8]) -> bool {
    body.split(|b| *b == b'&')
        .all(|pair| percent_encoding::percent_decode(pair).decode_utf8().is_ok())
}

#[derive(Deserialize)]
struct UssdForm {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "phoneNumber")]
    phone_number: String,
    #[serde(default)]
    text: String,
}

/// The caller's latest input. AT sends every input so far joined by `*`;
/// free text may contain `*` too, so the new input is what follows the
/// text we saw on the previous hop.
pub fn latest_input(text: &str, seen: Option<&str>) -> Option<String> {
    let seen = seen?;
    if text == seen {
        return None;
    }
    if seen.is_empty() {
        return Some(text.to_string());
    }
    match text
        .strip_prefix(seen)
        .and_then(|rest| rest.strip_prefix('*'))
    {
        Some(new) => Some(new.to_string()),
        // Out of step with our record: take the last field.
        None => Some(text.rsplit('*').next().unwrap_or_default().to_string()),
    }
}

fn plain(reply: &Reply) -> Response {
    let body = match reply {
        Reply::Con(t) => format!("CON {t}"),
        Reply::End(t) => format!("END {t}"),
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

async fn ussd(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    body: Bytes,
) -> Response {
    let form: UssdForm = match form(&gw, &secret, peer, &body) {
        Ok(f) => f,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(phone) = e164(&form.phone_number) else {
        return (StatusCode::BAD_REQUEST, "phoneNumber is not a phone number").into_response();
    };
    if form.session_id.is_empty()
        || form.session_id.len() > MAX_SESSION_ID
        || form.text.len() > MAX_TEXT
    {
        return (StatusCode::BAD_REQUEST, "sessionId or text out of bounds").into_response();
    }
    // On the worker: what may wait on the disk steps aside by itself.
    let seen = gw.seen_text(NAME, &form.session_id);
    let input = latest_input(&form.text, seen.as_deref());
    let reply = gw
        .ussd(&Hop {
            provider: NAME,
            session_id: &form.session_id,
            phone: &phone,
            input: input.as_deref(),
            raw_text: &form.text,
        })
        .await;
    plain(&reply)
}

#[derive(Deserialize)]
struct EndForm {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "hopsCount", default)]
    hops: Option<u32>,
}

async fn session_end(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    body: Bytes,
) -> Response {
    let form: EndForm = match form(&gw, &secret, peer, &body) {
        Ok(f) => f,
        Err(refusal) => return refusal.into_response(),
    };
    let end = match form.status.as_str() {
        "Success" => SessionEnd::Completed,
        "Incomplete" => SessionEnd::Abandoned,
        _ => SessionEnd::Failed,
    };
    let _ =
        tokio::task::spawn_blocking(move || gw.ussd_ended(NAME, &form.session_id, end, form.hops))
            .await;
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
struct SmsForm {
    from: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    id: String,
}

async fn incoming_sms(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    body: Bytes,
) -> Response {
    let form: SmsForm = match form(&gw, &secret, peer, &body) {
        Ok(f) => f,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(from) = e164(&form.from) else {
        return (StatusCode::BAD_REQUEST, "from is not a phone number").into_response();
    };
    if form.text.len() > 2_000 || form.id.len() > 200 {
        return (StatusCode::BAD_REQUEST, "text or id too long").into_response();
    }
    // Keyed by AT's message id: a retried callback is answered once.
    let key = format!(
        "reply:{NAME}:{}",
        if form.id.is_empty() {
            now_ms().to_string()
        } else {
            form.id
        }
    );
    let handled = tokio::task::spawn_blocking(move || {
        // Answered already (our 200 was lost): not handled twice.
        if locked(&gw.db).has_sms(&key)? {
            return Ok(());
        }
        if let Some(reply) = gw.sms(&from, &form.text) {
            if locked(&gw.db).enqueue_sms(&key, &from, &reply, now_ms())? {
                gw.sms_queued();
            }
        }
        Ok::<_, rusqlite::Error>(())
    })
    .await;
    retry_unless_done(handled, "queueing an SMS reply failed")
}

/// A callback's answer: 200 once handled; otherwise an error, so that
/// Africa's Talking calls again (a repeat is recognised by its id).
fn retry_unless_done(
    handled: Result<rusqlite::Result<()>, tokio::task::JoinError>,
    what: &str,
) -> Response {
    match handled {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "{what}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "{what}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Deserialize)]
struct DlrForm {
    id: String,
    status: String,
    #[serde(rename = "failureReason", default)]
    failure_reason: Option<String>,
}

async fn delivery_report(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    body: Bytes,
) -> Response {
    let form: DlrForm = match form(&gw, &secret, peer, &body) {
        Ok(f) => f,
        Err(refusal) => return refusal.into_response(),
    };
    let status = match form.status.as_str() {
        "Success" => SmsStatus::Delivered,
        "Sent" | "Submitted" | "Buffered" => SmsStatus::Sent,
        _ => SmsStatus::Failed,
    };
    let handled = tokio::task::spawn_blocking(move || {
        let db = locked(&gw.db);
        let key = DlrKey::Provider(NAME, &form.id);
        let reason = form.failure_reason.as_deref();
        if !db.delivery_report(key, status, reason, now_ms())? {
            tracing::info!("delivery report for an unknown message");
        }
        Ok(())
    })
    .await;
    retry_unless_done(handled, "recording a delivery report failed")
}

/// Sends through `POST {base}/version1/messaging`.
pub struct Sender {
    config: AfricasTalkingConfig,
    /// The messaging endpoint.
    url: reqwest::Url,
    http: reqwest::Client,
}

impl Sender {
    pub fn new(config: AfricasTalkingConfig) -> Result<Sender, String> {
        let url = format!(
            "{}/version1/messaging",
            config.base_url.trim_end_matches('/')
        );
        Ok(Sender {
            url: super::api_url("providers.africastalking.base_url", &url)?,
            config,
            http: super::api_client()?,
        })
    }

    async fn send_one(&self, sms: &OutboxSms) -> SendResult {
        let mut form = vec![
            ("username", self.config.username.as_str()),
            ("to", sms.phone.as_str()),
            ("message", sms.text.as_str()),
            ("enqueue", "1"),
        ];
        if let Some(from) = &self.config.sender_id {
            form.push(("from", from));
        }
        let response = self
            .http
            .post(self.url.clone())
            .header("apiKey", &self.config.api_key)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return SendResult::Retry(super::network_error(e)),
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_server_error() || status.as_u16() == 429 {
            return SendResult::Retry(format!("HTTP {status}"));
        }
        if !status.is_success() {
            return SendResult::Refused(format!("HTTP {status}: {body}"));
        }
        read_answer(&body)
    }
}

/// What a successful (2xx) answer of the messaging API says of the one
/// recipient the gateway sends to.
fn read_answer(body: &str) -> SendResult {
    let Ok(answer) = serde_json::from_str::<MessagingAnswer>(body) else {
        return SendResult::Retry("unreadable answer".into());
    };
    let data = answer.sms_message_data;
    let Some(recipient) = data.recipients.into_iter().next() else {
        return SendResult::Refused(format!("no recipient: {}", data.message));
    };
    let (code, status) = (recipient.status_code, recipient.status);
    match code {
        100..=102 => SendResult::Accepted(recipient.message_id),
        // Insufficient balance, gateway and internal errors may pass.
        405 | 500..=599 => SendResult::Retry(format!("status {code}: {status}")),
        _ => SendResult::Refused(format!("status {code}: {status}")),
    }
}

/// The messaging API's answer, as far as the gateway reads it.
#[derive(serde::Deserialize)]
struct MessagingAnswer {
    #[serde(rename = "SMSMessageData")]
    sms_message_data: MessageData,
}

#[derive(serde::Deserialize)]
struct MessageData {
    /// Why no recipient was tried, when none was ("InvalidSenderId").
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<Recipient>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    #[serde(default)]
    status_code: i64,
    #[serde(default)]
    status: String,
    message_id: Option<String>,
}

impl SmsSender for Sender {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send<'a>(&'a self, sms: &'a OutboxSms) -> SendFuture<'a> {
        Box::pin(async move {
            let secrets = [self.config.api_key.as_str(), &self.config.auth.secret];
            self.send_one(sms).await.scrubbed(&secrets, sms)
        })
    }
}

/// The callback forms and the messaging API's answer as the handlers read
/// them, for the fuzz targets in `fuzz/` only.
#[doc(hidden)]
pub mod fuzzing {
    use super::{DlrForm, EndForm, SendResult, SmsForm, UssdForm};

    /// A USSD callback: `(sessionId, phoneNumber, text)`.
    pub fn ussd_form(body: &[u8]) -> Option<(String, String, String)> {
        let f: UssdForm = serde_urlencoded::from_bytes(body).ok()?;
        Some((f.session_id, f.phone_number, f.text))
    }

    /// An end-of-session notification: `(sessionId, status, hopsCount)`.
    pub fn end_form(body: &[u8]) -> Option<(String, String, Option<u32>)> {
        let f: EndForm = serde_urlencoded::from_bytes(body).ok()?;
        Some((f.session_id, f.status, f.hops))
    }

    /// An incoming SMS: `(from, text, id)`.
    pub fn sms_form(body: &[u8]) -> Option<(String, String, String)> {
        let f: SmsForm = serde_urlencoded::from_bytes(body).ok()?;
        Some((f.from, f.text, f.id))
    }

    /// A delivery report: `(id, status, failureReason)`.
    pub fn dlr_form(body: &[u8]) -> Option<(String, String, Option<String>)> {
        let f: DlrForm = serde_urlencoded::from_bytes(body).ok()?;
        Some((f.id, f.status, f.failure_reason))
    }

    pub fn read_answer(body: &str) -> SendResult {
        super::read_answer(body)
    }
}

#[cfg(test)]
mod tests {
    use super::{latest_input, read_answer, SendResult};

    #[test]
    fn the_messaging_answer_tells_accepted_retry_and_refused_apart() {
        let answer = |code: u32, status: &str| {
            format!(
                r#"{{"SMSMessageData":{{"Message":"Sent to 1/1 Total Cost: KES 0.8000",
                "Recipients":[{{"statusCode":{code},"number":"+254711XXXYYY",
                "status":"{status}","cost":"KES 0.8000","messageId":"ATPid_1"}}]}}}}"#
            )
        };
        assert_eq!(
            read_answer(&answer(101, "Success")),
            SendResult::Accepted(Some("ATPid_1".into()))
        );
        assert_eq!(
            read_answer(&answer(405, "InsufficientBalance")),
            SendResult::Retry("status 405: InsufficientBalance".into())
        );
        assert_eq!(
            read_answer(&answer(403, "InvalidPhoneNumber")),
            SendResult::Refused("status 403: InvalidPhoneNumber".into())
        );
        assert_eq!(
            read_answer(r#"{"SMSMessageData":{"Message":"InvalidSenderId","Recipients":[]}}"#),
            SendResult::Refused("no recipient: InvalidSenderId".into())
        );
        assert_eq!(
            read_answer("<html>"),
            SendResult::Retry("unreadable answer".into())
        );
    }

    #[test]
    fn the_latest_input_follows_what_was_seen_even_with_stars_in_free_text() {
        assert_eq!(latest_input("", None), None);
        assert_eq!(latest_input("1", Some("")), Some("1".into()));
        assert_eq!(latest_input("1*2", Some("1")), Some("2".into()));
        assert_eq!(
            latest_input("1*2*Awa*Diop", Some("1*2")),
            Some("Awa*Diop".into())
        );
        assert_eq!(latest_input("1*2", Some("1*2")), None, "a repeated hop");
        assert_eq!(latest_input("4*5", Some("9")), Some("5".into()));
        assert_eq!(latest_input("1", None), None, "no session: start over");
    }
}
