//! The admin API's bookings: what became of each call's booking, read from
//! the outcome store, so a pipeline whose socket dropped can still learn
//! the call booked. Behind the admin token like the rest of the admin API.

use super::admin::{admin_only, error, ApiError, ApiResult};
use super::AppState;
use crate::outcomes::{BookingRecord, OutcomeError, PER_CAMPAIGN};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

/// Records answered when the request names no `limit`.
const DEFAULT_LIMIT: usize = 50;

/// The largest `limit`: no store keeps more per campaign.
const MAX_LIMIT: usize = PER_CAMPAIGN;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ByCall {
    /// The call's SID (required).
    call_sid: Option<String>,
    /// How many outcomes, newest first: 1 to 500, 50 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// How many outcomes, newest first: 1 to 500, 50 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

fn bad_query() -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the query string could not be read",
    )
}

fn limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// The answer, or a 503 that says nothing of the store's insides (`log`
/// writes the error, with the call or campaign, to the log).
fn answer(
    got: Result<Vec<BookingRecord>, OutcomeError>,
    log: impl FnOnce(&OutcomeError),
) -> ApiResult {
    match got {
        Ok(bookings) => Ok(Json(json!({ "bookings": bookings }))),
        Err(e) => {
            log(&e);
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "bookings cannot be read just now; try again",
            ))
        }
    }
}

/// `GET /v1/bookings?call_sid=CA…[&limit=N]`: the call's outcomes, newest
/// first.
#[utoipa::path(
    get,
    path = "/v1/bookings",
    tag = "bookings",
    params(ByCall),
    responses(
        (status = 200, description = "The call's outcomes, newest first", body = super::openapi::Bookings),
        (status = 400, description = "A bad query string or `limit`", body = super::openapi::ErrorBody, example = json!({"error": "invalid_limit", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 503, description = "The outcome store cannot be read", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn by_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ByCall>, QueryRejection>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let Query(q) = q.map_err(|_| bad_query())?;
    let call_sid = q
        .call_sid
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "call_sid is required: /v1/bookings?call_sid=CA…",
            )
        })?;
    let limit = limit(q.limit.as_deref())?;
    let got = state.deps.outcomes.store().by_call(call_sid, limit).await;
    answer(got, |e| {
        tracing::error!(call_sid = %call_sid, error = %e, "could not read booking outcomes");
    })
}

/// `GET /v1/campaigns/{id}/bookings[?limit=N]`: the campaign's outcomes,
/// newest first. A campaign with none (or one the store does not know,
/// such as the unknown id a skipped call named) answers an empty list.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/bookings",
    tag = "bookings",
    params(("id" = String, Path, description = "The campaign id"), Page),
    responses(
        (status = 200, description = "The campaign's outcomes, newest first (none for an id with none)", body = super::openapi::Bookings),
        (status = 400, description = "A bad query string or `limit`", body = super::openapi::ErrorBody, example = json!({"error": "invalid_limit", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 503, description = "The outcome store cannot be read", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn by_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<Page>, QueryRejection>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let Query(q) = q.map_err(|_| bad_query())?;
    let limit = limit(q.limit.as_deref())?;
    let got = state.deps.outcomes.store().by_campaign(&id, limit).await;
    answer(got, |e| {
        tracing::error!(campaign = %id, error = %e, "could not read booking outcomes");
    })
}
