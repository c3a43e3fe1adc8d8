//! Every message of every catalogue in `locales/`, rendered with sample
//! arguments (and a number for every plural category of the language),
//! checked against the USSD screen and SMS budgets and the characters that
//! silently force UCS-2.
//!
//! Run with `--nocapture` to see the summary table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use guichet_ussd_gateway::i18n::{Arg, Catalog};
use guichet_ussd_gateway::text::{self, Encoding, Menu, Nav, UssdLimit, KEY_BACK, KEY_MORE};
use intl_pluralrules::{PluralCategory, PluralRuleType, PluralRules};
use unic_langid::LanguageIdentifier;

const REFERENCE: &str = "3170000428";
const PHONE: &str = "+221771234567";
/// About 20 characters, like most service names.
const SERVICE: &str = "Extrait de naissance";
/// About 15 characters.
const LOCALITY: &str = "Guediawaye Nord";
const MEDIATOR: &str = "Awa Ndiaye Sarr";

const STATUSES: [&str; 7] = [
    "received",
    "assigned",
    "in_progress",
    "waiting_for_citizen",
    "resolved",
    "closed",
    "cancelled",
];
const MAIN_ITEMS: [&str; 6] = [
    "main-new",
    "main-track",
    "main-mine",
    "main-rate",
    "main-language",
    "main-mediator",
];
const KEYWORDS: [&str; 6] = [
    "keyword-track",
    "keyword-rate",
    "keyword-stop",
    "keyword-help",
    "keyword-yes",
    "keyword-no",
];
const FORBIDDEN: [(char, &str); 12] = [
    ('\u{2068}', "isolation mark U+2068"),
    ('\u{2069}', "isolation mark U+2069"),
    ('\u{00A0}', "no-break space U+00A0"),
    ('\u{202F}', "narrow no-break space U+202F"),
    ('\u{2018}', "curly quote ‘"),
    ('\u{2019}', "curly quote ’"),
    ('\u{201C}', "curly quote “"),
    ('\u{201D}', "curly quote ”"),
    ('\u{2026}', "ellipsis …"),
    ('\u{2013}', "en dash –"),
    ('\u{2014}', "em dash —"),
    ('\t', "TAB"),
];

/// Letters of the language that GSM-7 lacks: the only acceptable reasons for
/// an en, fr or sw message to be UCS-2.
fn own_non_gsm_letters(lang: &str) -> Option<&'static str> {
    match lang {
        "en" | "sw" => Some(""),
        "fr" => Some("çâêîôûœëïÿÀÂÈÊËÎÏÔÙÛŸŒ"),
        _ => None,
    }
}

fn catalog() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
    Catalog::load(&dir, "en").unwrap_or_else(|e| panic!("{e}"))
}

fn languages(c: &Catalog) -> Vec<String> {
    c.languages().into_iter().map(|(code, _)| code).collect()
}

fn category_name(c: PluralCategory) -> &'static str {
    match c {
        PluralCategory::ZERO => "zero",
        PluralCategory::ONE => "one",
        PluralCategory::TWO => "two",
        PluralCategory::FEW => "few",
        PluralCategory::MANY => "many",
        PluralCategory::OTHER => "other",
    }
}

/// A sample integer for every plural category of `lang` (from CLDR via
/// intl_pluralrules), plus 12 for width.
fn plural_samples(lang: &str) -> Vec<(String, i64)> {
    let id: LanguageIdentifier = lang.parse().unwrap();
    let rules = PluralRules::create(id, PluralRuleType::CARDINAL).unwrap();
    let mut out: Vec<(String, i64)> = Vec::new();
    for n in 0..1000i64 {
        let cat = category_name(rules.select(n).unwrap());
        if !out.iter().any(|(c, _)| c == cat) {
            out.push((cat.to_string(), n));
        }
    }
    out.push(("other".into(), 12));
    out
}

