//! An incoming-SMS or delivery-report query as Kannel sends it
//! (ussd-gateway/src/providers/kannel.rs): the raw query string is
//! percent-decoded to bytes and the payload decoded per `coding` and
//! `charset`, as the handlers do; decoding never panics, and what decodes
//! is the payload's exact text in that charset.
#![no_main]

use guichet_ussd_gateway::providers::kannel::decode_text;
use guichet_ussd_gateway::providers::{e164, percent_decode, raw_query};
use guichet_ussd_gateway::text;
use libfuzzer_sys::fuzz_target;
use std::fmt::Write;

/// The first value of a parameter, as the handlers look it up.
fn param<'a>(q: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

/// Percent-encodes every byte but unreserved ones.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let q = raw_query(&query);
    let utf8 = |name: &str| {
        param(&q, name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let _ = e164(&utf8("from"));
    if let Some(payload) = param(&q, "text") {
        assert_eq!(
            percent_decode(&encode(payload)),
            payload,
            "decoding undoes encoding"
        );
        let (coding, charset) = (utf8("coding"), utf8("charset"));
        if let Ok(decoded) = decode_text(payload, &coding, &charset) {
            let charset = charset.to_ascii_uppercase();
            let back: Vec<u8> = match charset.as_str() {
                "" | "UTF-8" if coding != "2" || !charset.is_empty() => decoded.as_bytes().to_vec(),
                "ISO-8859-1" | "LATIN1" | "WINDOWS-1252" => decoded
                    .chars()
                    .map(|c| if c == '€' { 0x80 } else { c as u32 as u8 })
                    .collect(),
                _ => decoded.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            };
            assert_eq!(back, payload, "decoded text re-encodes to the payload");
            // What the reply's coding is chosen from.
            let _ = text::encoding(&decoded);
        }
    }
    // A delivery report's numbers.
    for name in ["id", "type"] {
        let _ = param(&q, name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
    }
});
