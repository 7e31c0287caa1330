//! Carrying out the dialog's I/O effects.
//!
//! Booking is a short saga: hold the padded interval in the ledger (this
//! decides the winner between calls), re-check the provider's free/busy for
//! events made outside callbook, create the event with an id derived from the
//! booking, then commit the hold. Any failure before the event exists
//! releases the hold, so a failed booking never leaves a claim behind.

use super::CallDeps;
use crate::calendar::{template, CalendarError, CalendarProvider, NewEvent};
use crate::dialog::{Availability, BookRequest, Effect, Input, Outcome, Trouble};
use crate::domain::{MeetingKind, Video};
use crate::ledger::LedgerError;
use crate::schedule::{subtract, Interval};
use crate::store::{BookingSettings, ConnectionStatus, Provider};
use chrono::Duration;
use std::sync::Arc;
use tokio::sync::mpsc;

/// After this long without a result, the caller hears a filler line.
const FILLER_AFTER: std::time::Duration = std::time::Duration::from_millis(1500);

/// Free/busy is fetched this many days past the look-ahead, so slots near
/// its end still see the busy time after them.
const LOAD_MARGIN_DAYS: i64 = 2;

/// Everything a call's effects need, fixed at call start.
pub(super) struct BookingEnv {
    pub calendar_key: String,
    pub owner_id: String,
    pub owner_name: String,
    pub campaign_name: String,
    pub recipient_first: String,
    pub recipient_last: String,
    pub settings: BookingSettings,
    pub provider: Arc<dyn CalendarProvider>,
    /// Which of the owner's connections `provider` speaks for.
    pub provider_kind: Provider,
}

/// An effect's result, back to the actor.
pub(super) struct Done {
    pub input: Input,
    /// False for interim inputs (the filler); true for the final one.
    pub finished: bool,
}

/// The claim id (and the provider-side booking id) of a call's `attempt`th
/// calendar change. Derived, not drawn, so the same request repeated after
/// a resume is the same booking to the ledger and the provider.
pub(super) fn claim_id(call_sid: &str, attempt: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("callbook:{call_sid}:{attempt}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn run(
    effect: Effect,
    env: Arc<BookingEnv>,
    deps: Arc<CallDeps>,
    call_sid: &str,
    done: mpsc::UnboundedSender<Done>,
) {
    let work = async {
        match effect {
            Effect::LoadAvailability => Input::AvailabilityLoaded(load(&env, &deps).await),
            Effect::Book(req) => {
                let claim = claim_id(call_sid, req.attempt);
                Input::Booked(book(&env, &deps, req, claim).await)
            }
            Effect::Move {
                event_id,
                from,
                to,
                attempt,
                claim: old,
                recover,
            } => {
                let claim = claim_id(call_sid, attempt);
                let change = Change {
                    from,
                    to,
                    claim,
                    old,
                    recover,
                };
                Input::Moved(move_meeting(&env, &deps, &event_id, change).await)
            }
            Effect::CancelMeeting { event_id, claim } => {
                Input::Cancelled(cancel_meeting(&env, &deps, &event_id, &claim).await)
            }
            Effect::Turn { .. } | Effect::Say(_) | Effect::Status(_) => Input::StillWorking,
        }
    };
    tokio::pin!(work);
    let input = tokio::select! {
        r = &mut work => r,
        _ = tokio::time::sleep(FILLER_AFTER) => {
            let _ = done.send(Done { input: Input::StillWorking, finished: false });
            work.await
        }
    };
    let _ = done.send(Done {
        input,
        finished: true,
    });
}

/// Maps a provider fault to what the caller's dialog needs, recording an
/// expired grant or missing consent on the connection so later calls skip
/// booking at once and the admin API shows what the owner must do.
async fn trouble(e: CalendarError, env: &BookingEnv, deps: &CallDeps) -> Trouble {
    tracing::warn!(error = %e, owner = %env.owner_id, "calendar call failed");
    let since = deps.clock.now();
    let (status, trouble) = match e {
        CalendarError::Expired => (ConnectionStatus::Expired { since }, Trouble::Expired),
        CalendarError::ConsentRequired => (
            ConnectionStatus::AdminApprovalNeeded { since },
            Trouble::AdminApproval,
        ),
        _ => return Trouble::Unavailable,
    };
    if let Err(e) = deps
        .store
        .set_status(&env.owner_id, env.provider_kind, status)
        .await
    {
        tracing::warn!(error = %e, "could not record the connection's status");
    }
    // The cached client holds a grant that no longer works.
    deps.calendars.forget(&env.owner_id);
    trouble
}

async fn load(env: &BookingEnv, deps: &CallDeps) -> Result<Availability, Trouble> {
    let now = deps.clock.now();
    let days = i64::from(env.settings.rules.look_ahead_days) + LOAD_MARGIN_DAYS;
    let window = Interval::new(now - Duration::days(1), now + Duration::days(days));
    let info = match env.provider.calendar_info().await {
        Ok(info) => info,
        Err(e) => return Err(trouble(e, env, deps).await),
    };
    let mut busy = match env.provider.free_busy(window).await {
        Ok(b) => b,
        Err(e) => return Err(trouble(e, env, deps).await),
    };
    match deps.ledger.claims(&env.calendar_key, window, now).await {
        Ok(claims) => busy.extend(claims.into_iter().map(|c| c.interval)),
        Err(e) => {
            tracing::warn!(error = %e, "ledger unavailable at load");
            return Err(Trouble::Unavailable);
        }
    }
    let video = match env.settings.meeting {
        MeetingKind::Video => info.video,
        _ => Video::Unavailable,
    };
    Ok(Availability { busy, video })
}

/// What a booking or a move claims: the meeting's slot and, for a move,
/// the claim it replaces and the meeting's current slot.
struct ClaimRequest<'a> {
    id: &'a str,
    /// Whether to re-check the provider. Not when recovering work that may
    /// have been done: the calendar would show the meeting itself as busy.
    recheck: bool,
    slot: Interval,
    replaces: Option<&'a str>,
    own: Option<Interval>,
}

