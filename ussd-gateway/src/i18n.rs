//! Fluent catalogues for USSD screens and SMS.
//!
//! One `<lang>.ftl` file per language in a directory (`locales/`), loaded into
//! a [`Catalog`]. Rendering never wraps variables in Unicode isolation marks
//! (U+2068/U+2069 would force every message with a variable into UCS-2),
//! never groups numbers (CLDR grouping inserts U+202F/U+00A0), and always
//! returns NFC text.
//!
//! Plural rules: fluent-bundle silently uses English rules for a language the
//! plural data does not know; [`Catalog::load`] refuses such a file instead
//! (use `ff`, `sw`, not `fuc`, `swh`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use intl_pluralrules::{PluralRuleType, PluralRules};
use unic_langid::LanguageIdentifier;
use unicode_normalization::UnicodeNormalization;

use crate::text;

/// Order of the language menu when the caller gives none.
pub const DEFAULT_LANGUAGE_ORDER: [&str; 7] = ["wo", "ff", "bm", "ha", "sw", "fr", "en"];

/// The message holding a language's own name (`Wolof`, `Pulaar`...).
pub const LANGUAGE_NAME_ID: &str = "language-name";

/// Errors loading or strictly rendering a catalogue.
#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    #[error("cannot read locale directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}, in the entry starting at line {entry_line}: `{snippet}`{}", path.display(),
        if *more > 0 { format!(" and {more} more error(s)") } else { String::new() })]
    Parse {
        path: PathBuf,
        /// 1-based line where the parser found the problem.
        line: usize,
        /// 1-based column there, in characters.
        column: usize,
        message: String,
        /// 1-based line where the broken entry starts.
        entry_line: usize,
        /// That line, trimmed.
        snippet: String,
        /// Further parse errors in the same file.
        more: usize,
    },
    #[error("{}: `{tag}` is not a valid language tag", path.display())]
    InvalidTag { path: PathBuf, tag: String },
    #[error("{}: no CLDR plural rules for language `{lang}` (Fluent would silently use English rules); name the file with a code the plural data knows, e.g. ff, sw", path.display())]
    UnknownPluralRules { path: PathBuf, lang: String },
    #[error("{}: {message}", path.display())]
    Duplicate { path: PathBuf, message: String },
    #[error("fallback language `{lang}` has no {lang}.ftl in {}", dir.display())]
    MissingFallback { lang: String, dir: PathBuf },
    #[error("language `{0}` is not loaded")]
    UnknownLanguage(String),
    #[error("`{lang}` has no message `{id}`")]
    MissingMessage { lang: String, id: String },
    #[error("`{lang}` message `{id}`: {message}")]
    Format {
        lang: String,
        id: String,
        message: String,
    },
}

/// A message argument: a string inserted as is, or an integer (used by plural
/// selectors, printed without grouping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// Inserted as is (names, references, phone numbers).
    Str(&'a str),
    /// An integer: plural selectors use it; printed without grouping.
    Num(i64),
    /// Another message id of the catalogue (`status-resolved`), rendered in
    /// the same language and the same way (GSM-7 fallback or not) as the
    /// message it is inserted into.
    Msg(&'a str),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Str(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Str(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Num(n)
    }
}

/// What a message uses, for tooling and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageInfo {
    /// Every variable referenced (`$reference`...), once, in order.
    pub variables: Vec<String>,
    /// Select expressions on a variable: the variable and its variant keys
    /// (`one`, `other`, or number literals).
    pub selectors: Vec<(String, Vec<String>)>,
}

impl MessageInfo {
    fn add_variable(&mut self, name: &str) {
        if !self.variables.iter().any(|v| v == name) {
            self.variables.push(name.to_string());
        }
    }
}

type Bundle = FluentBundle<Arc<FluentResource>>;

