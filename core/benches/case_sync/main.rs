//! case_sync: Guichet's case store benchmark — seed, initial sync, offline edits, final sync —
//! run identically against every registered implementation.
//!
//!   case_sync [--cases N[,N...]] [--only NAME[,NAME...]] [--dir TMPDIR]
//!       runs every (implementation, N) in a fresh child process and prints tables
//!   case_sync --impl NAME --cases N [--dir TMPDIR]
//!       runs one implementation in this process and prints one JSON line
//!
//! ADDING AN IMPLEMENTATION: implement `harness::CaseReplica` for it and add ONE line to the
//! `registry!` list below, e.g. `guichet_core::bench::GuichetReplica,` (the name shown in the
//! tables is its `CaseReplica::NAME`).

mod automerge_docs;
mod crdts_rows;
mod floor;
mod guichet;
mod harness;
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use harness::{CaseReplica, Traffic, COMPRESS_NANOS};

macro_rules! registry {
    ($($ty:ty),+ $(,)?) => {
        /// (name, runner) of every benchmarked implementation, in table order.
        fn registry() -> Vec<(&'static str, fn(u32, &Path) -> Report)> {
            vec![$((<$ty as CaseReplica>::NAME, run::<$ty> as fn(u32, &Path) -> Report)),+]
        }
    };
}

registry! {
    guichet::Guichet,
    floor::Floor,
    crdts_rows::CrdtsRows,
    automerge_docs::AutomergeDocs,
}

/// Cases per seed transaction and edits per edit transaction.
const BATCH: u32 = 1000;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct TrafficJ {
    messages: u64,
    raw_bytes: u64,
    wire_bytes: u64,
}

