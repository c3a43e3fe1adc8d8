//! Real Guichet processes on loopback for end-to-end tests: the sync
//! server, the USSD gateway, and a fake of Africa's Talking's messaging API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A workspace binary. `cargo test --workspace` (the README's command)
/// builds every binary before any test runs; one that is missing (a test run
/// on its own) is built here. Running only this package's tests after
/// changing another package: build it first (`cargo build --workspace`).
pub fn binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building {name} failed");
    }
    path
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A process that logs "listening on http://ADDR" once ready.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn start(mut command: Command) -> Process {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = tx.send(line[at + 20..].trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the process says where it listens")
            .parse()
            .expect("an address");
        Process { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on this process.
    pub fn at(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn sync_server(data_dir: &Path, listen: &str) -> Process {
    let mut c = Command::new(binary("guichet-sync-server", "guichet-sync-server"));
    c.args(["--listen", listen, "--data-dir"]).arg(data_dir);
    Process::start(c)
}

/// Runs a subcommand of the sync server (enrol, revoke, devices).
pub fn sync_admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(binary("guichet-sync-server", "guichet-sync-server"))
        .arg(args[0])
        .arg("--data-dir")
        .arg(data_dir)
        .args(&args[1..])
        .output()
        .expect("run the sync server's admin command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A tablet as an app holds it: its store and its sync client.
pub struct Tablet {
    pub store: guichet_core::Store,
    pub client: guichet_core::sync::client::SyncClient,
}

impl Tablet {
    /// Generates a key, has the administrator enrol it for `unit` with the
    /// server's CLI, and opens the tablet's store at `path`.
    pub fn enrol(
        server_dir: &Path,
        server_url: &str,
        agent: &str,
        unit: &str,
        path: &Path,
    ) -> Tablet {
        use guichet_core::sync::client::{ClientOptions, SyncClient};
        use guichet_core::sync::signing::DeviceKey;
        let key = DeviceKey::generate().expect("a device key");
        let args = [
            "enrol",
            "--public-key",
            &key.public_key(),
            "--agent",
            agent,
            "--unit",
            unit,
        ];
        let enrolment: serde_json::Value =
            serde_json::from_str(&sync_admin(server_dir, &args)).expect("the enrolment JSON");
        let replica = enrolment["replica"].as_u64().expect("a replica number") as u32;
        Tablet {
            store: guichet_core::Store::open(path, replica).expect("the tablet's store"),
            client: SyncClient::new(server_url, key, ClientOptions::default())
                .expect("a sync client"),
        }
    }

    pub async fn sync(&mut self) {
        self.client
            .sync(&mut self.store, |_| {})
            .await
            .expect("the tablet syncs");
    }

    /// Syncs until the case with `reference` has arrived (or gives up).
    pub async fn receive(&mut self, reference: &str) -> guichet_core::Case {
        for _ in 0..100 {
            self.sync().await;
            if let Ok(case) = self.store.find_by_reference(reference) {
                return case;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("request {reference} never reached the tablet");
    }
}

/// Enrols the gateway whose data lives in `gateway_dir` as an intake device.
pub fn enrol_gateway(server_dir: &Path, gateway_dir: &Path) {
    std::fs::create_dir_all(gateway_dir).unwrap();
    let out = Command::new(binary("guichet-ussd-gateway", "guichet-ussd-gateway"))
        .arg("key")
        .arg("--data-dir")
        .arg(gateway_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    let enrolment = sync_admin(
        server_dir,
        &[
            "enrol",
            "--public-key",
            key.trim(),
            "--agent",
            "ussd-gateway",
            "--role",
            "intake",
        ],
    );
    std::fs::write(gateway_dir.join("enrolment.json"), enrolment).unwrap();
}

/// The callback secret of [`gateway_config`].
pub const AT_SECRET: &str = "e2e-secret-0123456789";

/// A gateway configuration for the end-to-end tests: syncing every second
/// with `server`, sending SMS through `fake_at`, two units, one service and
/// one mediator (Awa Ndiaye, +221770000009, PIN 1234).
pub fn gateway_config(gateway_dir: &Path, server: &str, fake_at: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{gw}"
locales_dir = "{locales}"
default_language = "fr"
country_calling_code = "221"
[sync]
server_url = "{server}"
interval_secs = 1
[sms]
provider = "africastalking"
[[services]]
id = "etat-civil"
names = {{ fr = "État civil", en = "Civil registration" }}
[[units]]
id = "unit-thies-01"
localities = ["Thiès", "Pire"]
[[units]]
id = "unit-louga-01"
localities = ["Louga"]
[[mediators]]
id = "med-awa"
name = "Awa Ndiaye"
phone = "+221770000009"
pin_sha256 = "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4"
[providers.africastalking]
secret = "{AT_SECRET}"
username = "sandbox"
api_key = "k"
base_url = "{fake_at}"
"#,
        gw = gateway_dir.display(),
        locales = repo().join("locales").display(),
    )
}

pub fn gateway(config_file: &Path) -> Process {
    let mut c = Command::new(binary("guichet-ussd-gateway", "guichet-ussd-gateway"));
    c.arg("--config").arg(config_file);
    Process::start(c)
}

/// What the fake messaging API was asked to send: (to, message).
pub type Outbox = Arc<Mutex<Vec<(String, String)>>>;

/// A local stand-in for Africa's Talking's `POST /version1/messaging`.
pub async fn fake_africastalking() -> (String, Outbox) {
    use axum::routing::post;
    let sent: Outbox = Arc::default();
    let store = sent.clone();
    let app = axum::Router::new().route(
        "/version1/messaging",
        post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let form: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                let get = |k: &str| {
                    form.iter()
                        .find(|(f, _)| f == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let mut sent = store.lock().unwrap();
                let n = sent.len();
                sent.push((get("to"), get("message")));
                axum::Json(
                    serde_json::json!({"SMSMessageData": {"Message": "Sent to 1/1",
                    "Recipients": [{"statusCode": 101, "number": get("to"), "status": "Success",
                    "cost": "XOF 10", "messageId": format!("ATXid_{n}")}]}}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, sent)
}

/// Waits (up to `secs`) until some sent SMS satisfies `pred`.
pub async fn wait_sms(
    sent: &Outbox,
    secs: u64,
    pred: impl Fn(&(String, String)) -> bool,
) -> Option<(String, String)> {
    for _ in 0..secs * 10 {
        if let Some(found) = sent.lock().unwrap().iter().find(|m| pred(m)) {
            return Some(found.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A whole USSD session through Africa's Talking's protocol; returns every screen.
pub async fn dial(callback: &str, session: &str, phone: &str, inputs: &[&str]) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut screens = Vec::new();
    for n in 0..=inputs.len() {
        let body = at_hop(&http, callback, session, phone, &inputs[..n]).await;
        let end = body.starts_with("END ");
        screens.push(body);
        if end {
            break;
        }
    }
    screens
}

/// One USSD hop as Africa's Talking sends it: `text` holds every input so
/// far, joined by `*`. Returns the answer (`CON ...` or `END ...`).
pub async fn at_hop<S: AsRef<str>>(
    http: &reqwest::Client,
    callback: &str,
    session: &str,
    phone: &str,
    inputs: &[S],
) -> String {
    let text = inputs
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join("*");
    let form = [
        ("sessionId", session),
        ("serviceCode", "*123#"),
        ("phoneNumber", phone),
        ("text", &text),
    ];
    http.post(callback)
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The number in front of `name` on a menu screen.
pub fn option(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains(name))
        .and_then(|l| l.trim_start_matches("CON ").split_whitespace().next())
        .unwrap_or_else(|| panic!("no '{name}' on screen:\n{screen}"))
        .to_string()
}

/// The longest run of digits in a text: a reference.
pub fn reference_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .max_by_key(|s| s.len())
        .unwrap_or_default()
        .to_string()
}

/// Posts an incoming SMS to the gateway as Africa's Talking does; returns
/// the HTTP status.
pub async fn at_sms(gateway: &Process, from: &str, text: &str, id: &str) -> u16 {
    let form = [("from", from), ("to", "12345"), ("text", text), ("id", id)];
    reqwest::Client::new()
        .post(gateway.at(&format!("/at/{AT_SECRET}/sms")))
        .form(&form)
        .send()
        .await
        .expect("the gateway answers")
        .status()
        .as_u16()
}

/// Adds a supervisor with the sync server's CLI (the password through the
/// environment, as a script would).
pub fn add_supervisor(data_dir: &Path, name: &str, password: &str, units: &[&str]) {
    let mut command = Command::new(binary("guichet-sync-server", "guichet-sync-server"));
    command
        .args(["supervisor", "--name", name, "--data-dir"])
        .arg(data_dir)
        .env("GUICHET_SUPERVISOR_PASSWORD", password);
    if units.is_empty() {
        command.arg("--all-units");
    }
    for unit in units {
        command.args(["--unit", unit]);
    }
    let out = command.output().expect("run the supervisor command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET /v1/figures{query}` of the sync server at `server_url`, with Basic
/// credentials.
pub async fn figures(
    server_url: &str,
    query: &str,
    credentials: (&str, &str),
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{server_url}/v1/figures{query}"))
        .basic_auth(credentials.0, Some(credentials.1))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// Headless Debian Chromium, driven through chromedriver (WebDriver).
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) runs");
        let capabilities: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1024,1366"]
            }}))
            .expect("a JSON object");
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let http = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(http)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Browser { client, driver },
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not start: {last_error}");
    }

    /// The text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .text()
            .await
            .expect("its text")
    }

    /// An attribute of the element `css` selects.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .attr(name)
            .await
            .expect("its attribute")
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A sync server and a gateway enrolled with it (from [`gateway_config`]),
/// sending SMS through a fake Africa's Talking; data under `dir`.
pub struct Service {
    pub server: Process,
    pub server_dir: PathBuf,
    pub gateway: Process,
    /// The gateway's Africa's Talking USSD callback.
    pub callback: String,
    /// What the fake Africa's Talking was asked to send.
    pub sent: Outbox,
}

pub async fn service(dir: &Path) -> Service {
    let (server_dir, gateway_dir) = (dir.join("server"), dir.join("gateway"));
    let server = sync_server(&server_dir, "127.0.0.1:0");
    enrol_gateway(&server_dir, &gateway_dir);
    let (fake_at, sent) = fake_africastalking().await;
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        gateway_config(&gateway_dir, &server.url(), &fake_at),
    )
    .unwrap();
    let gateway = gateway(&config);
    let callback = format!("{}/at/{AT_SECRET}/ussd", gateway.url());
    Service {
        server,
        server_dir,
        gateway,
        callback,
        sent,
    }
}
