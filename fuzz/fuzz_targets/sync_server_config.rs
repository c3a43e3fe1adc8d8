//! The sync server's configuration file (sync-server/src/config.rs), read
//! through `Config::load` from a file as at start: a bad file is an error
//! naming the file, never a panic.
#![no_main]

use guichet_sync_server::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = guichet_fuzz::scratch_dir();
        let path = dir.path().join("sync.toml");
        (dir, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("writing the scratch file");
    match Config::load(Some(path())) {
        Ok(_) => {}
        Err(e) => assert!(e.to_string().contains("sync.toml"), "{e}"),
    }
});
