//! The in-process ledger: first confirm wins across the calls of one process.

use super::{Claim, Ledger, LedgerError, HOLD_TTL};
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    interval: Interval,
    /// `None` once committed.
    expires: Option<DateTime<Utc>>,
    replaces: Option<String>,
}

/// Claims per calendar behind one mutex; each operation is a short critical
/// section with no `.await` inside.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    calendars: Mutex<HashMap<String, Vec<Entry>>>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(
        &self,
        calendar: &str,
        now: Option<DateTime<Utc>>,
        f: impl FnOnce(&mut Vec<Entry>) -> R,
    ) -> R {
        let mut all = self.calendars.lock().unwrap_or_else(|p| p.into_inner());
        let entries = all.entry(calendar.to_string()).or_default();
        if let Some(now) = now {
            entries.retain(|e| e.expires.is_none_or(|x| x > now));
        }
        f(entries)
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
        self.with(calendar, Some(now), |entries| {
            if entries.iter().any(|e| e.id == claim) {
                return Ok(());
            }
            // The earliest-starting conflict (then by id), as every ledger
            // reports it.
            if let Some(conflict) = entries
                .iter()
                .filter(|e| Some(e.id.as_str()) != replaces && e.interval.overlaps(&interval))
                .min_by(|a, b| (a.interval.start, &a.id).cmp(&(b.interval.start, &b.id)))
            {
                return Err(LedgerError::Taken {
                    conflict: conflict.interval,
                });
            }
            entries.push(Entry {
                id: claim.to_string(),
                interval,
                expires: Some(now + HOLD_TTL),
                replaces: replaces.map(str::to_string),
            });
            Ok(())
        })
    }

    async fn commit(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.with(calendar, Some(now), |entries| {
            let entry = entries
                .iter_mut()
                .find(|e| e.id == claim)
                .ok_or(LedgerError::NotHeld)?;
            entry.expires = None;
            if let Some(old) = entry.replaces.take() {
                entries.retain(|e| e.id != old);
            }
            Ok(())
        })
    }

    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError> {
        self.with(calendar, None, |entries| entries.retain(|e| e.id != claim));
        Ok(())
    }

    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError> {
        Ok(self.with(calendar, Some(now), |entries| {
            entries
                .iter()
                .filter(|e| e.interval.overlaps(&window))
                .map(|e| Claim {
                    id: e.id.clone(),
                    interval: e.interval,
                    committed: e.expires.is_none(),
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
