//! The gateway enrols itself with its embedded sync server, and a crash
//! between the server's enrolment and the gateway saving it does not leave
//! the gateway stuck: a real gateway process, real files.

mod common;

use common::*;
use guichet_sync_server::registry::{Registry, Role};
use tempfile::TempDir;

/// A loopback address nothing listens on (yet).
fn free_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn a_gateway_that_crashed_while_enrolling_finishes_enrolment_on_restart() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let server = dir.path().join("server");
    std::fs::create_dir_all(&server).unwrap();
    // The first start made its key and enrolled it with the embedded
    // server, then stopped before saving the enrolment.
    let out = std::process::Command::new(BIN)
        .args(["key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public_key = String::from_utf8(out.stdout).unwrap();
    let enrolled = Registry::open(&server.join("registry.db"))
        .unwrap()
        .enrol("ussd-gateway", Role::Intake, &[], public_key.trim(), 1)
        .unwrap();
    assert!(!data.join("enrolment.json").exists());

    let sync = format!(
        "[sync]\nserver_url = \"http://{}\"\nembedded_server_data_dir = \"{}\"\n",
        free_address(),
        server.display()
    );
    let text = config(&data, "http://127.0.0.1:9", &sync);
    for start in ["restart after the crash", "a later restart"] {
        let mut gw = start_gateway(&text, dir.path());
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("enrolment.json")).unwrap()).unwrap();
        assert_eq!(saved["replica"], enrolled.replica, "{start}");
        gw.kill();
    }
    let devices = Registry::open(&server.join("registry.db"))
        .unwrap()
        .devices()
        .unwrap();
    assert_eq!(devices.len(), 1, "enrolled once");
}
