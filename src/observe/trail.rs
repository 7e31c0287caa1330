//! The last calls of each campaign, as they ended: how far each got and
//! why it stopped, for `GET /v1/campaigns/{id}/diagnostics`. Outcomes
//! (booked, failed, skipped) are in the outcome store and shared between
//! instances; this adds what the outcome store never sees, the calls that
//! ended before anything was decided (before the offer, say).
//!
//! In process and bounded: the newest [`PER_CAMPAIGN`] calls of at most
//! [`CAMPAIGNS`] campaigns (the campaign written longest ago goes first).
//! With several instances each knows the calls it ran. Nothing of the
//! caller is kept (see [`CallEnd`]).

use super::progress::CallEnd;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Calls kept per campaign.
pub const PER_CAMPAIGN: usize = 50;

/// Campaigns kept. Only campaigns the store knew are recorded, so this is
/// the operator's count, not the pipelines'.
pub const CAMPAIGNS: usize = 1000;

/// Recent call endings by campaign.
#[derive(Default)]
pub struct CallTrail {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_campaign: HashMap<String, VecDeque<CallEnd>>,
    /// Campaigns in the order they were last written, oldest first.
    order: VecDeque<String>,
}

impl CallTrail {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a call's ending; calls on no known campaign are not kept.
    pub fn record(&self, end: CallEnd) {
        let Some(campaign) = end.campaign_id.clone() else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = inner.order.iter().position(|c| *c == campaign) {
            inner.order.remove(pos);
        } else if inner.order.len() >= CAMPAIGNS {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_campaign.remove(&oldest);
            }
        }
        inner.order.push_back(campaign.clone());
        let list = inner.by_campaign.entry(campaign).or_default();
        if list.len() >= PER_CAMPAIGN {
            list.pop_front();
        }
        list.push_back(end);
    }

    /// The campaign's last `n` call endings, newest first.
    pub fn recent(&self, campaign: &str, n: usize) -> Vec<CallEnd> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .by_campaign
            .get(campaign)
            .map(|l| l.iter().rev().take(n).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::progress::{Ending, Reached};

    fn end(sid: &str, campaign: Option<&str>) -> CallEnd {
        CallEnd {
            call_sid: sid.into(),
            campaign_id: campaign.map(str::to_string),
            ended_at: "2026-12-01T15:00:00Z".parse().unwrap(),
            reached: Reached::Listening,
            last_stage: "listening",
            ending: Ending::Hangup,
            offer_asked: false,
            skipped: None,
            failed: None,
            declined: false,
            taken: false,
        }
    }

    #[test]
    fn the_trail_keeps_the_newest_calls_of_each_campaign_newest_first() {
        let t = CallTrail::new();
        for i in 0..PER_CAMPAIGN + 5 {
            t.record(end(&format!("CA{i}"), Some("a")));
        }
        t.record(end("CAx", None));
        let got = t.recent("a", 3);
        let sids: Vec<_> = got.iter().map(|e| e.call_sid.as_str()).collect();
        assert_eq!(sids, ["CA54", "CA53", "CA52"]);
        assert_eq!(t.recent("a", 1000).len(), PER_CAMPAIGN);
        assert!(t.recent("b", 3).is_empty());
    }

    #[test]
    fn the_campaign_written_longest_ago_goes_first() {
        let t = CallTrail::new();
        for i in 0..CAMPAIGNS {
            t.record(end("CA", Some(&format!("c{i}"))));
        }
        // c0 is written again: c1 is now the oldest.
        t.record(end("CA", Some("c0")));
        t.record(end("CA", Some("new")));
        assert_eq!(t.recent("c0", 5).len(), 2);
        assert!(t.recent("c1", 5).is_empty());
        assert_eq!(t.recent("new", 5).len(), 1);
    }
}
