//! Cross-call slot claims: the single place that decides which caller wins.
//!
//! A claim is a booking's padded interval on one calendar. `hold` checks for
//! overlap and inserts in one atomic step, so of two calls confirming
//! overlapping slots exactly one holds it; the other learns the conflict and
//! hears alternatives. Holds expire on their own (a crashed call frees its
//! slot); `commit` makes a hold permanent once the calendar event exists,
//! recording the event's id. A hold whose create ended without a known
//! outcome is marked *unknown* instead of released: it keeps the slot for
//! [`UNKNOWN_TTL`] until the reconciler (`call::reconcile`) finds the event
//! or its absence and commits or releases it.
//!
//! [`MemoryLedger`] serves one process; [`RedisLedger`] lets any number of
//! callbook instances share one Redis and still agree on the winner.

mod memory;
mod redis;

pub use self::redis::RedisLedger;
pub use memory::MemoryLedger;

use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// How long a hold lives without a commit, by default. Covers the provider
/// re-check and the create, each bounded far below this (the booking saga
/// derives its budgets from a ledger's [`Ledger::hold_ttl`]).
pub const HOLD_TTL: Duration = Duration::seconds(60);

/// The shortest hold a ledger may be configured with: the saga gives a
/// write a third of it, and a provider request alone may take 2 s.
pub const MIN_HOLD_TTL: Duration = Duration::seconds(6);

/// How long a claim whose event may or may not exist keeps its slot when
/// no reconciler settles it first. Long past any provider's free/busy lag,
/// so once it lapses an event that does exist shows as busy to the
/// provider re-check every booking makes.
pub const UNKNOWN_TTL: Duration = Duration::minutes(15);

/// How long a committed claim is kept after its interval ends. Nothing is
/// booked in the past, so older claims only grow the set; a day covers any
/// caller's clock skew and time zone mistakes with room to spare.
pub const PRUNE_AFTER: Duration = Duration::days(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// `conflict` is the earliest-starting claim in the way.
    #[error("the interval overlaps a claim already made")]
    Taken { conflict: Interval },
    #[error("no live hold for this claim")]
    NotHeld,
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The ledger does not know this calendar's claims to be complete: a
    /// shared ledger that restarted empty (or never saw the calendar) holds
    /// nothing for it, which must not read as "all free". Confirms are
    /// refused until [`Ledger::rebuild`] restores the claims from the
    /// provider's events.
    #[error("the calendar's claims must be rebuilt first")]
    Unverified,
}

/// A committed claim restored from an event callbook made (the event's
/// booking id is the claim id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub id: String,
    pub interval: Interval,
    pub event_id: String,
}

/// One claim as reported by [`Ledger::claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub interval: Interval,
    pub committed: bool,
    /// A hold whose event may or may not exist (the create's outcome was
    /// lost): it keeps the slot until the reconciler settles it.
    pub unknown: bool,
    /// The provider's id of the event the claim covers, once known (the
    /// provider is part of the calendar key).
    pub event_id: Option<String>,
}

/// `now` is the caller's clock. A shared ledger answers `Unverified` to a
/// hold or a read on a calendar whose claims it does not know to be
/// complete (see [`LedgerError::Unverified`]); the in-process one never
/// does, since it cannot lose its claims without its process. The in-memory ledger decides expiry by it
/// (it is the reference, replayable on a virtual clock); a shared ledger
/// decides by its server's clock, so instances whose clocks disagree still
/// agree on which holds are live.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Holds `interval` for `claim` unless it overlaps another live claim on
    /// `calendar`. `replaces` names a claim of the same booking (a move) that
    /// does not count as a conflict and is released at commit. Idempotent:
    /// holding an existing claim again succeeds.
    async fn hold(
        &self,
        calendar: &str,
        claim: &str,
        interval: Interval,
        replaces: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Makes a live hold (or an unknown claim) permanent, recording the
    /// event it covers when `event_id` is given. Idempotent: committing a
    /// committed claim succeeds.
    async fn commit_event(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// [`Ledger::commit_event`] without an event id.
    async fn commit(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.commit_event(calendar, claim, None, now).await
    }

    /// Gives a live hold a full [`Ledger::hold_ttl`] from `now` again (never less
    /// than it has), so work that took longer than planned still runs
    /// under a hold. `NotHeld` once it lapsed; a committed claim is left
    /// as it is.
    async fn extend(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Marks a live hold *unknown*: its event may exist. It keeps the slot
    /// for [`UNKNOWN_TTL`] (recording `event_id` when the event is known
    /// and only its state is not, as for a move) until it is committed or
    /// released. `NotHeld` once it lapsed; a committed claim is left as
    /// it is.
    async fn mark_unknown(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Adds committed claims for events found on the calendar that no claim
    /// covered (claims it holds already are kept as they are), without
    /// marking the calendar's claims complete: what the reconciler and the
    /// confirm's re-check take in. Idempotent. A ledger with no such mark
    /// does what [`Ledger::rebuild`] does.
    async fn adopt(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.rebuild(calendar, claims, now).await
    }

    /// Restores `calendar`'s committed claims from the provider's events
    /// (claims it holds already are kept as they are) and marks its claims
    /// complete, so holds and reads on it are answered again. Idempotent.
    async fn rebuild(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Drops a claim, held or committed. Unknown claims are fine.
    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError>;

    /// Live claims overlapping `window`.
    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError>;

    /// How long this ledger's holds live ([`HOLD_TTL`] unless configured).
    fn hold_ttl(&self) -> Duration {
        HOLD_TTL
    }

    /// Whether the ledger answers now (readiness). In process it always
    /// does; a shared ledger asks its server, once, without retrying.
    async fn ping(&self) -> Result<(), LedgerError> {
        Ok(())
    }
}
