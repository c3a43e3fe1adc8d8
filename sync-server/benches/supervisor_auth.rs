//! What HTTP Basic credentials cost on `GET /v1/figures`: the server on
//! loopback (in this process), an empty store, supervisors in its registry.
//! Three figures from the same run: a supervisor's first call (the password
//! hashed), the calls after it (the credentials remembered), and the floor,
//! the same call with a session cookie (no password at all). Prints figures;
//! asserts nothing about time.
//!
//! cargo bench -p guichet-sync-server --bench supervisor_auth [-- --calls 200]

use guichet_sync_server::app::{now_ms, router, AppState};
use guichet_sync_server::config::Config;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Supervisors, each signed in once with the password hashed.
const SUPERVISORS: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::TempDir::new().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let state = Arc::new(AppState::open(config).unwrap());
    let names: Vec<String> = (0..SUPERVISORS).map(|i| format!("sup-{i}")).collect();
    let token = {
        let registry = state.registry.lock().unwrap();
        for name in &names {
            registry
                .set_supervisor(name, &password(name), None, now_ms())
                .unwrap();
        }
        registry
            .open_supervisor_session(&names[0], now_ms())
            .unwrap()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/figures", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let client = reqwest::Client::new();
        let get = |request: reqwest::RequestBuilder| async move {
            let started = Instant::now();
            let answer = request.send().await.unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
            answer.bytes().await.unwrap();
            started.elapsed()
        };
        let basic = |name: &str| client.get(&url).basic_auth(name, Some(password(name)));
        let mut first = Vec::new();
        for name in &names {
            first.push(get(basic(name)).await);
        }
        let mut remembered = Vec::new();
        for i in 0..calls {
            remembered.push(get(basic(&names[i % SUPERVISORS])).await);
        }
        let cookie = format!("guichet_session={token}");
        let mut floor = Vec::new();
        for _ in 0..calls {
            floor.push(get(client.get(&url).header("cookie", &cookie)).await);
        }
        println!("GET /v1/figures on an empty store, one call at a time:");
        report("Basic, first call (hashed)", &mut first);
        report("Basic, remembered", &mut remembered);
        report("session cookie (floor)", &mut floor);
        let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64();
        println!(
            "first call / remembered: {:.0}x; remembered / floor: {:.2}",
            median(&first) / median(&remembered),
            median(&remembered) / median(&floor)
        );
    });
}

fn password(name: &str) -> String {
    format!("{name}'s long password")
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
    println!(
        "  {what:<28} {:>5} calls  median {:>9.3} ms  p90 {:>9.3} ms",
        times.len(),
        at(50).as_secs_f64() * 1e3,
        at(90).as_secs_f64() * 1e3,
    );
}
