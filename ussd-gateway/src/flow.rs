//! The USSD menus: one state machine, one function per screen.
//!
//! A session is a language and a step. Each hop brings the caller's latest
//! input; `advance` moves the step on and returns the next screen, `CON`
//! (show and wait) or `END` (show and close). Steps of a new request are
//! saved as a draft after every hop, so a session the network dropped can
//! be resumed by dialing again.

use crate::config::{Config, MediatorConfig};
use crate::gateway::{blocking, locked, Sessions};
use crate::i18n::{Arg, Catalog};
use crate::state::{GatewayDb, PinTries, SessionSummary};
use crate::text::{self, UssdLimit};
use argon2::password_hash::PasswordHash;
use guichet_core::{
    reference, CaseId, CaseQuery, Channel, Error as CoreError, EventKind, NewCase, Priority,
    Status, Store,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the phone shows next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Show and wait for input.
    Con(String),
    /// Show and close the session.
    End(String),
}

impl Reply {
    pub fn text(&self) -> &str {
        match self {
            Reply::Con(t) | Reply::End(t) => t,
        }
    }

    pub fn is_end(&self) -> bool {
        matches!(self, Reply::End(_))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub lang: String,
    pub step: Step,
}

/// A request being filled in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub service: Option<String>,
    pub locality: Option<String>,
    pub description: Option<String>,
    /// Filed by a mediator, for this citizen's phone.
    pub citizen: Option<String>,
    pub mediator: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Step {
    Language { page: usize, first: bool },
    Main,
    Resume { saved: Box<Step> },
    Service { page: usize, draft: Draft },
    Locality { page: usize, draft: Draft },
    Description { draft: Draft },
    Confirm { draft: Draft },
    Track,
    Mine { page: usize },
    RateChoose { page: usize },
    RateAsk { case: String, reference: String },
    MediatorPin,
    MediatorPhone { mediator: String },
}

impl Step {
    /// The flow a step belongs to, for the abandonment figures.
    pub fn flow(&self) -> &'static str {
        match self {
            Step::Language { .. } => "language",
            Step::Main => "menu",
            Step::Resume { .. } => "resume",
            Step::Service { .. }
            | Step::Locality { .. }
            | Step::Description { .. }
            | Step::Confirm { .. } => "new_request",
            Step::Track => "track",
            Step::Mine { .. } => "my_requests",
            Step::RateChoose { .. } | Step::RateAsk { .. } => "rate",
            Step::MediatorPin | Step::MediatorPhone { .. } => "mediator",
        }
    }

    fn is_request(&self) -> bool {
        self.flow() == "new_request"
    }

    /// The request being filled in, if this step is part of one.
    fn draft(&self) -> Option<&Draft> {
        match self {
            Step::Service { draft, .. }
            | Step::Locality { draft, .. }
            | Step::Description { draft }
            | Step::Confirm { draft } => Some(draft),
            Step::Resume { saved } => saved.draft(),
            _ => None,
        }
    }
}

impl Session {
    /// What the supervisor's figures keep of the session when it ends.
    pub fn summary(&self, config: &Config) -> SessionSummary {
        let draft = self.step.draft();
        SessionSummary {
            flow: self.step.flow(),
            language: self.lang.clone(),
            service: draft.and_then(|d| d.service.clone()),
            unit: draft
                .and_then(|d| d.locality.as_deref())
                .and_then(|l| config.unit_of(l))
                .map(str::to_string),
        }
    }
}

/// Everything a screen may need. The store and the gateway's state are
/// locked statement by statement, so hops that only show a menu run side
/// by side, on the async workers (see `gateway::blocking`).
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub catalog: &'a Catalog,
    pub store: &'a Mutex<Store>,
    pub db: &'a Mutex<GatewayDb>,
    pub sessions: &'a Sessions,
    pub menus: &'a Menus,
    /// The languages offered (code, own name), in menu order.
    pub languages: &'a [(String, String)],
    pub phone: &'a str,
    pub now: u64,
    /// The new request this hop files, if it does.
    pub to_file: Option<ToFile>,
}

/// An SMS to queue, once per event (`event_key`).
pub struct Outgoing {
    pub event_key: String,
    pub phone: String,
    pub text: String,
    pub at: u64,
}