impl From<Traffic> for TrafficJ {
    fn from(t: Traffic) -> Self {
        TrafficJ {
            messages: t.messages,
            raw_bytes: t.raw_bytes,
            wire_bytes: t.wire_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    #[serde(rename = "impl")]
    name: String,
    cases: u32,
    seed_ms: f64,
    initial_sync_ms: f64,
    edits_ms: f64,
    final_sync_ms: f64,
    initial_sync: TrafficJ,
    final_sync: TrafficJ,
    /// Number of device<->server syncs the final phase needed (A,B,C,A,B = 5 is the minimum).
    final_syncs: u32,
    edits: u64,
    edit_raw_bytes_avg: f64,
    /// Replica file sizes (db + wal) at the end, in order A, S, B, C.
    file_bytes: [u64; 4],
    peak_rss_kb: u64,
    digests: [String; 4],
    digest_ok: bool,
    /// One more sync of A once everything converged: what "nothing new" costs.
    #[serde(default)]
    idle_sync: TrafficJ,
    /// Milliseconds per tablet query on replica A at the end.
    #[serde(default)]
    queries: Vec<(String, f64)>,
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Times a sync phase, excluding the harness's own wire-size compression.
fn timed_sync<R: CaseReplica>(client: &mut R, server: &mut R, time: &mut Duration) -> Traffic {
    let c0 = COMPRESS_NANOS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let tr = R::sync(client, server);
    let el = t0.elapsed();
    let comp = Duration::from_nanos(COMPRESS_NANOS.load(Ordering::Relaxed) - c0);
    *time += el.saturating_sub(comp);
    tr
}

/// Run the whole scenario for one implementation in this process.
fn run<R: CaseReplica>(n: u32, dir: &Path) -> Report {
    let log = |msg: &str| eprintln!("[{} n={}] {}", R::NAME, n, msg);
    let file = |tag: &str| dir.join(format!("{}-{}.db", R::NAME, tag));
    // replica ids: S = 0, A = 1, B = 2, C = 3
    let mut s = R::open(&file("S"), 0);
    let mut devs = [
        R::open(&file("A"), 1),
        R::open(&file("B"), 2),
        R::open(&file("C"), 3),
    ];

    // 1. seed on A
    let mut seed_t = Duration::ZERO;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let cases = workload::seeds(start..end);
        let t0 = Instant::now();
        devs[0].seed(&cases);
        seed_t += t0.elapsed();
        start = end;
    }
    log(&format!("seed {:.0} ms", ms(seed_t)));

    // 2. initial sync: A<->S, B<->S, C<->S
    let mut init_t = Duration::ZERO;
    let mut init_tr = Traffic::default();
    for d in devs.iter_mut() {
        init_tr += timed_sync(d, &mut s, &mut init_t);
    }
    log(&format!("initial sync {:.0} ms", ms(init_t)));

    // 3. offline edits on A, B, C
    let mut edit_t = Duration::ZERO;
    let (mut edits, mut raw) = (0u64, 0u64);
    for (k, d) in devs.iter_mut().enumerate() {
        let plan = workload::edit_plan(n, k as u32 + 1);
        for chunk in plan.chunks(BATCH as usize) {
            let batch = workload::edits(k as u32 + 1, chunk);
            edits += batch.len() as u64;
            raw += batch.iter().map(|e| e.raw_bytes() as u64).sum::<u64>();
            let t0 = Instant::now();
            d.edit(&batch);
            edit_t += t0.elapsed();
        }
    }
    log(&format!("edits {:.0} ms", ms(edit_t)));

    // 4. final sync: A,B,C,A,B (enough for a star), then check; continue C,A,B,... if needed
    let mut final_t = Duration::ZERO;
    let mut final_tr = Traffic::default();
    let mut syncs = 0u32;
    let mut peak = 0;
    let digests = loop {
        final_tr += timed_sync(&mut devs[syncs as usize % 3], &mut s, &mut final_t);
        syncs += 1;
        if syncs < 5 {
            continue;
        }
        if peak == 0 {
            peak = vm_hwm_kb(); // before any digest work
        }
        let d = [
            devs[0].digest(),
            s.digest(),
            devs[1].digest(),
            devs[2].digest(),
        ];
        if d.iter().all(|x| *x == d[0]) || syncs >= 12 {
            break d;
        }
    };
    log(&format!("final sync {:.0} ms ({syncs} syncs)", ms(final_t)));
    let digest_ok = digests.iter().all(|x| *x == digests[0]);
    let mut idle_t = Duration::ZERO;
    let idle_sync = timed_sync(&mut devs[0], &mut s, &mut idle_t).into();
    let queries = devs[0]
        .query_latencies()
        .into_iter()
        .map(|(q, ms)| (q.to_string(), ms))
        .collect();
    Report {
        name: R::NAME.to_string(),
        cases: n,
        seed_ms: ms(seed_t),
        initial_sync_ms: ms(init_t),
        edits_ms: ms(edit_t),
        final_sync_ms: ms(final_t),
        initial_sync: init_tr.into(),
        final_sync: final_tr.into(),
        final_syncs: syncs,
        edits,
        edit_raw_bytes_avg: raw as f64 / edits.max(1) as f64,
        file_bytes: [
            devs[0].file_bytes(),
            s.file_bytes(),
            devs[1].file_bytes(),
            devs[2].file_bytes(),
        ],
        peak_rss_kb: peak,
        digests: digests.map(|d| format!("{d:016x}")),
        digest_ok,
        idle_sync,
        queries,
    }
}

struct Args {
    cases: Vec<u32>,
    imp: Option<String>,
    only: Option<Vec<String>>,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cases: vec![],
        imp: None,
        only: None,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--cases" => {
                for v in val()?.split(',') {
                    a.cases
                        .push(v.trim().parse().map_err(|e| format!("--cases {v}: {e}"))?);
                }
            }
            "--impl" => a.imp = Some(val()?),
            "--only" => a.only = Some(val()?.split(',').map(str::to_string).collect()),
            "--dir" => a.dir = PathBuf::from(val()?),
            // cargo bench passes --bench to harness = false targets
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.cases.is_empty() {
        a.cases = vec![10_000, 100_000];
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: case_sync [--cases N[,N..]] [--only A,B] [--impl NAME] [--dir D]"
            );
            return ExitCode::from(2);
        }
    };
    match &args.imp {
        Some(name) => run_one(name, &args),
        None => orchestrate(&args),
    }
}

/// Child mode: one implementation, one N, in this process; prints one JSON line.
fn run_one(name: &str, args: &Args) -> ExitCode {
    let Some((_, runner)) = registry().into_iter().find(|(n, _)| *n == name) else {
        eprintln!("unknown implementation {name}");
        return ExitCode::from(2);
    };
    if args.cases.len() != 1 {
        eprintln!("--impl takes exactly one --cases value");
        return ExitCode::from(2);
    }
    let n = args.cases[0];
    let dir = args
        .dir
        .join(format!("case_sync-{name}-{n}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let report = runner(n, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string(&report).unwrap());
    if report.digest_ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "\n!!!!!!!! FAIL: {name} n={n}: replicas diverge: {:?}\n",
            report.digests
        );
        ExitCode::FAILURE
    }
}

