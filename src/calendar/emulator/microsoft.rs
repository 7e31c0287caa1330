//! A local Microsoft identity platform and Graph: the calls callbook uses,
//! with Graph's paths, JSON and error shapes.
//!
//! - `POST /common/oauth2/v2.0/token`: refresh grant; refresh tokens rotate
//!   on every use and the old one stops working; a revoked grant answers
//!   `invalid_grant` with AADSTS70008 in `error_codes`.
//! - `GET /v1.0/me/calendars`: the default calendar, `canEdit`, and
//!   `allowedOnlineMeetingProviders` (`teamsForBusiness` for work or school
//!   accounts only).
//! - `GET /v1.0/me/mailboxSettings/timeZone`: a Windows zone name.
//! - `GET /v1.0/me/calendars/{id}/calendarView`: expanded events, times in
//!   UTC without a `Z`, paged through `@odata.nextLink`.
//! - `POST /v1.0/me/calendars/{id}/events` (201; `transactionId` makes a
//!   retry return the first event; personal accounts silently drop
//!   `isOnlineMeeting`), `PATCH` and `DELETE /v1.0/me/events/{id}`.
//! - `POST /v1.0/me/calendar/getSchedule`: refused for personal accounts.

use super::google::StoredEvent;
use crate::schedule::Interval;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Events per `calendarView` page when the client asks for more.
const PAGE: usize = 3;

/// One Microsoft account with its default calendar.
#[derive(Debug, Clone)]
pub struct MsAccountSpec {
    pub email: String,
    pub refresh_token: String,
    /// As Outlook reports it, e.g. "Eastern Standard Time".
    pub windows_zone: String,
    /// Work or school (Teams) rather than personal (outlook.com).
    pub work: bool,
}

#[derive(Debug)]
struct Account {
    spec: MsAccountSpec,
    /// The one refresh token that works now (rotation kills the old one).
    refresh_token: String,
    revoked: bool,
    events: Vec<(StoredEvent, Value)>,
}

#[derive(Debug, Default)]
struct Inner {
    client_id: String,
    client_secret: String,
    accounts: Vec<Account>,
    access_tokens: HashMap<String, usize>,
    issued: u64,
}

/// The emulator; clones share state.
#[derive(Clone, Debug, Default)]
pub struct MicrosoftEmulator {
    inner: Arc<Mutex<Inner>>,
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {"date": "2026-01-01T00:00:00", "request-id": "00000000-0000-0000-0000-000000000000",
                       "client-request-id": "00000000-0000-0000-0000-000000000000"},
    }});
    (status, Json(body)).into_response()
}

fn aad_error(error: &str, code: u32, text: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Graph's `dateTimeTimeZone` in UTC: no offset, no `Z`.
fn graph_time(t: DateTime<Utc>) -> Value {
    // Graph writes seven fractional digits; callbook times are whole seconds.
    json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"})
}

/// Reads a `dateTimeTimeZone`; callbook only sends UTC, and so must the
/// emulator accept only what it can read unambiguously.
fn read_graph_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let v = v?;
    if v.get("timeZone").and_then(Value::as_str) != Some("UTC") {
        return None;
    }
    let text = v.get("dateTime")?.as_str()?;
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

impl MicrosoftEmulator {
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        let inner = Inner {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            ..Default::default()
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_account(&self, spec: MsAccountSpec) {
        let refresh_token = spec.refresh_token.clone();
        self.lock().accounts.push(Account {
            spec,
            refresh_token,
            revoked: false,
            events: Vec::new(),
        });
    }

    /// Adds an event the owner already has.
    pub fn add_event(&self, email: &str, subject: &str, slot: Interval, show_as: &str) {
        let mut inner = self.lock();
        let Some(acct) = inner.accounts.iter_mut().find(|a| a.spec.email == email) else {
            return;
        };
        let id = format!("AAMkSeed{:04}", acct.events.len());
        let raw = json!({"id": id, "subject": subject, "start": graph_time(slot.start), "end": graph_time(slot.end),
                         "showAs": show_as, "isCancelled": false});
        acct.events.push((view(&raw, 0), raw));
    }

    /// Makes the account a personal one (outlook.com): no Teams.
    pub fn make_personal(&self, email: &str) {
        if let Some(a) = self
            .lock()
            .accounts
            .iter_mut()
            .find(|a| a.spec.email == email)
        {
            a.spec.work = false;
        }
    }

    /// Revokes the grant: refreshes answer AADSTS70008.
    pub fn revoke(&self, email: &str) {
        let mut inner = self.lock();
        let Some(idx) = inner.accounts.iter().position(|a| a.spec.email == email) else {
            return;
        };
        inner.accounts[idx].revoked = true;
        inner.access_tokens.retain(|_, a| *a != idx);
    }

    /// The refresh token that works now (after any rotations).
    pub fn current_refresh_token(&self, email: &str) -> Option<String> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.spec.email == email)
            .map(|a| a.refresh_token.clone())
    }

    /// Every event of the account, as stored.
    pub fn events(&self, email: &str) -> Vec<StoredEvent> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.spec.email == email)
            .map(|a| a.events.iter().map(|(e, _)| e.clone()).collect())
            .unwrap_or_default()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/common/oauth2/v2.0/token", post(token))
            .route("/v1.0/me/calendars", get(calendars))
            .route("/v1.0/me/mailboxSettings/timeZone", get(mailbox_zone))
            .route("/v1.0/me/calendars/{cid}/calendarView", get(calendar_view))
            .route("/v1.0/me/calendars/{cid}/events", post(create))
            .route(
                "/v1.0/me/events/{eid}",
                patch(patch_event).delete(delete_event),
            )
            .route("/v1.0/me/calendar/getSchedule", post(get_schedule))
            .with_state(self.clone())
    }

    fn account_for(&self, headers: &HeaderMap) -> Option<usize> {
        let token = headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .to_string();
        self.lock().access_tokens.get(&token).copied()
    }
}

