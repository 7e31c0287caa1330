//! Booking rules: the JSON shape shared by campaign config, fixtures and
//! `callbook slots`, validated once at the edge.

use super::Interval;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Minutes in a day; a step must divide it so every day has the same grid.
const DAY_MINUTES: u32 = 24 * 60;

/// Longest look-ahead accepted, in days (two years). Past this a campaign is
/// misconfigured.
pub const MAX_LOOK_AHEAD_DAYS: u32 = 730;

/// The weekly window in the owner's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Indexed by `Weekday::num_days_from_monday`.
    pub days: [bool; 7],
    pub start: NaiveTime,
    /// `None` means midnight at the end of the day ("24:00").
    pub end: Option<NaiveTime>,
}

impl Window {
    pub fn allows(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }
}

/// Validated booking rules. Build them with `serde` or [`BookingRules::parse`];
/// every value here has passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRules", into = "RawRules")]
pub struct BookingRules {
    pub timezone: Tz,
    pub length_minutes: u32,
    pub slot_step_minutes: u32,
    pub window: Window,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub min_notice_minutes: u32,
    pub look_ahead_days: u32,
}

impl BookingRules {
    /// Parses rules from JSON text; the error names the field at fault.
    pub fn parse(json: &str) -> Result<Self, RulesError> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let raw: RawRules = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            RulesError::Json(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })?;
        Self::try_from(raw)
    }

    pub fn length(&self) -> Duration {
        Duration::minutes(i64::from(self.length_minutes))
    }

    pub fn min_notice(&self) -> Duration {
        Duration::minutes(i64::from(self.min_notice_minutes))
    }

    /// The meeting with its buffers: what must be clear of busy time, and what
    /// the ledger claims.
    pub fn padded(&self, meeting: Interval) -> Interval {
        Interval::new(
            meeting.start - Duration::minutes(i64::from(self.buffer_before_minutes)),
            meeting.end + Duration::minutes(i64::from(self.buffer_after_minutes)),
        )
    }
}

/// A rule that failed validation. Each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not JSON, a wrong type, a missing or unknown field; names the path.
    #[error("{0}")]
    Json(String),
    #[error("timezone: unknown zone {0:?}")]
    UnknownZone(String),
    #[error("length_minutes: must be greater than zero")]
    ZeroLength,
    #[error(
        "slot_step_minutes: must be greater than zero and divide a day (1440 minutes), got {0}"
    )]
    BadStep(u32),
    #[error("window.days: unknown day {0:?} (use mon, tue, wed, thu, fri, sat, sun)")]
    UnknownDay(String),
    #[error("window.days: at least one day is needed")]
    NoDays,
    #[error("window.{field}: {value:?} is not a time of day (HH:MM)")]
    BadTime { field: &'static str, value: String },
    #[error("window.end: must be after window.start")]
    EndNotAfterStart,
    #[error("window: a {length}-minute meeting does not fit between start and end")]
    LengthExceedsWindow { length: u32 },
    #[error("look_ahead_days: at most {max}, got {got}")]
    LookAheadTooLong { max: u32, got: u32 },
}

fn default_step() -> u32 {
    30
}

/// The wire shape of the rules, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    pub timezone: String,
    pub length_minutes: i64,
    #[serde(default = "default_step")]
    pub slot_step_minutes: u32,
    pub window: RawWindow,
    #[serde(default)]
    pub buffer_before_minutes: u32,
    #[serde(default)]
    pub buffer_after_minutes: u32,
    #[serde(default)]
    pub min_notice_minutes: u32,
    pub look_ahead_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_day(name: &str) -> Option<Weekday> {
    let lower = name.trim().to_ascii_lowercase();
    let idx = DAY_NAMES
        .iter()
        .position(|d| lower.starts_with(d) && lower.len() >= 3)?;
    // Accept "mon" and "monday", nothing in between that is another word.
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][idx];
    (lower == DAY_NAMES[idx] || lower == full).then(|| Weekday::try_from(idx as u8).ok())?
}

