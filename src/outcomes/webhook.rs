//! Signed webhooks: each outcome is POSTed to the configured URL as
//!
//! ```json
//! {"id": "…", "type": "booking.booked", "created_at": "…", "data": { …record… }}
//! ```
//!
//! with `Content-Type: application/json`, `Idempotency-Key: <id>` and
//! `Callbook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! The timestamp is inside the signed text, so a receiver that also checks
//! it is recent (five minutes is usual) refuses replays; the id lets it
//! drop the repeats that retries make.
//!
//! A receiver checks it like this (what the README shows; `hmac`, `sha2`
//! and `hex` are RustCrypto's and the usual hex crate):
//!
//! ```
//! use hmac::{Hmac, Mac};
//! use sha2::Sha256;
//!
//! fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
//!     let field = |k: &str| header.split(',').find_map(|p| p.strip_prefix(k)?.strip_prefix('='));
//!     let (Some(t), Some(v1)) = (field("t"), field("v1")) else { return false };
//!     let Ok(sig) = hex::decode(v1) else { return false };
//!     let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
//!     mac.update(format!("{t}.").as_bytes());
//!     mac.update(body);
//!     t.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 300) && mac.verify_slice(&sig).is_ok()
//! }
//!
//! // What callbook sends verifies; anything else does not.
//! let secret = secrecy::SecretString::from("whsec-0123456789abcdef");
//! let body = br#"{"id":"4f1c","type":"booking.booked"}"#;
//! let header = callbook::outcomes::webhook::sign(&secret, 1_767_000_000, body);
//! assert!(verify(b"whsec-0123456789abcdef", &header, body, 1_767_000_010));
//! assert!(!verify(b"whsec-0123456789abcdef", &header, b"{}", 1_767_000_010));
//! assert!(!verify(b"another-secret-0123", &header, body, 1_767_000_010));
//! assert!(!verify(b"whsec-0123456789abcdef", &header, body, 1_767_000_400));
//! ```
//!
//! Delivery is at least once: network errors, timeouts, 408, 429 and 5xx
//! are retried with exponential backoff and jitter, each attempt signed
//! afresh with a new timestamp and the same body and id; any other answer
//! ends the delivery (2xx delivered, other 4xx refused). Deliveries run as
//! tracked tasks, at most [`MAX_IN_FLIGHT`] at once, fed by a bounded
//! queue; when it is full the outcome's webhook is dropped, counted and
//! logged (the record stays readable through the API).

use super::BookingRecord;
use crate::clock::Clock;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Callbook-Signature";

/// The idempotency header's name (the outcome id).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Shorter secrets are refused: an HMAC key should carry at least 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

/// Attempts per outcome, the first included: with a 1 s base, about two
/// minutes of retries (1, 2, 4, 8, 16, 32, 60 s) ride out a receiver's
/// deploy or a short outage.
pub const MAX_ATTEMPTS: u32 = 8;

/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// No wait between attempts is longer than this, `Retry-After` included.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long one attempt may take, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Outcomes waiting for a delivery slot.
const QUEUE: usize = 1024;

/// Deliveries running at once; a receiver that is down holds at most this
/// many tasks in their backoff.
pub const MAX_IN_FLIGHT: usize = 32;

/// A webhook configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook URL is not an http(s) URL")]
    BadUrl,
    #[error("the webhook secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret,
}

/// Where and how outcomes are POSTed. Holds the secret, so no `Debug`.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: reqwest::Url,
    pub secret: SecretString,
    /// The first retry's delay (tests shorten it).
    pub backoff_base: Duration,
    pub max_backoff: Duration,
    pub max_attempts: u32,
    pub request_timeout: Duration,
}

impl WebhookConfig {
    /// Checks the URL is http(s) and the secret long enough; the retry
    /// policy takes its defaults.
    pub fn new(url: &str, secret: SecretString) -> Result<Self, WebhookError> {
        let url = reqwest::Url::parse(url).map_err(|_| WebhookError::BadUrl)?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(WebhookError::BadUrl);
        }
        if secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(WebhookError::ShortSecret);
        }
        Ok(Self {
            url,
            secret,
            backoff_base: BACKOFF_BASE,
            max_backoff: MAX_BACKOFF,
            max_attempts: MAX_ATTEMPTS,
            request_timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same, with retries starting after `base`.
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }
}