fn unauthenticated() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token is empty or invalid.",
    )
}

fn calendar_id(idx: usize) -> String {
    format!("AAMkCalendar{idx:04}")
}

/// What the stored Graph event shows to tests.
fn view(raw: &Value, invites: u32) -> StoredEvent {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    let cancelled = raw
        .get("isCancelled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    StoredEvent {
        id: s("id").unwrap_or_default(),
        status: if cancelled {
            "cancelled".into()
        } else {
            "confirmed".into()
        },
        summary: s("subject").unwrap_or_default(),
        description: raw
            .pointer("/body/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        location: raw
            .pointer("/location/displayName")
            .and_then(Value::as_str)
            .map(str::to_string),
        start: read_graph_time(raw.get("start")).unwrap_or_default(),
        end: read_graph_time(raw.get("end")).unwrap_or_default(),
        time_zone: Some("UTC".into()),
        attendees: raw
            .get("attendees")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x.pointer("/emailAddress/address")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        booking_id: raw
            .get("singleValueExtendedProperties")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .and_then(|p| p.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string),
        join_link: raw
            .pointer("/onlineMeeting/joinUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        invites_sent: invites,
    }
}

async fn token(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = emu.lock();
    let basic_ok = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("Basic "));
    let form_ok = form.get("client_id") == Some(&inner.client_id)
        && form.get("client_secret") == Some(&inner.client_secret);
    if !(form_ok || basic_ok) {
        return aad_error(
            "invalid_client",
            7_000_215,
            "Invalid client secret provided.",
        );
    }
    let refresh = form.get("refresh_token").cloned().unwrap_or_default();
    let Some(idx) = inner
        .accounts
        .iter()
        .position(|a| a.refresh_token == refresh && !a.revoked)
    else {
        return aad_error(
            "invalid_grant",
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        );
    };
    inner.issued += 1;
    let n = inner.issued;
    let access = format!("eyJ0eXAi.emulated-{idx}-{n}");
    // Rotation: a new refresh token every time; the old one is dead.
    let rotated = format!("{}-r{n}", inner.accounts[idx].spec.refresh_token);
    inner.accounts[idx].refresh_token = rotated.clone();
    inner.access_tokens.insert(access.clone(), idx);
    Json(json!({
        "token_type": "Bearer",
        "scope": "openid email offline_access https://graph.microsoft.com/User.Read https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/MailboxSettings.Read",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "refresh_token": rotated,
    }))
    .into_response()
}

async fn calendars(State(emu): State<MicrosoftEmulator>, headers: HeaderMap) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let inner = emu.lock();
    let spec = &inner.accounts[idx].spec;
    let providers: Vec<&str> = if spec.work {
        vec!["teamsForBusiness"]
    } else {
        vec!["skypeForConsumer"]
    };
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/calendars",
        "value": [{
            "id": calendar_id(idx),
            "name": "Calendar",
            "isDefaultCalendar": true,
            "canEdit": true,
            "owner": {"name": spec.email, "address": spec.email},
            "allowedOnlineMeetingProviders": providers,
            "defaultOnlineMeetingProvider": providers[0],
        }],
    }))
    .into_response()
}

async fn mailbox_zone(State(emu): State<MicrosoftEmulator>, headers: HeaderMap) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let zone = emu.lock().accounts[idx].spec.windows_zone.clone();
    Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/mailboxSettings/timeZone", "value": zone}))
        .into_response()
}

