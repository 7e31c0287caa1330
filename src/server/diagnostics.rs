//! `GET /v1/campaigns/{id}/diagnostics`: "why didn't it offer to book?",
//! the troubleshooting checklist evaluated live.
//!
//! In order: booking is on; the owner has a connected calendar; the
//! connection is active (else what to do: connect again, or the
//! administrator's consent link); the provider answers now (one cheap
//! call, bounded); there are free slots in the look-ahead under the
//! current rules (how many, and the next three); and what the last calls
//! did (their outcomes from the outcome store, and for calls that ended
//! before anything was decided, the stage they stopped at, from the call
//! trail). The verdict names the first check that fails.
//!
//! Read-only: nothing here changes a connection's status or starts a
//! consent flow (each flow's `state` is single-use, so a GET must not mint
//! them); a connection that needs the owner shows the admin API request
//! that starts one.

use super::admin::{admin_only, error, ApiError};
use super::AppState;
use crate::calendar::{CalendarError, CalendarProvider};
use crate::domain::{FailReason, SkipReason};
use crate::observe::progress::{
    fail_name, fail_sentence, skip_name, skip_sentence, CallEnd, Reached,
};
use crate::outcomes::{BookingRecord, OutcomeStatus};
use crate::schedule::{Interval, SlotFinder};
use crate::store::{Campaign, Connection, ConnectionStatus, Provider};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashSet;
use utoipa::ToSchema;

/// How long the provider has to answer each of the checklist's calls.
pub const PROVIDER_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// How many recent calls the checklist shows.
pub const RECENT_CALLS: usize = 10;

/// Outcomes read to find the recent calls' (several per call at most).
const OUTCOMES_READ: usize = 50;

/// Free/busy is read this far past the look-ahead, as calls do.
const LOAD_MARGIN_DAYS: i64 = 2;

/// The checklist for one campaign.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "campaign": "demo", "name": "Acme outreach", "owner": "alex", "ok": false,
    "verdict": "booking will not be offered: the owner's google connection has expired; the owner must connect again",
    "checks": [
        {"check": "booking_enabled", "ok": true, "detail": "booking is on"},
        {"check": "calendar_connected", "ok": true, "detail": "alex has google connected", "provider": "google", "calendar_id": "primary"},
        {"check": "connection_status", "ok": false, "detail": "the owner's google connection has expired; the owner must connect again", "status": "expired", "since": "2026-12-01T15:00:00Z", "connect": [{"method": "POST", "path": "/v1/users/alex/connections/google"}]},
        {"check": "provider_reachable", "ok": false, "detail": "not checked: the connection is not active"},
        {"check": "free_slots", "ok": false, "detail": "not checked: the provider was not reached"},
        {"check": "recent_calls", "ok": true, "detail": "no calls recorded for this campaign yet", "calls": []}
    ]
}))]
pub struct Diagnostics {
    pub campaign: String,
    pub name: String,
    pub owner: String,
    /// Every check passed.
    pub ok: bool,
    /// What to do, in a sentence: the first failing check's detail.
    pub verdict: String,
    pub checks: Vec<Check>,
}

/// One item of the checklist. `check` names it; the optional fields
/// belong to the checks that name them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `booking_enabled`, `calendar_connected`, `connection_status`,
    /// `provider_reachable`, `free_slots` or `recent_calls`.
    pub check: String,
    pub ok: bool,
    pub detail: String,
    /// The connected provider (`google`, `microsoft`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    /// The connection's status: `active`, `expired`, `admin_approval_needed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The admin API request that starts a (re)connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<Vec<ConnectLink>>,
    /// Where a Microsoft tenant's administrator approves callbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_consent_url: Option<String>,
    /// The provider's fault class when it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Free slots in the look-ahead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// The next free slots (at most three).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Vec<Slot>>,
    /// The owner's zone, the rules' zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The zone the provider reported but callbook could not resolve
    /// (Outlook's "Customized Time Zone"): calls use the campaign's rules
    /// zone instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_unresolved: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<RecentCall>>,
}

impl Check {
    fn new(check: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            check: check.to_string(),
            ok,
            detail: detail.into(),
            provider: None,
            calendar_id: None,
            status: None,
            since: None,
            connect: None,
            admin_consent_url: None,
            error: None,
            count: None,
            next: None,
            timezone: None,
            zone_unresolved: None,
            calls: None,
        }
    }
}