fn plural_categories(lang: &str) -> BTreeSet<String> {
    plural_samples(lang).into_iter().map(|(c, _)| c).collect()
}

#[derive(Clone, Debug)]
enum Val {
    S(String),
    N(i64),
    /// Another message of the same language (statuses), passed as
    /// `Arg::Msg` so that it is rendered the same way (GSM-7 fallback or not).
    M(String),
}

/// One set of sample arguments, with a label for error messages.
type Sample = (String, Vec<(String, Val)>);

fn render(
    c: &Catalog,
    lang: &str,
    id: &str,
    args: &[(String, Val)],
    gsm7: bool,
) -> Result<String, String> {
    let args: Vec<(&str, Arg)> = args
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                match v {
                    Val::S(s) => Arg::Str(s),
                    Val::N(n) => Arg::Num(*n),
                    Val::M(m) => Arg::Msg(m),
                },
            )
        })
        .collect();
    if gsm7 {
        Ok(c.text_gsm7_fallback(lang, id, &args))
    } else {
        c.text_strict(lang, id, &args).map_err(|e| e.to_string())
    }
}

fn strict(c: &Catalog, lang: &str, id: &str) -> String {
    c.text_strict(lang, id, &[]).unwrap_or_default()
}

/// Every combination of sample arguments message `id` of `lang` needs.
fn samples(c: &Catalog, lang: &str, id: &str, failures: &mut Vec<String>) -> Vec<Sample> {
    let info = c.message_info(lang, id).unwrap_or_default();
    let keywords: Vec<String> = KEYWORDS.iter().map(|k| strict(c, lang, k)).collect();
    let longest_keyword = keywords
        .iter()
        .max_by_key(|k| k.len())
        .cloned()
        .unwrap_or_default();
    let mut sets: Vec<Sample> = vec![(String::new(), Vec::new())];
    for var in &info.variables {
        let values: Vec<(String, Vec<(String, Val)>)> = match var.as_str() {
            "reference" => vec![(String::new(), vec![(var.clone(), Val::S(REFERENCE.into()))])],
            "phone" => vec![(String::new(), vec![(var.clone(), Val::S(PHONE.into()))])],
            "service" => vec![(String::new(), vec![(var.clone(), Val::S(SERVICE.into()))])],
            "locality" => vec![(String::new(), vec![(var.clone(), Val::S(LOCALITY.into()))])],
            "mediator" => vec![(String::new(), vec![(var.clone(), Val::S(MEDIATOR.into()))])],
            "keyword" => vec![(
                String::new(),
                vec![(var.clone(), Val::S(longest_keyword.clone()))],
            )],
            "track" | "rate" | "stop" | "help" | "yes" | "no" => vec![(
                String::new(),
                vec![(
                    var.clone(),
                    Val::S(strict(c, lang, &format!("keyword-{var}"))),
                )],
            )],
            // status and next go together: one set per status.
            "status" | "next" => {
                if sets
                    .iter()
                    .any(|(_, a)| a.iter().any(|(k, _)| k == "status"))
                {
                    continue;
                }
                STATUSES
                    .iter()
                    .map(|s| {
                        (
                            format!(" status={s}"),
                            vec![
                                ("status".to_string(), Val::M(format!("status-{s}"))),
                                ("next".to_string(), Val::M(format!("next-{s}"))),
                            ],
                        )
                    })
                    .collect()
            }
            "count" => plural_samples(lang)
                .into_iter()
                .map(|(cat, n)| {
                    (
                        format!(" count={n} ({cat})"),
                        vec![(var.clone(), Val::N(n))],
                    )
                })
                .collect(),
            other => {
                failures.push(format!(
                    "{lang} {id}: unknown variable ${other} (add a sample to tests/locales.rs)"
                ));
                vec![(String::new(), vec![(var.clone(), Val::S("x".into()))])]
            }
        };
        sets = sets
            .into_iter()
            .flat_map(|(label, args)| {
                values.iter().map(move |(l, extra)| {
                    let mut args = args.clone();
                    args.extend(extra.iter().cloned());
                    (format!("{label}{l}"), args)
                })
            })
            .collect();
    }
    sets
}