struct Locale {
    /// The normal bundle.
    bundle: Bundle,
    /// Same resource; pattern text transliterated to GSM-7 by the language's table.
    gsm7: Bundle,
    resource: Arc<FluentResource>,
    /// Message ids in file order.
    ids: Vec<String>,
    /// Messages that need no argument, rendered once (plain, GSM-7): menus
    /// show them at every hop.
    rendered: HashMap<String, (String, String)>,
}

/// All languages' messages, with a fallback language.
///
/// `Catalog` is `Send + Sync`: share it in an `Arc`.
pub struct Catalog {
    locales: BTreeMap<String, Locale>,
    fallback: String,
    order: Option<Vec<String>>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("languages", &self.locales.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl Catalog {
    /// Loads every `<lang>.ftl` of `dir` (other files are ignored).
    /// `fallback_lang` must be one of them.
    ///
    /// Fails on the first file that does not parse (naming file, line,
    /// column and what is wrong), on a duplicated message id, and on a file
    /// name whose language has no CLDR plural rules.
    pub fn load(dir: &Path, fallback_lang: &str) -> Result<Catalog, I18nError> {
        let entries = std::fs::read_dir(dir).map_err(|source| I18nError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| I18nError::ReadDir {
                    path: dir.to_path_buf(),
                    source,
                })?
                .path();
            if path.extension().and_then(|e| e.to_str()) == Some("ftl") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut sources = Vec::new();
        for path in files {
            let source = std::fs::read_to_string(&path).map_err(|source| I18nError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let lang = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            sources.push((path, lang, source));
        }
        let mut catalog = Catalog::empty(fallback_lang);
        for (path, lang, source) in sources {
            catalog.add(&path, &lang, &source)?;
        }
        if !catalog.locales.contains_key(&catalog.fallback) {
            return Err(I18nError::MissingFallback {
                lang: fallback_lang.to_string(),
                dir: dir.to_path_buf(),
            });
        }
        Ok(catalog)
    }

    /// Builds a catalogue from in-memory `(lang, ftl source)` pairs (tests,
    /// embedded catalogues). Same checks as [`Catalog::load`]; errors name
    /// the file `<lang>.ftl`.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        fallback_lang: &str,
    ) -> Result<Catalog, I18nError> {
        let mut catalog = Catalog::empty(fallback_lang);
        for (lang, source) in sources {
            catalog.add(Path::new(&format!("{lang}.ftl")), lang, source)?;
        }
        if !catalog.locales.contains_key(&catalog.fallback) {
            return Err(I18nError::MissingFallback {
                lang: fallback_lang.to_string(),
                dir: PathBuf::from("<memory>"),
            });
        }
        Ok(catalog)
    }

    fn empty(fallback_lang: &str) -> Catalog {
        Catalog {
            locales: BTreeMap::new(),
            fallback: fallback_lang.to_string(),
            order: None,
        }
    }

    fn add(&mut self, path: &Path, lang: &str, source: &str) -> Result<(), I18nError> {
        let langid: LanguageIdentifier = lang.parse().map_err(|_| I18nError::InvalidTag {
            path: path.to_path_buf(),
            tag: lang.to_string(),
        })?;
        let bare = LanguageIdentifier::from_parts(langid.language, None, None, &[]);
        if PluralRules::create(bare, PluralRuleType::CARDINAL).is_err() {
            return Err(I18nError::UnknownPluralRules {
                path: path.to_path_buf(),
                lang: langid.language.to_string(),
            });
        }

        let source: String = source.nfc().collect();
        let resource = match FluentResource::try_new(source) {
            Ok(r) => r,
            Err((r, errors)) => {
                let first = &errors[0];
                let src = r.source();
                let (line, column) = line_col(src, first.pos.start);
                let entry_start = first.slice.as_ref().map_or(first.pos.start, |s| s.start);
                let (entry_line, _) = line_col(src, entry_start);
                let snippet: String = src
                    .lines()
                    .nth(entry_line - 1)
                    .unwrap_or("")
                    .trim()
                    .chars()
                    .take(80)
                    .collect();
                return Err(I18nError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message: first.kind.to_string(),
                    entry_line,
                    snippet,
                    more: errors.len() - 1,
                });
            }
        };
        let resource = Arc::new(resource);
        let ids: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect();

        let make = |transform: Option<fn(&str) -> Cow<'_, str>>| -> Result<Bundle, I18nError> {
            let mut bundle = Bundle::new_concurrent(vec![langid.clone()]);
            bundle.set_use_isolating(false);
            bundle.set_transform(transform);
            // NUMBER() only; registering twice cannot happen on a new bundle.
            let _ = bundle.add_builtins();
            bundle
                .add_resource(resource.clone())
                .map_err(|errors| I18nError::Duplicate {
                    path: path.to_path_buf(),
                    message: errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                })?;
            Ok(bundle)
        };
        let bundle = make(None)?;
        let gsm7 = make(Some(gsm7_transform(lang)))?;
        let rendered = ids
            .iter()
            .filter_map(
                |id| match (format(&bundle, id, &[])?, format(&gsm7, id, &[])?) {
                    ((plain, e1), (gsm7, e2)) if e1.is_empty() && e2.is_empty() => {
                        Some((id.clone(), (plain, gsm7)))
                    }
                    // Needs arguments: rendered at each use.
                    _ => None,
                },
            )
            .collect();
        self.locales.insert(
            lang.to_string(),
            Locale {
                bundle,
                gsm7,
                resource,
                ids,
                rendered,
            },
        );
        Ok(())
    }

