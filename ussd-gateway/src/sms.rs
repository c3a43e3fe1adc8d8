//! SMS: commands citizens send in any language, and the notifications the
//! gateway sends when a case moves.
//!
//! Commands are matched forgivingly: case, accents and extra spaces do not
//! matter, English keywords work in every language, and a bare reference
//! means "track".

use crate::flow::{self, Ctx};
use crate::gateway::{locked, now_ms, Gateway};
use crate::i18n::{Arg, Catalog};
use crate::state::GatewayDb;
use guichet_core::{reference, EventKind, Status, Store, Touched};
use unicode_normalization::UnicodeNormalization;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Track,
    Rate,
    Stop,
    Help,
    Yes,
    No,
}

const COMMANDS: [(Command, &str); 6] = [
    (Command::Track, "keyword-track"),
    (Command::Rate, "keyword-rate"),
    (Command::Stop, "keyword-stop"),
    (Command::Help, "keyword-help"),
    (Command::Yes, "keyword-yes"),
    (Command::No, "keyword-no"),
];

/// Every language's keywords, folded for matching.
pub struct Keywords(Vec<(String, Command, String)>);

impl Keywords {
    pub fn new(catalog: &Catalog, languages: &[String]) -> Keywords {
        let mut all = Vec::new();
        // English last, so a word shared with another language keeps it.
        let mut langs: Vec<&str> = languages
            .iter()
            .map(String::as_str)
            .filter(|l| *l != "en")
            .collect();
        langs.push("en");
        for lang in langs {
            for (command, id) in COMMANDS {
                let word = fold(&catalog.text(lang, id, &[]));
                if !word.is_empty() && !all.iter().any(|(w, _, _)| *w == word) {
                    all.push((word, command, lang.to_string()));
                }
            }
        }
        Keywords(all)
    }

    fn find(&self, word: &str) -> Option<(Command, &str)> {
        self.0
            .iter()
            .find(|(w, _, _)| w == word)
            .map(|(_, c, lang)| (*c, lang.as_str()))
    }
}

/// Upper case, without accents or punctuation: what a keyword is matched as.
fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

