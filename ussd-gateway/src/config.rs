//! The gateway's settings: one TOML file (see `gateway.example.toml`),
//! overridden by environment variables and flags for the usual three.

use guichet_core::privacy::mask_phone;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory of the Fluent files, one per language.
    #[serde(default = "default_locales")]
    pub locales_dir: PathBuf,
    /// Used for a message a language lacks, and before a caller chose one.
    #[serde(default = "default_language")]
    pub default_language: String,
    /// Offered on first dial, in this order.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    /// The country calling code, for phone numbers typed without it
    /// (a mediator typing a citizen's number), e.g. "221".
    #[serde(default)]
    pub country_calling_code: Option<String>,
    /// The USSD code citizens dial, e.g. `*123#`.
    #[serde(default = "default_service_code")]
    pub service_code: String,
    /// The gateway's replica number when it runs without a sync server
    /// (trying it out). With a sync server, the enrolment decides.
    #[serde(default)]
    pub standalone_replica: Option<u32>,
    #[serde(default)]
    pub sync: Option<SyncConfig>,
    #[serde(default)]
    pub ussd: UssdConfig,
    #[serde(default)]
    pub sms: SmsConfig,
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub units: Vec<UnitConfig>,
    #[serde(default)]
    pub mediators: Vec<MediatorConfig>,
    #[serde(default)]
    pub providers: ProvidersConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    pub server_url: String,
    #[serde(default = "default_sync_interval")]
    pub interval_secs: u64,
    /// Run the sync server inside this process, listening on `server_url`'s
    /// address with its data here: one command starts the whole service
    /// (trying it out, a small deployment). The gateway enrols itself.
    #[serde(default)]
    pub embedded_server_data_dir: Option<PathBuf>,
    /// The embedded server's local time, minutes east of UTC (Dakar 0,
    /// Nairobi 180): the supervisor's days and busiest hours are local.
    #[serde(default)]
    pub embedded_server_utc_offset_minutes: i32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UssdConfig {
    /// One screen: 182 GSM-7 characters, or 80 UTF-16 units otherwise.
    pub screen_gsm7: usize,
    pub screen_ucs2: usize,
    /// A session idle this long is over, as the operator ends it.
    pub session_timeout_secs: u64,
    /// Dialing again within this delay offers to continue an unfinished request.
    pub resume_window_secs: u64,
    /// Longest free text accepted (a description).
    pub max_input_chars: usize,
    /// Hops one phone may make per minute.
    pub hops_per_minute: u32,
}

impl Default for UssdConfig {
    fn default() -> Self {
        UssdConfig {
            screen_gsm7: 182,
            screen_ucs2: 80,
            session_timeout_secs: 180,
            resume_window_secs: 300,
            max_input_chars: 160,
            hops_per_minute: 40,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Which provider sends outgoing SMS: "africastalking" or "kannel".
    pub provider: Option<String>,
    /// Languages whose SMS are transliterated to GSM-7 (cheaper, but
    /// spelling suffers: only where the deployment chose it).
    pub gsm7_fallback: Vec<String>,
    /// Messages received per phone per minute before replies stop.
    pub per_minute: u32,
    pub max_attempts: u32,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            provider: None,
            gsm7_fallback: Vec::new(),
            per_minute: 10,
            max_attempts: 8,
        }
    }
}

/// A service offered, with its name in each language.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub id: String,
    pub names: BTreeMap<String, String>,
}

/// A mobile unit and the localities it serves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConfig {
    pub id: String,
    pub localities: Vec<String>,
}

/// A community mediator: files requests for citizens who cannot.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediatorConfig {
    pub id: String,
    pub name: String,
    pub phone: String,
    /// The PIN, salted and hashed with Argon2id, as a PHC string
    /// (`guichet-ussd-gateway hash-pin 1234` prints one).
    #[serde(default)]
    pub pin_hash: Option<String>,
    /// The PIN's unsalted SHA-256, hex: what configurations written before
    /// `pin_hash` hold. Still accepted, with a warning at start.
    #[serde(default)]
    pub pin_sha256: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    pub africastalking: Option<AfricasTalkingConfig>,
    pub kannel: Option<KannelConfig>,
    pub xml: Option<XmlUssdConfig>,
}

/// What every provider's callbacks share: an unguessable URL segment and
/// an optional list of addresses allowed to call.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackAuth {
    pub secret: String,
    #[serde(default)]
    pub allowed_ips: Vec<IpAddr>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfricasTalkingConfig {
    #[serde(flatten)]
    pub auth: CallbackAuth,
    pub username: String,
    pub api_key: String,
    /// `https://api.africastalking.com`, the sandbox, or a local fake.
    pub base_url: String,
    #[serde(default)]
    pub sender_id: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelConfig {
    #[serde(flatten)]
    pub auth: CallbackAuth,
    /// e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`
    pub sendsms_url: String,
    pub username: String,
    pub password: String,
    /// The number or name outgoing SMS come from.
    #[serde(default)]
    pub from: Option<String>,
    /// How Kannel reaches this gateway, for delivery reports.
    pub callback_base_url: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlUssdConfig {
    #[serde(flatten)]
    pub auth: CallbackAuth,
}

/// Shown instead of a secret when a section is printed (`{:?}`).
const REDACTED: &str = "[redacted]";

impl fmt::Debug for MediatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediatorConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("phone", &mask_phone(&self.phone))
            .field("pin_hash", &self.pin_hash.as_ref().map(|_| REDACTED))
            .field("pin_sha256", &self.pin_sha256.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl fmt::Debug for CallbackAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackAuth")
            .field("secret", &REDACTED)
            .field("allowed_ips", &self.allowed_ips)
            .finish()
    }
}

impl fmt::Debug for AfricasTalkingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfricasTalkingConfig")
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("api_key", &REDACTED)
            .field("base_url", &self.base_url)
            .field("sender_id", &self.sender_id)
            .finish()
    }
}

