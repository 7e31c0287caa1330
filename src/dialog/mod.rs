//! The booking conversation, as a pure state machine.
//!
//! [`Dialog::step`] takes one [`Input`] and `now`, updates the state, and
//! returns [`Effect`]s as plain values. It never awaits, never reads a clock
//! and never touches the network, so a whole call can be replayed on a
//! virtual clock and tested without I/O. The call actor runs the effects.

pub mod speech;
mod types;
pub mod understand;

pub use types::*;

use crate::phone;
use crate::schedule::{merge_busy, Interval, SlotFinder};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use understand::choice::{self, Choice};
use understand::email::{self, Correction, Email};
use understand::intent::{self, Intent};
use understand::when::{self, Target, TimePref};
use understand::yes_no::{self, Answer};

/// Where the conversation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Stage {
    NotStarted,
    /// Booking is possible; nobody has brought it up yet.
    Listening,
    Offered,
    AskingEmail,
    /// After two failed attempts: the part before the "at" alone…
    AskingLocal,
    /// …then the domain alone.
    AskingDomain(String),
    ConfirmingEmail(Email),
    /// Email confirmed, the caller's zone unknown: asked for it.
    AskingZone(Option<TimePref>),
    /// Email confirmed; waiting for the calendar before proposing.
    WaitingForSlots(Option<TimePref>),
    Proposing(Interval),
    Booking(Interval),
    Booked,
    AskingMoveWhen,
    ProposingMove(Interval),
    Moving(Interval),
    /// "Cancel that meeting": asked to confirm.
    ConfirmingCancel,
    Cancelling,
    /// Declined, failed or handed back; a new request can start again.
    Ended,
    Skipped(SkipReason),
}

/// The meeting booked on this call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meeting {
    slot: Interval,
    event_id: String,
    join_link: Option<String>,
    /// The ledger claim covering it.
    claim: String,
}

/// What of a call's conversation outlives its socket, so that a `start`
/// for the same call (on this instance or another) resumes it where it
/// stood. Availability and the booking context are loaded afresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memo {
    stage: Stage,
    email: Option<Email>,
    caller_tz: String,
    tz_known: bool,
    #[serde(default)]
    zone_guessed: bool,
    meeting: Option<Meeting>,
    declined: Vec<Interval>,
    #[serde(default)]
    options: Vec<Interval>,
    engaged: bool,
    email_tries: u8,
    last_prompt: Option<String>,
    wanted: Option<String>,
    says: u32,
    attempts: u32,
    playback: bool,
}

impl Memo {
    /// The number of the last line said before it was saved.
    pub fn last_line(&self) -> u32 {
        self.says
    }
}

/// One call's booking conversation.
#[derive(Debug, Clone)]
pub struct Dialog {
    stage: Stage,
    ctx: Option<BookingContext>,
    recipient: Option<Recipient>,
    caller_tz: Tz,
    email: Option<Email>,
    /// Whether the calendar answered at load, and with what video support.
    availability: Option<Result<Video, Trouble>>,
    /// Slots the caller said no to.
    declined: Vec<Interval>,
    /// The slots on offer when there are several to choose from, in the
    /// order said (the stage holds the first).
    options: Vec<Interval>,
    /// Busy time as loaded plus conflicts learned since, merged once.
    busy: Vec<Interval>,
    meeting: Option<Meeting>,
    email_tries: u8,
    last_prompt: Option<String>,
    /// Whether booking was ever brought up (decides the final `done`).
    engaged: bool,
    /// Set while proposing an alternative to a slot that was just taken.
    taken_lead: bool,
    /// Whether the zone is known (from the number, or the caller said it)
    /// rather than assumed to be the owner's.
    tz_known: bool,
    /// The zone is a guess from the number that is not worth trusting (an
    /// area code that spans zones): confirmed with the caller once.
    zone_guessed: bool,
    zone_tries: u8,
    /// A time the agent heard before the offer ("tomorrow afternoon").
    wanted: Option<String>,
    /// Lines said so far; the next line is `says + 1`.
    says: u32,
    /// Calendar changes asked for so far (names bookings, see
    /// [`BookRequest::attempt`]).
    attempts: u32,
    /// Whether the pipeline reports playback; without it every line counts
    /// as heard when sent.
    playback: bool,
    /// The first line that asked the question now open (asking it again
    /// keeps it), and whether the caller heard one of them in full.
    prompt_line: u32,
    prompt_heard: Heard,
    /// Every line up to this one was cut by a barge-in; their marks are
    /// Twilio echoing the cleared audio's marks, not playback.
    cut_upto: u32,
}

/// Whether the caller heard the open question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// Sent; no line asking it has been reported played in full.
    Pending,
    Full,
}

impl Default for Dialog {
    fn default() -> Self {
        Self::new()
    }
}

impl Dialog {
    pub fn new() -> Self {
        Self {
            stage: Stage::NotStarted,
            ctx: None,
            recipient: None,
            caller_tz: chrono_tz::UTC,
            email: None,
            availability: None,
            declined: Vec::new(),
            options: Vec::new(),
            busy: Vec::new(),
            meeting: None,
            email_tries: 0,
            last_prompt: None,
            engaged: false,
            taken_lead: false,
            tz_known: false,
            zone_guessed: false,
            zone_tries: 0,
            wanted: None,
            says: 0,
            attempts: 0,
            playback: false,
            prompt_line: 0,
            prompt_heard: Heard::Full,
            cut_upto: 0,
        }
    }

    /// Whether callbook holds the floor: from the offer until the booking
    /// conversation ends, and while the caller moves or cancels the meeting.
    pub fn holds_floor(&self) -> bool {
        !matches!(
            self.stage,
            Stage::NotStarted | Stage::Listening | Stage::Booked | Stage::Ended | Stage::Skipped(_)
        )
    }

    /// The number of the last line said.
    pub fn last_line(&self) -> u32 {
        self.says
    }

    /// The meeting booked on this call, as the `booked` status that
    /// announced it: a resumed call sends it again, since the frame may
    /// have been lost with the dropped socket.
    pub fn booked_status(&self) -> Option<Status> {
        self.meeting.as_ref().map(|m| Status::Booked {
            start: m.slot.start,
            end: m.slot.end,
            event_id: m.event_id.clone(),
            join_link: m.join_link.clone(),
        })
    }

