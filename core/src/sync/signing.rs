//! Device identity and request signatures.
//!
//! A device holds an Ed25519 key pair; the administrator enrols its public
//! key. Every sync request carries the device's replica number, a timestamp,
//! a random nonce and a signature over
//! `GUICHET-V1 \n method \n path \n sha256(body) \n timestamp \n nonce`,
//! so the server can refuse what is unsigned, tampered with, replayed or
//! from a revoked device.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::ids::ReplicaId;

pub const HEADER_DEVICE: &str = "x-guichet-device";
pub const HEADER_TIMESTAMP: &str = "x-guichet-timestamp";
pub const HEADER_NONCE: &str = "x-guichet-nonce";
pub const HEADER_SIGNATURE: &str = "x-guichet-signature";
/// Sent by the server on every answer, so a device whose clock is too far
/// off to sign acceptably can correct it.
pub const HEADER_SERVER_TIME: &str = "x-guichet-server-time";

/// How far a request's timestamp may be from the server's clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the request is not signed ({0} missing)")]
    Missing(&'static str),
    #[error("the request's signature headers are malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature does not match the request")]
    BadSignature,
    #[error("the request's timestamp is too far from the server's clock")]
    Stale,
    #[error("not a valid Ed25519 key")]
    BadKey,
    #[error("the system's secure random source failed")]
    NoRandomness,
}

/// The headers that authenticate one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub device: ReplicaId,
    pub timestamp_ms: u64,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_DEVICE, self.device.to_string()),
            (HEADER_TIMESTAMP, self.timestamp_ms.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ]
    }

    /// Reads the headers back, from any header lookup.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, SignatureError> {
        let need = |name: &'static str| get(name).ok_or(SignatureError::Missing(name));
        Ok(SignedHeaders {
            device: need(HEADER_DEVICE)?
                .parse()
                .map_err(|_| SignatureError::Malformed(HEADER_DEVICE))?,
            timestamp_ms: need(HEADER_TIMESTAMP)?
                .parse()
                .map_err(|_| SignatureError::Malformed(HEADER_TIMESTAMP))?,
            nonce: need(HEADER_NONCE)?.to_string(),
            signature: need(HEADER_SIGNATURE)?.to_string(),
        })
    }
}

/// What is signed, byte for byte.
fn canonical(method: &str, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("GUICHET-V1\n{method}\n{path}\n{hex}\n{timestamp_ms}\n{nonce}").into_bytes()
}

/// A device's private key.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl DeviceKey {
    /// A fresh key pair, from the system's secure random source.
    pub fn generate() -> Result<DeviceKey, SignatureError> {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| SignatureError::BadKey)?;
        DeviceKey::from_pkcs8(doc.as_ref())
    }

    /// The key as kept on the device (PKCS#8).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<DeviceKey, SignatureError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SignatureError::BadKey)?;
        Ok(DeviceKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, base64: what the administrator enrols.
    pub fn public_key(&self) -> String {
        B64.encode(self.pair.public_key().as_ref())
    }

    pub fn sign(
        &self,
        device: ReplicaId,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<SignedHeaders, SignatureError> {
        let mut nonce = [0u8; 16];
        // A nonce that is not random could repeat: refuse to sign rather
        // than send requests the server would take for replays.
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SignatureError::NoRandomness)?;
        let nonce = B64.encode(nonce);
        let signature = self
            .pair
            .sign(&canonical(method, path, body, now_ms, &nonce));
        Ok(SignedHeaders {
            device,
            timestamp_ms: now_ms,
            nonce,
            signature: B64.encode(signature.as_ref()),
        })
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.public_key())
    }
}

/// Checks a base64 public key as given by a device at enrolment.
pub fn parse_public_key(b64: &str) -> Result<Vec<u8>, SignatureError> {
    let key = B64.decode(b64.trim()).map_err(|_| SignatureError::BadKey)?;
    if key.len() == 32 {
        Ok(key)
    } else {
        Err(SignatureError::BadKey)
    }
}

/// Verifies a request against the device's enrolled public key. Replays
/// (a nonce seen before) are the caller's to refuse.
pub fn verify(
    public_key: &[u8],
    headers: &SignedHeaders,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<(), SignatureError> {
    if now_ms.abs_diff(headers.timestamp_ms) > MAX_CLOCK_SKEW_MS {
        return Err(SignatureError::Stale);
    }
    if headers.nonce.is_empty() || headers.nonce.len() > 64 {
        return Err(SignatureError::Malformed(HEADER_NONCE));
    }
    let signature = B64
        .decode(&headers.signature)
        .map_err(|_| SignatureError::Malformed(HEADER_SIGNATURE))?;
    let message = canonical(method, path, body, headers.timestamp_ms, &headers.nonce);
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&message, &signature)
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let key = DeviceKey::generate().unwrap();
        let public = parse_public_key(&key.public_key()).unwrap();
        let now = 1_800_000_000_000;
        let h = key.sign(17, "POST", "/v1/sync", b"body", now).unwrap();
        assert_eq!(
            verify(&public, &h, "POST", "/v1/sync", b"body", now + 1_000),
            Ok(())
        );
        let bad = Err(SignatureError::BadSignature);
        assert_eq!(verify(&public, &h, "POST", "/v1/sync", b"bodY", now), bad);
        assert_eq!(verify(&public, &h, "POST", "/v1/other", b"body", now), bad);
        assert_eq!(verify(&public, &h, "GET", "/v1/sync", b"body", now), bad);
        let mut other_nonce = h.clone();
        other_nonce.nonce = "AAAAAAAAAAAAAAAAAAAAAA==".into();
        assert_eq!(
            verify(&public, &other_nonce, "POST", "/v1/sync", b"body", now),
            bad
        );
        let late = now + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            verify(&public, &h, "POST", "/v1/sync", b"body", late),
            Err(SignatureError::Stale)
        );
        let stranger = DeviceKey::generate().unwrap();
        let theirs = parse_public_key(&stranger.public_key()).unwrap();
        assert_eq!(verify(&theirs, &h, "POST", "/v1/sync", b"body", now), bad);
    }

    #[test]
    fn keys_survive_storage_and_headers_round_trip() {
        let key = DeviceKey::generate().unwrap();
        let again = DeviceKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        assert!(DeviceKey::from_pkcs8(b"junk").is_err());
        assert!(parse_public_key("c2hvcnQ=").is_err());
        let h = key.sign(3, "POST", "/p", b"", 5).unwrap();
        let pairs = h.pairs();
        let parsed = SignedHeaders::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        });
        assert_eq!(parsed, Ok(h));
        assert_eq!(
            SignedHeaders::parse(|_| None),
            Err(SignatureError::Missing(HEADER_DEVICE))
        );
    }
}
