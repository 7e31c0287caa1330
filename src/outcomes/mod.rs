//! Booking outcomes that outlive the call's socket.
//!
//! The pipeline learns what happened on a call from `booking` frames, but a
//! socket that drops after the caller's yes loses them: the meeting is
//! booked and nobody hears of it. So every booking status that changes the
//! owner's calendar (or says why it was not changed) also becomes a
//! [`BookingRecord`], kept in an [`OutcomeStore`] that the admin API reads
//! (`GET /v1/bookings?call_sid=…`, `GET /v1/campaigns/{id}/bookings`) and,
//! when configured, POSTed to a signed webhook ([`webhook`]).
//!
//! The call actor hands each status to [`Recorder::observe`], which only
//! updates the call's own [`CallMeta`] and queues a record: a live caller
//! never waits on Redis or on somebody else's web server. A single worker
//! writes records to the store in the order the calls produced them, then
//! hands them to the webhook deliverer, which has a bounded queue and its
//! own retry tasks. When a queue is full the record is dropped from that
//! path, counted and logged with its outcome id, never waited for.
//!
//! The invitee is PII. It is in the record (the API is behind the admin
//! token and the webhook is signed), but no log line carries it, and
//! [`BookingRecord`]'s `Debug` redacts it.

pub mod memory;
pub mod redis;
pub mod webhook;

pub use memory::MemoryOutcomes;
pub use redis::RedisOutcomes;
pub use webhook::{WebhookConfig, WebhookError};

use crate::domain::{SkipReason, Status};
use crate::protocol::Start;
use crate::store::Provider;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// How long an outcome is kept: long enough for a CRM sync that ran into
/// trouble over a holiday to catch up, short enough that invitees' emails
/// do not pile up forever.
pub const RETENTION: Duration = Duration::days(30);

/// The most outcomes kept per campaign (newest first); also the largest
/// page the API answers with.
pub const PER_CAMPAIGN: usize = 500;

/// The most outcomes kept per call. A call makes a handful (booked, a move
/// or two, a cancel); this only bounds a misbehaving one.
pub const PER_CALL: usize = 100;

/// Records waiting to be written. Calls produce a few each; this fills
/// only when the store is stuck, and then records are dropped and counted
/// rather than making a caller wait.
const RECORD_QUEUE: usize = 4096;

/// Attempts at writing one record before it is given up (logged with its
/// id), and the pause between them.
const STORE_ATTEMPTS: u32 = 3;
const STORE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// What became of a booking on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// A meeting was created.
    Booked,
    /// The meeting booked on the call was moved (`rescheduled` on the wire).
    Moved,
    /// The meeting booked on the call was cancelled.
    Cancelled,
    /// A booking, move or cancel that started did not finish.
    Failed,
    /// Booking could not run on this call at all.
    Skipped,
}

impl OutcomeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Booked => "booked",
            OutcomeStatus::Moved => "moved",
            OutcomeStatus::Cancelled => "cancelled",
            OutcomeStatus::Failed => "failed",
            OutcomeStatus::Skipped => "skipped",
        }
    }

    /// The webhook's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            OutcomeStatus::Booked => "booking.booked",
            OutcomeStatus::Moved => "booking.moved",
            OutcomeStatus::Cancelled => "booking.cancelled",
            OutcomeStatus::Failed => "booking.failed",
            OutcomeStatus::Skipped => "booking.skipped",
        }
    }
}

/// One outcome of one call, as the API answers it and the webhook sends
/// it. Every field is always present (null when it does not apply), so
/// consumers see one shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookingRecord {
    /// Unique per outcome (UUID v4); the webhook's idempotency key.
    pub id: String,
    pub call_sid: String,
    pub campaign_id: Option<String>,
    pub status: OutcomeStatus,
    /// The provider's event id (booked, moved, cancelled).
    pub event_id: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Where a moved meeting was before.
    pub previous_start: Option<DateTime<Utc>>,
    /// The email the caller confirmed. PII: never logged.
    pub invitee: Option<String>,
    /// Why a booking was skipped or failed (the wire's reason codes).
    pub reason: Option<String>,
    pub join_link: Option<String>,
    pub provider: Option<Provider>,
    /// When the change happened.
    pub at: DateTime<Utc>,
}