/// Something went wrong behind the screens: the caller gets a polite END.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("store: {0}")]
    Store(#[from] CoreError),
    #[error("gateway state: {0}")]
    State(#[from] rusqlite::Error),
    /// A writer thread stopped (the gateway is shutting down).
    #[error("{0} stopped")]
    Stopped(&'static str),
    /// Storing a new request failed (why, as the filing thread told it).
    #[error("filing: {0}")]
    Filing(String),
}

type Flow<T> = Result<T, FlowError>;

const MORE: &str = "98";
const BACK: &str = "0";
const HOME: &str = "00";
/// Wrong PINs in a row (in any sessions) before a mediator is locked out.
const MAX_PIN_TRIES: u32 = 3;
/// The first lockout; each next one without a right PIN between doubles,
/// up to a day: a PIN cannot be guessed by calling again and again.
const PIN_LOCKOUT_MS: u64 = 15 * 60 * 1000;
const PIN_LOCKOUT_MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// The first screen of a new session.
pub fn start(ctx: &mut Ctx) -> Flow<(Session, Reply)> {
    let saved_lang = ctx.db().language(ctx.phone)?;
    let lang = saved_lang
        .clone()
        .unwrap_or_else(|| ctx.config.default_language.clone());
    let step = if saved_lang.is_none() {
        Step::Language {
            page: 0,
            first: true,
        }
    } else if let Some(saved) = resumable(ctx)? {
        Step::Resume {
            saved: Box::new(saved),
        }
    } else {
        Step::Main
    };
    let mut session = Session { lang, step };
    let reply = render(&mut session, ctx, None)?;
    Ok((session, reply))
}

/// Moves the session on with the caller's latest input.
pub fn advance(session: &mut Session, input: &str, ctx: &mut Ctx) -> Flow<Reply> {
    let input = input.trim();
    let first_dial = matches!(session.step, Step::Language { first: true, .. });
    if input == HOME && !first_dial {
        session.step = Step::Main;
        return render(session, ctx, None);
    }
    let step = session.step.clone();
    let reply = match step {
        Step::Language { page, first } => language(session, ctx, input, page, first)?,
        Step::Main => main_menu(session, ctx, input)?,
        Step::Resume { saved } => match input {
            "1" => goto(session, ctx, *saved)?,
            "2" => {
                ctx.sessions.clear_draft(ctx.phone);
                goto(session, ctx, Step::Main)?
            }
            _ => render(session, ctx, Some("invalid-choice"))?,
        },
        Step::Service { page, draft } => service(session, ctx, input, page, draft)?,
        Step::Locality { page, draft } => locality(session, ctx, input, page, draft)?,
        Step::Description { draft } => description(session, ctx, input, draft)?,
        Step::Confirm { draft } => confirm(session, ctx, input, draft)?,
        Step::Track => track(session, ctx, input)?,
        Step::Mine { page } => mine(session, ctx, input, page)?,
        Step::RateChoose { page } => rate_choose(session, ctx, input, page)?,
        Step::RateAsk { case, reference } => rate_ask(session, ctx, input, &case, &reference)?,
        Step::MediatorPin => mediator_pin(session, ctx, input)?,
        Step::MediatorPhone { mediator } => mediator_phone(session, ctx, input, mediator)?,
    };
    if session.step.is_request() && !reply.is_end() {
        let saved = serde_json::to_string(&session.step).expect("steps serialize");
        ctx.sessions.save_draft(ctx.phone, saved, ctx.now);
    }
    Ok(reply)
}

fn goto(session: &mut Session, ctx: &mut Ctx, step: Step) -> Flow<Reply> {
    session.step = step;
    render(session, ctx, None)
}

/// An unfinished request of this phone, recent enough to resume.
fn resumable(ctx: &Ctx) -> Flow<Option<Step>> {
    let window = ctx.config.ussd.resume_window_secs * 1000;
    let Some(saved) = ctx.sessions.draft(ctx.phone, ctx.now, window) else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&saved).ok())
}

// ---------------------------------------------------------------- screens

/// What the current step shows: a list to choose from (paged), a prompt
/// for free input, or a last message.
enum Content {
    List {
        title: String,
        items: Vec<String>,
        page: usize,
    },
    Prompt(String),
    Last(String),
}

fn content(session: &Session, ctx: &Ctx) -> Flow<Content> {
    let lang = session.lang.as_str();
    let t = |id: &str| ctx.catalog.text(lang, id, &[]);
    let list =
        |title: String, items: Vec<String>, page: usize| Content::List { title, items, page };
    Ok(match &session.step {
        Step::Language { page, .. } => list(t("language-menu"), language_names(ctx), *page),
        Step::Main => {
            let mut items = [
                "main-new",
                "main-track",
                "main-mine",
                "main-rate",
                "main-language",
            ]
            .map(t)
            .to_vec();
            if ctx.config.mediator_by_phone(ctx.phone).is_some() {
                items.push(t("main-mediator"));
            }
            list(t("main-menu-title"), items, 0)
        }
        Step::Resume { .. } => list(
            t("resume-offer"),
            vec![t("resume-continue"), t("resume-restart")],
            0,
        ),
        Step::Service { page, .. } => {
            let names = ctx
                .config
                .services
                .iter()
                .map(|s| ctx.config.service_name(&s.id, lang).to_string())
                .collect();
            list(t("choose-service"), names, *page)
        }
        Step::Locality { page, .. } => {
            let names = ctx
                .config
                .localities()
                .into_iter()
                .map(String::from)
                .collect();
            list(t("choose-locality"), names, *page)
        }
        Step::Description { .. } => Content::Prompt(t("enter-description")),
        Step::Confirm { draft } => {
            let service = ctx
                .config
                .service_name(draft.service.as_deref().unwrap_or_default(), lang);
            let locality = draft.locality.as_deref().unwrap_or_default();
            let title = ctx.catalog.text(
                lang,
                "confirm-request",
                &[
                    ("service", Arg::Str(service)),
                    ("locality", Arg::Str(locality)),
                ],
            );
            list(title, vec![t("confirm-yes"), t("confirm-no")], 0)
        }
        Step::Track => Content::Prompt(t("enter-reference")),
        Step::Mine { page } => {
            let cases = own_cases(ctx, false)?;
            if cases.is_empty() {
                return Ok(Content::Last(t("my-requests-none")));
            }
            let count = [("count", Arg::Num(cases.len() as i64))];
            let items = cases
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        c.reference,
                        status_text(ctx.catalog, lang, c.status)
                    )
                })
                .collect();
            list(
                ctx.catalog.text(lang, "my-requests-title", &count),
                items,
                *page,
            )
        }
        Step::RateChoose { page } => {
            let cases = own_cases(ctx, true)?;
            if cases.is_empty() {
                return Ok(Content::Last(t("rate-none")));
            }
            let items = cases.iter().map(|c| c.reference.clone()).collect();
            list(t("rate-choose"), items, *page)
        }
        Step::RateAsk { reference, .. } => Content::Prompt(ctx.catalog.text(
            lang,
            "rate-ask",
            &[("reference", Arg::Str(reference))],
        )),
        Step::MediatorPin => Content::Prompt(t("mediator-enter-pin")),
        Step::MediatorPhone { .. } => Content::Prompt(t("mediator-enter-phone")),
    })
}

