//! Supervisor figures at scale: a server store of N cases with a quarter's
//! history (assignments, status changes, inquiries, complaints, ratings),
//! then the dashboard computed as `GET /v1/figures` does it. Beside it, in
//! the same run, the floor: one plain SQL pass reading every operation row
//! the histories are made of. Prints figures; asserts nothing about time.
//!
//! cargo bench -p guichet-sync-server --bench figures [-- --cases 10000,100000]

use chrono::{FixedOffset, NaiveDate};
use guichet_core::{
    CaseHistory, Channel, EventKind, HistoryReader, NewCase, Priority, Status, Store,
};
use guichet_sync_server::figures::{dashboard, Selection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const DAY_MS: u64 = 86_400_000;
/// 2026-08-01 00:00 UTC: the quarter's first day.
const START_MS: u64 = 1_785_542_400_000;
const UNITS: usize = 20;

fn seed(path: &std::path::Path, cases: usize) {
    let time = Arc::new(AtomicU64::new(START_MS));
    let clock = time.clone();
    let mut store =
        Store::open_with_clock(path, 1, Arc::new(move || clock.load(Ordering::SeqCst))).unwrap();
    let step = 90 * DAY_MS / cases as u64;
    for chunk in (0..cases).collect::<Vec<_>>().chunks(1_000) {
        store
            .write(|w| {
                for &i in chunk {
                    time.fetch_add(step, Ordering::SeqCst);
                    let id = w.create_case(&NewCase {
                        service: ["etat-civil", "sante", "foncier"][i % 3].into(),
                        requester_phone: format!("+2217{:08}", i),
                        requester_name: format!("Citoyen {i}"),
                        requester_language: ["wo", "fr", "ff", "en"][i % 4].into(),
                        locality: format!("Village {}", i % 300),
                        channel: Channel::ALL[i % 4],
                        mediator: (Channel::ALL[i % 4] == Channel::Mediator)
                            .then(|| "med-awa".to_string()),
                        unit: format!("unit-{:02}", i % UNITS),
                        assignee: None,
                        priority: Priority::Normal,
                        description: "Extrait d'acte de naissance".into(),
                        status: Status::Received,
                    })?;
                    if i % 3 == 0 {
                        w.add_event(id, EventKind::Inquiry, "asked by USSD")?;
                    }
                    if i % 4 != 0 {
                        w.change_status(id, Status::InProgress)?;
                    }
                    if i % 2 == 0 {
                        w.change_status(id, Status::Resolved)?;
                        w.rate(id, (i % 5 + 1) as u8)?;
                    }
                    if i % 17 == 0 {
                        w.add_event(id, EventKind::Complaint, "too long")?;
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

/// The floor: read every operation row once, decoding nothing.
fn scan_ops(path: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT case_id, stamp, length(body) FROM ops")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut total = 0u64;
    while let Some(r) = rows.next().unwrap() {
        total += r.get::<_, i64>(2).unwrap() as u64;
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    println!("figures: the supervisor's dashboard over a quarter, {UNITS} units, beside one SQL pass over the operations");
    for cases in sizes {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("server.db");
        let started = Instant::now();
        seed(&path, cases);
        let seeded = started.elapsed();

        let started = Instant::now();
        let bytes = scan_ops(&path);
        let floor = started.elapsed();

        let started = Instant::now();
        let mut reader = HistoryReader::open(&path).unwrap();
        let histories: Vec<&CaseHistory> = reader.histories().unwrap().iter().collect();
        let read = started.elapsed();

        let selection = Selection {
            from: NaiveDate::from_ymd_opt(2026, 8, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            unit: None,
            service: None,
            utc_offset: FixedOffset::east_opt(0).unwrap(),
        };
        let started = Instant::now();
        let d = dashboard(&histories, &[], &selection, START_MS + 100 * DAY_MS);
        let computed = started.elapsed();
        assert_eq!(d.figures.received.total as usize, cases);

        let one_unit = Selection {
            unit: Some("unit-03".into()),
            ..selection.clone()
        };
        let started = Instant::now();
        let u = dashboard(&histories, &[], &one_unit, START_MS + 100 * DAY_MS);
        let computed_unit = started.elapsed();
        assert_eq!(u.by_unit.len(), 1);

        // A day's work arrives (200 status changes); the next view reads only that.
        {
            let mut store = Store::open(&path, 1).unwrap();
            let ids = store.case_ids().unwrap();
            store
                .write(|w| {
                    for id in ids.iter().skip(1).step_by(4).take(200) {
                        w.change_status(*id, Status::Resolved)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let started = Instant::now();
        let histories: Vec<&CaseHistory> = reader.histories().unwrap().iter().collect();
        let reread = started.elapsed();
        let started = Instant::now();
        dashboard(&histories, &[], &selection, START_MS + 100 * DAY_MS);
        let recomputed = started.elapsed();

        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let total = ms(read) + ms(computed);
        println!(
            "{cases:>7} cases: seeded in {:.0} ms; floor (SQL pass, {} kB of operations) {:.1} ms; \
             histories {:.1} ms + dashboard {:.1} ms (one unit {:.1} ms) = {:.1} ms, {:.2}x the floor",
            ms(seeded),
            bytes / 1000,
            ms(floor),
            ms(read),
            ms(computed),
            ms(computed_unit),
            total,
            total / ms(floor).max(0.001)
        );
        println!(
            "{:>7}        after 200 more changes: histories {:.1} ms (only what arrived) + dashboard {:.1} ms",
            "",
            ms(reread),
            ms(recomputed)
        );
    }
}