/// An admin API request to make.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectLink {
    pub method: String,
    pub path: String,
}

/// A free slot, in UTC and in the owner's zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The start in the owner's zone, e.g. `Tue 2026-12-01 13:00 EST`.
    pub local: String,
}

/// One recent call of the campaign: how far its booking got and why it
/// stopped there.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentCall {
    pub call_sid: String,
    /// When the call ended, or when its last outcome was recorded.
    pub at: DateTime<Utc>,
    /// The furthest step reached: `skipped`, `listening`, `offered`,
    /// `email_captured`, `email_confirmed`, `proposed`, `booked`; null when
    /// only the outcome is known (the call ran on another instance).
    pub stage: Option<String>,
    /// The call's last booking outcome, if any: `booked`, `moved`,
    /// `cancelled`, `failed`, `skipped`.
    pub outcome: Option<String>,
    /// The outcome's reason code (skipped, failed).
    pub reason: Option<String>,
    /// How the call ended: `hangup`, `socket_dropped`, `shutdown`.
    pub ending: Option<String>,
    /// Why it stopped where it did, in a sentence.
    pub why: String,
}

/// `GET /v1/campaigns/{id}/diagnostics`
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/diagnostics",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "The checklist, evaluated now; `ok` is false when a check failed", body = Diagnostics),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody),
        (status = 403, description = "The admin API is off", body = super::openapi::ErrorBody),
        (status = 404, description = "No such campaign", body = super::openapi::ErrorBody),
        (status = 503, description = "The store cannot be read", body = super::openapi::ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn diagnostics(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Diagnostics>, ApiError> {
    admin_only(&state, &headers)?;
    let store = &state.deps.store;
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(campaign = %id, error = %e, "diagnostics could not read {what}");
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the campaign cannot be read just now; try again",
        )
    };
    let campaign = match store.campaign(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "unknown_campaign",
                format!("no campaign {id:?}"),
            ))
        }
        Err(e) => return Err(unavailable("the campaign", &e)),
    };
    let conn = store
        .connection(&campaign.owner)
        .await
        .map_err(|e| unavailable("the owner's connection", &e))?;
    let mut checks = vec![booking_enabled(&campaign)];
    checks.extend(connection_checks(&state, &campaign, conn.as_ref()));
    let reachable = match conn.as_ref().filter(|c| c.status.is_active()) {
        Some(conn) => {
            let provider = state.deps.calendars.for_user(&campaign.owner, conn);
            let (check, ok) = provider_reachable(&campaign, conn, provider.as_ref()).await;
            checks.push(check);
            ok.then_some((provider, conn))
        }
        None => {
            checks.push(Check::new(
                "provider_reachable",
                false,
                "not checked: there is no active connection",
            ));
            None
        }
    };
    checks.push(free_slots(&state, &campaign, reachable).await);
    checks.push(recent_calls(&state, &campaign).await);
    let ok = checks.iter().all(|c| c.ok);
    let verdict = verdict(&checks);
    Ok(Json(Diagnostics {
        campaign: campaign.id,
        name: campaign.name,
        owner: campaign.owner,
        ok,
        verdict,
        checks,
    }))
}

fn verdict(checks: &[Check]) -> String {
    match checks.iter().find(|c| !c.ok) {
        None => {
            "booking can be offered: it is on, the calendar is connected and answers, and there are free slots".into()
        }
        Some(c) if c.check == "recent_calls" => format!(
            "the campaign and its calendar are ready, but recent calls did not get as far as booking: {}",
            c.detail
        ),
        Some(c) => format!("booking will not be offered: {}", c.detail),
    }
}

fn booking_enabled(c: &Campaign) -> Check {
    match &c.booking {
        None => Check::new(
            "booking_enabled",
            false,
            format!(
                "the campaign has no booking settings; set them with PUT /v1/campaigns/{}/booking",
                c.id
            ),
        ),
        Some(b) if !b.enabled => Check::new(
            "booking_enabled",
            false,
            format!(
                "booking is turned off for the campaign; turn it on with PUT /v1/campaigns/{}/booking (\"enabled\": true)",
                c.id
            ),
        ),
        Some(_) => Check::new("booking_enabled", true, "booking is on"),
    }
}

fn connect_links(owner: &str, providers: &[Provider]) -> Vec<ConnectLink> {
    providers
        .iter()
        .map(|p| ConnectLink {
            method: "POST".into(),
            path: format!("/v1/users/{owner}/connections/{}", p.as_str()),
        })
        .collect()
}