async fn calendar_view(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if cid != calendar_id(idx) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    let parse = |k: &str| {
        q.get(k)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(from), Some(to)) = (parse("startDateTime"), parse("endDateTime")) else {
        return graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidParameter", "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.");
    };
    let top: usize = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(10)
        .clamp(1, 1000);
    let skip: usize = q.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let page = top.min(PAGE);
    let inner = emu.lock();
    let hits: Vec<&Value> = inner.accounts[idx]
        .events
        .iter()
        .filter(|(e, _)| e.start < to && from < e.end)
        .map(|(_, raw)| raw)
        .collect();
    let value: Vec<Value> = hits
        .iter()
        .skip(skip)
        .take(page)
        .map(|raw| {
            json!({"id": raw["id"], "start": raw["start"], "end": raw["end"], "showAs": raw["showAs"],
                   "isCancelled": raw["isCancelled"]})
        })
        .collect();
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#events", "value": value});
    if skip + page < hits.len() {
        let base = raw_query.unwrap_or_default();
        let rest: Vec<&str> = base
            .split('&')
            .filter(|p| !p.starts_with("%24skip") && !p.starts_with("$skip"))
            .collect();
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        body["@odata.nextLink"] = json!(format!(
            "http://{host}/v1.0/me/calendars/{cid}/calendarView?{}&%24skip={}",
            rest.join("&"),
            skip + page
        ));
    }
    Json(body).into_response()
}

async fn create(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let Some(Json(mut raw)) = body.filter(|b| b.0.is_object()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "RequestBodyRead",
            "Empty Payload. JSON content expected.",
        );
    };
    let mut inner = emu.lock();
    if cid != calendar_id(idx) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    }
    let acct = &mut inner.accounts[idx];
    // A retry with the same transactionId gets the event already made.
    if let Some(tx) = raw.get("transactionId").and_then(Value::as_str) {
        if let Some((_, existing)) = acct
            .events
            .iter()
            .find(|(_, e)| e.get("transactionId").and_then(Value::as_str) == Some(tx))
        {
            return (StatusCode::CREATED, Json(existing.clone())).into_response();
        }
    }
    let (Some(start), Some(end)) = (
        read_graph_time(raw.get("start")),
        read_graph_time(raw.get("end")),
    ) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "Your request can't be completed. The dateTime or timeZone is invalid.",
        );
    };
    if end <= start {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The end time must be after the start time.",
        );
    }
    let id = format!("AAMkAGI{:06}", acct.events.len());
    raw["id"] = json!(id);
    raw["iCalUId"] = json!(format!(
        "040000008200E00074C5B7101A82E008{:08}",
        acct.events.len()
    ));
    raw["webLink"] = json!(format!("https://outlook.office365.com/owa/?itemid={id}"));
    raw["isCancelled"] = json!(false);
    raw["showAs"] = raw.get("showAs").cloned().unwrap_or(json!("busy"));
    let wants_teams = raw
        .get("isOnlineMeeting")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && raw.get("onlineMeetingProvider").and_then(Value::as_str) == Some("teamsForBusiness");
    if wants_teams && acct.spec.work {
        raw["onlineMeeting"] = json!({"joinUrl": format!("https://teams.microsoft.com/l/meetup-join/19%3ameeting_{id}%40thread.v2/0")});
        raw["onlineMeetingUrl"] = Value::Null;
    } else {
        // Personal accounts silently drop the online meeting.
        raw["isOnlineMeeting"] = json!(false);
        raw["onlineMeeting"] = Value::Null;
    }
    let invites = u32::from(
        raw.get("attendees")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
    );
    acct.events.push((view(&raw, invites), raw.clone()));
    (StatusCode::CREATED, Json(raw)).into_response()
}

async fn patch_event(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(eid): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let Some(Json(patch)) = body.filter(|b| b.0.is_object()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "RequestBodyRead",
            "Empty Payload. JSON content expected.",
        );
    };
    let mut inner = emu.lock();
    let Some((stored, raw)) = inner.accounts[idx]
        .events
        .iter_mut()
        .find(|(e, _)| e.id == eid)
    else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    let mut next = raw.clone();
    for (k, v) in patch.as_object().into_iter().flatten() {
        if k == "transactionId" {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                "transactionId cannot be changed.",
            );
        }
        next[k] = v.clone();
    }
    if read_graph_time(next.get("start")).is_none() || read_graph_time(next.get("end")).is_none() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The dateTime or timeZone is invalid.",
        );
    }
    *stored = view(&next, stored.invites_sent + 1);
    *raw = next.clone();
    Json(next).into_response()
}

async fn delete_event(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(eid): Path<String>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let mut inner = emu.lock();
    let Some((stored, raw)) = inner.accounts[idx]
        .events
        .iter_mut()
        .find(|(e, _)| e.id == eid && e.status != "cancelled")
    else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    raw["isCancelled"] = json!(true);
    *stored = view(raw, stored.invites_sent + 1);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_schedule(State(emu): State<MicrosoftEmulator>, headers: HeaderMap) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if !emu.lock().accounts[idx].spec.work {
        return graph_error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    graph_error(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        "getSchedule is not emulated; callbook reads calendarView.",
    )
}
