//! A local Microsoft identity platform and Graph: the calls callbook uses,
//! with Graph's paths, JSON and error shapes.
//!
//! - `GET /common/oauth2/v2.0/authorize`: the consent screen, approving at
//!   once (PKCE S256 required) as the account `login_hint` pre-selects, or
//!   the one the person picks instead ([`super::CHOOSE_ACCOUNT`]).
//! - `POST /common/oauth2/v2.0/token`: code and refresh grants; refresh
//!   tokens rotate on every use and the old one stops working; a revoked
//!   grant answers `invalid_grant` with AADSTS70008 in `error_codes`; the
//!   `id_token` carries the tenant (`tid`), the consumer tenant for personal
//!   accounts.
//! - `GET /v1.0/me/calendars`: the default calendar and a second one the
//!   owner can write to ([`secondary_calendar_id`], named
//!   [`super::google::SECONDARY_CALENDAR_NAME`]), each with `canEdit` and
//!   `allowedOnlineMeetingProviders` (`teamsForBusiness` for work or school
//!   accounts only). Events live on the calendar they were created on.
//! - `GET /v1.0/me/mailboxSettings/timeZone`: the zone name as configured
//!   (a Windows name, an IANA name, or one neither).
//! - `GET /v1.0/me/calendars/{id}/calendarView`: expanded events, times in
//!   UTC without a `Z` (or the zone `Prefer: outlook.timezone` names),
//!   paged through `@odata.nextLink` (`$top` a page at most); only the
//!   `$select`ed fields (a client that forgets `showAs` sees none); a
//!   `$select` or `$expand` naming what `event` lacks is Graph's 400
//!   `BadRequest` "Parsing OData Select and Expand failed".
//!   All-day events come as Graph sends them: `isAllDay`, midnight to
//!   midnight of their dates, not of the owner's zone.
//!   Recurring series come expanded into occurrences.
//! - `POST /v1.0/me/calendars/{id}/events` (201; `transactionId` makes a
//!   retry return the first event; personal accounts silently drop
//!   `isOnlineMeeting`; a repeated `transactionId` answers either way
//!   Graph does: the first event, or a 409), `GET` (a Teams link may
//!   arrive only after some reads), `PATCH` and `DELETE
//!   /v1.0/me/events/{id}`.
//! - `GET /v1.0/me/calendars/{id}/events?$filter=singleValueExtendedProperties/Any(…)`:
//!   finds an event by the booking id callbook stored on it. Extended
//!   properties are returned only when `$expand`ed, as Graph does.
//! - `POST /v1.0/me/calendar/getSchedule`: refused for personal accounts.
//!
//! Faults are injected per account and endpoint ([`MicrosoftEmulator::inject`]).

use super::faults::{self, Before, ErrorShape, Faults, TokenFault};
pub use super::faults::{Endpoint, Fault};
use super::google::StoredEvent;
use super::{base64_basic, pkce_s256, PendingCode};
use crate::calendar::oauth::MICROSOFT_PERSONAL_TENANT;
use crate::schedule::Interval;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Events per `calendarView` page when the client asks for more.
const PAGE: usize = 3;

/// The tenant every emulated work or school account belongs to.
pub const WORK_TENANT: &str = "4f1c2e8a-0b7d-4d5e-9a3c-6e2f8b1d7c90";

/// One Microsoft account with its default calendar.
#[derive(Debug, Clone)]
pub struct MsAccountSpec {
    pub email: String,
    pub refresh_token: String,
    /// As Outlook reports it: usually a Windows name ("Eastern Standard
    /// Time"), sometimes an IANA one ("Australia/Sydney"), or one neither
    /// (e.g. "Customized Time Zone").
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
    /// When each event was written, for a lagging calendarView.
    written: HashMap<String, tokio::time::Instant>,
    /// calendarView does not show writes younger than this.
    view_lag: std::time::Duration,
    /// Teams is allowed but creating the meeting fails quietly: the event
    /// comes back without `onlineMeeting.joinUrl`.
    withhold_join_url: bool,
    /// Creates no longer match earlier `transactionId`s (the window in
    /// which Graph deduplicates is undocumented).
    forget_transaction_ids: bool,
    /// Teams meetings are created without their link
    /// (`isOnlineMeeting: false`, `onlineMeeting: null`), which appears
    /// once the event has been read this many times.
    late_join_url: Option<u32>,
    /// Reads left before each created event's Teams link appears.
    pending_links: HashMap<String, u32>,
    /// A create repeating an earlier `transactionId` answers 409 rather
    /// than with the first event (Graph does either; undocumented).
    duplicate_transaction_conflicts: bool,
}

