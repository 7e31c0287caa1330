//! The booking saga: how booking, moving and cancelling change the ledger
//! and the calendar together, and what each promises when a step fails.
//!
//! A booking holds the padded slot in the ledger (this decides the winner
//! between calls), re-checks the provider's free/busy for events made
//! outside callbook, creates the event with an id derived from the booking,
//! then commits the hold with the event's id. A move does the same with a
//! claim that replaces the meeting's current one at commit; a cancel
//! deletes the event, then releases the claim.
//!
//! The invariants, each kept by one step below:
//!
//! 1. **Every calendar write runs under a live hold.** The saga counts its
//!    hold's lease from just before it asked for it (the ledger's hold
//!    life, [`crate::ledger::HOLD_TTL`] by default, on its own clock; the
//!    ledger may count from later, never earlier). A write is only started
//!    with its budget ([`write_budget`]: a third of the hold's life) plus a
//!    margin ([`lease_margin`]: a quarter) of lease left, the hold being
//!    extended first when less remains, and the write is cut off after its
//!    budget, so the read-back and the commit after it still run before
//!    the hold can lapse.
//! 2. **A slot whose event may exist is never released.** After a write
//!    that failed, or was cut off, the event is read back (by booking id
//!    for a create, by event id for a move). Found: it is committed as if
//!    the write had answered. Known absent: the hold is released and the
//!    caller hears the failure. Still unknown (the read failed, or a write
//!    cut off may yet land): the hold is marked *unknown* and kept for the
//!    reconciler ([`super::reconcile`]), which commits or releases it.
//! 3. **Ledger steps are retried, idempotently.** Commit, release, extend
//!    and mark are keyed by claim id, so each is retried on an unavailable
//!    ledger ([`LEDGER_TRIES`]); a hold asked for again is the same hold.
//! 4. **A booking is never reported done without a claim.** A commit that
//!    finds its hold lapsed (the process was stopped, the ledger's clock
//!    jumped) holds the slot again under the same id; if another claim took
//!    it meanwhile, the event just written is cancelled and the caller hears
//!    the slot was taken, as they would have at the hold.
//!
//! Claim ids are derived from the call and its attempt
//! ([`super::effects::claim_id`]), so a repeated request after a resume is
//! the same booking to the ledger and to the provider.

use super::effects::{trouble, BookingEnv};
use super::CallDeps;
use crate::calendar::{template, CalendarError, CreatedEvent, NewEvent};
use crate::dialog::{BookRequest, Outcome, Trouble};
use crate::ledger::LedgerError;
use crate::schedule::{subtract, Interval};
use chrono::{DateTime, Duration, Utc};
use std::future::Future;

/// Lease kept back after a write for the read-back and the commit: a
/// quarter of the hold's life (15 s of the default 60 s).
pub fn lease_margin(hold_ttl: Duration) -> Duration {
    hold_ttl / 4
}

/// The longest a calendar write may take, retries, look-ups and Meet
/// polling included: a third of the hold's life (20 s of the default
/// 60 s). A write runs only with this much lease left (plus the
/// [`lease_margin`]) and is cut off past it.
pub fn write_budget(hold_ttl: Duration) -> Duration {
    hold_ttl / 3
}

/// The longest the read-back after a failed write may take.
const READ_BACK_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// How many times a ledger step is tried while the ledger is unavailable:
/// with the doubling waits, about 1.5 s, what a Redis restart takes.
pub const LEDGER_TRIES: u32 = 5;

/// The first wait between ledger tries; doubles after each.
const LEDGER_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

fn std_duration(d: Duration) -> std::time::Duration {
    d.to_std().unwrap_or_default()
}

