//! SMS and USSD providers. Each module owns one provider's wire format: it
//! registers its callback routes and, if it can send SMS, an `SmsSender`.
//! Adding a provider is one module here, its line in `routes` and
//! `sms_sender`, and its section of the configuration.

pub mod africastalking;
pub mod kannel;
pub mod xml_ussd;

use crate::config::{CallbackAuth, Config};
use crate::gateway::Gateway;
use crate::state::OutboxSms;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

pub type AppState = Arc<Gateway>;

/// Every provider's callback routes, each under its own secret path.
pub fn routes(config: &Config) -> Router<AppState> {
    let mut router = Router::new();
    if config.providers.africastalking.is_some() {
        router = router.merge(africastalking::routes());
    }
    if config.providers.kannel.is_some() {
        router = router.merge(kannel::routes());
    }
    if config.providers.xml.is_some() {
        router = router.merge(xml_ussd::routes());
    }
    router
}

/// The provider that sends outgoing SMS, as configured; an error names a
/// setting that cannot work (an API address that is no URL), so that the
/// gateway refuses to start rather than fail every SMS later.
pub fn sms_sender(config: &Config) -> Result<Option<Box<dyn SmsSender>>, String> {
    let (Some(provider), providers) = (config.sms.provider.as_deref(), &config.providers) else {
        return Ok(None);
    };
    Ok(
        match (provider, &providers.africastalking, &providers.kannel) {
            ("africastalking", Some(at), _) => {
                Some(Box::new(africastalking::Sender::new(at.clone())?))
            }
            ("kannel", _, Some(kannel)) => Some(Box::new(kannel::Sender::new(kannel.clone())?)),
            _ => None,
        },
    )
}

/// An API address from the configuration, parsed once: an http(s) URL.
fn api_url(setting: &str, url: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(parsed),
        Ok(_) => Err(format!("{setting} is not an http(s) URL: {url}")),
        Err(e) => Err(format!("{setting} is not a URL ({e}): {url}")),
    }
}

/// The client a sender calls its provider's API with. Redirects are not
/// followed: an SMS API answers where it is asked (a POST followed to
/// elsewhere would become a GET, or reach a host nobody configured).
fn api_client() -> Result<reqwest::Client, String> {
    finish_client(reqwest::Client::builder())
}

/// A client that cannot be built refuses the start: one without its
/// timeout would let a provider that never answers hold the outbox forever.
fn finish_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    builder
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot set up the HTTP client for the SMS API: {e}"))
}

/// Why a request did not reach the provider, without its URL: Kannel's
/// holds the password, the number and the text.
fn network_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut why = format!("network: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    why
}

/// At most this much of a provider's answer is kept in an error text.
const KEPT_ANSWER: usize = 200;

/// An error text fit to log and to store: what a provider's answer echoes
/// of the request (its credentials, the text, as sent or percent-encoded)
/// is cut out, the number masked, and the answer kept short.
fn scrubbed(why: &str, secrets: &[&str], phone: &str) -> String {
    let mut out = why.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let encoded = serde_urlencoded::to_string([("", secret)]).unwrap_or_default();
        for form in [secret, &encoded[1..]] {
            if !form.is_empty() {
                out = out.replace(form, "[redacted]");
            }
        }
    }
    // Digits only: the number with `+`, `%2B` or nothing before it.
    let digits = phone.trim_start_matches('+');
    if !digits.is_empty() {
        let masked = guichet_core::privacy::mask_phone(phone);
        out = out.replace(digits, masked.trim_start_matches('+'));
    }
    out.chars().take(KEPT_ANSWER).collect()
}

/// What happened to one send attempt.
#[derive(Debug, PartialEq)]
pub enum SendResult {
    /// Accepted; the provider's id for delivery reports, if it gives one.
    Accepted(Option<String>),
    /// May pass (network, 5xx): try again later.
    Retry(String),
    /// Will not pass (refused number, bad credentials): give up.
    Refused(String),
}