impl Account {
    fn tenant(&self) -> &'static str {
        if self.spec.work {
            WORK_TENANT
        } else {
            MICROSOFT_PERSONAL_TENANT
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    client_id: String,
    client_secret: String,
    accounts: Vec<Account>,
    access_tokens: HashMap<String, usize>,
    issued: u64,
    tokens_issued: u64,
    faults: Faults,
    /// Authorization codes waiting for exchange.
    codes: HashMap<String, PendingCode>,
}

/// The emulator; clones share state.
#[derive(Clone, Debug, Default)]
pub struct MicrosoftEmulator {
    inner: Arc<Mutex<Inner>>,
    recorder: super::record::Recorder,
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
    aad_error_with(StatusCode::BAD_REQUEST, error, code, text, None)
}

fn aad_error_with(
    status: StatusCode,
    error: &str,
    code: u32,
    text: &str,
    suberror: Option<&str>,
) -> Response {
    let mut body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    if let Some(sub) = suberror {
        body["suberror"] = json!(sub);
    }
    (status, Json(body)).into_response()
}

/// Graph's and the identity platform's error bodies, for injected faults.
struct Shape;

impl ErrorShape for Shape {
    fn api_error(status: StatusCode, code: &str) -> Response {
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Graph always says when to come back (an injected fault's own
            // Retry-After replaces this one).
            let mut resp = graph_error(
                status,
                "TooManyRequests",
                "Too many requests. Please try again later.",
            );
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(1u64),
            );
            return resp;
        }
        graph_error(status, code, code)
    }

    fn token_error(fault: TokenFault) -> Response {
        match fault {
            TokenFault::InvalidGrant => aad_error(
                "invalid_grant",
                70_008,
                "The provided authorization code or refresh token has expired due to inactivity.",
            ),
            TokenFault::ConsentRequired => aad_error_with(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                65_001,
                "The user or administrator has not consented to use the application.",
                Some("consent_required"),
            ),
            TokenFault::InteractionRequired => aad_error(
                "interaction_required",
                50_076,
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.",
            ),
            TokenFault::TemporarilyUnavailable => aad_error_with(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                90_033,
                "A transient error has occurred. Please try again.",
                None,
            ),
        }
    }
}

