//! The sync server as a real process on loopback, with real clients.

mod common;

use common::*;
use guichet_core::sync::protocol::{SyncRequest, CONTENT_TYPE, SYNC_PATH};
use guichet_core::{wire, CaseQuery, EventKind, Field, Status, Store, Value};
use std::time::Duration;
use tempfile::TempDir;

async fn sync(device: &mut Device, url: &str) -> guichet_core::sync::client::SyncProgress {
    device
        .client(url, quick())
        .sync(&mut device.store, |_| {})
        .await
        .unwrap()
}

fn all_cases(store: &Store) -> Vec<guichet_core::CaseDetail> {
    let q = CaseQuery {
        limit: 1000,
        ..Default::default()
    };
    let mut ids: Vec<_> = store
        .list_cases(&q)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids.into_iter()
        .map(|id| store.get_case(id).unwrap())
        .collect()
}

#[tokio::test]
async fn offline_edits_on_three_tablets_converge() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let mut gateway = enrol(&data, dir.path(), "gateway", "intake", &[]);
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
    let ids = gateway
        .store
        .write(|w| {
            (0..20)
                .map(|i| w.create_case(&new_case("unit-a", i)))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    sync(&mut gateway, &server.url()).await;
    for t in &mut tablets {
        sync(t, &server.url()).await;
        assert_eq!(t.store.count_cases().unwrap(), 20);
    }
    // Offline: every tablet edits the same cases, some fields in common.
    for (n, t) in tablets.iter_mut().enumerate() {
        t.store
            .write(|w| {
                for id in &ids[..10] {
                    w.update(*id, &[(Field::Assignee, Value::text(format!("agent-{n}")))])?;
                    w.add_event(*id, EventKind::Note, &format!("note from tablet {n}"))?;
                }
                w.change_status(ids[n], Status::InProgress)
            })
            .unwrap();
    }
    for _ in 0..2 {
        for t in &mut tablets {
            sync(t, &server.url()).await;
        }
    }
    let reference = all_cases(&tablets[0].store);
    assert_eq!(reference.len(), 20);
    assert_eq!(
        reference[0].conflicts.len(),
        1,
        "concurrent assignees are kept"
    );
    // Creation, an update and a note from each tablet, and tablet 0's status change.
    assert_eq!(reference[0].timeline.len(), 1 + 3 * 2 + 1);
    for t in &tablets[1..] {
        assert_eq!(all_cases(&t.store), reference);
        let status = t.store.sync_status(&server.url()).unwrap();
        assert_eq!(status.pending_ops, 0);
        assert!(status.last_success_ms.is_some() && status.last_error.is_none());
    }
}

#[tokio::test]
async fn a_server_killed_mid_sync_loses_nothing_and_the_client_finishes() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let mut server = start_server(&data, "127.0.0.1:0");
    let addr = server.addr.to_string();
    let url = server.url();
    let mut tablet = enrol(&data, dir.path(), "agent-1", "tablet", &["unit-a"]);
    tablet
        .store
        .write(|w| {
            for i in 0..3_000 {
                let id = w.create_case(&new_case("unit-a", i))?;
                w.add_event(id, EventKind::Visit, "visite")?;
            }
            Ok(())
        })
        .unwrap();
    let total = tablet.store.version_vector().get(&tablet.replica);
    let options = guichet_core::sync::client::ClientOptions {
        upload_batch: 100,
        ..quick()
    };
    let client = tablet.client(&url, options);
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        start_server(&data, &addr)
    });
    let report = client.sync(&mut tablet.store, |_| {}).await.unwrap();
    let server = killer.await.unwrap();
    assert!(report.round_trips > 1);
    let status = tablet.store.sync_status(&url).unwrap();
    assert_eq!(status.pending_ops, 0);
    drop(server);
    let stored = Store::open(dir.path().join("server/server.db"), 1).unwrap();
    assert_eq!(stored.version_vector().get(&tablet.replica), total);
    assert_eq!(stored.count_cases().unwrap(), 3_000);
    stored.check_integrity().unwrap();
}

/// Forwards to the server, cutting the first `cuts` answers half-way.
async fn cutting_proxy(
    target: std::net::SocketAddr,
    cuts: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                let (mut cr, mut cw) = client.split();
                let (mut ur, mut uw) = upstream.split();
                let up = tokio::io::copy(&mut cr, &mut uw);
                let down = async {
                    let mut buf = vec![0u8; 8192];
                    let mut sent = 0;
                    loop {
                        let read = ur.read(&mut buf).await.unwrap_or(0);
                        if read == 0 {
                            break;
                        }
                        if n < cuts && sent + read > 20_000 {
                            let _ = cw.write_all(&buf[..20_000 - sent]).await;
                            return; // cut mid-answer
                        }
                        if cw.write_all(&buf[..read]).await.is_err() {
                            return;
                        }
                        sent += read;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_large_first_sync_cut_mid_transfer_resumes_where_it_stopped() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let mut gateway = enrol(&data, dir.path(), "gateway", "intake", &[]);
    gateway
        .store
        .write(|w| {
            for i in 0..4_000 {
                let id = w.create_case(&new_case("unit-a", i))?;
                w.add_event(
                    id,
                    EventKind::Note,
                    &format!("Note détaillée numéro {i} sur la demande"),
                )?;
            }
            Ok(())
        })
        .unwrap();
    sync(&mut gateway, &server.url()).await;
    let mut tablet = enrol(&data, dir.path(), "agent-1", "tablet", &["unit-a"]);
    let cuts = 3;
    let (proxy, connections) = cutting_proxy(server.addr, cuts).await;
    let options = guichet_core::sync::client::ClientOptions {
        download_batch: 1_000,
        ..quick()
    };
    let client = tablet.client(&proxy, options);
    let mut steps = Vec::new();
    let report = client
        .sync(&mut tablet.store, |p| steps.push(p.ops_received))
        .await
        .unwrap();
    assert_eq!(tablet.store.count_cases().unwrap(), 4_000);
    assert_eq!(
        report.ops_received, 8_000,
        "every operation landed exactly once"
    );
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "progress never went back: {steps:?}"
    );
    let batches = 8;
    let used = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        used <= batches + cuts + 1,
        "{used} connections for {batches} batches and {cuts} cuts"
    );
}

