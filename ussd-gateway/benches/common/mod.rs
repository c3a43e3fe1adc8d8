//! What the gateway's benches share: starting a real gateway process with
//! its own data, a caller's session of the USSD flow through the Africa's
//! Talking callback, and reading a process's CPU time and memory from
//! `/proc`.

// Each bench uses a part of this module: what one leaves unused is not dead.
#![allow(dead_code)]

use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-secret-0123456789";

/// A child process, killed and waited for when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How the gateway's replica is set up.
pub enum Replica {
    /// No sync server: the gateway writes under a fixed replica number.
    Standalone,
    /// The sync server runs inside the gateway's process, as the one-command
    /// deployment starts it, and the gateway syncs with it every 10 s.
    EmbeddedServer,
}

impl Replica {
    /// The configuration's lines for this set-up; an embedded server keeps
    /// its data in `server_dir`.
    fn toml(&self, server_dir: &std::path::Path) -> String {
        match self {
            Replica::Standalone => "standalone_replica = 999".into(),
            Replica::EmbeddedServer => format!(
                "[sync]\nserver_url = \"http://127.0.0.1:{port}\"\ninterval_secs = 10\n\
                 embedded_server_data_dir = \"{server}\"",
                port = free_port(),
                server = server_dir.display()
            ),
        }
    }
}

/// A loopback port free now, for a server that needs its port in advance.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `binary` with its own data in `dir/name`; returns the process and
/// its Africa's Talking USSD callback.
pub fn start_gateway(
    dir: &std::path::Path,
    name: &str,
    binary: &str,
    sms_api: &str,
    replica: Replica,
) -> (Child, String) {
    let locales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
    let config = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data}"
locales_dir = "{locales}"
default_language = "en"
{replica}
[ussd]
hops_per_minute = 100000
[sms]
provider = "africastalking"
[[services]]
id = "etat-civil"
names = {{ en = "Civil registration" }}
[[units]]
id = "unit-01"
localities = ["Thies"]
[providers.africastalking]
secret = "{SECRET}"
username = "sandbox"
api_key = "k"
base_url = "{sms_api}"
"#,
        data = dir.join(name).display(),
        locales = locales.display(),
        replica = replica.toml(&dir.join(format!("{name}-server"))),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let mut child = std::process::Command::new(binary)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn,guichet_ussd_gateway=info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    let addr = loop {
        let line = lines.next().expect("gateway output").unwrap();
        if let Some(at) = line.find("listening on http://") {
            break line[at + 20..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Child(child), format!("http://{addr}/at/{SECRET}/ussd"))
}

/// An HTTP client whose connections are kept alive and reused, as a
/// provider keeps them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(10_000)
        .build()
        .unwrap()
}

/// A session's inputs after the dial, and what a gateway's first screen says.
pub struct Flow {
    pub inputs: &'static [&'static str],
    pub first_screen: &'static str,
}

/// A caller's first dial: language (English is 7th), new request, service,
/// locality, description, confirm: 7 hops, the last stores a case. The
/// warm-up's callers dial this way, and the gateway remembers their language.
pub const FIRST_DIAL: Flow = Flow {
    inputs: &["7", "1", "1", "1", "Extrait de naissance", "1"],
    first_screen: "English",
};

/// The same callers again, as a deployment mostly serves them: main menu,
/// new request, service, locality, description, confirm: 6 hops, the last
/// stores a case.
pub const RETURNING: Flow = Flow {
    inputs: &["1", "1", "1", "Extrait de naissance", "1"],
    first_screen: "New request",
};

/// What a session's screens must say: the first one, and any that ends it.
pub struct Expected<'a> {
    pub first: &'a str,
    pub end: &'a str,
}

/// Where a session's hops go: a server's callback, through `http`; with
/// `slots`, at most that many hops at once, as a provider sends them over
/// a bounded pool of connections (a hop waits for a slot).
pub struct Callback<'a> {
    pub http: &'a reqwest::Client,
    pub url: &'a str,
    pub slots: Option<&'a tokio::sync::Semaphore>,
}

/// One caller's session: every hop of `inputs` (the dial, then one input
/// more each time), each screen checked against `expected`, pausing
/// `pause(hop)` after hop `hop` as a person reading the screen would.
/// Returns every hop's latency (waiting for a slot included) and the last
/// screen.
pub async fn session(
    callback: &Callback<'_>,
    session: &str,
    phone: &str,
    inputs: &[&str],
    expected: &Expected<'_>,
    mut pause: impl FnMut(usize) -> Duration,
) -> (Vec<Duration>, String) {
    let mut times = Vec::with_capacity(inputs.len() + 1);
    let mut body = String::new();
    for hop in 0..=inputs.len() {
        let t = Instant::now();
        let slot = match callback.slots {
            Some(slots) => Some(slots.acquire().await),
            None => None,
        };
        body =
            guichet_e2e::at_hop(callback.http, callback.url, session, phone, &inputs[..hop]).await;
        drop(slot);
        times.push(t.elapsed());
        if hop == 0 {
            assert!(
                body.contains(expected.first),
                "unexpected first screen: {body}"
            );
        }
        if body.starts_with("END") {
            assert!(body.contains(expected.end), "unexpected end: {body}");
        }
        let reading = pause(hop);
        if !reading.is_zero() {
            tokio::time::sleep(reading).await;
        }
    }
    (times, body)
}

/// CPU time (user + system, every thread) a process has used so far, in
/// milliseconds; Linux only. Counted in clock ticks of 10 ms.
pub fn cpu_ms(child: &Child) -> Option<f64> {
    cpu_ms_of(&child.0.id().to_string())
}

/// The same for this process.
pub fn own_cpu_ms() -> Option<f64> {
    cpu_ms_of("self")
}

/// The CPU time of the process `/proc/{process}`.
fn cpu_ms_of(process: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// A memory figure of a process's `/proc/PID/status` in KiB, such as
/// `VmRSS` (resident memory) or `RssAnon` (its part not backed by files:
/// the heap); Linux only.
pub fn memory_kib(child: &Child, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id())).ok()?;
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The value after `name` on the command line, or `default`.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
