//! USSD load: 1,000 concurrent sessions of returning callers (their first
//! dial is in the warm-up) filing requests through the Africa's Talking
//! callback of a real gateway process, beside a bare axum handler answering
//! a fixed `END` in its own process, measured in the same run. Every
//! session ends with a new request stored durably (the case
//! store syncs every commit) and its reference SMS handed to a local
//! stand-in for Africa's Talking's messaging API. Prints figures and each
//! server's CPU time per hop; asserts nothing about time.
//!
//! cargo bench -p guichet-ussd-gateway --bench ussd_load [-- --sessions 1000 --rounds 12]

mod common;

use common::{
    arg, client, cpu_ms, Callback, Child, Expected, Flow, Replica, FIRST_DIAL, RETURNING,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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

/// Runs `sessions` concurrent sessions of the flow once, pausing `think`
/// between hops as a person reading the screen would; returns every hop's
/// latency and the wall time. The bare handler answers END at once: its
/// sessions make every hop all the same, so both servers answer the same
/// number of requests. `label` keeps session ids unique across runs. The
/// run ends once `settled` holds too: the work a server left for later
/// (its outbox) counts in its time, as it would in a steady stream.
async fn load(
    server: &Server,
    label: &str,
    flow: &Flow,
    sessions: usize,
    think: Duration,
    settled: &dyn Fn() -> bool,
) -> Tally {
    let cpu_before = cpu_ms(&server.process);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sessions);
    for s in 0..sessions {
        let (http, url) = (server.http.clone(), server.url.clone());
        let inputs = flow.inputs;
        let (expect_first, expect_end) = (server.says(flow.first_screen), server.says("reference"));
        let session = format!("{label}-s{s}");
        tasks.push(tokio::spawn(async move {
            let phone = format!("+2217{:08}", s);
            if !think.is_zero() {
                // Callers dial over the first seconds, not all at once.
                tokio::time::sleep(Duration::from_micros((s as u64 * 104_729) % 2_000_000)).await;
            }
            let expected = Expected {
                first: expect_first,
                end: expect_end,
            };
            // Spread sessions out so they do not hop in lockstep.
            let jitter = Duration::from_micros((s as u64 * 7919) % 200_000);
            let pause = |_| {
                if think.is_zero() {
                    Duration::ZERO
                } else {
                    think + jitter
                }
            };
            let callback = Callback {
                http: &http,
                url: &url,
                slots: None,
            };
            common::session(&callback, &session, &phone, inputs, &expected, pause)
                .await
                .0
        }));
    }
    let mut latencies = Vec::with_capacity(sessions * (flow.inputs.len() + 1));
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !settled() {
        assert!(Instant::now() < deadline, "{} never settled", server.name);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let wall = started.elapsed();
    let cpu_ms = cpu_before
        .zip(cpu_ms(&server.process))
        .map(|(before, after)| after - before);
    Tally {
        latencies,
        wall,
        cpu_ms,
    }
}

/// A server under test.
struct Server {
    name: String,
    process: Child,
    url: String,
    /// A gateway files a request per session; the bare handler does not.
    files_requests: bool,
    /// Connections are kept from one run to the next, as a provider does.
    http: reqwest::Client,
}

impl Server {
    /// What a screen where a gateway says `gateway_text` says on this
    /// server: the bare handler answers every hop the same.
    fn says(&self, gateway_text: &'static str) -> &'static str {
        if self.files_requests {
            gateway_text
        } else {
            "Thank you"
        }
    }
}

/// What runs against one server measured: every hop's latency, the time
/// spent in them, and the server's CPU time.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    wall: Duration,
    cpu_ms: Option<f64>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.cpu_ms = if self.latencies.is_empty() {
            other.cpu_ms
        } else {
            self.cpu_ms
                .zip(other.cpu_ms)
                .map(|(ours, theirs)| ours + theirs)
        };
        self.latencies.extend(other.latencies);
        self.wall += other.wall;
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// Prints the figures; returns p99 in milliseconds.
    fn report(&mut self, name: &str) -> f64 {
        self.latencies.sort();
        let p99 = percentile(&self.latencies, 0.99);
        let cpu = self.cpu_ms.map_or(String::new(), |ms| {
            format!(
                "   cpu {:>4.0} us/hop",
                ms * 1e3 / self.latencies.len() as f64
            )
        });
        println!(
            "  {name:<28}{:>8} hops {:>9.0} hops/s   p50 {:>6.2} ms   p99 {p99:>6.2} ms{cpu}",
            self.latencies.len(),
            self.rate(),
            percentile(&self.latencies, 0.5),
        );
        p99
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare") {
        return bare(&args[i + 1]).await;
    }
    let sessions: usize = arg(&args, "--sessions", 1_000);
    let rounds: usize = arg(&args, "--rounds", 12);
    let dir = tempfile::TempDir::new().unwrap();
    let (process, url) = start_bare(dir.path());
    let mut servers = vec![Server {
        name: "bare axum END handler".into(),
        process,
        url,
        files_requests: false,
        http: client(),
    }];
    // The SMS API answers as Africa's Talking does, so that each reference
    // SMS is sent once, as in a deployment, not retried against a dead port.
    let (sms_api, sms_sent) = guichet_e2e::fake_africastalking().await;
    // Another build may be measured instead (GUICHET_BENCH_GATEWAY), and a
    // second one beside it in the same turns (GUICHET_BENCH_PEER), to
    // compare two versions on the same machine at the same moments.
    let this_build = env!("CARGO_BIN_EXE_guichet-ussd-gateway").to_string();
    let gateway = std::env::var("GUICHET_BENCH_GATEWAY").unwrap_or(this_build);
    let mut gateways = vec![("guichet-ussd-gateway".to_string(), gateway)];
    if let Ok(peer) = std::env::var("GUICHET_BENCH_PEER") {
        gateways.push((format!("peer {}", short(&peer)), peer));
    }
    for (i, (name, binary)) in gateways.into_iter().enumerate() {
        let data = format!("gateway{i}");
        let (process, url) =
            common::start_gateway(dir.path(), &data, &binary, &sms_api, Replica::Standalone);
        servers.push(Server {
            name,
            process,
            url,
            files_requests: true,
            http: client(),
        });
    }
    // A gateway run is over once every request filed so far has had its
    // reference SMS handed to the SMS API.
    let filed = std::sync::atomic::AtomicUsize::new(0);
    let sms_all_sent = || sms_sent.lock().unwrap().len() >= filed.load(Ordering::SeqCst);
    let run = async |server: &Server, label: &str, flow: &Flow, think: Duration| {
        if server.files_requests {
            filed.fetch_add(sessions, Ordering::SeqCst);
            load(server, label, flow, sessions, think, &sms_all_sent).await
        } else {
            load(server, label, flow, sessions, think, &|| true).await
        }
    };
    // Warm up: every connection the rounds use (kept alive from then on,
    // as a provider keeps them), caches, the first pages of each database,
    // and every caller's first dial: the rounds serve returning callers.
    for server in &servers {
        run(server, "warm", &FIRST_DIAL, Duration::ZERO).await;
    }
    println!("ussd_load: {sessions} concurrent sessions of returning callers, 6 hops each, a new request stored durably per session");
    println!(" saturation: every session hops as fast as answers come ({rounds} rounds each, taken in turns so that all servers meet the same machine)");
    let mut saturated: Vec<Tally> = servers.iter().map(|_| Tally::default()).collect();
    for round in 0..rounds {
        let mut rates = Vec::new();
        for (server, tally) in servers.iter().zip(&mut saturated) {
            let tally_of_round =
                run(server, &format!("r{round}"), &RETURNING, Duration::ZERO).await;
            rates.push(tally_of_round.rate());
            tally.add(tally_of_round);
        }
        let ratios: Vec<String> = rates[1..]
            .iter()
            .map(|r| format!("{:.2}", r / rates[0]))
            .collect();
        println!(
            "  round {round}: {} hops/s, ratio to bare {}",
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            ratios.join(" / ")
        );
    }
    for (server, tally) in servers.iter().zip(&mut saturated) {
        tally.report(&server.name);
    }
    for (server, tally) in servers.iter().zip(&saturated).skip(1) {
        let ratio = tally.rate() / saturated[0].rate();
        println!(
            "  throughput ratio {ratio:.2} (target >= 0.70: {}) {}",
            if ratio >= 0.7 { "met" } else { "MISSED" },
            server.name
        );
    }
    println!(" paced: each caller takes about a second per screen ({sessions} hops/s offered)");
    let think = Duration::from_millis(1_000);
    let mut worst_p99: f64 = 0.0;
    for server in &servers {
        let p99 = run(server, "paced", &RETURNING, think)
            .await
            .report(&server.name);
        if server.files_requests {
            worst_p99 = worst_p99.max(p99);
        }
    }
    println!(
        "  gateway p99 {worst_p99:.2} ms (target < 5 ms: {})",
        if worst_p99 < 5.0 { "met" } else { "MISSED" }
    );
    println!(
        " reference SMS handed to the SMS API: {} of {} requests filed",
        sms_sent.lock().unwrap().len(),
        filed.load(Ordering::SeqCst)
    );
}

/// A binary's file name, to tell builds apart in the figures.
fn short(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
