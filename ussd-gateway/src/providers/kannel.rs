//! Kannel, the open-source SMS gateway operators and NGOs run in front of
//! their SMPP links.
//!
//! Kannel's side of the configuration:
//! - an `sms-service` with
//!   `get-url = "{gateway}/kannel/{secret}/sms?from=%p&to=%P&text=%b&coding=%c&charset=%C"`
//!   (`%b`, the exact payload: `%a` squeezes spaces and corrupts UTF-16),
//!   `accept-x-kannel-headers = true` and `omit-empty = true`;
//! - its `sendsms` interface, which this module calls; delivery reports
//!   come back to `{gateway}/kannel/{secret}/dlr?id=OUR_ID&type=%d`.
//!
//! The reply to an incoming SMS is the HTTP body; outside GSM-7 it carries
//! `X-Kannel-Coding: 2`, or every such character would arrive as `?`.

use super::{authorized, raw_query, AppState, Peer, Refusal, SendFuture, SendResult, SmsSender};
use crate::config::KannelConfig;
use crate::gateway::{locked, now_ms, Gateway};
use crate::state::{DlrKey, OutboxSms, SmsStatus};
use crate::text::{self, Encoding};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;

pub const NAME: &str = "kannel";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/kannel/{secret}/sms", get(incoming_sms))
        .route("/kannel/{secret}/dlr", get(delivery_report))
}

/// The query of an authorized callback, or the response to give instead.
fn query(
    gw: &Gateway,
    secret: &str,
    peer: Option<SocketAddr>,
    raw: Option<String>,
) -> Result<Vec<(String, Vec<u8>)>, Refusal> {
    let allowed = gw
        .config
        .providers
        .kannel
        .as_ref()
        .is_some_and(|c| authorized(&c.auth, secret, peer));
    if !allowed {
        return Err(Refusal::NotFound);
    }
    Ok(raw_query(raw.as_deref().unwrap_or_default()))
}

fn param<'a>(q: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

/// Decodes an SMS payload as Kannel hands it over.
pub fn decode_text(bytes: &[u8], coding: &str, charset: &str) -> Result<String, &'static str> {
    let charset = charset.to_ascii_uppercase();
    if charset == "UTF-16BE" || charset == "UCS-2" || (coding == "2" && charset.is_empty()) {
        if !bytes.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes");
        }
        let units = bytes.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
        return char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| "invalid UTF-16 text");
    }
    match charset.as_str() {
        "" | "UTF-8" => String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 text"),
        "ISO-8859-1" | "LATIN1" | "WINDOWS-1252" => Ok(bytes
            .iter()
            .map(|&b| if b == 0x80 { '€' } else { b as char })
            .collect()),
        _ => Err("unsupported charset"),
    }
}

