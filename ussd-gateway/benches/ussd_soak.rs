//! USSD soak: 10,000 callers' sessions in flight at once for 10 minutes
//! through the Africa's Talking callback of a real gateway process (the
//! sync server running inside it, as the one-command deployment starts it),
//! to see that the gateway's memory stays flat and that every request filed
//! has its reference SMS handed to a local stand-in for Africa's Talking's
//! messaging API exactly once.
//!
//! Each caller is new (a phone the gateway has not seen: the worst case for
//! what it keeps per phone) and makes a whole first dial, 7 hops ending in
//! a request filed, reading each screen for 1 to 3 s; as soon as one
//! session ends, its line dials the next, so that `--sessions` stay open.
//! The stand-in provider sends hops over a pool of `--connections` kept
//! alive, all opened at the start of the warm-up by a burst of as many
//! sessions hopping without pause: the soak measures the gateway, not the
//! memory of connections opened and closed as the machine's speed varies.
//! The warm-up lasts until `--warmup-callers` (120,000) have dialled, more
//! than the largest map the gateway keeps per phone holds (a rate-limit
//! bucket for each of up to 100,000 phones; the languages of up to 50,000),
//! so that what it keeps per phone has reached its bound; or at most
//! `--warmup-max-secs` (600). Then the soak runs `--minutes`.
//! After the warm-up and again at the end of the soak the gateway's
//! resident memory is read from `/proc`; the curve is printed as it goes and
//! drawn in `target/ussd_soak.svg` (the samples in `target/ussd_soak.csv`).
//! Exits non-zero if the memory at the end is not within 10% of the memory
//! after the warm-up, or if any SMS is missing, sent twice or misaddressed.
//! Not a test: a bench that prints figures.
//!
//! cargo bench -p guichet-ussd-gateway --bench ussd_soak [-- --sessions 10000 --minutes 10
//!     --warmup-callers 120000 --warmup-max-secs 600 --connections 500 --sample-secs 5 --standalone]

mod common;

use common::{arg, cpu_ms, memory_kib, own_cpu_ms, Callback, Child, Expected, Replica, FIRST_DIAL};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The memory at the end may differ from the memory after the warm-up by this much.
const MEMORY_TOLERANCE: f64 = 0.10;

/// How long the callers' lines take to dial their first sessions: about
/// one session's length, so that sessions are spread over its screens.
const RAMP: Duration = Duration::from_secs(12);

/// After the soak: how long the sessions in flight and the SMS of the
/// requests they filed may take to finish.
const DRAIN: Duration = Duration::from_secs(120);

/// What the callers have done so far, shared by every line and the sampler.
#[derive(Default)]
struct Progress {
    stop: AtomicBool,
    /// Sessions dialled so far: also the number of the next one.
    begun: AtomicUsize,
    in_flight: AtomicUsize,
    hops: AtomicU64,
    /// Sessions whose screens were not what a caller expects, or whose
    /// hops failed; their lines give up.
    failed: AtomicUsize,
    /// Each request filed: its reference and the phone that filed it.
    filed: Mutex<HashMap<String, String>>,
    /// References the gateway gave to two filings.
    reused_references: AtomicUsize,
    /// Latencies of the hops of the sessions ended since the last sample.
    latencies: Mutex<Vec<Duration>>,
    lines_running: AtomicUsize,
}

/// Counts a session in flight while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The stand-in provider's side: its client, the gateway's callback and the
/// slots of its pool of connections.
struct Provider {
    http: reqwest::Client,
    url: String,
    slots: tokio::sync::Semaphore,
}

