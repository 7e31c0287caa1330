//! A local Google Calendar: the token endpoint and the Calendar v3 calls
//! callbook uses, with Google's paths, JSON, error bodies and quirks.
//!
//! - `GET  /o/oauth2/v2/auth`: the consent screen, approving at once as the
//!   account `login_hint` pre-selects, or the one the person picks instead
//!   ([`super::CHOOSE_ACCOUNT`])
//! - `POST /token` (refresh grant; `invalid_grant` once a grant is revoked)
//! - `GET  /calendar/v3/users/me/calendarList`: the primary calendar (its
//!   id the account's address) and a secondary one the owner can write to
//!   ([`secondary_calendar_id`], named [`SECONDARY_CALENDAR_NAME`]), as an
//!   account with a shared bookings calendar has
//! - `POST /calendar/v3/freeBusy` (calendars keyed by id; unknown ids get a
//!   per-calendar `errors` entry inside a 200)
//! - `POST /calendar/v3/calendars/{cid}/events` (client ids must be base32hex,
//!   5–1024 chars; a reused id is a 409 `duplicate`, also for deleted events;
//!   Meet only with `conferenceDataVersion=1`)
//! - `GET|PATCH|DELETE /calendar/v3/calendars/{cid}/events/{eid}`
//!
//! Values outside the parameters' descriptions (`conferenceDataVersion` 0 or
//! 1; `sendUpdates` `all`, `externalOnly` or `none`; `minAccessRole` one of
//! the access roles) are refused as Google does: 400 `invalidParameter`
//! naming the parameter.
//! Injected rate limits take Google's two shapes: 403 with domain
//! `usageLimits`, 429 with domain `global`.
//!
//! Events live in memory; busy time is derived from them. Tests read the
//! ground truth back with [`GoogleEmulator::events`].

use crate::schedule::{merge_busy, Interval};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::faults::{self, Before, ErrorShape, Faults, TokenFault};
pub use super::faults::{Endpoint, Fault};
use super::{base64_basic, pkce_s256, PendingCode};

/// One Google account with its primary calendar (and a secondary one,
/// [`secondary_calendar_id`]).
#[derive(Debug, Clone)]
pub struct AccountSpec {
    pub email: String,
    pub refresh_token: String,
    pub time_zone: String,
    /// Whether the calendar allows Google Meet.
    pub meet: bool,
}

/// An event as stored, for assertions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredEvent {
    pub id: String,
    /// The calendar the event is on, by its canonical id: the account's
    /// address for the primary calendar (Google) or the calendar's id
    /// (Graph).
    pub calendar: String,
    pub status: String,
    pub summary: String,
    pub description: String,
    pub location: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub time_zone: Option<String>,
    pub attendees: Vec<String>,
    pub booking_id: Option<String>,
    pub join_link: Option<String>,
    /// How many times Google would have emailed attendees (insert and each
    /// patch with `sendUpdates=all`).
    pub invites_sent: u32,
}

#[derive(Debug)]
struct Account {
    spec: AccountSpec,
    revoked: bool,
    events: Vec<(StoredEvent, Value)>,
    /// When each event was written, for lagging free/busy.
    written: HashMap<String, tokio::time::Instant>,
    /// Polls left before a pending Meet link succeeds, per event.
    meet_polls: HashMap<String, u32>,
    /// New Meet requests stay pending for this many `events.get` polls.
    meet_pending_polls: u32,
    /// Free/busy does not show writes younger than this.
    free_busy_lag: std::time::Duration,
}

#[derive(Debug, Default)]
struct Inner {
    client_id: String,
    client_secret: String,
    accounts: Vec<Account>,
    access_tokens: HashMap<String, usize>,
    issued: u64,
    faults: Faults,
    /// Authorization codes waiting for exchange.
    codes: HashMap<String, PendingCode>,
    /// What the consent screen grants, when the owner unticked something.
    granted_scope: Option<String>,
}

/// The emulator; clones share state.
#[derive(Clone, Debug, Default)]
pub struct GoogleEmulator {
    inner: Arc<Mutex<Inner>>,
    recorder: super::record::Recorder,
}

fn err(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"error": {
        "errors": [{"domain": "global", "reason": reason, "message": message}],
        "code": status.as_u16(),
        "message": message,
    }});
    (status, Json(body)).into_response()
}

