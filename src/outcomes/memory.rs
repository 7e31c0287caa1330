//! Outcomes in process, for a single instance: the newest
//! [`PER_CAMPAIGN`] per campaign, at most [`CAPACITY`] in all, none older
//! than [`RETENTION`]. Lost on restart; use Redis to keep them across
//! restarts and share them between instances.

use super::{
    BookingRecord, OutcomeError, OutcomeStore, PENDING_FOR, PER_CALL, PER_CAMPAIGN, RETENTION,
};
use crate::clock::Clock;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The most outcomes kept in all. Campaign ids come from the pipeline's
/// `start` frames, so their number is not ours to bound; this is. At a few
/// hundred bytes a record, about 10 MB.
pub const CAPACITY: usize = 20_000;

/// In-process outcomes, indexed by call and by campaign.
pub struct MemoryOutcomes {
    clock: Clock,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per campaign (`None`: calls without one), oldest first.
    by_campaign: HashMap<Option<String>, VecDeque<Arc<BookingRecord>>>,
    /// Per call, oldest first.
    by_call: HashMap<String, Vec<Arc<BookingRecord>>>,
    total: usize,
    /// Records of writes whose outcome is unknown, by claim, with when
    /// they were kept.
    pending: HashMap<String, (chrono::DateTime<chrono::Utc>, BookingRecord)>,
}

/// The most records of unknown outcome kept at once (the oldest go first).
const PENDING_CAPACITY: usize = 10_000;

impl MemoryOutcomes {
    /// Ages are measured on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// What is held: records counted, records in campaign lists, calls and
    /// campaigns.
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize, usize, Vec<Option<String>>) {
        let inner = self.lock();
        (
            inner.total,
            inner.by_campaign.values().map(VecDeque::len).sum(),
            inner.by_call.len(),
            inner.by_campaign.keys().cloned().collect(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn forget(&mut self, record: &BookingRecord) {
        self.total -= 1;
        if let Some(list) = self.by_call.get_mut(&record.call_sid) {
            list.retain(|r| r.id != record.id);
            if list.is_empty() {
                self.by_call.remove(&record.call_sid);
            }
        }
    }

    fn pop_oldest_of(&mut self, campaign: &Option<String>) {
        let Some(q) = self.by_campaign.get_mut(campaign) else {
            return;
        };
        let old = q.pop_front();
        if q.is_empty() {
            self.by_campaign.remove(campaign);
        }
        if let Some(old) = old {
            self.forget(&old);
        }
    }

    /// Drops what is past retention, then the oldest records while over
    /// capacity.
    fn prune(&mut self, cutoff: chrono::DateTime<chrono::Utc>) {
        let stale: Vec<Option<String>> = self
            .by_campaign
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|r| r.at < cutoff))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            while self
                .by_campaign
                .get(&key)
                .and_then(|q| q.front())
                .is_some_and(|r| r.at < cutoff)
            {
                self.pop_oldest_of(&key);
            }
        }
        while self.total > CAPACITY {
            let oldest = self
                .by_campaign
                .iter()
                .filter_map(|(k, q)| q.front().map(|r| (r.at, k)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, k)| k.clone());
            match oldest {
                Some(key) => self.pop_oldest_of(&key),
                None => break,
            }
        }
    }
}

fn newest<'a>(
    records: impl DoubleEndedIterator<Item = &'a Arc<BookingRecord>>,
    cutoff: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> Vec<BookingRecord> {
    records
        .rev()
        .filter(|r| r.at >= cutoff)
        .take(limit)
        .map(|r| BookingRecord::clone(r))
        .collect()
}

#[async_trait]
impl OutcomeStore for MemoryOutcomes {
    async fn put(&self, record: &BookingRecord) -> Result<(), OutcomeError> {
        let cutoff = self.clock.now() - RETENTION;
        let record = Arc::new(record.clone());
        let mut inner = self.lock();
        let calls = inner.by_call.entry(record.call_sid.clone()).or_default();
        calls.push(record.clone());
        let mut evicted = Vec::new();
        if calls.len() > PER_CALL {
            evicted.push(calls.remove(0));
        }
        let key = record.campaign_id.clone();
        let q = inner.by_campaign.entry(key.clone()).or_default();
        q.push_back(record);
        inner.total += 1;
        for old in evicted {
            // Out of the call's list already; take it out of its campaign's.
            if let Some(q) = inner.by_campaign.get_mut(&old.campaign_id) {
                q.retain(|r| r.id != old.id);
                if q.is_empty() {
                    inner.by_campaign.remove(&old.campaign_id);
                }
            }
            inner.total -= 1;
        }
        while inner
            .by_campaign
            .get(&key)
            .is_some_and(|q| q.len() > PER_CAMPAIGN)
        {
            inner.pop_oldest_of(&key);
        }
        inner.prune(cutoff);
        Ok(())
    }

    async fn by_call(
        &self,
        call_sid: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError> {
        let cutoff = self.clock.now() - RETENTION;
        let inner = self.lock();
        Ok(inner
            .by_call
            .get(call_sid)
            .map(|l| newest(l.iter(), cutoff, limit))
            .unwrap_or_default())
    }

    async fn by_campaign(
        &self,
        campaign_id: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError> {
        let cutoff = self.clock.now() - RETENTION;
        let inner = self.lock();
        Ok(inner
            .by_campaign
            .get(&Some(campaign_id.to_string()))
            .map(|q| newest(q.iter(), cutoff, limit))
            .unwrap_or_default())
    }

    async fn pend(&self, claim: &str, record: &BookingRecord) -> Result<(), OutcomeError> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.pending.retain(|_, (at, _)| now - *at < PENDING_FOR);
        if inner.pending.len() >= PENDING_CAPACITY {
            let oldest = inner
                .pending
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.pending.remove(&k);
            }
        }
        inner
            .pending
            .insert(claim.to_string(), (now, record.clone()));
        Ok(())
    }

    async fn take_pending(&self, claim: &str) -> Result<Option<BookingRecord>, OutcomeError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .pending
            .remove(claim)
            .filter(|(at, _)| now - *at < PENDING_FOR)
            .map(|(_, r)| r))
    }
}