/// One caller after another on one line: each session a new phone, until
/// the soak stops, `max_sessions` have been dialled, or a session failed.
async fn line(
    progress: Arc<Progress>,
    provider: Arc<Provider>,
    first_dial_in: Duration,
    max_sessions: usize,
) {
    tokio::time::sleep(first_dial_in).await;
    while !progress.stop.load(Ordering::SeqCst) {
        let n = progress.begun.fetch_add(1, Ordering::SeqCst);
        if n >= max_sessions {
            break;
        }
        // A session of its own task: one that fails (a panic on a screen
        // not expected, or a hop refused) is counted, not lost.
        let one = tokio::spawn(caller(progress.clone(), provider.clone(), n, true));
        if one.await.is_err() {
            progress.failed.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    progress.lines_running.fetch_sub(1, Ordering::SeqCst);
}

/// Session `n`: a new caller's first dial, reading each screen 1 to 3 s
/// if `paced`, else hopping as soon as each answer comes.
async fn caller(progress: Arc<Progress>, provider: Arc<Provider>, n: usize, paced: bool) {
    let _going = InFlight::new(&progress.in_flight);
    let phone = format!("+2217{n:08}");
    let expected = Expected {
        first: FIRST_DIAL.first_screen,
        end: "reference",
    };
    let last_hop = FIRST_DIAL.inputs.len();
    let mut reading = fastrand::Rng::with_seed(n as u64);
    let pause = |hop| {
        progress.hops.fetch_add(1, Ordering::Relaxed);
        if hop == last_hop || !paced {
            Duration::ZERO
        } else {
            Duration::from_millis(reading.u64(1_000..=3_000))
        }
    };
    let callback = Callback {
        http: &provider.http,
        url: &provider.url,
        slots: Some(&provider.slots),
    };
    let session = format!("soak-{n}");
    let (times, end) = common::session(
        &callback,
        &session,
        &phone,
        FIRST_DIAL.inputs,
        &expected,
        pause,
    )
    .await;
    let reference = guichet_e2e::reference_in(&end);
    if progress
        .filed
        .lock()
        .unwrap()
        .insert(reference, phone)
        .is_some()
    {
        progress.reused_references.fetch_add(1, Ordering::SeqCst);
    }
    progress.latencies.lock().unwrap().extend(times);
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    WarmUp,
    Soak,
    Drain,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::WarmUp => "warm-up",
            Phase::Soak => "soak",
            Phase::Drain => "drain",
        }
    }
}

/// One reading of the gateway and the callers.
struct Sample {
    at: Duration,
    phase: Phase,
    rss_kib: u64,
    /// The part of it not backed by files (heap, SQLite's page caches).
    anon_kib: u64,
    in_flight: usize,
    filed: usize,
    sms: usize,
    hops_per_s: f64,
    p99_ms: f64,
    cpu_percent: f64,
    bench_cpu_percent: f64,
    open_files: usize,
}

/// The samples' columns, as the table and the CSV file name them, and the
/// table's width of each.
const COLUMNS: [(&str, usize); 12] = [
    ("seconds", 7),
    ("phase", 8),
    ("rss_mib", 8),
    ("anon_mib", 8),
    ("in_flight", 9),
    ("filed", 8),
    ("sms_sent", 8),
    ("hops_per_s", 10),
    ("p99_ms", 8),
    ("gateway_cpu_percent", 19),
    ("bench_cpu_percent", 17),
    ("gateway_fds", 11),
];

impl Sample {
    /// The figures, in the order of `COLUMNS`.
    fn cells(&self) -> [String; 12] {
        [
            format!("{:.0}", self.at.as_secs_f64()),
            self.phase.name().into(),
            format!("{:.1}", self.rss_kib as f64 / 1024.0),
            format!("{:.1}", self.anon_kib as f64 / 1024.0),
            self.in_flight.to_string(),
            self.filed.to_string(),
            self.sms.to_string(),
            format!("{:.0}", self.hops_per_s),
            format!("{:.2}", self.p99_ms),
            format!("{:.0}", self.cpu_percent),
            format!("{:.0}", self.bench_cpu_percent),
            self.open_files.to_string(),
        ]
    }
}

/// A line of the table: each cell right-aligned in its column.
fn row(cells: &[impl std::fmt::Display]) -> String {
    let mut line = String::from(" ");
    for (cell, (_, width)) in cells.iter().zip(COLUMNS) {
        let _ = write!(line, " {cell:>width$}");
    }
    line
}

/// Reads the gateway and the callers' progress since the previous sample.
struct Sampler<'a> {
    started: Instant,
    gateway: &'a Child,
    progress: &'a Progress,
    sms: &'a guichet_e2e::Outbox,
    /// When the previous sample was taken, the hops made by then, and the
    /// CPU time the gateway and this bench had used.
    last: (Instant, u64, f64, f64),
    samples: Vec<Sample>,
}