impl fmt::Debug for BookingRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BookingRecord")
            .field("id", &self.id)
            .field("call_sid", &self.call_sid)
            .field("campaign_id", &self.campaign_id)
            .field("status", &self.status)
            .field("event_id", &self.event_id)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("previous_start", &self.previous_start)
            .field("invitee", &self.invitee.as_ref().map(|_| "<redacted>"))
            .field("reason", &self.reason)
            .field("join_link", &self.join_link)
            .field("provider", &self.provider)
            .field("at", &self.at)
            .finish()
    }
}

/// A store of outcomes failed.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("outcome store unavailable: {0}")]
    Unavailable(String),
    #[error("outcome could not be encoded: {0}")]
    Encode(String),
}

/// Where outcomes are kept: in process ([`MemoryOutcomes`]) or shared by
/// every instance ([`RedisOutcomes`]). Both answer newest first and forget
/// records older than [`RETENTION`].
#[async_trait]
pub trait OutcomeStore: Send + Sync {
    async fn put(&self, record: &BookingRecord) -> Result<(), OutcomeError>;
    /// The call's outcomes, newest first, at most `limit`.
    async fn by_call(
        &self,
        call_sid: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError>;
    /// The campaign's outcomes, newest first, at most `limit`.
    async fn by_campaign(
        &self,
        campaign_id: &str,
        limit: usize,
    ) -> Result<Vec<BookingRecord>, OutcomeError>;
    /// Keeps `record` (a `booked` or `moved` without its event yet) for
    /// the claim whose write's outcome is unknown, for up to
    /// [`PENDING_FOR`]: what to record if the reconciler finds the event.
    async fn pend(&self, claim: &str, record: &BookingRecord) -> Result<(), OutcomeError>;
    /// Takes the record kept for `claim`, if any.
    async fn take_pending(&self, claim: &str) -> Result<Option<BookingRecord>, OutcomeError>;
}

/// How long the record of a write whose outcome is unknown waits for the
/// reconciler: longer than an unknown claim lives.
pub const PENDING_FOR: Duration = Duration::hours(1);

/// What a call's outcomes carry about the call, plus what the call said
/// earlier that a later outcome needs: the confirmed email (the invitee of
/// every record after it) and the meeting booked on the call (a cancel
/// carries no end or link of its own). Owned by the call actor, so it lives
/// and dies with the call and the recorder keeps no per-call state.
#[derive(Clone)]
pub struct CallMeta {
    pub call_sid: String,
    pub campaign_id: Option<String>,
    /// The calendar the call books on, when booking could run.
    pub provider: Option<Provider>,
    invitee: Option<String>,
    meeting: Option<Meeting>,
    /// The skip already recorded: a call whose booking cannot run answers
    /// `skipped` at start and at every offer, but it is one outcome.
    skipped: Option<SkipReason>,
}

#[derive(Clone)]
struct Meeting {
    event_id: String,
    end: DateTime<Utc>,
    join_link: Option<String>,
}

impl CallMeta {
    pub fn new(call_sid: &str, campaign_id: Option<&str>, provider: Option<Provider>) -> Self {
        Self {
            call_sid: call_sid.to_string(),
            campaign_id: campaign_id
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            provider,
            invitee: None,
            meeting: None,
            skipped: None,
        }
    }

    /// From the call's `start` frame (`customParameters.campaign_id`).
    pub fn from_start(start: &Start, provider: Option<Provider>) -> Self {
        Self::new(
            &start.call_sid,
            start
                .custom_parameters
                .get("campaign_id")
                .map(String::as_str),
            provider,
        )
    }

