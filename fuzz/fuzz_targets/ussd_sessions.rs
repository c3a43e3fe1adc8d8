//! The gateway's USSD session reports as the sync server reads and checks
//! them, and the server's answer as the gateway reads it
//! (core/src/sync/protocol.rs, sync-server/src/supervision.rs).
#![no_main]

use guichet_core::sync::protocol::{UssdSessionReports, UssdSessionsStored};
use guichet_sync_server::supervision::check_report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(reports) = guichet_fuzz::decode_wire::<UssdSessionReports>(data) {
        for report in &reports.sessions {
            let _ = check_report(report);
        }
    }
    let _ = guichet_fuzz::decode_wire::<UssdSessionsStored>(data);
});
