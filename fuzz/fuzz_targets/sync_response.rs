//! The sync server's answer as a device reads it
//! (core/src/sync/protocol.rs, framed by core/src/wire.rs).
#![no_main]

use guichet_core::sync::protocol::SyncResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(response) = guichet_fuzz::decode_wire::<SyncResponse>(data) {
        for op in &response.ops {
            let _ = op.check();
        }
    }
});
