//! The in-process ledger: first confirm wins across the calls of one process.

use super::{Claim, Ledger, LedgerError, Rebuilt, HOLD_TTL, PRUNE_AFTER, UNKNOWN_TTL};
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Entry {
    interval: Interval,
    /// `None` once committed.
    expires: Option<DateTime<Utc>>,
    replaces: Option<String>,
    /// The event may exist (see [`Ledger::mark_unknown`]).
    unknown: bool,
    event_id: Option<String>,
}

/// One calendar's claims, indexed so that every operation costs
/// O(log n + k) in its n claims, k being the claims near the interval
/// asked about (a few meetings), not the whole history.
#[derive(Debug, Default)]
struct Calendar {
    /// (start, id) → claim: the overlap check and reads walk only the
    /// starts in `[start - longest, end)`.
    by_start: BTreeMap<(DateTime<Utc>, String), Entry>,
    /// id → start, to find a claim by id.
    starts: HashMap<String, DateTime<Utc>>,
    /// (expiry, id) of holds, to reap the lapsed ones first.
    expiring: BTreeSet<(DateTime<Utc>, String)>,
    /// (end, id) of committed claims, to prune the long past ones first.
    ended: BTreeSet<(DateTime<Utc>, String)>,
    /// The longest claim ever made: how far back a conflicting start can lie.
    longest: Duration,
}

impl Calendar {
    /// Drops lapsed holds and committed claims that ended more than
    /// [`PRUNE_AFTER`] before `now`.
    fn tidy(&mut self, now: DateTime<Utc>) {
        while let Some((at, id)) = self.expiring.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&id);
        }
        let cutoff = now - PRUNE_AFTER;
        while let Some((end, id)) = self.ended.first().cloned() {
            if end >= cutoff {
                break;
            }
            self.remove(&id);
        }
    }

    fn get(&self, id: &str) -> Option<&Entry> {
        let start = *self.starts.get(id)?;
        self.by_start.get(&(start, id.to_string()))
    }

    fn remove(&mut self, id: &str) {
        let Some(start) = self.starts.remove(id) else {
            return;
        };
        if let Some(e) = self.by_start.remove(&(start, id.to_string())) {
            match e.expires {
                Some(at) => self.expiring.remove(&(at, id.to_string())),
                None => self.ended.remove(&(e.interval.end, id.to_string())),
            };
        }
    }

    /// Claims overlapping `window`, in (start, id) order.
    fn overlapping(&self, window: Interval) -> impl Iterator<Item = (&str, &Entry)> {
        let from = (window.start - self.longest, String::new());
        self.by_start
            .range(from..)
            .take_while(move |((start, _), _)| *start < window.end)
            .filter(move |(_, e)| e.interval.overlaps(&window))
            .map(|((_, id), e)| (id.as_str(), e))
    }

    /// A live hold's expiry moved to `until` (never earlier) and `change`
    /// applied to it; a committed claim is left as it is.
    fn renew(
        &mut self,
        id: &str,
        until: DateTime<Utc>,
        change: impl FnOnce(&mut Entry),
    ) -> Result<(), LedgerError> {
        let mut entry = self.get(id).cloned().ok_or(LedgerError::NotHeld)?;
        let Some(expires) = entry.expires else {
            return Ok(());
        };
        self.remove(id);
        entry.expires = Some(expires.max(until));
        change(&mut entry);
        self.insert(id, entry);
        Ok(())
    }

    fn insert(&mut self, id: &str, entry: Entry) {
        self.longest = self.longest.max(entry.interval.end - entry.interval.start);
        self.starts.insert(id.to_string(), entry.interval.start);
        match entry.expires {
            Some(at) => self.expiring.insert((at, id.to_string())),
            None => self.ended.insert((entry.interval.end, id.to_string())),
        };
        self.by_start
            .insert((entry.interval.start, id.to_string()), entry);
    }
}