#[tokio::test]
async fn a_tablet_sees_and_changes_only_its_units_cases() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let mut gateway = enrol(&data, dir.path(), "gateway", "intake", &[]);
    gateway
        .store
        .write(|w| {
            for i in 0..10 {
                w.create_case(&new_case(if i < 6 { "unit-a" } else { "unit-b" }, i))?;
            }
            Ok(())
        })
        .unwrap();
    sync(&mut gateway, &server.url()).await;
    let mut a = enrol(&data, dir.path(), "agent-a", "tablet", &["unit-a"]);
    sync(&mut a, &server.url()).await;
    let units: Vec<String> = all_cases(&a.store)
        .into_iter()
        .map(|d| d.case.unit)
        .collect();
    assert_eq!(units, vec!["unit-a"; 6]);
    // a opens a case in unit-b: the server keeps it in quarantine without
    // applying it, a's sync goes through and says so, the write stays on
    // the tablet, and a goes on receiving its unit's work.
    let outside = a
        .store
        .write(|w| w.create_case(&new_case("unit-b", 99)))
        .unwrap();
    sync(&mut a, &server.url()).await;
    let status = a.store.sync_status(&server.url()).unwrap();
    assert_eq!((status.pending_ops, status.quarantined_ops), (0, 1));
    assert_eq!(status.quarantined[0].case, outside);
    assert!(status.quarantined[0].reason.contains("units"));
    assert_eq!(a.store.count_cases().unwrap(), 7);
    gateway
        .store
        .write(|w| w.create_case(&new_case("unit-a", 100)))
        .unwrap();
    sync(&mut gateway, &server.url()).await;
    sync(&mut a, &server.url()).await;
    assert_eq!(a.store.count_cases().unwrap(), 8);
    let cases = reqwest::get(format!("{}/health", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cases.contains("\"cases\":11"), "{cases}");
}

fn signed_post(device: &Device, body: &[u8], path: &str, now: u64) -> Vec<(&'static str, String)> {
    device
        .key()
        .sign(device.replica, "POST", path, body, now)
        .pairs()
        .to_vec()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn post(url: &str, headers: &[(&'static str, String)], body: Vec<u8>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{SYNC_PATH}"))
        .header("content-type", CONTENT_TYPE)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn forged_replayed_revoked_and_malformed_requests_are_refused() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let url = server.url();
    let tablet = enrol(&data, dir.path(), "agent-1", "tablet", &["unit-a"]);
    let body = wire::encode_message(&SyncRequest::new(0, vec![], 10));

    let (status, _) = post(&url, &[], body.clone()).await;
    assert_eq!(status, 401, "unsigned");
    let headers = signed_post(&tablet, &body, SYNC_PATH, now());
    let mut tampered = body.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(post(&url, &headers, tampered).await.0, 401, "tampered body");
    assert_eq!(post(&url, &headers, body.clone()).await.0, 200, "genuine");
    assert_eq!(post(&url, &headers, body.clone()).await.0, 401, "replayed");
    let stale = signed_post(&tablet, &body, SYNC_PATH, now() - 3_600_000);
    assert_eq!(post(&url, &stale, body.clone()).await.0, 401, "an hour old");
    let mut impostor = signed_post(&tablet, &body, SYNC_PATH, now());
    impostor[0].1 = "77".into();
    assert_eq!(
        post(&url, &impostor, body.clone()).await.0,
        401,
        "unknown device"
    );

    let garbage = b"not a sync request".to_vec();
    let headers = signed_post(&tablet, &garbage, SYNC_PATH, now());
    let (status, text) = post(&url, &headers, garbage).await;
    assert_eq!(status, 400, "{text}");
    let huge = vec![7u8; 9 << 20];
    let headers = signed_post(&tablet, &huge, SYNC_PATH, now());
    assert_eq!(post(&url, &headers, huge).await.0, 413);

    admin(&data, &["revoke", "--device", &tablet.replica.to_string()]);
    let headers = signed_post(&tablet, &body, SYNC_PATH, now());
    assert_eq!(post(&url, &headers, body).await.0, 403, "revoked");
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        !server.log_text().contains("+2217"),
        "no phone number in the logs"
    );
}

#[tokio::test]
async fn a_device_with_a_wrong_clock_is_corrected_by_the_server() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, "127.0.0.1:0");
    let mut tablet = enrol(&data, dir.path(), "agent-1", "tablet", &["unit-a"]);
    let path = tablet.store.path().to_path_buf();
    let replica = tablet.replica;
    drop(std::mem::replace(
        &mut tablet.store,
        Store::open(dir.path().join("tmp.db"), 99).unwrap(),
    ));
    let two_days_behind = std::sync::Arc::new(|| now() - 2 * 86_400_000);
    tablet.store = Store::open_with_clock(&path, replica, two_days_behind).unwrap();
    sync(&mut tablet, &server.url()).await;
    assert!(tablet.store.now_ms().abs_diff(now()) < 60_000);
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let dir = TempDir::new().unwrap();
    let mut server = start_server(&dir.path().join("server"), "127.0.0.1:0");
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.log_text().contains("stopped"));
}
