//! The gateway's configuration file (ussd-gateway/src/config.rs), read
//! through `Config::load` from a file as at start: a bad file is an error
//! naming what is wrong, never a panic; what loads answers its lookups.
#![no_main]

use guichet_ussd_gateway::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = guichet_fuzz::scratch_dir();
        let path = dir.path().join("gateway.toml");
        (dir, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("writing the scratch file");
    let Ok(config) = Config::load(path()) else {
        return;
    };
    assert!(config.languages.contains(&config.default_language));
    for locality in config.localities() {
        assert!(config.unit_of(locality).is_some());
    }
    for service in &config.services {
        for lang in &config.languages {
            let _ = config.service_name(&service.id, lang);
        }
    }
    for mediator in &config.mediators {
        assert!(config.mediator_by_phone(&mediator.phone).is_some());
    }
});
