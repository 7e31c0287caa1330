//! HTTP surface: the call WebSocket, the admin API (bookings and
//! diagnostics included, described at `/v1/openapi.json`), the settings
//! pages owners reach through a signed link (`/settings`), health,
//! readiness and `/metrics`.

mod accounts;
pub mod admin;
mod bookings;
mod diagnostics;
mod headers;
mod health;
pub mod limits;
pub(crate) mod listen;
pub mod openapi;
mod routes;
mod settings;
mod ws;

/// The read buffer of a call socket (the load tool gives its bare server
/// the same).
#[cfg(feature = "testkit")]
pub(crate) use ws::READ_BUFFER as CALL_READ_BUFFER;

use crate::call::CallDeps;
use axum::extract::State;
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
    /// Fired when shutdown starts: readiness fails, new calls are refused.
    pub draining: CancellationToken,
    /// `/metrics` asks for the admin token (`--metrics-auth`).
    pub metrics_auth: bool,
    /// How long a call socket may wait for `start` and go silent.
    pub limits: Arc<limits::Limits>,
}

pub fn router(state: AppState) -> Router {
    routes().into_router().with_state(state)
}

/// Every path the router serves, in the order they are routed.
pub fn paths() -> Vec<&'static str> {
    routes().paths().to_vec()
}

fn routes() -> routes::Routes {
    routes::Routes::new()
        .route("/v1/calls", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/openapi.json", get(openapi::document))
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
        .route("/v1/users/{user}/settings_link", post(settings::link))
        .route("/v1/oauth/callback", get(admin::callback))
        .route(
            "/v1/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route(
            "/v1/users/{user}",
            get(accounts::user)
                .put(accounts::update_user)
                .delete(accounts::delete_user),
        )
        .route(
            "/v1/teams",
            get(accounts::list_teams).post(accounts::create_team),
        )
        .route(
            "/v1/teams/{team}",
            get(accounts::team).delete(accounts::delete_team),
        )
        .route(
            "/v1/teams/{team}/members/{user}",
            put(accounts::add_member).delete(accounts::remove_member),
        )
        .route(
            "/v1/campaigns",
            get(accounts::list_campaigns).post(accounts::create_campaign),
        )
        .route(
            "/v1/campaigns/{id}",
            get(admin::campaign)
                .put(accounts::update_campaign)
                .delete(accounts::delete_campaign),
        )
        .route("/v1/campaigns/{id}/booking", put(admin::set_booking))
        .route("/v1/bookings", get(bookings::by_call))
        .route("/v1/campaigns/{id}/bookings", get(bookings::by_campaign))
        .route(
            "/v1/campaigns/{id}/diagnostics",
            get(diagnostics::diagnostics),
        )
        .route("/settings", get(settings::settings))
        .route("/settings/open", get(settings::open))
        .route("/settings/settings.js", get(settings::script))
        .route(
            "/settings/connections/{provider}",
            post(settings::connect).delete(settings::disconnect),
        )
        .route(
            "/settings/connections/{provider}/calendar",
            put(settings::choose_calendar),
        )
        .route("/settings/active_provider", put(settings::set_active))
        .route(
            "/settings/campaigns/{id}",
            get(settings::campaign).put(settings::set_campaign),
        )
}

/// Liveness: the process answers. Says "draining" during shutdown, still
/// with 200, so nothing restarts a process that is finishing its calls.
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let status = if state.draining.is_cancelled() {
        "draining"
    } else {
        "ok"
    };
    Json(json!({"status": status, "protocol": crate::protocol::VERSION}))
}

/// Readiness: whether a load balancer should send new calls here. Not
/// while draining, nor while a shared ledger or store does not answer
/// (the body names which).
async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    let not_ready = health::not_ready(&state).await;
    if !not_ready.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "not_ready": not_ready})),
        )
            .into_response();
    }
    Json(json!({"status": "ready"})).into_response()
}

/// Checks `Authorization: Bearer <token>` in constant time. The scheme is
/// case-insensitive (RFC 7235), so `bearer` and `BEARER` do too.
fn authorized(headers: &HeaderMap, expected: &SecretString) -> bool {
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer)
    else {
        return false;
    };
    given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into()
}

/// The credentials of a `Bearer` authorization value, whatever the case of
/// the scheme.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({"error": "unauthorized", "message": "a valid bearer token is required"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc"] {
            assert_eq!(bearer(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearerabc", "Bearer", "Token abc"] {
            assert_eq!(bearer(value), None, "{value}");
        }
    }
}
