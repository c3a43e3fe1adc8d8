//! The exact cost of a text on a USSD screen and in SMS.
//!
//! Every function normalises its input to NFC first: a decomposed `é`
//! (`e` + U+0301) is not in the GSM 03.38 alphabet and would force UCS-2.
//!
//! * GSM-7: the GSM 03.38 default alphabet costs 1 septet per character, its
//!   extension table (form feed, `^ { } \ [ ~ ] |`, `€`) 2 septets (ESC + code).
//! * UCS-2: as soon as one character is outside GSM-7, the whole text is sent
//!   as UTF-16; a character outside the BMP (an emoji) costs 2 units.
//! * SMS: 160 septets / 70 units in one message, 153 / 67 per part once
//!   concatenated; a part never splits an escape pair or a surrogate pair.
//! * USSD: one screen holds 182 GSM-7 characters or 80 UTF-16 units
//!   ([`UssdLimit`]), there is no concatenation: [`Menu`] and [`wrap_pages`]
//!   paginate with the common `98` more / `0` back / `00` menu convention.

use std::borrow::Cow;

use serde::Serialize;
use unicode_normalization::{is_nfc, UnicodeNormalization};

/// How an SMS or USSD text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// GSM 03.38 default alphabet (+ extension table), 7 bits per character.
    Gsm7,
    /// UTF-16 (called UCS-2 by operators), 16 bits per unit.
    Ucs2,
}

/// Septets in a single (unconcatenated) GSM-7 SMS.
pub const SMS_GSM7_SINGLE: usize = 160;
/// Septets in one part of a concatenated GSM-7 SMS (the UDH takes the rest).
pub const SMS_GSM7_PART: usize = 153;
/// UTF-16 units in a single UCS-2 SMS.
pub const SMS_UCS2_SINGLE: usize = 70;
/// UTF-16 units in one part of a concatenated UCS-2 SMS.
pub const SMS_UCS2_PART: usize = 67;

/// Menu key for "next page" (common USSD convention): `Nav::more` starts with it.
pub const KEY_MORE: &str = "98";
/// Menu key for "previous page / previous screen".
pub const KEY_BACK: &str = "0";
/// Menu key for "main menu".
pub const KEY_HOME: &str = "00";