/// The decision step shared by booking and moving: hold the padded slot in
/// the ledger (first confirm wins), then re-check the provider for events
/// made outside callbook. On success the hold is live and its id returned;
/// on any failure no hold is left behind.
async fn claim(env: &BookingEnv, deps: &CallDeps, req: ClaimRequest<'_>) -> Result<(), Outcome> {
    let id = req.id;
    let padded = env.settings.rules.padded(req.slot);
    let ledger = &deps.ledger;
    match ledger
        .hold(
            &env.calendar_key,
            id,
            padded,
            req.replaces,
            deps.clock.now(),
        )
        .await
    {
        Ok(()) => {}
        Err(LedgerError::Taken { conflict }) => return Err(Outcome::Taken { conflict }),
        Err(e) => {
            tracing::warn!(error = %e, "ledger unavailable at hold");
            return Err(Outcome::Failed(Trouble::Unavailable));
        }
    }
    if !req.recheck {
        return Ok(());
    }
    let outcome = match env.provider.free_busy(padded).await {
        Ok(busy) => {
            // A meeting being moved shows as busy itself; it must not stop it
            // moving next to itself.
            let busy = match req.own {
                Some(own) => subtract(&busy, own),
                None => busy,
            };
            match busy.iter().find(|b| b.overlaps(&padded)) {
                None => return Ok(()),
                Some(b) => Outcome::Taken { conflict: *b },
            }
        }
        Err(e) => Outcome::Failed(trouble(e, env, deps).await),
    };
    let _ = ledger.release(&env.calendar_key, id).await;
    Err(outcome)
}

async fn book(env: &BookingEnv, deps: &CallDeps, req: BookRequest, claim: String) -> Outcome {
    let rules = &env.settings.rules;
    let ledger = &deps.ledger;
    if req.recover {
        match env.provider.find_booking(&claim).await {
            Ok(Some(found)) => return recovered(env, deps, &claim, found).await,
            Ok(None) => {}
            Err(e) => return Outcome::Failed(trouble(e, env, deps).await),
        }
    }
    let request = ClaimRequest {
        id: &claim,
        recheck: true,
        slot: req.slot,
        replaces: None,
        own: None,
    };
    if let Err(outcome) = self::claim(env, deps, request).await {
        return outcome;
    }
    let release = || async {
        let _ = ledger.release(&env.calendar_key, &claim).await;
    };
    let values = template::Values {
        first_name: env.recipient_first.clone(),
        last_name: env.recipient_last.clone(),
        email: req.email.as_str().to_string(),
        owner_name: env.owner_name.clone(),
        campaign_name: env.campaign_name.clone(),
        minutes: rules.length_minutes,
    };
    let event = NewEvent {
        booking_id: claim.clone(),
        slot: req.slot,
        timezone: rules.timezone,
        title: template::render(&env.settings.title, &values),
        description: template::render(&env.settings.description, &values),
        attendee_email: req.email.as_str().to_string(),
        attendee_name: req.name.clone(),
        meeting: env.settings.meeting.clone(),
    };
    match env.provider.create_event(&event).await {
        Ok(created) => {
            // The event exists: the booking stands whatever the ledger says.
            let padded = rules.padded(created.slot);
            commit_after_write(env, deps, "book", &claim, padded, None).await;
            tracing::info!(event = %created.event_id, invitee = %req.email.redacted(), "booked");
            Outcome::Done {
                slot: created.slot,
                event_id: created.event_id,
                join_link: created.join_link,
                claim,
            }
        }
        Err(e) => {
            release().await;
            Outcome::Failed(trouble(e, env, deps).await)
        }
    }
}

/// How a commit after a calendar write ended (also counted in
/// `callbook_ledger_commits_after_write_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterWrite {
    Committed,
    /// The hold lapsed during the write; held again and committed under
    /// the same claim id.
    Recommitted,
    /// The hold lapsed and another claim took the slot meanwhile.
    Conflict,
    Unavailable,
}