    /// The fallback language given at load.
    pub fn fallback_language(&self) -> &str {
        &self.fallback
    }

    /// Whether `lang` (or its primary subtag: `fr-SN` → `fr`) is loaded.
    pub fn has_language(&self, lang: &str) -> bool {
        self.resolve(lang).is_some()
    }

    /// Sets which languages [`Catalog::languages`] offers, and in what order
    /// (e.g. from the deployment's configuration). Codes not loaded are
    /// skipped with a warning.
    pub fn set_language_order(&mut self, order: &[&str]) {
        for code in order {
            if !self.locales.contains_key(*code) {
                tracing::warn!(lang = %code, "language in the configured order has no catalogue");
            }
        }
        self.order = Some(order.iter().map(|s| s.to_string()).collect());
    }

    /// `(code, native name)` of the languages to offer, in a stable order:
    /// the order set with [`Catalog::set_language_order`] (only those), or
    /// [`DEFAULT_LANGUAGE_ORDER`] followed by any other loaded language in
    /// alphabetical order. The name is the language's own `language-name`
    /// message (the code if it has none).
    pub fn languages(&self) -> Vec<(String, String)> {
        let codes: Vec<String> = match &self.order {
            Some(order) => order
                .iter()
                .filter(|c| self.locales.contains_key(*c))
                .cloned()
                .collect(),
            None => {
                let mut codes: Vec<String> = DEFAULT_LANGUAGE_ORDER
                    .iter()
                    .filter(|c| self.locales.contains_key(**c))
                    .map(|c| c.to_string())
                    .collect();
                codes.extend(
                    self.locales
                        .keys()
                        .filter(|k| !DEFAULT_LANGUAGE_ORDER.contains(&k.as_str()))
                        .cloned(),
                );
                codes
            }
        };
        codes
            .into_iter()
            .map(|code| {
                let name = self
                    .text_strict(&code, LANGUAGE_NAME_ID, &[])
                    .unwrap_or_else(|_| code.clone());
                (code, name)
            })
            .collect()
    }

    /// The message ids of `lang`, in file order (empty if `lang` is not loaded).
    pub fn message_ids(&self, lang: &str) -> Vec<String> {
        self.resolve(lang)
            .map(|(_, l)| l.ids.clone())
            .unwrap_or_default()
    }

