//! The vocabulary every layer shares: how a meeting happens, whether a
//! video link is possible, an email address, and what became of a booking
//! (its status and the reasons it was skipped, failed or ended).
//!
//! Plain values with no behaviour beyond validation and their serialized
//! form, so the pure dialog, the calendar clients, the stores and the wire
//! protocol can all use them without depending on one another. Time
//! intervals live in [`crate::schedule`], the slot arithmetic at the same
//! level.

use crate::schedule::Interval;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// How the meeting happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MeetingKind {
    /// A Meet or Teams link, where the calendar allows one.
    Video,
    /// The owner calls; the number goes on the event.
    Phone { number: String },
    /// An address goes on the event as its location.
    InPerson { address: String },
}

/// Why booking cannot run on this call. The caller hears nothing of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    CampaignUnknown,
    BookingDisabled,
    /// No longer given (since 1.4.0 such calls say `owner_not_connected`);
    /// kept so older records read back.
    CalendarMissing,
    /// The campaign's owner has no calendar connected (none ever, or the
    /// last one was disconnected) (since protocol 1.4.0).
    OwnerNotConnected,
    CalendarExpired,
    AdminApprovalNeeded,
    /// The connection store could not be read at call start (Redis down,
    /// tokens that do not open): the owner may well be connected (since
    /// protocol 1.3.0).
    CalendarUnavailable,
}

/// Why a booking that started did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    EmailUnconfirmed,
    NoAvailability,
    CalendarExpired,
    AdminApprovalNeeded,
    CalendarUnavailable,
    /// The calendar write was sent but its answer was lost (or it was cut
    /// off), and reading the event back failed or could not yet rule it
    /// out: the meeting may exist. Its slot is kept (when the ledger
    /// answers) until the reconciler learns which.
    OutcomeUnknown,
}

/// Whether the owner's calendar can attach a video link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Video {
    /// "Google Meet", "Microsoft Teams".
    Available(String),
    /// A personal Microsoft account, or a calendar that allows none.
    Unavailable,
}

/// Why the booking conversation ended on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The pipeline sent `stop`.
    Hangup,
    /// The agent took the floor back.
    HandedBack,
    /// The server is stopping.
    Shutdown,
}

/// A booking status change, sent to the pipeline as a `booking` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Offered,
    Declined,
    EmailConfirmed {
        email: Email,
    },
    Proposed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        /// True when the proposal would move the meeting already booked.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        reschedule: bool,
        /// Several slots offered to choose from, in the order said
        /// (`start`/`end` are the first); empty for a single proposal.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        options: Vec<Interval>,
    },
    Booked {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        event_id: String,
        join_link: Option<String>,
    },
    Rescheduled {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        event_id: String,
        previous_start: DateTime<Utc>,
    },
    Taken {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The caller cancelled the meeting booked on this call.
    Cancelled {
        event_id: String,
        start: DateTime<Utc>,
    },
    Skipped {
        reason: SkipReason,
    },
    Failed {
        reason: FailReason,
    },
    Done {
        booked: bool,
        reason: EndReason,
    },
}

/// A validated, lowercased email address (a practical RFC 5321 subset).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates an address already in written form.
    pub fn parse(raw: &str) -> Option<Email> {
        let lower = raw.trim().to_lowercase();
        valid(&lower).then_some(Email(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local(&self) -> &str {
        self.0.split_once('@').map_or("", |(l, _)| l)
    }

    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    /// For logs: `j***@g***.com`.
    pub fn redacted(&self) -> String {
        let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let domain = self.domain();
        let tld = domain.rsplit_once('.').map_or("", |(_, t)| t);
        format!("{}***@{}***.{}", first(self.local()), first(domain), tld)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.redacted())
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).ok_or_else(|| serde::de::Error::custom("not a valid email address"))
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Local part: `[a-z0-9._+'-]`, 1–64, no leading/trailing/double dot.
/// Domain: two or more LDH labels of 1–63, no edge hyphens, an alphabetic
/// TLD of two or more letters. At most 254 in all.
pub fn valid(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    if addr.len() > 254 || local.is_empty() || local.len() > 64 || domain.contains('@') {
        return false;
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._+-'".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let labels_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    let tld = labels.last().copied().unwrap_or("");
    let tld_ok =
        tld.len() >= 2 && (tld.chars().all(|c| c.is_ascii_lowercase()) || tld.starts_with("xn--"));
    local_ok && labels_ok && tld_ok
}
