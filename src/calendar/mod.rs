//! Calendar providers behind one trait.
//!
//! Each connected calendar is one [`CalendarProvider`]; the call actor uses it
//! for free/busy, creating and moving events. Implementations speak the
//! providers' real HTTP APIs; `emulator` (with the `testkit` feature) serves
//! the same APIs locally for tests, replays and the demo.

pub mod binding;
pub mod check;
#[cfg(feature = "testkit")]
pub mod emulator;
pub mod google;
pub mod microsoft;
pub mod oauth;
pub mod retry;
pub mod template;
pub mod windows_zones;

use crate::domain::{MeetingKind, Video};
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono_tz::Tz;
use std::time::Duration;

/// How long what a provider said of a calendar (its id, zone and video
/// support) is taken as still true. Each call start then asks the
/// provider one thing (free/busy), not two, and an owner's change shows
/// within minutes.
pub const CALENDAR_INFO_FOR: Duration = Duration::from_secs(300);

/// What a provider tells about the calendar in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarInfo {
    pub calendar_id: String,
    /// The calendar's own zone, where the provider has one.
    pub timezone: Option<Tz>,
    pub video: Video,
    /// The zone the provider reported when it names no zone callbook knows
    /// (Outlook's "Customized Time Zone", a misspelt name): `timezone` is
    /// then `None` and the campaign's rules zone is used instead.
    pub zone_unresolved: Option<String>,
}

/// A calendar the owner may choose to book on (one they can write to).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CalendarSummary {
    pub id: String,
    pub name: String,
    pub primary: bool,
    /// The calendar's own zone, where the provider has one (Google).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// An event to create. `booking_id` makes the create idempotent: the same
/// booking always maps to the same provider-side id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub booking_id: String,
    pub slot: Interval,
    /// The owner's zone, sent so the event shows in local time.
    pub timezone: Tz,
    pub title: String,
    pub description: String,
    pub attendee_email: String,
    pub attendee_name: String,
    pub meeting: MeetingKind,
}

/// An event as the provider stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedEvent {
    pub event_id: String,
    pub slot: Interval,
    pub join_link: Option<String>,
}

/// An event callbook made, as found on the calendar: the booking id it
/// carries (the tag `find_booking` looks up) and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedEvent {
    pub booking_id: String,
    pub event: CreatedEvent,
}

/// Provider faults, classified for the code that must react to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The grant is gone (revoked, expired): reconnect needed.
    #[error("calendar access has expired")]
    Expired,
    /// The tenant needs an administrator to approve the app.
    #[error("administrator approval needed")]
    ConsentRequired,
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    /// Worth retrying: 5xx, timeouts, connection errors.
    #[error("calendar temporarily unavailable: {0}")]
    Transient(String),
    /// The event id is already taken by something that is not ours.
    #[error("event id already used")]
    Duplicate,
    #[error("not found")]
    NotFound,
    /// The owner unticked permissions callbook needs on the consent screen.
    #[error("permissions not granted: {0:?}")]
    ScopeMissing(Vec<String>),
    /// A request the provider will never accept as sent.
    #[error("calendar request rejected: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait CalendarProvider: Send + Sync {
    async fn calendar_info(&self) -> Result<CalendarInfo, CalendarError>;
    /// The calendars the owner can write to, for choosing one.
    async fn list_calendars(&self) -> Result<Vec<CalendarSummary>, CalendarError>;
    /// Busy intervals overlapping `window`. Fails rather than report a busy
    /// calendar as free.
    async fn free_busy(&self, window: Interval) -> Result<Vec<Interval>, CalendarError>;
    async fn create_event(&self, event: &NewEvent) -> Result<CreatedEvent, CalendarError>;
    /// The live event created for this booking id, if there is one: how a
    /// booking whose outcome was lost (its instance died mid-create) is
    /// found rather than made twice.
    async fn find_booking(&self, booking_id: &str) -> Result<Option<CreatedEvent>, CalendarError>;
    /// The live events callbook made (those carrying a booking id) that
    /// overlap `window`: what a ledger that lost its claims is rebuilt from.
    async fn tagged_events(&self, window: Interval) -> Result<Vec<TaggedEvent>, CalendarError>;
    /// The live event with this provider id, if there is one (`None` once
    /// it is deleted or cancelled): how the outcome of a move that was
    /// lost is read back, and how the reconciler learns that an event
    /// was deleted in the provider's own app.
    async fn event(&self, event_id: &str) -> Result<Option<CreatedEvent>, CalendarError>;
    /// Cancels an event callbook created; the provider emails attendees.
    /// Cancelling one already cancelled succeeds.
    async fn cancel_event(&self, event_id: &str) -> Result<(), CalendarError>;
    async fn move_event(
        &self,
        event_id: &str,
        to: Interval,
        timezone: Tz,
    ) -> Result<CreatedEvent, CalendarError>;
}

/// A provider's answer, read once: the status, a `Retry-After` in seconds
/// if given, and the body (`Null` when empty, JSON when successful).
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<Duration>,
    pub text: String,
}

impl Answer {
    /// Sends a request and reads the whole answer. A failure to connect or
    /// to read is transient.
    pub(crate) async fn of(req: reqwest::RequestBuilder) -> Result<Answer, CalendarError> {
        let resp = req
            .send()
            .await
            .map_err(|e| CalendarError::Transient(e.without_url().to_string()))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp
            .text()
            .await
            .map_err(|e| CalendarError::Transient(e.to_string()))?;
        Ok(Answer {
            status,
            retry_after,
            text,
        })
    }

    /// The JSON body of a successful answer (`Null` for an empty one).
    pub(crate) fn json(&self, provider: &str) -> Result<serde_json::Value, CalendarError> {
        if self.text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&self.text)
            .map_err(|e| CalendarError::Transient(format!("bad JSON from {provider}: {e}")))
    }
}

/// Provider-side event id for a booking: lowercase hex, a subset of the
/// base32hex alphabet Google requires, and never reused across bookings.
pub fn event_id_for(booking_id: &str) -> String {
    booking_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .flat_map(char::to_lowercase)
        .collect()
}