    /// Variables and selectors of message `id` in `lang` (no fallback).
    pub fn message_info(&self, lang: &str, id: &str) -> Option<MessageInfo> {
        let (_, locale) = self.resolve(lang)?;
        let message = locale.resource.entries().find_map(|e| match e {
            ast::Entry::Message(m) if m.id.name == id => Some(m),
            _ => None,
        })?;
        let mut info = MessageInfo::default();
        if let Some(pattern) = &message.value {
            collect_pattern(pattern, &mut info);
        }
        for attribute in &message.attributes {
            collect_pattern(&attribute.value, &mut info);
        }
        Some(info)
    }

    /// Renders message `id` in `lang`. Falls back to the fallback language
    /// when `lang` or the message is missing, and returns `id` itself only if
    /// the fallback lacks it too (both logged as warnings). Never panics.
    pub fn text(&self, lang: &str, id: &str, args: &[(&str, Arg)]) -> String {
        self.render(lang, id, args, false)
    }

    /// Like [`Catalog::text`], but the language's GSM-7 fallback table
    /// ([`text::gsm7_fallback`]) is applied to the message's own text only:
    /// argument values (names, references) are inserted untouched. For SMS
    /// where the deployment allows transliteration. Pass localized parts
    /// (statuses) as [`Arg::Msg`] so that they are transliterated too.
    pub fn text_gsm7_fallback(&self, lang: &str, id: &str, args: &[(&str, Arg)]) -> String {
        self.render(lang, id, args, true)
    }

    /// Renders without any fallback; an error if `lang` or the message is
    /// missing or if Fluent reports a problem (unknown variable, missing
    /// plural default...). For tests and tooling.
    pub fn text_strict(
        &self,
        lang: &str,
        id: &str,
        args: &[(&str, Arg)],
    ) -> Result<String, I18nError> {
        let (code, locale) = self
            .resolve(lang)
            .ok_or_else(|| I18nError::UnknownLanguage(lang.to_string()))?;
        let (out, errors) =
            format(&locale.bundle, id, args).ok_or_else(|| I18nError::MissingMessage {
                lang: code.to_string(),
                id: id.to_string(),
            })?;
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(I18nError::Format {
                lang: code.to_string(),
                id: id.to_string(),
                message: errors.join("; "),
            })
        }
    }

    fn render(&self, lang: &str, id: &str, args: &[(&str, Arg)], gsm7: bool) -> String {
        let requested = self.resolve(lang);
        let ready = requested
            .filter(|_| args.is_empty())
            .and_then(|(_, locale)| {
                let (plain, transliterated) = locale.rendered.get(id)?;
                Some(if gsm7 { transliterated } else { plain })
            });
        if let Some(text) = ready {
            return text.clone();
        }
        if requested.is_none() {
            tracing::warn!(%lang, fallback = %self.fallback, "no catalogue for language");
        }
        let fallback = self
            .locales
            .get_key_value(&self.fallback)
            .map(|(k, v)| (k.as_str(), v));
        let same = requested.map(|(r, _)| r) == Some(self.fallback.as_str());
        let candidates = requested.into_iter().chain(fallback.filter(|_| !same));
        for (n, (code, locale)) in candidates.enumerate() {
            let bundle = if gsm7 { &locale.gsm7 } else { &locale.bundle };
            if let Some((out, errors)) = format(bundle, id, args) {
                if n > 0 && requested.is_some() {
                    tracing::warn!(%lang, %id, fallback = %code, "message missing, using fallback language");
                }
                if !errors.is_empty() {
                    tracing::warn!(lang = %code, %id, errors = %errors.join("; "), "message rendered with errors");
                }
                return out;
            }
        }
        tracing::warn!(%lang, %id, "message missing in the fallback language too");
        id.to_string()
    }

    fn resolve(&self, lang: &str) -> Option<(&str, &Locale)> {
        if let Some((k, v)) = self.locales.get_key_value(lang) {
            return Some((k.as_str(), v));
        }
        let primary = lang.split(['-', '_']).next()?.to_ascii_lowercase();
        self.locales
            .get_key_value(&primary)
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// Formats message `id`'s value; `None` if the bundle has no such message
/// (or only attributes). The text is NFC.
fn format(bundle: &Bundle, id: &str, args: &[(&str, Arg)]) -> Option<(String, Vec<String>)> {
    let message = bundle.get_message(id)?;
    let pattern = message.value()?;
    let mut fargs = FluentArgs::with_capacity(args.len());
    let mut errors = Vec::new();
    for (name, value) in args {
        let value: FluentValue = match value {
            Arg::Str(s) => FluentValue::from(*s),
            Arg::Num(n) => FluentValue::from(*n),
            Arg::Msg(m) => match format(bundle, m, &[]) {
                Some((text, sub_errors)) => {
                    errors.extend(sub_errors);
                    FluentValue::from(text)
                }
                None => {
                    errors.push(format!("no message `{m}` for ${name}"));
                    FluentValue::from(*m)
                }
            },
        };
        fargs.set(*name, value);
    }
    let mut fluent_errors = Vec::new();
    let out = bundle.format_pattern(pattern, Some(&fargs), &mut fluent_errors);
    let out: String = text::nfc(&out).into_owned();
    errors.extend(fluent_errors.iter().map(ToString::to_string));
    Some((out, errors))
}

fn collect_pattern(pattern: &ast::Pattern<&str>, info: &mut MessageInfo) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            collect_expression(expression, info);
        }
    }
}

