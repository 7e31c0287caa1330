//! The emulators' control API, for a standalone `callbook emulator`
//! process: inject and clear faults at runtime, read the stored events
//! (ground truth) and seed busy time, all over HTTP under `/_control/`.
//!
//! - `POST /_control/faults` `{provider, email, endpoint, fault, times}`:
//!   `fault` is one of `{"status": 503, "retry_after": 1}`,
//!   `{"latency_ms": 800}`, `{"commit_then_drop": true}` or
//!   `{"token": "invalid_grant" | "consent_required" |
//!   "interaction_required" | "temporarily_unavailable"}`; `endpoint` one
//!   of `token`, `calendar_list`, `mailbox_settings`, `free_busy`,
//!   `insert`, `get`, `list`, `patch`, `delete`; `times` defaults to 1; with
//!   `for_ms` instead, every request for that long fails (an outage).
//! - `DELETE /_control/faults`: drops every fault still waiting, both
//!   providers.
//! - `GET /_control/events?provider=google&email=…`: the account's
//!   events as stored (cancelled ones included), as [`StoredEvent`]s.
//! - `POST /_control/events` `{provider, email, summary, start, end}`: a
//!   busy event the owner already has.
//! - `PUT /_control/lag` `{provider, email, free_busy_ms}`: from now on the
//!   account's free/busy (Google) or calendar view (Microsoft) shows a
//!   write only this long after it was made, as the real services
//!   sometimes do; 0 ends it.

use super::{Endpoint, Fault, GoogleEmulator, MicrosoftEmulator, StoredEvent, TokenFault};
use crate::schedule::Interval;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Both emulators, as the control API reaches them.
#[derive(Clone)]
struct Control {
    google: GoogleEmulator,
    microsoft: MicrosoftEmulator,
}

/// The control routes for these emulators (clones share their state).
pub fn router(google: GoogleEmulator, microsoft: MicrosoftEmulator) -> Router {
    Router::new()
        .route("/_control/faults", post(inject).delete(clear))
        .route("/_control/events", get(events).post(add_event))
        .route("/_control/lag", axum::routing::put(lag))
        .with_state(Control { google, microsoft })
}

/// Both emulators and their control API on one router: the paths of the
/// two providers do not collide, so one port serves all three.
pub fn combined(google: GoogleEmulator, microsoft: MicrosoftEmulator) -> Router {
    google
        .router()
        .merge(microsoft.router())
        .merge(router(google, microsoft))
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Which {
    Google,
    Microsoft,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    status: Option<u16>,
    retry_after: Option<u64>,
    latency_ms: Option<u64>,
    #[serde(default)]
    commit_then_drop: bool,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Injection {
    provider: Which,
    email: String,
    endpoint: String,
    fault: FaultSpec,
    times: Option<u32>,
    /// Fire on every request for this long instead of `times` requests.
    for_ms: Option<u64>,
}

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": msg.into()})),
    )
        .into_response()
}

fn endpoint(name: &str) -> Option<Endpoint> {
    Some(match name {
        "token" => Endpoint::Token,
        "calendar_list" => Endpoint::CalendarList,
        "mailbox_settings" => Endpoint::MailboxSettings,
        "free_busy" => Endpoint::FreeBusy,
        "insert" => Endpoint::Insert,
        "get" => Endpoint::Get,
        "list" => Endpoint::List,
        "patch" => Endpoint::Patch,
        "delete" => Endpoint::Delete,
        _ => return None,
    })
}

/// The error reason (Google) or code (Graph) each provider sends with a
/// status.
fn reason(provider: Which, status: u16) -> &'static str {
    match (provider, status) {
        (Which::Google, 429) => "rateLimitExceeded",
        (Which::Google, 403) => "rateLimitExceeded",
        (Which::Google, 404) => "notFound",
        (Which::Google, 409) => "duplicate",
        (Which::Google, _) => "backendError",
        (Which::Microsoft, 429) => "TooManyRequests",
        (Which::Microsoft, 404) => "ErrorItemNotFound",
        (Which::Microsoft, 409) => "ErrorIrresolvableConflict",
        (Which::Microsoft, 503) => "ServiceNotAvailable",
        (Which::Microsoft, 504) => "UnknownError",
        (Which::Microsoft, _) => "generalException",
    }
}

