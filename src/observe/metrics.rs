//! Prometheus metrics: one recorder per process, rendered by callbook's
//! own `GET /metrics` (no exporter listener of its own).
//!
//! Every metric is named here, with its labels, and recorded through the
//! functions below, so the call sites stay one line and nobody invents a
//! label at a call site. Label values are always from a closed set (a
//! `&'static str` the code names) or an operator-defined campaign id that
//! the store knows; never a call SID, a phone number, an email or an event
//! id. [`campaign_label`] is where a caller-supplied campaign id is turned
//! into a label: ids the store does not know become `unknown`, so a
//! pipeline sending random ids cannot grow the series without bound.
//!
//! The recorder is global (the `metrics` facade has one slot per process).
//! Several servers in one process (tests, `callbook load`) share it; their
//! metrics add up, which is why tests read deltas or labels of their own.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Calls whose `start` was taken up, by campaign.
pub const CALLS_STARTED: &str = "callbook_calls_started_total";
/// Calls whose actor ended, by campaign and the furthest booking step the
/// call reached (`stage`: see [`super::Reached`]).
pub const CALLS_ENDED: &str = "callbook_calls_ended_total";
/// The booking funnel, by campaign and `step`: `offered`,
/// `email_captured`, `email_confirmed`, `proposed`, `booked`, `moved`,
/// `cancelled`, `declined`, `taken`. Counted each time it happens: a call
/// offered twice counts twice.
pub const FUNNEL: &str = "callbook_booking_funnel_total";
/// Calls on which booking could not run, by campaign and `reason` (the
/// `booking` frame's skip reasons). Once per call.
pub const SKIPPED: &str = "callbook_booking_skipped_total";
/// Bookings, moves or cancels that started and did not finish, by campaign
/// and `reason` (the `booking` frame's fail reasons).
pub const FAILED: &str = "callbook_booking_failed_total";
/// One HTTP request to a calendar provider (each attempt of a retried
/// operation), by `provider` and `endpoint`.
pub const PROVIDER_DURATION: &str = "callbook_provider_request_duration_seconds";
/// Provider requests by `provider`, `endpoint` and `outcome` (`ok`, or the
/// fault's class: `expired`, `consent_required`, `rate_limited`,
/// `transient`, `duplicate`, `not_found`, `scope_missing`, `rejected`).
pub const PROVIDER_REQUESTS: &str = "callbook_provider_requests_total";
/// Access-token refreshes attempted, by `provider`.
pub const TOKEN_REFRESHES: &str = "callbook_token_refreshes_total";
/// Refreshes refused or failed, by `provider` and `class` (as the provider
/// outcomes).
pub const TOKEN_REFRESH_FAILURES: &str = "callbook_token_refresh_failures_total";
/// One ledger operation, by `op` (`hold`, `commit`, `release`, `claims`,
/// `extend`, `mark_unknown`, `rebuild`).
pub const LEDGER_DURATION: &str = "callbook_ledger_decision_duration_seconds";
/// Ledger operations by `op` and `outcome` (`ok`, `taken`, `not_held`,
/// `unavailable`, `unverified`).
pub const LEDGER_DECISIONS: &str = "callbook_ledger_decisions_total";
/// Commits made after a calendar write (a booking or a move), by `op`
/// (`book`, `move`) and `outcome`: `committed`; `recommitted` (the hold
/// had lapsed during the write and was held again and committed under the
/// same claim id); `conflict` (it lapsed and another claim took the slot
/// meanwhile: the write is undone and the caller hears it was taken);
/// `unavailable` (the ledger could not be reached).
pub const LEDGER_COMMITS_AFTER_WRITE: &str = "callbook_ledger_commits_after_write_total";
/// Holds extended before a calendar write because little of their lease
/// was left, by `outcome`: `extended`, `taken` (it had lapsed and the slot
/// was taken), `unavailable`.
pub const LEASES_EXTENDED: &str = "callbook_ledger_leases_extended_total";
/// Calendar writes (`op`: `book`, `move`) whose outcome stayed unknown
/// after the read-back, by `outcome`: `kept` (the slot stays held for the
/// reconciler), `taken` or `unavailable` (it could not be kept).
pub const OUTCOMES_UNKNOWN: &str = "callbook_booking_outcomes_unknown_total";
/// Claims the reconciler settled, by `action`: `forward` (an unknown
/// claim's event exists: committed), `back` (it does not: released),
/// `removed` (a committed claim's event was deleted), `adopted` (an event
/// callbook made that no claim covered: a claim committed for it).
pub const RECONCILED: &str = "callbook_reconciled_claims_total";
/// Calendars whose claims a shared ledger did not know complete (it
/// restarted empty, or never saw them) and that were rebuilt from the
/// provider's tagged events.
pub const REBUILDS: &str = "callbook_ledger_rebuilds_total";
/// Claims restored by those rebuilds.
pub const REBUILT_CLAIMS: &str = "callbook_ledger_rebuilt_claims_total";
/// Call actors running now (a call whose socket dropped counts until its
/// work in flight is done).
pub const LIVE_CALLS: &str = "callbook_live_calls";
/// Text frames read from pipelines, by `event` (`invalid` when unreadable).
pub const FRAMES_RECEIVED: &str = "callbook_frames_received_total";
/// Frames written to pipelines, by `event`.
pub const FRAMES_SENT: &str = "callbook_frames_sent_total";
/// Inbound frames refused, by `kind` (the `error` frame's code).
pub const PROTOCOL_ERRORS: &str = "callbook_protocol_errors_total";
/// Requests or connections refused by a limit, by `kind`; see
/// [`limit_rejected`].
pub const LIMIT_REJECTIONS: &str = "callbook_limit_rejections_total";