    /// Takes in a status the call emitted; returns the record it makes, if
    /// it is an outcome. Pure apart from the fresh id.
    pub fn record_for(&mut self, status: &Status, now: DateTime<Utc>) -> Option<BookingRecord> {
        let mut record = BookingRecord {
            id: uuid::Uuid::new_v4().to_string(),
            call_sid: self.call_sid.clone(),
            campaign_id: self.campaign_id.clone(),
            status: OutcomeStatus::Booked,
            event_id: None,
            start: None,
            end: None,
            previous_start: None,
            invitee: None,
            reason: None,
            join_link: None,
            provider: self.provider,
            at: now,
        };
        match status {
            Status::EmailConfirmed { email } => {
                self.invitee = Some(email.as_str().to_string());
                return None;
            }
            Status::Booked {
                start,
                end,
                event_id,
                join_link,
            } => {
                self.meeting = Some(Meeting {
                    event_id: event_id.clone(),
                    end: *end,
                    join_link: join_link.clone(),
                });
                record.event_id = Some(event_id.clone());
                record.start = Some(*start);
                record.end = Some(*end);
                record.join_link = join_link.clone();
            }
            Status::Rescheduled {
                start,
                end,
                event_id,
                previous_start,
            } => {
                let join_link = self
                    .meeting
                    .as_ref()
                    .filter(|m| &m.event_id == event_id)
                    .and_then(|m| m.join_link.clone());
                self.meeting = Some(Meeting {
                    event_id: event_id.clone(),
                    end: *end,
                    join_link: join_link.clone(),
                });
                record.status = OutcomeStatus::Moved;
                record.event_id = Some(event_id.clone());
                record.start = Some(*start);
                record.end = Some(*end);
                record.previous_start = Some(*previous_start);
                record.join_link = join_link;
            }
            Status::Cancelled { event_id, start } => {
                let meeting = self.meeting.take().filter(|m| &m.event_id == event_id);
                record.status = OutcomeStatus::Cancelled;
                record.event_id = Some(event_id.clone());
                record.start = Some(*start);
                record.end = meeting.as_ref().map(|m| m.end);
                record.join_link = meeting.and_then(|m| m.join_link);
            }
            Status::Failed { reason } => {
                record.status = OutcomeStatus::Failed;
                record.reason = Some(wire_name(reason));
            }
            Status::Skipped { reason } => {
                if self.skipped == Some(*reason) {
                    return None;
                }
                self.skipped = Some(*reason);
                record.status = OutcomeStatus::Skipped;
                record.reason = Some(wire_name(reason));
            }
            Status::Offered
            | Status::Declined
            | Status::Proposed { .. }
            | Status::Taken { .. }
            | Status::Done { .. } => return None,
        }
        record.invitee = self.invitee.clone();
        Some(record)
    }
}

/// A reason enum's wire name (`campaign_unknown`), from its serde form so
/// the record and the `booking` frame always agree.
fn wire_name(reason: &impl Serialize) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Counts of what the recorder could not do, for operators.
#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    dropped: AtomicU64,
    unstored: AtomicU64,
}

/// A snapshot of the recorder's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeStats {
    /// Records written to the store.
    pub recorded: u64,
    /// Records dropped because the record queue was full.
    pub dropped: u64,
    /// Records the store refused after every attempt.
    pub unstored: u64,
    pub webhooks: webhook::WebhookStats,
}

/// Turns the statuses calls emit into stored records and webhooks, off the
/// calls' path.
pub struct Recorder {
    /// `None` once shutdown began: the worker drains what is queued.
    tx: Mutex<Option<mpsc::Sender<BookingRecord>>>,
    store: Arc<dyn OutcomeStore>,
    counters: Arc<Counters>,
    webhooks: Option<Arc<webhook::Webhooks>>,
    tracker: TaskTracker,
}

impl Recorder {
    /// Starts the store worker (and the webhook deliverer when `webhook`
    /// is set) on the current runtime.
    pub fn start(
        store: Arc<dyn OutcomeStore>,
        webhook: Option<WebhookConfig>,
        clock: crate::clock::Clock,
    ) -> Arc<Recorder> {
        let tracker = TaskTracker::new();
        let counters = Arc::new(Counters::default());
        let webhooks = webhook.map(|cfg| webhook::Webhooks::start(cfg, clock, tracker.clone()));
        let (tx, rx) = mpsc::channel(RECORD_QUEUE);
        tracker.spawn(persist(
            rx,
            store.clone(),
            counters.clone(),
            webhooks.clone(),
        ));
        Arc::new(Recorder {
            tx: Mutex::new(Some(tx)),
            store,
            counters,
            webhooks,
            tracker,
        })
    }