impl Sampler<'_> {
    fn take(&mut self, phase: Phase) -> &Sample {
        let now = Instant::now();
        let hops = self.progress.hops.load(Ordering::SeqCst);
        let cpu = cpu_ms(self.gateway).unwrap_or(0.0);
        let own_cpu = own_cpu_ms().unwrap_or(0.0);
        let (then, hops_then, cpu_then, own_cpu_then) = self.last;
        let secs = now.duration_since(then).as_secs_f64().max(1e-3);
        let mut latencies = std::mem::take(&mut *self.progress.latencies.lock().unwrap());
        latencies.sort();
        let p99_ms = latencies
            .get(((latencies.len() as f64 - 1.0) * 0.99).round().max(0.0) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        self.samples.push(Sample {
            at: now - self.started,
            phase,
            rss_kib: memory_kib(self.gateway, "VmRSS").expect("the gateway is running"),
            anon_kib: memory_kib(self.gateway, "RssAnon").unwrap_or(0),
            in_flight: self.progress.in_flight.load(Ordering::SeqCst),
            filed: self.progress.filed.lock().unwrap().len(),
            sms: self.sms.lock().unwrap().len(),
            hops_per_s: (hops - hops_then) as f64 / secs,
            p99_ms,
            cpu_percent: (cpu - cpu_then) / 10.0 / secs,
            bench_cpu_percent: (own_cpu - own_cpu_then) / 10.0 / secs,
            open_files: std::fs::read_dir(format!("/proc/{}/fd", self.gateway.0.id()))
                .map_or(0, |d| d.count()),
        });
        self.last = (now, hops, cpu, own_cpu);
        let s = self.samples.last().unwrap();
        println!("{}", row(&s.cells()));
        s
    }
}

/// The stand-in for Africa's Talking's SMS API, on a thread and runtime of
/// its own: it answers the gateway's outbox without queueing behind the
/// callers' thousands of tasks, as the real API would.
fn sms_stand_in() -> (String, guichet_e2e::Outbox) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tx.send(guichet_e2e::fake_africastalking().await).unwrap();
            std::future::pending::<()>().await
        })
    });
    rx.recv().unwrap()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Raises this process's open-file limit (and so the gateway's, which
/// inherits it) to `wanted`, or as far as allowed; returns the limit.
fn raise_open_files(wanted: u64) -> u64 {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().unwrap_or((0, 0));
    if soft < wanted && Resource::NOFILE.set(wanted, hard.max(wanted)).is_err() {
        let _ = Resource::NOFILE.set(hard, hard);
    }
    Resource::NOFILE.get().map_or(soft, |(soft, _)| soft)
}

/// Every filing's reference SMS, counted per reference.
struct SmsAccount {
    filed: usize,
    sent: usize,
    missing: usize,
    duplicated: usize,
    unknown: usize,
    misaddressed: usize,
}

impl SmsAccount {
    fn of(filed: &HashMap<String, String>, sent: &[(String, String)]) -> SmsAccount {
        let mut to_by_reference: HashMap<String, Vec<&str>> = HashMap::new();
        for (to, message) in sent {
            to_by_reference
                .entry(guichet_e2e::reference_in(message))
                .or_default()
                .push(to);
        }
        let sent_to = |reference: &String| to_by_reference.get(reference).map_or(&[][..], |v| v);
        SmsAccount {
            filed: filed.len(),
            sent: sent.len(),
            missing: filed.keys().filter(|r| sent_to(r).is_empty()).count(),
            duplicated: to_by_reference.values().filter(|to| to.len() > 1).count(),
            unknown: to_by_reference
                .keys()
                .filter(|r| !filed.contains_key(*r))
                .count(),
            misaddressed: filed
                .iter()
                .filter(|(r, phone)| sent_to(r).iter().any(|to| to != phone))
                .count(),
        }
    }

