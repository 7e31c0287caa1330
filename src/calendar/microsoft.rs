//! Microsoft Graph over reqwest: the default calendar, the mailbox's zone,
//! busy time from `calendarView` (which works for personal accounts, unlike
//! `getSchedule`), and events created with `transactionId`. Every time is
//! sent and read as UTC.

pub use super::oauth::OnRotate;
use super::oauth::{AuthorizedClient, OAuthClient};
use super::retry::{retry, RetryPolicy};
use super::{
    windows_zones, CalendarError, CalendarInfo, CalendarProvider, CalendarSummary, CreatedEvent,
    NewEvent, TaggedEvent,
};
use crate::domain::{MeetingKind, Video};
use crate::schedule::{merge_busy, Interval};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::{Method, StatusCode, Url};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Mutex;
use tokio::time::Instant;

/// How long after a create answered without its Teams link the event is
/// read again for it: a few short waits, a caller is on the line.
const LATE_LINK_WAITS_MS: [u64; 3] = [250, 500, 750];

/// All the reading back may take, however slowly Graph answers.
const LATE_LINK_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);

/// Where the booking id is kept on the event, so it can be found again.
const BOOKING_PROPERTY: &str =
    "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name callbookBookingId";

/// Where Microsoft lives: the real endpoints in production, the emulator in
/// tests.
#[derive(Clone)]
pub struct MicrosoftEndpoints {
    /// e.g. `https://graph.microsoft.com/v1.0`
    pub graph_base: String,
    pub oauth: OAuthClient,
    /// The identity platform, e.g. `https://login.microsoftonline.com`:
    /// the consent screen is `{authority}/common/oauth2/v2.0/authorize`,
    /// a tenant's admin consent `{authority}/{tenant}/v2.0/adminconsent`.
    pub authority: String,
}

impl MicrosoftEndpoints {
    pub const GRAPH_BASE: &'static str = "https://graph.microsoft.com/v1.0";
    pub const AUTHORITY: &'static str = "https://login.microsoftonline.com";
    pub const TOKEN_URL: &'static str =
        "https://login.microsoftonline.com/common/oauth2/v2.0/token";

    pub fn authorize_url(&self) -> String {
        format!(
            "{}/common/oauth2/v2.0/authorize",
            self.authority.trim_end_matches('/')
        )
    }
}

/// What `/me/calendars` and the mailbox settings said.
#[derive(Clone)]
struct Resolved {
    calendar_id: String,
    /// `None` when the mailbox names a zone callbook cannot resolve.
    zone: Option<Tz>,
    /// The mailbox's zone as sent, when it did not resolve.
    zone_unresolved: Option<String>,
    teams: bool,
}

/// The zone a mailbox setting names: Graph returns a Windows name or, for
/// mailboxes set up that way, an IANA name.
pub fn mailbox_zone(name: &str) -> Option<Tz> {
    windows_zones::to_iana(name).or_else(|| name.trim().parse::<Tz>().ok())
}

/// One connected Outlook calendar.
pub struct MicrosoftCalendar {
    client: AuthorizedClient,
    endpoints: MicrosoftEndpoints,
    /// "primary" for the default calendar, or a Graph calendar id.
    calendar_id: String,
    /// What the calendar is, as last asked, and when.
    resolved: Mutex<Option<(Resolved, Instant)>>,
    /// How long that answer is used before it is asked again.
    resolved_for: std::time::Duration,
    /// Held while the calendar is asked, so requests at once ask once;
    /// with the fault that ended the last try, and when, for the requests
    /// that waited on it.
    asking: tokio::sync::Mutex<Option<(CalendarError, Instant)>>,
    policy: RetryPolicy,
    /// Known personal (from the token's tenant): never ask for Teams,
    /// whatever the calendar lists.
    personal: bool,
}

fn utc_time(t: DateTime<Utc>) -> Value {
    json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"})
}

/// Graph returns UTC times without a `Z` (with `Prefer: outlook.timezone`).
/// A time labelled with another zone is not read as UTC.
fn read_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let v = v?;
    if v.get("timeZone")
        .and_then(Value::as_str)
        .is_some_and(|z| z != "UTC")
    {
        return None;
    }
    read_naive(Some(v)).map(|n| n.and_utc())
}