/// The screen of the current step, with an optional notice on top.
pub fn render(session: &mut Session, ctx: &mut Ctx, notice: Option<&str>) -> Flow<Reply> {
    let lang = session.lang.as_str();
    let with_notice = |title: String| match notice {
        Some(id) => format!("{}\n{title}", ctx.catalog.text(lang, id, &[])),
        None => title,
    };
    Ok(match content(session, ctx)? {
        Content::List { title, items, page } => {
            let pages = menu_pages(ctx, lang, &with_notice(title), &items);
            let shown = page.min(pages.len().saturating_sub(1));
            Reply::Con(pages.get(shown).cloned().unwrap_or_default())
        }
        Content::Prompt(prompt) => Reply::Con(with_notice(prompt)),
        Content::Last(text) => Reply::End(text),
    })
}

/// How many pages the current list takes, worked out only when the caller
/// turns the page (the one input that needs it).
fn pages_if_turning(input: &str, session: &Session, ctx: &Ctx) -> Flow<usize> {
    if input == MORE {
        list_pages(session, ctx)
    } else {
        Ok(1)
    }
}

/// How many pages the current step's list takes.
fn list_pages(session: &Session, ctx: &Ctx) -> Flow<usize> {
    Ok(match content(session, ctx)? {
        Content::List { title, items, .. } => menu_pages(ctx, &session.lang, &title, &items).len(),
        _ => 1,
    })
}

fn language(
    session: &mut Session,
    ctx: &mut Ctx,
    input: &str,
    page: usize,
    first: bool,
) -> Flow<Reply> {
    let codes = ctx.catalog_languages();
    match choose(
        input,
        codes.len(),
        page,
        pages_if_turning(input, session, ctx)?,
    ) {
        Choice::Item(i) => {
            session.lang = codes[i].clone();
            ctx.db().set_language(ctx.phone, &session.lang)?;
            let next = match resumable(ctx)? {
                Some(saved) if first => Step::Resume {
                    saved: Box::new(saved),
                },
                _ => Step::Main,
            };
            goto(session, ctx, next)
        }
        Choice::Page(p) => goto(session, ctx, Step::Language { page: p, first }),
        Choice::Back if !first => goto(session, ctx, Step::Main),
        _ => render(session, ctx, Some("invalid-choice")),
    }
}

fn main_menu(session: &mut Session, ctx: &mut Ctx, input: &str) -> Flow<Reply> {
    let mediator = ctx.config.mediator_by_phone(ctx.phone);
    if let (Some(m), "6") = (mediator, input) {
        if ctx.db().pin_tries(&m.id)?.locked_until > ctx.now {
            return locked_out(session, ctx);
        }
    }
    let mediator = mediator.is_some();
    let next = match input {
        "1" => Step::Service {
            page: 0,
            draft: Draft::default(),
        },
        "2" => Step::Track,
        "3" => Step::Mine { page: 0 },
        "4" => Step::RateChoose { page: 0 },
        "5" => Step::Language {
            page: 0,
            first: false,
        },
        "6" if mediator => Step::MediatorPin,
        _ => return render(session, ctx, Some("invalid-choice")),
    };
    goto(session, ctx, next)
}

fn service(
    session: &mut Session,
    ctx: &mut Ctx,
    input: &str,
    page: usize,
    mut draft: Draft,
) -> Flow<Reply> {
    let count = ctx.config.services.len();
    let pages = pages_if_turning(input, session, ctx)?;
    match choose(input, count, page, pages) {
        Choice::Item(i) => {
            draft.service = Some(ctx.config.services[i].id.clone());
            goto(session, ctx, Step::Locality { page: 0, draft })
        }
        Choice::Page(p) => goto(session, ctx, Step::Service { page: p, draft }),
        Choice::Back => {
            ctx.sessions.clear_draft(ctx.phone);
            goto(session, ctx, Step::Main)
        }
        Choice::Invalid => render(session, ctx, Some("invalid-choice")),
    }
}

fn locality(
    session: &mut Session,
    ctx: &mut Ctx,
    input: &str,
    page: usize,
    mut draft: Draft,
) -> Flow<Reply> {
    let localities: Vec<String> = ctx
        .config
        .localities()
        .into_iter()
        .map(String::from)
        .collect();
    let pages = pages_if_turning(input, session, ctx)?;
    match choose(input, localities.len(), page, pages) {
        Choice::Item(i) => {
            draft.locality = Some(localities[i].clone());
            goto(session, ctx, Step::Description { draft })
        }
        Choice::Page(p) => goto(session, ctx, Step::Locality { page: p, draft }),
        Choice::Back => goto(session, ctx, Step::Service { page: 0, draft }),
        Choice::Invalid => render(session, ctx, Some("invalid-choice")),
    }
}