fn collect_expression(expression: &ast::Expression<&str>, info: &mut MessageInfo) {
    match expression {
        ast::Expression::Inline(inline) => collect_inline(inline, info),
        ast::Expression::Select { selector, variants } => {
            collect_inline(selector, info);
            let name = match selector {
                ast::InlineExpression::VariableReference { id } => Some(id.name.to_string()),
                ast::InlineExpression::FunctionReference { arguments, .. } => {
                    arguments.positional.iter().find_map(|a| match a {
                        ast::InlineExpression::VariableReference { id } => {
                            Some(id.name.to_string())
                        }
                        _ => None,
                    })
                }
                _ => None,
            };
            if let Some(name) = name {
                let keys = variants
                    .iter()
                    .map(|v| match &v.key {
                        ast::VariantKey::Identifier { name } => name.to_string(),
                        ast::VariantKey::NumberLiteral { value } => value.to_string(),
                    })
                    .collect();
                info.selectors.push((name, keys));
            }
            for variant in variants {
                collect_pattern(&variant.value, info);
            }
        }
    }
}

fn collect_inline(inline: &ast::InlineExpression<&str>, info: &mut MessageInfo) {
    match inline {
        ast::InlineExpression::VariableReference { id } => info.add_variable(id.name),
        ast::InlineExpression::FunctionReference { arguments, .. }
        | ast::InlineExpression::TermReference {
            arguments: Some(arguments),
            ..
        } => {
            for a in &arguments.positional {
                collect_inline(a, info);
            }
            for a in &arguments.named {
                collect_inline(&a.value, info);
            }
        }
        ast::InlineExpression::Placeable { expression } => collect_expression(expression, info),
        _ => {}
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while pos > 0 && !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

// fluent-bundle takes a plain `fn` as transform, so one per table.
fn tr_fr(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("fr", s))
}
fn tr_wo(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("wo", s))
}
fn tr_ff(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("ff", s))
}
fn tr_bm(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("bm", s))
}
fn tr_ha(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("ha", s))
}
fn tr_common(s: &str) -> Cow<'_, str> {
    Cow::Owned(text::gsm7_fallback("", s))
}

