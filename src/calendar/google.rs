//! Google Calendar v3 over reqwest: calendarList, freeBusy, events.insert,
//! events.get and events.patch, with Google's own paths and JSON.

use super::oauth::{AuthorizedClient, OAuthClient};
use super::retry::{retry, RetryPolicy};
use super::{
    event_id_for, CalendarError, CalendarInfo, CalendarProvider, CalendarSummary, CreatedEvent,
    NewEvent, TaggedEvent,
};
use crate::domain::{MeetingKind, Video};
use crate::schedule::{merge_busy, Interval};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Mutex;
use tokio::time::Instant;

/// Where Google lives: the real endpoints in production, the emulator in
/// tests.
#[derive(Clone)]
pub struct GoogleEndpoints {
    /// e.g. `https://www.googleapis.com/calendar/v3`
    pub api_base: String,
    pub oauth: OAuthClient,
    /// The consent screen.
    pub authorize_url: String,
    /// Where a grant is revoked on disconnect.
    pub revoke_url: String,
}

impl GoogleEndpoints {
    pub const API_BASE: &'static str = "https://www.googleapis.com/calendar/v3";
    pub const TOKEN_URL: &'static str = "https://oauth2.googleapis.com/token";
    pub const AUTHORIZE_URL: &'static str = "https://accounts.google.com/o/oauth2/v2/auth";
    pub const REVOKE_URL: &'static str = "https://oauth2.googleapis.com/revoke";
}

/// One connected Google calendar.
pub struct GoogleCalendar {
    client: AuthorizedClient,
    endpoints: GoogleEndpoints,
    calendar_id: String,
    /// The calendar's zone once known, for sending event times.
    zone: Mutex<Option<Tz>>,
    policy: RetryPolicy,
}

/// Google's freeBusy accepts at most this range per request.
const FREE_BUSY_MAX_RANGE: chrono::Duration = chrono::Duration::days(90);

/// How long to wait for a pending Meet link before reporting it pending.
const MEET_POLL_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Deserialize)]
struct GoogleErrorBody {
    error: GoogleError,
}

#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    errors: Vec<GoogleErrorItem>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct GoogleErrorItem {
    #[serde(default)]
    reason: String,
}

impl GoogleCalendar {
    /// Takes the stored refresh token before refreshing, and again when a
    /// refresh is refused (see [`AuthorizedClient::with_reload`]).
    pub fn with_reload(mut self, reload: super::oauth::ReloadToken) -> Self {
        self.client = self.client.with_reload(reload);
        self
    }