impl SendResult {
    /// The result with its error text scrubbed of `secrets`, the message's
    /// text and its number (see `scrubbed`).
    fn scrubbed(self, secrets: &[&str], sms: &OutboxSms) -> SendResult {
        let clean = |why: String| {
            let mut all = secrets.to_vec();
            all.push(&sms.text);
            scrubbed(&why, &all, &sms.phone)
        };
        match self {
            SendResult::Retry(why) => SendResult::Retry(clean(why)),
            SendResult::Refused(why) => SendResult::Refused(clean(why)),
            accepted => accepted,
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendResult> + Send + 'a>>;

pub trait SmsSender: Send + Sync {
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, sms: &'a OutboxSms) -> SendFuture<'a>;
}

/// A callback is the provider's only if it names the secret path segment
/// and, when an allowlist is set, comes from an allowed address. Anyone
/// else gets a plain 404 and learns nothing.
pub fn authorized(auth: &CallbackAuth, secret: &str, peer: Option<SocketAddr>) -> bool {
    let secret_ok = constant_time_eq(auth.secret.as_bytes(), secret.as_bytes());
    let ip_ok =
        auth.allowed_ips.is_empty() || peer.is_some_and(|p| auth.allowed_ips.contains(&p.ip()));
    secret_ok && ip_ok && !auth.secret.is_empty()
}

/// Why a callback is refused before it is handled.
#[derive(Debug)]
pub enum Refusal {
    /// Wrong secret or address: the caller learns nothing.
    NotFound,
    BadRequest(String),
}

impl axum::response::IntoResponse for Refusal {
    fn into_response(self) -> axum::response::Response {
        use axum::http::StatusCode;
        match self {
            Refusal::NotFound => StatusCode::NOT_FOUND.into_response(),
            Refusal::BadRequest(why) => (StatusCode::BAD_REQUEST, why).into_response(),
        }
    }
}

/// Compares secrets without stopping at the first difference, so timing
/// does not tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller's address (for the source-IP allowlist), when the server
/// records it; read without copying the request's other extensions.
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Peer, Self::Rejection> {
        let info = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>();
        Ok(Peer(info.map(|c| c.0)))
    }
}

/// Percent-decodes a query component into raw bytes (Kannel's `%b` may be
/// UTF-16; decoding to a string first would corrupt it). `+` is a space.
pub fn percent_decode(component: &str) -> Vec<u8> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The raw (percent-decoded, not text-decoded) value of each query parameter.
pub fn raw_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            )
        })
        .collect()
}

/// `+221...` from what providers send (`%2B221...`, `221...`).
pub fn e164(number: &str) -> Option<String> {
    let trimmed = number.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let phone = format!("+{digits}");
    guichet_core::model::check_phone(&phone)
        .ok()
        .map(|()| phone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AfricasTalkingConfig, KannelConfig};

    #[test]
    fn an_sms_api_address_that_is_no_url_is_refused_at_start() {
        let at = |base_url: &str| {
            toml::from_str::<AfricasTalkingConfig>(&format!(
                "secret = 's'\nusername = 'u'\napi_key = 'k'\nbase_url = '{base_url}'"
            ))
            .unwrap()
        };
        assert!(africastalking::Sender::new(at("http://127.0.0.1:9")).is_ok());
        let refused = africastalking::Sender::new(at("api.africastalking.com")).err();
        assert!(refused.is_some_and(|e| e.contains("providers.africastalking.base_url")));
        let kannel = toml::from_str::<KannelConfig>(
            "secret = 's'\nsendsms_url = 'localhost:13013'\nusername = 'u'\n\
             password = 'p'\ncallback_base_url = 'http://127.0.0.1:8'",
        )
        .unwrap();
        let refused = kannel::Sender::new(kannel).err();
        assert!(refused.is_some_and(|e| e.contains("providers.kannel.sendsms_url")));
    }

    /// A client that cannot be built (here, a TLS setup reqwest does not
    /// know) stops the start with a clear error, never falls back to a
    /// client without timeouts.
    #[test]
    fn an_http_client_that_cannot_be_built_is_an_error_at_start() {
        assert!(finish_client(reqwest::Client::builder()).is_ok());
        let broken = reqwest::Client::builder().use_preconfigured_tls(());
        let refused = finish_client(broken).err();
        assert!(
            refused.is_some_and(|e| e.starts_with("cannot set up the HTTP client for the SMS API")),
        );
    }

    #[test]
    fn query_values_decode_to_bytes() {
        let q = raw_query("from=%2B221771234567&text=%00S%00a&empty=&x=a+b");
        assert_eq!(q[0], ("from".into(), b"+221771234567".to_vec()));
        assert_eq!(q[1].1, vec![0, b'S', 0, b'a']);
        assert_eq!(q[2].1, Vec::<u8>::new());
        assert_eq!(q[3].1, b"a b".to_vec());
        assert_eq!(percent_decode("100%"), b"100%".to_vec());
        assert_eq!(percent_decode("%4"), b"%4".to_vec());
    }

    #[test]
    fn callbacks_need_the_secret_and_an_allowed_address() {
        let open = CallbackAuth {
            secret: "s3cret".into(),
            allowed_ips: vec![],
        };
        let peer: SocketAddr = "196.201.214.10:4000".parse().unwrap();
        assert!(authorized(&open, "s3cret", Some(peer)));
        assert!(!authorized(&open, "s3cre", Some(peer)));
        assert!(!authorized(&open, "s3cret!", None));
        let listed = CallbackAuth {
            secret: "s3cret".into(),
            allowed_ips: vec![peer.ip()],
        };
        assert!(authorized(&listed, "s3cret", Some(peer)));
        assert!(!authorized(
            &listed,
            "s3cret",
            Some("127.0.0.1:1".parse().unwrap())
        ));
        assert!(
            !authorized(&listed, "s3cret", None),
            "no known address: refused"
        );
        let empty = CallbackAuth {
            secret: String::new(),
            allowed_ips: vec![],
        };
        assert!(
            !authorized(&empty, "", None),
            "an empty secret protects nothing"
        );
    }

    #[test]
    fn numbers_become_e164() {
        assert_eq!(e164("221771234567").as_deref(), Some("+221771234567"));
        assert_eq!(e164("+254712345678").as_deref(), Some("+254712345678"));
        assert_eq!(e164("hello"), None);
    }
}
