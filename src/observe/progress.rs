//! How far one call's booking got: fed every status the call emits and
//! the dialog's stage after every step, it counts the funnel and, when the
//! call ends, says where it stopped and why, for the diagnostics.

use super::metrics;
use crate::domain::{FailReason, SkipReason, Status};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The furthest booking step a call reached, in funnel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reached {
    /// Booking could not run on the call at all.
    Skipped,
    /// Booking could run; nobody brought it up.
    Listening,
    Offered,
    /// The caller gave an address; it was read back.
    EmailCaptured,
    EmailConfirmed,
    Proposed,
    Booked,
}

impl Reached {
    pub fn as_str(self) -> &'static str {
        match self {
            Reached::Skipped => "skipped",
            Reached::Listening => "listening",
            Reached::Offered => "offered",
            Reached::EmailCaptured => "email_captured",
            Reached::EmailConfirmed => "email_confirmed",
            Reached::Proposed => "proposed",
            Reached::Booked => "booked",
        }
    }

    /// The step a dialog stage (by [`crate::dialog::Dialog::stage_name`])
    /// shows the call got to; `None` for stages that say nothing of it.
    fn of_stage(stage: &str) -> Option<Reached> {
        Some(match stage {
            "skipped" => Reached::Skipped,
            "listening" => Reached::Listening,
            "offered" | "asking_email" | "asking_local" | "asking_domain" => Reached::Offered,
            "confirming_email" => Reached::EmailCaptured,
            "asking_zone" | "waiting_for_slots" => Reached::EmailConfirmed,
            "proposing" | "booking" => Reached::Proposed,
            "booked" | "asking_move_when" | "proposing_move" | "moving" | "confirming_cancel"
            | "cancelling" => Reached::Booked,
            _ => return None,
        })
    }
}

/// How the call's actor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The pipeline sent `stop`.
    Hangup,
    /// The socket went without a `stop`; the call waited for a resume.
    SocketDropped,
    /// The server stopped.
    Shutdown,
}

/// What is kept of a call once it ended: no caller data (no number, no
/// name, no address, no event id), only how far it got and why it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEnd {
    pub call_sid: String,
    /// The campaign as the call named it, when the store knew it.
    #[serde(skip)]
    pub campaign_id: Option<String>,
    pub ended_at: DateTime<Utc>,
    /// The furthest step reached.
    pub reached: Reached,
    /// The dialog's stage when the call ended.
    pub last_stage: &'static str,
    pub ending: Ending,
    /// Whether the pipeline asked for booking (sent `offer`) at least once.
    pub offer_asked: bool,
    pub skipped: Option<SkipReason>,
    /// The last failure on the call.
    pub failed: Option<FailReason>,
    pub declined: bool,
    /// A confirmed slot went to another call first (at least once).
    pub taken: bool,
}

/// One call's progress, owned by its actor.
pub struct CallProgress {
    call_sid: String,
    campaign: String,
    campaign_id: Option<String>,
    reached: Option<Reached>,
    stage: &'static str,
    offer_asked: bool,
    skipped: Option<SkipReason>,
    failed: Option<FailReason>,
    declined: bool,
    taken: bool,
}

impl CallProgress {
    /// A call on `campaign_id` (`None` when it named none the store knows),
    /// counted as started.
    pub fn start(call_sid: &str, campaign_id: Option<&str>) -> Self {
        let campaign = metrics::campaign_label(campaign_id, campaign_id.is_some());
        metrics::call_started(&campaign);
        Self {
            call_sid: call_sid.to_string(),
            campaign,
            campaign_id: campaign_id.map(str::to_string),
            reached: None,
            stage: "not_started",
            offer_asked: false,
            skipped: None,
            failed: None,
            declined: false,
            taken: false,
        }
    }

    fn reach(&mut self, r: Reached) {
        // A skip is only "furthest" when nothing else happened.
        if self.reached.is_none_or(|now| r > now) {
            self.reached = Some(r);
        }
    }

