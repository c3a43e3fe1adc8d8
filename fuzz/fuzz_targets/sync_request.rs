//! A device's sync request as the sync server reads it
//! (core/src/sync/protocol.rs, framed by core/src/wire.rs).
#![no_main]

use guichet_core::sync::protocol::SyncRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(request) = guichet_fuzz::decode_wire::<SyncRequest>(data) {
        for op in &request.ops {
            let _ = op.check();
        }
    }
});
