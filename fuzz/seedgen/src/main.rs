//! Writes the seeds of the wire and signature fuzz targets into
//! `fuzz/corpus/`: messages produced by real stores (cases created, edited,
//! commented, then served to a device) and headers signed by a real key.
//! Run from `fuzz/`: `cargo run --manifest-path seedgen/Cargo.toml`.
//!
//! Each wire seed exists twice, as the fuzz targets read their first byte:
//! `0` then the message as sent, `1` then its plain postcard encoding.

use guichet_core::sync::protocol::{
    SyncRequest, UssdSessionReport, UssdSessionReports, UssdSessionsStored,
};
use guichet_core::sync::signing::DeviceKey;
use guichet_core::wire;
use guichet_core::{
    BatchLimit, Channel, EventKind, Field, NewCase, Priority, Scope, Status, Store, Value,
    VersionVector,
};
use serde::Serialize;
use std::path::Path;

fn new_case(phone: &str, unit: &str) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: phone.into(),
        requester_name: "Awa Diop".into(),
        requester_language: "wo".into(),
        locality: "Pire".into(),
        channel: Channel::Ussd,
        mediator: None,
        unit: unit.into(),
        assignee: None,
        priority: Priority::Normal,
        description: "Extrait de naissance pour l'école".into(),
        status: Status::Received,
    }
}

fn write_seed<T: Serialize>(target: &str, name: &str, message: &T) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut sent = vec![0u8];
    sent.extend(wire::encode_message(message));
    std::fs::write(dir.join(format!("{name}-sent")), sent).unwrap();
    let mut plain = vec![1u8];
    plain.extend(postcard::to_stdvec(message).unwrap());
    std::fs::write(dir.join(format!("{name}-plain")), plain).unwrap();
}

fn main() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut tablet = Store::open(dir.path().join("tablet.db"), 12).unwrap();
    tablet
        .write(|w| {
            let a = w.create_case(&new_case("+221771234567", "unit-01"))?;
            let b = w.create_case(&new_case("+254712345678", "unit-02"))?;
            w.update(
                a,
                &[
                    (Field::Assignee, Value::text("agent-7")),
                    (Field::Priority, Value::Int(2)),
                ],
            )?;
            w.change_status(a, Status::Assigned)?;
            w.add_event(b, EventKind::Contact, "Appelée, rappeler lundi")?;
            Ok(())
        })
        .unwrap();
    let batch = tablet
        .changes_since(&VersionVector::default(), BatchLimit::default())
        .unwrap();
    assert!(batch.ops.len() >= 5, "{} ops", batch.ops.len());
    write_seed("wire_batch", "tablet-edits", &batch);
    let one = wire::Batch::new(batch.ops[..1].to_vec(), true);
    write_seed("wire_batch", "one-create", &one);
    write_seed("wire_batch", "empty", &wire::Batch::new(Vec::new(), false));

    let request = SyncRequest::new(0, batch.ops.clone(), 500);
    write_seed("sync_request", "first-sync", &request);
    write_seed(
        "sync_request",
        "nothing-new",
        &SyncRequest::new(42, Vec::new(), 500),
    );

    let mut server = Store::open(dir.path().join("server.db"), 1).unwrap();
    let both = Scope::Units(vec!["unit-01".into(), "unit-02".into()]);
    let (response, _) = server.serve_sync(12, &both, &request, 1 << 20).unwrap();
    write_seed("sync_response", "acked", &response);
    // Another device of unit-01 gets the first case only.
    let scope = Scope::Units(vec!["unit-01".into()]);
    let (response, _) = server
        .serve_sync(13, &scope, &SyncRequest::new(0, Vec::new(), 1), 1 << 20)
        .unwrap();
    write_seed("sync_response", "to-another-device", &response);

    let report = |id, outcome: &str, service: Option<&str>| UssdSessionReport {
        id,
        outcome: outcome.into(),
        flow: "new_request".into(),
        language: Some("wo".into()),
        service: service.map(Into::into),
        unit: service.map(|_| "unit-01".into()),
        ended_ms: 1_790_000_000_000 + id,
    };
    write_seed(
        "ussd_sessions",
        "reports",
        &UssdSessionReports::new(vec![
            report(1, "completed", Some("sante")),
            report(2, "abandoned", None),
            report(3, "failed", Some("etat-civil")),
        ]),
    );
    write_seed("ussd_sessions", "stored", &UssdSessionsStored::new(3));

    // Signed headers: device, timestamp, nonce, signature, body, then an
    // enrolment public key, one per line.
    let key = DeviceKey::generate().unwrap();
    let body = wire::encode_message(&request);
    let signed = key.sign(12, "POST", "/v1/sync", &body, 1_790_000_000_000);
    let mut seed = Vec::new();
    for (_, value) in signed.pairs() {
        seed.extend(value.as_bytes());
        seed.push(b'\n');
    }
    seed.extend(b"small body\n");
    seed.extend(key.public_key().as_bytes());
    let dir = Path::new("corpus/signed_headers");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("signed-request"), seed).unwrap();
    println!("seeds written");
}