async fn incoming_sms(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query(&gw, &secret, peer, raw) {
        Ok(q) => q,
        Err(refusal) => return refusal.into_response(),
    };
    let utf8 = |name: &str| {
        param(&q, name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let Some(from) = super::e164(&utf8("from")) else {
        return (StatusCode::BAD_REQUEST, "from is not a phone number").into_response();
    };
    let Some(payload) = param(&q, "text") else {
        return (StatusCode::BAD_REQUEST, "text is missing").into_response();
    };
    if payload.len() > 4_000 {
        return (StatusCode::BAD_REQUEST, "text too long").into_response();
    }
    let text = match decode_text(payload, &utf8("coding"), &utf8("charset")) {
        Ok(t) => t,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let reply = tokio::task::spawn_blocking(move || gw.sms(&from, &text))
        .await
        .ok()
        .flatten();
    let Some(reply) = reply else {
        return (StatusCode::OK, "").into_response();
    };
    let mut response = (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reply.clone(),
    )
        .into_response();
    if text::encoding(&reply) == Encoding::Ucs2 {
        response
            .headers_mut()
            .insert("X-Kannel-Coding", axum::http::HeaderValue::from_static("2"));
    }
    response
}

async fn delivery_report(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match query(&gw, &secret, peer, raw) {
        Ok(q) => q,
        Err(refusal) => return refusal.into_response(),
    };
    let number = |name: &str| {
        param(&q, name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let (Some(id), Some(kind)) = (number("id"), number("type")) else {
        return (StatusCode::BAD_REQUEST, "id and type are required").into_response();
    };
    // dlr-mask bits: 1 delivered, 2 undelivered, 4 queued at the SMSC,
    // 8 delivered to the SMSC, 16 rejected by the SMSC.
    let status = match kind {
        1 => SmsStatus::Delivered,
        2 | 16 => SmsStatus::Failed,
        4 | 8 => SmsStatus::Sent,
        _ => return (StatusCode::BAD_REQUEST, "unknown report type").into_response(),
    };
    let recorded = tokio::task::spawn_blocking(move || {
        let db = locked(&gw.db);
        let error =
            (status == SmsStatus::Failed).then_some("refused or undelivered (Kannel report)");
        db.delivery_report(DlrKey::Ours(id), status, error, now_ms())
    })
    .await;
    // Not recorded: an error, so that Kannel may try again.
    match recorded {
        Ok(Ok(_)) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "recording a delivery report failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a delivery report failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Sends through Kannel's `sendsms` interface.
pub struct Sender {
    config: KannelConfig,
    /// The `sendsms` interface.
    url: reqwest::Url,
    http: reqwest::Client,
}

impl Sender {
    pub fn new(config: KannelConfig) -> Result<Sender, String> {
        Ok(Sender {
            url: super::api_url("providers.kannel.sendsms_url", &config.sendsms_url)?,
            config,
            http: super::api_client()?,
        })
    }

    async fn send_one(&self, sms: &OutboxSms) -> SendResult {
        let dlr_url = format!(
            "{}/kannel/{}/dlr?id={}&type=%d",
            self.config.callback_base_url.trim_end_matches('/'),
            self.config.auth.secret,
            sms.id
        );
        let coding = match text::encoding(&sms.text) {
            Encoding::Gsm7 => "0",
            Encoding::Ucs2 => "2",
        };
        let mut params = vec![
            ("username", self.config.username.as_str()),
            ("password", self.config.password.as_str()),
            ("to", sms.phone.as_str()),
            ("text", sms.text.as_str()),
            ("charset", "UTF-8"),
            ("coding", coding),
            ("dlr-mask", "31"),
            ("dlr-url", dlr_url.as_str()),
        ];
        if let Some(from) = &self.config.from {
            params.push(("from", from));
        }
        // reqwest percent-encodes every value: `+` in the number becomes
        // %2B (a bare `+` would arrive as a space: a wrong number).
        let response = match self.http.get(self.url.clone()).query(&params).send().await {
            Ok(r) => r,
            Err(e) => return SendResult::Retry(super::network_error(e)),
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() && (body.starts_with("0:") || body.starts_with("3:")) {
            // Kannel returns no id of its own: ours is in the report URL.
            SendResult::Accepted(Some(sms.id.to_string()))
        } else if status.is_server_error() || status.as_u16() == 503 {
            SendResult::Retry(format!("HTTP {status}: {body}"))
        } else {
            SendResult::Refused(format!("HTTP {status}: {body}"))
        }
    }
}

impl SmsSender for Sender {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send<'a>(&'a self, sms: &'a OutboxSms) -> SendFuture<'a> {
        Box::pin(async move {
            let secrets = [self.config.password.as_str(), &self.config.auth.secret];
            self.send_one(sms).await.scrubbed(&secrets, sms)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::decode_text;

    #[test]
    fn payloads_decode_per_charset() {
        let utf16: Vec<u8> = "Jàmm ak ŋ"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(decode_text(&utf16, "2", "UTF-16BE").unwrap(), "Jàmm ak ŋ");
        assert_eq!(
            decode_text("Ndèye".as_bytes(), "0", "UTF-8").unwrap(),
            "Ndèye"
        );
        assert_eq!(decode_text(&[0x4e, 0xe8], "0", "ISO-8859-1").unwrap(), "Nè");
        assert!(decode_text(&[0xff, 0xfe, 0x00], "2", "UTF-16BE").is_err());
        assert!(
            decode_text(&[0xd8, 0x00], "2", "UTF-16BE").is_err(),
            "lone surrogate"
        );
        assert!(decode_text(&[0xc3], "0", "UTF-8").is_err());
        assert!(decode_text(b"x", "0", "EBCDIC").is_err());
    }
}