/// Whether the owner has a connection, and its status.
fn connection_checks(state: &AppState, c: &Campaign, conn: Option<&Connection>) -> Vec<Check> {
    let Some(conn) = conn else {
        let mut missing = Check::new(
            "calendar_connected",
            false,
            format!(
                "{} has no connected calendar; connect Google or Outlook (the request answers with the consent link to send the owner)",
                c.owner
            ),
        );
        missing.connect = Some(connect_links(
            &c.owner,
            &[Provider::Google, Provider::Microsoft],
        ));
        let status = Check::new(
            "connection_status",
            false,
            "not checked: there is no connection",
        );
        return vec![missing, status];
    };
    let provider = conn.provider.as_str();
    let mut connected = Check::new(
        "calendar_connected",
        true,
        format!("{} has {provider} connected", c.owner),
    );
    connected.provider = Some(provider.into());
    connected.calendar_id = Some(conn.calendar_id.clone());
    let reconnect = || Some(connect_links(&c.owner, &[conn.provider]));
    let mut status = match conn.status {
        ConnectionStatus::Active => {
            let mut s = Check::new("connection_status", true, "the connection is active");
            s.status = Some("active".into());
            s
        }
        ConnectionStatus::Expired { since } => {
            let mut s = Check::new(
                "connection_status",
                false,
                format!(
                    "the owner's {provider} connection has expired; the owner must connect again"
                ),
            );
            s.status = Some("expired".into());
            s.since = Some(since);
            s.connect = reconnect();
            s
        }
        ConnectionStatus::AdminApprovalNeeded { since } => {
            let mut s = Check::new(
                "connection_status",
                false,
                format!(
                    "the owner's organisation requires an administrator to approve callbook for {provider}; once one has, the owner connects again"
                ),
            );
            s.status = Some("admin_approval_needed".into());
            s.since = Some(since);
            s.connect = reconnect();
            if let (Provider::Microsoft, Some(tenant)) = (conn.provider, &conn.tenant) {
                let ms = state.deps.calendars.microsoft();
                s.admin_consent_url = crate::calendar::oauth::admin_consent_url(
                    &ms.authority,
                    tenant,
                    &ms.oauth.client_id,
                    &state.admin.redirect_uri(),
                );
            }
            s
        }
    };
    status.provider = Some(provider.into());
    vec![connected, status]
}

/// A provider fault as the checklist says it: a class and a sentence,
/// never the provider's own text (logged instead).
fn provider_trouble(e: &CalendarError) -> (&'static str, &'static str) {
    let class = crate::observe::metrics::calendar_fault(e);
    let sentence = match e {
        CalendarError::Expired => "the provider refused the grant: it has expired; the owner must connect again",
        CalendarError::ConsentRequired => "the provider says an administrator must approve callbook",
        CalendarError::RateLimited { .. } => "the provider is rate limiting callbook; try again in a few minutes",
        CalendarError::Transient(_) => "the provider did not answer properly (a timeout, a network error or a 5xx)",
        CalendarError::NotFound => "the chosen calendar was not found; choose another with PUT /v1/users/{user}/connections/{provider}/calendar",
        CalendarError::ScopeMissing(_) => "permissions are missing; the owner must connect again and leave every box ticked",
        CalendarError::Rejected(_) | CalendarError::Duplicate => "the provider refused the request",
    };
    (class, sentence)
}

async fn provider_reachable(
    c: &Campaign,
    conn: &Connection,
    provider: &dyn CalendarProvider,
) -> (Check, bool) {
    let name = conn.provider.as_str();
    let answered = tokio::time::timeout(PROVIDER_CHECK_TIMEOUT, provider.calendar_info()).await;
    let mut check = match answered {
        Ok(Ok(info)) => {
            let mut ok = Check::new(
                "provider_reachable",
                true,
                format!("{name} answered for calendar {}", conn.calendar_id),
            );
            ok.timezone = info.timezone.map(|z| z.name().to_string());
            if let Some(raw) = info.zone_unresolved {
                ok.detail = format!(
                    "{}; its time zone {raw:?} is not one callbook knows, so the campaign's zone is used",
                    ok.detail
                );
                ok.zone_unresolved = Some(raw);
            }
            ok
        }
        Ok(Err(e)) => {
            tracing::warn!(campaign = %c.id, owner = %c.owner, error = %e, "diagnostics: provider check failed");
            let (class, sentence) = provider_trouble(&e);
            let mut bad = Check::new("provider_reachable", false, sentence);
            bad.error = Some(class.into());
            bad
        }
        Err(_) => {
            let mut bad = Check::new(
                "provider_reachable",
                false,
                format!(
                    "{name} did not answer within {} s",
                    PROVIDER_CHECK_TIMEOUT.as_secs()
                ),
            );
            bad.error = Some("timeout".into());
            bad
        }
    };
    check.provider = Some(name.into());
    let ok = check.ok;
    (check, ok)
}