/// Runs a ledger step until it succeeds, fails for a reason other than an
/// unavailable ledger, or [`LEDGER_TRIES`] are spent. Every step it is used
/// for is idempotent by claim id.
pub(super) async fn ledger_retry<T, F, Fut>(mut op: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LedgerError>>,
{
    let mut wait = LEDGER_BACKOFF;
    let mut tried = 1;
    loop {
        match op().await {
            Err(LedgerError::Unavailable(e)) if tried < LEDGER_TRIES => {
                tracing::debug!(error = %e, tried, "ledger unavailable; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                tried += 1;
            }
            other => return other,
        }
    }
}

/// The time a hold is known to live until, on the saga's clock, and how
/// long the ledger's holds live.
struct Lease {
    until: DateTime<Utc>,
    ttl: Duration,
}

impl Lease {
    /// A lease for a hold asked for at `asked`.
    fn from(asked: DateTime<Utc>, ttl: Duration) -> Self {
        Lease {
            until: asked + ttl,
            ttl,
        }
    }
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
    /// The event being moved, which the calendar shows where it is.
    own_event: Option<&'a str>,
}

/// The decision step shared by booking and moving: hold the padded slot in
/// the ledger (first confirm wins), then re-check the provider: its
/// free/busy for events made outside callbook, and the events callbook
/// made there, which the ledger may not know (an instance that died
/// between its create and its commit, a Redis that lost the claim) while
/// free/busy does not show them yet (it lags writes). Such an event is
/// taken into the ledger at once. On success the hold is live and its
/// lease returned; on any failure no hold is left behind (nothing was
/// written).
async fn claim(env: &BookingEnv, deps: &CallDeps, req: ClaimRequest<'_>) -> Result<Lease, Outcome> {
    let id = req.id;
    let padded = env.settings.rules.padded(req.slot);
    let ledger = &deps.ledger;
    let key = env.calendar_key(deps).await;
    let mut asked = deps.clock.now();
    let mut held = ledger_retry(|| ledger.hold(key, id, padded, req.replaces, asked)).await;
    if held == Err(LedgerError::Unverified) {
        // The ledger lost this calendar's claims: confirms wait for them to
        // be rebuilt from the calendar's events.
        let rules = &env.settings.rules;
        if super::reconcile::rebuild(&**ledger, key, &*env.provider, rules, asked)
            .await
            .is_some()
        {
            asked = deps.clock.now();
            held = ledger_retry(|| ledger.hold(key, id, padded, req.replaces, asked)).await;
        }
    }
    match held {
        Ok(()) => {}
        Err(LedgerError::Taken { conflict }) => return Err(Outcome::Taken { conflict }),
        Err(e) => {
            tracing::warn!(error = %e, "ledger unavailable at hold");
            return Err(Outcome::Failed(Trouble::Unavailable));
        }
    }
    let lease = Lease::from(asked, ledger.hold_ttl());
    if !req.recheck {
        return Ok(lease);
    }
    let rules = &env.settings.rules;
    let (busy, tagged) = tokio::join!(
        env.provider.free_busy(padded),
        env.provider.tagged_events(padded)
    );
    let (busy, tagged) = match (busy, tagged) {
        (Ok(busy), Ok(tagged)) => (busy, tagged),
        (Err(e), _) | (_, Err(e)) => {
            release(env, deps, id).await;
            return Err(Outcome::Failed(trouble(e, env, deps).await));
        }
    };
    // Another booking of callbook's in the slot: the ledger should have
    // had it and did not, so it is taken in now.
    let untracked = tagged
        .into_iter()
        .filter(|t| t.booking_id != id && req.own_event != Some(t.event.event_id.as_str()))
        .map(|t| super::reconcile::claim_for(t, rules))
        .find(|c| c.interval.overlaps(&padded));
    let conflict = if let Some(claim) = untracked {
        tracing::warn!(claim = %claim.id, "the calendar has a booking the ledger did not cover; taken into it");
        if let Err(e) = ledger.adopt(key, std::slice::from_ref(&claim), asked).await {
            tracing::warn!(error = %e, "could not take the booking into the ledger; the reconciler will");
        }
        claim.interval
    } else {
        // A meeting being moved shows as busy itself; it must not stop it
        // moving next to itself.
        let busy = match req.own {
            Some(own) => subtract(&busy, own),
            None => busy,
        };
        match busy.into_iter().find(|b| b.overlaps(&padded)) {
            None => return Ok(lease),
            Some(b) => b,
        }
    };
    let outcome = Outcome::Taken { conflict };
    release(env, deps, id).await;
    Err(outcome)
}

/// Makes sure a write can run to its budget under the hold: when less than
/// [`write_budget`] plus [`lease_margin`] is left (a slow re-check, a
/// stopped process), the hold is extended, or held again under the same id
/// if it lapsed. Nothing is written yet, so a slot taken meanwhile is
/// simply taken.
async fn ensure_lease(
    env: &BookingEnv,
    deps: &CallDeps,
    lease: &mut Lease,
    claim: &str,
    padded: Interval,
    replaces: Option<&str>,
) -> Result<(), Outcome> {
    let key = env.calendar_key(deps).await;
    let now = deps.clock.now();
    if lease.until - now >= write_budget(lease.ttl) + lease_margin(lease.ttl) {
        return Ok(());
    }
    let ledger = &deps.ledger;
    let extended = match ledger_retry(|| ledger.extend(key, claim, now)).await {
        Err(LedgerError::NotHeld) => {
            ledger_retry(|| ledger.hold(key, claim, padded, replaces, now)).await
        }
        other => other,
    };
    crate::observe::metrics::lease_extended(match &extended {
        Ok(()) => "extended",
        Err(LedgerError::Taken { .. }) => "taken",
        Err(_) => "unavailable",
    });
    match extended {
        Ok(()) => {
            tracing::info!(claim, "little lease left before the write; hold extended");
            lease.until = now + lease.ttl;
            Ok(())
        }
        Err(LedgerError::Taken { conflict }) => Err(Outcome::Taken { conflict }),
        Err(e) => {
            tracing::warn!(error = %e, "ledger unavailable extending a hold");
            release(env, deps, claim).await;
            Err(Outcome::Failed(Trouble::Unavailable))
        }
    }
}

/// Runs a calendar write, cut off at its [`write_budget`]. `Err(None)`
/// when it was cut off: the request may still land.
async fn bounded_write<T>(
    lease: &Lease,
    write: impl Future<Output = Result<T, CalendarError>>,
) -> Result<T, Option<CalendarError>> {
    match tokio::time::timeout(std_duration(write_budget(lease.ttl)), write).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// What reading an event back after a failed write found.
enum ReadBack {
    Found(CreatedEvent),
    Absent,
    Unknown,
}

async fn read_back(
    look: impl Future<Output = Result<Option<CreatedEvent>, CalendarError>>,
) -> ReadBack {
    match tokio::time::timeout(READ_BACK_BUDGET, look).await {
        Ok(Ok(Some(ev))) => ReadBack::Found(ev),
        Ok(Ok(None)) => ReadBack::Absent,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading the event back failed");
            ReadBack::Unknown
        }
        Err(_) => {
            tracing::warn!("reading the event back timed out");
            ReadBack::Unknown
        }
    }
}

/// What the caller hears of a write whose outcome is unknown: that it
/// may have happened ([`Trouble::Unconfirmed`]), unless the write was
/// refused for a reason the owner must fix (an expired connection, a
/// missing approval), which is reported as such.
async fn unconfirmed(failed: Option<CalendarError>, env: &BookingEnv, deps: &CallDeps) -> Outcome {
    let refused = match failed {
        Some(e) => trouble(e, env, deps).await,
        None => Trouble::Unavailable,
    };
    Outcome::Failed(match refused {
        Trouble::Unavailable => Trouble::Unconfirmed,
        other => other,
    })
}

/// Releases a claim nothing was written for, retried; a release that still
/// fails leaves a hold that lapses on its own.
async fn release(env: &BookingEnv, deps: &CallDeps, claim: &str) {
    let key = env.calendar_key(deps).await;
    if let Err(e) = ledger_retry(|| deps.ledger.release(key, claim)).await {
        tracing::warn!(error = %e, claim, "could not release a hold; it lapses on its own");
    }
}

/// Keeps the slot of a write whose outcome is unknown: the hold becomes an
/// unknown claim for the reconciler. Held again first if it lapsed.
async fn keep_unknown(
    env: &BookingEnv,
    deps: &CallDeps,
    op: &'static str,
    claim: &str,
    padded: Interval,
    replaces: Option<&str>,
    event_id: Option<&str>,
) {
    let key = env.calendar_key(deps).await;
    let ledger = &deps.ledger;
    let now = deps.clock.now();
    let mut marked = ledger_retry(|| ledger.mark_unknown(key, claim, event_id, now)).await;
    if marked == Err(LedgerError::NotHeld) {
        marked = match ledger_retry(|| ledger.hold(key, claim, padded, replaces, now)).await {
            Ok(()) => ledger_retry(|| ledger.mark_unknown(key, claim, event_id, now)).await,
            Err(e) => Err(e),
        };
    }
    crate::observe::metrics::outcome_unknown(
        op,
        match &marked {
            Ok(()) => "kept",
            Err(LedgerError::Taken { .. }) => "taken",
            Err(_) => "unavailable",
        },
    );
    match marked {
        Ok(()) => tracing::warn!(
            op,
            claim,
            "the write's outcome is unknown; the slot stays held for the reconciler"
        ),
        Err(e) => tracing::error!(
            op,
            claim,
            error = %e,
            "the write's outcome is unknown and its slot could not be kept"
        ),
    }
}

pub(super) async fn book(
    env: &BookingEnv,
    deps: &CallDeps,
    req: BookRequest,
    claim: String,
) -> Outcome {
    let rules = &env.settings.rules;
    if req.recover {
        match env.provider.find_booking(&claim).await {
            Ok(Some(found)) => return recovered(env, deps, &claim, found).await,
            Ok(None) => {}
            // The dead instance's create may have landed: its slot is kept
            // for the reconciler, as after a write of unknown outcome.
            Err(e) => {
                let padded = rules.padded(req.slot);
                keep_unknown(env, deps, "book", &claim, padded, None, None).await;
                return unconfirmed(Some(e), env, deps).await;
            }
        }
    }
    let request = ClaimRequest {
        id: &claim,
        recheck: true,
        slot: req.slot,
        replaces: None,
        own: None,
        own_event: None,
    };
    let mut lease = match self::claim(env, deps, request).await {
        Ok(lease) => lease,
        Err(outcome) => return outcome,
    };
    let padded = rules.padded(req.slot);
    if let Err(outcome) = ensure_lease(env, deps, &mut lease, &claim, padded, None).await {
        return outcome;
    }
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
    let created = match bounded_write(&lease, env.provider.create_event(&event)).await {
        Ok(created) => created,
        Err(failed) => match read_back(env.provider.find_booking(&claim)).await {
            ReadBack::Found(created) => {
                tracing::info!(claim = %claim, "the create failed to answer, but the event exists");
                created
            }
            ReadBack::Absent if failed.is_some() => {
                release(env, deps, &claim).await;
                let e = failed.unwrap_or_else(|| CalendarError::Transient("cut off".into()));
                return Outcome::Failed(trouble(e, env, deps).await);
            }
            // Unknown, or absent only so far: a create cut off may land yet.
            _ => {
                keep_unknown(env, deps, "book", &claim, padded, None, None).await;
                return unconfirmed(failed, env, deps).await;
            }
        },
    };
    // The event exists: commit it, or hold it again, or take it back.
    let padded = rules.padded(created.slot);
    let after = commit_after_write(env, deps, "book", &claim, padded, None, &created).await;
    if let AfterWrite::Conflict { conflict } = after {
        return compensate(env, "book", &created, conflict).await;
    }
    tracing::info!(event = %created.event_id, invitee = %req.email.redacted(), "booked");
    Outcome::Done {
        slot: created.slot,
        event_id: created.event_id,
        join_link: created.join_link,
        claim,
    }
}

/// A booking whose hold lapsed while its event was written, and whose slot
/// another claim took meanwhile: the event is cancelled and the caller
/// hears the slot was taken. Should the cancel fail, the event stands and
/// is reported (it exists; the caller must not be told otherwise).
async fn compensate(
    env: &BookingEnv,
    op: &'static str,
    created: &CreatedEvent,
    conflict: Interval,
) -> Outcome {
    match env.provider.cancel_event(&created.event_id).await {
        Ok(()) => {
            tracing::warn!(
                op,
                event = %created.event_id,
                "the slot was taken while the hold had lapsed; the event was cancelled"
            );
            Outcome::Taken { conflict }
        }
        Err(e) => {
            tracing::error!(op, event = %created.event_id, error = %e, "the slot was taken while the hold had lapsed and the event could not be cancelled; it stands uncovered by the ledger");
            Outcome::Done {
                slot: created.slot,
                event_id: created.event_id.clone(),
                join_link: created.join_link.clone(),
                claim: String::new(),
            }
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
    Conflict {
        conflict: Interval,
    },
    Unavailable,
}

impl AfterWrite {
    fn as_str(self) -> &'static str {
        match self {
            AfterWrite::Committed => "committed",
            AfterWrite::Recommitted => "recommitted",
            AfterWrite::Conflict { .. } => "conflict",
            AfterWrite::Unavailable => "unavailable",
        }
    }
}

/// Commits `claim` once its event is written (`op`: `book` or `move`),
/// recording the event's id. If the hold lapsed while the provider worked,
/// it is held again under the same claim id (idempotent, so a retry is
/// safe) and committed; a slot another claim took meanwhile is reported as
/// a conflict for the caller to undo the write. An unavailable ledger
/// leaves the hold to lapse or to the reconciler's read of the calendar;
/// the outcome is logged and counted, never silent.
async fn commit_after_write(
    env: &BookingEnv,
    deps: &CallDeps,
    op: &'static str,
    claim: &str,
    padded: Interval,
    replaces: Option<&str>,
    created: &CreatedEvent,
) -> AfterWrite {
    let ledger = &deps.ledger;
    let key = env.calendar_key(deps).await;
    let event = Some(created.event_id.as_str());
    let now = deps.clock.now();
    let outcome = match ledger_retry(|| ledger.commit_event(key, claim, event, now)).await {
        Ok(()) => AfterWrite::Committed,
        Err(LedgerError::NotHeld) => {
            let now = deps.clock.now();
            match ledger_retry(|| ledger.hold(key, claim, padded, replaces, now)).await {
                Ok(()) => {
                    match ledger_retry(|| ledger.commit_event(key, claim, event, now)).await {
                        Ok(()) => AfterWrite::Recommitted,
                        Err(LedgerError::Unavailable(_)) => AfterWrite::Unavailable,
                        // Lapsed again at once: only with a broken clock.
                        Err(_) => AfterWrite::Unavailable,
                    }
                }
                Err(LedgerError::Taken { conflict }) => AfterWrite::Conflict { conflict },
                // The ledger lost the calendar's claims meanwhile: rebuilt
                // from the calendar, which now shows this very event.
                Err(LedgerError::Unverified) => {
                    let rules = &env.settings.rules;
                    match super::reconcile::rebuild(&**ledger, key, &*env.provider, rules, now)
                        .await
                    {
                        Some(_) => AfterWrite::Recommitted,
                        None => AfterWrite::Unavailable,
                    }
                }
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
        AfterWrite::Conflict { .. } => {
            tracing::error!(
                op,
                claim,
                "hold lapsed during the calendar write and the slot was taken meanwhile"
            );
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
async fn recovered(env: &BookingEnv, deps: &CallDeps, claim: &str, found: CreatedEvent) -> Outcome {
    let padded = env.settings.rules.padded(found.slot);
    let key = env.calendar_key(deps).await;
    let ledger = &deps.ledger;
    let now = deps.clock.now();
    if let Err(e) = ledger_retry(|| ledger.hold(key, claim, padded, None, now)).await {
        tracing::warn!(error = %e, "a recovered booking's claim could not be held again");
    }
    let event = Some(found.event_id.as_str());
    if let Err(e) = ledger_retry(|| ledger.commit_event(key, claim, event, now)).await {
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

/// Cancels the meeting, then releases its claim. A cancel that failed may
/// still have deleted the event, so the claim stays (the reconciler removes
/// claims whose event is gone); a release that fails after a cancel is
/// retried, then left to the reconciler the same way.
pub(super) async fn cancel(
    env: &BookingEnv,
    deps: &CallDeps,
    event_id: &str,
    claim: &str,
) -> Result<(), Trouble> {
    if let Err(e) = env.provider.cancel_event(event_id).await {
        return Err(trouble(e, env, deps).await);
    }
    let key = env.calendar_key(deps).await;
    if let Err(e) = ledger_retry(|| deps.ledger.release(key, claim)).await {
        tracing::warn!(error = %e, claim, "the meeting is cancelled but its claim stays until the reconciler removes it");
    }
    Ok(())
}

/// A move: the meeting's slot now and next, the claim for the new slot and
/// the one it replaces.
pub(super) struct Change {
    pub from: Interval,
    pub to: Interval,
    pub claim: String,
    pub old: String,
    /// The move may already have been made by a try whose outcome was lost.
    pub recover: bool,
}

pub(super) async fn move_meeting(
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
    let request = ClaimRequest {
        id: &claim,
        recheck: !recover,
        slot: to,
        replaces: Some(&old),
        own: Some(from),
        own_event: Some(event_id),
    };
    let mut lease = match self::claim(env, deps, request).await {
        Ok(lease) => lease,
        Err(outcome) => return outcome,
    };
    let padded = rules.padded(to);
    if let Err(outcome) = ensure_lease(env, deps, &mut lease, &claim, padded, Some(&old)).await {
        return outcome;
    }
    let moved = match bounded_write(
        &lease,
        env.provider.move_event(event_id, to, rules.timezone),
    )
    .await
    {
        Ok(moved) => moved,
        Err(failed) => match read_back(env.provider.event(event_id)).await {
            ReadBack::Found(ev) if ev.slot == to => {
                tracing::info!(claim = %claim, "the move failed to answer, but the event moved");
                ev
            }
            // Still where it was (or gone): the move did not happen.
            ReadBack::Found(_) | ReadBack::Absent if failed.is_some() => {
                release(env, deps, &claim).await;
                let e = failed.unwrap_or_else(|| CalendarError::Transient("cut off".into()));
                return Outcome::Failed(trouble(e, env, deps).await);
            }
            _ => {
                keep_unknown(
                    env,
                    deps,
                    "move",
                    &claim,
                    padded,
                    Some(&old),
                    Some(event_id),
                )
                .await;
                return unconfirmed(failed, env, deps).await;
            }
        },
    };
    let padded = rules.padded(moved.slot);
    let after = commit_after_write(env, deps, "move", &claim, padded, Some(&old), &moved).await;
    if let AfterWrite::Conflict { conflict } = after {
        // Its old claim still covers where it was (a replaced claim goes
        // only at commit): moved back, the meeting stays as booked.
        match env
            .provider
            .move_event(event_id, from, rules.timezone)
            .await
        {
            Ok(_) => {
                tracing::warn!(claim = %claim, "the new slot was taken while the hold had lapsed; the meeting was moved back");
                return Outcome::Taken { conflict };
            }
            Err(e) => {
                tracing::error!(claim = %claim, error = %e, "the new slot was taken while the hold had lapsed and the meeting could not be moved back");
            }
        }
    }
    Outcome::Done {
        slot: moved.slot,
        event_id: moved.event_id,
        join_link: moved.join_link,
        claim,
    }
}