/// An unsigned stand-in for the `id_token`: the claims callbook reads.
fn id_token(acct: &Account, client_id: &str) -> String {
    let tid = acct.tenant();
    super::unsigned_jwt(&json!({
        "aud": client_id,
        "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
        "tid": tid,
        "preferred_username": acct.spec.email,
        "email": acct.spec.email,
        "ver": "2.0",
    }))
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

/// When an event really is: its times, or for an all-day event (stored,
/// as Graph returns it, as midnight to midnight of its dates labelled with
/// the requested zone) those dates in the mailbox's zone.
fn span(raw: &Value, mailbox_zone: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (start, end) = (
        read_graph_time(raw.get("start"))?,
        read_graph_time(raw.get("end"))?,
    );
    let all_day = raw
        .get("isAllDay")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match crate::calendar::microsoft::mailbox_zone(mailbox_zone) {
        Some(tz) if all_day => Some((
            crate::calendar::microsoft::local_midnight(tz, start.date_naive()),
            crate::calendar::microsoft::local_midnight(tz, end.date_naive()),
        )),
        _ => Some((start, end)),
    }
}

/// `event`'s structural properties (its own, `outlookItem`'s and
/// `entity`'s), as Graph's v1.0 metadata declares them; the contract tests
/// hold this list to the kept metadata.
pub const EVENT_PROPERTIES: [&str; 41] = [
    "id",
    "categories",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "allowNewTimeProposals",
    "attendees",
    "body",
    "bodyPreview",
    "end",
    "hasAttachments",
    "hideAttendees",
    "iCalUId",
    "importance",
    "isAllDay",
    "isCancelled",
    "isDraft",
    "isOnlineMeeting",
    "isOrganizer",
    "isReminderOn",
    "location",
    "locations",
    "onlineMeeting",
    "onlineMeetingProvider",
    "onlineMeetingUrl",
    "organizer",
    "originalEndTimeZone",
    "originalStart",
    "originalStartTimeZone",
    "recurrence",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "responseStatus",
    "sensitivity",
    "seriesMasterId",
    "showAs",
    "start",
    "subject",
    "transactionId",
    "type",
    "webLink",
];

/// `event`'s navigation properties, as the metadata declares them.
pub const EVENT_NAVIGATION: [&str; 6] = [
    "attachments",
    "calendar",
    "extensions",
    "instances",
    "multiValueExtendedProperties",
    "singleValueExtendedProperties",
];

/// Graph's refusal of a `$select` or `$expand` naming what `event` does not
/// have: 400 `BadRequest`, "Parsing OData Select and Expand failed".
fn unknown_selected(q: &HashMap<String, String>) -> Option<Response> {
    let names = |k: &str| {
        q.get(k)
            .map(|v| {
                v.split(',')
                    .map(|n| n.split('(').next().unwrap_or_default().trim().to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let unknown = names("$select")
        .into_iter()
        .find(|n| !EVENT_PROPERTIES.contains(&n.as_str()))
        .or_else(|| {
            names("$expand")
                .into_iter()
                .find(|n| !EVENT_NAVIGATION.contains(&n.as_str()))
        })?;
    Some(graph_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Parsing OData Select and Expand failed: Could not find a property named '{unknown}' on type 'microsoft.graph.event'."),
    ))
}

/// The fields of an event Graph returns: the `$select`ed ones (and `id`),
/// or all; extended properties only when `$expand`ed.
fn project(raw: &Value, q: &HashMap<String, String>) -> Value {
    let expand = q
        .get("$expand")
        .is_some_and(|e| e.contains("singleValueExtendedProperties"));
    let Some(obj) = raw.as_object() else {
        return raw.clone();
    };
    let selected: Option<Vec<&str>> = q
        .get("$select")
        .map(|s| s.split(',').map(str::trim).collect());
    let mut out = serde_json::Map::new();
    out.insert("@odata.etag".into(), json!("W/\"DwAAABYAAAA=\""));
    for (k, v) in obj {
        let wanted = k == "id"
            || (k == "singleValueExtendedProperties" && expand)
            || (k != "singleValueExtendedProperties"
                && selected.as_ref().is_none_or(|s| s.contains(&k.as_str())));
        if wanted {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The zone `Prefer: outlook.timezone="…"` asks for; UTC without one.
fn preferred_zone(headers: &HeaderMap) -> Option<String> {
    let prefer = headers.get("prefer")?.to_str().ok()?;
    let rest = &prefer[prefer.find("outlook.timezone=")? + "outlook.timezone=".len()..];
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// An event's times as Graph answers under a preferred zone: converted
/// (all-day events keep their dates and take the label).
fn in_zone(mut ev: Value, zone: &str) -> Value {
    let tz = crate::calendar::microsoft::mailbox_zone(zone);
    let all_day = ev.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
    for key in ["start", "end"] {
        let Some(t) = read_graph_time(ev.get(key)) else {
            continue;
        };
        let local = match tz {
            Some(tz) if !all_day => t.with_timezone(&tz).naive_local(),
            _ => t.naive_utc(),
        };
        ev[key] = json!({"dateTime": local.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": zone});
    }
    ev
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
            recorder: super::record::Recorder::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the account with this address, if there is one.
    fn with_account(&self, email: &str, change: impl FnOnce(&mut Account)) {
        if let Some(a) = self
            .lock()
            .accounts
            .iter_mut()
            .find(|a| a.spec.email == email)
        {
            change(a);
        }
    }

    pub fn add_account(&self, spec: MsAccountSpec) {
        let refresh_token = spec.refresh_token.clone();
        self.lock().accounts.push(Account {
            spec,
            refresh_token,
            revoked: false,
            events: Vec::new(),
            written: HashMap::new(),
            view_lag: std::time::Duration::ZERO,
            withhold_join_url: false,
            forget_transaction_ids: false,
            late_join_url: None,
            pending_links: HashMap::new(),
            duplicate_transaction_conflicts: false,
        });
    }

    /// Drops every fault still waiting to fire.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes the next `times` requests of the account to `endpoint` fail
    /// with `fault`.
    pub fn inject(&self, email: &str, endpoint: Endpoint, fault: Fault, times: u32) {
        self.lock().faults.inject(email, endpoint, fault, times);
    }

    /// `fault` on every request of the account's to `endpoint` for the
    /// next `window`: an outage of that endpoint.
    pub fn inject_for(
        &self,
        email: &str,
        endpoint: Endpoint,
        fault: Fault,
        window: std::time::Duration,
    ) {
        self.lock()
            .faults
            .inject_for(email, endpoint, fault, window);
    }

    /// calendarView lags writes by this long.
    pub fn lag_free_busy(&self, email: &str, lag: std::time::Duration) {
        self.with_account(email, |a| a.view_lag = lag);
    }

    /// Events keep Teams allowed but come back without a join link, as when
    /// a tenant's Teams provisioning fails.
    pub fn withhold_join_url(&self, email: &str) {
        self.with_account(email, |a| a.withhold_join_url = true);
    }

    /// Sets the zone the mailbox settings report (any string: a Windows
    /// name, an IANA name, or one neither).
    pub fn set_mailbox_zone(&self, email: &str, zone: &str) {
        self.with_account(email, |a| a.spec.windows_zone = zone.to_string());
    }

    /// Teams meetings come back from the create without their link
    /// (`isOnlineMeeting: false`, `onlineMeeting: null`), and the link
    /// appears once the event has been read `reads` times
    /// (`GET /me/events/{id}`); `u32::MAX` for never.
    pub fn teams_link_after_reads(&self, email: &str, reads: u32) {
        self.with_account(email, |a| a.late_join_url = Some(reads));
    }

    /// A create repeating an earlier `transactionId` answers 409
    /// `ErrorDuplicateTransactionId` instead of the first event: Graph's
    /// answer to a repeat is undocumented, and both are seen.
    pub fn conflict_on_repeated_transaction_id(&self, email: &str) {
        self.with_account(email, |a| a.duplicate_transaction_conflicts = true);
    }

    /// Creates stop matching earlier `transactionId`s, as once Graph's
    /// undocumented deduplication window has passed.
    pub fn forget_transaction_ids(&self, email: &str) {
        self.with_account(email, |a| a.forget_transaction_ids = true);
    }

    /// Every access token issued so far stops working, as when they
    /// expire: the next Graph call gets a 401.
    pub fn expire_access_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    /// Access tokens issued so far (refreshes and code exchanges).
    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    /// Consults the faults for this request.
    async fn before(&self, email: &str, endpoint: Endpoint) -> Before {
        let fault = self.lock().faults.take(email, endpoint);
        faults::apply::<Shape>(fault).await
    }

    fn email_of(&self, idx: usize) -> String {
        self.lock().accounts[idx].spec.email.clone()
    }

    /// Adds an event the owner already has.
    pub fn add_event(&self, email: &str, subject: &str, slot: Interval, show_as: &str) {
        let mut inner = self.lock();
        let Some(idx) = inner.accounts.iter().position(|a| a.spec.email == email) else {
            return;
        };
        let calendar = calendar_id(idx);
        let acct = &mut inner.accounts[idx];
        let id = format!("AAMkSeed{:04}", acct.events.len());
        let raw = json!({"id": id, "subject": subject, "start": graph_time(slot.start), "end": graph_time(slot.end),
                         "showAs": show_as, "isCancelled": false, "isAllDay": false});
        acct.events.push((view(&raw, 0, &calendar), raw));
    }

    /// Adds an all-day event of `days` days from `first`, stored exactly as
    /// Graph returns one (by design): `isAllDay`, and midnight to midnight
    /// of its dates labelled UTC, not shifted into the mailbox's zone,
    /// though the owner's day is midnight to midnight in that zone.
    pub fn add_all_day_event(
        &self,
        email: &str,
        subject: &str,
        first: NaiveDate,
        days: u32,
        show_as: &str,
    ) {
        let mut inner = self.lock();
        let Some(idx) = inner.accounts.iter().position(|a| a.spec.email == email) else {
            return;
        };
        let calendar = calendar_id(idx);
        let acct = &mut inner.accounts[idx];
        let id = format!("AAMkSeed{:04}", acct.events.len());
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let last = first + chrono::Duration::days(i64::from(days.max(1)));
        let raw = json!({"id": id, "subject": subject, "start": graph_time(midnight(first)),
                         "end": graph_time(midnight(last)), "isAllDay": true,
                         "originalStartTimeZone": acct.spec.windows_zone,
                         "originalEndTimeZone": acct.spec.windows_zone,
                         "showAs": show_as, "isCancelled": false});
        let mut stored = view(&raw, 0, &calendar);
        if let Some((start, end)) = span(&raw, &acct.spec.windows_zone) {
            (stored.start, stored.end) = (start, end);
        }
        acct.events.push((stored, raw));
    }

    /// Adds a weekly series of `count` all-day occurrences from `first`
    /// (each `days` long), as `calendarView` returns a series: expanded
    /// into occurrences (`type: occurrence`, `seriesMasterId`), each an
    /// all-day event as Graph returns one; the master itself is not in the
    /// view.
    pub fn add_weekly_all_day_series(
        &self,
        email: &str,
        subject: &str,
        first: NaiveDate,
        days: u32,
        count: u32,
        show_as: &str,
    ) {
        let mut inner = self.lock();
        let Some(idx) = inner.accounts.iter().position(|a| a.spec.email == email) else {
            return;
        };
        let calendar = calendar_id(idx);
        let acct = &mut inner.accounts[idx];
        let master = format!("AAMkSeries{:04}", acct.events.len());
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        for n in 0..count {
            let day = first + chrono::Duration::weeks(i64::from(n));
            let last = day + chrono::Duration::days(i64::from(days.max(1)));
            let raw = json!({"id": format!("{master}-{n:03}"), "subject": subject,
                             "type": "occurrence", "seriesMasterId": master,
                             "start": graph_time(midnight(day)), "end": graph_time(midnight(last)),
                             "isAllDay": true,
                             "originalStartTimeZone": acct.spec.windows_zone,
                             "originalEndTimeZone": acct.spec.windows_zone,
                             "showAs": show_as, "isCancelled": false});
            let mut stored = view(&raw, 0, &calendar);
            if let Some((start, end)) = span(&raw, &acct.spec.windows_zone) {
                (stored.start, stored.end) = (start, end);
            }
            acct.events.push((stored, raw));
        }
    }

    /// The id of the account's secondary calendar, if there is such an
    /// account.
    pub fn secondary_calendar(&self, email: &str) -> Option<String> {
        self.lock()
            .accounts
            .iter()
            .position(|a| a.spec.email == email)
            .map(secondary_calendar_id)
    }

    /// Makes the account a personal one (outlook.com): no Teams.
    pub fn make_personal(&self, email: &str) {
        self.with_account(email, |a| a.spec.work = false);
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
            .route("/common/oauth2/v2.0/authorize", get(authorize))
            .route("/common/oauth2/v2.0/token", post(token))
            .route("/v1.0/me/calendars", get(calendars))
            .route("/v1.0/me/mailboxSettings/timeZone", get(mailbox_zone))
            .route("/v1.0/me/calendars/{cid}/calendarView", get(calendar_view))
            .route(
                "/v1.0/me/calendars/{cid}/events",
                post(create).get(list_events),
            )
            .route(
                "/v1.0/me/events/{eid}",
                get(get_event).patch(patch_event).delete(delete_event),
            )
            .route("/v1.0/me/calendar/getSchedule", post(get_schedule))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.recorder.clone(),
                super::record::layer,
            ))
    }

    /// What the API has been asked and answered, once recording is
    /// started (see [`super::record`]).
    pub fn recorder(&self) -> super::record::Recorder {
        self.recorder.clone()
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

fn item_not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

fn unauthenticated() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token is empty or invalid.",
    )
}

fn join_url(id: &str) -> String {
    format!("https://teams.microsoft.com/l/meetup-join/19%3ameeting_{id}%40thread.v2/0")
}

fn calendar_id(idx: usize) -> String {
    format!("AAMkCalendar{idx:04}")
}

/// The id of the secondary calendar of the account at `idx`.
pub fn secondary_calendar_id(idx: usize) -> String {
    format!("AAMkBookings{idx:04}")
}

/// Whether `cid` is one of the calendars of the account at `idx`.
fn own_calendar(idx: usize, cid: &str) -> bool {
    cid == calendar_id(idx) || cid == secondary_calendar_id(idx)
}

/// What the stored Graph event shows to tests.
fn view(raw: &Value, invites: u32, calendar: &str) -> StoredEvent {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    let cancelled = raw
        .get("isCancelled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    StoredEvent {
        id: s("id").unwrap_or_default(),
        calendar: calendar.to_string(),
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

/// The consent screen, approving at once as the account
/// [`super::pick_account`] picks: redirects back with a code.
async fn authorize(
    State(emu): State<MicrosoftEmulator>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = emu.lock();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != inner.client_id {
        return aad_error(
            "unauthorized_client",
            700_016,
            "Application was not found in the directory.",
        );
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
    {
        return aad_error(
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'code_challenge'.",
        );
    }
    let Ok(back) = reqwest::Url::parse(&get("redirect_uri")) else {
        return aad_error("invalid_request", 900_971, "No reply address provided.");
    };
    let Some(account) =
        super::pick_account(&q, inner.accounts.iter().map(|a| a.spec.email.as_str()))
    else {
        return aad_error("invalid_grant", 50_034, "The user account does not exist.");
    };
    inner.issued += 1;
    let code = format!("M.C5_emulated.{}", inner.issued);
    super::approve(&mut inner.codes, code, account, &q, back, &[])
}

/// The token endpoint behind its injected faults, found by the account the
/// refresh token or the code belongs to.
async fn token(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let email = {
        let inner = emu.lock();
        let by_refresh = form
            .get("refresh_token")
            .and_then(|rt| inner.accounts.iter().find(|a| &a.refresh_token == rt));
        let by_code = form
            .get("code")
            .and_then(|c| inner.codes.get(c))
            .map(|p| &inner.accounts[p.account]);
        by_refresh.or(by_code).map(|a| a.spec.email.clone())
    };
    let Some(email) = email else {
        return token_inner(&emu, &headers, &form);
    };
    emu.before(&email, Endpoint::Token)
        .await
        .run(async { token_inner(&emu, &headers, &form) })
        .await
}

const GRANTED_SCOPE: &str = "openid email offline_access https://graph.microsoft.com/User.Read https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/MailboxSettings.Read";

fn token_inner(
    emu: &MicrosoftEmulator,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let mut inner = emu.lock();
    let basic = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "));
    let basic_ok = basic == Some(base64_basic(&inner.client_id, &inner.client_secret).as_str());
    let form_ok = form.get("client_id") == Some(&inner.client_id)
        && form.get("client_secret") == Some(&inner.client_secret);
    if !(form_ok || basic_ok) {
        return aad_error(
            "invalid_client",
            7_000_215,
            "Invalid client secret provided.",
        );
    }
    let idx = match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
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
            idx
        }
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            // Codes work once.
            let Some(pending) = inner.codes.remove(&code) else {
                return aad_error(
                    "invalid_grant",
                    54_005,
                    "OAuth2 Authorization code was already redeemed.",
                );
            };
            if form.get("redirect_uri") != Some(&pending.redirect_uri) {
                return aad_error(
                    "invalid_grant",
                    50_011,
                    "The redirect URI specified in the request does not match.",
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if pkce_s256(&verifier) != pending.challenge {
                return aad_error(
                    "invalid_grant",
                    501_481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            inner.accounts[pending.account].revoked = false;
            pending.account
        }
        _ => {
            return aad_error(
                "unsupported_grant_type",
                70_003,
                "The app requested an unsupported grant type.",
            )
        }
    };
    inner.issued += 1;
    inner.tokens_issued += 1;
    let n = inner.issued;
    let access = format!("eyJ0eXAi.emulated-{idx}-{n}");
    // Rotation: a new refresh token every time; the old one is dead.
    let rotated = format!("{}-r{n}", inner.accounts[idx].spec.refresh_token);
    inner.accounts[idx].refresh_token = rotated.clone();
    inner.access_tokens.insert(access.clone(), idx);
    let id_token = id_token(&inner.accounts[idx], &inner.client_id);
    Json(json!({
        "token_type": "Bearer",
        "scope": GRANTED_SCOPE,
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "refresh_token": rotated,
        "id_token": id_token,
    }))
    .into_response()
}

async fn calendars_inner(State(emu): State<MicrosoftEmulator>, headers: HeaderMap) -> Response {
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
        }, {
            "id": secondary_calendar_id(idx),
            "name": super::google::SECONDARY_CALENDAR_NAME,
            "isDefaultCalendar": false,
            "canEdit": true,
            "owner": {"name": spec.email, "address": spec.email},
            "allowedOnlineMeetingProviders": providers,
            "defaultOnlineMeetingProvider": providers[0],
        }],
    }))
    .into_response()
}

async fn mailbox_zone_inner(State(emu): State<MicrosoftEmulator>, headers: HeaderMap) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let zone = emu.lock().accounts[idx].spec.windows_zone.clone();
    Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/mailboxSettings/timeZone", "value": zone}))
        .into_response()
}

async fn calendar_view_inner(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if !own_calendar(idx, &cid) {
        return item_not_found();
    }
    if let Some(refusal) = unknown_selected(&q) {
        return refusal;
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
    let acct = &inner.accounts[idx];
    let settled = |id: &str| {
        acct.written
            .get(id)
            .is_none_or(|at| at.elapsed() >= acct.view_lag)
    };
    let zone = &acct.spec.windows_zone;
    let hits: Vec<&Value> = acct
        .events
        .iter()
        .filter(|(e, raw)| {
            e.calendar == cid
                && span(raw, zone).is_some_and(|(start, end)| start < to && from < end)
                && settled(&e.id)
        })
        .map(|(_, raw)| raw)
        .collect();
    let prefer = preferred_zone(&headers).unwrap_or_else(|| "UTC".into());
    let value: Vec<Value> = hits
        .iter()
        .skip(skip)
        .take(page)
        .map(|raw| project(&in_zone((*raw).clone(), &prefer), &q))
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

async fn create_inner(
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
    if !own_calendar(idx, &cid) {
        return item_not_found();
    }
    let acct = &mut inner.accounts[idx];
    // A retry with the same transactionId gets the event already made.
    if let Some(tx) = raw
        .get("transactionId")
        .and_then(Value::as_str)
        .filter(|_| !acct.forget_transaction_ids)
    {
        if let Some((_, existing)) = acct
            .events
            .iter()
            .find(|(_, e)| e.get("transactionId").and_then(Value::as_str) == Some(tx))
        {
            if acct.duplicate_transaction_conflicts {
                return graph_error(
                    StatusCode::CONFLICT,
                    "ErrorDuplicateTransactionId",
                    "A request with the same transaction id was already processed.",
                );
            }
            return (
                StatusCode::CREATED,
                Json(project(existing, &HashMap::new())),
            )
                .into_response();
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
    if wants_teams && acct.spec.work && acct.withhold_join_url {
        raw["onlineMeeting"] = Value::Null;
    } else if let Some(reads) = acct.late_join_url.filter(|_| wants_teams && acct.spec.work) {
        raw["isOnlineMeeting"] = json!(false);
        raw["onlineMeeting"] = Value::Null;
        acct.pending_links.insert(id.clone(), reads);
    } else if wants_teams && acct.spec.work {
        raw["onlineMeeting"] = json!({"joinUrl": join_url(&id)});
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
    acct.events.push((view(&raw, invites, &cid), raw.clone()));
    acct.written.insert(id, tokio::time::Instant::now());
    // Navigation properties written with the event (its extended
    // properties) come back only when `$expand`ed, as on every read.
    (StatusCode::CREATED, Json(project(&raw, &HashMap::new()))).into_response()
}

/// `GET …/events?$filter=singleValueExtendedProperties/Any(ep: ep/id eq
/// '…' and ep/value eq '…')`: the one filter callbook sends, to find an
/// event by the booking id stored on it.
async fn list_events_inner(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if !own_calendar(idx, &cid) {
        return item_not_found();
    }
    if let Some(refusal) = unknown_selected(&q) {
        return refusal;
    }
    let filter = q.get("$filter").map(String::as_str).unwrap_or_default();
    let quoted = |key: &str| {
        let rest = &filter[filter.find(key)? + key.len()..];
        let rest = rest.strip_prefix('\'')?;
        Some(rest[..rest.find('\'')?].to_string())
    };
    let (Some(prop), Some(value)) = (quoted("ep/id eq "), quoted("ep/value eq ")) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid filter clause",
        );
    };
    let inner = emu.lock();
    let value: Vec<Value> = inner.accounts[idx]
        .events
        .iter()
        .filter(|(e, raw)| {
            e.calendar == cid
                && raw
                    .get("singleValueExtendedProperties")
                    .and_then(Value::as_array)
                    .is_some_and(|props| {
                        props.iter().any(|p| {
                            p.get("id").and_then(Value::as_str) == Some(prop.as_str())
                                && p.get("value").and_then(Value::as_str) == Some(value.as_str())
                        })
                    })
        })
        .map(|(_, raw)| project(raw, &q))
        .collect();
    Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/events", "value": value}))
        .into_response()
}

/// `GET /me/events/{id}`: the event (its `$select`ed fields), with a late
/// Teams link once enough reads have passed.
async fn get_event_inner(
    State(emu): State<MicrosoftEmulator>,
    headers: HeaderMap,
    Path(eid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if let Some(refusal) = unknown_selected(&q) {
        return refusal;
    }
    let mut inner = emu.lock();
    let acct = &mut inner.accounts[idx];
    if let Some(left) = acct.pending_links.get_mut(&eid) {
        if *left != u32::MAX {
            *left = left.saturating_sub(1);
        }
        if *left == 0 {
            acct.pending_links.remove(&eid);
            if let Some((stored, raw)) = acct.events.iter_mut().find(|(e, _)| e.id == eid) {
                raw["isOnlineMeeting"] = json!(true);
                raw["onlineMeeting"] = json!({"joinUrl": join_url(&eid)});
                stored.join_link = Some(join_url(&eid));
            }
        }
    }
    match acct.events.iter().find(|(e, _)| e.id == eid) {
        Some((_, raw)) => Json(project(raw, &q)).into_response(),
        None => item_not_found(),
    }
}

async fn patch_event_inner(
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
        return item_not_found();
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
    let calendar = stored.calendar.clone();
    *stored = view(&next, stored.invites_sent + 1, &calendar);
    *raw = next.clone();
    Json(project(&next, &HashMap::new())).into_response()
}

async fn delete_event_inner(
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
        return item_not_found();
    };
    raw["isCancelled"] = json!(true);
    let calendar = stored.calendar.clone();
    *stored = view(raw, stored.invites_sent + 1, &calendar);
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

/// Runs a Graph handler behind the injected faults of its endpoint.
macro_rules! faulty {
    ($name:ident, $inner:ident, $endpoint:expr, ($($arg:ident : $ty:ty),*)) => {
        async fn $name(State(emu): State<MicrosoftEmulator>, headers: HeaderMap, $($arg: $ty),*) -> Response {
            let Some(idx) = emu.account_for(&headers) else {
                return unauthenticated();
            };
            let email = emu.email_of(idx);
            let before = emu.before(&email, $endpoint).await;
            before.run($inner(State(emu), headers, $($arg),*)).await
        }
    };
}

faulty!(calendars, calendars_inner, Endpoint::CalendarList, ());
faulty!(
    mailbox_zone,
    mailbox_zone_inner,
    Endpoint::MailboxSettings,
    ()
);
faulty!(calendar_view, calendar_view_inner, Endpoint::FreeBusy, (cid: Path<String>, q: Query<HashMap<String, String>>, raw: RawQuery));
faulty!(create, create_inner, Endpoint::Insert, (cid: Path<String>, body: Option<Json<Value>>));
faulty!(list_events, list_events_inner, Endpoint::List, (cid: Path<String>, q: Query<HashMap<String, String>>));
faulty!(get_event, get_event_inner, Endpoint::Get, (eid: Path<String>, q: Query<HashMap<String, String>>));
faulty!(patch_event, patch_event_inner, Endpoint::Patch, (eid: Path<String>, body: Option<Json<Value>>));
faulty!(delete_event, delete_event_inner, Endpoint::Delete, (eid: Path<String>));
