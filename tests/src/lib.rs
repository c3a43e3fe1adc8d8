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
        let text = inputs[..n].join("*");
        let form = [
            ("sessionId", session),
            ("serviceCode", "*123#"),
            ("phoneNumber", phone),
            ("text", &text),
        ];
        let body = http
            .post(callback)
            .form(&form)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let end = body.starts_with("END ");
        screens.push(body);
        if end {
            break;
        }
    }
    screens
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
