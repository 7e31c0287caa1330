//! One retry policy for every provider call made while a caller waits.
//!
//! Per-request timeouts come from the HTTP client; this bounds the whole
//! operation (a caller turn) and spaces attempts with full-jitter
//! exponential backoff. Only what is safe is retried: transient faults and
//! rate limits. A rejected request, an expired grant, missing consent, a
//! duplicate or a missing event is final. Creates stay safe to retry because
//! the provider-side id is derived from the booking.

use super::CalendarError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How hard to try within one caller turn.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total time for all attempts and waits.
    pub budget: Duration,
    /// First backoff ceiling; doubles per attempt up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// About 5 s in all: what a caller will sit through with a filler line.
    pub const LIVE_CALL: RetryPolicy = RetryPolicy {
        budget: Duration::from_secs(5),
        base: Duration::from_millis(200),
        cap: Duration::from_secs(2),
        max_attempts: 4,
    };

    /// The wait before attempt `n + 1` (n counts from 0): uniformly random
    /// up to `min(cap, base · 2ⁿ)`.
    pub fn backoff(&self, n: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << n.min(16)).min(self.cap);
        Duration::from_millis(fastrand::u64(0..=ceiling.as_millis() as u64))
    }
}

/// Whether an error may be retried, and the wait the provider asked for.
fn retryable(e: &CalendarError) -> Option<Option<Duration>> {
    match e {
        CalendarError::Transient(_) => Some(None),
        CalendarError::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    }
}

/// Runs `op` until it succeeds, fails for good, or the budget runs out.
/// `op` gets the attempt number (0 first).
pub async fn retry<T, F, Fut>(policy: RetryPolicy, mut op: F) -> Result<T, CalendarError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, CalendarError>>,
{
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let err = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(asked) = retryable(&err) else {
            return Err(err);
        };
        attempt += 1;
        let wait = asked.unwrap_or_else(|| policy.backoff(attempt - 1));
        if attempt >= policy.max_attempts || started.elapsed() + wait >= policy.budget {
            return Err(err);
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_is_bounded_by_the_doubling_ceiling() {
        let p = RetryPolicy::LIVE_CALL;
        for n in 0..10 {
            let ceiling = (200u64 << n).min(2000);
            for _ in 0..50 {
                assert!(p.backoff(n).as_millis() as u64 <= ceiling);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_faults_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let r = retry(RetryPolicy::LIVE_CALL, |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(CalendarError::Transient("503".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn final_errors_are_not_retried() {
        for e in [
            CalendarError::Rejected("400".into()),
            CalendarError::Expired,
            CalendarError::ConsentRequired,
            CalendarError::Duplicate,
            CalendarError::NotFound,
        ] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = retry(RetryPolicy::LIVE_CALL, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                let e = e.clone();
                async move { Err(e) }
            })
            .await;
            assert!(r.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{e:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_the_budget_bounds_it() {
        let started = Instant::now();
        let calls = AtomicU32::new(0);
        let r = retry(RetryPolicy::LIVE_CALL, |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(CalendarError::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                })
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(r, Ok(()));
        assert!(started.elapsed() >= Duration::from_secs(3));
        // A wait longer than the budget is not attempted.
        let r: Result<(), _> = retry(RetryPolicy::LIVE_CALL, |_| async {
            Err(CalendarError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            })
        })
        .await;
        assert!(matches!(r, Err(CalendarError::RateLimited { .. })));
    }
}
