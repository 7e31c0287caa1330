//! The reconciler: settles what the booking saga left open, and what
//! changed on the calendar behind callbook's back.
//!
//! For one calendar it reads the ledger's claims and, against the
//! provider:
//! - rolls an *unknown* claim (a write whose outcome was lost) forward when
//!   its event is there (committed, with the event's id) or back when it is
//!   not (released). Unknown claims of a booking are looked up by their
//!   booking id (the claim id, stored on the event); those of a move by the
//!   event id they recorded, and kept only if the event is in the new slot;
//! - removes a committed claim for a future meeting whose event was
//!   deleted in the provider's own app (the claim covers no busy time on
//!   the calendar, and the event, looked up by its id, is gone);
//! - adopts an event callbook made that no claim covers (its instance died
//!   between the create and the commit, and its hold lapsed): the events
//!   carrying a booking id in the window are listed, and each that no
//!   claim names (by claim id or event id) gets a committed claim.
//!
//! Abandoned holds need no reconciler: they lapse after
//! [`crate::ledger::HOLD_TTL`] by the ledger's clock and are reaped by its
//! next operation. A provider that cannot answer leaves a claim as it is,
//! so the reconciler never frees a slot whose event may exist.
//!
//! A shared ledger that lost its claims (a Redis restarted empty: its
//! calendars have no mark, see [`crate::ledger::RedisLedger`]) answers
//! `Unverified`; [`rebuild`] then restores the calendar's committed claims
//! from the events callbook tagged with their booking ids, and until it
//! succeeds no confirm on that calendar goes through.
//!
//! It runs when a call loads availability (on that call's calendar, before
//! the claims are read) and periodically (every [`RECONCILE_PERIOD`] unless
//! `--reconcile-seconds` says otherwise) over the calendars this instance
//! loaded recently.

use crate::calendar::{CalendarError, CalendarProvider, CreatedEvent, TaggedEvent};
use crate::ledger::{Claim, Ledger, LedgerError, Rebuilt, PRUNE_AFTER};
use crate::schedule::{BookingRules, Interval};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// How often the calendars loaded recently are reconciled.
pub const RECONCILE_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// A calendar not loaded for this long is no longer reconciled by the
/// periodic run (the next call that loads it reconciles it first).
const FORGET_AFTER: Duration = Duration::hours(1);

/// The most provider look-ups one reconcile makes: a call loading
/// availability waits for them.
const MAX_LOOKUPS: usize = 4;

/// The longest one look-up may take.
const LOOKUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// How far ahead the periodic run looks, past which nothing is booked.
const HORIZON: Duration = Duration::days(120);

/// What one reconcile settled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Unknown claims whose event exists: committed.
    pub forward: usize,
    /// Those claims' ids and events, for their outcome records
    /// ([`crate::outcomes::Recorder::settle`]).
    pub forwarded: Vec<(String, CreatedEvent)>,
    /// Unknown claims whose event does not: released.
    pub back: usize,
    /// Committed claims whose event was deleted: released.
    pub removed: usize,
    /// Events no claim covered: committed claims made for them.
    pub adopted: usize,
}

async fn look(
    lookup: impl Future<Output = Result<Option<CreatedEvent>, CalendarError>>,
) -> Option<Option<CreatedEvent>> {
    match tokio::time::timeout(LOOKUP_BUDGET, lookup).await {
        Ok(Ok(found)) => Some(found),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reconciler look-up failed; the claim stays");
            None
        }
        Err(_) => None,
    }
}

