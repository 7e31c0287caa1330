//! A ledger that times and counts every decision of the one it wraps, so
//! the memory and Redis ledgers are measured the same way without either
//! knowing about metrics.

use super::metrics;
use crate::ledger::{Claim, Ledger, LedgerError, Rebuilt};
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::time::Instant;

/// Wraps a ledger; answers exactly as it does.
pub struct MeteredLedger {
    inner: Arc<dyn Ledger>,
}

impl MeteredLedger {
    pub fn wrap(inner: Arc<dyn Ledger>) -> Arc<dyn Ledger> {
        Arc::new(MeteredLedger { inner })
    }
}

fn outcome<T>(r: &Result<T, LedgerError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(LedgerError::Taken { .. }) => "taken",
        Err(LedgerError::NotHeld) => "not_held",
        Err(LedgerError::Unavailable(_)) => "unavailable",
        Err(LedgerError::Unverified) => "unverified",
    }
}

async fn timed<T>(
    op: &'static str,
    f: impl std::future::Future<Output = Result<T, LedgerError>>,
) -> Result<T, LedgerError> {
    let started = Instant::now();
    let r = f.await;
    metrics::ledger(op, outcome(&r), started.elapsed());
    r
}

#[async_trait]
impl Ledger for MeteredLedger {
    async fn hold(
        &self,
        calendar: &str,
        claim: &str,
        interval: Interval,
        replaces: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed(
            "hold",
            self.inner.hold(calendar, claim, interval, replaces, now),
        )
        .await
    }

    async fn commit_event(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed(
            "commit",
            self.inner.commit_event(calendar, claim, event_id, now),
        )
        .await
    }

    async fn extend(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed("extend", self.inner.extend(calendar, claim, now)).await
    }

    async fn mark_unknown(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed(
            "mark_unknown",
            self.inner.mark_unknown(calendar, claim, event_id, now),
        )
        .await
    }

    async fn rebuild(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed("rebuild", self.inner.rebuild(calendar, claims, now)).await
    }

    async fn adopt(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        timed("adopt", self.inner.adopt(calendar, claims, now)).await
    }

    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError> {
        timed("release", self.inner.release(calendar, claim)).await
    }

    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError> {
        timed("claims", self.inner.claims(calendar, window, now)).await
    }

    fn hold_ttl(&self) -> chrono::Duration {
        self.inner.hold_ttl()
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        self.inner.ping().await
    }
}