/// Histogram buckets in seconds: provider calls take tens to hundreds of
/// milliseconds and are cut at 2 s per request; ledger calls take well
/// under one.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets between
/// scrapes, so an unscraped process does not keep every sample.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The campaign label when the call named no campaign the store knows.
pub const UNKNOWN_CAMPAIGN: &str = "unknown";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder on first use and returns its handle.
/// Safe to call from every server in the process. If another recorder was
/// installed first (by an embedding program), callbook's metrics go there
/// and `/metrics` renders an empty page.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; summaries rendered");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// The scrape: every metric in Prometheus text format.
pub fn render() -> String {
    install().render()
}

/// Folds histogram samples into buckets; run every [`UPKEEP_EVERY`].
pub fn upkeep() {
    install().run_upkeep();
}

fn describe() {
    describe_counter!(CALLS_STARTED, "Calls whose start frame was taken up.");
    describe_counter!(
        CALLS_ENDED,
        "Calls ended, by the furthest booking step reached."
    );
    describe_counter!(FUNNEL, "Booking funnel steps, counted as they happen.");
    describe_counter!(SKIPPED, "Calls on which booking could not run.");
    describe_counter!(FAILED, "Bookings, moves or cancels that did not finish.");
    describe_histogram!(PROVIDER_DURATION, "Calendar provider request latency.");
    describe_counter!(PROVIDER_REQUESTS, "Calendar provider requests by outcome.");
    describe_counter!(TOKEN_REFRESHES, "Access-token refreshes attempted.");
    describe_counter!(
        TOKEN_REFRESH_FAILURES,
        "Access-token refreshes that failed."
    );
    describe_histogram!(LEDGER_DURATION, "Ledger operation latency.");
    describe_counter!(LEDGER_DECISIONS, "Ledger operations by outcome.");
    describe_counter!(
        LEDGER_COMMITS_AFTER_WRITE,
        "Ledger commits after a calendar write, by outcome."
    );
    describe_counter!(
        LEASES_EXTENDED,
        "Holds extended before a calendar write, by outcome."
    );
    describe_counter!(
        OUTCOMES_UNKNOWN,
        "Calendar writes whose outcome stayed unknown, by outcome."
    );
    describe_counter!(RECONCILED, "Claims the reconciler settled, by action.");
    describe_counter!(REBUILDS, "Calendars whose ledger claims were rebuilt.");
    describe_counter!(REBUILT_CLAIMS, "Claims restored by ledger rebuilds.");
    describe_gauge!(LIVE_CALLS, "Call actors running now.");
    describe_counter!(FRAMES_RECEIVED, "Text frames read from pipelines.");
    describe_counter!(FRAMES_SENT, "Frames written to pipelines.");
    describe_counter!(PROTOCOL_ERRORS, "Inbound frames refused.");
    describe_counter!(
        LIMIT_REJECTIONS,
        "Requests or connections refused by a limit."
    );
}