    /// What a resumed call needs of this one.
    pub fn memo(&self) -> Memo {
        Memo {
            stage: self.stage.clone(),
            email: self.email.clone(),
            caller_tz: self.caller_tz.name().to_string(),
            tz_known: self.tz_known,
            zone_guessed: self.zone_guessed,
            meeting: self.meeting.clone(),
            declined: self.declined.clone(),
            options: self.options.clone(),
            engaged: self.engaged,
            email_tries: self.email_tries,
            last_prompt: self.last_prompt.clone(),
            wanted: self.wanted.clone(),
            says: self.says,
            attempts: self.attempts,
            playback: self.playback,
        }
    }

    /// Takes up an earlier socket's conversation. Work that never reported
    /// back (its instance died) is asked about again rather than assumed;
    /// a call that hung up keeps only its meeting. When callbook holds the
    /// floor, the open question is said again: the caller may not have
    /// heard it before the line dropped.
    fn resume(&mut self, memo: Memo, out: &mut Out) {
        out.says = out.says.max(memo.says);
        self.attempts = memo.attempts;
        self.playback = self.playback || memo.playback;
        self.meeting = memo.meeting;
        self.engaged = memo.engaged;
        if matches!(self.stage, Stage::Skipped(_) | Stage::NotStarted) {
            return;
        }
        self.email = memo.email;
        self.declined = memo.declined;
        self.options = memo.options;
        self.email_tries = memo.email_tries;
        self.last_prompt = memo.last_prompt;
        self.wanted = memo.wanted;
        if let Ok(tz) = memo.caller_tz.parse::<Tz>() {
            self.caller_tz = tz;
            self.tz_known = memo.tz_known;
            self.zone_guessed = memo.zone_guessed;
        }
        self.stage = match memo.stage {
            Stage::NotStarted | Stage::Skipped(_) => self.stage.clone(),
            Stage::Ended if self.meeting.is_some() => Stage::Booked,
            other => other,
        };
        if self.recover(out) {
            return;
        }
        if self.holds_floor() {
            let again = match &self.stage {
                Stage::Proposing(_) | Stage::ProposingMove(_) | Stage::ConfirmingCancel => {
                    self.ask_again_plain()
                }
                _ => self.last_prompt.clone(),
            };
            if let Some(line) = again {
                out.prompt(line);
            }
        }
    }