impl Gateway {
    /// Answers an SMS; None when nothing should be sent back.
    pub fn sms(&self, from: &str, text: &str) -> Option<String> {
        if guichet_core::model::check_phone(from).is_err() {
            tracing::info!("SMS from a sender that is not a phone number ignored");
            return None;
        }
        if !self.allow_sms(from) {
            return None;
        }
        match self.sms_reply(from, text) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(error = %e, "SMS handling failed");
                None
            }
        }
    }

    fn sms_reply(&self, from: &str, text: &str) -> Result<Option<String>, flow::FlowError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let first = words.first().map(|w| fold(w)).unwrap_or_default();
        let ctx = Ctx {
            config: &self.config,
            catalog: &self.catalog,
            store: &self.store,
            db: &self.db,
            sessions: &self.sessions,
            menus: &self.menus,
            languages: &self.languages,
            phone: from,
            now: now_ms(),
            to_file: None,
        };
        let saved = ctx.db().language(from)?;
        let keyword = self.keywords.find(&first);
        let (command, args) = match keyword {
            Some((command, _)) => (Some(command), &words[1..]),
            None if reference::parse(&words.concat()).is_ok() => (Some(Command::Track), &words[..]),
            None => (None, &words[..]),
        };
        let keyword_lang = keyword.map(|(_, l)| l.to_string());
        let lang = saved
            .or(keyword_lang)
            .unwrap_or_else(|| self.config.default_language.clone());
        let reference_arg = args.first().copied().unwrap_or_default();
        let reply = match command {
            Some(Command::Track) => self.sms_track(&ctx, &lang, &args.concat())?,
            Some(Command::Rate) => {
                self.sms_rate(ctx, &lang, reference_arg, args.get(1).copied())?
            }
            Some(Command::Stop) => {
                ctx.db().set_stopped(from, true)?;
                let keyword = self.catalog.text(&lang, "keyword-yes", &[]);
                self.sms_text(&lang, "sms-stopped", &[("keyword", Arg::Str(&keyword))])
            }
            Some(Command::Yes) if args.is_empty() => {
                ctx.db().set_stopped(from, false)?;
                self.help(&lang)
            }
            Some(Command::Yes) | Some(Command::No) => {
                let yes = command == Some(Command::Yes);
                self.sms_consent(ctx, &lang, reference_arg, yes)?
            }
            Some(Command::Help) | None => self.help(&lang),
        };
        Ok(Some(reply))
    }

    fn help(&self, lang: &str) -> String {
        let k = |id: &str| self.catalog.text(lang, id, &[]);
        let (track, rate, stop) = (k("keyword-track"), k("keyword-rate"), k("keyword-stop"));
        self.sms_text(
            lang,
            "sms-help",
            &[
                ("track", Arg::Str(&track)),
                ("rate", Arg::Str(&rate)),
                ("stop", Arg::Str(&stop)),
            ],
        )
    }

    fn sms_track(&self, ctx: &Ctx, lang: &str, typed: &str) -> Result<String, flow::FlowError> {
        let Ok(reference) = reference::parse(typed) else {
            let Some(shown) = typed_reference_shown(typed) else {
                return Ok(self.help(lang));
            };
            return Ok(self.sms_text(
                lang,
                "sms-invalid-reference",
                &[("reference", Arg::Str(&shown))],
            ));
        };
        let found = ctx.with_store(|s| s.find_by_reference(&reference));
        match found {
            Ok(case) => {
                flow::record_inquiry(ctx, &case, "SMS");
                Ok(flow::status_message(ctx, lang, &case, "sms", |id, args| {
                    self.sms_text(lang, id, args)
                }))
            }
            Err(guichet_core::Error::NotFound(_)) => Ok(self.sms_text(
                lang,
                "sms-unknown-reference",
                &[("reference", Arg::Str(&reference))],
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Only the requester rates, once the case is resolved.
    fn sms_rate(
        &self,
        ctx: Ctx,
        lang: &str,
        typed: &str,
        digit: Option<&str>,
    ) -> Result<String, flow::FlowError> {
        let rating = digit
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|r| (1..=5).contains(r));
        let (Ok(reference), Some(rating)) = (reference::parse(typed), rating) else {
            return Ok(self.help(lang));
        };
        let case = match ctx.with_store(|s| s.find_by_reference(&reference)) {
            Ok(case) if case.requester_phone == ctx.phone => case,
            Ok(_) | Err(guichet_core::Error::NotFound(_)) => {
                return Ok(self.sms_text(
                    lang,
                    "sms-unknown-reference",
                    &[("reference", Arg::Str(&reference))],
                ))
            }
            Err(e) => return Err(e.into()),
        };
        match ctx.with_store(|s| s.write(|w| w.rate(case.id, rating))) {
            Ok(()) => Ok(self.sms_text(lang, "sms-rated", &[("reference", Arg::Str(&reference))])),
            Err(guichet_core::Error::InvalidInput(_)) => Ok(flow::status_message(
                &ctx,
                lang,
                &case,
                "sms",
                |id, args| self.sms_text(lang, id, args),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A citizen confirms or refuses a request a mediator filed for them.
    fn sms_consent(
        &self,
        ctx: Ctx,
        lang: &str,
        typed: &str,
        yes: bool,
    ) -> Result<String, flow::FlowError> {
        let Ok(reference) = reference::parse(typed) else {
            return Ok(self.help(lang));
        };
        let case = match ctx.with_store(|s| s.find_by_reference(&reference)) {
            Ok(case) if case.requester_phone == ctx.phone && case.mediator.is_some() => case,
            Ok(_) | Err(guichet_core::Error::NotFound(_)) => {
                return Ok(self.sms_text(
                    lang,
                    "sms-unknown-reference",
                    &[("reference", Arg::Str(&reference))],
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let reply = if yes {
            ctx.with_store(|s| {
                s.write(|w| {
                    w.add_event(
                        case.id,
                        EventKind::Contact,
                        "consent: the citizen confirmed by SMS",
                    )
                })
            })?;
            "sms-consent-confirmed"
        } else {
            ctx.with_store(|s| {
                s.write(|w| {
                    w.add_event(
                        case.id,
                        EventKind::Contact,
                        "consent: the citizen refused by SMS",
                    )?;
                    if case.status.can_become(Status::Cancelled) {
                        w.change_status(case.id, Status::Cancelled)?;
                    }
                    Ok(())
                })
            })?;
            "sms-consent-refused"
        };
        Ok(self.sms_text(lang, reply, &[("reference", Arg::Str(&reference))]))
    }

    /// An SMS text, transliterated to GSM-7 where the deployment chose it
    /// for that language (the pattern only: never names or references).
    pub fn sms_text(&self, lang: &str, id: &str, args: &[(&str, Arg)]) -> String {
        if self.config.sms.gsm7_fallback.iter().any(|l| l == lang) {
            self.catalog.text_gsm7_fallback(lang, id, args)
        } else {
            self.catalog.text(lang, id, args)
        }
    }

    /// Texts requesters whose case changed status since they were last told
    /// (changes made on tablets arrive through sync). One SMS per change:
    /// the outbox refuses a second message for the same event.
    pub fn notify_status_changes(&self) {
        let since = match locked(&self.db).meta("notify_position") {
            Ok(since) => since.unwrap_or(0),
            Err(e) => return tracing::error!(error = %e, "status notifications failed"),
        };
        let touched = match locked(&self.store).cases_touched_since(since) {
            Ok(touched) => touched,
            Err(e) => return tracing::error!(error = %e, "status notifications failed"),
        };
        // A busy day brings thousands of new cases: a commit per slice, so
        // that filings and hops, which need these locks, wait for one slice
        // at most.
        for slice in touched.chunks(NOTIFY_SLICE) {
            let store = locked(&self.store);
            let db = locked(&self.db);
            let notified = db.transaction(|| {
                let mut queued = false;
                for touched in slice {
                    queued |= self.notify_case(&store, &db, touched)?;
                }
                db.set_meta("notify_position", slice[slice.len() - 1].position)?;
                Ok::<_, flow::FlowError>(queued)
            });
            match notified {
                Ok(true) => self.sms_queued(),
                Ok(false) => {}
                Err(e) => return tracing::error!(error = %e, "status notifications failed"),
            }
        }
    }

    /// Texts the requester of a touched case if its status is news to them;
    /// returns whether an SMS was queued.
    fn notify_case(
        &self,
        store: &Store,
        db: &GatewayDb,
        touched: &Touched,
    ) -> Result<bool, flow::FlowError> {
        // Purged or never materialised: nothing to tell.
        let Some(status) = touched.status else {
            return Ok(false);
        };
        let id = touched.id;
        let told = db.notified_status(id.as_i64())?;
        if !is_news(told, status) {
            return Ok(false);
        }
        let case = match store.case(id) {
            Ok(case) => case,
            Err(guichet_core::Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        // The case may have moved again since it was listed.
        if !is_news(told, case.status) {
            return Ok(false);
        }
        let status = case.status.code() as i64;
        db.set_notified(id.as_i64(), status)?;
        if db.stopped(&case.requester_phone)? {
            return Ok(false);
        }
        let lang = db
            .language(&case.requester_phone)?
            .unwrap_or_else(|| case.requester_language.clone());
        let status_name = format!("status-{}", case.status.as_str());
        let next = format!("next-{}", case.status.as_str());
        let text = if case.status == Status::Resolved {
            let keyword = self.catalog.text(&lang, "keyword-rate", &[]);
            self.sms_text(
                &lang,
                "sms-rate-invite",
                &[
                    ("reference", Arg::Str(&case.reference)),
                    ("keyword", Arg::Str(&keyword)),
                ],
            )
        } else {
            self.sms_text(
                &lang,
                "sms-status-changed",
                &[
                    ("reference", Arg::Str(&case.reference)),
                    ("status", Arg::Msg(&status_name)),
                    ("next", Arg::Msg(&next)),
                ],
            )
        };
        let key = format!("status:{}:{}:{}", case.id, status, case.updated_at.0);
        Ok(db.enqueue_sms(&key, &case.requester_phone, &text, now_ms())?)
    }
}

/// Whether a requester last told `told` should hear of `status`. A new
/// case's "received" is not news: its filing was texted. (Nothing is
/// written for it either: a busy day files thousands.)
fn is_news(told: Option<i64>, status: Status) -> bool {
    match told {
        None => status != Status::Received,
        Some(told) => told != status.code() as i64,
    }
}

/// What the reply to an invalid reference shows of what was typed: enough
/// to spot a typo in a reference (8 to 11 digits) and never more, in
/// characters every SMS encoding carries at one unit each, so that a long
/// or exotic text costs the gateway no extra SMS. None if nothing typed
/// looks like part of a reference.
fn typed_reference_shown(typed: &str) -> Option<String> {
    let kept: Vec<char> = typed.chars().filter(char::is_ascii_alphanumeric).collect();
    match kept.len() {
        0 => None,
        n if n <= REFERENCE_SHOWN => Some(kept.into_iter().collect()),
        _ => Some(format!(
            "{}...",
            String::from_iter(&kept[..REFERENCE_SHOWN])
        )),
    }
}

/// The most of a typed reference an SMS reply shows.
const REFERENCE_SHOWN: usize = 14;

/// How many touched cases one notification commit covers.
const NOTIFY_SLICE: usize = 200;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::gateway::tests::new_case;

    /// A gateway on its own data in `dir`, with one service and unit.
    pub(crate) fn gateway(dir: &std::path::Path) -> Gateway {
        let locales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            format!(
                "data_dir = \"{}\"\nlocales_dir = \"{}\"\ndefault_language = \"en\"\n\
                 [[services]]\nid = \"sante\"\nnames = {{ en = \"Health\" }}\n\
                 [[units]]\nid = \"unit-01\"\nlocalities = [\"Pire\"]\n",
                dir.display(),
                locales.display()
            ),
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let catalog = Catalog::load(&config.locales_dir, "en").unwrap();
        let store = Store::open(dir.join("cases.db"), 999).unwrap();
        let db = GatewayDb::open(&dir.join("gateway.db")).unwrap();
        Gateway::new(config, catalog, store, db).unwrap()
    }

    #[test]
    fn every_change_is_told_once_however_many_cases_arrive() {
        let dir = tempfile::TempDir::new().unwrap();
        let gw = gateway(dir.path());
        let cases = NOTIFY_SLICE * 2 + 50;
        let ids = locked(&gw.store)
            .write(|w| {
                (0..cases)
                    .map(|i| w.create_case(&new_case(&format!("+22177{i:07}"))))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        gw.notify_status_changes();
        assert!(
            locked(&gw.db).outbox().unwrap().is_empty(),
            "received is not news"
        );
        // One case in each slice moves, the last one twice.
        let moved = [0, NOTIFY_SLICE + 7, cases - 1];
        locked(&gw.store)
            .write(|w| {
                for i in moved {
                    w.change_status(ids[i], Status::Assigned)?;
                }
                w.change_status(ids[cases - 1], Status::InProgress)
            })
            .unwrap();
        gw.notify_status_changes();
        gw.notify_status_changes();
        let sent: Vec<String> = locked(&gw.db)
            .outbox()
            .unwrap()
            .into_iter()
            .map(|sms| sms.phone)
            .collect();
        let expected: Vec<String> = moved.iter().map(|i| format!("+22177{i:07}")).collect();
        assert_eq!(sent, expected, "one SMS per case, for its latest status");
    }

    /// A reply never carries a citizen's text back at the gateway's cost:
    /// an invalid reference of any length is answered in one SMS.
    #[test]
    fn an_invalid_reference_is_answered_in_one_sms_whatever_was_typed() {
        let dir = tempfile::TempDir::new().unwrap();
        let gw = gateway(dir.path());
        let phone = "+221771112233";
        let one_sms = |text: &str| {
            let reply = gw.sms(phone, text).expect("a reply");
            let limit = crate::text::UssdLimit {
                gsm7_chars: 182,
                ucs2_units: 80,
            };
            let cost = crate::text::measure(&reply, &limit);
            assert_eq!(cost.segments.len(), 1, "{text:.40}: {reply}");
            reply
        };
        let typo = one_sms("TRACK 1234 5679");
        assert!(typo.contains("12345679 is not a valid"), "{typo}");
        let long = one_sms(&format!("TRACK {}", "12345".repeat(400)));
        assert!(long.contains("12345123451234..."), "{long}");
        let exotic = one_sms(&format!("track 1234€{}", "ɲ".repeat(2_000)));
        assert!(exotic.contains(" 1234 is not a valid"), "{exotic}");
        let nothing = one_sms("track €€€");
        assert!(
            nothing.contains("TRACK"),
            "help names the keywords: {nothing}"
        );
    }

    #[test]
    fn keywords_fold_case_accents_and_punctuation() {
        assert_eq!(fold("Suivi"), "SUIVI");
        assert_eq!(fold("  sùivi. "), "SUIVI");
        assert_eq!(fold("Ndèye"), "NDEYE");
    }
}