/// Counts a refusal by a limit (too many connections, a frame rate, a body
/// too large, a slow client…). `kind` names the limit in snake_case
/// (`connections`, `calls_per_ip`, `admin_rate`, …); it must come from a
/// fixed set in the code, never from the request, which the `&'static str`
/// enforces. Call it once per refusal, where the refusal is decided.
pub fn limit_rejected(kind: &'static str) {
    counter!(LIMIT_REJECTIONS, "kind" => kind).increment(1);
}

/// An inbound frame refused with an `error` frame; `kind` is its code.
pub fn protocol_error(kind: &'static str) {
    counter!(PROTOCOL_ERRORS, "kind" => kind).increment(1);
}

/// The frame events counted, each with a counter handle registered on its
/// first use and kept: a call sends 50 frames a second, and registering a
/// labelled counter anew builds its key (an allocation) and looks it up
/// in the recorder's registry (a lock every call shares) each time.
const FRAME_EVENTS: [&str; 14] = [
    "media",
    "transcript",
    "mark",
    "turn",
    "say",
    "booking",
    "connected",
    "start",
    "stop",
    "dtmf",
    "clear",
    "capabilities",
    "sync",
    "invalid",
];

/// Handles of one counter, by the index of the event in [`FRAME_EVENTS`].
struct FrameCounters {
    name: &'static str,
    handles: [OnceLock<metrics::Counter>; FRAME_EVENTS.len()],
}

impl FrameCounters {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            handles: [const { OnceLock::new() }; FRAME_EVENTS.len()],
        }
    }

    fn increment(&self, event: &'static str, n: u64) {
        match FRAME_EVENTS.iter().position(|e| *e == event) {
            Some(i) => self.handles[i]
                .get_or_init(|| {
                    install();
                    counter!(self.name, "event" => FRAME_EVENTS[i])
                })
                .increment(n),
            None => counter!(self.name, "event" => event).increment(n),
        }
    }
}

static RECEIVED: FrameCounters = FrameCounters::new(FRAMES_RECEIVED);
static SENT: FrameCounters = FrameCounters::new(FRAMES_SENT);

/// One inbound text frame, by event name.
pub fn frame_received(event: &'static str) {
    RECEIVED.increment(event, 1);
}

/// `n` inbound text frames of one event, counted at once.
pub fn frames_received(event: &'static str, n: u64) {
    if n > 0 {
        RECEIVED.increment(event, n);
    }
}

/// One outbound frame, by event name.
pub fn frame_sent(event: &'static str) {
    SENT.increment(event, 1);
}

/// One request to a calendar provider and how it ended.
pub fn provider_request(
    provider: &'static str,
    endpoint: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    histogram!(PROVIDER_DURATION, "provider" => provider, "endpoint" => endpoint)
        .record(took.as_secs_f64());
    counter!(PROVIDER_REQUESTS, "provider" => provider, "endpoint" => endpoint, "outcome" => outcome)
        .increment(1);
}

/// One access-token refresh; `failure` is the fault's class when it failed.
pub fn token_refresh(provider: &'static str, failure: Option<&'static str>) {
    counter!(TOKEN_REFRESHES, "provider" => provider).increment(1);
    if let Some(class) = failure {
        counter!(TOKEN_REFRESH_FAILURES, "provider" => provider, "class" => class).increment(1);
    }
}

/// One ledger operation and its outcome.
pub fn ledger(op: &'static str, outcome: &'static str, took: Duration) {
    histogram!(LEDGER_DURATION, "op" => op).record(took.as_secs_f64());
    counter!(LEDGER_DECISIONS, "op" => op, "outcome" => outcome).increment(1);
}

/// How the commit after a calendar write ended; see
/// [`LEDGER_COMMITS_AFTER_WRITE`].
pub fn commit_after_write(op: &'static str, outcome: &'static str) {
    counter!(LEDGER_COMMITS_AFTER_WRITE, "op" => op, "outcome" => outcome).increment(1);
}

/// A hold was extended before a write; see [`LEASES_EXTENDED`].
pub fn lease_extended(outcome: &'static str) {
    counter!(LEASES_EXTENDED, "outcome" => outcome).increment(1);
}

/// A write's outcome stayed unknown; see [`OUTCOMES_UNKNOWN`].
pub fn outcome_unknown(op: &'static str, outcome: &'static str) {
    counter!(OUTCOMES_UNKNOWN, "op" => op, "outcome" => outcome).increment(1);
}

