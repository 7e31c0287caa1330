//! `callbook check-provider`: a connection tried step by step against the
//! provider itself, to tell an owner's setup apart from callbook's. Read-only
//! unless asked: listing calendars, the calendar in use (its zone and video
//! link), and free/busy for one day; with `write`, a labelled test event is
//! created and deleted again.

use super::{CalendarProvider, NewEvent};
use crate::domain::MeetingKind;
use crate::schedule::Interval;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// The title of the test event `write` creates (and deletes at once).
pub const TEST_EVENT_TITLE: &str = "callbook connection test (deleted automatically)";

/// One step and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `list_calendars`, `calendar_info`, `free_busy`, `create_test_event`,
    /// `delete_test_event`.
    pub step: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn step(name: &'static str, ok: bool, detail: impl Into<String>) -> Step {
    Step {
        step: name,
        ok,
        detail: detail.into(),
    }
}

/// Runs the steps in order; a failed step stops the ones that need it.
/// `day` is the free/busy window (and where a test event goes: its first
/// half hour, the owner its only attendee); `write` allows the create and
/// delete.
pub async fn check_provider(
    provider: &dyn CalendarProvider,
    owner_email: &str,
    day: Interval,
    write: bool,
    now: DateTime<Utc>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    match provider.list_calendars().await {
        Ok(list) => {
            let names: Vec<String> = list
                .iter()
                .map(|c| {
                    let primary = if c.primary { " (primary)" } else { "" };
                    format!("{}{primary}", c.name)
                })
                .collect();
            steps.push(step(
                "list_calendars",
                true,
                format!("{} writable: {}", list.len(), names.join(", ")),
            ));
        }
        Err(e) => steps.push(step("list_calendars", false, e.to_string())),
    }
    let info = match provider.calendar_info().await {
        Ok(info) => {
            let zone = match (&info.timezone, &info.zone_unresolved) {
                (Some(z), _) => z.name().to_string(),
                (None, Some(raw)) => {
                    format!("{raw:?}, not a zone callbook knows: the campaign's zone is used")
                }
                (None, None) => "none (the campaign's zone is used)".into(),
            };
            steps.push(step(
                "calendar_info",
                true,
                format!(
                    "calendar {}; zone {zone}; video {:?}",
                    info.calendar_id, info.video
                ),
            ));
            Some(info)
        }
        Err(e) => {
            steps.push(step("calendar_info", false, e.to_string()));
            None
        }
    };
    if info.is_none() {
        return steps;
    }
    match provider.free_busy(day).await {
        Ok(busy) => {
            let minutes: i64 = busy
                .iter()
                .map(|b| {
                    (b.end.min(day.end) - b.start.max(day.start))
                        .num_minutes()
                        .max(0)
                })
                .sum();
            steps.push(step(
                "free_busy",
                true,
                format!(
                    "{} busy intervals, {minutes} busy minutes in the day",
                    busy.len()
                ),
            ));
        }
        Err(e) => steps.push(step("free_busy", false, e.to_string())),
    }
    if !write {
        return steps;
    }
    let event = NewEvent {
        booking_id: format!("{:032x}", now.timestamp_nanos_opt().unwrap_or_default()),
        slot: Interval::new(day.start, day.start + Duration::minutes(30)),
        timezone: info.and_then(|i| i.timezone).unwrap_or(chrono_tz::UTC),
        title: TEST_EVENT_TITLE.into(),
        description: "A test of callbook's calendar connection; it is deleted at once.".into(),
        attendee_email: owner_email.to_string(),
        attendee_name: String::new(),
        meeting: MeetingKind::Phone {
            number: "+10000000000".into(),
        },
    };
    match provider.create_event(&event).await {
        Ok(made) => {
            steps.push(step(
                "create_test_event",
                true,
                format!("event {}", made.event_id),
            ));
            match provider.cancel_event(&made.event_id).await {
                Ok(()) => steps.push(step("delete_test_event", true, "deleted")),
                Err(e) => steps.push(step(
                    "delete_test_event",
                    false,
                    format!("{e}; delete the event titled {TEST_EVENT_TITLE:?} by hand"),
                )),
            }
        }
        Err(e) => steps.push(step("create_test_event", false, e.to_string())),
    }
    steps
}