/// The body of every webhook.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: chrono::DateTime<chrono::Utc>,
    data: &'a BookingRecord,
}

/// The JSON body for a record.
pub fn body(record: &BookingRecord) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        id: &record.id,
        kind: record.status.event_type(),
        created_at: record.at,
        data: record,
    })
    .unwrap_or_default()
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The `Callbook-Signature` value for `body` sent at unix time `t`.
pub fn sign(secret: &SecretString, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let v1 = hmac_hex(
        secret.expose_secret().as_bytes(),
        &[t.as_bytes(), b".", body],
    );
    format!("t={t},v1={v1}")
}

/// Checks a `Callbook-Signature` value against `body`, in constant time,
/// and that its timestamp is within `tolerance` of `now` (unix seconds).
/// What a Rust receiver does (see the README for the same in Python).
pub fn verify(secret: &SecretString, header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance {
        return false;
    }
    sigs.iter().any(|sig| {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes())
        else {
            return false;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    })
}

/// The wait before retry number `retry` (1 for the first retry): `base`
/// doubled per retry, capped at `cap`, of which the upper half is random so
/// many failed deliveries do not come back at once.
pub fn backoff(base: Duration, cap: Duration, retry: u32) -> Duration {
    let full = base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
        .min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// A snapshot of delivery counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookStats {
    pub delivered: u64,
    /// Refused by the receiver, out of attempts, or abandoned at shutdown.
    pub failed: u64,
    /// Dropped because the delivery queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The deliverer: a bounded queue, a dispatcher and one task per delivery.
pub(super) struct Webhooks {
    tx: Mutex<Option<mpsc::Sender<BookingRecord>>>,
    counters: Arc<Counters>,
    /// Fired when shutdown's grace is over: retries stop.
    abandon: CancellationToken,
}

/// What one delivery needs.
struct Sender {
    cfg: WebhookConfig,
    http: reqwest::Client,
    clock: Clock,
    counters: Arc<Counters>,
    abandon: CancellationToken,
}

impl Webhooks {
    pub(super) fn start(cfg: WebhookConfig, clock: Clock, tracker: TaskTracker) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let abandon = CancellationToken::new();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.request_timeout)
            .build()
            .unwrap_or_default();
        let sender = Arc::new(Sender {
            cfg,
            http,
            clock,
            counters: counters.clone(),
            abandon: abandon.clone(),
        });
        tracker.spawn(dispatch(rx, sender, tracker.clone()));
        Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            counters,
            abandon,
        })
    }

    /// Queues a record's webhook without waiting.
    pub(super) fn enqueue(&self, record: BookingRecord) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (call_sid, id) = (record.call_sid.clone(), record.id.clone());
        if tx.is_none_or(|tx| tx.try_send(record).is_err()) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(call_sid = %call_sid, outcome_id = %id, "webhook queue full; not sent");
        }
    }

    /// No more records: the dispatcher ends once the queue is drained.
    pub(super) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Stops retries that are still waiting.
    pub(super) fn abandon(&self) {
        self.abandon.cancel();
    }

    pub(super) fn stats(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

async fn dispatch(
    mut rx: mpsc::Receiver<BookingRecord>,
    sender: Arc<Sender>,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(record) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let sender = sender.clone();
        tracker.spawn(async move {
            sender.deliver(record).await;
            drop(permit);
        });
    }
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    /// Worth another try, after at least this long if the receiver said.
    Retry(Option<Duration>, String),
    Refused(reqwest::StatusCode),
}