/// What a reconcile settled; see [`RECONCILED`].
pub fn reconciled(forward: usize, back: usize, removed: usize, adopted: usize) {
    for (action, n) in [
        ("forward", forward),
        ("back", back),
        ("removed", removed),
        ("adopted", adopted),
    ] {
        if n > 0 {
            counter!(RECONCILED, "action" => action).increment(n as u64);
        }
    }
}

/// A calendar's claims were rebuilt from its events; see [`REBUILDS`].
pub fn rebuilt(claims: usize) {
    counter!(REBUILDS).increment(1);
    counter!(REBUILT_CLAIMS).increment(claims as u64);
}

/// A call started on `campaign` (a label from [`campaign_label`]).
pub fn call_started(campaign: &str) {
    counter!(CALLS_STARTED, "campaign" => campaign.to_string()).increment(1);
}

/// A call ended having reached `stage` at the furthest.
pub fn call_ended(campaign: &str, stage: &'static str) {
    counter!(CALLS_ENDED, "campaign" => campaign.to_string(), "stage" => stage).increment(1);
}

/// One funnel step on `campaign`.
pub fn funnel(campaign: &str, step: &'static str) {
    counter!(FUNNEL, "campaign" => campaign.to_string(), "step" => step).increment(1);
}

/// Booking skipped on a call, with the skip reason's wire name.
pub fn skipped(campaign: &str, reason: &'static str) {
    counter!(SKIPPED, "campaign" => campaign.to_string(), "reason" => reason).increment(1);
}

/// A booking, move or cancel failed, with the fail reason's wire name.
pub fn failed(campaign: &str, reason: &'static str) {
    counter!(FAILED, "campaign" => campaign.to_string(), "reason" => reason).increment(1);
}

/// Counts a live call while alive; the gauge goes down when it is dropped,
/// however the call's task ends.
pub struct LiveCall(());

impl LiveCall {
    pub fn start() -> LiveCall {
        gauge!(LIVE_CALLS).increment(1.0);
        LiveCall(())
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        gauge!(LIVE_CALLS).decrement(1.0);
    }
}

/// The label for the campaign a call names: its id when the store knows
/// it (`known`), else [`UNKNOWN_CAMPAIGN`].
pub fn campaign_label(id: Option<&str>, known: bool) -> String {
    match id.map(str::trim).filter(|c| !c.is_empty()) {
        Some(id) if known => id.to_string(),
        _ => UNKNOWN_CAMPAIGN.to_string(),
    }
}

/// A provider fault's class, as the `outcome` and `class` labels name it.
pub fn calendar_fault(e: &crate::calendar::CalendarError) -> &'static str {
    use crate::calendar::CalendarError;
    match e {
        CalendarError::Expired => "expired",
        CalendarError::ConsentRequired => "consent_required",
        CalendarError::RateLimited { .. } => "rate_limited",
        CalendarError::Transient(_) => "transient",
        CalendarError::Duplicate => "duplicate",
        CalendarError::NotFound => "not_found",
        CalendarError::ScopeMissing(_) => "scope_missing",
        CalendarError::Rejected(_) => "rejected",
    }
}

/// `ok`, or the fault's class.
pub fn calendar_outcome<T>(r: &Result<T, crate::calendar::CalendarError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => calendar_fault(e),
    }
}

/// An inbound frame's event name, for [`frame_received`].
pub fn inbound_event(frame: &crate::protocol::Inbound) -> &'static str {
    use crate::protocol::Inbound;
    match frame {
        Inbound::Connected => "connected",
        Inbound::Start(_) => "start",
        Inbound::Media => "media",
        Inbound::Dtmf { .. } => "dtmf",
        Inbound::Mark { .. } => "mark",
        Inbound::Clear(_) => "clear",
        Inbound::Capabilities(_) => "capabilities",
        Inbound::Stop => "stop",
        Inbound::Transcript(_) => "transcript",
        Inbound::Booking(_) => "booking",
        Inbound::Sync { .. } => "sync",
    }
}

/// An outbound frame's event name, for [`frame_sent`].
pub fn outbound_event(frame: &crate::protocol::Outbound) -> &'static str {
    use crate::protocol::Outbound;
    match frame {
        Outbound::Connected { .. } => "connected",
        Outbound::Turn { .. } => "turn",
        Outbound::Say { .. } => "say",
        Outbound::Resumed { .. } => "resumed",
        Outbound::Booking { .. } => "booking",
        Outbound::Error { .. } => "error",
        Outbound::Sync { .. } => "sync",
    }
}