fn fault(provider: Which, spec: &FaultSpec) -> Result<Fault, String> {
    let given = [
        spec.status.is_some(),
        spec.latency_ms.is_some(),
        spec.commit_then_drop,
        spec.token.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(
            "fault: give exactly one of status, latency_ms, commit_then_drop, token".into(),
        );
    }
    if let Some(code) = spec.status {
        if !(400..=599).contains(&code) {
            return Err(format!("fault.status {code} is not an error status"));
        }
        return Ok(Fault::Status {
            code,
            reason: reason(provider, code),
            retry_after: spec.retry_after,
        });
    }
    if let Some(ms) = spec.latency_ms {
        return Ok(Fault::Latency(Duration::from_millis(ms)));
    }
    if spec.commit_then_drop {
        return Ok(Fault::CommitThenDrop);
    }
    let token = match spec.token.as_deref().unwrap_or_default() {
        "invalid_grant" => TokenFault::InvalidGrant,
        "consent_required" => TokenFault::ConsentRequired,
        "interaction_required" => TokenFault::InteractionRequired,
        "temporarily_unavailable" => TokenFault::TemporarilyUnavailable,
        other => return Err(format!("fault.token {other:?} is not a known refusal")),
    };
    Ok(Fault::Token(token))
}

async fn inject(State(c): State<Control>, Json(req): Json<Injection>) -> Response {
    let Some(ep) = endpoint(&req.endpoint) else {
        return bad(format!("endpoint {:?} is not known", req.endpoint));
    };
    let f = match fault(req.provider, &req.fault) {
        Ok(f) => f,
        Err(msg) => return bad(msg),
    };
    match (req.times, req.for_ms) {
        (Some(_), Some(_)) => return bad("give times or for_ms, not both"),
        (_, Some(ms)) => {
            let window = Duration::from_millis(ms);
            match req.provider {
                Which::Google => c.google.inject_for(&req.email, ep, f, window),
                Which::Microsoft => c.microsoft.inject_for(&req.email, ep, f, window),
            }
        }
        (times, None) => {
            let times = times.unwrap_or(1);
            match req.provider {
                Which::Google => c.google.inject(&req.email, ep, f, times),
                Which::Microsoft => c.microsoft.inject(&req.email, ep, f, times),
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear(State(c): State<Control>) -> StatusCode {
    c.google.clear_faults();
    c.microsoft.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Account {
    provider: Which,
    email: String,
}

async fn events(State(c): State<Control>, Query(q): Query<Account>) -> Json<Vec<StoredEvent>> {
    Json(match q.provider {
        Which::Google => c.google.events(&q.email),
        Which::Microsoft => c.microsoft.events(&q.email),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Busy {
    provider: Which,
    email: String,
    #[serde(default)]
    summary: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

async fn add_event(State(c): State<Control>, Json(b): Json<Busy>) -> Response {
    if b.end <= b.start {
        return bad("end must be after start");
    }
    let slot = Interval::new(b.start, b.end);
    match b.provider {
        Which::Google => c.google.add_event(&b.email, &b.summary, slot),
        Which::Microsoft => c.microsoft.add_event(&b.email, &b.summary, slot, "busy"),
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lag {
    provider: Which,
    email: String,
    free_busy_ms: u64,
}

async fn lag(State(c): State<Control>, Json(l): Json<Lag>) -> Response {
    if l.free_busy_ms > 60_000 {
        return bad("free_busy_ms is at most 60000");
    }
    let lag = Duration::from_millis(l.free_busy_ms);
    match l.provider {
        Which::Google => c.google.lag_free_busy(&l.email, lag),
        Which::Microsoft => c.microsoft.lag_free_busy(&l.email, lag),
    }
    StatusCode::NO_CONTENT.into_response()
}
