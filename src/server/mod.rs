//! HTTP surface: the call WebSocket, the admin API (bookings included) and
//! health.

pub mod admin;
mod bookings;
mod ws;

use crate::call::CallDeps;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
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
    pub admin: Arc<admin::Admin>,
    /// Fired when live calls must stop (after the drain period).
    pub calls_cancel: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/calls", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/v1/users/{user}/connections", get(admin::list))
        .route(
            "/v1/users/{user}/connections/{provider}",
            post(admin::connect).delete(admin::disconnect),
        )
        .route(
            "/v1/users/{user}/connections/{provider}/calendars",
            get(admin::calendars),
        )
        .route(
            "/v1/users/{user}/connections/{provider}/calendar",
            put(admin::choose_calendar),
        )
        .route("/v1/users/{user}/active_provider", put(admin::set_active))
        .route("/v1/oauth/callback", get(admin::callback))
        .route("/v1/campaigns/{id}", get(admin::campaign))
        .route("/v1/campaigns/{id}/booking", put(admin::set_booking))
        .route("/v1/bookings", get(bookings::by_call))
        .route("/v1/campaigns/{id}/bookings", get(bookings::by_campaign))
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
