//! Server settings: a TOML file, overridden by environment variables,
//! overridden by command-line flags.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the server's store and device registry live.
    pub data_dir: PathBuf,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest answer to one sync request (before compression).
    pub max_response_bytes: usize,
    /// A request still running after this long is answered 408.
    pub request_timeout_secs: u64,
    /// The deployment's local time, east of UTC (Dakar 0, Nairobi 180):
    /// the figures' days and busiest hours are local.
    pub utc_offset_minutes: i32,
    /// A device with no successful sync for more than this many days is
    /// flagged silent on the supervisor's devices page and counted in
    /// `devices_silent`.
    pub silent_device_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8700".parse().expect("valid default address"),
            data_dir: PathBuf::from("guichet-data"),
            max_body_bytes: 8 << 20,
            max_response_bytes: 1 << 20,
            request_timeout_secs: 60,
            utc_offset_minutes: 0,
            silent_device_days: 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// toml's message names the line and column and what was expected.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_config_names_the_file_line_and_what_is_expected() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("sync.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = \"big\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("sync.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("expected usize"), "{err}");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n").unwrap();
        assert_eq!(Config::load(Some(&path)).unwrap().listen.port(), 9000);
        std::fs::write(&path, "lisen = 1\n").unwrap();
        assert!(Config::load(Some(&path))
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }
}
