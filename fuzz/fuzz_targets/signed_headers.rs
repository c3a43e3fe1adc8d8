//! The signature headers of a sync request as the sync server reads them
//! (core/src/sync/signing.rs): one header value per line, in the order
//! device, timestamp, nonce, signature; then an enrolment public key.
//! Values go through `http::HeaderValue` and `to_str` as the server's
//! header lookup does.
#![no_main]

use guichet_core::sync::signing::{
    self, DeviceKey, SignedHeaders, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const NAMES: [&str; 4] = [
    HEADER_DEVICE,
    HEADER_TIMESTAMP,
    HEADER_NONCE,
    HEADER_SIGNATURE,
];

/// An enrolled device's public key, to verify fuzzed signatures against.
fn public_key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = DeviceKey::generate().expect("a key");
        signing::parse_public_key(&key.public_key()).expect("its own public key")
    })
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let mut headers = HeaderMap::new();
    for name in NAMES {
        let Some(line) = lines.next() else { break };
        // A line that is no valid header value never reaches the server.
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.insert(name, value);
        }
    }
    let parsed = SignedHeaders::parse(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    if let Ok(signed) = &parsed {
        let pairs = signed.pairs();
        let again = SignedHeaders::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        });
        assert_eq!(
            again.as_ref(),
            Ok(signed),
            "headers written back read the same"
        );
        let body = lines.next().unwrap_or_default();
        let verified = signing::verify(
            public_key(),
            signed,
            "POST",
            "/v1/sync",
            body,
            signed.timestamp_ms,
        );
        assert!(verified.is_err(), "a fuzzed signature verified: {signed:?}");
    }
    if let Some(key) = lines.next().and_then(|l| std::str::from_utf8(l).ok()) {
        if let Ok(key) = signing::parse_public_key(key) {
            assert_eq!(key.len(), 32);
        }
    }
});
