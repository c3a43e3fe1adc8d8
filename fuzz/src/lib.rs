//! What several fuzz targets share.

use guichet_core::wire;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

/// Frames `plain` as a wire message (`G` `C` version, then a zstd frame), so
/// that the fuzzer's bytes reach the postcard decoding rather than stopping
/// at zstd: a mutated compressed frame almost never decompresses. The zstd
/// frame holds `plain` in raw (stored) blocks: no compressor to run, and
/// the decoder production uses reads it like any other frame.
pub fn frame(plain: &[u8]) -> Vec<u8> {
    /// A raw block holds at most 128 KiB.
    const MAX_BLOCK: usize = 128 << 10;
    let mut out = vec![b'G', b'C', wire::WIRE_VERSION];
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Single segment, 8-byte content size, no checksum, no dictionary.
    out.push(0b1110_0000);
    out.extend_from_slice(&(plain.len() as u64).to_le_bytes());
    let mut blocks = plain.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last block
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none() as u32;
        let header = last | ((block.len() as u32) << 3); // type 0: raw
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
    out
}

/// Checks once that [`frame`] makes frames zstd reads back.
fn check_frame() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        for plain in [&b""[..], b"GC", &[7u8; 200_000]] {
            let framed = frame(plain);
            let read = zstd::stream::decode_all(&framed[3..]).expect("a valid zstd frame");
            assert_eq!(read, plain, "the raw frame reads back");
        }
    });
}

/// Decodes a wire message of type `T` from `data` as it would arrive (the
/// first byte chooses: the bytes as sent, or the plain postcard bytes
/// framed), and checks that what decodes encodes back to the same value.
/// Returns the decoded message for further checks.
pub fn decode_wire<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    check_frame();
    let (&mode, rest) = data.split_first()?;
    let message = if mode & 1 == 0 {
        wire::decode_message::<T>(rest).ok()?
    } else {
        wire::decode_message::<T>(&frame(rest)).ok()?
    };
    // Written back as encode_message writes it, but in a stored block: the
    // compressor reads no outside input, and setting one up each run would
    // take much of the run.
    let plain = postcard::to_stdvec(&message).expect("encoding to memory cannot fail");
    let again = wire::decode_message::<T>(&frame(&plain))
        .expect("a message that decoded, encoded again, decodes");
    assert_eq!(again, message, "encoding then decoding changed the message");
    Some(message)
}

/// A scratch directory for targets that read files or open SQLite: under
/// `$FUZZ_SCRATCH` (run.sh gives each run one in /dev/shm and removes it
/// afterwards, as libFuzzer exits without dropping statics), else in
/// /dev/shm when the machine has it (fast), else the temporary directory.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let base = match std::env::var_os("FUZZ_SCRATCH") {
        Some(dir) => dir.into(),
        None if shm.is_dir() => shm.to_path_buf(),
        None => std::env::temp_dir(),
    };
    tempfile::Builder::new()
        .prefix("guichet-fuzz-")
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("a scratch directory in {}: {e}", base.display()))
}
