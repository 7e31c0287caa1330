//! The values that cross the dialog boundary: what goes in, what comes out.

use crate::domain::Email;
pub use crate::domain::{EndReason, FailReason, MeetingKind, SkipReason, Status, Video};
use crate::phone::E164;
use crate::schedule::{BookingRules, Interval};

/// Who is on the phone.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: Option<E164>,
}

impl Recipient {
    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) if !last.is_empty() => format!("{} {}", self.first_name, last),
            _ => self.first_name.clone(),
        }
    }
}

/// Everything the dialog needs to run a booking on this call.
#[derive(Debug, Clone)]
pub struct BookingContext {
    pub rules: BookingRules,
    pub owner_name: String,
    pub meeting: MeetingKind,
}

/// What the dialog is told when the call starts.
#[derive(Debug, Clone)]
pub struct Setup {
    pub recipient: Recipient,
    pub booking: Result<BookingContext, SkipReason>,
}

/// The owner's availability as fetched at call start.
#[derive(Debug, Clone)]
pub struct Availability {
    /// Foreign busy time plus callbook's own claims (already padded).
    pub busy: Vec<Interval>,
    pub video: Video,
}

/// A calendar fault the caller must not hear the details of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    Expired,
    AdminApproval,
    Unavailable,
    /// A write whose answer was lost and whose event could not be read
    /// back: it may have happened.
    Unconfirmed,
}

impl Trouble {
    pub fn fail_reason(self) -> FailReason {
        match self {
            Trouble::Expired => FailReason::CalendarExpired,
            Trouble::AdminApproval => FailReason::AdminApprovalNeeded,
            Trouble::Unavailable => FailReason::CalendarUnavailable,
            Trouble::Unconfirmed => FailReason::OutcomeUnknown,
        }
    }

    pub fn skip_reason(self) -> Option<SkipReason> {
        match self {
            Trouble::Expired => Some(SkipReason::CalendarExpired),
            Trouble::AdminApproval => Some(SkipReason::AdminApprovalNeeded),
            Trouble::Unavailable | Trouble::Unconfirmed => None,
        }
    }
}

/// How a booking or a move ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        slot: Interval,
        event_id: String,
        join_link: Option<String>,
        /// The ledger claim that now covers the meeting.
        claim: String,
    },
    /// Another call claimed an overlapping interval first (or the calendar
    /// shows it busy now).
    Taken {
        conflict: Interval,
    },
    Failed(Trouble),
}

/// The pipeline's offer and what its agent already knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    /// The caller already said yes to a meeting.
    pub agreed: bool,
    /// An address the agent already has (written or spoken form).
    pub email: Option<String>,
    /// The caller's preferred time, as they said it.
    pub when: Option<String>,
}

/// One thing that happened on the call, fed to [`super::Dialog::step`].
#[derive(Debug, Clone)]
pub enum Input {
    Start(Setup),
    /// A final transcript of the caller's words.
    Heard(String),
    /// The pipeline says the conversation reached the point for a meeting.
    Offer(Offer),
    /// The pipeline takes the conversation back.
    Cancel,
    /// The pipeline will report playback (`mark`, `clear`).
    PlaybackReported,
    /// The audio of say number `n` (and every earlier one) finished.
    Played(u32),
    /// The pipeline cut callbook's audio. When it says which say was in
    /// progress and that all of it was spoken, that say counts as heard.
    Cut {
        fully_spoken: Option<u32>,
    },
    AvailabilityLoaded(Result<Availability, Trouble>),
    Booked(Outcome),
    Moved(Outcome),
    /// The meeting booked on this call was cancelled (or could not be).
    Cancelled(Result<(), Trouble>),
    /// A calendar operation is taking long enough that the caller should
    /// hear something.
    StillWorking,
    Hangup(EndReason),
    /// This call continues an earlier socket's: take up its conversation
    /// where it stood (after [`Input::Start`]).
    Resume(Box<super::Memo>),
}

/// What to create on the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRequest {
    pub slot: Interval,
    pub email: Email,
    pub name: String,
    /// Counts the calendar changes this call asked for. With the call's id
    /// it names the booking, so a request repeated after a resume is the
    /// same booking to the ledger and the provider, never a second one.
    pub attempt: u32,
    /// The request is repeated after its first try's outcome was lost (the
    /// instance running it died): look for the booking before making it.
    pub recover: bool,
}

/// One line for the agent to speak; `id` numbers the call's lines from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub id: u32,
    pub text: String,
}

impl Line {
    /// The wire name of this line (`s4`), which `mark` frames echo.
    pub fn wire_id(&self) -> String {
        format!("s{}", self.id)
    }
}

/// What the dialog asks the world to do. The actor carries these out and
/// feeds the results back as [`Input`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Who answers the transcript just heard: sent first, once per
    /// [`Input::Heard`].
    Turn {
        callbook: bool,
        floor: bool,
    },
    Say(Line),
    Status(Status),
    /// Fetch busy time for the whole look-ahead, in the background.
    LoadAvailability,
    /// Re-check, claim and create. Answered with [`Input::Booked`].
    Book(BookRequest),
    /// Re-check, claim and move. Answered with [`Input::Moved`].
    Move {
        event_id: String,
        from: Interval,
        to: Interval,
        /// As in [`BookRequest::attempt`].
        attempt: u32,
        /// The claim covering the meeting now, replaced at commit.
        claim: String,
        /// As in [`BookRequest::recover`]: the move may have happened.
        recover: bool,
    },
    /// Cancel the meeting booked on this call. Answered with
    /// [`Input::Cancelled`].
    CancelMeeting {
        event_id: String,
        claim: String,
    },
}