    /// `calendarList` entries the owner can write to.
    async fn writable_calendars(&self) -> Result<Vec<Value>, CalendarError> {
        let list = self
            .call(
                Method::GET,
                &["users", "me", "calendarList"],
                &[("minAccessRole", "writer")],
                None,
            )
            .await?;
        Ok(list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    pub fn new(
        http: reqwest::Client,
        endpoints: GoogleEndpoints,
        calendar_id: String,
        refresh_token: SecretString,
    ) -> Self {
        Self {
            client: AuthorizedClient::new(http, endpoints.oauth.clone(), refresh_token, None)
                .for_provider("google"),
            endpoints,
            calendar_id,
            zone: Mutex::new(None),
            policy: RetryPolicy::LIVE_CALL,
        }
    }

    /// The same client with another retry policy (tests use short ones).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// One request with the retry policy applied. Only for requests that
    /// are safe to repeat.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        retry(self.policy, |_| {
            self.call_once(method.clone(), path, query, body)
        })
        .await
    }

    /// Sends one API request; a 401 gets one token refresh and one retry.
    /// Timed and counted by endpoint and outcome.
    async fn call_once(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        let started = Instant::now();
        let endpoint = endpoint(&method, path);
        let answer = self.request(method, path, query, body).await;
        let outcome = crate::observe::metrics::calendar_outcome(&answer);
        crate::observe::metrics::provider_request("google", endpoint, outcome, started.elapsed());
        answer
    }

    async fn request(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        let mut url = reqwest::Url::parse(&self.endpoints.api_base)
            .map_err(|e| CalendarError::Rejected(format!("api base: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| CalendarError::Rejected("api base cannot take a path".into()))?
            .pop_if_empty()
            .extend(path);
        let answer = self
            .client
            .send(|http| {
                let req = http.request(method.clone(), url.clone()).query(query);
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await?;
        if answer.status.is_success() {
            return answer.json("Google");
        }
        Err(classify(answer.status, &answer.text, answer.retry_after))
    }

    fn zone_or(&self, fallback: Tz) -> Tz {
        self.zone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(fallback)
    }

    /// Whether the event exists and is cancelled (Google keeps deleted
    /// events as `cancelled` and answers 410 to a second delete).
    async fn is_gone(&self, event_id: &str) -> bool {
        matches!(self.get_event(event_id).await, Ok(e) if e.get("status").and_then(Value::as_str) == Some("cancelled"))
    }

    async fn free_busy_chunk(&self, window: Interval) -> Result<Vec<Interval>, CalendarError> {
        let body = json!({
            "timeMin": rfc3339(window.start),
            "timeMax": rfc3339(window.end),
            "timeZone": "UTC",
            "items": [{"id": self.calendar_id}],
        });
        let resp = self
            .call(Method::POST, &["freeBusy"], &[], Some(&body))
            .await?;
        let entry = resp
            .get("calendars")
            .and_then(|c| c.get(&self.calendar_id))
            .ok_or_else(|| {
                CalendarError::Transient("freeBusy answered without our calendar".into())
            })?;
        // An error inside a 200 means Google could not read the calendar:
        // fail closed, never report it as free.
        if let Some(errors) = entry.get("errors").and_then(Value::as_array) {
            if let Some(first) = errors.first() {
                let reason = first
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                return Err(CalendarError::Transient(format!(
                    "freeBusy error for calendar: {reason}"
                )));
            }
        }
        let mut busy = Vec::new();
        for b in entry
            .get("busy")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let parse = |k: &str| {
                b.get(k)
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            match (parse("start"), parse("end")) {
                (Some(s), Some(e)) if s < e => busy.push(Interval::new(s, e)),
                _ => {
                    return Err(CalendarError::Transient(
                        "freeBusy returned an unreadable period".into(),
                    ))
                }
            }
        }
        Ok(busy)
    }

    fn insert_body(&self, ev: &NewEvent, id: &str) -> Value {
        let tz = self.zone_or(ev.timezone);
        let mut body = json!({
            "id": id,
            "summary": ev.title,
            "description": ev.description,
            "start": event_time(ev.slot.start, tz),
            "end": event_time(ev.slot.end, tz),
            "attendees": [{"email": ev.attendee_email, "displayName": ev.attendee_name}],
            "extendedProperties": {"private": {"bookingId": ev.booking_id}},
        });
        match &ev.meeting {
            MeetingKind::Video => {
                body["conferenceData"] = json!({"createRequest": {
                    "requestId": ev.booking_id,
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }});
            }
            MeetingKind::Phone { number } => {
                body["location"] = json!(number);
                body["description"] = json!(format!("{}\n\nPhone: {number}", ev.description));
            }
            MeetingKind::InPerson { address } => body["location"] = json!(address),
        }
        body
    }

    /// A Meet link may be created asynchronously (`pending`): poll the event
    /// until it reads `success`, within a short budget. Past it the event is
    /// returned as is and reports no link yet.
    async fn await_meet(&self, mut event: Value, id: &str) -> Value {
        let pending = |e: &Value| {
            e.pointer("/conferenceData/createRequest/status/statusCode")
                .and_then(Value::as_str)
                == Some("pending")
        };
        let started = Instant::now();
        let mut n = 0;
        while pending(&event) && started.elapsed() < MEET_POLL_BUDGET {
            tokio::time::sleep(
                self.policy
                    .backoff(n)
                    .max(std::time::Duration::from_millis(50)),
            )
            .await;
            n += 1;
            if let Ok(fresh) = self.get_event(id).await {
                event = fresh;
            }
        }
        event
    }

    async fn get_event(&self, event_id: &str) -> Result<Value, CalendarError> {
        let path = ["calendars", self.calendar_id.as_str(), "events", event_id];
        self.call(Method::GET, &path, &[], None).await
    }
}

/// The API a request calls, as the metrics name it (never an id).
fn endpoint(method: &Method, path: &[&str]) -> &'static str {
    match path {
        ["users", "me", "calendarList"] => "calendar_list",
        ["freeBusy"] => "free_busy",
        ["calendars", _, "events"] => match *method {
            Method::GET => "events_list",
            _ => "events_insert",
        },
        ["calendars", _, "events", _] => match *method {
            Method::GET => "events_get",
            Method::PATCH => "events_patch",
            Method::DELETE => "events_delete",
            _ => "events_other",
        },
        _ => "other",
    }
}

/// Maps an error response to what callers react to.
/// How long Calendar's usage limits last at the least ("minutes, not
/// seconds"): longer than any caller turn, so such a fault is final.
const QUOTA_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

fn classify(
    status: StatusCode,
    body: &str,
    retry_after: Option<std::time::Duration>,
) -> CalendarError {
    let parsed: Option<GoogleErrorBody> = serde_json::from_str(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|b| b.error.errors.first().map(|e| e.reason.clone()))
        .unwrap_or_default();
    let message = parsed.map(|b| b.error.message).unwrap_or_default();
    match (status.as_u16(), reason.as_str()) {
        (401, _) => CalendarError::Expired,
        (409, _) => CalendarError::Duplicate,
        (404, _) | (410, _) => CalendarError::NotFound,
        // Calendar's own usage limits and the daily quota lift after
        // minutes or hours: no use retrying while a caller waits.
        (403, "quotaExceeded" | "dailyLimitExceeded") => CalendarError::RateLimited {
            retry_after: retry_after.or(Some(QUOTA_BACKOFF)),
        },
        (429, _) | (403, "rateLimitExceeded" | "userRateLimitExceeded") => {
            CalendarError::RateLimited { retry_after }
        }
        (500..=599, _) if retry_after.is_some() => CalendarError::RateLimited { retry_after },
        (500..=599, _) => CalendarError::Transient(format!("Google {status}: {reason}")),
        _ => CalendarError::Rejected(format!("Google {status} {reason}: {message}")),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Google event time: the instant with the zone's offset, plus the zone name.
fn event_time(t: DateTime<Utc>, tz: Tz) -> Value {
    json!({
        "dateTime": t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false),
        "timeZone": tz.name(),
    })
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.get("dateTime")?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The Meet link, once conference creation has succeeded.
fn join_link(event: &Value) -> Option<String> {
    let conf = event.get("conferenceData");
    let status = conf
        .and_then(|c| c.pointer("/createRequest/status/statusCode"))
        .and_then(Value::as_str);
    if status.is_some_and(|s| s != "success") {
        return None;
    }
    if let Some(link) = event.get("hangoutLink").and_then(Value::as_str) {
        return Some(link.to_string());
    }
    conf.and_then(|c| c.get("entryPoints"))
        .and_then(Value::as_array)?
        .iter()
        .find(|e| e.get("entryPointType").and_then(Value::as_str) == Some("video"))
        .and_then(|e| e.get("uri").and_then(Value::as_str))
        .map(str::to_string)
}

fn created(event: &Value) -> Result<CreatedEvent, CalendarError> {
    let bad = || CalendarError::Transient("event without id or times".into());
    let event_id = event
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    let start = event.get("start").and_then(parse_time).ok_or_else(bad)?;
    let end = event.get("end").and_then(parse_time).ok_or_else(bad)?;
    Ok(CreatedEvent {
        event_id,
        slot: Interval::new(start, end),
        join_link: join_link(event),
    })
}

#[async_trait]
impl CalendarProvider for GoogleCalendar {
    async fn list_calendars(&self) -> Result<Vec<CalendarSummary>, CalendarError> {
        let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(self
            .writable_calendars()
            .await?
            .iter()
            .map(|c| CalendarSummary {
                id: s(c, "id").unwrap_or_default(),
                name: s(c, "summaryOverride")
                    .or_else(|| s(c, "summary"))
                    .unwrap_or_default(),
                primary: c.get("primary").and_then(Value::as_bool).unwrap_or(false),
                timezone: s(c, "timeZone"),
            })
            .collect())
    }

    async fn calendar_info(&self) -> Result<CalendarInfo, CalendarError> {
        let items = self.writable_calendars().await?;
        let wanted = |c: &&Value| {
            let id = c.get("id").and_then(Value::as_str);
            let primary = c.get("primary").and_then(Value::as_bool).unwrap_or(false);
            id == Some(self.calendar_id.as_str()) || (self.calendar_id == "primary" && primary)
        };
        let cal = items.iter().find(wanted).ok_or(CalendarError::NotFound)?;
        let timezone: Option<Tz> = cal
            .get("timeZone")
            .and_then(Value::as_str)
            .and_then(|z| z.parse().ok());
        *self.zone.lock().unwrap_or_else(|p| p.into_inner()) = timezone;
        let meet = cal
            .pointer("/conferenceProperties/allowedConferenceSolutionTypes")
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("hangoutsMeet")));
        Ok(CalendarInfo {
            calendar_id: cal
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(&self.calendar_id)
                .to_string(),
            timezone,
            video: if meet {
                Video::Available("Google Meet".into())
            } else {
                Video::Unavailable
            },
            zone_unresolved: None,
        })
    }

    async fn free_busy(&self, window: Interval) -> Result<Vec<Interval>, CalendarError> {
        // Google answers at most 90 days per request.
        let mut busy = Vec::new();
        let mut from = window.start;
        while from < window.end {
            let to = (from + FREE_BUSY_MAX_RANGE).min(window.end);
            busy.extend(self.free_busy_chunk(Interval::new(from, to)).await?);
            from = to;
        }
        Ok(merge_busy(busy))
    }

    async fn create_event(&self, ev: &NewEvent) -> Result<CreatedEvent, CalendarError> {
        let id = event_id_for(&ev.booking_id);
        let body = self.insert_body(ev, &id);
        let path = ["calendars", self.calendar_id.as_str(), "events"];
        let query = [("conferenceDataVersion", "1"), ("sendUpdates", "all")];
        let ours = |e: &Value| {
            e.pointer("/extendedProperties/private/bookingId")
                .and_then(Value::as_str)
                == Some(ev.booking_id.as_str())
                && e.get("status").and_then(Value::as_str) != Some("cancelled")
        };
        let inserted = retry(self.policy, |attempt| {
            let (body, path, query, id) = (&body, &path, &query, &id);
            async move {
                // An attempt that timed out may have been stored: look before
                // sending again.
                if attempt > 0 {
                    if let Ok(existing) = self.get_event(id).await {
                        if ours(&existing) {
                            return Ok(existing);
                        }
                    }
                }
                self.call_once(Method::POST, path, query, Some(body)).await
            }
        })
        .await;
        let event = match inserted {
            Ok(event) => event,
            // Our id exists already: a retry of this very booking landed, or
            // the id belongs to something else.
            Err(CalendarError::Duplicate) => {
                let existing = self.get_event(&id).await?;
                if !ours(&existing) {
                    return Err(CalendarError::Duplicate);
                }
                existing
            }
            Err(e) => return Err(e),
        };
        let event = self.await_meet(event, &id).await;
        created(&event)
    }

    async fn find_booking(&self, booking_id: &str) -> Result<Option<CreatedEvent>, CalendarError> {
        let id = event_id_for(booking_id);
        match self.get_event(&id).await {
            Ok(e) => {
                let ours = e
                    .pointer("/extendedProperties/private/bookingId")
                    .and_then(Value::as_str)
                    == Some(booking_id)
                    && e.get("status").and_then(Value::as_str) != Some("cancelled");
                if ours {
                    Ok(Some(created(&e)?))
                } else {
                    Ok(None)
                }
            }
            Err(CalendarError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tagged_events(&self, window: Interval) -> Result<Vec<TaggedEvent>, CalendarError> {
        let path = ["calendars", self.calendar_id.as_str(), "events"];
        let (from, to) = (rfc3339(window.start), rfc3339(window.end));
        let mut found = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![
                ("timeMin", from.as_str()),
                ("timeMax", to.as_str()),
                ("singleEvents", "true"),
                ("maxResults", "2500"),
            ];
            if let Some(token) = &page {
                query.push(("pageToken", token.as_str()));
            }
            let listed = self.call(Method::GET, &path, &query, None).await?;
            for e in listed
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let tag = e
                    .pointer("/extendedProperties/private/bookingId")
                    .and_then(Value::as_str);
                let live = e.get("status").and_then(Value::as_str) != Some("cancelled");
                if let (Some(tag), true) = (tag, live) {
                    found.push(TaggedEvent {
                        booking_id: tag.to_string(),
                        event: created(e)?,
                    });
                }
            }
            page = listed
                .get("nextPageToken")
                .and_then(Value::as_str)
                .map(str::to_string);
            if page.is_none() {
                return Ok(found);
            }
        }
    }

    async fn event(&self, event_id: &str) -> Result<Option<CreatedEvent>, CalendarError> {
        match self.get_event(event_id).await {
            Ok(e) if e.get("status").and_then(Value::as_str) == Some("cancelled") => Ok(None),
            Ok(e) => Ok(Some(created(&e)?)),
            Err(CalendarError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn cancel_event(&self, event_id: &str) -> Result<(), CalendarError> {
        let path = ["calendars", self.calendar_id.as_str(), "events", event_id];
        match self
            .call(Method::DELETE, &path, &[("sendUpdates", "all")], None)
            .await
        {
            Ok(_) => Ok(()),
            // A 410 means already deleted, which is what was asked.
            Err(CalendarError::NotFound) if self.is_gone(event_id).await => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn move_event(
        &self,
        event_id: &str,
        to: Interval,
        timezone: Tz,
    ) -> Result<CreatedEvent, CalendarError> {
        let tz = self.zone_or(timezone);
        let body = json!({"start": event_time(to.start, tz), "end": event_time(to.end, tz)});
        let path = ["calendars", self.calendar_id.as_str(), "events", event_id];
        let event = self
            .call(Method::PATCH, &path, &[("sendUpdates", "all")], Some(&body))
            .await?;
        created(&event)
    }
}