impl fmt::Debug for KannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KannelConfig")
            .field("auth", &self.auth)
            .field("sendsms_url", &self.sendsms_url)
            .field("username", &self.username)
            .field("password", &REDACTED)
            .field("from", &self.from)
            .field("callback_base_url", &self.callback_base_url)
            .finish()
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

fn default_listen() -> SocketAddr {
    "127.0.0.1:8710".parse().expect("valid default address")
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("guichet-data/gateway")
}
fn default_locales() -> PathBuf {
    PathBuf::from("locales")
}
fn default_language() -> String {
    "fr".into()
}
fn default_languages() -> Vec<String> {
    ["wo", "ff", "bm", "ha", "sw", "fr", "en"]
        .map(String::from)
        .to_vec()
}
fn default_service_code() -> String {
    "*123#".into()
}
fn default_sync_interval() -> u64 {
    30
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// What TOML cannot say: references between sections.
    fn check(&self) -> Result<(), String> {
        if !self.languages.contains(&self.default_language) {
            return Err(format!(
                "default_language '{}' is not in languages",
                self.default_language
            ));
        }
        for s in &self.services {
            if !s.names.contains_key(&self.default_language) {
                return Err(format!(
                    "service '{}' has no name in the default language '{}'",
                    s.id, self.default_language
                ));
            }
        }
        for m in &self.mediators {
            guichet_core::model::check_phone(&m.phone).map_err(|_| {
                format!(
                    "mediator '{}': phone must be E.164, like +221771234567",
                    m.id
                )
            })?;
        }
        if let Some(p) = &self.sms.provider {
            let configured = match p.as_str() {
                "africastalking" => self.providers.africastalking.is_some(),
                "kannel" => self.providers.kannel.is_some(),
                _ => {
                    return Err(format!(
                        "sms.provider '{p}': expected africastalking or kannel"
                    ))
                }
            };
            if !configured {
                return Err(format!(
                    "sms.provider is '{p}' but [providers.{p}] is missing"
                ));
            }
        }
        Ok(())
    }

    /// The unit serving a locality.
    pub fn unit_of(&self, locality: &str) -> Option<&str> {
        self.units
            .iter()
            .find(|u| u.localities.iter().any(|l| l == locality))
            .map(|u| u.id.as_str())
    }

    /// Every locality served, in configuration order.
    pub fn localities(&self) -> Vec<&str> {
        self.units
            .iter()
            .flat_map(|u| u.localities.iter().map(String::as_str))
            .collect()
    }

    /// A service's name in `lang`, or in the default language.
    pub fn service_name<'a>(&'a self, id: &'a str, lang: &str) -> &'a str {
        self.services
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| {
                s.names
                    .get(lang)
                    .or_else(|| s.names.get(&self.default_language))
            })
            .map_or(id, String::as_str)
    }

    pub fn mediator_by_phone(&self, phone: &str) -> Option<&MediatorConfig> {
        self.mediators.iter().find(|m| m.phone == phone)
    }

    pub fn mediator(&self, id: &str) -> Option<&MediatorConfig> {
        self.mediators.iter().find(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printing the configuration (a `{:?}` in a log or a panic) shows no
    /// credential, callback secret, PIN hash or mediator's number.
    #[test]
    fn a_printed_configuration_holds_no_secret() {
        let config: Config = toml::from_str(
            r#"
            [[mediators]]
            id = "med-awa"
            name = "Awa Ndiaye"
            phone = "+221770000009"
            pin_sha256 = "03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4"
            [[mediators]]
            id = "med-binta"
            name = "Binta Sow"
            phone = "+221770000008"
            pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$groveINt+rZjfVNkR4guXA$3z4pdC5WrlqOOg3FNtcwoTImVyBWt6vdcFGXwOpu8eQ"
            [providers.africastalking]
            secret = "at-callback-secret"
            username = "sandbox"
            api_key = "at-api-key-123"
            base_url = "http://127.0.0.1:9"
            [providers.kannel]
            secret = "kannel-callback-secret"
            sendsms_url = "http://127.0.0.1:13013/cgi-bin/sendsms"
            username = "guichet"
            password = "kannel-password-456"
            callback_base_url = "http://127.0.0.1:8710"
            [providers.xml]
            secret = "xml-callback-secret"
            "#,
        )
        .unwrap();
        let printed = format!("{config:?} {config:#?}");
        for secret in [
            "at-callback-secret",
            "at-api-key-123",
            "kannel-callback-secret",
            "kannel-password-456",
            "xml-callback-secret",
            "03ac674216f3",
            "groveINt",
            "770000009",
            "770000008",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("sandbox"), "the rest is shown: {printed}");
    }
}