/// Free slots in the look-ahead under the campaign's rules, with the
/// provider's busy time and the ledger's claims, as a call would see them.
async fn free_slots(
    state: &AppState,
    c: &Campaign,
    reachable: Option<(std::sync::Arc<dyn CalendarProvider>, &Connection)>,
) -> Check {
    let Some(settings) = &c.booking else {
        return Check::new(
            "free_slots",
            false,
            "not checked: the campaign has no booking rules",
        );
    };
    let Some((provider, conn)) = reachable else {
        return Check::new(
            "free_slots",
            false,
            "not checked: the calendar could not be read",
        );
    };
    let rules = &settings.rules;
    let now = state.deps.clock.now();
    let days = i64::from(rules.look_ahead_days) + LOAD_MARGIN_DAYS;
    let window = Interval::new(now - Duration::days(1), now + Duration::days(days));
    let busy = match tokio::time::timeout(PROVIDER_CHECK_TIMEOUT, provider.free_busy(window)).await
    {
        Ok(Ok(busy)) => busy,
        Ok(Err(e)) => {
            tracing::warn!(campaign = %c.id, error = %e, "diagnostics: free/busy failed");
            let (class, sentence) = provider_trouble(&e);
            let mut bad = Check::new(
                "free_slots",
                false,
                format!("free/busy could not be read: {sentence}"),
            );
            bad.error = Some(class.into());
            return bad;
        }
        Err(_) => {
            let mut bad = Check::new("free_slots", false, "free/busy did not answer in time");
            bad.error = Some("timeout".into());
            return bad;
        }
    };
    // The same calendar key the calls claim under.
    let key = format!("{}:{}", c.owner, conn.calendar_id);
    let claims = match state.deps.ledger.claims(&key, window, now).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::warn!(campaign = %c.id, error = %e, "diagnostics: ledger unavailable");
            let mut bad = Check::new(
                "free_slots",
                false,
                "the ledger could not be read, so calls cannot claim slots either",
            );
            bad.error = Some("ledger_unavailable".into());
            return bad;
        }
    };
    let busy = busy
        .into_iter()
        .chain(claims.into_iter().map(|c| c.interval));
    let finder = SlotFinder::new(rules, busy.collect(), now);
    let count = finder.free().count();
    let tz = rules.timezone;
    let next: Vec<Slot> = finder
        .free()
        .take(3)
        .map(|s| Slot {
            start: s.start,
            end: s.end,
            local: s
                .start
                .with_timezone(&tz)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
        })
        .collect();
    let mut check = if count == 0 {
        Check::new(
            "free_slots",
            false,
            format!(
                "no free slot in the next {} days under the campaign's rules (window, notice, buffers) and the owner's busy time",
                rules.look_ahead_days
            ),
        )
    } else {
        Check::new(
            "free_slots",
            true,
            format!(
                "{count} free slots in the next {} days",
                rules.look_ahead_days
            ),
        )
    };
    check.count = Some(count);
    check.next = Some(next);
    check.timezone = Some(tz.name().to_string());
    check
}

/// The last calls: from the call trail (this instance's calls, with the
/// stage each stopped at) and the outcome store (every instance's
/// outcomes), newest first.
async fn recent_calls(state: &AppState, c: &Campaign) -> Check {
    let trail = state.deps.trail.recent(&c.id, RECENT_CALLS);
    let outcomes = match state
        .deps
        .outcomes
        .store()
        .by_campaign(&c.id, OUTCOMES_READ)
        .await
    {
        Ok(list) => Some(list),
        Err(e) => {
            tracing::warn!(campaign = %c.id, error = %e, "diagnostics: outcomes unavailable");
            None
        }
    };
    let mut calls: Vec<RecentCall> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for end in &trail {
        if !seen.insert(end.call_sid.clone()) {
            continue; // an earlier socket of a resumed call
        }
        let last = outcomes
            .iter()
            .flatten()
            .find(|r| r.call_sid == end.call_sid);
        calls.push(from_trail(end, last));
    }
    for r in outcomes.iter().flatten() {
        if seen.insert(r.call_sid.clone()) {
            calls.push(from_outcome(r));
        }
    }
    calls.sort_by_key(|c| std::cmp::Reverse(c.at));
    calls.truncate(RECENT_CALLS);
    let mut check = summarise(&calls);
    if outcomes.is_none() {
        check.detail = format!(
            "{} (booking outcomes could not be read just now)",
            check.detail
        );
    }
    check.calls = Some(calls);
    check
}

