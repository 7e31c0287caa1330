//! Carrying out the dialog's I/O effects.
//!
//! Booking is a short saga: hold the padded interval in the ledger (this
//! decides the winner between calls), re-check the provider's free/busy for
//! events made outside callbook, create the event with an id derived from the
//! booking, then commit the hold. Any failure before the event exists
//! releases the hold, so a failed booking never leaves a claim behind.

use super::CallDeps;
use crate::calendar::{template, CalendarError, CalendarProvider, NewEvent};
use crate::dialog::{
    Availability, BookRequest, Effect, Input, MeetingKind, Outcome, Trouble, Video,
};
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
    /// A new event id → claim id mapping to remember.
    pub claim: Option<(String, String)>,
}

pub(super) async fn run(
    effect: Effect,
    env: Arc<BookingEnv>,
    deps: Arc<CallDeps>,
    old_claim: Option<String>,
    done: mpsc::UnboundedSender<Done>,
) {
    let work = async {
        match effect {
            Effect::LoadAvailability => (Input::AvailabilityLoaded(load(&env, &deps).await), None),
            Effect::Book(req) => {
                let (outcome, claim) = book(&env, &deps, req).await;
                (Input::Booked(outcome), claim)
            }
            Effect::Move { event_id, from, to } => {
                let (outcome, claim) =
                    move_meeting(&env, &deps, &event_id, from, to, old_claim).await;
                (Input::Moved(outcome), claim)
            }
            Effect::CancelMeeting { event_id } => (
                Input::Cancelled(cancel_meeting(&env, &deps, &event_id, old_claim).await),
                None,
            ),
            Effect::Say(_) | Effect::Status(_) => (Input::StillWorking, None),
        }
    };
    tokio::pin!(work);
    let (input, claim) = tokio::select! {
        r = &mut work => r,
        _ = tokio::time::sleep(FILLER_AFTER) => {
            let _ = done.send(Done { input: Input::StillWorking, finished: false, claim: None });
            work.await
        }
    };
    let _ = done.send(Done {
        input,
        finished: true,
        claim,
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

fn new_claim_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What a booking or a move claims: the meeting's slot and, for a move,
/// the claim it replaces and the meeting's current slot.
struct ClaimRequest<'a> {
    slot: Interval,
    replaces: Option<&'a str>,
    own: Option<Interval>,
}

/// The decision step shared by booking and moving: hold the padded slot in
/// the ledger (first confirm wins), then re-check the provider for events
/// made outside callbook. On success the hold is live and its id returned;
/// on any failure no hold is left behind.
async fn claim(
    env: &BookingEnv,
    deps: &CallDeps,
    req: ClaimRequest<'_>,
) -> Result<String, Outcome> {
    let id = new_claim_id();
    let padded = env.settings.rules.padded(req.slot);
    let ledger = &deps.ledger;
    match ledger
        .hold(
            &env.calendar_key,
            &id,
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
    let outcome = match env.provider.free_busy(padded).await {
        Ok(busy) => {
            // A meeting being moved shows as busy itself; it must not stop it
            // moving next to itself.
            let busy = match req.own {
                Some(own) => subtract(&busy, own),
                None => busy,
            };
            match busy.iter().find(|b| b.overlaps(&padded)) {
                None => return Ok(id),
                Some(b) => Outcome::Taken { conflict: *b },
            }
        }
        Err(e) => Outcome::Failed(trouble(e, env, deps).await),
    };
    let _ = ledger.release(&env.calendar_key, &id).await;
    Err(outcome)
}

async fn book(
    env: &BookingEnv,
    deps: &CallDeps,
    req: BookRequest,
) -> (Outcome, Option<(String, String)>) {
    let rules = &env.settings.rules;
    let ledger = &deps.ledger;
    let claim = match claim(
        env,
        deps,
        ClaimRequest {
            slot: req.slot,
            replaces: None,
            own: None,
        },
    )
    .await
    {
        Ok(id) => id,
        Err(outcome) => return (outcome, None),
    };
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
            if let Err(e) = ledger
                .commit(&env.calendar_key, &claim, deps.clock.now())
                .await
            {
                // The event exists; the claim lapsed while creating it. The
                // booking stands, and the calendar itself now shows it busy.
                tracing::warn!(error = %e, "claim could not be committed after create");
            }
            tracing::info!(event = %created.event_id, invitee = %req.email.redacted(), "booked");
            let mapping = Some((created.event_id.clone(), claim));
            (
                Outcome::Done {
                    slot: created.slot,
                    event_id: created.event_id,
                    join_link: created.join_link,
                },
                mapping,
            )
        }
        Err(e) => {
            release().await;
            (Outcome::Failed(trouble(e, env, deps).await), None)
        }
    }
}

async fn cancel_meeting(
    env: &BookingEnv,
    deps: &CallDeps,
    event_id: &str,
    claim: Option<String>,
) -> Result<(), Trouble> {
    if let Err(e) = env.provider.cancel_event(event_id).await {
        return Err(trouble(e, env, deps).await);
    }
    if let Some(claim) = claim {
        let _ = deps.ledger.release(&env.calendar_key, &claim).await;
    }
    Ok(())
}

async fn move_meeting(
    env: &BookingEnv,
    deps: &CallDeps,
    event_id: &str,
    from: Interval,
    to: Interval,
    old_claim: Option<String>,
) -> (Outcome, Option<(String, String)>) {
    let rules = &env.settings.rules;
    let ledger = &deps.ledger;
    let request = ClaimRequest {
        slot: to,
        replaces: old_claim.as_deref(),
        own: Some(from),
    };
    let claim = match claim(env, deps, request).await {
        Ok(id) => id,
        Err(outcome) => return (outcome, None),
    };
    let release = || async {
        let _ = ledger.release(&env.calendar_key, &claim).await;
    };
    match env.provider.move_event(event_id, to, rules.timezone).await {
        Ok(moved) => {
            let _ = ledger
                .commit(&env.calendar_key, &claim, deps.clock.now())
                .await;
            (
                Outcome::Done {
                    slot: moved.slot,
                    event_id: moved.event_id.clone(),
                    join_link: moved.join_link,
                },
                Some((moved.event_id, claim)),
            )
        }
        Err(e) => {
            release().await;
            (Outcome::Failed(trouble(e, env, deps).await), None)
        }
    }
}