    /// Called by the call actor for every booking status it emits. Updates
    /// the call's [`CallMeta`]; an outcome is queued for the store and the
    /// webhook without waiting. A full queue drops the record (counted and
    /// logged with its id): the call never waits on it.
    pub fn observe(&self, call: &mut CallMeta, status: &Status, now: DateTime<Utc>) {
        let Some(record) = call.record_for(status, now) else {
            return;
        };
        self.enqueue(record);
    }

    /// A change whose outcome was unknown turned out to be made (the
    /// reconciler found `event` for `claim`): the record kept for it
    /// ([`OutcomeStore::pend`]) is completed with the event and recorded,
    /// after the call's `failed` (`outcome_unknown`) one. Nothing when no
    /// record was kept.
    pub async fn settle(
        &self,
        claim: &str,
        event: &crate::calendar::CreatedEvent,
        now: DateTime<Utc>,
    ) {
        let mut record = match self.store.take_pending(claim).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, claim, "the record of a settled change could not be read");
                return;
            }
        };
        record.event_id = Some(event.event_id.clone());
        record.start = Some(event.slot.start);
        record.end = Some(event.slot.end);
        record.join_link = event.join_link.clone();
        record.at = now;
        self.enqueue(record);
    }

    /// Queues `record` for the store and the webhook without waiting.
    fn enqueue(&self, record: BookingRecord) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(tx) = tx else {
            tracing::warn!(call_sid = %record.call_sid, outcome_id = %record.id, "outcome after shutdown; not recorded");
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (call_sid, id) = (record.call_sid.clone(), record.id.clone());
        if tx.try_send(record).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(call_sid = %call_sid, outcome_id = %id, "outcome queue full; record dropped");
        }
    }

    /// Where the records are kept, for the admin API.
    pub fn store(&self) -> &Arc<dyn OutcomeStore> {
        &self.store
    }

    pub fn stats(&self) -> OutcomeStats {
        OutcomeStats {
            recorded: self.counters.recorded.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            unstored: self.counters.unstored.load(Ordering::Relaxed),
            webhooks: self
                .webhooks
                .as_ref()
                .map(|w| w.stats())
                .unwrap_or_default(),
        }
    }

    /// Stops taking records, writes what is queued and lets webhook
    /// deliveries go on for up to `grace`; those still retrying then are
    /// abandoned, each logged with its outcome id (the record itself is in
    /// the store).
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            if let Some(w) = &self.webhooks {
                w.abandon();
            }
            self.tracker.wait().await;
        }
    }
}

/// Writes records in arrival order, then hands each to the webhook.
async fn persist(
    mut rx: mpsc::Receiver<BookingRecord>,
    store: Arc<dyn OutcomeStore>,
    counters: Arc<Counters>,
    webhooks: Option<Arc<webhook::Webhooks>>,
) {
    while let Some(record) = rx.recv().await {
        let mut attempt = 1;
        loop {
            match store.put(&record).await {
                Ok(()) => {
                    counters.recorded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        call_sid = %record.call_sid,
                        outcome_id = %record.id,
                        status = record.status.as_str(),
                        "booking outcome recorded"
                    );
                    break;
                }
                Err(e) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(call_sid = %record.call_sid, outcome_id = %record.id, attempt, error = %e, "could not store an outcome; retrying");
                    attempt += 1;
                    tokio::time::sleep(STORE_RETRY_PAUSE).await;
                }
                Err(e) => {
                    counters.unstored.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(call_sid = %record.call_sid, outcome_id = %record.id, error = %e, "could not store an outcome; given up");
                    break;
                }
            }
        }
        if let Some(w) = &webhooks {
            w.enqueue(record);
        }
    }
    if let Some(w) = &webhooks {
        w.close();
    }
}

#[cfg(test)]
mod tests;