fn from_trail(end: &CallEnd, last: Option<&BookingRecord>) -> RecentCall {
    RecentCall {
        call_sid: end.call_sid.clone(),
        at: end.ended_at,
        stage: Some(end.reached.as_str().into()),
        outcome: last.map(|r| r.status.as_str().into()),
        reason: last.and_then(|r| r.reason.clone()),
        ending: serde_json::to_value(end.ending)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        why: end.why(),
    }
}

fn from_outcome(r: &BookingRecord) -> RecentCall {
    let reason = r.reason.as_deref().unwrap_or_default();
    let why = match r.status {
        OutcomeStatus::Booked => "a meeting was booked".to_string(),
        OutcomeStatus::Moved => "the meeting booked on the call was moved".into(),
        OutcomeStatus::Cancelled => "the meeting booked on the call was cancelled".into(),
        OutcomeStatus::Skipped => match SKIPS.into_iter().find(|r| skip_name(*r) == reason) {
            Some(s) => format!("booking could not run: {}", skip_sentence(s)),
            None => "booking could not run".into(),
        },
        OutcomeStatus::Failed => match FAILS.into_iter().find(|r| fail_name(*r) == reason) {
            Some(f) => format!("the booking failed: {}", fail_sentence(f)),
            None => "the booking failed".into(),
        },
    };
    let stage = match r.status {
        OutcomeStatus::Booked | OutcomeStatus::Moved | OutcomeStatus::Cancelled => {
            Some(Reached::Booked.as_str().into())
        }
        OutcomeStatus::Skipped => Some(Reached::Skipped.as_str().into()),
        OutcomeStatus::Failed => None,
    };
    RecentCall {
        call_sid: r.call_sid.clone(),
        at: r.at,
        stage,
        outcome: Some(r.status.as_str().into()),
        reason: r.reason.clone(),
        ending: None,
        why,
    }
}

/// Every skip reason, to read a code back.
const SKIPS: [SkipReason; 6] = [
    SkipReason::CampaignUnknown,
    SkipReason::BookingDisabled,
    SkipReason::CalendarMissing,
    SkipReason::OwnerNotConnected,
    SkipReason::CalendarExpired,
    SkipReason::AdminApprovalNeeded,
];

/// Every fail reason, to read a code back.
const FAILS: [FailReason; 6] = [
    FailReason::EmailUnconfirmed,
    FailReason::NoAvailability,
    FailReason::CalendarExpired,
    FailReason::AdminApprovalNeeded,
    FailReason::CalendarUnavailable,
    FailReason::OutcomeUnknown,
];

/// Whether the last calls got anywhere, and how they stopped. The check
/// fails when there were calls and none of them reached the offer.
fn summarise(calls: &[RecentCall]) -> Check {
    if calls.is_empty() {
        return Check::new(
            "recent_calls",
            true,
            "no calls recorded for this campaign yet",
        );
    }
    let reached_offer = |c: &RecentCall| {
        matches!(
            c.stage.as_deref(),
            Some("offered" | "email_captured" | "email_confirmed" | "proposed" | "booked")
        ) || c.outcome.as_deref() == Some("failed")
    };
    let ok = calls.iter().any(reached_offer);
    // The reasons, most common first.
    let mut why: Vec<(String, usize)> = Vec::new();
    for c in calls {
        match why.iter_mut().find(|(w, _)| *w == c.why) {
            Some((_, n)) => *n += 1,
            None => why.push((c.why.clone(), 1)),
        }
    }
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    let parts: Vec<String> = why.iter().map(|(w, n)| format!("{w} ({n})")).collect();
    let detail = format!("the last {} calls: {}", calls.len(), parts.join("; "));
    Check::new("recent_calls", ok, detail)
}