    /// A status the call emitted.
    pub fn status(&mut self, status: &Status) {
        let step = match status {
            Status::Offered => {
                self.reach(Reached::Offered);
                "offered"
            }
            Status::Declined => {
                self.declined = true;
                "declined"
            }
            Status::EmailConfirmed { .. } => {
                self.reach(Reached::EmailConfirmed);
                "email_confirmed"
            }
            Status::Proposed { .. } => {
                self.reach(Reached::Proposed);
                "proposed"
            }
            Status::Booked { .. } => {
                self.reach(Reached::Booked);
                "booked"
            }
            Status::Rescheduled { .. } => "moved",
            Status::Cancelled { .. } => "cancelled",
            Status::Taken { .. } => {
                self.taken = true;
                "taken"
            }
            Status::Skipped { reason } => {
                // Said at start and again at every offer: one skip per call.
                if self.skipped.is_none() {
                    self.skipped = Some(*reason);
                    self.reach(Reached::Skipped);
                    metrics::skipped(&self.campaign, skip_name(*reason));
                }
                return;
            }
            Status::Failed { reason } => {
                self.failed = Some(*reason);
                metrics::failed(&self.campaign, fail_name(*reason));
                return;
            }
            Status::Done { .. } => return,
        };
        metrics::funnel(&self.campaign, step);
    }

    /// The pipeline asked for booking (an `offer` frame).
    pub fn offer_asked(&mut self) {
        self.offer_asked = true;
    }

    /// The dialog's stage after a step. Entering the email read-back counts
    /// as an address captured, unless the stage was taken up from an
    /// earlier socket (`resumed`), whose progress was counted there.
    pub fn stage(&mut self, stage: &'static str, resumed: bool) {
        if stage == self.stage {
            return;
        }
        if stage == "confirming_email" && !resumed {
            metrics::funnel(&self.campaign, "email_captured");
        }
        self.stage = stage;
        if let Some(r) = Reached::of_stage(stage) {
            self.reach(r);
        }
    }

    /// The call ended: counted, and what the diagnostics keep of it.
    pub fn finish(&self, ending: Ending, at: DateTime<Utc>) -> CallEnd {
        let reached = self.reached.unwrap_or(Reached::Listening);
        metrics::call_ended(&self.campaign, reached.as_str());
        CallEnd {
            call_sid: self.call_sid.clone(),
            campaign_id: self.campaign_id.clone(),
            ended_at: at,
            reached,
            last_stage: self.stage,
            ending,
            offer_asked: self.offer_asked,
            skipped: self.skipped,
            failed: self.failed,
            declined: self.declined,
            taken: self.taken,
        }
    }
}

/// A skip reason's wire name.
pub fn skip_name(r: SkipReason) -> &'static str {
    match r {
        SkipReason::CampaignUnknown => "campaign_unknown",
        SkipReason::BookingDisabled => "booking_disabled",
        SkipReason::CalendarMissing => "calendar_missing",
        SkipReason::OwnerNotConnected => "owner_not_connected",
        SkipReason::CalendarExpired => "calendar_expired",
        SkipReason::AdminApprovalNeeded => "admin_approval_needed",
        SkipReason::CalendarUnavailable => "calendar_unavailable",
    }
}

/// A fail reason's wire name.
pub fn fail_name(r: FailReason) -> &'static str {
    match r {
        FailReason::EmailUnconfirmed => "email_unconfirmed",
        FailReason::NoAvailability => "no_availability",
        FailReason::CalendarExpired => "calendar_expired",
        FailReason::AdminApprovalNeeded => "admin_approval_needed",
        FailReason::CalendarUnavailable => "calendar_unavailable",
        FailReason::OutcomeUnknown => "outcome_unknown",
    }
}