#[derive(Default)]
struct Stats {
    messages: usize,
    ucs2: usize,
    longest_screen: (f64, usize, usize, String),
    worst_sms: (usize, usize, String),
    worst_sms_fallback: usize,
    over_if_ucs2: BTreeSet<String>,
}

impl Stats {
    fn screen(&mut self, text: &str, what: &str, limit: UssdLimit) {
        let units = text::units(text);
        let max = limit.for_encoding(text::encoding(text));
        let ratio = units as f64 / max as f64;
        if ratio > self.longest_screen.0 {
            self.longest_screen = (ratio, units, max, what.to_string());
        }
    }
}

fn check_text(lang: &str, what: &str, s: &str, failures: &mut Vec<String>) {
    check_text_with(lang, what, s, true, failures)
}

fn check_text_with(lang: &str, what: &str, s: &str, gsm_rule: bool, failures: &mut Vec<String>) {
    for (c, name) in FORBIDDEN {
        if s.contains(c) {
            failures.push(format!("{lang} {what}: contains {name}: {s:?}"));
        }
    }
    if let Some(allowed) = own_non_gsm_letters(lang).filter(|_| gsm_rule) {
        let bad: String = text::non_gsm7_chars(s)
            .into_iter()
            .filter(|c| !allowed.contains(*c))
            .collect();
        if !bad.is_empty() {
            failures.push(format!(
                "{lang} {what}: UCS-2 forced by {bad:?}, not a letter of the language: {s:?}"
            ));
        }
    }
}

fn check_screen(
    lang: &str,
    what: &str,
    s: &str,
    string_args: bool,
    limit: UssdLimit,
    stats: &mut Stats,
    failures: &mut Vec<String>,
) {
    // The language menu shows other languages' names ("Français"): it may be UCS-2.
    check_text_with(lang, what, s, !what.contains("language menu"), failures);
    // Would it still fit if an argument (a Pulaar service name, a Wolof
    // locality...) forced UCS-2? Reported, not enforced.
    if string_args && s.encode_utf16().count() > limit.ucs2_units {
        stats
            .over_if_ucs2
            .insert(what.split(' ').next().unwrap_or(what).to_string());
    }
    stats.screen(s, what, limit);
    if !text::fits_ussd(s, &limit) {
        let m = text::measure(s, &limit);
        failures.push(format!(
            "{lang} {what}: {} units in {:?} > {} (one USSD screen){}: {s:?}",
            m.units,
            m.encoding,
            limit.for_encoding(m.encoding),
            if m.non_gsm7.is_empty() {
                String::new()
            } else {
                format!(
                    ", UCS-2 because of {:?}",
                    m.non_gsm7.iter().collect::<String>()
                )
            }
        ));
    }
}

