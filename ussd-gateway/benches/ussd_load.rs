//! USSD load: 1,000 concurrent sessions filing requests through the
//! Africa's Talking callback of a real gateway process, beside a bare axum
//! handler answering a fixed `END` in its own process, measured in the same
//! run. Every session ends with a new request stored durably (the case
//! store syncs every commit). Prints figures; asserts nothing about time.
//!
//! cargo bench -p guichet-ussd-gateway --bench ussd_load [-- --sessions 1000 --rounds 3]

use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-0123456789";

/// The bare handler, run as `ussd_load --bare PORT_FILE` in a child process.
async fn bare(port_file: &str) {
    let app = axum::Router::new().route(
        "/ussd",
        axum::routing::post(|_: axum::body::Bytes| async { "END Thank you" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    std::fs::write(port_file, listener.local_addr().unwrap().port().to_string()).unwrap();
    axum::serve(listener, app).await.unwrap();
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bare(dir: &std::path::Path) -> (Child, String) {
    let port_file = dir.join("bare.port");
    // Waited for when the guard drops.
    let child = Child(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--bare", port_file.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    for _ in 0..200 {
        if let Ok(port) = std::fs::read_to_string(&port_file) {
            if !port.is_empty() {
                return (child, format!("http://127.0.0.1:{port}/ussd"));
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the bare handler did not start");
}

fn start_gateway(dir: &std::path::Path, sms_api: &str) -> (Child, String) {
    let locales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
    let config = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data}"
locales_dir = "{locales}"
default_language = "en"
standalone_replica = 999
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
        data = dir.join("gateway").display(),
        locales = locales.display()
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    // Another build may be measured instead, to compare two versions.
    let binary = std::env::var("GUICHET_BENCH_GATEWAY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_guichet-ussd-gateway").to_string());
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

/// Runs `sessions` concurrent sessions of `inputs` hops each, `rounds`
/// times, pausing `think` between hops as a person reading the screen
/// would; returns every hop's latency and the wall time. The bare handler
/// answers END at once: its sessions make every hop all the same, so both
/// servers answer the same number of requests.
async fn load(
    url: &str,
    sessions: usize,
    rounds: usize,
    inputs: &[&str],
    expect_end: &str,
    think: Duration,
) -> (Vec<Duration>, Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions)
        .build()
        .unwrap();
    let inputs: Arc<Vec<String>> = Arc::new(inputs.iter().map(|s| s.to_string()).collect());
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(sessions * rounds * (inputs.len() + 1));
    for round in 0..rounds {
        let mut tasks = Vec::with_capacity(sessions);
        for s in 0..sessions {
            let (http, url, inputs) = (http.clone(), url.to_string(), inputs.clone());
            let expect_end = expect_end.to_string();
            tasks.push(tokio::spawn(async move {
                let phone = format!("+2217{:08}", s);
                let session = format!("r{round}-s{s}");
                let mut times = Vec::with_capacity(inputs.len() + 1);
                if !think.is_zero() {
                    // Callers dial over the first seconds, not all at once.
                    tokio::time::sleep(Duration::from_micros((s as u64 * 104_729) % 2_000_000))
                        .await;
                }
                for hop in 0..=inputs.len() {
                    let text = inputs[..hop].join("*");
                    let form = [
                        ("sessionId", session.as_str()),
                        ("phoneNumber", phone.as_str()),
                        ("serviceCode", "*123#"),
                        ("text", text.as_str()),
                    ];
                    let t = Instant::now();
                    let body = http
                        .post(&url)
                        .form(&form)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    times.push(t.elapsed());
                    if body.starts_with("END") {
                        assert!(body.contains(&expect_end), "unexpected end: {body}");
                    }
                    if !think.is_zero() {
                        // Spread sessions out so they do not hop in lockstep.
                        let jitter = Duration::from_micros((s as u64 * 7919) % 200_000);
                        tokio::time::sleep(think + jitter).await;
                    }
                }
                times
            }));
        }
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
    }
    (latencies, started.elapsed())
}

/// CPU time (user + system, every thread) a process has used so far, in
/// milliseconds; Linux only. Counted in clock ticks of 10 ms.
fn cpu_ms(child: &Child) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.0.id())).ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// Runs `load` and prints its figures with the server's CPU time per hop.
async fn measured(
    name: &str,
    server: &Child,
    url: &str,
    sessions: usize,
    rounds: usize,
    think: Duration,
) -> (f64, Vec<Duration>) {
    let (expect_end, flow) = FLOW;
    let expect_end = if name.starts_with("bare") {
        "Thank you"
    } else {
        expect_end
    };
    let before = cpu_ms(server);
    let (latencies, wall) = load(url, sessions, rounds, &flow, expect_end, think).await;
    let cpu = before
        .zip(cpu_ms(server))
        .map(|(b, a)| (a - b) * 1e3 / latencies.len() as f64);
    let rate = report(name, latencies.clone(), wall, cpu);
    (rate, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(name: &str, mut latencies: Vec<Duration>, wall: Duration, cpu_us: Option<f64>) -> f64 {
    latencies.sort();
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    let cpu = cpu_us.map_or(String::new(), |us| format!("   cpu {us:>4.0} us/hop"));
    println!(
        "  {name:<28}{:>8} hops {:>9.0} hops/s   p50 {:>6.2} ms   p99 {:>6.2} ms{cpu}",
        latencies.len(),
        rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    rate
}

/// First dial, language (English is 7th), new request, service, locality,
/// description, confirm: 7 hops, the last stores a case. The gateway's END
/// names the reference.
const FLOW: (&str, [&str; 6]) = (
    "reference",
    ["7", "1", "1", "1", "Extrait de naissance", "1"],
);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare") {
        return bare(&args[i + 1]).await;
    }
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (sessions, rounds) = (arg("--sessions", 1_000), arg("--rounds", 3));
    let dir = tempfile::TempDir::new().unwrap();
    let (bare, bare_url) = start_bare(dir.path());
    // The SMS API answers as Africa's Talking does, so that each reference
    // SMS is sent once, as in a deployment, not retried against a dead port.
    let (sms_api, sms_sent) = guichet_e2e::fake_africastalking().await;
    let (gateway, gateway_url) = start_gateway(dir.path(), &sms_api);
    let none = Duration::ZERO;
    // Warm up: connections, caches, the first pages of each database.
    load(&bare_url, 50, 1, &FLOW.1, "Thank you", none).await;
    load(&gateway_url, 50, 1, &FLOW.1, FLOW.0, none).await;
    println!("ussd_load: {sessions} concurrent sessions, 7 hops each, a new request stored durably per session");
    println!(" saturation: every session hops as fast as answers come ({rounds} rounds)");
    let bare_name = "bare axum END handler";
    let gateway_name = "guichet-ussd-gateway";
    let (bare_rate, _) = measured(bare_name, &bare, &bare_url, sessions, rounds, none).await;
    let (gateway_rate, _) =
        measured(gateway_name, &gateway, &gateway_url, sessions, rounds, none).await;
    let ratio = gateway_rate / bare_rate;
    println!(
        "  throughput ratio {ratio:.2} (target >= 0.70: {})",
        if ratio >= 0.7 { "met" } else { "MISSED" }
    );
    let think = Duration::from_millis(1_000);
    println!(
        " paced: each caller takes about a second per screen ({} hops/s offered)",
        sessions
    );
    measured(bare_name, &bare, &bare_url, sessions, 1, think).await;
    let (_, mut paced) = measured(gateway_name, &gateway, &gateway_url, sessions, 1, think).await;
    paced.sort();
    let p99 = percentile(&paced, 0.99);
    println!(
        "  p99 {p99:.2} ms (target < 5 ms: {})",
        if p99 < 5.0 { "met" } else { "MISSED" }
    );
    let filed = 50 + sessions * (rounds + 1);
    println!(
        " reference SMS handed to the SMS API by now: {} of {filed}",
        sms_sent.lock().unwrap().len()
    );
}