impl CallEnd {
    /// Why the booking stopped where it did, in a sentence for an operator.
    pub fn why(&self) -> String {
        if let Some(reason) = self.skipped {
            let asked = if self.offer_asked {
                "the pipeline asked to offer booking, but "
            } else {
                ""
            };
            return format!("{asked}booking could not run: {}", skip_sentence(reason));
        }
        if let Some(reason) = self.failed {
            return format!("the booking failed: {}", fail_sentence(reason));
        }
        match self.reached {
            Reached::Booked => "a meeting was booked".into(),
            Reached::Listening => match self.ending {
                Ending::Hangup => "the call ended before the pipeline offered booking".into(),
                Ending::SocketDropped => "the socket dropped before booking was offered".into(),
                Ending::Shutdown => "the server stopped before booking was offered".into(),
            },
            _ if self.declined => "the caller declined the meeting".into(),
            Reached::Offered => {
                "the call ended while callbook was asking for the caller's email".into()
            }
            Reached::EmailCaptured => {
                "the call ended before the caller confirmed the email read back".into()
            }
            Reached::EmailConfirmed => "the call ended before a time was proposed".into(),
            Reached::Proposed if self.taken => {
                "the slot the caller chose went to another call first, and the call ended before another was agreed".into()
            }
            Reached::Proposed => "the call ended before the caller accepted a time".into(),
            Reached::Skipped => "booking could not run".into(),
        }
    }
}

/// What an operator should know of a skip reason.
pub fn skip_sentence(r: SkipReason) -> &'static str {
    match r {
        SkipReason::CampaignUnknown => "the call named no campaign callbook knows",
        SkipReason::BookingDisabled => "booking is turned off for the campaign",
        SkipReason::CalendarMissing => "the campaign's owner has no connected calendar",
        SkipReason::OwnerNotConnected => {
            "the campaign's owner has no connected calendar; the owner must connect one"
        }
        SkipReason::CalendarExpired => {
            "the owner's calendar connection expired; the owner must connect again"
        }
        SkipReason::AdminApprovalNeeded => {
            "the owner's organisation requires an administrator to approve callbook"
        }
        SkipReason::CalendarUnavailable => {
            "callbook could not read the owner's connection at call start (the store was unreachable)"
        }
    }
}

/// What an operator should know of a fail reason.
pub fn fail_sentence(r: FailReason) -> &'static str {
    match r {
        FailReason::EmailUnconfirmed => "the caller's email could not be confirmed",
        FailReason::NoAvailability => "no free slot was found in the look-ahead",
        FailReason::CalendarExpired => "the owner's calendar connection expired",
        FailReason::AdminApprovalNeeded => "an administrator must approve callbook",
        FailReason::CalendarUnavailable => {
            "the calendar or the ledger could not be reached at the time"
        }
        FailReason::OutcomeUnknown => {
            "the calendar write's answer was lost; the reconciler settles whether the meeting exists"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-12-01T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_call_that_never_got_an_offer_ended_listening() {
        let mut p = CallProgress::start("CA1", Some("c"));
        p.stage("listening", false);
        let end = p.finish(Ending::Hangup, at());
        assert_eq!(end.reached, Reached::Listening);
        assert!(end.why().contains("before the pipeline offered booking"));
    }

    #[test]
    fn a_skip_is_counted_once_and_a_later_offer_is_noticed() {
        let mut p = CallProgress::start("CA2", Some("c"));
        let skip = Status::Skipped {
            reason: SkipReason::CalendarExpired,
        };
        p.status(&skip);
        p.stage("skipped", false);
        p.offer_asked();
        p.status(&skip);
        let end = p.finish(Ending::Hangup, at());
        assert_eq!(end.reached, Reached::Skipped);
        assert_eq!(end.skipped, Some(SkipReason::CalendarExpired));
        assert!(end.offer_asked);
        assert!(end.why().contains("expired"), "{}", end.why());
    }

    #[test]
    fn the_furthest_step_wins_over_the_stage_the_call_ended_in() {
        let mut p = CallProgress::start("CA3", Some("c"));
        for stage in ["listening", "offered", "asking_email", "confirming_email"] {
            p.stage(stage, false);
        }
        p.stage("ended", false);
        let end = p.finish(Ending::SocketDropped, at());
        assert_eq!(end.reached, Reached::EmailCaptured);
        assert_eq!(end.last_stage, "ended");
    }
}
