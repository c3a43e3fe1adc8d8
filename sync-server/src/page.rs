//! The supervisor's dashboard as one HTML page, rendered on the server:
//! figures as cards, charts as inline SVG, a table per unit. No script and
//! no external resource, so it works on any tablet browser, offline from
//! the internet. Words come from `locales/supervisor/<lang>.ftl`.
//!
//! Every figure carries `data-figure` (its path in the JSON API) and
//! `data-value` (the API's value), so what is shown can be checked.

use crate::devices::Devices;
use crate::figures::{Dashboard, Figures};
use crate::registry::Role;
use crate::supervisors::Supervisor;
use chrono::{FixedOffset, TimeZone};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::fmt::Write;

pub const LANGUAGES: &[(&str, &str)] = &[
    ("fr", include_str!("../../locales/supervisor/fr.ftl")),
    ("en", include_str!("../../locales/supervisor/en.ftl")),
];

/// One language's words for the page.
pub struct Texts {
    lang: &'static str,
    bundle: FluentBundle<FluentResource>,
}

impl Texts {
    /// The language asked for, else the first of `accept` (an
    /// Accept-Language header) we have, else French.
    pub fn choose(asked: Option<&str>, accept: Option<&str>) -> Texts {
        let accepted = accept.unwrap_or("").split(',').map(|part| {
            part.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .split('-')
                .next()
                .unwrap_or("")
        });
        let lang = asked
            .into_iter()
            .chain(accepted)
            .find_map(|l| LANGUAGES.iter().find(|(code, _)| *code == l))
            .unwrap_or(&LANGUAGES[0]);
        Texts::new(lang.0, lang.1)
    }

    fn new(lang: &'static str, source: &str) -> Texts {
        let langid = lang.parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![langid]);
        // Plain text in HTML: no Unicode isolation marks around arguments.
        bundle.set_use_isolating(false);
        match FluentResource::try_new(source.to_string()) {
            Ok(resource) | Err((resource, _)) => {
                let _ = bundle.add_resource(resource);
            }
        }
        Texts { lang, bundle }
    }

    pub fn lang(&self) -> &'static str {
        self.lang
    }

    /// A message, HTML-escaped; its id if missing (a test checks none is).
    pub fn get(&self, id: &str, args: &[(&str, String)]) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return esc(id);
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, FluentValue::from(value.as_str()));
        }
        let mut errors = Vec::new();
        esc(&self
            .bundle
            .format_pattern(pattern, Some(&fluent_args), &mut errors))
    }

    pub fn word(&self, id: &str) -> String {
        self.get(id, &[])
    }

    /// A number the way this language writes it (French: decimal comma).
    pub fn number(&self, value: f64) -> String {
        let text = if value.fract() == 0.0 {
            format!("{value:.0}")
        } else {
            format!("{value}")
        };
        if self.lang == "fr" {
            text.replace('.', ",")
        } else {
            text
        }
    }
}

pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,sans-serif;color:#1c2733;background:#f3f5f7}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between;padding:.8rem 1rem;background:#0b5e55;color:#fff}
header h1{font-size:1.2rem;margin:0}header a,header button{color:#fff}header form{display:inline}
header button{background:none;border:1px solid #fff;border-radius:4px;padding:.2rem .6rem;font:inherit}
main{padding:1rem;max-width:1200px;margin:auto}
form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.85rem}
input,select,button{font:inherit;padding:.35rem;min-height:2.4rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:.7rem;margin-bottom:1rem}
.card{background:#fff;border-radius:8px;padding:.7rem;box-shadow:0 1px 2px #0002}
.card h2{font-size:.85rem;font-weight:600;margin:0 0 .3rem;color:#44525f}
.card .value{font-size:1.7rem;font-weight:700}.card .note{font-size:.8rem;color:#5b6873}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:.7rem;margin-bottom:1rem}
section.chart{background:#fff;border-radius:8px;padding:.7rem;box-shadow:0 1px 2px #0002}
section.chart h2{font-size:1rem;margin:0 0 .5rem}svg{width:100%;height:auto}
svg text{font-size:12px;fill:#1c2733}.bar{fill:#1a8a7d}
table{width:100%;border-collapse:collapse;background:#fff}th,td{padding:.4rem;border-bottom:1px solid #dde3e8;text-align:right}
th:first-child,td:first-child{text-align:left}.empty{color:#5b6873}
tr.silent td{background:#fdeaea;font-weight:600}tr.revoked td{color:#5b6873}
.login{max-width:22rem;margin:3rem auto;background:#fff;padding:1.2rem;border-radius:8px}
.login label{display:block;margin:.6rem 0}.login input{width:100%}.error{color:#a61b1b}
"#;

fn document(texts: &Texts, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        lang = texts.lang()
    )
}

pub fn login(texts: &Texts, failed: bool) -> String {
    let error = if failed {
        format!(
            "<p class=\"error\" id=\"login-error\">{}</p>",
            texts.word("login-failed")
        )
    } else {
        String::new()
    };
    let body = format!(
        "<form class=\"login\" method=\"post\" action=\"/supervisor/login\">\
         <h1>{title}</h1>{error}\
         <input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
         <label>{name}<input id=\"name\" name=\"name\" autocomplete=\"username\" required></label>\
         <label>{password}<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button id=\"log-in\" type=\"submit\">{log_in}</button>\
         <p><a href=\"?lang=fr\">Français</a> · <a href=\"?lang=en\">English</a></p></form>",
        title = texts.word("login-title"),
        lang = texts.lang(),
        name = texts.word("name"),
        password = texts.word("password"),
        log_in = texts.word("log-in"),
    );
    document(texts, &texts.word("login-title"), &body)
}

/// The top of every signed-in page: its title, who is signed in, the same
/// page in each language, the other page, and logging out.
fn header(
    out: &mut String,
    texts: &Texts,
    who: &Supervisor,
    title: &str,
    self_link: impl Fn(&str) -> String,
    other: (&str, &str),
) {
    let (other_path, other_word) = other;
    let _ = write!(
        out,
        "<header><h1>{title}</h1><div>{signed} · \
         <a id=\"other-page\" href=\"{other_path}?lang={lang}\">{other}</a> · \
         <a href=\"{fr}\">FR</a> · <a href=\"{en}\">EN</a> · \
         <form method=\"post\" action=\"/supervisor/logout\"><button>{log_out}</button></form></div></header><main>",
        title = texts.word(title),
        signed = texts.get("signed-in-as", &[("name", who.name.clone())]),
        lang = texts.lang(),
        other = texts.word(other_word),
        fr = esc(&self_link("fr")),
        en = esc(&self_link("en")),
        log_out = texts.word("log-out"),
    );
}

/// The dashboard page for `who`.
pub fn dashboard(texts: &Texts, who: &Supervisor, d: &Dashboard) -> String {
    let f = &d.figures;
    let mut body = String::new();
    let link = |lang: &str| self_link(f, lang);
    let devices = ("/supervisor/devices", "nav-devices");
    header(&mut body, texts, who, "title", link, devices);
    filters(&mut body, texts, d);
    body.push_str("<div class=\"cards\">");
    cards(&mut body, texts, f);
    body.push_str("</div><div class=\"charts\">");
    let named =
        |prefix: &str, map: &std::collections::BTreeMap<String, u64>| -> Vec<(String, u64)> {
            map.iter()
                .map(|(k, v)| (texts.word(&format!("{prefix}{k}")), *v))
                .collect()
        };
    chart(
        &mut body,
        texts,
        "by-channel",
        &named("channel-", &f.received.by_channel),
    );
    let languages: Vec<(String, u64)> = f
        .received
        .by_language
        .iter()
        .map(|(k, v)| (esc(k), *v))
        .collect();
    chart(&mut body, texts, "by-language", &languages);
    chart(
        &mut body,
        texts,
        "backlog-by-status",
        &named("status-", &f.backlog.by_status),
    );
    let ages: Vec<(String, u64)> = (0..4)
        .map(|i| (texts.word(&format!("age-{i}")), f.backlog.by_age[i]))
        .collect();
    chart(&mut body, texts, "backlog-by-age", &ages);
    let ratings: Vec<(String, u64)> = (0..5)
        .map(|i| (format!("{}", i + 1), f.satisfaction.distribution[i]))
        .collect();
    chart(&mut body, texts, "ratings", &ratings);
    let days: Vec<(String, u64)> = (0..7)
        .map(|i| (texts.word(&format!("weekday-{i}")), f.busiest.by_weekday[i]))
        .collect();
    chart(&mut body, texts, "busiest-days", &days);
    hours_chart(&mut body, texts, &f.busiest.by_hour);
    chart(
        &mut body,
        texts,
        "abandoned-in",
        &named("flow-", &f.ussd.abandoned_in_flow),
    );
    body.push_str("</div>");
    unit_table(&mut body, texts, d);
    body.push_str("</main>");
    document(texts, &texts.word("title"), &body)
}

/// The devices page for `who`: every device of their units (of `unit` if
/// one is chosen), silent ones flagged. Times are local (`utc_offset`).
pub fn devices(
    texts: &Texts,
    who: &Supervisor,
    d: &Devices,
    unit: Option<&str>,
    utc_offset: FixedOffset,
) -> String {
    let mut body = String::new();
    let link = |lang: &str| {
        let unit = unit.map_or(String::new(), |u| format!("&unit={}", url_encode(u)));
        format!("/supervisor/devices?lang={lang}{unit}")
    };
    let figures = ("/supervisor", "nav-figures");
    header(&mut body, texts, who, "devices-title", link, figures);
    let days = texts.number(f64::from(d.silent_after_days));
    let _ = write!(
        body,
        "<div class=\"cards\"><div class=\"card\"><h2>{}</h2>\
         <div class=\"value\" id=\"device-count\">{}</div></div>\
         <div class=\"card\"><h2>{}</h2>{}</div></div>",
        texts.word("devices-count"),
        texts.number(d.devices.len() as f64),
        texts.get("devices-silent", &[("days", days)]),
        figure(
            "silent",
            Some(d.silent as f64),
            texts.number(d.silent as f64)
        ),
    );
    let _ = write!(
        body,
        "<section class=\"chart\"><table id=\"devices\"><thead><tr>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         </tr></thead><tbody>",
        texts.word("agent"),
        texts.word("units"),
        texts.word("device-state"),
        texts.word("last-sync"),
        texts.word("pending-ops"),
        texts.word("quarantined-ops"),
        texts.word("last-error"),
        texts.word("app-version"),
    );
    for line in &d.devices {
        let (state, class) = if line.revoked {
            ("state-revoked", "revoked")
        } else if line.silent {
            ("state-silent", "silent")
        } else {
            ("state-ok", "ok")
        };
        let units = if line.role == Role::Intake {
            texts.word("role-intake")
        } else {
            esc(&line.units.join(", "))
        };
        let last_sync = line
            .last_sync_ms
            .and_then(|ms| utc_offset.timestamp_millis_opt(ms as i64).single())
            .map_or(texts.word("never"), |t| {
                t.format("%Y-%m-%d %H:%M").to_string()
            });
        let optional = |v: &Option<String>| v.as_deref().map_or(texts.word("none"), esc);
        let _ = write!(
            body,
            "<tr class=\"{class}\" data-replica=\"{replica}\" data-silent=\"{silent}\">\
             <td>{agent}</td><td>{units}</td><td>{state}</td><td>{last_sync}</td>\
             <td>{pending}</td><td>{quarantined}</td><td>{error}</td><td>{version}</td></tr>",
            replica = line.replica,
            silent = line.silent,
            agent = esc(&line.agent),
            state = texts.word(state),
            pending = texts.number(line.pending_ops as f64),
            quarantined = texts.number(line.quarantined_ops as f64),
            error = optional(&line.last_error),
            version = optional(&line.app_version),
        );
    }
    body.push_str("</tbody></table>");
    if d.devices.is_empty() {
        let _ = write!(body, "<p class=\"empty\">{}</p>", texts.word("no-devices"));
    }
    body.push_str("</section></main>");
    document(texts, &texts.word("devices-title"), &body)
}

fn self_link(f: &Figures, lang: &str) -> String {
    let mut link = format!("/supervisor?lang={lang}&from={}&to={}", f.from, f.to);
    for (name, value) in [("unit", &f.unit), ("service", &f.service)] {
        if let Some(v) = value {
            let _ = write!(link, "&{name}={}", url_encode(v));
        }
    }
    link
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn filters(out: &mut String, texts: &Texts, d: &Dashboard) {
    let f = &d.figures;
    let options = |all_label: &str, all: &[String], chosen: &Option<String>| -> String {
        let mut html = format!("<option value=\"\">{}</option>", texts.word(all_label));
        for item in all {
            let selected = if chosen.as_ref() == Some(item) {
                " selected"
            } else {
                ""
            };
            let _ = write!(html, "<option{selected}>{}</option>", esc(item));
        }
        html
    };
    let _ = write!(
        out,
        "<form class=\"filters\" method=\"get\" action=\"/supervisor\">\
         <input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
         <label>{from_l}<input type=\"date\" id=\"from\" name=\"from\" value=\"{from}\"></label>\
         <label>{to_l}<input type=\"date\" id=\"to\" name=\"to\" value=\"{to}\"></label>\
         <label>{unit_l}<select id=\"unit\" name=\"unit\">{units}</select></label>\
         <label>{service_l}<select id=\"service\" name=\"service\">{services}</select></label>\
         <button id=\"show\" type=\"submit\">{show}</button></form>",
        lang = texts.lang(),
        from_l = texts.word("period-from"),
        from = f.from,
        to_l = texts.word("period-to"),
        to = f.to,
        unit_l = texts.word("unit"),
        units = options("all-units", &d.units, &f.unit),
        service_l = texts.word("service"),
        services = options("all-services", &d.services, &f.service),
        show = texts.word("show"),
    );
}

/// One figure's value as shown, with the API's value beside it.
fn figure(path: &str, api_value: Option<f64>, shown: String) -> String {
    let value = api_value.map_or("null".to_string(), |v| v.to_string());
    format!("<div class=\"value\" data-figure=\"{path}\" data-value=\"{value}\">{shown}</div>")
}

fn cards(out: &mut String, texts: &Texts, f: &Figures) {
    let or_none = |v: Option<f64>, id: &str| {
        v.map_or(texts.word("none"), |v| {
            texts.get(id, &[("value", texts.number(v))])
        })
    };
    let count = |n: u64| texts.number(n as f64);
    let mut card = |title: &str, path: &str, value: Option<f64>, shown: String, note: String| {
        let _ = write!(
            out,
            "<div class=\"card\"><h2>{}</h2>{}<div class=\"note\">{note}</div></div>",
            texts.word(title),
            figure(path, value, shown)
        );
    };
    card(
        "received",
        "received.total",
        Some(f.received.total as f64),
        count(f.received.total),
        String::new(),
    );
    card(
        "median-processing",
        "processing.median_hours",
        f.processing.median_hours,
        or_none(f.processing.median_hours, "hours"),
        texts.get("resolved-count", &[("count", count(f.processing.resolved))]),
    );
    card(
        "p90-processing",
        "processing.p90_hours",
        f.processing.p90_hours,
        or_none(f.processing.p90_hours, "hours"),
        String::new(),
    );
    card(
        "backlog",
        "backlog.total",
        Some(f.backlog.total as f64),
        count(f.backlog.total),
        String::new(),
    );
    let fcr = &f.first_contact_resolution;
    card(
        "first-contact",
        "first_contact_resolution.percent",
        fcr.percent,
        or_none(fcr.percent, "percent"),
        texts.get("of-resolved", &[("total", count(fcr.of))]),
    );
    let again = &f.repeat_contacts.requests_asked_again;
    card(
        "repeat-contacts",
        "repeat_contacts.requests_asked_again.percent",
        again.percent,
        or_none(again.percent, "percent"),
        texts.get(
            "inquiries",
            &[("count", count(f.repeat_contacts.inquiries))],
        ),
    );
    card(
        "complaints",
        "complaints.count",
        Some(f.complaints.count as f64),
        count(f.complaints.count),
        f.complaints
            .per_100_requests
            .map(|v| texts.get("per-100", &[("value", texts.number(v))]))
            .unwrap_or_default(),
    );
    card(
        "satisfaction",
        "satisfaction.average",
        f.satisfaction.average,
        or_none(f.satisfaction.average, "out-of-5"),
        texts.get("ratings-count", &[("count", count(f.satisfaction.ratings))]),
    );
    card(
        "ussd-abandonment",
        "ussd.abandonment_percent",
        f.ussd.abandonment_percent,
        or_none(f.ussd.abandonment_percent, "percent"),
        texts.get("sessions", &[("count", count(f.ussd.sessions))]),
    );
}

/// A chart's section: its title, then `bars(out, max)` drawing inside an
/// SVG of height `height`, or "nothing in this period" when every value is 0.
fn chart_frame(
    out: &mut String,
    texts: &Texts,
    title: &str,
    values: impl Iterator<Item = u64>,
    height: usize,
    bars: impl FnOnce(&mut String, u64),
) {
    let name = texts.word(title);
    let _ = write!(
        out,
        "<section class=\"chart\" data-chart=\"{title}\"><h2>{name}</h2>"
    );
    let max = values.max().unwrap_or(0);
    if max == 0 {
        let _ = write!(out, "<p class=\"empty\">{}</p>", texts.word("no-data"));
    } else {
        let _ = write!(
            out,
            "<svg viewBox=\"0 0 320 {height}\" role=\"img\" aria-label=\"{name}\">"
        );
        bars(out, max);
        out.push_str("</svg>");
    }
    out.push_str("</section>");
}

/// Horizontal bars, one per (already escaped) label.
fn chart(out: &mut String, texts: &Texts, title: &str, items: &[(String, u64)]) {
    let row = 26;
    let values = items.iter().map(|(_, v)| *v);
    chart_frame(out, texts, title, values, items.len() * row, |out, max| {
        for (i, (label, value)) in items.iter().enumerate() {
            let y = i * row;
            let width = (*value as f64 / max as f64 * 170.0).max(1.0);
            let _ = write!(
                out,
                "<g data-label=\"{label}\" data-value=\"{value}\"><text x=\"0\" y=\"{ty}\">{label}</text>\
                 <rect class=\"bar\" x=\"110\" y=\"{ry}\" width=\"{width:.1}\" height=\"18\"></rect>\
                 <text x=\"{vx:.1}\" y=\"{ty}\">{value}</text></g>",
                ty = y + 17,
                ry = y + 4,
                vx = 114.0 + width,
            );
        }
    });
}

/// 24 columns, one per hour of the day.
fn hours_chart(out: &mut String, texts: &Texts, by_hour: &[u64; 24]) {
    let values = by_hour.iter().copied();
    chart_frame(out, texts, "busiest-hours", values, 130, |out, max| {
        for (hour, value) in by_hour.iter().enumerate() {
            let height = *value as f64 / max as f64 * 100.0;
            let x = hour as f64 * 13.0 + 4.0;
            let _ = write!(
                out,
                "<g data-label=\"{hour}\" data-value=\"{value}\"><rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"10\" height=\"{height:.1}\"><title>{hour}:00 {value}</title></rect></g>",
                y = 105.0 - height,
            );
            if hour % 6 == 0 {
                let _ = write!(out, "<text x=\"{x:.1}\" y=\"124\">{hour}h</text>");
            }
        }
    });
}

fn unit_table(out: &mut String, texts: &Texts, d: &Dashboard) {
    let _ = write!(
        out,
        "<section class=\"chart\"><h2>{}</h2><table id=\"by-unit\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        texts.word("by-unit"),
        texts.word("unit"),
        texts.word("received"),
        texts.word("resolved"),
        texts.word("median-processing"),
        texts.word("backlog"),
        texts.word("satisfaction"),
        texts.word("complaints"),
    );
    let opt = |v: Option<f64>| v.map_or(texts.word("none"), |v| texts.number(v));
    for line in &d.by_unit {
        let _ = write!(
            out,
            "<tr data-unit=\"{unit}\"><td>{unit}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            line.received,
            line.resolved,
            line.median_hours.map_or(texts.word("none"), |h| texts.get("hours", &[("value", texts.number(h))])),
            line.backlog,
            opt(line.satisfaction),
            line.complaints,
            unit = esc(&line.unit),
        );
    }
    out.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_the_page_uses_exists_in_every_language() {
        let ids: Vec<String> = LANGUAGES[1]
            .1
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(id, _)| id.trim().to_string()))
            .collect();
        assert!(ids.len() > 40);
        for (lang, source) in LANGUAGES {
            let texts = Texts::new(lang, source);
            for id in &ids {
                assert!(texts.bundle.get_message(id).is_some(), "{lang} lacks {id}");
            }
        }
        let fr = Texts::choose(None, Some("en-GB,en;q=0.8"));
        assert_eq!(fr.lang(), "en");
        assert_eq!(Texts::choose(Some("fr"), Some("en")).lang(), "fr");
        assert_eq!(Texts::choose(Some("xx"), None).lang(), "fr");
        assert_eq!(Texts::choose(None, None).number(3.5), "3,5");
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