/// Google's error bodies, for injected faults.
struct Shape;

impl ErrorShape for Shape {
    fn api_error(status: StatusCode, reason: &str) -> Response {
        // Rate limits come in two shapes: 403 with domain usageLimits, and
        // 429 with domain global.
        let (domain, message) = match (status.as_u16(), reason) {
            (403, "rateLimitExceeded") => ("usageLimits", "Rate Limit Exceeded"),
            (403, "userRateLimitExceeded") => ("usageLimits", "User Rate Limit Exceeded"),
            (403, "dailyLimitExceeded") => ("usageLimits", "Daily Limit Exceeded"),
            (403, "quotaExceeded") => ("usageLimits", "Calendar usage limits exceeded."),
            (429, _) => ("global", "Rate Limit Exceeded"),
            (500..=599, "backendError") => ("global", "Backend Error"),
            _ => ("global", reason),
        };
        let body = json!({"error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status.as_u16(),
            "message": message,
        }});
        (status, Json(body)).into_response()
    }

    fn token_error(fault: TokenFault) -> Response {
        match fault {
            TokenFault::InvalidGrant => {
                oauth_error("invalid_grant", "Token has been expired or revoked.")
            }
            // A Workspace administrator has not allowed the app.
            TokenFault::ConsentRequired => oauth_error(
                "admin_policy_enforced",
                "The Google Account is unable to authorize one or more scopes requested due to the policies of their Google Workspace administrator.",
            ),
            TokenFault::InteractionRequired => {
                oauth_error("invalid_grant", "reauth related error (invalid_rapt)")
            }
            TokenFault::TemporarilyUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "temporarily_unavailable", "error_description": "The service is currently unavailable."})),
            )
                .into_response(),
        }
    }
}

fn unauthenticated() -> Response {
    let body = json!({"error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                    "location": "Authorization", "locationType": "header"}],
        "status": "UNAUTHENTICATED",
    }});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Google accepts a `dateTime` with an offset, or a local `dateTime` plus a
/// `timeZone`. Anything else is a 400.
fn read_time(v: Option<&Value>) -> Option<(DateTime<Utc>, Option<String>)> {
    let v = v?;
    let zone = v
        .get("timeZone")
        .and_then(Value::as_str)
        .map(str::to_string);
    let text = v.get("dateTime")?.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t.with_timezone(&Utc), zone));
    }
    let tz: Tz = zone.as_deref()?.parse().ok()?;
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok()?;
    Some((crate::schedule::resolve_local(tz, local), zone))
}

fn valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len()) && id.chars().all(|c| matches!(c, 'a'..='v' | '0'..='9'))
}

/// A stable Meet-style link for an event id.
fn meet_link(id: &str) -> String {
    let letters: String = id
        .bytes()
        .cycle()
        .take(10)
        .map(|b| (b'a' + b % 26) as char)
        .collect();
    format!(
        "https://meet.google.com/{}-{}-{}",
        &letters[..3],
        &letters[3..7],
        &letters[7..10]
    )
}

impl GoogleEmulator {
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