    fn exact(&self) -> bool {
        self.missing + self.duplicated + self.unknown + self.misaddressed == 0
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let sessions: usize = arg(&args, "--sessions", 10_000);
    let soak = Duration::from_secs_f64(arg(&args, "--minutes", 10.0) * 60.0);
    let warmup_callers: usize = arg(&args, "--warmup-callers", 120_000);
    let warmup = Duration::from_secs_f64(arg(&args, "--warmup-max-secs", 600.0));
    let connections: usize = arg(&args, "--connections", 500);
    let every = Duration::from_secs_f64(arg(&args, "--sample-secs", 5.0_f64).max(1.0));
    let total = warmup + soak;
    // A session takes at least 6 s (6 screens read, 1 s each at the least).
    let max_sessions = connections + warmup_callers + sessions * (total.as_secs() as usize / 6 + 1);
    let open_files = raise_open_files(2 * (sessions + connections) as u64 + 1_024);

    let dir = tempfile::TempDir::new().unwrap();
    let (sms_api, sms_sent) = sms_stand_in();
    let binary = std::env::var("GUICHET_BENCH_GATEWAY")
        .unwrap_or(env!("CARGO_BIN_EXE_guichet-ussd-gateway").to_string());
    // `--standalone`: without the sync server, to tell its memory from the
    // gateway's own.
    let standalone = args.iter().any(|a| a == "--standalone");
    let replica = if standalone {
        Replica::Standalone
    } else {
        Replica::EmbeddedServer
    };
    let (gateway, url) = common::start_gateway(dir.path(), "gateway", &binary, &sms_api, replica);
    println!(
        "ussd_soak: {sessions} sessions in flight (new callers, 7 hops each, a request filed per session, 1-3 s per screen), {}; warm-up until {warmup_callers} callers have dialled (at most {:.0} s), then {:.0} s",
        if standalone {
            "no sync server"
        } else {
            "the sync server inside the gateway"
        },
        warmup.as_secs_f64(),
        soak.as_secs_f64()
    );
    println!(
        " the provider's pool: {connections} connections, opened by a burst of as many sessions first; open-file limit {open_files}; {} cores, load average {} at the start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("{}", row(&COLUMNS.map(|(name, _)| name)));

    let progress = Arc::new(Progress::default());
    let provider = Arc::new(Provider {
        http: common::client(),
        url,
        slots: tokio::sync::Semaphore::new(connections),
    });
    let started = Instant::now();
    // First a burst of sessions hopping as fast as answers come, one per
    // connection of the provider's pool: every connection the soak uses is
    // opened in the warm-up, as a provider keeps them open.
    let burst: Vec<_> = (0..connections)
        .map(|_| {
            let n = progress.begun.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(caller(progress.clone(), provider.clone(), n, false))
        })
        .collect();
    for one in burst {
        if one.await.is_err() {
            progress.failed.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut lines = Vec::with_capacity(sessions);
    progress.lines_running.store(sessions, Ordering::SeqCst);
    for l in 0..sessions {
        let first_dial_in = RAMP.mul_f64(l as f64 / sessions as f64);
        lines.push(tokio::spawn(line(
            progress.clone(),
            provider.clone(),
            first_dial_in,
            max_sessions,
        )));
    }

    let mut sampler = Sampler {
        started,
        gateway: &gateway,
        progress: &progress,
        sms: &sms_sent,
        last: (
            started,
            0,
            cpu_ms(&gateway).unwrap_or(0.0),
            own_cpu_ms().unwrap_or(0.0),
        ),
        samples: Vec::new(),
    };
    // Every `every`, and exactly at the end of the soak.
    let (mut after_warmup, mut at_end) = (0, 0);
    let mut soak_end: Option<Instant> = None;
    let mut next = started + every;
    loop {
        let point = soak_end.map_or(next, |end| end.min(next));
        tokio::time::sleep_until(point.into()).await;
        let phase = if soak_end.is_some() {
            Phase::Soak
        } else {
            Phase::WarmUp
        };
        let rss = sampler.take(phase).rss_kib;
        if Some(point) == soak_end {
            at_end = rss;
            break;
        }
        if progress.lines_running.load(Ordering::SeqCst) == 0 {
            println!(" every line has stopped before the end");
            break;
        }
        let warm =
            progress.begun.load(Ordering::SeqCst) >= warmup_callers || point - started >= warmup;
        if soak_end.is_none() && warm {
            after_warmup = rss;
            soak_end = Some(point + soak);
        }
        next += every;
    }
    progress.stop.store(true, Ordering::SeqCst);

    // The sessions in flight finish, then the outbox hands over what is left.
    let drain_until = Instant::now() + DRAIN;
    let mut next_sample = Instant::now() + every;
    loop {
        let settled = progress.in_flight.load(Ordering::SeqCst) == 0
            && sms_sent.lock().unwrap().len() >= progress.filed.lock().unwrap().len();
        if settled || Instant::now() >= drain_until {
            break;
        }
        if Instant::now() >= next_sample {
            sampler.take(Phase::Drain);
            next_sample += every;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sampler.take(Phase::Drain);
    for l in lines {
        let _ = l.await;
    }
    let samples = sampler.samples;

    println!(" load average {} at the end", load_average());
    let ratio = at_end as f64 / after_warmup.max(1) as f64;
    let memory_flat = (ratio - 1.0).abs() <= MEMORY_TOLERANCE;
    println!(
        " gateway RSS after the warm-up {:.1} MiB, at the end {:.1} MiB: ratio {ratio:.3} (within {:.0}%: {})",
        after_warmup as f64 / 1024.0,
        at_end as f64 / 1024.0,
        MEMORY_TOLERANCE * 100.0,
        verdict(memory_flat)
    );
    let failed = progress.failed.load(Ordering::SeqCst);
    let reused = progress.reused_references.load(Ordering::SeqCst);
    let account = SmsAccount::of(&progress.filed.lock().unwrap(), &sms_sent.lock().unwrap());
    println!(
        " sessions: {} dialled, {failed} failed; references given twice: {reused}",
        progress.begun.load(Ordering::SeqCst).min(max_sessions)
    );
    println!(
        " reference SMS: {} requests filed, {} SMS handed to the SMS API: {} missing, {} sent more than once, {} for no filing, {} to another phone (each exactly once: {})",
        account.filed,
        account.sent,
        account.missing,
        account.duplicated,
        account.unknown,
        account.misaddressed,
        verdict(account.exact())
    );
    print!("{}", ascii_chart(&samples, after_warmup));
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let title = format!(
        "ussd_soak: {sessions} sessions in flight, {} requests filed",
        account.filed
    );
    std::fs::write(
        target.join("ussd_soak.svg"),
        svg_chart(&title, &samples, after_warmup),
    )
    .unwrap();
    std::fs::write(target.join("ussd_soak.csv"), csv(&samples)).unwrap();
    println!(
        " curve drawn in {} (samples in ussd_soak.csv beside it)",
        target.join("ussd_soak.svg").display()
    );
    // Returned, not exited: the gateway is stopped and its data removed
    // as they drop.
    if memory_flat && account.exact() && failed == 0 && reused == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "FAIL"
    }
}

fn csv(samples: &[Sample]) -> String {
    let mut out = COLUMNS.map(|(name, _)| name).join(",") + "\n";
    for s in samples {
        out += &s.cells().join(",");
        out.push('\n');
    }
    out
}

/// The memory range drawn: the samples and the tolerance band around the
/// memory after the warm-up, in MiB.
fn memory_range(samples: &[Sample], after_warmup: u64) -> (f64, f64) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let band = mib(after_warmup) * MEMORY_TOLERANCE;
    let low = samples
        .iter()
        .map(|s| mib(s.rss_kib))
        .fold(mib(after_warmup) - band, f64::min);
    let high = samples
        .iter()
        .map(|s| mib(s.rss_kib))
        .fold(mib(after_warmup) + band, f64::max);
    (low.max(0.0), high)
}

/// The memory curve in text: a column per sample (at most 72), `*` the
/// gateway's RSS, `.` the edges of the tolerance band, `|` the end of the
/// warm-up.
fn ascii_chart(samples: &[Sample], after_warmup: u64) -> String {
    const ROWS: usize = 12;
    let per_column = samples.len().div_ceil(72).max(1);
    let columns: Vec<&[Sample]> = samples.chunks(per_column).collect();
    let (low, high) = memory_range(samples, after_warmup);
    let row_of =
        |mib: f64| ((high - mib) / (high - low).max(1e-9) * (ROWS - 1) as f64).round() as usize;
    let base = after_warmup as f64 / 1024.0;
    let band = [
        row_of(base * (1.0 + MEMORY_TOLERANCE)),
        row_of(base * (1.0 - MEMORY_TOLERANCE)),
    ];
    let warmup_column = columns
        .iter()
        .position(|c| c.iter().any(|s| s.phase != Phase::WarmUp));
    let mut out = String::from(" gateway RSS (MiB) over time; '.' the band of +-10% around the warm-up's end, '|' the end of the warm-up\n");
    for row in 0..ROWS {
        let label = high - (high - low) * row as f64 / (ROWS - 1) as f64;
        let _ = write!(out, "  {label:>7.1} ");
        for (i, column) in columns.iter().enumerate() {
            let mean = column
                .iter()
                .map(|s| s.rss_kib as f64 / 1024.0)
                .sum::<f64>()
                / column.len() as f64;
            out.push(if row_of(mean) == row {
                '*'
            } else if Some(i) == warmup_column {
                '|'
            } else if band.contains(&row) {
                '.'
            } else {
                ' '
            });
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "          0 s{:>width$}",
        format!(
            "{:.0} s",
            samples.last().map_or(0.0, |s| s.at.as_secs_f64())
        ),
        width = columns.len().saturating_sub(3)
    );
    out
}

/// One curve of the SVG chart: what it draws, and between which values.
struct Panel {
    name: &'static str,
    value: fn(&Sample) -> f64,
    range: (f64, f64),
}

/// The memory curve and the sessions in flight, one panel each, as SVG.
fn svg_chart(title: &str, samples: &[Sample], after_warmup: u64) -> String {
    let (width, panel, left) = (760.0, 200.0, 60.0);
    let end = samples.last().map_or(1.0, |s| s.at.as_secs_f64()).max(1.0);
    let x = |s: f64| left + s / end * (width - left - 20.0);
    let warmup_end = samples
        .iter()
        .rev()
        .find(|s| s.phase == Phase::WarmUp)
        .map_or(0.0, |s| s.at.as_secs_f64());
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"{left}\" y=\"20\" font-size=\"14\">{title}</text>",
        h = 2.0 * panel + 90.0
    );
    let in_flight_range = (
        0.0,
        samples
            .iter()
            .map(|s| s.in_flight as f64)
            .fold(1.0, f64::max),
    );
    let panels = [
        Panel {
            name: "gateway RSS (MiB)",
            value: |s| s.rss_kib as f64 / 1024.0,
            range: memory_range(samples, after_warmup),
        },
        Panel {
            name: "sessions in flight",
            value: |s| s.in_flight as f64,
            range: in_flight_range,
        },
    ];
    for (i, Panel { name, value, range }) in panels.iter().enumerate() {
        let top = 40.0 + i as f64 * (panel + 25.0);
        let (low, high) = *range;
        let y = |v: f64| top + panel - (v - low) / (high - low).max(1e-9) * panel;
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"{ty}\">{name}</text><rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{panel}\" fill=\"none\" stroke=\"#999\"/>\
             <text x=\"{lx}\" y=\"{hy}\" text-anchor=\"end\">{high:.0}</text><text x=\"{lx}\" y=\"{ly}\" text-anchor=\"end\">{low:.0}</text>",
            ty = top - 4.0,
            w = width - left - 20.0,
            lx = left - 4.0,
            hy = top + 10.0,
            ly = top + panel,
        );
        if i == 0 {
            let base = after_warmup as f64 / 1024.0;
            let (band_top, band_bottom) = (
                y(base * (1.0 + MEMORY_TOLERANCE)),
                y(base * (1.0 - MEMORY_TOLERANCE)),
            );
            let _ = write!(
                out,
                "<rect x=\"{left}\" y=\"{band_top:.1}\" width=\"{w}\" height=\"{h:.1}\" fill=\"#2a7\" fill-opacity=\"0.12\"/>",
                w = width - left - 20.0,
                h = band_bottom - band_top
            );
        }
        let _ = write!(
            out,
            "<line x1=\"{wx:.1}\" x2=\"{wx:.1}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"#c60\" stroke-dasharray=\"4 3\"/>",
            wx = x(warmup_end),
            bottom = top + panel
        );
        let points: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.at.as_secs_f64()), y(value(s))))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f4e99\" stroke-width=\"1.5\"/>",
            points.join(" ")
        );
    }
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{ay}\">0 s</text><text x=\"{rx}\" y=\"{ay}\" text-anchor=\"end\">{end:.0} s</text>\
         <text x=\"{mx}\" y=\"{ay}\" text-anchor=\"middle\">green: +-10% of the RSS after the warm-up; dashed: end of the warm-up</text></svg>",
        ay = 2.0 * panel + 85.0,
        rx = width - 20.0,
        mx = width / 2.0,
    );
    out
}
