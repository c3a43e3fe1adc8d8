//! A real `guichet-sync-server` process on loopback, and enrolled devices.
#![allow(dead_code)]

use guichet_core::sync::client::{ClientOptions, SyncClient};
use guichet_core::sync::signing::DeviceKey;
use guichet_core::{Channel, NewCase, Priority, Status, Store};
pub use guichet_e2e::Process;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_guichet-sync-server");

/// The server as a real process (`guichet_e2e::Process`).
pub type Server = Process;

/// Starts the server and waits for its "listening" line.
pub fn start_server(data_dir: &Path, listen: &str) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--listen", listen, "--data-dir"])
        .arg(data_dir);
    Process::start(command)
}

/// Runs a subcommand of the server binary (enrol, revoke, devices).
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg(args[0])
        .arg("--data-dir")
        .arg(data_dir)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A device as an app holds it: its store and its key.
pub struct Device {
    pub store: Store,
    pub key_pkcs8: Vec<u8>,
    pub replica: u32,
}

/// Generates a key, has the administrator enrol it, opens the store.
pub fn enrol(data_dir: &Path, dir: &Path, agent: &str, role: &str, units: &[&str]) -> Device {
    let key = DeviceKey::generate().unwrap();
    let public = key.public_key();
    let mut args = vec![
        "enrol",
        "--public-key",
        &public,
        "--agent",
        agent,
        "--role",
        role,
    ];
    for unit in units {
        args.extend(["--unit", unit]);
    }
    let enrolment: serde_json::Value = serde_json::from_str(&admin(data_dir, &args)).unwrap();
    let replica = enrolment["replica"].as_u64().unwrap() as u32;
    let store = Store::open(dir.join(format!("{agent}.db")), replica).unwrap();
    Device {
        store,
        key_pkcs8: key.pkcs8().to_vec(),
        replica,
    }
}

impl Device {
    pub fn client(&self, url: &str, options: ClientOptions) -> SyncClient {
        let key = DeviceKey::from_pkcs8(&self.key_pkcs8).unwrap();
        SyncClient::new(url, key, options).unwrap()
    }

    pub fn key(&self) -> DeviceKey {
        DeviceKey::from_pkcs8(&self.key_pkcs8).unwrap()
    }
}

pub fn quick() -> ClientOptions {
    ClientOptions {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        max_attempts: 40,
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

pub fn new_case(unit: &str, i: usize) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: format!("+2217{:08}", i),
        requester_name: format!("Citoyenne {i}"),
        requester_language: "wo".into(),
        locality: "Diourbel".into(),
        channel: Channel::Field,
        mediator: None,
        unit: unit.into(),
        assignee: None,
        priority: Priority::Normal,
        description: format!("Demande numéro {i}: extrait de naissance"),
        status: Status::Received,
    }
}
