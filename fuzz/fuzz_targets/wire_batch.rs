//! A batch of operations as a peer sends it (core/src/wire.rs, which
//! `wire::decode` and `Store::apply_encoded` read with `decode_message`):
//! decoding never panics, what decodes re-encodes to the same batch, and
//! the structural checks every received operation goes through never panic.
#![no_main]

use guichet_core::wire::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(batch) = guichet_fuzz::decode_wire::<Batch>(data) {
        for op in &batch.ops {
            let _ = op.check();
            let _ = op.dependencies().count();
        }
    }
});