    /// Where the conversation is, by name (`listening`, `confirming_email`,
    /// …): for metrics and diagnostics, so it never carries what the caller
    /// said (no address, no time).
    pub fn stage_name(&self) -> &'static str {
        match self.stage {
            Stage::NotStarted => "not_started",
            Stage::Listening => "listening",
            Stage::Offered => "offered",
            Stage::AskingEmail => "asking_email",
            Stage::AskingLocal => "asking_local",
            Stage::AskingDomain(_) => "asking_domain",
            Stage::ConfirmingEmail(_) => "confirming_email",
            Stage::AskingZone(_) => "asking_zone",
            Stage::WaitingForSlots(_) => "waiting_for_slots",
            Stage::Proposing(_) => "proposing",
            Stage::Booking(_) => "booking",
            Stage::Booked => "booked",
            Stage::AskingMoveWhen => "asking_move_when",
            Stage::ProposingMove(_) => "proposing_move",
            Stage::Moving(_) => "moving",
            Stage::ConfirmingCancel => "confirming_cancel",
            Stage::Cancelling => "cancelling",
            Stage::Ended => "ended",
            Stage::Skipped(_) => "skipped",
        }
    }

    /// The zone the caller is believed to be in.
    pub fn caller_tz(&self) -> Tz {
        self.caller_tz
    }

    /// Whether the dialog has nothing more to do on this call.
    pub fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Ended | Stage::Skipped(_))
    }

    /// Feeds one input; returns what should happen next, in order. A
    /// transcript's effects start with [`Effect::Turn`].
    pub fn step(&mut self, input: Input, now: DateTime<Utc>) -> Vec<Effect> {
        let mut out = Out::new(self.says);
        let floor_before = self.holds_floor();
        let heard = matches!(input, Input::Heard(_));
        match input {
            Input::Start(setup) => self.start(setup, &mut out),
            Input::Heard(text) => self.heard(&text, now, &mut out),
            Input::Offer(offer) => self.offer(Some(offer), &mut out),
            Input::Cancel => self.cancel(&mut out),
            Input::PlaybackReported => self.playback = true,
            Input::Played(n) => {
                if n >= self.prompt_line && n > self.cut_upto {
                    self.prompt_heard = Heard::Full;
                }
            }
            Input::Cut { fully_spoken } => {
                if fully_spoken.is_some_and(|n| n >= self.prompt_line) {
                    self.prompt_heard = Heard::Full;
                }
                self.cut_upto = self.says;
            }
            Input::AvailabilityLoaded(result) => self.loaded(result, now, &mut out),
            Input::Booked(outcome) => self.booked(outcome, now, &mut out),
            Input::Moved(outcome) => self.moved(outcome, now, &mut out),
            Input::Cancelled(result) => self.cancelled(result, &mut out),
            Input::Resume(memo) => self.resume(*memo, &mut out),
            Input::StillWorking => {
                if matches!(
                    self.stage,
                    Stage::Booking(_)
                        | Stage::Moving(_)
                        | Stage::WaitingForSlots(_)
                        | Stage::Cancelling
                ) {
                    out.say("One moment while I check the calendar.");
                }
            }
            Input::Hangup(reason) => {
                // At shutdown every live call hears how it ended.
                if self.engaged || reason == EndReason::Shutdown {
                    out.status(Status::Done {
                        booked: self.meeting.is_some(),
                        reason,
                    });
                }
                self.stage = Stage::Ended;
            }
        }
        if let Some((line, prompt)) = out.prompt.take() {
            self.last_prompt = Some(prompt);
            // Asking the same question again keeps its first line: a mark
            // for any line asking it says the caller heard the question.
            if !out.again {
                self.prompt_line = line;
                self.prompt_heard = if self.playback {
                    Heard::Pending
                } else {
                    Heard::Full
                };
            }
        }
        self.says = out.says;
        let mut effects = out.effects;
        if heard {
            let floor = self.holds_floor();
            let spoke = effects.iter().any(|e| matches!(e, Effect::Say(_)));
            effects.insert(
                0,
                Effect::Turn {
                    callbook: floor_before || floor || spoke,
                    floor,
                },
            );
        }
        effects
    }

    fn start(&mut self, setup: Setup, out: &mut Out) {
        if self.stage != Stage::NotStarted {
            return;
        }
        match setup.booking {
            Ok(ctx) => {
                let hint = setup.recipient.phone.as_ref().map(phone::zone_hint);
                let guess = hint.and_then(|h| h.timezone);
                let confident = hint.is_some_and(|h| h.confident);
                self.tz_known = guess.is_some() && confident;
                self.zone_guessed = guess.is_some() && !confident;
                self.caller_tz = guess.unwrap_or(ctx.rules.timezone);
                self.ctx = Some(ctx);
                self.stage = Stage::Listening;
                out.push(Effect::LoadAvailability);
            }
            Err(reason) => {
                self.stage = Stage::Skipped(reason);
                out.status(Status::Skipped { reason });
            }
        }
        self.recipient = Some(setup.recipient);
    }

    /// Starts the booking conversation: asked by the pipeline (with what
    /// its agent already knows), or by the caller (`None`).
    fn offer(&mut self, from_pipeline: Option<Offer>, out: &mut Out) {
        match &self.stage {
            Stage::Skipped(reason) => {
                out.status(Status::Skipped { reason: *reason });
                return;
            }
            Stage::Listening | Stage::Ended if self.meeting.is_none() && self.ctx.is_some() => {}
            _ => return,
        }
        if let Some(Err(trouble)) = self.availability {
            if let Some(reason) = trouble.skip_reason() {
                self.stage = Stage::Skipped(reason);
                out.status(Status::Skipped { reason });
                return;
            }
        }
        self.engaged = true;
        self.email_tries = 0;
        out.status(Status::Offered);
        let offer = from_pipeline.clone().unwrap_or_default();
        self.wanted = offer.when.filter(|w| !w.trim().is_empty());
        let known = offer
            .email
            .as_deref()
            .and_then(|e| Email::parse(e).or_else(|| email::parse(e)));
        if let Some(address) = known {
            self.read_back(address, out);
        } else if from_pipeline.is_none() || offer.agreed {
            let line = if offer.agreed {
                "Great. What's the best email address to send the invite to?"
            } else {
                "Happy to set that up. What's the best email address to send the invite to?"
            };
            self.ask_email(line, out);
        } else {
            let ctx = self
                .ctx
                .as_ref()
                .map(|c| (c.rules.length_minutes, c.owner_name.clone()));
            let (minutes, owner) = ctx.unwrap_or((30, String::new()));
            out.prompt(format!(
                "Would you like to book a {minutes}-minute meeting with {owner}?"
            ));
            self.stage = Stage::Offered;
        }
    }

    fn cancel(&mut self, out: &mut Out) {
        let in_flow = matches!(
            self.stage,
            Stage::Offered
                | Stage::AskingEmail
                | Stage::AskingLocal
                | Stage::AskingDomain(_)
                | Stage::ConfirmingEmail(_)
                | Stage::WaitingForSlots(_)
                | Stage::Proposing(_)
                | Stage::AskingMoveWhen
                | Stage::ProposingMove(_)
        );
        if in_flow {
            out.status(Status::Done {
                booked: self.meeting.is_some(),
                reason: EndReason::HandedBack,
            });
            self.stage = if self.meeting.is_some() {
                Stage::Booked
            } else {
                Stage::Ended
            };
        }
    }

    fn heard(&mut self, text: &str, now: DateTime<Utc>, out: &mut Out) {
        let intent = intent::detect(text);
        let active = !matches!(
            self.stage,
            Stage::NotStarted | Stage::Listening | Stage::Ended | Stage::Skipped(_) | Stage::Booked
        );
        if active {
            match intent {
                Some(Intent::Repeat) => {
                    if let Some(p) = self.last_prompt.clone() {
                        out.prompt_again(p);
                    }
                    return;
                }
                Some(Intent::HoldOn) => {
                    out.say("Sure, take your time.");
                    return;
                }
                _ => {}
            }
            if self.prompt_heard != Heard::Full && yes_no::classify(text) == Answer::Yes {
                if let Some(again) = self.ask_again() {
                    out.prompt_again(again);
                    return;
                }
            }
        }
        match self.stage.clone() {
            Stage::NotStarted => {}
            Stage::Listening | Stage::Ended => {
                if intent == Some(Intent::WantsMeeting) {
                    self.offer(None, out);
                }
            }
            Stage::Skipped(reason) => {
                if intent == Some(Intent::WantsMeeting) {
                    out.status(Status::Skipped { reason });
                }
            }
            Stage::Offered => self.answer_offer(text, now, out),
            Stage::AskingEmail => self.hear_email(text, out),
            Stage::AskingLocal => self.hear_local(text, out),
            Stage::AskingDomain(local) => self.hear_domain(local, text, out),
            Stage::ConfirmingEmail(candidate) => self.confirm_email(candidate, text, now, out),
            Stage::AskingZone(pref) => self.hear_zone(pref, text, now, out),
            Stage::WaitingForSlots(_) => {
                if let Some(pref) = self.preference(text, now) {
                    self.stage = Stage::WaitingForSlots(Some(pref));
                }
            }
            Stage::Proposing(slot) => self.answer_proposal(slot, text, now, false, out),
            Stage::ProposingMove(slot) => self.answer_proposal(slot, text, now, true, out),
            Stage::Booking(_) | Stage::Moving(_) => {}
            Stage::ConfirmingCancel => match yes_no::classify(text) {
                Answer::Yes => match self.meeting.as_ref() {
                    Some(m) => {
                        out.push(Effect::CancelMeeting {
                            event_id: m.event_id.clone(),
                            claim: m.claim.clone(),
                        });
                        self.stage = Stage::Cancelling;
                    }
                    None => self.stage = Stage::Ended,
                },
                Answer::No => {
                    self.stage = Stage::Booked;
                    out.say("Okay, your meeting stays as booked.");
                }
                Answer::Unclear => out.prompt("Should I cancel the meeting?".to_string()),
            },
            Stage::Cancelling => {}
            Stage::Booked if intent == Some(Intent::CancelMeeting) => {
                if let (Some(m), Some(ctx)) = (&self.meeting, &self.ctx) {
                    let said = speech::slot(m.slot.start, ctx.rules.timezone, self.caller_tz);
                    out.prompt(format!(
                        "Just to confirm, you'd like me to cancel your meeting on {said}?"
                    ));
                    self.stage = Stage::ConfirmingCancel;
                }
            }
            Stage::Booked => {
                if intent == Some(Intent::Reschedule) {
                    match self.preference(text, now) {
                        Some(pref) => self.propose(Some(pref), now, true, out),
                        None => {
                            self.stage = Stage::AskingMoveWhen;
                            out.prompt("Sure. What day and time would work better?".to_string());
                        }
                    }
                }
            }
            Stage::AskingMoveWhen => match self.preference(text, now) {
                Some(pref) => self.propose(Some(pref), now, true, out),
                None if yes_no::classify(text) == Answer::No => {
                    self.stage = Stage::Booked;
                    out.say("No problem, your meeting stays as it is.");
                }
                None => out.prompt("What day or time would you prefer?".to_string()),
            },
        }
    }

    fn answer_offer(&mut self, text: &str, now: DateTime<Utc>, out: &mut Out) {
        if let Some(found) = email::parse(text) {
            self.read_back(found, out);
            return;
        }
        // "How about Friday?" to the offer asks for the meeting at that
        // time: a yes, and the time steers the first proposal.
        if yes_no::asks_for_another(text) && self.preference(text, now).is_some() {
            self.wanted = Some(text.to_string());
            return self.ask_email(
                "Great. What's the best email address to send the invite to?",
                out,
            );
        }
        match yes_no::classify(text) {
            Answer::Yes => self.ask_email(
                "Great. What's the best email address to send the invite to?",
                out,
            ),
            Answer::No => {
                self.stage = Stage::Ended;
                out.status(Status::Declined);
                out.say("No problem at all.");
            }
            Answer::Unclear => {
                out.prompt("Sorry, would you like me to set up a quick meeting?".to_string());
            }
        }
    }

    fn ask_email(&mut self, line: &str, out: &mut Out) {
        self.stage = Stage::AskingEmail;
        out.prompt(line.to_string());
    }

    fn hear_email(&mut self, text: &str, out: &mut Out) {
        if let Some(found) = email::parse(text) {
            self.read_back(found, out);
            return;
        }
        if yes_no::classify(text) == Answer::No && understand::words(text).len() <= 6 {
            self.stage = Stage::Ended;
            out.status(Status::Declined);
            out.say("No problem at all.");
            return;
        }
        self.email_failed(
            "Sorry, I didn't catch that. Could you spell the email address for me, letter by letter?",
            out,
        );
    }

    /// Counts a failed attempt at the address: the first gets the question
    /// again, the second asks for the two halves separately, the third
    /// gives up.
    fn email_failed(&mut self, again: &str, out: &mut Out) {
        self.email_tries += 1;
        match self.email_tries {
            1 => self.ask_email(again, out),
            2 => {
                self.stage = Stage::AskingLocal;
                out.prompt(
                    "Let's take it in two parts. What comes before the at sign? Spelling it out helps.".to_string(),
                );
            }
            _ => self.give_up_on_email(out),
        }
    }

    fn hear_local(&mut self, text: &str, out: &mut Out) {
        match email::parse(text) {
            Some(whole) => self.read_back(whole, out),
            None => match email::parse_local_any(text) {
                Some(local) => {
                    self.stage = Stage::AskingDomain(local);
                    out.prompt("Thanks. And what comes after the at sign?".to_string());
                }
                None => out.prompt(
                    "Sorry, could you spell the part before the at sign, letter by letter?"
                        .to_string(),
                ),
            },
        }
    }

    fn hear_domain(&mut self, local: String, text: &str, out: &mut Out) {
        let found = email::parse_domain(text).and_then(|d| Email::parse(&format!("{local}@{d}")));
        match found {
            Some(whole) => self.read_back(whole, out),
            None => out.prompt(
                "Sorry, what comes after the at sign? For example, gmail dot com.".to_string(),
            ),
        }
    }

    fn read_back(&mut self, found: Email, out: &mut Out) {
        out.prompt(format!(
            "Thanks. Let me read that back: {}. Is that right?",
            speech::read_back(&found)
        ));
        self.stage = Stage::ConfirmingEmail(found);
    }

    fn give_up_on_email(&mut self, out: &mut Out) {
        self.stage = Stage::Ended;
        out.status(Status::Failed {
            reason: FailReason::EmailUnconfirmed,
        });
        out.say("I'm sorry, I'm having trouble getting the email down. Someone from our team will follow up to set up the meeting.");
    }

    fn confirm_email(&mut self, candidate: Email, text: &str, now: DateTime<Utc>, out: &mut Out) {
        let answer = yes_no::classify(text);
        // A yes that says another address ("yeah, it's j o n") is a
        // correction: the new address is read back, never confirmed unheard.
        if answer == Answer::Yes {
            if let Some(Correction::Replace(fixed)) = email::correct(&candidate, text) {
                return self.read_back(fixed, out);
            }
        } else {
            match email::correct(&candidate, text) {
                Some(Correction::Replace(fixed)) => return self.read_back(fixed, out),
                Some(Correction::Reset) => {
                    return self.ask_email("No problem. What's the email address?", out);
                }
                None => {}
            }
        }
        match answer {
            Answer::Yes => {
                out.status(Status::EmailConfirmed {
                    email: candidate.clone(),
                });
                self.email = Some(candidate);
                let pref = self.preference(text, now);
                self.propose_when_ready(pref, now, out);
            }
            Answer::No => self.email_failed(
                "Sorry about that. Could you say the email address again, slowly?",
                out,
            ),
            Answer::Unclear => out.prompt(format!(
                "Just to check, is it {}?",
                speech::read_back(&candidate)
            )),
        }
    }

    /// Whether a time the caller said is the slot on offer ("yes, 2 PM
    /// is fine", "Tuesday works") rather than another ("Thursday at 10").
    fn names_slot(&self, pref: &TimePref, slot: Interval, now: DateTime<Utc>) -> bool {
        let tz = self.caller_tz;
        match pref.target(Some(slot.start), now, tz) {
            Some(Target::Instant(t)) => t == slot.start,
            Some(Target::Window(w)) => w.contains(slot.start),
            Some(Target::Daily {
                from,
                until,
                start,
                end,
            }) => {
                let local = slot.start.with_timezone(&tz);
                let day = local.date_naive();
                day >= from
                    && until.is_none_or(|u| day < u)
                    && local.time() >= start
                    && local.time() < end
            }
            Some(Target::Before(_) | Target::After(_)) => false,
            None => true,
        }
    }

    /// The caller's time preference in this utterance, if any, in their zone.
    fn preference(&self, text: &str, now: DateTime<Utc>) -> Option<TimePref> {
        when::parse(text, now.with_timezone(&self.caller_tz).naive_local())
    }

    /// Calendar work whose outcome never came back (the instance running
    /// it died) is asked for again under the same attempt, so it is the
    /// same booking, move or cancellation: found if it was made, made if
    /// not. Returns whether there was such work.
    fn recover(&mut self, out: &mut Out) -> bool {
        let effect = match self.stage.clone() {
            Stage::Booking(slot) => match (&self.email, &self.recipient) {
                (Some(email), Some(recipient)) => Effect::Book(BookRequest {
                    slot,
                    email: email.clone(),
                    name: recipient.full_name(),
                    attempt: self.attempts,
                    recover: true,
                }),
                _ => {
                    self.stage = Stage::Proposing(slot);
                    return false;
                }
            },
            Stage::Moving(slot) => match &self.meeting {
                Some(m) => Effect::Move {
                    event_id: m.event_id.clone(),
                    from: m.slot,
                    to: slot,
                    attempt: self.attempts,
                    claim: m.claim.clone(),
                    recover: true,
                },
                None => {
                    self.stage = Stage::Ended;
                    return false;
                }
            },
            Stage::Cancelling => match &self.meeting {
                Some(m) => Effect::CancelMeeting {
                    event_id: m.event_id.clone(),
                    claim: m.claim.clone(),
                },
                None => {
                    self.stage = Stage::Ended;
                    return false;
                }
            },
            _ => return false,
        };
        out.push(effect);
        out.say("Sorry, we got cut off. One moment while I finish that.");
        true
    }

    /// The open question again, for a "yes" the caller gave without
    /// having heard all of it. `None` where a yes commits to nothing.
    fn ask_again(&self) -> Option<String> {
        self.question_again("Sorry, I may have talked over you.")
    }

    /// The open question again after the line dropped.
    fn ask_again_plain(&self) -> Option<String> {
        self.question_again("Sorry, we got cut off.")
    }

    fn question_again(&self, lead: &str) -> Option<String> {
        let owner = self
            .ctx
            .as_ref()
            .map_or(self.caller_tz, |c| c.rules.timezone);
        match &self.stage {
            Stage::ConfirmingEmail(candidate) => Some(format!(
                "{lead} Let me read it again: {}. Is that right?",
                speech::read_back(candidate)
            )),
            Stage::Proposing(_) | Stage::ProposingMove(_) if self.options.len() > 1 => {
                Some(format!(
                    "{lead} I have {}. Which works best?",
                    speech::options(&self.options, owner, self.caller_tz)
                ))
            }
            Stage::Proposing(slot) | Stage::ProposingMove(slot) => Some(format!(
                "{lead} That's {}. Does that work for you?",
                speech::slot(slot.start, owner, self.caller_tz)
            )),
            Stage::ConfirmingCancel => self.meeting.as_ref().map(|m| {
                format!(
                    "{lead} Should I cancel your meeting on {}?",
                    speech::slot(m.slot.start, owner, self.caller_tz)
                )
            }),
            _ => None,
        }
    }

    fn hear_zone(&mut self, pref: Option<TimePref>, text: &str, now: DateTime<Utc>, out: &mut Out) {
        if let Some(tz) = understand::timezone::parse(text) {
            self.caller_tz = tz;
            self.tz_known = true;
            return self.propose_when_ready(pref, now, out);
        }
        if self.zone_guessed {
            match yes_no::classify(text) {
                Answer::Yes => {
                    self.tz_known = true;
                    return self.propose_when_ready(pref, now, out);
                }
                Answer::No => {
                    self.zone_guessed = false;
                    out.prompt("Which time zone are you in, then?".to_string());
                    return;
                }
                Answer::Unclear => {}
            }
        }
        self.zone_tries += 1;
        if self.zone_tries < 2 {
            out.prompt(
                "Sorry, which time zone are you in? For example Eastern, Central, Mountain or Pacific."
                    .to_string(),
            );
            return;
        }
        // Times go on in the owner's zone, said as such.
        self.tz_known = true;
        self.propose_when_ready(pref, now, out);
    }

    fn propose_when_ready(&mut self, pref: Option<TimePref>, now: DateTime<Utc>, out: &mut Out) {
        if !self.tz_known {
            self.stage = Stage::AskingZone(pref);
            let question = if self.zone_guessed {
                format!("And are you on {} time?", speech::zone_name(self.caller_tz))
            } else {
                "And what time zone are you in, so I can offer times that suit you?".to_string()
            };
            out.prompt(question);
            return;
        }
        let pref = pref.or_else(|| {
            let wanted = self.wanted.take()?;
            self.preference(&wanted, now)
        });
        match &self.availability {
            Some(Ok(_)) => self.propose(pref, now, false, out),
            Some(Err(trouble)) => {
                let reason = trouble.fail_reason();
                self.fail(reason, out);
            }
            None => {
                self.stage = Stage::WaitingForSlots(pref);
                out.say("Great. One moment while I check the calendar.");
            }
        }
    }

    fn fail(&mut self, reason: FailReason, out: &mut Out) {
        self.stage = if self.meeting.is_some() {
            Stage::Booked
        } else {
            Stage::Ended
        };
        out.status(Status::Failed { reason });
        out.say(match reason {
            FailReason::NoAvailability => {
                "I'm sorry, I don't see any open times in the next couple of weeks. Someone from our team will reach out to find a time."
            }
            FailReason::OutcomeUnknown => {
                "I'm sorry, the calendar didn't confirm that in time. If it went through, the invite will reach your inbox in a few minutes; if not, someone from our team will follow up by email."
            }
            _ => "I'm sorry, I can't reach the calendar right now. Someone from our team will follow up by email to set up a time.",
        });
    }

    fn loaded(&mut self, result: Result<Availability, Trouble>, now: DateTime<Utc>, out: &mut Out) {
        let result = result.map(|a| {
            let mut busy = a.busy;
            busy.append(&mut self.busy);
            self.busy = merge_busy(busy);
            a.video
        });
        self.availability = Some(result.clone());
        match (&self.stage, result) {
            (Stage::WaitingForSlots(pref), Ok(_)) => {
                let pref = pref.clone();
                self.propose(pref, now, false, out);
            }
            (Stage::WaitingForSlots(_), Err(trouble)) => self.fail(trouble.fail_reason(), out),
            (Stage::Listening, Err(trouble)) => {
                if let Some(reason) = trouble.skip_reason() {
                    self.stage = Stage::Skipped(reason);
                    out.status(Status::Skipped { reason });
                }
            }
            _ => {}
        }
    }

    /// Finds the slot to offer. The flag says whether it matches what the
    /// caller asked for (false: it is only the nearest alternative).
    fn find(
        &self,
        pref: Option<&TimePref>,
        anchor: Option<Interval>,
        now: DateTime<Utc>,
    ) -> Option<(Interval, bool)> {
        let ctx = self.ctx.as_ref()?;
        let finder = SlotFinder::from_merged(&ctx.rules, &self.busy, now);
        let mut exclude = self.declined.clone();
        if let Some(m) = &self.meeting {
            exclude.push(m.slot);
        }
        let Some(pref) = pref else {
            // The next slot after the one on offer, or the first one; one
            // inside the caller's waking day when there is one, so a
            // Pacific caller is not offered 6 AM their time.
            let after = anchor.map_or(now, |a| a.start + Duration::seconds(1));
            let mut candidates = finder
                .free_from(after)
                .filter(|s| !exclude.contains(s))
                .peekable();
            let first = candidates.peek().copied();
            let tz = self.caller_tz;
            let found = candidates.find(|s| fits_callers_day(s, tz)).or(first);
            return found.map(|s| (s, true));
        };
        let nearest =
            |t: DateTime<Utc>| finder.nearest(t, 1, &exclude).first().map(|s| (*s, false));
        match pref.target(anchor.map(|a| a.start), now, self.caller_tz)? {
            Target::Instant(t) => {
                let exact = Interval::new(t, t + ctx.rules.length());
                if finder.is_free(exact) && !exclude.contains(&exact) {
                    Some((exact, true))
                } else {
                    nearest(t)
                }
            }
            Target::Window(w) => match finder.free_within(w, self.caller_tz, &exclude).first() {
                Some(s) => Some((*s, true)),
                None => nearest(w.start),
            },
            Target::Daily {
                from,
                until,
                start,
                end,
            } => {
                let tz = self.caller_tz;
                finder
                    .free()
                    .take_while(|s| {
                        until.is_none_or(|u| s.start.with_timezone(&tz).date_naive() < u)
                    })
                    .find(|s| {
                        let a = s.start.with_timezone(&tz);
                        let b = s.end.with_timezone(&tz);
                        a.date_naive() >= from
                            && a.time() >= start
                            && (b.time() <= end || b.date_naive() > a.date_naive() && end >= start)
                            && !exclude.contains(s)
                    })
                    .map(|s| (s, true))
                    // Nothing inside the days named: the nearest to their start.
                    .or_else(|| nearest(crate::schedule::resolve_local(tz, from.and_time(start))))
            }
            Target::Before(t) => finder
                .free_before(t)
                .find(|s| !exclude.contains(s))
                .map(|s| (s, true)),
            Target::After(t) => finder
                .free_from(t + Duration::seconds(1))
                .find(|s| !exclude.contains(s))
                .map(|s| (s, true)),
        }
    }

    /// Proposes a slot for a new booking or, with `moving`, for the meeting
    /// already booked.
    fn propose(&mut self, pref: Option<TimePref>, now: DateTime<Utc>, moving: bool, out: &mut Out) {
        let anchor = match &self.stage {
            Stage::Proposing(s) | Stage::ProposingMove(s) => Some(*s),
            _ if moving => self.meeting.as_ref().map(|m| m.slot),
            _ => None,
        };
        let Some(ctx) = self.ctx.clone() else { return };
        let found = self.find(pref.as_ref(), anchor, now);
        let options = self.alternatives(pref.as_ref(), anchor, found, now, moving);
        if options.len() >= 2 {
            let list = speech::options(&options, ctx.rules.timezone, self.caller_tz);
            let lead = match (found, moving) {
                _ if self.taken_lead => "Sorry, that slot was just taken. I have",
                (Some((_, true)), _) => "I have",
                (_, true) => "I don't have anything open then. I have",
                (_, false) => "I don't have anything open then. I have",
            };
            out.status(Status::Proposed {
                start: options[0].start,
                end: options[0].end,
                reschedule: moving,
                options: options.clone(),
            });
            out.prompt(format!("{lead} {list}. Which works best?"));
            self.stage = if moving {
                Stage::ProposingMove(options[0])
            } else {
                Stage::Proposing(options[0])
            };
            self.options = options;
            return;
        }
        self.options.clear();
        match found {
            Some((slot, matched)) => {
                let said = speech::slot(slot.start, ctx.rules.timezone, self.caller_tz);
                let question = if moving {
                    "Shall I move it there?"
                } else {
                    "Does that work for you?"
                };
                let line = match (matched, pref.is_some(), moving) {
                    _ if self.taken_lead => {
                        format!("Sorry, that slot was just taken. The closest I have is {said}. {question}")
                    }
                    (true, _, true) => format!("I can move it to {said}. Shall I?"),
                    (true, _, false) => format!("I have {said}. {question}"),
                    (false, true, _) => format!(
                        "I don't have anything open then. The closest I have is {said}. {question}"
                    ),
                    (false, false, _) => format!("How about {said}? {question}"),
                };
                out.status(Status::Proposed {
                    start: slot.start,
                    end: slot.end,
                    reschedule: moving,
                    options: Vec::new(),
                });
                out.prompt(line);
                self.stage = if moving {
                    Stage::ProposingMove(slot)
                } else {
                    Stage::Proposing(slot)
                };
            }
            None if self.taken_lead => {
                out.say("Sorry, that slot was just taken.");
                self.fail(FailReason::NoAvailability, out);
            }
            None if moving => {
                self.stage = Stage::AskingMoveWhen;
                out.prompt(
                    "I don't see anything open then. Is there another day that works?".to_string(),
                );
            }
            None if pref.as_ref().is_some_and(|p| p.shift.is_some()) => {
                out.prompt("That's the closest I have. Does it work for you?".to_string());
            }
            None => self.fail(FailReason::NoAvailability, out),
        }
    }

    /// Several slots to choose from, when there should be: the slot asked
    /// for (or held) is not available, or the caller gave a window for the
    /// first proposal ("afternoons next week"). Empty when one will do.
    fn alternatives(
        &self,
        pref: Option<&TimePref>,
        anchor: Option<Interval>,
        found: Option<(Interval, bool)>,
        now: DateTime<Utc>,
        moving: bool,
    ) -> Vec<Interval> {
        let Some(ctx) = &self.ctx else {
            return Vec::new();
        };
        let tz = self.caller_tz;
        let target = pref.and_then(|p| p.target(anchor.map(|a| a.start), now, tz));
        let finder = SlotFinder::from_merged(&ctx.rules, &self.busy, now);
        let mut exclude = self.declined.clone();
        if let Some(m) = &self.meeting {
            exclude.push(m.slot);
        }
        // A move to another day never lands back on the day it leaves
        // unless nothing else is free.
        let target_day = |t: &Target| match t {
            Target::Instant(x) | Target::Before(x) | Target::After(x) => {
                Some(x.with_timezone(&tz).date_naive())
            }
            Target::Window(w) => Some(w.start.with_timezone(&tz).date_naive()),
            Target::Daily { from, .. } => Some(*from),
        };
        let avoid = match (&self.meeting, moving) {
            (Some(m), true) => {
                let leaving = m.slot.start.with_timezone(&tz).date_naive();
                let wanted = target.as_ref().and_then(target_day);
                (wanted != Some(leaving)).then_some(leaving)
            }
            _ => None,
        };
        let unmatched = matches!(found, Some((_, false)) | None) && pref.is_some();
        match (&target, found) {
            (Some(Target::Window(w)), Some((first, true))) if !moving => finder
                .alternatives(first.start, tz, None, &exclude, ALTERNATIVES)
                .into_iter()
                .filter(|s| w.contains(s.start))
                .collect(),
            // "Afternoons next week": the same part of each day, for a week.
            (
                Some(Target::Daily {
                    from,
                    until,
                    start,
                    end,
                }),
                Some((first, true)),
            ) if !moving => {
                let last = until.unwrap_or(*from + Duration::days(7));
                finder
                    .alternatives(first.start, tz, None, &exclude, ALTERNATIVES)
                    .into_iter()
                    .filter(|s| {
                        let local = s.start.with_timezone(&tz);
                        let day = local.date_naive();
                        day >= *from && day < last && local.time() >= *start && local.time() < *end
                    })
                    .collect()
            }
            _ if self.taken_lead || unmatched => {
                let at = match target {
                    Some(Target::Instant(t) | Target::Before(t) | Target::After(t)) => t,
                    // A day without a time: that day at the time on offer (or
                    // booked), else its start.
                    Some(Target::Window(w)) => match anchor {
                        Some(a) => crate::schedule::resolve_local(
                            tz,
                            w.start
                                .with_timezone(&tz)
                                .date_naive()
                                .and_time(a.start.with_timezone(&tz).time()),
                        ),
                        None => w.start,
                    },
                    _ => match found {
                        Some((s, _)) => s.start,
                        None => return Vec::new(),
                    },
                };
                finder.alternatives(at, tz, avoid, &exclude, ALTERNATIVES)
            }
            _ => Vec::new(),
        }
    }

    /// The caller's answer to several slots on offer: a pick books (or
    /// moves) at once; "none of those" moves on; anything else is read as
    /// an answer to a single proposal would be, a plain yes asking which.
    fn answer_options(
        &mut self,
        text: &str,
        now: DateTime<Utc>,
        moving: bool,
        out: &mut Out,
    ) -> bool {
        let Some(owner) = self.ctx.as_ref().map(|c| c.rules.timezone) else {
            return false;
        };
        let options = self.options.clone();
        match choice::pick(text, &options, now, owner, self.caller_tz) {
            Choice::Pick(i) => {
                let slot = options[i];
                self.options.clear();
                self.confirm_slot(slot, moving, out);
                true
            }
            Choice::NoneOfThese => {
                self.declined.extend(options.iter().copied());
                self.options.clear();
                // "None of those, how about Thursday at 10": the new time.
                if let Some(pref) = self.preference(text, now) {
                    self.propose(Some(pref), now, moving, out);
                } else if moving {
                    self.stage = Stage::AskingMoveWhen;
                    out.prompt("No problem. What day and time would work better?".to_string());
                } else {
                    self.propose(None, now, false, out);
                }
                true
            }
            Choice::Ambiguous => {
                out.prompt_again(format!(
                    "Sorry, which one: {}?",
                    speech::options(&options, owner, self.caller_tz)
                ));
                true
            }
            // A new time is the proposal's business; a bare yes asks which,
            // a bare no moves on.
            Choice::Unrelated if self.preference(text, now).is_some() => false,
            Choice::Unrelated => match yes_no::classify(text) {
                Answer::Yes => {
                    out.prompt_again(format!(
                        "Great, which one works best: {}?",
                        speech::options(&options, owner, self.caller_tz)
                    ));
                    true
                }
                Answer::No => {
                    self.declined.extend(options.iter().copied());
                    self.options.clear();
                    self.propose(None, now, moving, out);
                    true
                }
                Answer::Unclear => false,
            },
        }
    }

    fn answer_proposal(
        &mut self,
        slot: Interval,
        text: &str,
        now: DateTime<Utc>,
        moving: bool,
        out: &mut Out,
    ) {
        if self.options.len() > 1 && self.answer_options(text, now, moving, out) {
            return;
        }
        if let Some(tz) = understand::timezone::parse(text) {
            if tz != self.caller_tz {
                self.caller_tz = tz;
                let owner = self.ctx.as_ref().map_or(tz, |c| c.rules.timezone);
                out.prompt(format!(
                    "Got it. That's {}. Does that work for you?",
                    speech::slot(slot.start, owner, tz)
                ));
                return;
            }
        }
        let answer = yes_no::classify(text);
        let pref = self.preference(text, now);
        // "Yeah, Thursday at 10 works" to Tuesday at 2 is a counter-proposal:
        // a yes counts only for a time that is the one on offer.
        let elsewhere = pref
            .as_ref()
            .is_some_and(|p| !self.names_slot(p, slot, now));
        match (answer, pref) {
            (Answer::Yes, _) if !elsewhere => self.confirm_slot(slot, moving, out),
            (_, Some(pref)) => {
                if answer != Answer::Unclear {
                    self.declined.push(slot);
                }
                self.propose(Some(pref), now, moving, out);
            }
            (Answer::Yes, None) => self.confirm_slot(slot, moving, out),
            (Answer::No, None) => {
                self.declined.push(slot);
                self.propose(None, now, moving, out);
            }
            (Answer::Unclear, None) => {
                let owner = self
                    .ctx
                    .as_ref()
                    .map_or(self.caller_tz, |c| c.rules.timezone);
                out.prompt(format!(
                    "Would {} work for you?",
                    speech::slot_short(slot, owner)
                ));
            }
        }
    }

    fn confirm_slot(&mut self, slot: Interval, moving: bool, out: &mut Out) {
        if moving {
            if let Some(m) = &self.meeting {
                self.attempts += 1;
                out.push(Effect::Move {
                    event_id: m.event_id.clone(),
                    from: m.slot,
                    to: slot,
                    attempt: self.attempts,
                    claim: m.claim.clone(),
                    recover: false,
                });
                self.stage = Stage::Moving(slot);
            }
            return;
        }
        let (Some(email), Some(recipient)) = (self.email.clone(), self.recipient.as_ref()) else {
            return;
        };
        self.attempts += 1;
        out.push(Effect::Book(BookRequest {
            slot,
            email,
            name: recipient.full_name(),
            attempt: self.attempts,
            recover: false,
        }));
        self.stage = Stage::Booking(slot);
    }

    fn booked(&mut self, outcome: Outcome, now: DateTime<Utc>, out: &mut Out) {
        match outcome {
            Outcome::Done {
                slot,
                event_id,
                join_link,
                claim,
            } => {
                out.status(Status::Booked {
                    start: slot.start,
                    end: slot.end,
                    event_id: event_id.clone(),
                    join_link: join_link.clone(),
                });
                let live = matches!(self.stage, Stage::Booking(_));
                self.meeting = Some(Meeting {
                    slot,
                    event_id,
                    join_link,
                    claim,
                });
                if live {
                    self.stage = Stage::Booked;
                    let line = self.booked_line(slot);
                    out.say(line);
                }
            }
            Outcome::Taken { conflict } => self.slot_taken(conflict, now, false, out),
            Outcome::Failed(trouble) => self.fail(trouble.fail_reason(), out),
        }
    }

    fn slot_taken(&mut self, conflict: Interval, now: DateTime<Utc>, moving: bool, out: &mut Out) {
        let slot = match self.stage {
            Stage::Booking(s) | Stage::Moving(s) => s,
            _ => return,
        };
        let mut busy = std::mem::take(&mut self.busy);
        busy.push(conflict);
        self.busy = merge_busy(busy);
        out.status(Status::Taken {
            start: slot.start,
            end: slot.end,
        });
        self.stage = if moving {
            Stage::ProposingMove(slot)
        } else {
            Stage::Proposing(slot)
        };
        let near = when::TimePref {
            instant: Some(slot.start.with_timezone(&self.caller_tz).naive_local()),
            ..Default::default()
        };
        self.declined.push(slot);
        self.taken_lead = true;
        self.propose(Some(near), now, moving, out);
        self.taken_lead = false;
    }

    fn booked_line(&self, slot: Interval) -> String {
        let Some(ctx) = &self.ctx else {
            return String::new();
        };
        let said = speech::slot(slot.start, ctx.rules.timezone, self.caller_tz);
        let video = match &self.availability {
            Some(Ok(video)) => video.clone(),
            _ => Video::Unavailable,
        };
        let details = match (
            &ctx.meeting,
            video,
            self.meeting.as_ref().and_then(|m| m.join_link.as_ref()),
        ) {
            (MeetingKind::Video, Video::Available(name), Some(_)) => {
                format!("The invite with the {name} link is on its way to your inbox.")
            }
            (MeetingKind::Phone { .. }, _, _) => format!(
                "{} will call you then, and the invite is on its way to your inbox.",
                ctx.owner_name
            ),
            (MeetingKind::InPerson { address }, _, _) => {
                format!("It's at {address}, and the invite is on its way to your inbox.")
            }
            _ => "The invite with all the details is on its way to your inbox.".to_string(),
        };
        format!("You're all set for {said}. {details}")
    }

    fn cancelled(&mut self, result: Result<(), Trouble>, out: &mut Out) {
        match (result, self.meeting.take()) {
            (Ok(()), Some(m)) => {
                out.status(Status::Cancelled {
                    event_id: m.event_id,
                    start: m.slot.start,
                });
                out.say("Done, I've cancelled it. You'll get a cancellation email.");
                self.stage = Stage::Ended;
            }
            (Err(trouble), meeting) => {
                self.meeting = meeting;
                self.stage = Stage::Booked;
                out.status(Status::Failed {
                    reason: trouble.fail_reason(),
                });
                out.say("I'm sorry, I couldn't cancel it just now. Someone from our team will take care of it.");
            }
            (Ok(()), None) => self.stage = Stage::Ended,
        }
    }

    fn moved(&mut self, outcome: Outcome, now: DateTime<Utc>, out: &mut Out) {
        match outcome {
            Outcome::Done {
                slot,
                event_id,
                claim,
                ..
            } => {
                let previous = self.meeting.as_ref().map_or(slot.start, |m| m.slot.start);
                out.status(Status::Rescheduled {
                    start: slot.start,
                    end: slot.end,
                    event_id,
                    previous_start: previous,
                });
                if let Some(m) = &mut self.meeting {
                    m.slot = slot;
                    m.claim = claim;
                }
                self.stage = Stage::Booked;
                if let Some(ctx) = &self.ctx {
                    out.say(format!(
                        "Done. Your meeting is now {}. The updated invite is on its way.",
                        speech::slot(slot.start, ctx.rules.timezone, self.caller_tz)
                    ));
                }
            }
            Outcome::Taken { conflict } => self.slot_taken(conflict, now, true, out),
            Outcome::Failed(trouble) => {
                self.stage = Stage::Booked;
                out.status(Status::Failed {
                    reason: trouble.fail_reason(),
                });
                out.say(if trouble == Trouble::Unconfirmed {
                    "I'm sorry, the calendar didn't confirm the change in time. If it went through, an updated invite is on its way; if not, your meeting stays as booked. Someone from our team will follow up."
                } else {
                    "I'm sorry, I couldn't move it just now, so your meeting stays as booked. Someone from our team will follow up."
                });
            }
        }
    }
}