#[test]
fn every_locale_fits_its_budgets() {
    let c = catalog();
    let limit = UssdLimit::default();
    let langs = languages(&c);
    for expected in ["wo", "ff", "bm", "ha", "sw", "fr", "en"] {
        assert!(
            langs.iter().any(|l| l == expected),
            "locales/{expected}.ftl is missing"
        );
    }
    let en_ids: BTreeSet<String> = c.message_ids("en").into_iter().collect();
    let mut failures = Vec::new();
    let mut table = BTreeMap::new();

    for lang in &langs {
        let lang = lang.as_str();
        let ids = c.message_ids(lang);
        let id_set: BTreeSet<String> = ids.iter().cloned().collect();
        for missing in en_ids.difference(&id_set) {
            failures.push(format!("{lang}: missing message {missing}"));
        }
        for extra in id_set.difference(&en_ids) {
            failures.push(format!("{lang}: message {extra} is not in en.ftl"));
        }
        let categories = plural_categories(lang);
        let mut stats = Stats {
            messages: ids.len(),
            ..Stats::default()
        };

        for id in &ids {
            let info = c.message_info(lang, id).unwrap_or_default();
            if let Some(en_info) = c.message_info("en", id) {
                for v in &info.variables {
                    if !en_info.variables.contains(v) {
                        failures.push(format!("{lang} {id}: variable ${v} is not in en.ftl"));
                    }
                }
            }
            for (var, keys) in &info.selectors {
                for key in keys {
                    if key.parse::<f64>().is_err() && !categories.contains(key) {
                        failures.push(format!(
                            "{lang} {id}: [{key}] on ${var} is not a plural category of {lang} ({categories:?})"
                        ));
                    }
                }
            }

            let is_sms = id.starts_with("sms-");
            let is_keyword = id.starts_with("keyword-");
            let mut ucs2 = false;
            for (label, args) in samples(&c, lang, id, &mut failures) {
                let what = format!("{id}{label}");
                let s = match render(&c, lang, id, &args, false) {
                    Ok(s) => s,
                    Err(e) => {
                        failures.push(format!("{lang} {what}: {e}"));
                        continue;
                    }
                };
                ucs2 |= text::encoding(&s) == Encoding::Ucs2;
                if is_keyword {
                    check_text(lang, &what, &s, &mut failures);
                    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                        failures.push(format!(
                            "{lang} {id}: keyword {s:?} must be one word of ASCII letters"
                        ));
                    }
                } else if is_sms {
                    check_text(lang, &what, &s, &mut failures);
                    let parts = text::sms_segments(&s);
                    if parts.len() > 2 {
                        failures.push(format!(
                            "{lang} {what}: {} SMS parts ({} units, {:?}) > 2: {s:?}",
                            parts.len(),
                            text::units(&s),
                            text::encoding(&s)
                        ));
                    }
                    let units = text::units(&s);
                    if (parts.len(), units) > (stats.worst_sms.0, stats.worst_sms.1) {
                        stats.worst_sms = (parts.len(), units, id.clone());
                    }
                    // With the language's GSM-7 fallback, every template letter
                    // must be covered (the arguments here are ASCII).
                    let f = render(&c, lang, id, &args, true).unwrap();
                    let left = text::non_gsm7_chars(&f);
                    if !left.is_empty() {
                        failures.push(format!(
                            "{lang} {what}: GSM-7 fallback leaves {:?}: {f:?}",
                            left.iter().collect::<String>()
                        ));
                    }
                    stats.worst_sms_fallback =
                        stats.worst_sms_fallback.max(text::sms_segments(&f).len());
                } else {
                    let string_args = info.variables.iter().any(|v| v != "count");
                    check_screen(
                        lang,
                        &what,
                        &s,
                        string_args,
                        limit,
                        &mut stats,
                        &mut failures,
                    );
                }
            }
            stats.ucs2 += usize::from(ucs2);
        }

        for (k, kw) in KEYWORDS.iter().enumerate() {
            let mine = strict(&c, lang, kw).to_uppercase();
            for (j, other) in KEYWORDS.iter().enumerate() {
                if j == k {
                    continue;
                }
                if strict(&c, lang, other).to_uppercase() == mine {
                    failures.push(format!("{lang}: {kw} and {other} are both {mine}"));
                }
                // English keywords are always accepted too: they must not clash.
                if strict(&c, "en", other).to_uppercase() == mine {
                    failures.push(format!("{lang}: {kw} = {mine} is English {other}"));
                }
            }
        }

        // Composed screens: title + numbered items on one screen, and the
        // gateway's menu renderer must agree that they need no second page.
        let t = |id: &str| strict(&c, lang, id);
        let nav = Nav {
            more: format!("{KEY_MORE} {}", t("nav-more")),
            back: format!("{KEY_BACK} {}", t("nav-back")),
        };
        let mut menu_failures = Vec::new();
        let mut menu = |title: String, items: &[String]| {
            let mut s = title.clone();
            let mut m = Menu::new(title);
            for (i, item) in items.iter().enumerate() {
                s.push_str(&format!("\n{} {item}", i + 1));
                m.push((i + 1).to_string(), item);
            }
            let pages = m.render(&nav, &limit);
            if pages != [s.clone()] {
                menu_failures.push(format!(
                    "{lang}: menu renders as {} page(s): {pages:?}",
                    pages.len()
                ));
            }
            s
        };
        let main_items: Vec<String> = MAIN_ITEMS.iter().map(|i| t(i)).collect();
        let screen = menu(t("main-menu-title"), &main_items);
        check_screen(
            lang,
            "screen: main menu",
            &screen,
            false,
            limit,
            &mut stats,
            &mut failures,
        );
        let screen = menu(
            t("resume-offer"),
            &[t("resume-continue"), t("resume-restart")],
        );
        check_screen(
            lang,
            "screen: resume",
            &screen,
            false,
            limit,
            &mut stats,
            &mut failures,
        );
        let confirm = render(
            &c,
            lang,
            "confirm-request",
            &[
                ("service".into(), Val::S(SERVICE.into())),
                ("locality".into(), Val::S(LOCALITY.into())),
            ],
            false,
        )
        .unwrap_or_default();
        let screen = menu(confirm, &[t("confirm-yes"), t("confirm-no")]);
        check_screen(
            lang,
            "screen: confirm",
            &screen,
            true,
            limit,
            &mut stats,
            &mut failures,
        );
        let names: Vec<String> = c.languages().into_iter().map(|(_, name)| name).collect();
        let screen = menu(t("language-menu"), &names);
        check_screen(
            lang,
            "screen: language menu",
            &screen,
            false,
            limit,
            &mut stats,
            &mut failures,
        );
        failures.extend(menu_failures);

        table.insert(lang.to_string(), stats);
    }

    println!();
    println!("locale | msgs | UCS-2 | longest USSD screen (units/limit)        | worst SMS (parts, units)    | SMS parts w/ fallback | screens > 80 if args were UCS-2");
    for lang in &langs {
        let s = &table[lang];
        println!(
            "{lang:6} | {:4} | {:5} | {:3}/{:3} {:33} | {} {:3} {:22} | {:21} | {}",
            s.messages,
            s.ucs2,
            s.longest_screen.1,
            s.longest_screen.2,
            s.longest_screen.3,
            s.worst_sms.0,
            s.worst_sms.1,
            s.worst_sms.2,
            s.worst_sms_fallback,
            s.over_if_ucs2.iter().cloned().collect::<Vec<_>>().join(" "),
        );
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn native_language_names() {
    let c = catalog();
    let names: Vec<(String, String)> = c.languages();
    let expected = [
        ("wo", "Wolof"),
        ("ff", "Pulaar"),
        ("bm", "Bamanankan"),
        ("ha", "Hausa"),
        ("sw", "Kiswahili"),
        ("fr", "Français"),
        ("en", "English"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn languages_use_their_own_letters() {
    // A catalogue written without its letters (Wolof ë, Pulaar ɓ ɗ, Bambara
    // ɛ ɔ, Hausa ɓ ɗ ƙ) was probably typed on a keyboard that lacked them.
    let c = catalog();
    for (lang, letters) in [("wo", "ëñ"), ("ff", "ɓɗ"), ("bm", "ɛɔ"), ("ha", "ɓɗƙ")] {
        let all: String = c
            .message_ids(lang)
            .iter()
            .map(|id| c.text(lang, id, &[]))
            .collect();
        for l in letters.chars() {
            assert!(all.contains(l), "{lang} never uses {l}");
        }
    }
}
