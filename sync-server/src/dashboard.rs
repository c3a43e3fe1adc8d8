//! The supervisor's side of the server: sign-in, the figures as JSON
//! (`GET /v1/figures`) and as a page (`GET /supervisor`), the devices'
//! sync health likewise (`GET /v1/devices`, `GET /supervisor/devices`).
//! Supervisors see only the units they are given; devices have no access
//! here.
//!
//! The API takes HTTP Basic credentials or the page's session cookie.

use crate::app::{blocking, lock, now_ms, ApiError, AppState};
use crate::devices::{self, Devices};
use crate::figures::{self, Dashboard, Selection};
use crate::page::{self, Texts};
use crate::supervisors::{SignIns, Supervisor, SESSION_MS};
use axum::extract::{Extension, Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{Duration, FixedOffset, NaiveDate, Utc};
use guichet_core::CaseHistory;
use serde::Deserialize;
use std::sync::Arc;

const COOKIE: &str = "guichet_session";
/// The longest period figures are computed over at once.
const MAX_PERIOD_DAYS: i64 = 366;
/// The period shown when none is asked for: the last 30 days.
const DEFAULT_PERIOD_DAYS: i64 = 30;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/supervisor") }))
        .route("/v1/figures", get(figures_api))
        .route("/v1/devices", get(devices_api))
        .route("/supervisor", get(dashboard_page))
        .route("/supervisor/devices", get(devices_page))
        .route("/supervisor/login", get(login_page).post(log_in))
        .route("/supervisor/logout", post(log_out))
        .layer(Extension(Arc::new(SignIns::default())))
}

#[derive(Debug, Default, Deserialize)]
pub struct FiguresQuery {
    from: Option<String>,
    to: Option<String>,
    unit: Option<String>,
    service: Option<String>,
    lang: Option<String>,
}

async fn figures_api(
    State(state): State<Arc<AppState>>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<FiguresQuery>,
) -> Result<Response, ApiError> {
    let answer = blocking(move || {
        let who = api_supervisor(&state, &sign_ins, &headers)?;
        compute(&state, &who, &query)
    })
    .await?;
    Ok(no_store(Json(answer)))
}