/// Claims per calendar behind one mutex; each operation is a short critical
/// section with no `.await` inside, logarithmic in the calendar's claims.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    calendars: Mutex<HashMap<String, Calendar>>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(
        &self,
        calendar: &str,
        now: Option<DateTime<Utc>>,
        f: impl FnOnce(&mut Calendar) -> R,
    ) -> R {
        let mut all = self.calendars.lock().unwrap_or_else(|p| p.into_inner());
        let cal = match all.get_mut(calendar) {
            Some(cal) => cal,
            None => all.entry(calendar.to_string()).or_default(),
        };
        if let Some(now) = now {
            cal.tidy(now);
        }
        f(cal)
    }

    /// How many claims `calendar` keeps, live or committed (for tests and
    /// benches: pruning keeps this bounded).
    pub fn len(&self, calendar: &str) -> usize {
        let all = self.calendars.lock().unwrap_or_else(|p| p.into_inner());
        all.get(calendar).map_or(0, |c| c.starts.len())
    }

    /// Whether `calendar` keeps no claims.
    pub fn is_empty(&self, calendar: &str) -> bool {
        self.len(calendar) == 0
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn hold(
        &self,
        calendar: &str,
        claim: &str,
        interval: Interval,
        replaces: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |cal| {
            if cal.starts.contains_key(claim) {
                return Ok(());
            }
            // The earliest-starting conflict (then by id), as every ledger
            // reports it: the walk is in that order.
            if let Some((_, conflict)) = cal
                .overlapping(interval)
                .find(|(id, _)| Some(*id) != replaces)
            {
                return Err(LedgerError::Taken {
                    conflict: conflict.interval,
                });
            }
            cal.insert(
                claim,
                Entry {
                    interval,
                    expires: Some(now + HOLD_TTL),
                    replaces: replaces.map(str::to_string),
                    unknown: false,
                    event_id: None,
                },
            );
            Ok(())
        })
    }

    async fn commit_event(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |cal| {
            let mut entry = cal.get(claim).cloned().ok_or(LedgerError::NotHeld)?;
            cal.remove(claim);
            entry.expires = None;
            entry.unknown = false;
            if let Some(id) = event_id {
                entry.event_id = Some(id.to_string());
            }
            let old = entry.replaces.take();
            cal.insert(claim, entry);
            if let Some(old) = old {
                cal.remove(&old);
            }
            Ok(())
        })
    }

    async fn extend(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |cal| {
            cal.renew(claim, now + HOLD_TTL, |_| {})
        })
    }

    async fn mark_unknown(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |cal| {
            cal.renew(claim, now + UNKNOWN_TTL, |e| {
                e.unknown = true;
                if let Some(id) = event_id {
                    e.event_id = Some(id.to_string());
                }
            })
        })
    }

    async fn rebuild(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |cal| {
            for c in claims {
                // A claim still held whose event exists is made: committed,
                // as its commit would have; a committed one is left as it is.
                match cal.get(&c.id) {
                    Some(e) if e.expires.is_none() => continue,
                    Some(_) => cal.remove(&c.id),
                    None => {}
                }
                cal.insert(
                    &c.id,
                    Entry {
                        interval: c.interval,
                        expires: None,
                        replaces: None,
                        unknown: false,
                        event_id: Some(c.event_id.clone()),
                    },
                );
            }
        });
        Ok(())
    }

    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError> {
        self.with(calendar, None, |cal| cal.remove(claim));
        Ok(())
    }

    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError> {
        Ok(self.with(calendar, Some(now), |cal| {
            cal.overlapping(window)
                .map(|(id, e)| Claim {
                    id: id.to_string(),
                    interval: e.interval,
                    committed: e.expires.is_none(),
                    unknown: e.unknown,
                    event_id: e.event_id.clone(),
                })
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T15:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(min)
    }

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(t(a), t(b))
    }

    #[tokio::test]
    async fn first_hold_wins_and_second_learns_the_conflict() {
        let l = MemoryLedger::new();
        l.hold("cal", "a", iv(0, 40), None, t(-60)).await.unwrap();
        let err = l
            .hold("cal", "b", iv(30, 70), None, t(-60))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LedgerError::Taken {
                conflict: iv(0, 40)
            }
        );
        // Touching intervals do not overlap.
        l.hold("cal", "c", iv(40, 80), None, t(-60)).await.unwrap();
        // Another calendar is independent.
        l.hold("other", "d", iv(0, 40), None, t(-60)).await.unwrap();
    }

    #[tokio::test]
    async fn holds_expire_but_commits_stay() {
        let l = MemoryLedger::new();
        l.hold("cal", "a", iv(0, 30), None, t(-600)).await.unwrap();
        l.hold("cal", "b", iv(60, 90), None, t(-600)).await.unwrap();
        l.commit("cal", "b", t(-600)).await.unwrap();
        let later = t(-600) + HOLD_TTL + Duration::seconds(1);
        assert_eq!(l.commit("cal", "a", later).await, Err(LedgerError::NotHeld));
        let live = l.claims("cal", iv(-1000, 1000), later).await.unwrap();
        assert_eq!(
            live.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );
    }

    #[tokio::test]
    async fn a_move_may_overlap_the_claim_it_replaces() {
        let l = MemoryLedger::new();
        l.hold("cal", "old", iv(0, 40), None, t(-60)).await.unwrap();
        l.commit("cal", "old", t(-60)).await.unwrap();
        l.hold("cal", "new", iv(30, 70), Some("old"), t(-60))
            .await
            .unwrap();
        l.commit("cal", "new", t(-60)).await.unwrap();
        let live = l.claims("cal", iv(-1000, 1000), t(-60)).await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, "new");
    }
}