/// Settles `calendar`'s claims overlapping `window` and returns the claims
/// that remain. `busy` is the provider's busy time over the window when
/// the caller has it (a deleted event shows as free there, so only claims
/// over free time are looked up).
pub async fn reconcile(
    ledger: &dyn Ledger,
    calendar: &str,
    provider: &dyn CalendarProvider,
    rules: &BookingRules,
    window: Interval,
    busy: &[Interval],
    now: DateTime<Utc>,
) -> Result<(Vec<Claim>, Settled), LedgerError> {
    let claims = ledger.claims(calendar, window, now).await?;
    let mut settled = Settled::default();
    let mut lookups = 0;
    let mut kept = Vec::with_capacity(claims.len());
    for c in claims {
        let open = c.unknown
            || (c.committed
                && c.event_id.is_some()
                && c.interval.end > now
                && !busy.iter().any(|b| b.overlaps(&c.interval)));
        if !open || lookups >= MAX_LOOKUPS {
            kept.push(c);
            continue;
        }
        lookups += 1;
        let found = match &c.event_id {
            Some(id) => look(provider.event(id)).await,
            None => look(provider.find_booking(&c.id)).await,
        };
        let Some(found) = found else {
            kept.push(c);
            continue;
        };
        // A booking's event is where it was asked for; a move's counts
        // only once it is in the new slot.
        let here = |ev: &CreatedEvent| c.event_id.is_none() || rules.padded(ev.slot) == c.interval;
        match (c.unknown, found) {
            (true, Some(ev)) if here(&ev) => {
                ledger
                    .commit_event(calendar, &c.id, Some(&ev.event_id), now)
                    .await?;
                tracing::info!(claim = %c.id, "reconciler: the event exists; claim committed");
                settled.forward += 1;
                settled.forwarded.push((c.id.clone(), ev.clone()));
                kept.push(Claim {
                    committed: true,
                    unknown: false,
                    event_id: Some(ev.event_id),
                    ..c
                });
            }
            (true, _) => {
                ledger.release(calendar, &c.id).await?;
                tracing::info!(claim = %c.id, "reconciler: no such event; claim released");
                settled.back += 1;
            }
            (false, None) => {
                ledger.release(calendar, &c.id).await?;
                tracing::info!(claim = %c.id, "reconciler: the event was deleted; claim removed");
                settled.removed += 1;
            }
            (false, Some(_)) => kept.push(c),
        }
    }
    settled.adopted = adopt(ledger, calendar, provider, rules, window, &mut kept, now).await?;
    crate::observe::metrics::reconciled(
        settled.forward,
        settled.back,
        settled.removed,
        settled.adopted,
    );
    Ok((kept, settled))
}

/// The committed claim that covers an event callbook made: its booking id,
/// its slot padded by `rules`, its event id.
pub(super) fn claim_for(tagged: TaggedEvent, rules: &BookingRules) -> Rebuilt {
    Rebuilt {
        id: tagged.booking_id,
        interval: rules.padded(tagged.event.slot),
        event_id: tagged.event.event_id,
    }
}

/// Gives every event callbook made in `window` that no claim in `kept`
/// names a committed claim (added to `kept`); returns how many. A calendar
/// that cannot be listed now is left for the next run.
async fn adopt(
    ledger: &dyn Ledger,
    calendar: &str,
    provider: &dyn CalendarProvider,
    rules: &BookingRules,
    window: Interval,
    kept: &mut Vec<Claim>,
    now: DateTime<Utc>,
) -> Result<usize, LedgerError> {
    let tagged = match tokio::time::timeout(LOOKUP_BUDGET, provider.tagged_events(window)).await {
        Ok(Ok(tagged)) => tagged,
        _ => return Ok(0),
    };
    let orphans: Vec<Rebuilt> = tagged
        .into_iter()
        .filter(|t| {
            !kept.iter().any(|c| {
                c.id == t.booking_id || c.event_id.as_deref() == Some(t.event.event_id.as_str())
            })
        })
        .map(|t| claim_for(t, rules))
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    ledger.adopt(calendar, &orphans, now).await?;
    for o in &orphans {
        tracing::warn!(claim = %o.id, "reconciler: an event no claim covered; claim committed");
    }
    kept.extend(orphans.iter().map(|o| Claim {
        id: o.id.clone(),
        interval: o.interval,
        committed: true,
        unknown: false,
        event_id: Some(o.event_id.clone()),
    }));
    Ok(orphans.len())
}

