//! The sync wire format: what travels between replicas, over 2G links.
//!
//! Every message is `G` `C` version, then a zstd frame holding the postcard
//! encoding (varint integers, no field names) of a structure whose first
//! field is the operation schema version. A [`Batch`] is such a message: the
//! schema, a "more to come" flag and the operations; the sync protocol's
//! requests and responses are others. Anything truncated, oversized, of an
//! unknown version or with trailing bytes is refused before any operation is
//! looked at.

use crate::error::BatchError;
use crate::op::{Op, OP_SCHEMA};
use serde::{Deserialize, Serialize};
use std::io::Read;

pub const WIRE_VERSION: u8 = 1;
const MAGIC: &[u8; 2] = b"GC";
/// A decoded batch larger than this is refused (a zstd bomb, or a peer
/// ignoring batch limits).
pub const MAX_DECODED_BYTES: u64 = 64 << 20;
const ZSTD_LEVEL: i32 = 3;

/// A bounded run of operations, in an order where each one comes after
/// everything it depends on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub schema: u16,
    /// The sender holds more operations the receiver lacks: ask again.
    pub more: bool,
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new(ops: Vec<Op>, more: bool) -> Batch {
        Batch {
            schema: OP_SCHEMA,
            more,
            ops,
        }
    }
}

pub fn encode(batch: &Batch) -> Vec<u8> {
    encode_message(batch)
}

pub fn decode(bytes: &[u8]) -> Result<Batch, BatchError> {
    decode_message(bytes)
}

/// Frames any message whose first field is the schema version.
pub fn encode_message<T: Serialize>(message: &T) -> Vec<u8> {
    let plain = postcard::to_stdvec(message).expect("encoding to memory cannot fail");
    let mut out = Vec::with_capacity(plain.len() / 2 + 8);
    out.extend_from_slice(MAGIC);
    out.push(WIRE_VERSION);
    zstd::stream::copy_encode(plain.as_slice(), &mut out, ZSTD_LEVEL)
        .expect("compressing to memory cannot fail");
    out
}

pub fn decode_message<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BatchError> {
    let malformed = |why: &str| BatchError::Malformed(why.to_string());
    if bytes.len() < 3 || &bytes[..2] != MAGIC {
        return Err(malformed("not a Guichet batch"));
    }
    if bytes[2] != WIRE_VERSION {
        return Err(BatchError::UnsupportedWireVersion(bytes[2]));
    }
    let mut plain = Vec::new();
    zstd::stream::read::Decoder::new(&bytes[3..])
        .map_err(|e| malformed(&e.to_string()))?
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| malformed(&format!("truncated or corrupt: {e}")))?;
    if plain.len() as u64 > MAX_DECODED_BYTES {
        return Err(malformed("batch too large"));
    }
    // The schema comes first: read it alone so that a newer peer gets a
    // clear answer rather than a decoding error.
    let (schema, _) =
        postcard::take_from_bytes::<u16>(&plain).map_err(|e| malformed(&e.to_string()))?;
    if schema != OP_SCHEMA {
        return Err(BatchError::UnsupportedSchema(schema));
    }
    let (message, rest) =
        postcard::take_from_bytes::<T>(&plain).map_err(|e| malformed(&e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    Ok(message)
}