async fn dashboard_page(
    State(state): State<Arc<AppState>>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<FiguresQuery>,
) -> Result<Response, ApiError> {
    let texts = texts(&query.lang, &headers);
    let lang = texts.lang();
    blocking(move || {
        let Some(who) = supervisor(&state, &sign_ins, &headers)? else {
            return Ok(Redirect::to(&format!("/supervisor/login?lang={lang}")).into_response());
        };
        let dashboard = compute(&state, &who, &query)?;
        Ok(no_store(Html(page::dashboard(&texts, &who, &dashboard))))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct DevicesQuery {
    unit: Option<String>,
    lang: Option<String>,
}

async fn devices_api(
    State(state): State<Arc<AppState>>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<DevicesQuery>,
) -> Result<Response, ApiError> {
    let answer = blocking(move || {
        let who = api_supervisor(&state, &sign_ins, &headers)?;
        devices_of(&state, &who, &query)
    })
    .await?;
    Ok(no_store(Json(answer)))
}

async fn devices_page(
    State(state): State<Arc<AppState>>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<DevicesQuery>,
) -> Result<Response, ApiError> {
    let texts = texts(&query.lang, &headers);
    let lang = texts.lang();
    blocking(move || {
        let Some(who) = supervisor(&state, &sign_ins, &headers)? else {
            return Ok(Redirect::to(&format!("/supervisor/login?lang={lang}")).into_response());
        };
        let devices = devices_of(&state, &who, &query)?;
        let offset = utc_offset(state.config.utc_offset_minutes)?;
        let html = page::devices(&texts, &who, &devices, given(&query.unit), offset);
        Ok(no_store(Html(html)))
    })
    .await
}

/// The devices a supervisor asked for, over what they may see.
fn devices_of(
    state: &AppState,
    who: &Supervisor,
    query: &DevicesQuery,
) -> Result<Devices, ApiError> {
    let unit = given(&query.unit);
    if let Some(unit) = unit {
        if !who.may_see(unit) {
            return Err(ApiError::Forbidden(format!("unit {unit} is not yours")));
        }
    }
    let all = devices::device_health(state)?;
    let days = state.config.silent_device_days;
    Ok(devices::devices_for(who, &all, unit, days, now_ms()))
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn login_page(headers: HeaderMap, Query(query): Query<LangQuery>) -> Response {
    no_store(Html(page::login(&texts(&query.lang, &headers), false)))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    lang: Option<String>,
}

async fn log_in(
    State(state): State<Arc<AppState>>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let texts = texts(&form.lang, &headers);
    blocking(move || {
        let name = form.name.trim();
        let signed_in = sign_ins.sign_in(&state.registry, name, &form.password, now_ms())?;
        let Some(who) = signed_in else {
            tracing::info!("a supervisor sign-in failed");
            let page = Html(page::login(&texts, true));
            return Ok((StatusCode::UNAUTHORIZED, page).into_response());
        };
        let token = lock(&state.registry)?.open_supervisor_session(&who.name, now_ms())?;
        tracing::info!("a supervisor signed in");
        let cookie = format!(
            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            SESSION_MS / 1000
        );
        let mut response =
            Redirect::to(&format!("/supervisor?lang={}", texts.lang())).into_response();
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Ok(response)
    })
    .await
}

async fn log_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    blocking(move || {
        if let Some(token) = session_token(&headers) {
            lock(&state.registry)?.close_supervisor_session(token)?;
        }
        let mut response = Redirect::to("/supervisor/login").into_response();
        let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
        if let Ok(value) = expired.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Ok(response)
    })
    .await
}

fn texts(asked: &Option<String>, headers: &HeaderMap) -> Texts {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Texts::choose(asked.as_deref(), accept)
}

fn no_store(page: impl IntoResponse) -> Response {
    let mut response = page.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|token| !token.is_empty())
}

/// The supervisor behind an API call, or 401.
fn api_supervisor(
    state: &AppState,
    sign_ins: &SignIns,
    headers: &HeaderMap,
) -> Result<Supervisor, ApiError> {
    supervisor(state, sign_ins, headers)?
        .ok_or_else(|| ApiError::Unauthorized("supervisor credentials needed".into()))
}

/// The supervisor behind the session cookie or the Basic credentials.
fn supervisor(
    state: &AppState,
    sign_ins: &SignIns,
    headers: &HeaderMap,
) -> Result<Option<Supervisor>, ApiError> {
    if let Some(token) = session_token(headers) {
        if let Some(who) = lock(&state.registry)?.supervisor_session(token, now_ms())? {
            return Ok(Some(who));
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some(credentials) = basic else {
        return Ok(None);
    };
    let Some((name, password)) = credentials.split_once(':') else {
        return Ok(None);
    };
    Ok(sign_ins.sign_in(&state.registry, name, password, now_ms())?)
}

/// The dashboard a supervisor asked for, over what they may see.
fn compute(
    state: &AppState,
    who: &Supervisor,
    query: &FiguresQuery,
) -> Result<Dashboard, ApiError> {
    let selection = selection(query, state.config.utc_offset_minutes)?;
    if let Some(unit) = &selection.unit {
        if !who.may_see(unit) {
            return Err(ApiError::Forbidden(format!("unit {unit} is not yours")));
        }
    }
    let mut reader = lock(&state.histories)?;
    let cases: Vec<&CaseHistory> = reader
        .histories()?
        .iter()
        .filter(|c| who.may_see(&c.unit))
        .collect();
    let mut sessions = lock(&state.supervision)?
        .sessions(selection.start_ms(), selection.end_ms())
        .map_err(|e| {
            tracing::error!(error = %e, "reading USSD sessions failed");
            ApiError::Internal
        })?;
    // A session of no known unit counts only for those who see every unit.
    sessions.retain(|s| match &s.unit {
        Some(unit) => who.may_see(unit),
        None => who.units.is_none(),
    });
    Ok(figures::dashboard(&cases, &sessions, &selection, now_ms()))
}

/// A query parameter, unless empty ("all" in a form).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn utc_offset(minutes: i32) -> Result<FixedOffset, ApiError> {
    FixedOffset::east_opt(minutes * 60).ok_or_else(|| ApiError::BadRequest("bad utc offset".into()))
}

fn selection(query: &FiguresQuery, utc_offset_minutes: i32) -> Result<Selection, ApiError> {
    let utc_offset = utc_offset(utc_offset_minutes)?;
    let date = |v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("'{v}' is not a date such as 2026-11-21")))
    };
    let today = Utc::now().with_timezone(&utc_offset).date_naive();
    let to = given(&query.to).map(date).transpose()?.unwrap_or(today);
    let from = given(&query.from)
        .map(date)
        .transpose()?
        .unwrap_or(to - Duration::days(DEFAULT_PERIOD_DAYS - 1));
    if from > to {
        return Err(ApiError::BadRequest(
            "the period ends before it starts".into(),
        ));
    }
    if (to - from).num_days() >= MAX_PERIOD_DAYS {
        return Err(ApiError::BadRequest(format!(
            "a period is at most {MAX_PERIOD_DAYS} days"
        )));
    }
    Ok(Selection {
        from,
        to,
        unit: given(&query.unit).map(str::to_string),
        service: given(&query.service).map(str::to_string),
        utc_offset,
    })
}