/// Returns `text` in NFC, borrowing when it already is.
pub fn nfc(text: &str) -> Cow<'_, str> {
    if is_nfc(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// Septets `c` costs in GSM-7 (1, or 2 for the extension table), `None` if
/// the character is not in GSM 03.38 at all. `c` must already be NFC.
pub fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // 0x00-0x0F
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
        | 'Å' | 'å'
        // 0x10-0x1F (0x1B is ESC, not a character)
        | '\u{0394}' | '_' | '\u{03A6}' | '\u{0393}' | '\u{039B}' | '\u{03A9}' | '\u{03A0}'
        | '\u{03A8}' | '\u{03A3}' | '\u{0398}' | '\u{039E}' | 'Æ' | 'æ' | 'ß' | 'É'
        // 0x20-0x3F (0x24 is ¤, not $)
        | ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ','
        | '-' | '.' | '/' | '0'..='9' | ':' | ';' | '<' | '=' | '>' | '?'
        // 0x40-0x7F
        | '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'a'..='z' | 'ä' | 'ö' | 'ñ'
        | 'ü' | 'à' => Some(1),
        // Extension table: ESC + code.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Whether `c` (NFC) is in the GSM 03.38 default alphabet or extension table.
pub fn is_gsm7(c: char) -> bool {
    gsm7_septets(c).is_some()
}

/// The encoding `text` needs: GSM-7 if every character (after NFC) is in
/// GSM 03.38, UCS-2 otherwise.
pub fn encoding(text: &str) -> Encoding {
    if nfc(text).chars().all(is_gsm7) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The characters (after NFC) that are not in GSM-7, each once, in order of
/// first appearance: what forces a text into UCS-2.
pub fn non_gsm7_chars(text: &str) -> Vec<char> {
    let mut out = Vec::new();
    for c in nfc(text).chars() {
        if !is_gsm7(c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Encoding and the cost of every character in it.
fn char_costs(text: &str) -> (Encoding, Vec<usize>) {
    let text = nfc(text);
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match gsm {
        Some(costs) => (Encoding::Gsm7, costs),
        None => (Encoding::Ucs2, text.chars().map(char::len_utf16).collect()),
    }
}

/// Encoding and total cost of `text`, as `char_costs` without the list:
/// menus measure a dozen candidate screens per hop.
fn cost(text: &str) -> (Encoding, usize) {
    let text = nfc(text);
    match text.chars().map(gsm7_septets).sum::<Option<usize>>() {
        Some(septets) => (Encoding::Gsm7, septets),
        None => (Encoding::Ucs2, text.encode_utf16().count()),
    }
}

/// Cost of `text`: septets for GSM-7 (extension characters count 2), UTF-16
/// code units for UCS-2 (a surrogate pair counts 2).
pub fn units(text: &str) -> usize {
    cost(text).1
}

/// Size in units of each SMS part `text` is sent as: one part up to 160
/// septets / 70 units, otherwise parts of at most 153 / 67 that never split
/// an escape pair or a surrogate pair. An empty text is one empty part.
pub fn sms_segments(text: &str) -> Vec<usize> {
    let (enc, costs) = char_costs(text);
    let total: usize = costs.iter().sum();
    let (single, part) = match enc {
        Encoding::Gsm7 => (SMS_GSM7_SINGLE, SMS_GSM7_PART),
        Encoding::Ucs2 => (SMS_UCS2_SINGLE, SMS_UCS2_PART),
    };
    if total <= single {
        return vec![total];
    }
    let mut parts = Vec::new();
    let mut current = 0;
    for cost in costs {
        if current + cost > part {
            parts.push(current);
            current = 0;
        }
        current += cost;
    }
    if current > 0 {
        parts.push(current);
    }
    parts
}

/// What one USSD screen holds. Some operators cut earlier: keep it configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UssdLimit {
    /// GSM-7 septets per screen (182 = 160 octets).
    pub gsm7_chars: usize,
    /// UTF-16 units per screen once any character is outside GSM-7 (80 = 160 octets).
    pub ucs2_units: usize,
}

impl Default for UssdLimit {
    fn default() -> Self {
        UssdLimit {
            gsm7_chars: 182,
            ucs2_units: 80,
        }
    }
}

impl UssdLimit {
    /// The budget for a text in `encoding`.
    pub fn for_encoding(&self, encoding: Encoding) -> usize {
        match encoding {
            Encoding::Gsm7 => self.gsm7_chars,
            Encoding::Ucs2 => self.ucs2_units,
        }
    }
}

/// Whether `text` fits on one USSD screen.
pub fn fits_ussd(text: &str, limit: &UssdLimit) -> bool {
    let (enc, units) = cost(text);
    units <= limit.for_encoding(enc)
}

/// Everything a message writer needs to know about a text
/// (`guichet-ussd-gateway measure TEXT` prints it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measure {
    /// `"gsm7"` or `"ucs2"`.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Size of each SMS part, in the same units.
    pub segments: Vec<usize>,
    /// Whether it fits one USSD screen under the given limit.
    pub fits_ussd: bool,
    /// The characters that forced UCS-2 (empty for GSM-7).
    pub non_gsm7: Vec<char>,
}

impl Measure {
    /// Pretty JSON, as the `measure` subcommand prints it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Measures `text` (after NFC) for SMS and for a USSD screen of `limit`.
pub fn measure(text: &str, limit: &UssdLimit) -> Measure {
    let (encoding, costs) = char_costs(text);
    let units: usize = costs.iter().sum();
    Measure {
        encoding,
        units,
        segments: sms_segments(text),
        fits_ussd: units <= limit.for_encoding(encoding),
        non_gsm7: non_gsm7_chars(text),
    }
}

// ---------------------------------------------------------------------------
// GSM-7 fallback (transliteration)
// ---------------------------------------------------------------------------

/// Typography that has a plain GSM-7 equivalent in every language.
const COMMON_FALLBACK: &[(char, &str)] = &[
    ('\u{2019}', "'"),  // ’ right single quote (Swahili n’ombe)
    ('\u{2018}', "'"),  // ‘
    ('\u{02BC}', "'"),  // ʼ modifier apostrophe (Hausa ʼy in Nigeria)
    ('`', "'"),         // backtick is not GSM-7
    ('\u{201C}', "\""), // “
    ('\u{201D}', "\""), // ”
    ('«', "\""),
    ('»', "\""),
    ('\u{2026}', "..."), // …
    ('\u{2013}', "-"),   // –
    ('\u{2014}', "-"),   // —
    ('\u{00A0}', " "),   // no-break space
    ('\u{202F}', " "),   // narrow no-break space
    ('\u{2009}', " "),   // thin space
    ('\t', " "),
    ('\u{2068}', ""), // first strong isolate
    ('\u{2069}', ""), // pop directional isolate
];

const FR_FALLBACK: &[(char, &str)] = &[
    ('ç', "c"),
    ('â', "a"),
    ('ê', "e"),
    ('î', "i"),
    ('ô', "o"),
    ('û', "u"),
    ('œ', "oe"),
    ('ë', "e"),
    ('ï', "i"),
    ('ÿ', "y"),
    // Upper case: only É, Ç, Æ, Ä, Ö, Ü, Ñ, Å, Ø are in GSM-7.
    ('À', "A"),
    ('Â', "A"),
    ('È', "E"),
    ('Ê', "E"),
    ('Ë', "E"),
    ('Î', "I"),
    ('Ï', "I"),
    ('Ô', "O"),
    ('Ù', "U"),
    ('Û', "U"),
    ('Ÿ', "Y"),
    ('Œ', "Oe"),
];

const WO_FALLBACK: &[(char, &str)] = &[
    ('ë', "e"),
    ('ó', "o"),
    ('ŋ', "ng"),
    ('Ë', "E"),
    ('Ó', "O"),
    ('Ŋ', "Ng"),
    ('À', "A"),
];

const FF_FALLBACK: &[(char, &str)] = &[
    ('ɓ', "b"),
    ('ɗ', "d"),
    ('ŋ', "ng"),
    ('ƴ', "'y"),
    ('ɲ', "ñ"), // Mali/Guinea spelling of Senegal's ñ
    ('Ɓ', "B"),
    ('Ɗ', "D"),
    ('Ŋ', "Ng"),
    ('Ƴ', "'Y"),
    ('Ɲ', "Ñ"),
];

const BM_FALLBACK: &[(char, &str)] = &[
    ('ɛ', "è"), // pre-1982 spelling
    ('ɔ', "ò"),
    ('ɲ', "ny"),
    ('ŋ', "ng"),
    ('Ɛ', "E"), // È and Ò are not in GSM-7
    ('Ɔ', "O"),
    ('Ɲ', "Ny"),
    ('Ŋ', "Ng"),
];

const HA_FALLBACK: &[(char, &str)] = &[
    ('ɓ', "b"),
    ('ɗ', "d"),
    ('ƙ', "k"),
    ('ƴ', "'y"),
    ('Ɓ', "B"),
    ('Ɗ', "D"),
    ('Ƙ', "K"),
    ('Ƴ', "'Y"),
];

/// The per-language transliteration table used by [`gsm7_fallback`] (letters
/// only; [`gsm7_fallback`] also applies a table of typography common to all
/// languages). `lang` may carry a region (`fr-SN`).
pub fn fallback_table(lang: &str) -> &'static [(char, &'static str)] {
    match primary_subtag(lang).as_str() {
        "fr" => FR_FALLBACK,
        "wo" => WO_FALLBACK,
        "ff" => FF_FALLBACK,
        "bm" => BM_FALLBACK,
        "ha" => HA_FALLBACK,
        _ => &[],
    }
}

fn primary_subtag(lang: &str) -> String {
    lang.split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Transliterates `text` to GSM-7 with `lang`'s table (e.g. Wolof `ë→e`,
/// `ŋ→ng`; Bambara `ɛ→è`; Hausa `ƙ→k`) plus common typography (`’→'`, `…→...`,
/// NBSP → space). Characters without an entry are kept, so the result may
/// still need UCS-2.
///
/// Transliteration loses meaning (Hausa `doki` horse / `ɗoki` enthusiasm):
/// apply it only to template text, never to names or references. The i18n
/// layer does exactly that (`Catalog::text_gsm7_fallback` transliterates the
/// pattern and inserts the arguments untouched).
pub fn gsm7_fallback(lang: &str, text: &str) -> String {
    let text = nfc(text);
    let table = fallback_table(lang);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let replacement = table
            .iter()
            .chain(COMMON_FALLBACK)
            .find(|(from, _)| *from == c)
            .map(|(_, to)| *to);
        match replacement {
            None => out.push(c),
            Some(to) => {
                // Ŋ before an upper-case letter (ŊOOR) gives NG, otherwise Ng.
                let all_caps = c.is_uppercase()
                    && to.chars().filter(|t| t.is_alphabetic()).count() > 1
                    && chars.get(i + 1).is_some_and(|n| n.is_uppercase());
                if all_caps {
                    out.extend(to.chars().flat_map(char::to_uppercase));
                } else {
                    out.push_str(to);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// USSD pages
// ---------------------------------------------------------------------------

/// The localized navigation lines of a paginated menu, key included
/// (`"98 More"`, `"0 Back"`: build them with [`KEY_MORE`] and [`KEY_BACK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nav {
    /// Last line of every page but the last, e.g. `"98 More"`.
    pub more: String,
    /// Line on every page but the first, e.g. `"0 Back"`.
    pub back: String,
}

/// A numbered USSD menu: a title and items `"<key> <label>"`, paginated so
/// that each page fits one screen.
///
/// Page layout: the title (first page only), the items, then the `back` line
/// (pages after the first), the home line if set ([`Menu::home`]), and the
/// `more` line last on every page but the last. Items are never split across
/// pages; an item too long for a screen on its own is cut after a whole word
/// and ends with `..`; so is a title that leaves no room for the first item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    title: String,
    items: Vec<(String, String)>,
    home: Option<String>,
}

impl Menu {
    /// A menu with a title (may be empty) and no items yet.
    pub fn new(title: impl Into<String>) -> Self {
        Menu {
            title: title.into(),
            items: Vec::new(),
            home: None,
        }
    }

    /// Adds an item (builder style).
    pub fn item(mut self, key: impl Into<String>, label: impl Into<String>) -> Self {
        self.push(key, label);
        self
    }

    /// Adds an item.
    pub fn push(&mut self, key: impl Into<String>, label: impl Into<String>) {
        self.items.push((key.into(), label.into()));
    }

    /// Adds a home line (e.g. `"00 Menu"`, see [`KEY_HOME`]) to every page.
    pub fn home(mut self, line: impl Into<String>) -> Self {
        self.home = Some(line.into());
        self
    }

    /// The items as `(key, label)`.
    pub fn items(&self) -> &[(String, String)] {
        &self.items
    }

    /// The pages of this menu, each fitting one screen of `limit`.
    pub fn render(&self, nav: &Nav, limit: &UssdLimit) -> Vec<String> {
        let more = nfc(nav.more.trim()).into_owned();
        let back = nfc(nav.back.trim()).into_owned();
        let home = self.home.as_ref().map(|h| nfc(h.trim()).into_owned());
        let lines: Vec<String> = self
            .items
            .iter()
            .map(|(k, l)| format!("{k} {}", nfc(l.trim())))
            .collect();
        let compose = |title: Option<&str>, items: &[String], first: bool, last: bool| {
            let mut out: Vec<&str> = Vec::new();
            if let Some(t) = title {
                out.push(t);
            }
            out.extend(items.iter().map(String::as_str));
            if !first {
                out.push(&back);
            }
            if let Some(h) = &home {
                out.push(h);
            }
            if !last {
                out.push(&more);
            }
            out.join("\n")
        };

        let mut title = nfc(self.title.trim()).into_owned();
        if !title.is_empty()
            && !fits_ussd(&compose(Some(&title), &[], true, lines.is_empty()), limit)
        {
            // Cut the title so that the first item still fits under it, or
            // failing that so that it fits alone.
            let first_item = &lines[..lines.len().min(1)];
            let last = lines.len() <= 1;
            let with_item = |t: &str| fits_ussd(&compose(Some(t), first_item, true, last), limit);
            title = truncate_words(&title, with_item);
            if !with_item(&title) {
                let last = lines.is_empty();
                title = truncate_words(&nfc(self.title.trim()), |t| {
                    fits_ussd(&compose(Some(t), &[], true, last), limit)
                });
            }
        }

        let mut pages = Vec::new();
        let mut rest: &[String] = &lines;
        loop {
            let first = pages.is_empty();
            let header = (first && !title.is_empty()).then_some(title.as_str());
            if fits_ussd(&compose(header, rest, first, true), limit) || rest.is_empty() {
                pages.push(compose(header, rest, first, true));
                break;
            }
            let mut k = 0;
            while k < rest.len() && fits_ussd(&compose(header, &rest[..=k], first, false), limit) {
                k += 1;
            }
            if k > 0 {
                pages.push(compose(header, &rest[..k], first, false));
                rest = &rest[k..];
                continue;
            }
            // Not even one item fits here.
            let last = rest.len() == 1;
            if header.is_some() && fits_ussd(&compose(None, &rest[..1], false, last), limit) {
                // The title takes the room: give it a page of its own.
                pages.push(compose(header, &[], first, false));
                continue;
            }
            let (key, label) = &self.items[self.items.len() - rest.len()];
            let prefix = format!("{key} ");
            let cut = truncate_words(nfc(label).trim(), |l| {
                let line = [format!("{prefix}{l}")];
                fits_ussd(&compose(header, &line, first, last), limit)
            });
            let line = [format!("{prefix}{cut}")];
            pages.push(compose(header, &line, first, last));
            rest = &rest[1..];
            if rest.is_empty() {
                break;
            }
        }
        pages
    }
}

/// Cuts `text` after the last whole word such that `fits(cut + "..")`;
/// falls back to a character cut when not even one word fits.
fn truncate_words(text: &str, fits: impl Fn(&str) -> bool) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    for n in (1..words.len()).rev() {
        let cut = format!(
            "{}..",
            words[..n]
                .join(" ")
                .trim_end_matches([',', ';', ':', '.', '-'])
        );
        if fits(&cut) {
            return cut;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (0..chars.len()).rev() {
        let cut = format!("{}..", chars[..n].iter().collect::<String>());
        if fits(&cut) {
            return cut;
        }
    }
    "..".to_string()
}

/// Splits a long free text into USSD pages at word boundaries; every page
/// but the last ends with the line `more` (key included, e.g. `"98 More"`,
/// like [`Nav::more`]). Newlines in `text` are kept. A word longer than a
/// screen is cut where it must be.
pub fn wrap_pages(text: &str, limit: &UssdLimit, more: &str) -> Vec<String> {
    let text = nfc(text);
    let more = format!("\n{}", nfc(more.trim()));
    let mut pages = Vec::new();
    let mut rest = text.trim();
    loop {
        if fits_ussd(rest, limit) {
            pages.push(rest.to_string());
            return pages;
        }
        let fits_with_more = |end: usize| fits_ussd(&format!("{}{more}", &rest[..end]), limit);
        // Ends of words: a non-space followed by whitespace.
        let mut best = None;
        let mut prev_space = true;
        for (i, c) in rest.char_indices() {
            let space = c.is_whitespace();
            if space && !prev_space {
                if fits_with_more(i) {
                    best = Some(i);
                } else {
                    break;
                }
            }
            prev_space = space;
        }
        let end = best.unwrap_or_else(|| {
            // One word longer than the screen: cut by characters (at least one).
            let mut end = rest.chars().next().map_or(rest.len(), char::len_utf8);
            for (i, c) in rest.char_indices().skip(1) {
                let next = i + c.len_utf8();
                if !fits_with_more(next) {
                    break;
                }
                end = next;
            }
            end
        });
        pages.push(format!("{}{more}", rest[..end].trim_end()));
        rest = rest[end..].trim_start();
        if rest.is_empty() {
            return pages;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: UssdLimit = UssdLimit {
        gsm7_chars: 182,
        ucs2_units: 80,
    };

    #[test]
    fn alphabet_traps() {
        for c in [
            '@', '$', '£', '¥', '¤', 'Ç', 'É', 'à', 'ñ', 'ß', '\u{0394}', '_', '\n',
        ] {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{0C}'] {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        for c in [
            '`', 'ç', '\t', '\u{A0}', '\u{202F}', '’', '“', '”', '…', '–', '—', 'ê', 'È', 'À', 'ë',
            'ŋ', 'ɓ', 'ɛ', 'ƙ', '\u{1B}', '\u{2068}',
        ] {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
    }

    #[test]
    fn encoding_and_units() {
        assert_eq!(encoding("Hello @ $5"), Encoding::Gsm7);
        assert_eq!(units("Hello @ $5"), 10);
        assert_eq!(units("5 €"), 4);
        assert_eq!(units("[a]"), 5);
        assert_eq!(units("a\u{0C}b"), 4);
        assert_eq!(encoding("Reçu"), Encoding::Ucs2);
        assert_eq!(units("Reçu"), 4);
        assert_eq!(units("Dëkk"), 4);
        // Precomposed and decomposed é cost the same after NFC.
        assert_eq!(encoding("e\u{301}t\u{e9}"), Encoding::Gsm7);
        assert_eq!(units("e\u{301}t\u{e9}"), 3);
        // Surrogate pair: 2 units; the € then costs 1 unit in UCS-2.
        assert_eq!(encoding("ok 👍"), Encoding::Ucs2);
        assert_eq!(units("ok 👍"), 5);
        assert_eq!(units("€👍"), 3);
        assert_eq!(units(""), 0);
        assert_eq!(encoding(""), Encoding::Gsm7);
        assert_eq!(non_gsm7_chars("ça à ça ê"), vec!['ç', 'ê']);
        assert_eq!(non_gsm7_chars("Jëf"), vec!['ë']);
    }

    #[test]
    fn sms_segments_gsm7() {
        assert_eq!(sms_segments(""), vec![0]);
        assert_eq!(sms_segments(&"a".repeat(160)), vec![160]);
        assert_eq!(sms_segments(&"a".repeat(161)), vec![153, 8]);
        assert_eq!(sms_segments(&"a".repeat(306)), vec![153, 153]);
        assert_eq!(sms_segments(&"a".repeat(307)), vec![153, 153, 1]);
        // 159 + € = 161 septets: concatenated.
        assert_eq!(sms_segments(&format!("{}€", "a".repeat(159))), vec![153, 8]);
        assert_eq!(sms_segments(&format!("{}€", "a".repeat(158))), vec![160]);
        // The escape pair is never split.
        let t = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        assert_eq!(units(&t), 306);
        assert_eq!(sms_segments(&t), vec![152, 153, 1]);
    }

    #[test]
    fn sms_segments_ucs2() {
        assert_eq!(sms_segments(&"ŋ".repeat(70)), vec![70]);
        assert_eq!(sms_segments(&"ŋ".repeat(71)), vec![67, 4]);
        assert_eq!(sms_segments(&"ŋ".repeat(134)), vec![67, 67]);
        // A surrogate pair is never split.
        let t = format!("{}👍{}", "ŋ".repeat(66), "ŋ".repeat(66));
        assert_eq!(units(&t), 134);
        assert_eq!(sms_segments(&t), vec![66, 67, 1]);
        // One ç turns 100 GSM characters into 2 UCS-2 parts.
        assert_eq!(sms_segments(&format!("ç{}", "a".repeat(99))), vec![67, 33]);
    }

    #[test]
    fn ussd_fit() {
        assert!(fits_ussd(&"a".repeat(182), &L));
        assert!(!fits_ussd(&"a".repeat(183), &L));
        assert!(!fits_ussd(&format!("{}€", "a".repeat(181)), &L));
        assert!(fits_ussd(&format!("ŋ{}", "a".repeat(79)), &L));
        assert!(!fits_ussd(&format!("ŋ{}", "a".repeat(80)), &L));
        let small = UssdLimit {
            gsm7_chars: 160,
            ucs2_units: 70,
        };
        assert!(!fits_ussd(&"a".repeat(161), &small));
        assert_eq!(UssdLimit::default(), L);
    }

    #[test]
    fn measure_json() {
        let m = measure("Reçu 5 €", &L);
        assert_eq!(m.encoding, Encoding::Ucs2);
        assert_eq!(m.units, 8);
        assert_eq!(m.segments, vec![8]);
        assert!(m.fits_ussd);
        assert_eq!(m.non_gsm7, vec!['ç']);
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"encoding": "ucs2", "units": 8, "segments": [8],
                "fits_ussd": true, "non_gsm7": ["ç"]})
        );
        let m = measure(&"a".repeat(200), &L);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"encoding": "gsm7", "units": 200, "segments": [153, 47],
                "fits_ussd": false, "non_gsm7": []})
        );
    }

    #[test]
    fn fallback_tables() {
        assert_eq!(
            gsm7_fallback("fr", "Reçu, tâche, être, Œuvre"),
            "Recu, tache, etre, Oeuvre"
        );
        assert_eq!(gsm7_fallback("fr", "À ÉTÉ Ça"), "A ÉTÉ Ça");
        assert_eq!(
            gsm7_fallback("wo", "Jërëjëf, ŋoo Ŋaañ ŊOOR"),
            "Jerejef, ngoo Ngaañ NGOOR"
        );
        assert_eq!(
            gsm7_fallback("ff", "Ɓe ɗaɓɓi ŋoo ƴettu"),
            "Be dabbi ngoo 'yettu"
        );
        assert_eq!(gsm7_fallback("bm", "Ɲɛ ɲɔgɔn ŋɔni"), "Nyè nyògòn ngòni");
        assert_eq!(
            gsm7_fallback("ha", "Ɗan ƙasa ya ɓata ƴaƴa"),
            "Dan kasa ya bata 'ya'ya"
        );
        assert_eq!(
            gsm7_fallback("sw", "Ng’ombe “sawa”…"),
            "Ng'ombe \"sawa\"..."
        );
        // Region subtags and decomposed input.
        assert_eq!(gsm7_fallback("fr-SN", "c\u{327}a"), "ca");
        // Another language's letters are left alone.
        assert_eq!(gsm7_fallback("en", "ŋ ç"), "ŋ ç");
        for lang in ["fr", "wo", "ff", "bm", "ha", "sw", "en"] {
            for (from, to) in fallback_table(lang).iter().chain(COMMON_FALLBACK) {
                assert_eq!(encoding(to), Encoding::Gsm7, "{lang}: {from} -> {to}");
            }
        }
        assert_eq!(
            encoding(&gsm7_fallback("bm", "Ɲɛ ɲɔgɔn ŋɔni ƐƆ")),
            Encoding::Gsm7
        );
    }

    fn nav() -> Nav {
        Nav {
            more: "98 More".into(),
            back: "0 Back".into(),
        }
    }

    #[test]
    fn menu_single_page() {
        let m = Menu::new("Guichet")
            .item("1", "New request")
            .item("2", "Track a request");
        assert_eq!(
            m.render(&nav(), &L),
            vec!["Guichet\n1 New request\n2 Track a request"]
        );
        let m = Menu::new("").home("00 Menu").item("1", "A");
        assert_eq!(m.render(&nav(), &L), vec!["1 A\n00 Menu"]);
    }

    #[test]
    fn menu_pages() {
        // 9 items of 28 characters ("1 " + 26): 30 with the newline.
        let label = "Certificat de residence abc"; // 27 chars
        let mut m = Menu::new("Choose the service:").home("00 Menu");
        for k in 1..=9 {
            m.push(k.to_string(), label);
        }
        let small = UssdLimit {
            gsm7_chars: 120,
            ucs2_units: 80,
        };
        let pages = m.render(&nav(), &small);
        // Page 1: title 19 + 3 * 30 + "\n00 Menu" 8 + "\n98 More" 8 = 125 > 120: 2 items.
        assert_eq!(pages.len(), 4, "{pages:#?}");
        assert_eq!(
            pages[0],
            format!("Choose the service:\n1 {label}\n2 {label}\n00 Menu\n98 More")
        );
        // Middle pages: 3 items (90) + 0 Back 7 + 00 Menu 8 + 98 More 8 = 113.
        assert_eq!(
            pages[1],
            format!("3 {label}\n4 {label}\n5 {label}\n0 Back\n00 Menu\n98 More")
        );
        assert_eq!(pages[3], format!("9 {label}\n0 Back\n00 Menu"));
        for p in &pages {
            assert!(fits_ussd(p, &small), "{p}");
        }
        // Everything fits the default screen on one page? 19 + 9*30 + 8 = 297: no.
        let pages = m.render(&nav(), &L);
        assert_eq!(pages.len(), 2);
        assert!(pages[0].ends_with("\n98 More"));
        // Page 1: 19 + 5 * 30 + 16 = 185 > 182, so 4 items; page 2: the other 5.
        assert!(pages[1].starts_with("5 ") && pages[1].ends_with("0 Back\n00 Menu"));
    }

    #[test]
    fn menu_ucs2_page_budget() {
        // One Pulaar label makes the page UCS-2: 80 units.
        let ff = Nav {
            more: "98 Goɗɗo".into(),
            back: "0 Rutto".into(),
        };
        let m = Menu::new("Suɓo:")
            .item("1", "Ɗaɓɓaande hesere")
            .item("2", "Jokkugol ɗaɓɓaande")
            .item("3", "Ɗaɓɓaande am")
            .item("4", "Hiisa");
        let pages = m.render(&ff, &L);
        for p in &pages {
            assert!(units(p) <= 80, "{p}");
        }
        assert_eq!(pages.len(), 1, "{pages:#?}");
        assert_eq!(units(&pages[0]), 5 + 19 + 21 + 15 + 8);
        let m = m.item("5", "Ɗemngal ngal njiɗ-ɗaa").item("6", "Golle");
        let pages = m.render(&ff, &L);
        assert_eq!(pages.len(), 2, "{pages:#?}");
        assert!(pages[0].ends_with("\n98 Goɗɗo"));
        assert_eq!(pages[1], "5 Ɗemngal ngal njiɗ-ɗaa\n6 Golle\n0 Rutto");
    }

    #[test]
    fn menu_cuts_an_item_too_long_at_a_word() {
        let long = "word ".repeat(60);
        let m = Menu::new("T").item("1", long.trim()).item("2", "Short");
        let pages = m.render(&nav(), &L);
        assert_eq!(pages.len(), 2, "{pages:#?}");
        assert!(pages[0].starts_with("T\n1 word word"));
        assert!(pages[0].ends_with(" word..\n98 More"), "{}", pages[0]);
        assert!(fits_ussd(&pages[0], &L));
        assert_eq!(pages[1], "2 Short\n0 Back");
        // Alone, the item is cut to the last word that fits with "..":
        // "1 " + 35 words (174) + ".." = 178 <= 182.
        let m = Menu::new("").item("1", long.trim());
        let pages = m.render(&nav(), &L);
        assert_eq!(pages.len(), 1);
        assert!(pages[0].ends_with(" word.."));
        assert_eq!(units(&pages[0]), 178);
        // A title that takes the room gets a page of its own.
        let title = "t".repeat(150);
        let m = Menu::new(title.clone()).item("1", "x".repeat(60));
        let pages = m.render(&nav(), &L);
        assert_eq!(
            pages,
            vec![
                format!("{title}\n98 More"),
                format!("1 {}\n0 Back", "x".repeat(60))
            ]
        );
        // A title longer than a screen is cut.
        let m = Menu::new("title ".repeat(40)).item("1", "x");
        let pages = m.render(&nav(), &L);
        assert_eq!(pages.len(), 1);
        assert!(pages[0].ends_with(" title..\n1 x"), "{pages:#?}");
        assert!(pages.iter().all(|p| fits_ussd(p, &L)));
    }

    #[test]
    fn wrap_free_text() {
        let text = "lorem ipsum ".repeat(30); // 360 characters
        let pages = wrap_pages(&text, &L, "98 More");
        assert_eq!(pages.len(), 3, "{pages:#?}");
        for p in &pages[..2] {
            assert!(p.ends_with("\n98 More"));
            assert!(fits_ussd(p, &L));
            let body = p.trim_end_matches("\n98 More");
            assert!(body.ends_with("lorem") || body.ends_with("ipsum"), "{body}");
        }
        // 182 - 8 = 174 for the text: 14 "lorem ipsum " pairs are 168, + "lorem" = 173.
        assert_eq!(units(pages[0].trim_end_matches("\n98 More")), 173);
        assert!(!pages[2].contains("98"));
        let words: Vec<&str> = pages
            .iter()
            .flat_map(|p| p.trim_end_matches("\n98 More").split_whitespace())
            .collect();
        assert_eq!(words.len(), 60);
        assert_eq!(wrap_pages("short", &L, "98 More"), vec!["short"]);
        // A word longer than the screen is cut by characters.
        let pages = wrap_pages(&"x".repeat(400), &L, "98 More");
        assert_eq!(pages.len(), 3);
        assert_eq!(units(&pages[0]), 182);
        // UCS-2 page budget.
        let pages = wrap_pages(&"ɗa ".repeat(60), &L, "98 Goɗɗo");
        assert!(pages.iter().all(|p| units(p) <= 80), "{pages:#?}");
        assert_eq!(pages.len(), 3);
    }
}
