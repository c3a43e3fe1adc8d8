//! The HTTP surface: every provider's callbacks, and `/health`.

use crate::gateway::{locked, Gateway};
use crate::providers::{self, AppState};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// Providers answer USSD within seconds: a hop still running after this is over.
const HOP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 64 * 1024;

pub fn router(gw: Arc<Gateway>) -> Router {
    providers::routes(&gw.config)
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HOP_TIMEOUT,
        ))
        .with_state(gw)
}

async fn health(State(gw): State<AppState>) -> Response {
    let counts = tokio::task::spawn_blocking(move || {
        let cases = locked(&gw.store).count_cases().unwrap_or(0);
        let outbox = locked(&gw.db).outbox_counts().unwrap_or_default();
        (cases, outbox)
    })
    .await;
    match counts {
        Ok((cases, outbox)) => {
            let outbox: serde_json::Map<String, serde_json::Value> =
                outbox.into_iter().map(|(k, v)| (k, v.into())).collect();
            Json(serde_json::json!({"status": "ok", "cases": cases, "outbox": outbox}))
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