/// The wall time of a `dateTimeTimeZone`, whatever its label.
fn read_naive(v: Option<&Value>) -> Option<NaiveDateTime> {
    let text = v?.get("dateTime")?.as_str()?;
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// Midnight starting `day` in `tz` (the first existing hour where a zone
/// skips midnight).
pub(crate) fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    (0..24)
        .find_map(|h| {
            tz.from_local_datetime(&day.and_hms_opt(h, 0, 0)?)
                .earliest()
        })
        .map_or_else(
            || day.and_time(NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// An all-day event's busy time. Graph returns one as midnight to midnight
/// of its dates, not shifted into the owner's zone (by design): those
/// dates are the owner's local days. In the mailbox's zone; else the zone
/// the event was made in; else (neither known) every instant any zone
/// counts as those dates, so a day off is never offered.
fn all_day_span(ev: &Value, mailbox: Option<Tz>) -> Option<Interval> {
    let first = read_naive(ev.get("start"))?.date();
    let last = read_naive(ev.get("end"))?.date();
    let zone = mailbox.or_else(|| {
        ev.get("originalStartTimeZone")
            .and_then(Value::as_str)
            .and_then(mailbox_zone)
    });
    let (start, end) = match zone {
        Some(tz) => (local_midnight(tz, first), local_midnight(tz, last)),
        None => (
            first.and_time(NaiveTime::MIN).and_utc() - chrono::Duration::hours(14),
            last.and_time(NaiveTime::MIN).and_utc() + chrono::Duration::hours(12),
        ),
    };
    (start < end).then(|| Interval::new(start, end))
}

/// The Graph API a request calls, as the metrics name it (never an id).
fn endpoint(method: &Method, url: &Url) -> &'static str {
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    match segments.as_slice() {
        [.., "me", "calendars"] => "calendars",
        [.., "mailboxSettings", "timeZone"] => "mailbox_settings",
        [.., "calendarView"] => "calendar_view",
        [.., "calendars", _, "events"] if *method == Method::POST => "events_create",
        [.., "calendars", _, "events"] => "events_find",
        [.., "me", "events", _] => match *method {
            Method::GET => "events_get",
            Method::PATCH => "events_update",
            Method::DELETE => "events_delete",
            _ => "events_other",
        },
        _ => "other",
    }
}

fn classify(
    status: StatusCode,
    body: &str,
    retry_after: Option<std::time::Duration>,
) -> CalendarError {
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/code")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    match status.as_u16() {
        401 => CalendarError::Expired,
        404 | 410 => CalendarError::NotFound,
        // Graph's answer to a repeated transactionId is undocumented: any
        // conflict is looked up by the booking id before anything else.
        409 => CalendarError::Duplicate,
        429 | 503 | 504 if retry_after.is_some() => CalendarError::RateLimited { retry_after },
        429 => CalendarError::RateLimited { retry_after: None },
        500..=599 => CalendarError::Transient(format!("Graph {status}: {code}")),
        _ => CalendarError::Rejected(format!("Graph {status}: {code}")),
    }
}

fn created(event: &Value) -> Result<CreatedEvent, CalendarError> {
    let bad = || CalendarError::Transient("event without id or times".into());
    Ok(CreatedEvent {
        event_id: event
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_string(),
        slot: Interval::new(
            read_time(event.get("start")).ok_or_else(bad)?,
            read_time(event.get("end")).ok_or_else(bad)?,
        ),
        join_link: event
            .pointer("/onlineMeeting/joinUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

impl MicrosoftCalendar {
    /// Takes the stored refresh token before refreshing, and again when a
    /// refresh is refused (see [`AuthorizedClient::with_reload`]).
    pub fn with_reload(mut self, reload: super::oauth::ReloadToken) -> Self {
        self.client = self.client.with_reload(reload);
        self
    }

    pub fn new(
        http: reqwest::Client,
        endpoints: MicrosoftEndpoints,
        calendar_id: String,
        refresh_token: SecretString,
        on_rotate: Option<OnRotate>,
    ) -> Self {
        Self {
            client: AuthorizedClient::new(http, endpoints.oauth.clone(), refresh_token, on_rotate)
                .for_provider("microsoft"),
            endpoints,
            calendar_id,
            resolved: Mutex::new(None),
            resolved_for: super::CALENDAR_INFO_FOR,
            asking: tokio::sync::Mutex::new(None),
            policy: RetryPolicy::LIVE_CALL,
            personal: false,
        }
    }

    /// The same client with another retry policy (tests use short ones).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same client, asking what the calendar is again once `after`
    /// has passed ([`CALENDAR_INFO_FOR`](super::CALENDAR_INFO_FOR) unless
    /// set; tests use zero).
    pub fn with_resolved_for(mut self, after: std::time::Duration) -> Self {
        self.resolved_for = after;
        self
    }

    /// Marks the account personal when its tenant says so (the consumer
    /// tenant): no Teams link is ever requested. The calendar's allowed
    /// providers are the other signal; either one suffices.
    pub fn with_tenant(mut self, tenant: Option<&str>) -> Self {
        self.personal = tenant == Some(super::oauth::MICROSOFT_PERSONAL_TENANT);
        self
    }

    fn url(&self, path: &[&str]) -> Result<Url, CalendarError> {
        let mut url = Url::parse(&self.endpoints.graph_base)
            .map_err(|e| CalendarError::Rejected(format!("graph base: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| CalendarError::Rejected("graph base cannot take a path".into()))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    /// One request; a 401 gets one token refresh and one retry. Timed and
    /// counted by endpoint and outcome.
    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        let started = tokio::time::Instant::now();
        let endpoint = endpoint(&method, &url);
        let answer = self.request(method, url, body).await;
        let outcome = crate::observe::metrics::calendar_outcome(&answer);
        crate::observe::metrics::provider_request(
            "microsoft",
            endpoint,
            outcome,
            started.elapsed(),
        );
        answer
    }

    async fn request(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        let answer = self
            .client
            .send(|http| {
                let req = http.request(method.clone(), url.clone()).header(
                    "Prefer",
                    "outlook.timezone=\"UTC\", outlook.body-content-type=\"text\"",
                );
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await?;
        if answer.status.is_success() {
            return answer.json("Graph");
        }
        Err(classify(answer.status, &answer.text, answer.retry_after))
    }

    /// A request with the retry policy (creates have their own loop, which
    /// looks for the event before sending again).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, CalendarError> {
        retry(self.policy, |_| {
            self.send_once(method.clone(), url.clone(), body)
        })
        .await
    }

    /// Every event of `calendar` overlapping `window` (`calendarView`,
    /// occurrences of series expanded), with the query options given,
    /// following `@odata.nextLink` across pages.
    async fn calendar_view(
        &self,
        calendar: &str,
        window: Interval,
        options: &[(&str, &str)],
    ) -> Result<Vec<Value>, CalendarError> {
        let mut url = self.url(&["me", "calendars", calendar, "calendarView"])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "startDateTime",
                &window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            )
            .append_pair(
                "endDateTime",
                &window.end.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
            for (k, v) in options {
                q.append_pair(k, v);
            }
            q.append_pair("$top", "1000");
        }
        let mut events = Vec::new();
        let mut next = Some(url);
        while let Some(page_url) = next.take() {
            let mut page = self.send(Method::GET, page_url, None).await?;
            if let Some(Value::Array(items)) = page.get_mut("value").map(Value::take) {
                events.extend(items);
            }
            next = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(|l| {
                    Url::parse(l)
                        .map_err(|e| CalendarError::Transient(format!("bad nextLink: {e}")))
                })
                .transpose()?;
        }
        Ok(events)
    }

    /// The live event carrying this booking id, if any: one request, no
    /// retries (it runs inside the create's own retry loop).
    async fn find_booking_in(
        &self,
        calendar_id: &str,
        booking_id: &str,
    ) -> Result<Option<Value>, CalendarError> {
        let mut url = self.url(&["me", "calendars", calendar_id, "events"])?;
        // Booking ids are callbook's own (hex and dashes); no quoting needed.
        let filter = format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq '{BOOKING_PROPERTY}' and ep/value eq '{}')",
            booking_id.replace('\'', "''")
        );
        url.query_pairs_mut().append_pair("$filter", &filter);
        let found = self.send_once(Method::GET, url, None).await?;
        Ok(found
            .get("value")
            .and_then(Value::as_array)
            .and_then(|v| {
                v.iter().find(|e| {
                    !e.get("isCancelled")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
            })
            .cloned())
    }

    /// A Teams link Graph did not have ready when the event was created
    /// (`isOnlineMeeting: false` or a null `joinUrl`): the event read back
    /// a few times over about a second and a half, then given up on (the
    /// booking stands, reported without a link).
    async fn late_join_link(&self, event_id: &str) -> Option<String> {
        let mut url = self.url(&["me", "events", event_id]).ok()?;
        url.query_pairs_mut()
            .append_pair("$select", "isOnlineMeeting,onlineMeeting");
        for wait in LATE_LINK_WAITS_MS {
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            match self.send_once(Method::GET, url.clone(), None).await {
                Ok(ev) => {
                    if let Some(link) = ev.pointer("/onlineMeeting/joinUrl").and_then(Value::as_str)
                    {
                        return Some(link.to_string());
                    }
                }
                Err(e) => tracing::debug!(error = %e, "reading the event back for its Teams link"),
            }
        }
        tracing::warn!("Graph created the Teams meeting without a join link; booked without one");
        None
    }

    /// The calendar to use, its owner's zone and whether Teams is allowed:
    /// asked once per [`CALENDAR_INFO_FOR`](super::CALENDAR_INFO_FOR) (by default). Requests that come while it is
    /// first asked wait for that answer, a fault included. Once known, one
    /// request asks again when it is due; the others meanwhile, and that
    /// one if the provider fails it, use what was kept.
    async fn resolve(&self) -> Result<Resolved, CalendarError> {
        let came = Instant::now();
        if let Some((kept, at)) = self.kept() {
            if at.elapsed() < self.resolved_for {
                return Ok(kept);
            }
            let Ok(_asking) = self.asking.try_lock() else {
                return Ok(kept);
            };
            return Ok(self.ask_and_keep().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "asking what the calendar is again; using what was kept");
                kept
            }));
        }
        let mut asking = self.asking.lock().await;
        if let Some((kept, _)) = self.kept() {
            return Ok(kept);
        }
        if let Some((e, at)) = asking.as_ref() {
            if *at >= came {
                return Err(e.clone());
            }
        }
        let answer = self.ask_and_keep().await;
        *asking = answer.as_ref().err().map(|e| (e.clone(), Instant::now()));
        answer
    }

    fn kept(&self) -> Option<(Resolved, Instant)> {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks what the calendar is, and keeps the answer.
    async fn ask_and_keep(&self) -> Result<Resolved, CalendarError> {
        let r = self.ask_calendar().await?;
        *self.resolved.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((r.clone(), Instant::now()));
        Ok(r)
    }

    /// What `/me/calendars` and the mailbox settings say now.
    async fn ask_calendar(&self) -> Result<Resolved, CalendarError> {
        let list = self
            .send(Method::GET, self.url(&["me", "calendars"])?, None)
            .await?;
        let items = list
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cal = items
            .iter()
            .find(|c| {
                let id = c.get("id").and_then(Value::as_str);
                let default = c
                    .get("isDefaultCalendar")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                id == Some(self.calendar_id.as_str()) || (self.calendar_id == "primary" && default)
            })
            .ok_or(CalendarError::NotFound)?;
        if !cal.get("canEdit").and_then(Value::as_bool).unwrap_or(false) {
            return Err(CalendarError::Rejected(
                "the calendar cannot be edited".into(),
            ));
        }
        let teams = !self.personal
            && cal
                .get("allowedOnlineMeetingProviders")
                .and_then(Value::as_array)
                .is_some_and(|p| p.iter().any(|x| x.as_str() == Some("teamsForBusiness")));
        let zone_name = self
            .send(
                Method::GET,
                self.url(&["me", "mailboxSettings", "timeZone"])?,
                None,
            )
            .await?;
        let name = zone_name
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let zone = mailbox_zone(name);
        if zone.is_none() {
            // Every call still books, in the campaign's rules zone; the
            // connection says why (diagnostics shows it).
            tracing::warn!(
                mailbox_zone = name,
                "the mailbox's time zone is neither a Windows nor an IANA name; using the campaign's zone"
            );
        }
        Ok(Resolved {
            calendar_id: cal
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            zone,
            zone_unresolved: zone.is_none().then(|| name.to_string()),
            teams,
        })
    }
}

#[async_trait]
impl CalendarProvider for MicrosoftCalendar {
    async fn calendar_info(&self) -> Result<CalendarInfo, CalendarError> {
        let r = self.resolve().await?;
        Ok(CalendarInfo {
            calendar_id: r.calendar_id,
            timezone: r.zone,
            zone_unresolved: r.zone_unresolved,
            video: if r.teams {
                Video::Available("Microsoft Teams".into())
            } else {
                Video::Unavailable
            },
        })
    }

    async fn list_calendars(&self) -> Result<Vec<CalendarSummary>, CalendarError> {
        let list = self
            .send(Method::GET, self.url(&["me", "calendars"])?, None)
            .await?;
        let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(list
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("canEdit").and_then(Value::as_bool).unwrap_or(false))
            .map(|c| CalendarSummary {
                id: s(c, "id").unwrap_or_default(),
                name: s(c, "name").unwrap_or_default(),
                primary: c
                    .get("isDefaultCalendar")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                // Outlook calendars carry no zone; the mailbox has one.
                timezone: None,
            })
            .collect())
    }

    async fn free_busy(&self, window: Interval) -> Result<Vec<Interval>, CalendarError> {
        let r = self.resolve().await?;
        let events = self
            .calendar_view(
                &r.calendar_id,
                window,
                &[(
                    "$select",
                    "start,end,showAs,isCancelled,isAllDay,originalStartTimeZone",
                )],
            )
            .await?;
        let mut busy = Vec::new();
        for ev in &events {
            let cancelled = ev
                .get("isCancelled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let show_as = ev.get("showAs").and_then(Value::as_str).unwrap_or("busy");
            if cancelled || matches!(show_as, "free" | "workingElsewhere") {
                continue;
            }
            let all_day = ev.get("isAllDay").and_then(Value::as_bool).unwrap_or(false);
            let span = if all_day {
                all_day_span(ev, r.zone)
            } else {
                match (read_time(ev.get("start")), read_time(ev.get("end"))) {
                    (Some(s), Some(e)) if s < e => Some(Interval::new(s, e)),
                    _ => None,
                }
            };
            match span {
                Some(span) => busy.push(span),
                None => {
                    return Err(CalendarError::Transient(
                        "calendarView returned an unreadable event".into(),
                    ))
                }
            }
        }
        Ok(merge_busy(busy))
    }

    async fn create_event(&self, ev: &NewEvent) -> Result<CreatedEvent, CalendarError> {
        let r = self.resolve().await?;
        let mut body = json!({
            "subject": ev.title,
            "body": {"contentType": "text", "content": ev.description},
            "start": utc_time(ev.slot.start),
            "end": utc_time(ev.slot.end),
            "attendees": [{"emailAddress": {"address": ev.attendee_email, "name": ev.attendee_name}, "type": "required"}],
            "transactionId": ev.booking_id,
            "singleValueExtendedProperties": [{"id": BOOKING_PROPERTY, "value": ev.booking_id}],
        });
        match &ev.meeting {
            // Teams only where the calendar allows it; never on personal accounts.
            MeetingKind::Video if r.teams => {
                body["isOnlineMeeting"] = json!(true);
                body["onlineMeetingProvider"] = json!("teamsForBusiness");
            }
            MeetingKind::Video => {}
            MeetingKind::Phone { number } => {
                body["location"] = json!({"displayName": number});
                body["body"]["content"] = json!(format!("{}\n\nPhone: {number}", ev.description));
            }
            MeetingKind::InPerson { address } => body["location"] = json!({"displayName": address}),
        }
        let wants_teams = body["isOnlineMeeting"] == json!(true);
        let url = self.url(&["me", "calendars", &r.calendar_id, "events"])?;
        let event = retry(self.policy, |attempt| {
            let (url, body, cal) = (&url, &body, &r.calendar_id);
            async move {
                // An attempt that timed out may have been stored: look before
                // sending again (the transactionId window is undocumented).
                if attempt > 0 {
                    if let Ok(Some(existing)) = self.find_booking_in(cal, &ev.booking_id).await {
                        return Ok(existing);
                    }
                }
                match self.send_once(Method::POST, url.clone(), Some(body)).await {
                    // A repeated transactionId may be refused rather than
                    // answered with the first event: it exists, find it.
                    Err(CalendarError::Duplicate) => self
                        .find_booking_in(cal, &ev.booking_id)
                        .await?
                        .ok_or_else(|| {
                            CalendarError::Transient(
                                "duplicate transactionId but no event carries the booking".into(),
                            )
                        }),
                    other => other,
                }
            }
        })
        .await?;
        let mut made = created(&event)?;
        if wants_teams && made.join_link.is_none() {
            made.join_link =
                tokio::time::timeout(LATE_LINK_BUDGET, self.late_join_link(&made.event_id))
                    .await
                    .unwrap_or_else(|_| {
                        tracing::warn!(
                            "no Teams link within the read-back budget; booked without one"
                        );
                        None
                    });
        }
        Ok(made)
    }

    async fn find_booking(&self, booking_id: &str) -> Result<Option<CreatedEvent>, CalendarError> {
        let r = self.resolve().await?;
        match self.find_booking_in(&r.calendar_id, booking_id).await? {
            Some(e) => Ok(Some(created(&e)?)),
            None => Ok(None),
        }
    }

    async fn tagged_events(&self, window: Interval) -> Result<Vec<TaggedEvent>, CalendarError> {
        let r = self.resolve().await?;
        let expand = format!("singleValueExtendedProperties($filter=id eq '{BOOKING_PROPERTY}')");
        let events = self
            .calendar_view(
                &r.calendar_id,
                window,
                &[
                    ("$select", "start,end,isCancelled,onlineMeeting"),
                    ("$expand", &expand),
                ],
            )
            .await?;
        let mut found = Vec::new();
        for ev in &events {
            let cancelled = ev
                .get("isCancelled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let tag = ev
                .get("singleValueExtendedProperties")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("id").and_then(Value::as_str) == Some(BOOKING_PROPERTY))
                .and_then(|p| p.get("value").and_then(Value::as_str));
            if let (Some(tag), false) = (tag, cancelled) {
                found.push(TaggedEvent {
                    booking_id: tag.to_string(),
                    event: created(ev)?,
                });
            }
        }
        Ok(found)
    }

    async fn event(&self, event_id: &str) -> Result<Option<CreatedEvent>, CalendarError> {
        match self
            .send(Method::GET, self.url(&["me", "events", event_id])?, None)
            .await
        {
            Ok(e) if e.get("isCancelled").and_then(Value::as_bool) == Some(true) => Ok(None),
            Ok(e) => Ok(Some(created(&e)?)),
            Err(CalendarError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn cancel_event(&self, event_id: &str) -> Result<(), CalendarError> {
        match self
            .send(Method::DELETE, self.url(&["me", "events", event_id])?, None)
            .await
        {
            Ok(_) | Err(CalendarError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn move_event(
        &self,
        event_id: &str,
        to: Interval,
        _timezone: Tz,
    ) -> Result<CreatedEvent, CalendarError> {
        let body = json!({"start": utc_time(to.start), "end": utc_time(to.end)});
        let event = self
            .send(
                Method::PATCH,
                self.url(&["me", "events", event_id])?,
                Some(&body),
            )
            .await?;
        created(&event)
    }
}