impl AfterWrite {
    fn as_str(self) -> &'static str {
        match self {
            AfterWrite::Committed => "committed",
            AfterWrite::Recommitted => "recommitted",
            AfterWrite::Conflict => "conflict",
            AfterWrite::Unavailable => "unavailable",
        }
    }
}

/// Commits `claim` once its event is written (`op`: `book` or `move`). If
/// the hold lapsed while the provider worked, it is held again under the
/// same claim id (idempotent, so a retry is safe) and committed; a slot
/// another claim took meanwhile is logged as an error, since the event
/// stands without the ledger covering it. The outcome is logged and
/// counted, never silent.
async fn commit_after_write(
    env: &BookingEnv,
    deps: &CallDeps,
    op: &'static str,
    claim: &str,
    padded: Interval,
    replaces: Option<&str>,
) -> AfterWrite {
    let ledger = &deps.ledger;
    let key = &env.calendar_key;
    let outcome = match ledger.commit(key, claim, deps.clock.now()).await {
        Ok(()) => AfterWrite::Committed,
        Err(LedgerError::NotHeld) => {
            let now = deps.clock.now();
            match ledger.hold(key, claim, padded, replaces, now).await {
                Ok(()) => match ledger.commit(key, claim, now).await {
                    Ok(()) => AfterWrite::Recommitted,
                    Err(LedgerError::Unavailable(_)) => AfterWrite::Unavailable,
                    // Lapsed again at once: only with a broken clock.
                    Err(_) => AfterWrite::Conflict,
                },
                Err(LedgerError::Taken { .. }) => AfterWrite::Conflict,
                Err(_) => AfterWrite::Unavailable,
            }
        }
        Err(_) => AfterWrite::Unavailable,
    };
    crate::observe::metrics::commit_after_write(op, outcome.as_str());
    match outcome {
        AfterWrite::Committed => {}
        AfterWrite::Recommitted => {
            tracing::warn!(
                op,
                claim,
                "hold lapsed during the calendar write; held again and committed"
            );
        }
        AfterWrite::Conflict => {
            tracing::error!(op, claim, "hold lapsed during the calendar write and the slot was taken meanwhile; the event stands uncovered by the ledger");
        }
        AfterWrite::Unavailable => {
            tracing::error!(
                op,
                claim,
                "claim could not be committed after the calendar write: ledger unavailable"
            );
        }
    }
    outcome
}

/// A booking made by a try whose outcome was lost: its claim is held again
/// (idempotent) and committed, and it is reported as booked.
async fn recovered(
    env: &BookingEnv,
    deps: &CallDeps,
    claim: &str,
    found: crate::calendar::CreatedEvent,
) -> Outcome {
    let padded = env.settings.rules.padded(found.slot);
    let now = deps.clock.now();
    if let Err(e) = deps
        .ledger
        .hold(&env.calendar_key, claim, padded, None, now)
        .await
    {
        tracing::warn!(error = %e, "a recovered booking's claim could not be held again");
    }
    if let Err(e) = deps.ledger.commit(&env.calendar_key, claim, now).await {
        tracing::warn!(error = %e, "a recovered booking's claim could not be committed");
    }
    tracing::info!(event = %found.event_id, "booking found after a lost outcome");
    Outcome::Done {
        slot: found.slot,
        event_id: found.event_id,
        join_link: found.join_link,
        claim: claim.to_string(),
    }
}

async fn cancel_meeting(
    env: &BookingEnv,
    deps: &CallDeps,
    event_id: &str,
    claim: &str,
) -> Result<(), Trouble> {
    if let Err(e) = env.provider.cancel_event(event_id).await {
        return Err(trouble(e, env, deps).await);
    }
    let _ = deps.ledger.release(&env.calendar_key, claim).await;
    Ok(())
}

/// A move: the meeting's slot now and next, the claim for the new slot and
/// the one it replaces.
struct Change {
    from: Interval,
    to: Interval,
    claim: String,
    old: String,
    /// The move may already have been made by a try whose outcome was lost.
    recover: bool,
}

async fn move_meeting(
    env: &BookingEnv,
    deps: &CallDeps,
    event_id: &str,
    change: Change,
) -> Outcome {
    let Change {
        from,
        to,
        claim,
        old,
        recover,
    } = change;
    let rules = &env.settings.rules;
    let ledger = &deps.ledger;
    let request = ClaimRequest {
        id: &claim,
        recheck: !recover,
        slot: to,
        replaces: Some(&old),
        own: Some(from),
    };
    if let Err(outcome) = self::claim(env, deps, request).await {
        return outcome;
    }
    let release = || async {
        let _ = ledger.release(&env.calendar_key, &claim).await;
    };
    match env.provider.move_event(event_id, to, rules.timezone).await {
        Ok(moved) => {
            let padded = rules.padded(moved.slot);
            commit_after_write(env, deps, "move", &claim, padded, Some(&old)).await;
            Outcome::Done {
                slot: moved.slot,
                event_id: moved.event_id,
                join_link: moved.join_link,
                claim,
            }
        }
        Err(e) => {
            release().await;
            Outcome::Failed(trouble(e, env, deps).await)
        }
    }
}