fn description(session: &mut Session, ctx: &mut Ctx, input: &str, mut draft: Draft) -> Flow<Reply> {
    let limit = ctx.config.ussd.max_input_chars;
    draft.description = match input {
        "0" | "" => None,
        text => Some(text.chars().take(limit).collect()),
    };
    goto(session, ctx, Step::Confirm { draft })
}

fn confirm(session: &mut Session, ctx: &mut Ctx, input: &str, draft: Draft) -> Flow<Reply> {
    match input {
        "1" => file_request(session, ctx, draft),
        "2" => {
            ctx.sessions.clear_draft(ctx.phone);
            Ok(Reply::End(ctx.catalog.text(
                &session.lang,
                "request-cancelled",
                &[],
            )))
        }
        _ => render(session, ctx, Some("invalid-choice")),
    }
}

/// Hands the request over to be stored in the gateway's replica; `filed`
/// answers once it is.
fn file_request(session: &mut Session, ctx: &mut Ctx, draft: Draft) -> Flow<Reply> {
    let lang = session.lang.clone();
    let service = draft.service.clone().unwrap_or_default();
    let locality = draft.locality.clone().unwrap_or_default();
    let Some(unit) = ctx.config.unit_of(&locality).map(String::from) else {
        return Ok(Reply::End(ctx.catalog.text(
            &lang,
            "service-unavailable",
            &[],
        )));
    };
    let (requester, channel, citizen_lang) = match &draft.citizen {
        Some(citizen) => {
            let theirs = ctx.db().language(citizen)?.unwrap_or_else(|| lang.clone());
            (citizen.clone(), Channel::Mediator, theirs)
        }
        None => (ctx.phone.to_string(), Channel::Ussd, lang.clone()),
    };
    let new = NewCase {
        service: service.clone(),
        requester_phone: requester.clone(),
        requester_name: String::new(),
        requester_language: citizen_lang.clone(),
        locality: locality.clone(),
        channel,
        mediator: draft.mediator.clone(),
        unit,
        assignee: None,
        priority: Priority::Normal,
        description: draft.description.clone().unwrap_or_default(),
        status: Status::Received,
    };
    // The gateway stores it (awaiting the commit without holding a thread)
    // and then calls `filed` for the screen that names the reference.
    ctx.to_file = Some(ToFile {
        new,
        after: AfterFiling {
            lang,
            draft,
            requester,
            citizen_lang,
            service,
            channel,
            at: ctx.now,
        },
    });
    // Filing ends the session; `filed` writes the screen.
    Ok(Reply::End(String::new()))
}

/// A new request a hop asks the gateway to store.
pub struct ToFile {
    pub new: NewCase,
    pub after: AfterFiling,
}

/// What the screen and the SMS after the filing need.
pub struct AfterFiling {
    /// The caller's language.
    lang: String,
    draft: Draft,
    requester: String,
    citizen_lang: String,
    service: String,
    channel: Channel,
    /// When the hop came.
    at: u64,
}

/// The screen once the request is stored, and the SMS that tell its
/// reference. Runs where the request was stored, so that the SMS are
/// queued in the same round of writes.
pub fn filed(
    config: &Config,
    catalog: &Catalog,
    after: AfterFiling,
    stored: Result<(CaseId, String), guichet_core::Error>,
) -> Flow<(Reply, Vec<Outgoing>)> {
    let (id, reference) = stored?;
    let AfterFiling {
        lang,
        draft,
        requester,
        citizen_lang,
        service,
        channel,
        at,
    } = after;
    let sms = |event_key: String, phone: &str, text: String| Outgoing {
        event_key,
        phone: phone.to_string(),
        text,
        at,
    };
    // A mediator's filing asks the citizen's consent; any other tells the
    // requester the reference.
    let for_citizen = draft.citizen.as_deref().zip(draft.mediator.as_deref());
    let (key, text) = filing_sms(
        config,
        catalog,
        id,
        &reference,
        &service,
        &citizen_lang,
        for_citizen.map(|(_, mediator)| mediator),
    );
    let (reply, sms) = match for_citizen {
        Some((citizen, _)) => {
            let screen = catalog.text(
                &lang,
                "mediator-request-created",
                &[
                    ("reference", Arg::Str(&reference)),
                    ("phone", Arg::Str(citizen)),
                ],
            );
            (screen, sms(key, citizen, text))
        }
        None => {
            let screen = catalog.text(
                &lang,
                "request-created",
                &[("reference", Arg::Str(&reference))],
            );
            (screen, sms(key, &requester, text))
        }
    };
    tracing::debug!(case = %id, channel = channel.as_str(), "request filed by USSD");
    Ok((Reply::End(reply), vec![sms]))
}