    pub fn add_account(&self, spec: AccountSpec) {
        self.lock().accounts.push(Account {
            spec,
            revoked: false,
            events: Vec::new(),
            written: HashMap::new(),
            meet_polls: HashMap::new(),
            meet_pending_polls: 0,
            free_busy_lag: std::time::Duration::ZERO,
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

    /// New Meet requests stay `pending` for this many `events.get` polls.
    pub fn meet_pending_for(&self, email: &str, polls: u32) {
        self.with_account(email, |a| a.meet_pending_polls = polls);
    }

    /// Free/busy lags writes by this long, as Google's sometimes does.
    pub fn lag_free_busy(&self, email: &str, lag: std::time::Duration) {
        self.with_account(email, |a| a.free_busy_lag = lag);
    }

    /// Consults the faults for this request.
    async fn before(&self, idx: Option<usize>, email: Option<&str>, endpoint: Endpoint) -> Before {
        let fault = {
            let mut inner = self.lock();
            let email = match (email, idx) {
                (Some(e), _) => e.to_string(),
                (None, Some(i)) => inner.accounts[i].spec.email.clone(),
                _ => String::new(),
            };
            inner.faults.take(&email, endpoint)
        };
        faults::apply::<Shape>(fault).await
    }

    /// Adds an event the owner already has (busy time callbook did not make).
    pub fn add_event(&self, email: &str, summary: &str, slot: Interval) {
        let mut inner = self.lock();
        let Some(acct) = inner.accounts.iter_mut().find(|a| a.spec.email == email) else {
            return;
        };
        let n = acct.events.len();
        let stored = StoredEvent {
            id: format!("seed{n:04}"),
            calendar: email.to_string(),
            status: "confirmed".into(),
            summary: summary.into(),
            description: String::new(),
            location: None,
            start: slot.start,
            end: slot.end,
            time_zone: None,
            attendees: Vec::new(),
            booking_id: None,
            join_link: None,
            invites_sent: 0,
        };
        let raw = json!({"id": stored.id, "status": "confirmed", "summary": summary,
                         "start": {"dateTime": rfc3339(slot.start)}, "end": {"dateTime": rfc3339(slot.end)}});
        acct.events.push((stored, raw));
    }

    /// Deletes an event as its owner would in Google Calendar itself (no
    /// API call of callbook's): it reads as cancelled from then on.
    pub fn delete_by_owner(&self, email: &str, event_id: &str) {
        let mut inner = self.lock();
        if let Some(acct) = inner.accounts.iter_mut().find(|a| a.spec.email == email) {
            for (view, raw) in acct.events.iter_mut().filter(|(e, _)| e.id == event_id) {
                view.status = "cancelled".into();
                raw["status"] = json!("cancelled");
            }
        }
    }

    /// Whether the account's grant is revoked (refreshes are refused).
    pub fn is_revoked(&self, email: &str) -> bool {
        self.lock()
            .accounts
            .iter()
            .any(|a| a.spec.email == email && a.revoked)
    }

    /// Revokes the account's grant: refreshes answer `invalid_grant` and
    /// access tokens already issued stop working.
    pub fn revoke(&self, email: &str) {
        let mut inner = self.lock();
        let Some(idx) = inner.accounts.iter().position(|a| a.spec.email == email) else {
            return;
        };
        inner.accounts[idx].revoked = true;
        inner.access_tokens.retain(|_, a| *a != idx);
    }

    /// The consent screen grants only these scopes (space-separated), as if
    /// the owner unticked the rest.
    pub fn grant_only(&self, scopes: &str) {
        self.lock().granted_scope = Some(scopes.to_string());
    }

    /// Every access token issued so far stops working, as when they
    /// expire: the next API call gets Google's 401.
    pub fn expire_access_tokens(&self) {
        self.lock().access_tokens.clear();
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.lock().issued
    }

    /// Every event of the account, cancelled ones included.
    pub fn events(&self, email: &str) -> Vec<StoredEvent> {
        self.lock()
            .accounts
            .iter()
            .find(|a| a.spec.email == email)
            .map(|a| a.events.iter().map(|(e, _)| e.clone()).collect())
            .unwrap_or_default()
    }

    /// The HTTP API, to be served on a loopback listener.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/token", post(token))
            .route("/o/oauth2/v2/auth", get(authorize))
            .route("/revoke", post(revoke))
            .route("/calendar/v3/users/me/calendarList", get(calendar_list))
            .route("/calendar/v3/freeBusy", post(free_busy))
            .route(
                "/calendar/v3/calendars/{cid}/events",
                post(insert).get(list_events),
            )
            .route(
                "/calendar/v3/calendars/{cid}/events/{eid}",
                get(get_event).patch(patch_event).delete(delete_event),
            )
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

/// The token endpoint behind its injected faults, found by the account the
/// refresh token or the code belongs to.
async fn token(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let email = {
        let inner = emu.lock();
        let by_refresh = form
            .get("refresh_token")
            .and_then(|rt| inner.accounts.iter().find(|a| &a.spec.refresh_token == rt));
        let by_code = form
            .get("code")
            .and_then(|c| inner.codes.get(c))
            .map(|p| &inner.accounts[p.account]);
        by_refresh.or(by_code).map(|a| a.spec.email.clone())
    };
    let Some(email) = email else {
        return token_inner(&emu, &headers, &form);
    };
    emu.before(None, Some(&email), Endpoint::Token)
        .await
        .run(async { token_inner(&emu, &headers, &form) })
        .await
}

fn token_inner(
    emu: &GoogleEmulator,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let mut inner = emu.lock();
    // Client credentials come as HTTP Basic or as form fields.
    let basic = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .map(str::to_string);
    let expected_basic = base64_basic(&inner.client_id, &inner.client_secret);
    let form_ok = form.get("client_id") == Some(&inner.client_id)
        && form.get("client_secret") == Some(&inner.client_secret);
    if !(form_ok || basic.as_deref() == Some(expected_basic.as_str())) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "The OAuth client was not found."})),
        )
            .into_response();
    }
    let granted = inner
        .granted_scope
        .clone()
        .unwrap_or_else(|| FULL_SCOPE.to_string());
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {}
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            // Codes work once.
            let Some(pending) = inner.codes.remove(&code) else {
                return oauth_error("invalid_grant", "Malformed auth code.");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if form.get("redirect_uri") != Some(&pending.redirect_uri) {
                return oauth_error("redirect_uri_mismatch", "Bad Request");
            }
            if pkce_s256(&verifier) != pending.challenge {
                return oauth_error("invalid_grant", "Invalid code verifier.");
            }
            inner.issued += 1;
            let n = inner.issued;
            let client_id = inner.client_id.clone();
            let acct = &mut inner.accounts[pending.account];
            acct.revoked = false;
            acct.spec.refresh_token = format!("1//emulated-refresh-{n}");
            let refresh = acct.spec.refresh_token.clone();
            let access = format!("ya29.emulated-{}-{n}", pending.account);
            let id_token = id_token(&acct.spec.email, &client_id);
            inner.access_tokens.insert(access.clone(), pending.account);
            return Json(json!({
                "access_token": access,
                "expires_in": 3599,
                "refresh_token": refresh,
                "scope": granted,
                "token_type": "Bearer",
                "id_token": id_token,
            }))
            .into_response();
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})),
            )
                .into_response()
        }
    }
    let refresh = form.get("refresh_token").cloned().unwrap_or_default();
    let Some(idx) = inner
        .accounts
        .iter()
        .position(|a| a.spec.refresh_token == refresh && !a.revoked)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
        )
            .into_response();
    };
    inner.issued += 1;
    let access = format!("ya29.emulated-{}-{}", idx, inner.issued);
    inner.access_tokens.insert(access.clone(), idx);
    Json(json!({
        "access_token": access,
        "expires_in": 3599,
        "scope": granted,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// An unsigned stand-in for Google's `id_token`: the claims callbook reads.
fn id_token(email: &str, client_id: &str) -> String {
    super::unsigned_jwt(
        &json!({"iss": "https://accounts.google.com", "aud": client_id,
                                "sub": format!("{:x}", email.len()), "email": email,
                                "email_verified": true}),
    )
}

/// Every scope callbook asks for, as Google reports them granted.
const FULL_SCOPE: &str = "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.freebusy https://www.googleapis.com/auth/calendar.calendarlist.readonly openid https://www.googleapis.com/auth/userinfo.email";

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The consent screen, approving at once as the account
/// [`super::pick_account`] picks: redirects back with a code.
async fn authorize(
    State(emu): State<GoogleEmulator>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = emu.lock();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != inner.client_id {
        return oauth_error("invalid_client", "The OAuth client was not found.");
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
    {
        return oauth_error(
            "invalid_request",
            "PKCE S256 and response_type=code are required.",
        );
    }
    let Ok(back) = reqwest::Url::parse(&get("redirect_uri")) else {
        return oauth_error(
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    let Some(account) =
        super::pick_account(&q, inner.accounts.iter().map(|a| a.spec.email.as_str()))
    else {
        return oauth_error("access_denied", "No such account.");
    };
    inner.issued += 1;
    let code = format!("4/emulated-code-{}", inner.issued);
    super::approve(&mut inner.codes, code, account, &q, back, &["scope"])
}

/// `POST /revoke`: the grant behind a refresh or access token stops working.
async fn revoke(
    State(emu): State<GoogleEmulator>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = form.get("token").cloned().unwrap_or_default();
    let mut inner = emu.lock();
    let idx = inner
        .accounts
        .iter()
        .position(|a| a.spec.refresh_token == token)
        .or_else(|| inner.access_tokens.get(&token).copied());
    match idx {
        Some(i) => {
            inner.accounts[i].revoked = true;
            inner.access_tokens.retain(|_, a| *a != i);
            Json(json!({})).into_response()
        }
        None => oauth_error("invalid_token", "Token expired or revoked"),
    }
}

/// The access roles `minAccessRole` takes, as the discovery document
/// lists them.
const ACCESS_ROLES: [&str; 5] = [
    "freeBusyReader",
    "owner",
    "reader",
    "writer",
    "writerWithoutPrivateAccess",
];

async fn calendar_list_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    // Every emulated calendar is the owner's own, so any valid minimum
    // role keeps it; a value outside the enum is refused.
    if let Some(role) = q
        .get("minAccessRole")
        .filter(|r| !ACCESS_ROLES.contains(&r.as_str()))
    {
        return invalid_parameter(
            "minAccessRole",
            &format!(
                "Invalid value '{role}'. Values must match the following regular expression: '{}'",
                ACCESS_ROLES.join("|")
            ),
        );
    }
    let inner = emu.lock();
    let spec = &inner.accounts[idx].spec;
    let solutions: Vec<&str> = if spec.meet {
        vec!["hangoutsMeet"]
    } else {
        vec![]
    };
    Json(json!({
        "kind": "calendar#calendarList",
        "items": [{
            "kind": "calendar#calendarListEntry",
            "id": spec.email,
            "summary": spec.email,
            "timeZone": spec.time_zone,
            "accessRole": "owner",
            "primary": true,
            "conferenceProperties": {"allowedConferenceSolutionTypes": solutions},
        }, {
            // A calendar the owner created: no `primary` field at all.
            "kind": "calendar#calendarListEntry",
            "id": secondary_calendar_id(&spec.email),
            "summary": SECONDARY_CALENDAR_NAME,
            "timeZone": spec.time_zone,
            "accessRole": "owner",
            "conferenceProperties": {"allowedConferenceSolutionTypes": solutions},
        }],
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FreeBusyRequest {
    time_min: String,
    time_max: String,
    #[serde(default)]
    items: Vec<FreeBusyItem>,
}

#[derive(Deserialize)]
struct FreeBusyItem {
    id: String,
}

/// What the emulator names the secondary calendar of every account.
pub const SECONDARY_CALENDAR_NAME: &str = "Bookings";

/// The id of the account's secondary calendar, shaped as Google's ids for
/// calendars a person creates (`c_…@group.calendar.google.com`).
pub fn secondary_calendar_id(email: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(email.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("c_{hex}@group.calendar.google.com")
}

/// The canonical id of the account's calendar `cid` names (`primary`, the
/// address, or the secondary calendar's id); `None` for another's.
fn own_calendar(spec: &AccountSpec, cid: &str) -> Option<String> {
    if cid == "primary" || cid == spec.email {
        Some(spec.email.clone())
    } else if cid == secondary_calendar_id(&spec.email) {
        Some(cid.to_string())
    } else {
        None
    }
}

async fn free_busy(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    body: Option<Json<FreeBusyRequest>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let calendar_error = match emu.before(Some(idx), None, Endpoint::FreeBusy).await {
        Before::Respond(r) => return r,
        Before::Go { calendar_error, .. } => calendar_error,
    };
    let Some(Json(req)) = body else {
        return err(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(min), Some(max)) = (parse(&req.time_min), parse(&req.time_max)) else {
        return err(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
    };
    if max <= min {
        return err(
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        );
    }
    // freeBusy serves at most about 90 days per query.
    if max - min > chrono::Duration::days(90) {
        return err(
            StatusCode::BAD_REQUEST,
            "timeRangeTooLong",
            "The requested time range is too long.",
        );
    }
    let inner = emu.lock();
    let acct = &inner.accounts[idx];
    let mut calendars = serde_json::Map::new();
    for item in req.items {
        let now = tokio::time::Instant::now();
        let visible = |id: &str| {
            acct.written
                .get(id)
                .is_none_or(|w| now.duration_since(*w) >= acct.free_busy_lag)
        };
        let own = own_calendar(&acct.spec, &item.id);
        let entry = if let (Some(_), Some(reason)) = (&own, calendar_error) {
            json!({"errors": [{"domain": "global", "reason": reason}], "busy": []})
        } else if let Some(cal) = &own {
            let busy: Vec<Interval> = acct
                .events
                .iter()
                .filter(|(e, raw)| {
                    &e.calendar == cal
                        && e.status != "cancelled"
                        && raw.get("transparency").and_then(Value::as_str) != Some("transparent")
                })
                .filter(|(e, _)| e.start < max && min < e.end && visible(&e.id))
                .map(|(e, _)| Interval::new(e.start.max(min), e.end.min(max)))
                .collect();
            let busy: Vec<Value> = merge_busy(busy)
                .into_iter()
                .map(|b| json!({"start": rfc3339(b.start), "end": rfc3339(b.end)}))
                .collect();
            json!({"busy": busy})
        } else {
            json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []})
        };
        calendars.insert(item.id, entry);
    }
    Json(json!({
        "kind": "calendar#freeBusy",
        "timeMin": rfc3339(min),
        "timeMax": rfc3339(max),
        "calendars": calendars,
    }))
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WriteQuery {
    #[serde(default)]
    conference_data_version: Option<String>,
    #[serde(default)]
    send_updates: Option<String>,
}

impl WriteQuery {
    /// Google's refusal of a value outside the parameters' descriptions in
    /// the discovery document: `conferenceDataVersion` is an integer from 0
    /// to 1, `sendUpdates` one of `all`, `externalOnly` or `none`. Google
    /// answers 400 `invalidParameter`, naming the parameter in `location`
    /// (`locationType: parameter`).
    fn invalid(&self) -> Option<Response> {
        if let Some(v) = self.conference_data_version.as_deref() {
            if !matches!(v.parse::<i64>(), Ok(0..=1)) {
                return Some(invalid_parameter(
                    "conferenceDataVersion",
                    &format!("Invalid value '{v}'. Values must be within the range: [0, 1]"),
                ));
            }
        }
        if let Some(v) = self
            .send_updates
            .as_deref()
            .filter(|v| !matches!(*v, "all" | "externalOnly" | "none"))
        {
            return Some(invalid_parameter(
                "sendUpdates",
                &format!("Invalid value '{v}'. Values must match the following regular expression: 'all|externalOnly|none'"),
            ));
        }
        None
    }
}

/// Google's 400 for a query parameter outside its description.
fn invalid_parameter(name: &str, message: &str) -> Response {
    let body = json!({"error": {
        "errors": [{"domain": "global", "reason": "invalidParameter", "message": message,
                    "locationType": "parameter", "location": name}],
        "code": 400,
        "message": message,
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Fills in what Google adds to a stored event and extracts the fields
/// tests assert on.
fn store_view(raw: &Value, invites_sent: u32, calendar: &str) -> Option<StoredEvent> {
    let (start, zone) = read_time(raw.get("start"))?;
    let (end, _) = read_time(raw.get("end"))?;
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    Some(StoredEvent {
        id: s("id")?,
        calendar: calendar.to_string(),
        status: s("status").unwrap_or_else(|| "confirmed".into()),
        summary: s("summary").unwrap_or_default(),
        description: s("description").unwrap_or_default(),
        location: s("location"),
        start,
        end,
        time_zone: zone,
        attendees: raw
            .get("attendees")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.get("email").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        booking_id: raw
            .pointer("/extendedProperties/private/bookingId")
            .and_then(Value::as_str)
            .map(str::to_string),
        join_link: raw
            .get("hangoutLink")
            .and_then(Value::as_str)
            .map(str::to_string),
        invites_sent,
    })
}

async fn insert_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Query(q): Query<WriteQuery>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if let Some(refusal) = q.invalid() {
        return refusal;
    }
    let Some(Json(mut raw)) = body.filter(|b| b.0.is_object()) else {
        return err(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
    };
    let mut inner = emu.lock();
    let issued = inner.issued;
    let acct = &mut inner.accounts[idx];
    let Some(calendar) = own_calendar(&acct.spec, &cid) else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let id = match raw.get("id").and_then(Value::as_str) {
        Some(id) if !valid_event_id(id) => {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid resource id value.",
            )
        }
        Some(id) => id.to_string(),
        None => format!("gen{issued:08}{:04}", acct.events.len()),
    };
    // Ids stay burned after deletion, so cancelled events count too.
    if acct
        .events
        .iter()
        .any(|(e, _)| e.id == id && e.calendar == calendar)
    {
        return err(
            StatusCode::CONFLICT,
            "duplicate",
            "The requested identifier already exists.",
        );
    }
    let (Some((start, _)), Some((end, _))) =
        (read_time(raw.get("start")), read_time(raw.get("end")))
    else {
        return err(
            StatusCode::BAD_REQUEST,
            "required",
            "Missing time zone definition for start time.",
        );
    };
    if end <= start {
        return err(
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        );
    }
    raw["id"] = json!(id);
    raw["status"] = json!("confirmed");
    raw["kind"] = json!("calendar#event");
    raw["htmlLink"] = json!(format!("https://www.google.com/calendar/event?eid={id}"));
    raw["organizer"] = json!({"email": acct.spec.email, "self": true});
    // Conference data is ignored unless the client opts in with version 1.
    match (
        q.conference_data_version.as_deref(),
        raw.pointer("/conferenceData/createRequest").cloned(),
    ) {
        (Some("1"), Some(request)) => {
            let allowed = acct.spec.meet
                && request
                    .pointer("/conferenceSolutionKey/type")
                    .and_then(Value::as_str)
                    == Some("hangoutsMeet");
            let mut request = request;
            if allowed && acct.meet_pending_polls > 0 {
                // Conference creation continues after the answer.
                request["status"] = json!({"statusCode": "pending"});
                raw["conferenceData"] = json!({"createRequest": request});
                acct.meet_polls.insert(id.clone(), acct.meet_pending_polls);
            } else if allowed {
                raw["conferenceData"] = json!({"createRequest": request});
                meet_success(&mut raw, &id);
            } else {
                return err(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid conference type value.",
                );
            }
        }
        _ => {
            if let Some(obj) = raw.as_object_mut() {
                obj.remove("conferenceData");
            }
        }
    }
    let invites =
        u32::from(q.send_updates.as_deref() == Some("all") && raw.get("attendees").is_some());
    let Some(view) = store_view(&raw, invites, &calendar) else {
        return err(StatusCode::BAD_REQUEST, "invalid", "Invalid value");
    };
    acct.written.insert(id.clone(), tokio::time::Instant::now());
    acct.events.push((view, raw.clone()));
    Json(raw).into_response()
}

async fn get_event_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Path((cid, eid)): Path<(String, String)>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let mut inner = emu.lock();
    let acct = &mut inner.accounts[idx];
    let Some(calendar) = own_calendar(&acct.spec, &cid) else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    // A pending Meet link succeeds after the configured number of polls.
    let ready = match acct.meet_polls.get_mut(&eid) {
        Some(left) => {
            *left = left.saturating_sub(1);
            *left == 0
        }
        None => false,
    };
    if ready {
        acct.meet_polls.remove(&eid);
    }
    match acct
        .events
        .iter_mut()
        .find(|(e, _)| e.id == eid && e.calendar == calendar)
    {
        Some((view, raw)) => {
            if ready {
                meet_success(raw, &eid);
                view.join_link = raw
                    .get("hangoutLink")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Json(raw.clone()).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "notFound", "Not Found"),
    }
}

/// `events.list` over a window (`timeMin`, `timeMax`): the live events
/// overlapping it, in one page.
async fn list_events_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    let time = |k: &str| {
        q.get(k)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(from), Some(to)) = (time("timeMin"), time("timeMax")) else {
        return err(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
    };
    let inner = emu.lock();
    let acct = &inner.accounts[idx];
    let Some(calendar) = own_calendar(&acct.spec, &cid) else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let items: Vec<Value> = acct
        .events
        .iter()
        .filter(|(e, _)| {
            e.calendar == calendar && e.status != "cancelled" && e.start < to && from < e.end
        })
        .map(|(_, raw)| raw.clone())
        .collect();
    Json(json!({"kind": "calendar#events", "items": items})).into_response()
}

/// Completes a Meet request: status `success`, entry points and the link.
fn meet_success(raw: &mut Value, id: &str) {
    let link = meet_link(id);
    let mut request = raw
        .pointer("/conferenceData/createRequest")
        .cloned()
        .unwrap_or(json!({}));
    request["status"] = json!({"statusCode": "success"});
    raw["conferenceData"] = json!({
        "createRequest": request,
        "entryPoints": [{"entryPointType": "video", "uri": link, "label": link.trim_start_matches("https://")}],
        "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
        "conferenceId": link.rsplit('/').next().unwrap_or_default(),
    });
    raw["hangoutLink"] = json!(link);
}

async fn patch_event_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Path((cid, eid)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if let Some(refusal) = q.invalid() {
        return refusal;
    }
    let Some(Json(patch)) = body.filter(|b| b.0.is_object()) else {
        return err(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
    };
    let mut inner = emu.lock();
    let acct = &mut inner.accounts[idx];
    let Some(calendar) = own_calendar(&acct.spec, &cid) else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let Some((view, raw)) = acct
        .events
        .iter_mut()
        .find(|(e, _)| e.id == eid && e.calendar == calendar)
    else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    // Patch semantics: provided fields replace stored ones wholesale.
    let mut next = raw.clone();
    for (k, v) in patch.as_object().into_iter().flatten() {
        if k != "id" {
            next[k] = v.clone();
        }
    }
    let invites = view.invites_sent + u32::from(q.send_updates.as_deref() == Some("all"));
    let Some(new_view) = store_view(&next, invites, &calendar) else {
        return err(StatusCode::BAD_REQUEST, "invalid", "Invalid value");
    };
    if new_view.end <= new_view.start {
        return err(
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        );
    }
    *view = new_view;
    *raw = next.clone();
    acct.written
        .insert(eid.clone(), tokio::time::Instant::now());
    Json(next).into_response()
}

async fn delete_event_inner(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Path((cid, eid)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
) -> Response {
    let Some(idx) = emu.account_for(&headers) else {
        return unauthenticated();
    };
    if let Some(refusal) = q.invalid() {
        return refusal;
    }
    let mut inner = emu.lock();
    let acct = &mut inner.accounts[idx];
    let Some(calendar) = own_calendar(&acct.spec, &cid) else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let Some((view, raw)) = acct
        .events
        .iter_mut()
        .find(|(e, _)| e.id == eid && e.calendar == calendar)
    else {
        return err(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    // Deleted events stay, as `cancelled`; deleting again is a 410.
    if view.status == "cancelled" {
        return err(StatusCode::GONE, "deleted", "Resource has been deleted");
    }
    view.status = "cancelled".into();
    raw["status"] = json!("cancelled");
    view.invites_sent += u32::from(q.send_updates.as_deref() == Some("all"));
    StatusCode::NO_CONTENT.into_response()
}

/// Runs a handler behind the injected faults of its endpoint.
macro_rules! faulty {
    ($name:ident, $inner:ident, $endpoint:expr, ($($arg:ident : $ty:ty),*)) => {
        async fn $name(State(emu): State<GoogleEmulator>, headers: HeaderMap, $($arg: $ty),*) -> Response {
            let idx = emu.account_for(&headers);
            let before = emu.before(idx, None, $endpoint).await;
            before.run($inner(State(emu), headers, $($arg),*)).await
        }
    };
}

faulty!(
    calendar_list,
    calendar_list_inner,
    Endpoint::CalendarList,
    (q: Query<HashMap<String, String>>)
);
faulty!(get_event, get_event_inner, Endpoint::Get, (path: Path<(String, String)>));
faulty!(list_events, list_events_inner, Endpoint::List, (path: Path<String>, q: Query<HashMap<String, String>>));
faulty!(patch_event, patch_event_inner, Endpoint::Patch, (path: Path<(String, String)>, q: Query<WriteQuery>, body: Option<Json<Value>>));
faulty!(delete_event, delete_event_inner, Endpoint::Delete, (path: Path<(String, String)>, q: Query<WriteQuery>));
faulty!(insert, insert_inner, Endpoint::Insert, (path: Path<String>, q: Query<WriteQuery>, body: Option<Json<Value>>));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_follow_base32hex_rules() {
        assert!(valid_event_id("0123456789abcdefghijklmnopqrstuv"));
        assert!(!valid_event_id("abcw1"));
        assert!(!valid_event_id("abc"));
        assert!(!valid_event_id("ABCDE"));
    }
}