/// Collects effects and numbers lines; a prompt is a line that asks
/// something, which the caller may ask to hear again.
struct Out {
    effects: Vec<Effect>,
    /// The last line's number and text, when it was a question.
    prompt: Option<(u32, String)>,
    /// The prompt asks the open question again.
    again: bool,
    says: u32,
}

impl Out {
    fn new(says: u32) -> Self {
        Self {
            effects: Vec::new(),
            prompt: None,
            again: false,
            says,
        }
    }

    fn push(&mut self, e: Effect) {
        self.effects.push(e);
    }

    fn say(&mut self, text: impl Into<String>) -> u32 {
        self.says += 1;
        self.effects.push(Effect::Say(Line {
            id: self.says,
            text: text.into(),
        }));
        self.says
    }

    fn prompt(&mut self, text: String) {
        let id = self.say(text.clone());
        self.prompt = Some((id, text));
        self.again = false;
    }

    /// The open question, asked again in other words.
    fn prompt_again(&mut self, text: String) {
        self.prompt(text);
        self.again = true;
    }

    fn status(&mut self, s: Status) {
        self.effects.push(Effect::Status(s));
    }
}

/// How many slots to offer when the one asked for is not available.
const ALTERNATIVES: usize = 3;

/// The caller's waking hours: a meeting offered unprompted starts at 8 AM
/// or later and ends by 9 PM, the caller's time.
fn fits_callers_day(slot: &Interval, tz: Tz) -> bool {
    let start = slot.start.with_timezone(&tz);
    let end = slot.end.with_timezone(&tz);
    let eight = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default();
    let nine_pm = chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default();
    start.date_naive() == end.date_naive() && start.time() >= eight && end.time() <= nine_pm
}

#[cfg(test)]
mod tests;