/// The SMS a filing sends, its event key and text: the reference to the
/// requester or, for a mediator's filing, the consent request to the
/// citizen. One wording for the filing and for the outbox, which derives it
/// again after a power cut.
pub(crate) fn filing_sms(
    config: &Config,
    catalog: &Catalog,
    id: CaseId,
    reference: &str,
    service: &str,
    lang: &str,
    mediator: Option<&str>,
) -> (String, String) {
    let reference = Arg::Str(reference);
    let service = Arg::Str(config.service_name(service, lang));
    match mediator {
        Some(mediator) => {
            let name = config
                .mediator(mediator)
                .map_or(mediator, |m| m.name.as_str());
            let yes = catalog.text(lang, "keyword-yes", &[]);
            let no = catalog.text(lang, "keyword-no", &[]);
            let args = [
                ("mediator", Arg::Str(name)),
                ("reference", reference),
                ("service", service),
                ("yes", Arg::Str(&yes)),
                ("no", Arg::Str(&no)),
            ];
            let text = catalog.text(lang, "sms-mediator-consent", &args);
            (format!("consent:{id}"), text)
        }
        None => {
            let args = [("reference", reference), ("service", service)];
            let text = catalog.text(lang, "sms-request-created", &args);
            (format!("created:{id}"), text)
        }
    }
}

