//! Outcomes in Redis, so whichever instance the admin API reaches answers
//! for calls any instance ran.
//!
//! Two lists of JSON records, newest first: `{prefix}outcomes:call:{sid}`
//! (at most [`PER_CALL`]) and `{prefix}outcomes:campaign:{id}` (at most
//! [`PER_CAMPAIGN`]). A record is pushed to both in one `MULTI`, each list
//! trimmed and its expiry set to [`RETENTION`] again; reads also skip
//! records older than that, since a busy campaign's list never expires.
//! Lists keep the order records were written in, which a sorted set by
//! time would not for records made in the same millisecond. The record a
//! write of unknown outcome would make waits under
//! `{prefix}outcomes:pending:{claim}`, expiring after [`PENDING_FOR`].

use super::{
    BookingRecord, OutcomeError, OutcomeStore, PENDING_FOR, PER_CALL, PER_CAMPAIGN, RETENTION,
};
use crate::clock::Clock;
use crate::redis_conn::RedisConn;
use async_trait::async_trait;

/// Outcomes shared through Redis.
pub struct RedisOutcomes {
    conn: RedisConn,
    prefix: String,
    clock: Clock,
}

fn unavailable(e: impl std::fmt::Display) -> OutcomeError {
    OutcomeError::Unavailable(e.to_string())
}

impl RedisOutcomes {
    /// Connects to `url`; keys start with `prefix` (`callbook:`). Ages are
    /// measured on `clock`.
    pub async fn connect(url: &str, prefix: &str, clock: Clock) -> Result<Self, OutcomeError> {
        let conn = crate::redis_conn::connect(url).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            clock,
        })
    }

    fn call_key(&self, call_sid: &str) -> String {
        format!("{}outcomes:call:{call_sid}", self.prefix)
    }

    fn pending_key(&self, claim: &str) -> String {
        format!("{}outcomes:pending:{claim}", self.prefix)
    }

    fn campaign_key(&self, campaign_id: &str) -> String {
        format!("{}outcomes:campaign:{campaign_id}", self.prefix)
    }

    async fn newest(&self, key: &str, limit: usize) -> Result<Vec<BookingRecord>, OutcomeError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(stop)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let cutoff = self.clock.now() - RETENTION;
        let mut out = Vec::with_capacity(raw.len());
        for json in raw {
            match serde_json::from_str::<BookingRecord>(&json) {
                Ok(record) if record.at >= cutoff => out.push(record),
                Ok(_) => {}
                // One unreadable entry must not hide the rest for a month;
                // its text (an invitee's email) stays out of the log.
                Err(e) => tracing::warn!(
                    key = %key,
                    column = e.column(),
                    "skipping an unreadable stored outcome"
                ),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl OutcomeStore for RedisOutcomes {
    async fn put(&self, record: &BookingRecord) -> Result<(), OutcomeError> {
        let json =
            serde_json::to_string(record).map_err(|e| OutcomeError::Encode(e.to_string()))?;
        let ttl = RETENTION.num_seconds();
        let mut lists = vec![(self.call_key(&record.call_sid), PER_CALL)];
        if let Some(c) = &record.campaign_id {
            lists.push((self.campaign_key(c), PER_CAMPAIGN));
        }
        // One transaction per list: the call's and the campaign's lists
        // hash to different slots, and a Redis Cluster runs a transaction
        // on one slot only.
        for (key, keep) in &lists {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("LPUSH").arg(key).arg(&json).ignore();
            pipe.cmd("LTRIM").arg(key).arg(0).arg(keep - 1).ignore();
            pipe.cmd("EXPIRE").arg(key).arg(ttl).ignore();
            pipe.query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn by_call(
        &self,
        call_sid: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError> {
        self.newest(&self.call_key(call_sid), limit).await
    }

    async fn by_campaign(
        &self,
        campaign_id: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError> {
        self.newest(&self.campaign_key(campaign_id), limit).await
    }

    async fn pend(&self, claim: &str, record: &BookingRecord) -> Result<(), OutcomeError> {
        let json =
            serde_json::to_string(record).map_err(|e| OutcomeError::Encode(e.to_string()))?;
        redis::cmd("SET")
            .arg(self.pending_key(claim))
            .arg(json)
            .arg("EX")
            .arg(PENDING_FOR.num_seconds())
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    async fn take_pending(&self, claim: &str) -> Result<Option<BookingRecord>, OutcomeError> {
        let json: Option<String> = redis::cmd("GETDEL")
            .arg(self.pending_key(claim))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}