fn orchestrate(args: &Args) -> ExitCode {
    let exe = std::env::current_exe().expect("current_exe");
    let names: Vec<&str> = registry()
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| match &args.only {
            None => true,
            Some(o) => o.iter().any(|x| x == n),
        })
        .collect();
    let mut failed = vec![];
    let mut all = vec![];
    for &n in &args.cases {
        let mut reports = vec![];
        for &name in &names {
            let out = Command::new(&exe)
                .args(["--impl", name, "--cases", &n.to_string(), "--dir"])
                .arg(&args.dir)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("spawn child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let parsed = stdout
                .lines()
                .find(|l| l.starts_with('{'))
                .and_then(|l| serde_json::from_str::<Report>(l).ok());
            match parsed {
                Some(r) => {
                    if !r.digest_ok || !out.status.success() {
                        failed.push(format!("{name} n={n}: digests {:?}", r.digests));
                    }
                    all.push(serde_json::to_string(&r).unwrap());
                    reports.push(r);
                }
                None => failed.push(format!("{name} n={n}: child failed ({})", out.status)),
            }
        }
        print_tables(n, &reports);
    }
    println!("\nraw JSON:");
    for l in &all {
        println!("{l}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("\n!!!!!!!! FAIL !!!!!!!!");
        for f in &failed {
            eprintln!("FAIL {f}");
        }
        ExitCode::FAILURE
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / 1_048_576.0
}

fn print_tables(n: u32, rs: &[Report]) {
    if rs.is_empty() {
        return;
    }
    let r0 = &rs[0];
    println!(
        "\n=== {n} cases: {} edits (20% per device x 3), avg raw content {:.0} B/edit ===",
        r0.edits, r0.edit_raw_bytes_avg
    );
    let phases = |r: &Report| [r.seed_ms, r.initial_sync_ms, r.edits_ms, r.final_sync_ms];
    let head = format!(
        "{:<12}{:>12}{:>14}{:>12}{:>14}",
        "", "seed", "initial_sync", "edits", "final_sync"
    );
    println!("\ntime (ms)\n{head}");
    for r in rs {
        let p = phases(r);
        println!(
            "{:<12}{:>12.1}{:>14.1}{:>12.1}{:>14.1}",
            r.name, p[0], p[1], p[2], p[3]
        );
    }
    for base in ["floor", "automerge"] {
        let Some(b) = rs.iter().find(|r| r.name == base) else {
            continue;
        };
        println!("\nratio vs {base} (impl time / {base} time)\n{head}");
        let pb = phases(b);
        for r in rs {
            let p = phases(r);
            print!("{:<12}", r.name);
            for (i, w) in [12, 14, 12, 14].iter().enumerate() {
                print!("{:>w$.2}", p[i] / pb[i], w = w);
            }
            println!();
        }
    }
    println!(
        "\ntraffic{:>12}{:>14}{:>14}{:>12}{:>14}{:>14}{:>14}{:>12}",
        "init msgs",
        "init raw MB",
        "init wire MB",
        "final msgs",
        "final raw MB",
        "final wire MB",
        "wire B/edit",
        "idle B"
    );
    for r in rs {
        println!(
            "{:<7}{:>12}{:>14.2}{:>14.2}{:>12}{:>14.2}{:>14.2}{:>14.0}{:>12}",
            r.name,
            r.initial_sync.messages,
            mb(r.initial_sync.raw_bytes),
            mb(r.initial_sync.wire_bytes),
            r.final_sync.messages,
            mb(r.final_sync.raw_bytes),
            mb(r.final_sync.wire_bytes),
            r.final_sync.wire_bytes as f64 / r.edits.max(1) as f64,
            r.idle_sync.wire_bytes
        );
    }
    println!(
        "\nfiles MB (db+wal){:>8}{:>8}{:>8}{:>8}   peak RSS MB   final syncs",
        "A", "S", "B", "C"
    );
    for r in rs {
        println!(
            "{:<17}{:>8.1}{:>8.1}{:>8.1}{:>8.1}{:>14.1}{:>14}",
            r.name,
            mb(r.file_bytes[0]),
            mb(r.file_bytes[1]),
            mb(r.file_bytes[2]),
            mb(r.file_bytes[3]),
            r.peak_rss_kb as f64 / 1024.0,
            r.final_syncs
        );
    }
    for r in rs.iter().filter(|r| !r.queries.is_empty()) {
        println!(
            "\n{} queries on a replica holding all {n} cases (ms each)",
            r.name
        );
        for (q, ms) in &r.queries {
            println!("  {q:<40}{ms:>10.3}");
        }
    }
    for r in rs {
        println!(
            "{:<12} digests {} {}",
            r.name,
            if r.digest_ok { "ok  " } else { "FAIL" },
            r.digests.join(" ")
        );
    }
}
