//! HTTP surface: the call WebSocket and health.

mod ws;

use crate::call::CallDeps;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    pub auth_token: Arc<SecretString>,
    pub deps: Arc<CallDeps>,
    /// Fired when live calls must stop (after the drain period).
    pub calls_cancel: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/calls", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "protocol": crate::protocol::VERSION}))
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn authorized(headers: &HeaderMap, expected: &SecretString) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": "unauthorized", "message": "a valid bearer token is required"})),
    )
        .into_response()
}