/// Parses "HH:MM"; "24:00" means the end of the day and yields `None`.
fn parse_time(field: &'static str, value: &str) -> Result<Option<NaiveTime>, RulesError> {
    if field == "end" && value.trim() == "24:00" {
        return Ok(None);
    }
    NaiveTime::parse_from_str(value.trim(), "%H:%M")
        .map(Some)
        .map_err(|_| RulesError::BadTime {
            field,
            value: value.to_string(),
        })
}

impl TryFrom<RawRules> for BookingRules {
    type Error = RulesError;

    fn try_from(raw: RawRules) -> Result<Self, RulesError> {
        let timezone: Tz = raw
            .timezone
            .parse()
            .map_err(|_| RulesError::UnknownZone(raw.timezone.clone()))?;
        if raw.length_minutes <= 0 {
            return Err(RulesError::ZeroLength);
        }
        let length_minutes =
            u32::try_from(raw.length_minutes).map_err(|_| RulesError::ZeroLength)?;
        let step = raw.slot_step_minutes;
        if step == 0 || DAY_MINUTES % step != 0 {
            return Err(RulesError::BadStep(step));
        }
        let mut days = [false; 7];
        for name in &raw.window.days {
            let day = parse_day(name).ok_or_else(|| RulesError::UnknownDay(name.clone()))?;
            days[day.num_days_from_monday() as usize] = true;
        }
        if !days.iter().any(|d| *d) {
            return Err(RulesError::NoDays);
        }
        let start = parse_time("start", &raw.window.start)?.ok_or_else(|| RulesError::BadTime {
            field: "start",
            value: raw.window.start.clone(),
        })?;
        let end = parse_time("end", &raw.window.end)?;
        let end_minutes = end.map_or(DAY_MINUTES, minutes_of);
        let start_minutes = minutes_of(start);
        if end_minutes <= start_minutes {
            return Err(RulesError::EndNotAfterStart);
        }
        if end_minutes - start_minutes < length_minutes {
            return Err(RulesError::LengthExceedsWindow {
                length: length_minutes,
            });
        }
        if raw.look_ahead_days > MAX_LOOK_AHEAD_DAYS {
            return Err(RulesError::LookAheadTooLong {
                max: MAX_LOOK_AHEAD_DAYS,
                got: raw.look_ahead_days,
            });
        }
        Ok(BookingRules {
            timezone,
            length_minutes,
            slot_step_minutes: step,
            window: Window { days, start, end },
            buffer_before_minutes: raw.buffer_before_minutes,
            buffer_after_minutes: raw.buffer_after_minutes,
            min_notice_minutes: raw.min_notice_minutes,
            look_ahead_days: raw.look_ahead_days,
        })
    }
}

/// Minutes since midnight of a wall-clock time.
pub(super) fn minutes_of(t: NaiveTime) -> u32 {
    use chrono::Timelike;
    t.hour() * 60 + t.minute()
}

impl From<BookingRules> for RawRules {
    fn from(r: BookingRules) -> Self {
        RawRules {
            timezone: r.timezone.name().to_string(),
            length_minutes: i64::from(r.length_minutes),
            slot_step_minutes: r.slot_step_minutes,
            window: RawWindow {
                days: r
                    .window
                    .days
                    .iter()
                    .enumerate()
                    .filter(|(_, on)| **on)
                    .map(|(i, _)| DAY_NAMES[i].to_string())
                    .collect(),
                start: r.window.start.format("%H:%M").to_string(),
                end: r
                    .window
                    .end
                    .map_or_else(|| "24:00".to_string(), |e| e.format("%H:%M").to_string()),
            },
            buffer_before_minutes: r.buffer_before_minutes,
            buffer_after_minutes: r.buffer_after_minutes,
            min_notice_minutes: r.min_notice_minutes,
            look_ahead_days: r.look_ahead_days,
        }
    }
}
