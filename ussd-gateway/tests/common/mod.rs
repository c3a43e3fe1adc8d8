//! A real gateway process on loopback, a fake of Africa's Talking's
//! messaging API that records what it is asked to send, and helpers that
//! speak each provider's wire format.
#![allow(dead_code)]

pub use guichet_e2e::Process;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_guichet-ussd-gateway");
pub const SECRET: &str = "test-secret-0123456789";

pub fn locales_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales")
}

/// The configuration used by the tests; `extra` is appended verbatim.
pub fn config(data_dir: &Path, fake_at: &str, extra: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
locales_dir = "{locales}"
default_language = "fr"
languages = ["wo", "ff", "bm", "ha", "sw", "fr", "en"]
country_calling_code = "221"
{extra}

[ussd]
hops_per_minute = 30

[sms]
provider = "africastalking"
per_minute = 20

[[services]]
id = "etat-civil"
names = {{ fr = "État civil", en = "Civil registration", wo = "Kayitu juddu" }}

[[services]]
id = "sante"
names = {{ fr = "Santé", en = "Health", wo = "Wergu yaram" }}

[[units]]
id = "unit-thies-01"
localities = ["Thiès", "Pire"]

[[units]]
id = "unit-louga-01"
localities = ["Louga", "Kébémer"]

[[mediators]]
id = "med-awa"
name = "Awa Ndiaye"
phone = "+221770000009"
# guichet-ussd-gateway hash-pin 1234
pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$groveINt+rZjfVNkR4guXA$3z4pdC5WrlqOOg3FNtcwoTImVyBWt6vdcFGXwOpu8eQ"

[providers.africastalking]
secret = "{SECRET}"
username = "sandbox"
api_key = "test-api-key"
base_url = "{fake_at}"

[providers.xml]
secret = "{SECRET}"
"#,
        data = data_dir.display(),
        locales = locales_dir().display(),
    )
}

/// The gateway as a real process (`guichet_e2e::Process`).
pub type Gateway = Process;

/// Writes the configuration beside the data and starts the gateway.
pub fn start_gateway(config_text: &str, dir: &Path) -> Gateway {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config_text).unwrap();
    let mut command = Command::new(BIN);
    command.arg("--config").arg(&path);
    Process::start(command)
}

/// What the fake messaging API received: the form fields and the apiKey header.
#[derive(Clone, Debug)]
pub struct SentSms {
    pub form: Vec<(String, String)>,
    pub api_key: String,
}

impl SentSms {
    pub fn field(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A local stand-in for `POST {base}/version1/messaging`, answering as
/// Africa's Talking does.
pub async fn fake_africastalking() -> (String, Arc<Mutex<Vec<SentSms>>>) {
    use axum::routing::post;
    let sent: Arc<Mutex<Vec<SentSms>>> = Arc::default();
    let store = sent.clone();
    let app = axum::Router::new().route(
        "/version1/messaging",
        post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
                let api_key = headers.get("apiKey").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut sent = store.lock().unwrap();
                let n = sent.len();
                let to = form.iter().find(|(k, _)| k == "to").map(|(_, v)| v.clone()).unwrap_or_default();
                sent.push(SentSms { form, api_key });
                axum::Json(serde_json::json!({"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
                    "Recipients": [{"statusCode": 101, "number": to, "status": "Success", "cost": "KES 0.8000",
                    "messageId": format!("ATXid_{n}")}]}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, sent)
}

/// Waits until `count` SMS reached the fake API.
pub async fn wait_for_sms(sent: &Arc<Mutex<Vec<SentSms>>>, count: usize) -> Vec<SentSms> {
    for _ in 0..100 {
        if sent.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sent.lock().unwrap().clone()
}

/// One Africa's Talking USSD session.
pub struct AtSession {
    pub http: reqwest::Client,
    pub url: String,
    pub id: String,
    pub phone: String,
    pub inputs: Vec<String>,
}

impl AtSession {
    pub fn new(gw: &Gateway, id: &str, phone: &str) -> AtSession {
        AtSession {
            http: reqwest::Client::new(),
            url: gw.at(&format!("/at/{SECRET}/ussd")),
            id: id.into(),
            phone: phone.into(),
            inputs: Vec::new(),
        }
    }

    /// Sends the next hop (`None` for the first) and returns the raw body.
    pub async fn hop(&mut self, input: Option<&str>) -> String {
        if let Some(i) = input {
            self.inputs.push(i.into());
        }
        let text = self.inputs.join("*");
        let form = [
            ("sessionId", self.id.as_str()),
            ("serviceCode", "*123#"),
            ("phoneNumber", self.phone.as_str()),
            ("networkCode", "63902"),
            ("text", text.as_str()),
        ];
        let resp = self.http.post(&self.url).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/plain")));
        resp.text().await.unwrap()
    }

    /// Continues from an answer already received; returns the last answer.
    pub async fn run_from_first(&mut self, first: String, inputs: &[&str]) -> String {
        let mut last = first;
        for i in inputs {
            assert!(last.starts_with("CON "), "session ended early: {last}");
            last = self.hop(Some(i)).await;
        }
        last
    }

    /// Runs hops in order; returns the last answer.
    pub async fn run(&mut self, inputs: &[&str]) -> String {
        let mut last = self.hop(None).await;
        for i in inputs {
            assert!(last.starts_with("CON "), "session ended early: {last}");
            last = self.hop(Some(i)).await;
        }
        last
    }
}

/// A reference found in a text (the longest run of digits).
pub fn reference_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .max_by_key(|s| s.len())
        .unwrap_or_default()
        .to_string()
}

pub async fn at_sms(gw: &Gateway, from: &str, text: &str, id: &str) -> u16 {
    let form = [
        ("from", from),
        ("to", "12345"),
        ("text", text),
        ("date", "2026-11-21 10:00:00"),
        ("id", id),
        ("linkId", ""),
    ];
    reqwest::Client::new()
        .post(gw.at(&format!("/at/{SECRET}/sms")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