impl Sender {
    async fn deliver(&self, record: BookingRecord) {
        let body = body(&record);
        let (call_sid, id) = (record.call_sid.as_str(), record.id.as_str());
        for attempt in 1..=self.cfg.max_attempts {
            let outcome = tokio::select! {
                a = self.attempt(id, &body) => a,
                _ = self.abandon.cancelled() => break,
            };
            match outcome {
                Attempt::Delivered => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(call_sid, outcome_id = id, attempt, "webhook delivered");
                    return;
                }
                Attempt::Refused(status) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        call_sid,
                        outcome_id = id,
                        attempt,
                        status = status.as_u16(),
                        "webhook refused; not retried"
                    );
                    return;
                }
                Attempt::Retry(after, why) => {
                    tracing::info!(call_sid, outcome_id = id, attempt, why = %why, "webhook attempt failed");
                    if attempt == self.cfg.max_attempts {
                        break;
                    }
                    let mut wait = backoff(self.cfg.backoff_base, self.cfg.max_backoff, attempt);
                    if let Some(after) = after {
                        wait = wait.max(after.min(self.cfg.max_backoff));
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.abandon.cancelled() => break,
                    }
                }
            }
        }
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            call_sid,
            outcome_id = id,
            "webhook not delivered; the outcome stays readable through the API"
        );
    }

    async fn attempt(&self, id: &str, body: &[u8]) -> Attempt {
        let t = self.clock.now().timestamp();
        let resp = self
            .http
            .post(self.cfg.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, id)
            .header(SIGNATURE_HEADER, sign(&self.cfg.secret, t, body))
            .body(body.to_vec())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            // The error's text may carry the URL; say only what kind it was.
            Err(e) if e.is_timeout() => return Attempt::Retry(None, "timeout".into()),
            Err(e) if e.is_connect() => return Attempt::Retry(None, "connect".into()),
            Err(_) => return Attempt::Retry(None, "network".into()),
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let retryable = status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error();
        if !retryable {
            return Attempt::Refused(status);
        }
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Attempt::Retry(after, format!("status {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FailReason, Status};
    use crate::outcomes::CallMeta;

    /// A receiver on loopback that answers each POST with the next status
    /// of `script` (200 once the script is used up) and counts them.
    async fn scripted(script: Vec<u16>) -> (String, Arc<Mutex<Vec<u16>>>, CancellationToken) {
        use axum::extract::State;
        type Seen = Arc<Mutex<Vec<u16>>>;
        let seen: Seen = Arc::default();
        let script = Arc::new(script);
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |State((seen, script)): State<(Seen, Arc<Vec<u16>>)>| async move {
                        let mut seen = seen.lock().unwrap();
                        let status = script.get(seen.len()).copied().unwrap_or(200);
                        seen.push(status);
                        axum::http::StatusCode::from_u16(status).unwrap()
                    },
                ),
            )
            .with_state((seen.clone(), script));
        let stop = CancellationToken::new();
        let addr = crate::calendar::emulator::serve_local(app, stop.clone())
            .await
            .unwrap();
        (format!("http://{addr}/hook"), seen, stop)
    }

    fn config(url: &str) -> WebhookConfig {
        let mut cfg = WebhookConfig::new(url, SecretString::from("0123456789abcdef"))
            .unwrap()
            .with_backoff_base(Duration::from_millis(10));
        cfg.max_attempts = 4;
        cfg
    }

    /// Sends one outcome and waits until its delivery ended.
    async fn send_one(cfg: WebhookConfig) -> WebhookStats {
        let tracker = TaskTracker::new();
        let now = "2026-12-01T15:00:00Z".parse().unwrap();
        let hooks = Webhooks::start(cfg, Clock::manual(now), tracker.clone());
        let record = CallMeta::new("CA1", None, None)
            .record_for(
                &Status::Failed {
                    reason: FailReason::NoAvailability,
                },
                now,
            )
            .unwrap();
        hooks.enqueue(record);
        hooks.close();
        tracker.close();
        tokio::time::timeout(Duration::from_secs(10), tracker.wait())
            .await
            .unwrap();
        hooks.stats()
    }

    #[tokio::test]
    async fn server_errors_and_rate_limits_are_retried_until_delivered() {
        let (url, seen, _stop) = scripted(vec![503, 429, 408]).await;
        let stats = send_one(config(&url)).await;
        assert_eq!(*seen.lock().unwrap(), [503, 429, 408, 200]);
        assert_eq!((stats.delivered, stats.failed), (1, 0));
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried() {
        let (url, seen, _stop) = scripted(vec![404]).await;
        let stats = send_one(config(&url)).await;
        assert_eq!(*seen.lock().unwrap(), [404]);
        assert_eq!((stats.delivered, stats.failed), (0, 1));
    }

    #[tokio::test]
    async fn retries_stop_after_the_last_attempt() {
        let (url, seen, _stop) = scripted(vec![500; 10]).await;
        let stats = send_one(config(&url)).await;
        assert_eq!(seen.lock().unwrap().len(), 4);
        assert_eq!((stats.delivered, stats.failed), (0, 1));
    }

    #[tokio::test]
    async fn shutdown_abandons_retries_after_its_grace_and_keeps_the_record() {
        use crate::outcomes::{MemoryOutcomes, OutcomeStore, Recorder};
        let (url, seen, _stop) = scripted(vec![500; 10]).await;
        let now = "2026-12-01T15:00:00Z".parse().unwrap();
        let store = Arc::new(MemoryOutcomes::new(Clock::manual(now)));
        let cfg = config(&url).with_backoff_base(Duration::from_secs(30));
        let recorder = Recorder::start(store.clone(), Some(cfg), Clock::manual(now));
        let mut call = CallMeta::new("CA1", None, None);
        let failed = Status::Failed {
            reason: FailReason::NoAvailability,
        };
        recorder.observe(&mut call, &failed, now);
        // The first attempt is answered 500; the next is 15 s or more away.
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = tokio::time::Instant::now();
        recorder.shutdown(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(seen.lock().unwrap().len(), 1);
        let stats = recorder.stats();
        assert_eq!((stats.recorded, stats.webhooks.failed), (1, 1));
        assert_eq!(store.by_call("CA1", 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_receiver_that_is_not_listening_is_retried_then_given_up() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stats = send_one(config(&format!("http://127.0.0.1:{port}/hook"))).await;
        assert_eq!((stats.delivered, stats.failed), (0, 1));
    }

    #[test]
    fn the_mac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_signs_the_timestamp_a_dot_and_the_body() {
        let secret = SecretString::from("0123456789abcdef");
        let header = sign(&secret, 1_700_000_000, br#"{"a":1}"#);
        let expected = hmac_hex(b"0123456789abcdef", &[b"1700000000.{\"a\":1}"]);
        assert_eq!(header, format!("t=1700000000,v1={expected}"));
        assert!(verify(&secret, &header, br#"{"a":1}"#, 1_700_000_100, 300));
    }

    #[test]
    fn verification_refuses_a_changed_body_another_secret_or_an_old_timestamp() {
        let secret = SecretString::from("0123456789abcdef");
        let header = sign(&secret, 1_700_000_000, b"{}");
        assert!(!verify(&secret, &header, b"{ }", 1_700_000_000, 300));
        let other = SecretString::from("fedcba9876543210");
        assert!(!verify(&other, &header, b"{}", 1_700_000_000, 300));
        assert!(!verify(&secret, &header, b"{}", 1_700_000_301, 300));
        assert!(!verify(&secret, "v1=00", b"{}", 1_700_000_000, 300));
    }

    #[test]
    fn retries_double_from_the_base_with_jitter_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for retry in 1..=10u32 {
            let full = Duration::from_secs(1 << (retry - 1)).min(cap);
            for _ in 0..50 {
                let d = backoff(base, cap, retry);
                assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
            }
        }
        assert!(backoff(base, cap, 1000) <= cap);
    }

    #[test]
    fn a_short_secret_or_a_non_http_url_is_refused() {
        let long = || SecretString::from("0123456789abcdef");
        assert!(matches!(
            WebhookConfig::new("https://crm.example/hooks", SecretString::from("short")),
            Err(WebhookError::ShortSecret)
        ));
        assert!(matches!(
            WebhookConfig::new("ftp://crm.example/hooks", long()),
            Err(WebhookError::BadUrl)
        ));
        assert!(matches!(
            WebhookConfig::new("not a url", long()),
            Err(WebhookError::BadUrl)
        ));
        let ok = WebhookConfig::new("https://crm.example/hooks", long()).unwrap();
        assert_eq!(ok.max_attempts, MAX_ATTEMPTS);
        assert_eq!(ok.backoff_base, BACKOFF_BASE);
    }
}