fn gsm7_transform(lang: &str) -> fn(&str) -> Cow<'_, str> {
    match lang.split(['-', '_']).next().unwrap_or("") {
        "fr" => tr_fr,
        "wo" => tr_wo,
        "ff" => tr_ff,
        "bm" => tr_bm,
        "ha" => tr_ha,
        _ => tr_common,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: &str = "language-name = English
hello = Hello { $name }, you have { $count ->
    [one] one request
   *[other] { $count } requests
}.
only-en = Only in English
";
    const WO: &str = "language-name = Wolof
hello = Nanga def { $name }? { $count } laaj ŋga am.
";
    const FR: &str = "language-name = Français
hello = Bonjour { $name }, vous avez { $count ->
    [one] { $count } demande reçue
   *[other] { $count } demandes reçues
}.
";

    fn catalog() -> Catalog {
        Catalog::from_sources([("en", EN), ("wo", WO), ("fr", FR)], "en").unwrap()
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Catalog>();
    }

    #[test]
    fn renders_without_isolation_or_grouping() {
        let c = catalog();
        let out = c.text(
            "en",
            "hello",
            &[("name", Arg::Str("Awa")), ("count", Arg::Num(12000))],
        );
        assert_eq!(out, "Hello Awa, you have 12000 requests.");
        assert_eq!(
            c.text(
                "en",
                "hello",
                &[("name", "Awa".into()), ("count", 1.into())]
            ),
            "Hello Awa, you have one request."
        );
    }

    #[test]
    fn plural_rules_per_language() {
        let c = catalog();
        // French: 0 and 1 are "one".
        let fr = |n| {
            c.text(
                "fr",
                "hello",
                &[("name", Arg::Str("Awa")), ("count", Arg::Num(n))],
            )
        };
        assert_eq!(fr(0), "Bonjour Awa, vous avez 0 demande reçue.");
        assert_eq!(fr(1), "Bonjour Awa, vous avez 1 demande reçue.");
        assert_eq!(fr(2), "Bonjour Awa, vous avez 2 demandes reçues.");
    }

    #[test]
    fn falls_back_and_never_panics() {
        let c = catalog();
        assert_eq!(c.text("wo", "only-en", &[]), "Only in English");
        assert_eq!(c.text("xx", "only-en", &[]), "Only in English");
        assert_eq!(c.text("wo-SN", "language-name", &[]), "Wolof");
        assert_eq!(c.text("wo", "nowhere", &[]), "nowhere");
        // A missing argument renders Fluent's placeholder rather than panicking.
        assert_eq!(
            c.text("wo", "hello", &[]),
            "Nanga def {$name}? {$count} laaj ŋga am."
        );
        assert!(c.text_strict("wo", "hello", &[]).is_err());
        assert!(matches!(
            c.text_strict("wo", "only-en", &[]),
            Err(I18nError::MissingMessage { .. })
        ));
    }

    #[test]
    fn gsm7_fallback_spares_arguments() {
        let c = catalog();
        let args = [("name", Arg::Str("Ŋoné Ndiaye")), ("count", Arg::Num(2))];
        assert_eq!(
            c.text_gsm7_fallback("wo", "hello", &args),
            "Nanga def Ŋoné Ndiaye? 2 laaj ngga am."
        );
        let args = [("name", Arg::Str("François")), ("count", Arg::Num(1))];
        assert_eq!(
            c.text_gsm7_fallback("fr", "hello", &args),
            "Bonjour François, vous avez 1 demande recue."
        );
    }

    #[test]
    fn message_arguments_follow_the_mode() {
        let c = Catalog::from_sources(
            [
                ("en", "status = done\nt = Request { $ref }: { $status }.\n"),
                (
                    "wo",
                    "status = jeex na, jërëjëf\nt = Laaj { $ref }: { $status }.\n",
                ),
            ],
            "en",
        )
        .unwrap();
        let args = [("ref", Arg::Str("Dëkk 12")), ("status", Arg::Msg("status"))];
        assert_eq!(c.text("wo", "t", &args), "Laaj Dëkk 12: jeex na, jërëjëf.");
        assert_eq!(
            c.text_gsm7_fallback("wo", "t", &args),
            "Laaj Dëkk 12: jeex na, jerejef."
        );
        assert_eq!(c.text("en", "t", &args), "Request Dëkk 12: done.");
        let bad = [("ref", Arg::Str("1")), ("status", Arg::Msg("nope"))];
        assert!(c.text_strict("en", "t", &bad).is_err());
        assert_eq!(c.text("en", "t", &bad), "Request 1: nope.");
    }

    #[test]
    fn languages_in_order() {
        let mut c = catalog();
        let langs = c.languages();
        assert_eq!(
            langs,
            vec![
                ("wo".to_string(), "Wolof".to_string()),
                ("fr".to_string(), "Français".to_string()),
                ("en".to_string(), "English".to_string()),
            ]
        );
        c.set_language_order(&["fr", "xx", "wo"]);
        let codes: Vec<String> = c.languages().into_iter().map(|(c, _)| c).collect();
        assert_eq!(codes, vec!["fr", "wo"]);
        assert_eq!(
            c.message_ids("en"),
            vec!["language-name", "hello", "only-en"]
        );
        assert!(c.message_ids("xx").is_empty());
    }

    #[test]
    fn message_info() {
        let c = catalog();
        let info = c.message_info("en", "hello").unwrap();
        assert_eq!(info.variables, vec!["name", "count"]);
        assert_eq!(
            info.selectors,
            vec![(
                "count".to_string(),
                vec!["one".to_string(), "other".to_string()]
            )]
        );
        assert!(c.message_info("wo", "only-en").is_none());
    }

    #[test]
    fn load_errors_are_precise() {
        let err = Catalog::from_sources([("en", "a = A\nb = { $x\nc = C\n")], "en").unwrap_err();
        let msg = err.to_string();
        match err {
            I18nError::Parse {
                line,
                entry_line,
                ref path,
                ..
            } => {
                assert_eq!((line, entry_line), (3, 2), "{msg}");
                assert_eq!(path, Path::new("en.ftl"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            msg.starts_with("en.ftl:3:1: Expected a token starting with \"}\""),
            "{msg}"
        );
        assert!(
            msg.contains("entry starting at line 2: `b = { $x`"),
            "{msg}"
        );

        let err = Catalog::from_sources([("fuc", "a = A\n")], "fuc").unwrap_err();
        assert!(matches!(err, I18nError::UnknownPluralRules { .. }), "{err}");
        let err = Catalog::from_sources([("en", "a = A\na = B\n")], "en").unwrap_err();
        assert!(matches!(err, I18nError::Duplicate { .. }), "{err}");
        let err = Catalog::from_sources([("wo", "a = A\n")], "en").unwrap_err();
        assert!(matches!(err, I18nError::MissingFallback { .. }), "{err}");
    }

    #[test]
    fn load_from_directory() {
        let dir = std::env::temp_dir().join(format!("guichet-i18n-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("en.ftl"), EN).unwrap();
        // Decomposed ë in the file: normalised to NFC at load.
        std::fs::write(
            dir.join("wo.ftl"),
            "language-name = Wolof\nx = Je\u{308}rëjëf\n",
        )
        .unwrap();
        std::fs::write(dir.join("README.md"), "not a catalogue").unwrap();
        let c = Catalog::load(&dir, "en").unwrap();
        assert_eq!(c.text("wo", "x", &[]), "Jërëjëf");
        std::fs::write(dir.join("ha.ftl"), "x = {\n").unwrap();
        let err = Catalog::load(&dir, "en").unwrap_err().to_string();
        assert!(err.contains("ha.ftl:2:1: Expected an inline expression, in the entry starting at line 1: `x = {`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