/// Restores `calendar`'s claims from the provider's tagged events (the
/// meetings callbook booked there, each under its booking id, padded by
/// `rules`) and marks them complete. `None` when the provider or the
/// ledger could not be read: the calendar stays refused.
pub async fn rebuild(
    ledger: &dyn Ledger,
    calendar: &str,
    provider: &dyn CalendarProvider,
    rules: &BookingRules,
    now: DateTime<Utc>,
) -> Option<usize> {
    let window = Interval::new(now - PRUNE_AFTER, now + HORIZON);
    let events = match provider.tagged_events(window).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "rebuilding the ledger: the calendar could not be read");
            return None;
        }
    };
    let claims: Vec<Rebuilt> = events.into_iter().map(|t| claim_for(t, rules)).collect();
    match ledger.rebuild(calendar, &claims, now).await {
        Ok(()) => {
            tracing::info!(
                claims = claims.len(),
                "ledger rebuilt from the calendar's events"
            );
            crate::observe::metrics::rebuilt(claims.len());
            Some(claims.len())
        }
        Err(e) => {
            tracing::warn!(error = %e, "rebuilding the ledger failed");
            None
        }
    }
}

/// Records, for each unknown claim `settled` rolled forward, the outcome
/// its call was told might come ([`crate::outcomes::Recorder::settle`]).
pub async fn announce(outcomes: &crate::outcomes::Recorder, settled: &Settled, now: DateTime<Utc>) {
    for (claim, event) in &settled.forwarded {
        outcomes.settle(claim, event, now).await;
    }
}

/// A calendar to reconcile periodically: how to reach it and its rules.
struct Target {
    provider: Arc<dyn CalendarProvider>,
    rules: BookingRules,
    seen: DateTime<Utc>,
}

/// The calendars this instance loaded recently, for the periodic run.
#[derive(Default)]
pub struct Reconciler {
    targets: Mutex<HashMap<String, Target>>,
}

impl Reconciler {
    pub fn new() -> Self {
        Self::default()
    }

    /// `calendar` was loaded at `now` through `provider`.
    pub fn note(
        &self,
        calendar: &str,
        provider: Arc<dyn CalendarProvider>,
        rules: &BookingRules,
        now: DateTime<Utc>,
    ) {
        let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets.insert(
            calendar.to_string(),
            Target {
                provider,
                rules: rules.clone(),
                seen: now,
            },
        );
    }

    /// Reconciles every calendar loaded within the last hour; forgets the
    /// others. One calendar's trouble does not stop the rest.
    pub async fn run(&self, ledger: &dyn Ledger, now: DateTime<Utc>) -> Settled {
        let due: Vec<(String, Arc<dyn CalendarProvider>, BookingRules)> = {
            let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
            targets.retain(|_, t| now - t.seen < FORGET_AFTER);
            targets
                .iter()
                .map(|(k, t)| (k.clone(), t.provider.clone(), t.rules.clone()))
                .collect()
        };
        let mut total = Settled::default();
        for (calendar, provider, rules) in due {
            let window = Interval::new(now - Duration::days(1), now + HORIZON);
            let busy = match tokio::time::timeout(LOOKUP_BUDGET, provider.free_busy(window)).await {
                Ok(Ok(busy)) => busy,
                _ => continue,
            };
            let mut settled =
                reconcile(ledger, &calendar, &*provider, &rules, window, &busy, now).await;
            if settled == Err(LedgerError::Unverified)
                && rebuild(ledger, &calendar, &*provider, &rules, now)
                    .await
                    .is_some()
            {
                settled =
                    reconcile(ledger, &calendar, &*provider, &rules, window, &busy, now).await;
            }
            match settled {
                Ok((_, s)) => {
                    total.forward += s.forward;
                    total.forwarded.extend(s.forwarded);
                    total.back += s.back;
                    total.removed += s.removed;
                    total.adopted += s.adopted;
                }
                Err(e) => tracing::warn!(error = %e, "reconciler: ledger unavailable"),
            }
        }
        total
    }
}
