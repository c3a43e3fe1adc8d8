//! Sync load benchmark: three tablets each push 2,000 edits through a real
//! server process on loopback and pull the others'. Prints figures against
//! the targets; asserts nothing about time.
//!
//! cargo bench -p guichet-sync-server --bench sync_load

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use guichet_core::{CaseId, EventKind, Field, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A loopback proxy that counts every byte both ways, HTTP headers included.
async fn counting_proxy(target: std::net::SocketAddr) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bytes = Arc::new(AtomicU64::new(0));
    let total = bytes.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let total = total.clone();
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                if let Ok((up, down)) =
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    total.fetch_add(up + down, Ordering::SeqCst);
                }
            });
        }
    });
    (url, bytes)
}

/// Sums `ops_in` and the merging time (µs) over the server's sync log lines.
fn server_merge(log: &str) -> (u64, u64) {
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    log.lines()
        .filter(|l| l.contains(" sync") && field(l, "ops_in") > 0)
        .fold((0, 0), |(ops, us), l| {
            (ops + field(l, "ops_in"), us + field(l, "merge_us"))
        })
}

/// Bytes through the proxy for one sync of `device`.
async fn measured_sync(proxy: &(String, Arc<AtomicU64>), device: &mut Device) -> (u64, u32) {
    let before = proxy.1.load(Ordering::SeqCst);
    let report = device
        .client(&proxy.0, quick())
        .sync(&mut device.store, |_| {})
        .await
        .unwrap();
    // The proxy counts a connection when it closes: wait for the client's
    // pooled connection to be dropped with it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    (proxy.1.load(Ordering::SeqCst) - before, report.round_trips)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let proxy = counting_proxy(server.addr).await;
    let url = proxy.0.clone();
    let mut gateway = enrol(&data, dir.path(), "gateway", "intake", &[]);
    let ids: Vec<CaseId> = gateway
        .store
        .write(|w| {
            (0..2_000)
                .map(|i| w.create_case(&new_case("unit-a", i)))
                .collect()
        })
        .unwrap();
    gateway
        .client(&url, quick())
        .sync(&mut gateway.store, |_| {})
        .await
        .unwrap();
    let mut tablets: Vec<Device> = (0..3)
        .map(|i| {
            enrol(
                &data,
                dir.path(),
                &format!("agent-{i}"),
                "tablet",
                &["unit-a"],
            )
        })
        .collect();
    for t in &mut tablets {
        t.client(&url, quick())
            .sync(&mut t.store, |_| {})
            .await
            .unwrap();
    }

    // Offline: 2,000 edits per tablet (one field each, cases overlapping).
    for (n, t) in tablets.iter_mut().enumerate() {
        t.store
            .write(|w| {
                for k in 0..2_000 {
                    let id = ids[(k * 7 + n * 13) % ids.len()];
                    let value = Value::text(format!("agent-{n}-{k}"));
                    w.update(id, &[(Field::Assignee, value)])?;
                }
                Ok(())
            })
            .unwrap();
    }
    let before = server_merge(&server.log_text());
    let started = Instant::now();
    let mut push_bytes = 0;
    for t in &mut tablets {
        push_bytes += measured_sync(&proxy, t).await.0;
    }
    let push_wall = started.elapsed();
    let mut pull_bytes = 0;
    for t in &mut tablets {
        pull_bytes += measured_sync(&proxy, t).await.0;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = server_merge(&server.log_text());
    let (merged, merge_us) = (after.0 - before.0, after.1 - before.1);

    let (idle_bytes, idle_trips) = measured_sync(&proxy, &mut tablets[0]).await;

    let mut newcomer = enrol(&data, dir.path(), "agent-new", "tablet", &["unit-day"]);
    newcomer
        .client(&url, quick())
        .sync(&mut newcomer.store, |_| {})
        .await
        .unwrap();
    let day: Vec<CaseId> = newcomer
        .store
        .write(|w| {
            (0..50)
                .map(|i| w.create_case(&new_case("unit-day", 10_000 + i)))
                .collect()
        })
        .unwrap();
    newcomer
        .store
        .write(|w| {
            for k in 0..200 {
                let id = day[k % day.len()];
                match k % 4 {
                    0 => {
                        w.add_event(id, EventKind::Visit, "Visite au domicile, pièces vérifiées")?
                    }
                    1 => w.add_event(
                        id,
                        EventKind::Note,
                        "Le citoyen reviendra avec le certificat",
                    )?,
                    2 => {
                        w.update(id, &[(Field::Assignee, Value::text(format!("agent-{k}")))])?;
                    }
                    _ => {
                        w.update(id, &[(Field::Priority, Value::Int((k % 3) as i64))])?;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let (day_bytes, day_trips) = measured_sync(&proxy, &mut newcomer).await;

    let pushed = 3 * 2_000u64;
    let rate = merged as f64 / (merge_us.max(1) as f64 / 1e6);
    println!("sync_load: 3 tablets x 2,000 edits through guichet-sync-server on loopback");
    println!(
        "  server merge      {merged} ops checked and applied in {:.1} ms = {rate:.0} ops/s (target >= 50,000: {})",
        merge_us as f64 / 1e3,
        verdict(rate >= 50_000.0)
    );
    println!(
        "  push wall clock   {:.0} ms for {pushed} ops = {:.0} ops/s end to end",
        push_wall.as_secs_f64() * 1e3,
        pushed as f64 / push_wall.as_secs_f64()
    );
    println!(
        "  wire              push {push_bytes} B ({:.1} B/op), pull {pull_bytes} B ({:.1} B/op received), compressed, HTTP included",
        push_bytes as f64 / pushed as f64,
        pull_bytes as f64 / (2.0 * pushed as f64)
    );
    println!(
        "  no-change sync    {idle_trips} round trip, {idle_bytes} B (target: one round trip < 1,024 B: {})",
        verdict(idle_trips == 1 && idle_bytes < 1024)
    );
    println!(
        "  field day         50 new cases + 200 edits: {day_bytes} B in {day_trips} round trips (target < 30,720 B: {})",
        verdict(day_bytes < 30 * 1024)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}
