//! An SMS a citizen sends, answered by a real gateway (ussd-gateway/src/
//! sms.rs) on SQLite files in a scratch directory, with the catalogs of
//! every language in locales/: keywords in any language, references, free
//! text. Answering never panics, and there is always an answer from a
//! phone that is not rate-limited.
#![no_main]

use guichet_core::{Channel, NewCase, Priority, Status, Store};
use guichet_ussd_gateway::config::Config;
use guichet_ussd_gateway::gateway::Gateway;
use guichet_ussd_gateway::i18n::Catalog;
use guichet_ussd_gateway::state::GatewayDb;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

/// The requester of the cases the gateway holds.
const PHONE: &str = "+221771234567";

fn new_case(status: Status) -> NewCase {
    NewCase {
        service: "sante".into(),
        requester_phone: PHONE.into(),
        requester_name: "Awa Diop".into(),
        requester_language: "wo".into(),
        locality: "Pire".into(),
        channel: Channel::Sms,
        mediator: None,
        unit: "unit-01".into(),
        assignee: None,
        priority: Priority::Normal,
        description: "Carte d'identité".into(),
        status,
    }
}

/// A gateway with two cases of `PHONE` (references 3999000011 and
/// 3999000022, replica 999): one just received, one in progress.
fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<(tempfile::TempDir, Gateway)> = OnceLock::new();
    &GATEWAY
        .get_or_init(|| {
            let dir = guichet_fuzz::scratch_dir();
            let locales = Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
            let path = dir.path().join("gateway.toml");
            std::fs::write(
                &path,
                format!(
                    "data_dir = {:?}\nlocales_dir = {:?}\ndefault_language = \"fr\"\n\
                     languages = [\"wo\", \"ff\", \"bm\", \"ha\", \"sw\", \"fr\", \"en\"]\n\
                     [sms]\nper_minute = 4000000000\ngsm7_fallback = [\"wo\"]\n\
                     [[services]]\nid = \"sante\"\nnames = {{ fr = \"Santé\", en = \"Health\" }}\n\
                     [[units]]\nid = \"unit-01\"\nlocalities = [\"Pire\"]\n",
                    dir.path(),
                    locales
                ),
            )
            .expect("writing the configuration");
            let config = Config::load(&path).expect("the configuration loads");
            let catalog = Catalog::load(&config.locales_dir, "fr").expect("the catalogs load");
            let mut store = Store::open(dir.path().join("cases.db"), 999).expect("the store");
            store
                .write(|w| {
                    w.create_case(&new_case(Status::Received))?;
                    w.create_case(&new_case(Status::InProgress))
                })
                .expect("the cases");
            let db = GatewayDb::open(&dir.path().join("gateway.db")).expect("the gateway db");
            let gateway = Gateway::new(config, catalog, store, db).expect("the gateway");
            (dir, gateway)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    // Providers hand over text (AT's form, Kannel decoded per charset).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let reply = gateway().sms(PHONE, text);
    assert!(
        reply.is_some_and(|r| !r.is_empty()),
        "no answer to {text:?}"
    );
});
