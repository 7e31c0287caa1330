//! Carrying out the dialog's I/O effects: loading availability (after the
//! reconciler settled the calendar's open claims, [`super::reconcile`])
//! here; booking, moving and cancelling in the saga ([`super::saga`]).

use super::saga::{self, Change};
use super::CallDeps;
use crate::calendar::{CalendarError, CalendarProvider};
use crate::dialog::{Availability, Effect, Input, Outcome, Trouble};
use crate::domain::{MeetingKind, Video};
use crate::ledger::LedgerError;
use crate::outcomes::{BookingRecord, OutcomeStatus};
use crate::schedule::Interval;
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
    /// The ledger key of the calendar, once named
    /// ([`BookingEnv::calendar_key`]).
    pub key: tokio::sync::OnceCell<String>,
    /// The calendar as the connection names it (`primary`, or an id).
    pub calendar_alias: String,
    pub campaign_id: String,
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

/// A calendar change whose outcome is unknown, as its outcome record will
/// say if the reconciler finds it made.
enum Pending {
    Booked { slot: Interval, invitee: String },
    Moved { from: Interval, to: Interval },
}

/// Keeps the record a change of unknown outcome makes if it happened, for
/// the reconciler to send ([`crate::outcomes::Recorder::settle`]): the
/// call heard `outcome_unknown`, and whoever follows its outcomes learns
/// the end of it.
async fn pend(env: &BookingEnv, deps: &CallDeps, call_sid: &str, claim: &str, change: Pending) {
    let (status, slot, previous_start, invitee) = match change {
        Pending::Booked { slot, invitee } => (OutcomeStatus::Booked, slot, None, Some(invitee)),
        Pending::Moved { from, to } => (OutcomeStatus::Moved, to, Some(from.start), None),
    };
    let record = BookingRecord {
        id: uuid::Uuid::new_v4().to_string(),
        call_sid: call_sid.to_string(),
        campaign_id: Some(env.campaign_id.clone()),
        status,
        event_id: None,
        start: Some(slot.start),
        end: Some(slot.end),
        previous_start,
        invitee,
        reason: None,
        join_link: None,
        provider: Some(env.provider_kind),
        at: deps.clock.now(),
    };
    if let Err(e) = deps.outcomes.store().pend(claim, &record).await {
        tracing::warn!(error = %e, claim, "could not keep the record of a change of unknown outcome");
    }
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
                let (slot, invitee) = (req.slot, req.email.as_str().to_string());
                let outcome = saga::book(&env, &deps, req, claim.clone()).await;
                if outcome == Outcome::Failed(Trouble::Unconfirmed) {
                    let change = Pending::Booked { slot, invitee };
                    pend(&env, &deps, call_sid, &claim, change).await;
                }
                Input::Booked(outcome)
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
                    claim: claim.clone(),
                    old,
                    recover,
                };
                let outcome = saga::move_meeting(&env, &deps, &event_id, change).await;
                if outcome == Outcome::Failed(Trouble::Unconfirmed) {
                    let change = Pending::Moved { from, to };
                    pend(&env, &deps, call_sid, &claim, change).await;
                }
                Input::Moved(outcome)
            }
            Effect::CancelMeeting { event_id, claim } => {
                Input::Cancelled(saga::cancel(&env, &deps, &event_id, &claim).await)
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
pub(super) async fn trouble(e: CalendarError, env: &BookingEnv, deps: &CallDeps) -> Trouble {
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
    // Neither answer needs the other: asked at once, the caller waits
    // for the slower, not for both in turn.
    let (info, busy) = tokio::join!(
        deps.calendars.info(&env.owner_id, &env.provider),
        env.provider.free_busy(window)
    );
    let (info, mut busy) = match (info, busy) {
        (Ok(info), Ok(busy)) => (info, busy),
        (Err(e), _) | (_, Err(e)) => return Err(trouble(e, env, deps).await),
    };
    let key = env.calendar_key(deps).await;
    deps.reconciler
        .note(key, env.provider.clone(), &env.settings.rules, now);
    let (ledger, rules) = (&*deps.ledger, &env.settings.rules);
    let reconcile =
        || super::reconcile::reconcile(ledger, key, &*env.provider, rules, window, &busy, now);
    let mut settled = reconcile().await;
    // Every step of a reconcile is idempotent: one whose Redis answer was
    // lost (its connection dropped) is run once more rather than failing
    // the caller's load. Once only: a Redis that is down fails fast.
    if matches!(settled, Err(LedgerError::Unavailable(_))) {
        settled = reconcile().await;
    }
    if settled == Err(LedgerError::Unverified)
        && super::reconcile::rebuild(ledger, key, &*env.provider, rules, now)
            .await
            .is_some()
    {
        settled = reconcile().await;
    }
    match settled {
        Ok((claims, settled)) => {
            super::reconcile::announce(&deps.outcomes, &settled, now).await;
            busy.extend(claims.into_iter().map(|c| c.interval));
        }
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