fn track(session: &mut Session, ctx: &mut Ctx, input: &str) -> Flow<Reply> {
    let lang = session.lang.clone();
    let found = match reference::parse(input) {
        Err(_) => return render(session, ctx, Some("reference-invalid")),
        Ok(r) => ctx.with_store(|s| s.find_by_reference(&r)),
    };
    match found {
        Ok(case) => {
            record_inquiry(ctx, &case, "USSD");
            Ok(Reply::End(status_message(
                ctx,
                &lang,
                &case,
                "track",
                |id, args| ctx.catalog.text(&lang, id, args),
            )))
        }
        Err(CoreError::NotFound(_)) => Ok(Reply::End(ctx.catalog.text(
            &lang,
            "reference-unknown",
            &[],
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The status of a case in the caller's language, rendered by `render`
/// (plain for USSD, with the GSM-7 fallback where configured for SMS).
/// Only the requester and the case's mediator see which service it is
/// about; nobody sees more.
pub fn status_message(
    ctx: &Ctx,
    lang: &str,
    case: &guichet_core::Case,
    prefix: &str,
    render: impl Fn(&str, &[(&str, Arg)]) -> String,
) -> String {
    let own = is_own(ctx, case);
    let status = format!("status-{}", case.status.as_str());
    let next = format!("next-{}", case.status.as_str());
    let mut args = vec![
        ("reference", Arg::Str(&case.reference)),
        ("status", Arg::Msg(&status)),
        ("next", Arg::Msg(&next)),
    ];
    let service;
    let id = if own && prefix == "track" {
        service = ctx.config.service_name(&case.service, lang).to_string();
        args.push(("service", Arg::Str(&service)));
        "track-status-own".to_string()
    } else {
        format!("{prefix}-status")
    };
    render(&id, &args)
}

/// Whether the caller is the case's requester or its mediator.
fn is_own(ctx: &Ctx, case: &guichet_core::Case) -> bool {
    case.requester_phone == ctx.phone
        || case
            .mediator
            .as_deref()
            .and_then(|m| ctx.config.mediator(m))
            .is_some_and(|m| m.phone == ctx.phone)
}

/// The requester (or their mediator) asking about their case is a repeat
/// contact: recorded on the case for the agents and the figures. Anyone
/// else tracking it leaves no trace. A failure to record never keeps the
/// caller from the answer.
pub fn record_inquiry(ctx: &Ctx, case: &guichet_core::Case, channel: &str) {
    if !is_own(ctx, case) {
        return;
    }
    let text = format!("the requester asked about the case by {channel}");
    let recorded = ctx.with_store(|s| s.write(|w| w.add_event(case.id, EventKind::Inquiry, &text)));
    if let Err(e) = recorded {
        tracing::error!(case = %case.id, error = %e, "recording an inquiry failed");
    }
}

pub fn status_text(catalog: &Catalog, lang: &str, status: Status) -> String {
    catalog.text(lang, &format!("status-{}", status.as_str()), &[])
}

fn mine(session: &mut Session, ctx: &mut Ctx, input: &str, page: usize) -> Flow<Reply> {
    let cases = own_cases(ctx, false)?;
    let pages = pages_if_turning(input, session, ctx)?;
    match choose(input, cases.len(), page, pages) {
        Choice::Item(i) => {
            let lang = session.lang.clone();
            record_inquiry(ctx, &cases[i], "USSD");
            Ok(Reply::End(status_message(
                ctx,
                &lang,
                &cases[i],
                "track",
                |id, args| ctx.catalog.text(&lang, id, args),
            )))
        }
        Choice::Page(p) => goto(session, ctx, Step::Mine { page: p }),
        Choice::Back => goto(session, ctx, Step::Main),
        Choice::Invalid => render(session, ctx, Some("invalid-choice")),
    }
}

fn rate_choose(session: &mut Session, ctx: &mut Ctx, input: &str, page: usize) -> Flow<Reply> {
    let cases = own_cases(ctx, true)?;
    let pages = pages_if_turning(input, session, ctx)?;
    match choose(input, cases.len(), page, pages) {
        Choice::Item(i) => {
            let next = Step::RateAsk {
                case: cases[i].id.to_string(),
                reference: cases[i].reference.clone(),
            };
            goto(session, ctx, next)
        }
        Choice::Page(p) => goto(session, ctx, Step::RateChoose { page: p }),
        Choice::Back => goto(session, ctx, Step::Main),
        Choice::Invalid => render(session, ctx, Some("invalid-choice")),
    }
}

fn rate_ask(
    session: &mut Session,
    ctx: &mut Ctx,
    input: &str,
    case: &str,
    _reference: &str,
) -> Flow<Reply> {
    let rating = match input.parse::<u8>() {
        Ok(r @ 1..=5) => r,
        _ => return render(session, ctx, Some("invalid-choice")),
    };
    let Ok(id) = case.parse::<CaseId>() else {
        return Ok(Reply::End(ctx.catalog.text(
            &session.lang,
            "service-unavailable",
            &[],
        )));
    };
    match ctx.with_store(|s| s.write(|w| w.rate(id, rating))) {
        Ok(()) => Ok(Reply::End(ctx.catalog.text(
            &session.lang,
            "rate-thanks",
            &[],
        ))),
        Err(CoreError::InvalidInput(_)) => Ok(Reply::End(ctx.catalog.text(
            &session.lang,
            "rate-none",
            &[],
        ))),
        Err(e) => Err(e.into()),
    }
}

fn mediator_pin(session: &mut Session, ctx: &mut Ctx, input: &str) -> Flow<Reply> {
    let Some(mediator) = ctx.config.mediator_by_phone(ctx.phone) else {
        return goto(session, ctx, Step::Main);
    };
    let id = mediator.id.clone();
    let Some(tries) = count_pin_try(ctx, &id)? else {
        return locked_out(session, ctx);
    };
    // Slow on purpose (Argon2): off the async workers.
    if blocking(|| pin_matches(input, mediator)) {
        ctx.db().clear_pin_tries(&id)?;
        return goto(session, ctx, Step::MediatorPhone { mediator: id });
    }
    if tries.locked_until > ctx.now {
        tracing::warn!("a mediator's PIN was refused {MAX_PIN_TRIES} times in a row: locked out");
        return locked_out(session, ctx);
    }
    render(session, ctx, Some("mediator-pin-wrong"))
}

/// Counts a mediator's PIN try, before the PIN is checked, so that sessions
/// side by side get no more tries between them than one would: a wrong PIN
/// stays counted, a right one clears the count. None while locked out.
fn count_pin_try(ctx: &Ctx, mediator: &str) -> Flow<Option<PinTries>> {
    let db = ctx.db();
    db.transaction(|| {
        let mut tries = db.pin_tries(mediator)?;
        if tries.locked_until > ctx.now {
            return Ok(None);
        }
        tries.failures += 1;
        if tries.failures % MAX_PIN_TRIES == 0 {
            let lockouts = tries.failures / MAX_PIN_TRIES;
            let lockout = PIN_LOCKOUT_MS << (lockouts - 1).min(16);
            tries.locked_until = ctx.now + lockout.min(PIN_LOCKOUT_MAX_MS);
        }
        db.set_pin_tries(mediator, tries)?;
        Ok(Some(tries))
    })
}

fn locked_out(session: &Session, ctx: &Ctx) -> Flow<Reply> {
    Ok(Reply::End(ctx.catalog.text(
        &session.lang,
        "too-many-attempts",
        &[],
    )))
}

fn mediator_phone(
    session: &mut Session,
    ctx: &mut Ctx,
    input: &str,
    mediator: String,
) -> Flow<Reply> {
    match normalize_phone(input, ctx.config.country_calling_code.as_deref()) {
        Some(citizen) => {
            let draft = Draft {
                citizen: Some(citizen),
                mediator: Some(mediator),
                ..Draft::default()
            };
            goto(session, ctx, Step::Service { page: 0, draft })
        }
        None => render(session, ctx, Some("mediator-phone-invalid")),
    }
}

/// A mediator's PIN as the configuration keeps it.
enum StoredPin<'a> {
    /// Salted and slow to guess: Argon2id, as a PHC string.
    Argon2(Box<PasswordHash<'a>>),
    /// Unsalted SHA-256, hex, from configurations written before.
    Sha256(&'a str),
}

fn stored_pin(m: &MediatorConfig) -> Result<StoredPin<'_>, String> {
    let make_one = "make one with `guichet-ussd-gateway hash-pin PIN`";
    match (&m.pin_hash, &m.pin_sha256) {
        (Some(_), Some(_)) => Err(format!(
            "mediator '{}': give pin_hash only, not pin_sha256 too",
            m.id
        )),
        (Some(phc), None) => match PasswordHash::new(phc.trim()) {
            Ok(hash) if is_argon2(&hash) => Ok(StoredPin::Argon2(Box::new(hash))),
            _ => Err(format!(
                "mediator '{}': pin_hash is not an Argon2 PIN hash: {make_one}",
                m.id
            )),
        },
        (None, Some(hex)) => Ok(StoredPin::Sha256(hex)),
        (None, None) => Err(format!("mediator '{}': no pin_hash: {make_one}", m.id)),
    }
}

/// An Argon2 hash with its salt, its parameters and its output.
fn is_argon2(hash: &PasswordHash) -> bool {
    hash.salt.is_some()
        && hash.hash.is_some()
        && argon2::Algorithm::new(hash.algorithm.as_str()).is_ok()
        && argon2::Params::try_from(hash).is_ok()
}

/// Checks every mediator's PIN setting before the gateway starts; warns of
/// the unsalted ones of older configurations, which still work.
pub fn check_mediator_pins(config: &Config) -> Result<(), String> {
    for m in &config.mediators {
        if let StoredPin::Sha256(_) = stored_pin(m)? {
            tracing::warn!(
                "mediator '{}': pin_sha256 is unsalted and quick to guess from a copy of the \
                 configuration; replace it with pin_hash (guichet-ussd-gateway hash-pin PIN)",
                m.id
            );
        }
    }
    Ok(())
}

/// A PIN salted (16 random bytes) and hashed with Argon2id: the PHC string
/// a mediator's `pin_hash` holds. A PIN is 4 to 12 keypad digits.
pub fn hash_pin(pin: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use ring::rand::SecureRandom;
    let pin = pin.trim();
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a PIN is 4 to 12 digits, typed on a keypad".into());
    }
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness for the salt")?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `input` is the mediator's PIN. A setting that cannot be read
/// matches nothing.
fn pin_matches(input: &str, mediator: &MediatorConfig) -> bool {
    use argon2::password_hash::PasswordVerifier;
    let input = input.trim().as_bytes();
    match stored_pin(mediator) {
        Ok(StoredPin::Argon2(hash)) => argon2::Argon2::default()
            .verify_password(input, &hash)
            .is_ok(),
        Ok(StoredPin::Sha256(expected)) => {
            let given: String = ring::digest::digest(&ring::digest::SHA256, input)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            // Constant-time comparison: the PIN hash is a secret.
            crate::providers::constant_time_eq(
                given.as_bytes(),
                expected.trim().to_lowercase().as_bytes(),
            )
        }
        Err(_) => false,
    }
}

/// A phone number typed on a keypad (no `+` there): `00221...` or
/// `221...` with the country code, or a national number when the
/// deployment set its country calling code.
pub fn normalize_phone(typed: &str, country_code: Option<&str>) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let e164 = if let Some(rest) = digits.strip_prefix('+') {
        format!("+{rest}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if let (Some(code), Some(national)) = (country_code, digits.strip_prefix('0')) {
        format!("+{code}{national}")
    } else if let Some(code) = country_code.filter(|c| !digits.starts_with(*c)) {
        format!("+{code}{digits}")
    } else if country_code.is_some() {
        format!("+{digits}")
    } else {
        // A national number and no country configured: guessing would
        // text a stranger abroad.
        return None;
    };
    guichet_core::model::check_phone(&e164).ok().map(|()| e164)
}

/// The caller's own cases, most recent first; only those to rate when
/// `to_rate`.
fn own_cases(ctx: &Ctx, to_rate: bool) -> Flow<Vec<guichet_core::Case>> {
    let query = CaseQuery {
        requester_phone: Some(ctx.phone.to_string()),
        limit: 100,
        ..CaseQuery::default()
    };
    let cases = ctx.with_store(|s| s.list_cases(&query))?;
    Ok(cases
        .into_iter()
        .filter(|c| !to_rate || (c.status.is_done() && c.rating.is_none()))
        .collect())
}

fn language_names(ctx: &Ctx) -> Vec<String> {
    ctx.languages.iter().map(|(_, name)| name.clone()).collect()
}

impl Ctx<'_> {
    /// Works on the case store, off the async workers: its lock may be
    /// held by a commit waiting on the disk.
    pub fn with_store<T>(&self, work: impl FnOnce(&mut Store) -> T) -> T {
        blocking(|| work(&mut locked(self.store)))
    }

    pub fn db(&self) -> MutexGuard<'_, GatewayDb> {
        locked(self.db)
    }

    fn catalog_languages(&self) -> Vec<String> {
        self.languages
            .iter()
            .map(|(code, _)| code.clone())
            .collect()
    }
}

// ---------------------------------------------------------------- lists

enum Choice {
    Item(usize),
    Page(usize),
    Back,
    Invalid,
}

/// Reads a choice in a numbered list shown `page` of `pages`: items are
/// numbered across pages, `98` turns the page, `0` goes back.
fn choose(input: &str, count: usize, page: usize, pages: usize) -> Choice {
    match input {
        MORE if page + 1 < pages => Choice::Page(page + 1),
        BACK if page > 0 => Choice::Page(page - 1),
        BACK => Choice::Back,
        _ => match input.parse::<usize>() {
            Ok(n) if (1..=count).contains(&n) => Choice::Item(n - 1),
            _ => Choice::Invalid,
        },
    }
}

fn limit(config: &Config) -> UssdLimit {
    UssdLimit {
        gsm7_chars: config.ussd.screen_gsm7,
        ucs2_units: config.ussd.screen_ucs2,
    }
}

/// Every page of a numbered list under a title, with the localized
/// navigation lines; items are numbered 1..n across pages.
fn menu_pages(ctx: &Ctx, lang: &str, title: &str, items: &[String]) -> Arc<[String]> {
    let key = format!("{lang}\u{1f}{title}\u{1f}{}", items.join("\u{1e}"));
    ctx.menus.pages(key, || {
        let nav = text::Nav {
            more: format!("{MORE} {}", ctx.catalog.text(lang, "nav-more", &[])),
            back: format!("{BACK} {}", ctx.catalog.text(lang, "nav-back", &[])),
        };
        let mut menu = text::Menu::new(title);
        for (i, item) in items.iter().enumerate() {
            menu = menu.item((i + 1).to_string(), item);
        }
        menu.render(&nav, &limit(ctx.config))
    })
}

/// Menus laid out, by language, title and items: the same few are shown
/// at every hop, and laying one out measures a dozen candidate screens.
#[derive(Default)]
pub struct Menus(Mutex<HashMap<String, Arc<[String]>>>);

/// Lists of a caller's own cases vary without end: past this many menus,
/// the cache starts over.
const MAX_MENUS: usize = 4096;

impl Menus {
    fn pages(&self, key: String, lay_out: impl FnOnce() -> Vec<String>) -> Arc<[String]> {
        if let Some(pages) = locked(&self.0).get(&key) {
            return pages.clone();
        }
        let pages: Arc<[String]> = lay_out().into();
        let mut menus = locked(&self.0);
        if menus.len() >= MAX_MENUS {
            menus.clear();
        }
        menus.insert(key, pages.clone());
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_typed_on_a_keypad_become_e164() {
        assert_eq!(
            normalize_phone("00221771234567", None).as_deref(),
            Some("+221771234567")
        );
        assert_eq!(
            normalize_phone("221771234567", Some("221")).as_deref(),
            Some("+221771234567")
        );
        assert_eq!(
            normalize_phone("0771234567", Some("221")).as_deref(),
            Some("+221771234567")
        );
        assert_eq!(
            normalize_phone("771234567", Some("221")).as_deref(),
            Some("+221771234567")
        );
        assert_eq!(normalize_phone("12", Some("221")), None);
        assert_eq!(normalize_phone("77a", None), None);
        assert_eq!(
            normalize_phone("771234567", None),
            None,
            "a national number needs the configured country"
        );
    }

    #[test]
    fn choices_number_items_across_pages() {
        assert!(matches!(choose("7", 10, 1, 2), Choice::Item(6)));
        assert!(matches!(choose("98", 10, 0, 2), Choice::Page(1)));
        assert!(matches!(choose("98", 10, 1, 2), Choice::Invalid));
        assert!(matches!(choose("0", 10, 1, 2), Choice::Page(0)));
        assert!(matches!(choose("0", 10, 0, 2), Choice::Back));
        assert!(matches!(choose("11", 10, 0, 2), Choice::Invalid));
        assert!(matches!(choose("x", 10, 0, 2), Choice::Invalid));
    }

    fn mediator(pin_hash: Option<String>, pin_sha256: Option<&str>) -> MediatorConfig {
        MediatorConfig {
            id: "med-awa".into(),
            name: "Awa Ndiaye".into(),
            phone: "+221770000009".into(),
            pin_hash,
            pin_sha256: pin_sha256.map(String::from),
        }
    }

    #[test]
    fn pins_are_salted_and_slow_hashed() {
        let (one, two) = (hash_pin("4821").unwrap(), hash_pin("4821").unwrap());
        assert!(one.starts_with("$argon2id$"), "{one}");
        assert_ne!(one, two, "a salt of its own each time");
        for hash in [one, two] {
            let m = mediator(Some(hash), None);
            assert!(pin_matches("4821", &m));
            assert!(pin_matches(" 4821 ", &m));
            assert!(!pin_matches("4822", &m));
        }
        assert!(hash_pin("12").is_err(), "too short");
        assert!(hash_pin("12a4").is_err(), "not keypad digits");
    }

    /// Three wrong tries lock a mediator out for 15 minutes, the next three
    /// for 30, and so on; the right PIN starts the count over.
    #[test]
    fn lockouts_last_longer_each_time_until_the_right_pin() {
        let dir = tempfile::TempDir::new().unwrap();
        let gw = crate::sms::tests::gateway(dir.path());
        let try_at = |now: u64| {
            let ctx = Ctx {
                config: &gw.config,
                catalog: &gw.catalog,
                store: &gw.store,
                db: &gw.db,
                sessions: &gw.sessions,
                menus: &gw.menus,
                languages: &gw.languages,
                phone: "+221770000009",
                now,
                to_file: None,
            };
            count_pin_try(&ctx, "med-awa").unwrap()
        };
        let minute = 60_000;
        let t0 = 1_000 * minute;
        assert_eq!(try_at(t0).map(|t| t.failures), Some(1));
        assert_eq!(try_at(t0).map(|t| t.locked_until), Some(0));
        let third = try_at(t0 + 1).unwrap();
        assert_eq!(third.locked_until, t0 + 1 + 15 * minute);
        assert_eq!(try_at(t0 + 14 * minute), None, "locked out");
        let after = try_at(t0 + 16 * minute).unwrap();
        assert_eq!(
            (after.failures, after.locked_until),
            (4, third.locked_until)
        );
        try_at(t0 + 16 * minute);
        let sixth = try_at(t0 + 16 * minute).unwrap();
        assert_eq!(sixth.locked_until, t0 + 46 * minute, "twice as long");
        locked(&gw.db).clear_pin_tries("med-awa").unwrap();
        assert_eq!(try_at(t0 + 17 * minute).map(|t| t.failures), Some(1));
    }

    #[test]
    fn older_unsalted_pins_still_work_and_bad_settings_match_nothing() {
        // SHA-256 of 1234, as configurations written before hold it.
        let sha = "03AC674216F3E15C761EE1A5E255F067953623C8B388B4459E13F978D7C846F4";
        let older = mediator(None, Some(sha));
        assert!(pin_matches("1234", &older));
        assert!(!pin_matches("1235", &older));
        let garbled = mediator(Some("$argon2id$not-a-hash".into()), None);
        assert!(stored_pin(&garbled).is_err());
        assert!(!pin_matches("1234", &garbled));
        assert!(stored_pin(&mediator(None, None)).is_err());
        let both = mediator(Some(hash_pin("1234").unwrap()), Some(sha));
        assert!(stored_pin(&both).is_err(), "one setting, not two");
    }
}
