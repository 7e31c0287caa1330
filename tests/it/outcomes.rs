//! Booking outcomes that outlive the socket: real calls over a real
//! WebSocket on the Google emulator, read back through the admin API and
//! received by a real HTTP webhook receiver that checks the signature with
//! its own HMAC.

use crate::helpers::{admin, book, http, start_call, to_proposal, tuesday_morning};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use callbook::calendar::emulator::serve_local;
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, Options, RedisServer};
use callbook::ledger::MemoryLedger;
use callbook::outcomes::{OutcomeStore, RedisOutcomes, WebhookConfig};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const OWNER: &str = "alex@callbook.example";
const SECRET: &str = "whsec-test-0123456789abcdef";
/// Retries in these tests start after this long instead of a second.
const TEST_BACKOFF: Duration = Duration::from_millis(50);
/// How long to wait for something that happens in the background.
const PATIENCE: Duration = Duration::from_secs(10);

/// One POST the receiver got.
#[derive(Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
    /// Whether the receiver's own check of the signature passed.
    verified: bool,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Clone)]
struct ReceiverState {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    /// The first this many POSTs are answered 500.
    fail_first: usize,
    clock: Clock,
}

/// A webhook receiver on a loopback port, as a CRM would run one.
struct Receiver {
    url: String,
    state: ReceiverState,
    _stop: tokio_util::sync::DropGuard,
}

impl Receiver {
    async fn start(fail_first: usize, clock: Clock) -> Receiver {
        let state = ReceiverState {
            deliveries: Arc::default(),
            fail_first,
            clock,
        };
        let app = axum::Router::new()
            .route("/hooks/callbook", axum::routing::post(receive))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let addr = serve_local(app, stop.clone()).await.unwrap();
        Receiver {
            url: format!("http://{addr}/hooks/callbook"),
            state,
            _stop: stop.drop_guard(),
        }
    }

    fn config(&self) -> WebhookConfig {
        WebhookConfig::new(&self.url, SecretString::from(SECRET))
            .unwrap()
            .with_backoff_base(TEST_BACKOFF)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries arrived whose body satisfies `pred`.
    async fn wait_for(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got: Vec<Delivery> = self
                .deliveries()
                .into_iter()
                .filter(|d| pred(&d.json()))
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} deliveries arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let signature = headers
        .get("callbook-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let verified = signature_ok(
        SECRET.as_bytes(),
        signature,
        &body,
        state.clock.now().timestamp(),
    );
    let mut all = state.deliveries.lock().unwrap();
    all.push(Delivery {
        headers: headers.clone(),
        body,
        verified,
    });
    if !verified {
        AxumStatus::BAD_REQUEST
    } else if all.len() <= state.fail_first {
        AxumStatus::INTERNAL_SERVER_ERROR
    } else {
        AxumStatus::OK
    }
}

/// The receiver's check, written from the documented scheme and nothing
/// of callbook's: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
/// with the timestamp within five minutes of the receiver's clock.
fn signature_ok(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let fresh = t.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 300);
    let Ok(sig) = hex::decode(v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    fresh && mac.verify_slice(&sig).is_ok()
}

/// The default config on a virtual clock, with these options.
async fn app_with(clock: Clock, options: Options) -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    Harness::start_with_options(
        clock,
        emulators,
        Arc::new(MemoryLedger::new()),
        Arc::new(prov.into_store()),
        options,
    )
    .await
    .unwrap()
}

/// A server that sends outcomes to a new receiver failing its first
/// `fail_first` POSTs.
async fn app_and_receiver(fail_first: usize) -> (Harness, Receiver) {
    let clock = Clock::manual(tuesday_morning());
    let receiver = Receiver::start(fail_first, clock.clone()).await;
    let app = app_with(
        clock,
        Options {
            webhook: Some(receiver.config()),
            ..Options::default()
        },
    )
    .await;
    (app, receiver)
}

/// `GET path` on the admin API until `done` holds for its bookings.
async fn bookings_until(app: &Harness, path: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, body) = admin(app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body["bookings"].as_array().cloned().unwrap_or_default();
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path}: still {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn call_bookings(app: &Harness, sid: &str, n: usize) -> Vec<Value> {
    bookings_until(app, &format!("/v1/bookings?call_sid={sid}"), |l| {
        l.len() >= n
    })
    .await
}

/// Drives a call to the caller's final yes and drops the socket at once,
/// without `stop`: the pipeline crashed.
async fn yes_then_drop(app: &Harness, sid: &str) {
    let mut c = start_call(app, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    drop(c);
}

fn booked_events(app: &Harness) -> Vec<callbook::calendar::emulator::google::StoredEvent> {
    app.google
        .events(OWNER)
        .into_iter()
        .filter(|e| e.booking_id.is_some())
        .collect()
}

#[tokio::test]
async fn a_booking_whose_socket_dropped_after_yes_is_readable_by_call_and_campaign() {
    let app = app_with(Clock::manual(tuesday_morning()), Options::default()).await;
    let sid = "CA0000000000000000000000000out001";
    yes_then_drop(&app, sid).await;

    let by_call = call_bookings(&app, sid, 1).await;
    assert_eq!(by_call.len(), 1, "{by_call:?}");
    let rec = &by_call[0];
    assert_eq!(rec["status"], "booked");
    assert_eq!(rec["call_sid"], sid);
    assert_eq!(rec["campaign_id"], "demo");
    assert_eq!(rec["provider"], "google");
    assert_eq!(rec["invitee"], "jane@example.com");
    assert_eq!(rec["at"], json!(tuesday_morning()));
    assert!(rec["reason"].is_null() && rec["previous_start"].is_null());

    // What the record says is what the calendar holds.
    let events = booked_events(&app);
    assert_eq!(events.len(), 1, "the caller said yes: the booking stands");
    let ev = &events[0];
    assert_eq!(rec["event_id"], ev.id.as_str());
    assert_eq!(rec["start"], json!(ev.start));
    assert_eq!(rec["end"], json!(ev.end));
    assert_eq!(rec["join_link"], json!(ev.join_link));
    assert!(ev.join_link.is_some());
    assert!(ev.attendees.iter().any(|a| a == "jane@example.com"));

    let by_campaign = bookings_until(&app, "/v1/campaigns/demo/bookings", |l| !l.is_empty()).await;
    assert_eq!(by_campaign, by_call);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_webhook_is_retried_after_a_500_with_the_same_key_and_then_never_again() {
    let (app, receiver) = app_and_receiver(1).await;
    let sid = "CA0000000000000000000000000out002";
    yes_then_drop(&app, sid).await;

    let got = receiver.wait_for(2, |_| true).await;
    let rec = call_bookings(&app, sid, 1).await.remove(0);
    let id = rec["id"].as_str().unwrap();
    for d in &got {
        assert!(d.verified, "the signature checks out");
        assert_eq!(d.header("idempotency-key"), id);
        assert_eq!(d.header("content-type"), "application/json");
        assert_eq!(
            d.json(),
            json!({"id": id, "type": "booking.booked", "created_at": rec["at"], "data": rec})
        );
    }
    // Delivered on the second attempt: nothing more comes, well past the
    // next retry's time.
    tokio::time::sleep(TEST_BACKOFF * 20).await;
    assert_eq!(receiver.deliveries().len(), 2);

    // The signature is real: a changed body or another secret fails the
    // receiver's check.
    let d = &got[1];
    let now = tuesday_morning().timestamp();
    let sig = d.header("callbook-signature");
    assert!(signature_ok(SECRET.as_bytes(), sig, &d.body, now));
    let tampered = String::from_utf8(d.body.to_vec())
        .unwrap()
        .replace("jane@example.com", "mallory@example.com");
    assert!(!signature_ok(
        SECRET.as_bytes(),
        sig,
        tampered.as_bytes(),
        now
    ));
    assert!(!signature_ok(
        b"another-secret-0123456789",
        sig,
        &d.body,
        now
    ));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_on_an_unknown_campaign_records_one_skip_and_sends_it() {
    let (app, receiver) = app_and_receiver(0).await;
    let sid = "CA0000000000000000000000000out003";
    let mut c = app.connect().await.unwrap();
    c.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": "nope", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    c.send(&frames::start(sid, params)).await.unwrap();
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    // Skipped at start and again at the offer: one outcome.
    assert_eq!(
        got.iter()
            .filter(|f| f["booking"]["status"] == "skipped")
            .count(),
        2,
        "{got:?}"
    );
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();

    let recs = call_bookings(&app, sid, 1).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert_eq!(rec["status"], "skipped");
    assert_eq!(rec["reason"], "campaign_unknown");
    assert_eq!(rec["campaign_id"], "nope");
    assert!(rec["event_id"].is_null() && rec["invitee"].is_null() && rec["provider"].is_null());
    let by_campaign = bookings_until(&app, "/v1/campaigns/nope/bookings", |l| !l.is_empty()).await;
    assert_eq!(by_campaign, recs);

    let sent = receiver.wait_for(1, |b| b["data"]["call_sid"] == sid).await;
    assert!(sent[0].verified);
    assert_eq!(sent[0].json()["type"], "booking.skipped");
    assert_eq!(sent[0].json()["data"], *rec);
    tokio::time::sleep(TEST_BACKOFF * 10).await;
    assert_eq!(receiver.deliveries().len(), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_booking_that_fails_at_yes_is_recorded_and_sent_with_its_reason() {
    let (app, receiver) = app_and_receiver(0).await;
    let sid = "CA0000000000000000000000000out004";
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    app.google.revoke(OWNER);
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["event"], "turn");
    assert_eq!(
        got[1]["booking"],
        json!({"status": "failed", "reason": "calendar_expired"})
    );
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();

    let rec = call_bookings(&app, sid, 1).await.remove(0);
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["reason"], "calendar_expired");
    assert_eq!(rec["invitee"], "jane@example.com");
    assert!(rec["event_id"].is_null());
    assert!(booked_events(&app).is_empty());

    let sent = receiver.wait_for(1, |_| true).await;
    assert!(sent[0].verified);
    assert_eq!(sent[0].json()["type"], "booking.failed");
    assert_eq!(sent[0].json()["data"], rec);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_meeting_moved_and_then_cancelled_on_the_call_is_recorded_at_each_step() {
    let (app, receiver) = app_and_receiver(0).await;
    let sid = "CA0000000000000000000000000out005";
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    let mut statuses = Vec::new();
    for text in [
        "yes",
        "actually can we make it Wednesday instead?",
        "yes please",
        "actually, please cancel that meeting",
        "yes",
    ] {
        c.send(&frames::transcript(text)).await.unwrap();
        for f in c.settle().await.unwrap() {
            if f["event"] == "booking" {
                statuses.push(f["booking"]["status"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(statuses, ["booked", "proposed", "rescheduled", "cancelled"]);
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();

    let recs = call_bookings(&app, sid, 3).await;
    let kinds: Vec<&str> = recs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["cancelled", "moved", "booked"], "newest first");
    let (cancelled, moved, booked) = (&recs[0], &recs[1], &recs[2]);
    assert_eq!(moved["event_id"], booked["event_id"]);
    assert_eq!(moved["previous_start"], booked["start"]);
    assert_ne!(moved["start"], booked["start"]);
    assert_eq!(moved["invitee"], "jane@example.com");
    assert_eq!(cancelled["event_id"], booked["event_id"]);
    assert_eq!(cancelled["start"], moved["start"]);
    assert_eq!(cancelled["end"], moved["end"]);
    assert_eq!(cancelled["invitee"], "jane@example.com");

    // The calendar agrees: the one event was moved there, then cancelled.
    let events = booked_events(&app);
    assert_eq!(events.len(), 1);
    assert_eq!(booked["event_id"], events[0].id.as_str());
    assert_eq!(moved["start"], json!(events[0].start));
    assert_eq!(events[0].status, "cancelled");

    let sent = receiver.wait_for(3, |_| true).await;
    let mut types: Vec<String> = sent
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["booking.booked", "booking.cancelled", "booking.moved"]
    );
    assert!(sent.iter().all(|d| d.verified));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_outcome_recorded_by_one_server_is_read_from_another_through_redis() {
    let redis = RedisServer::start().await.unwrap();
    let clock = Clock::manual(tuesday_morning());
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let mut apps = Vec::new();
    for _ in 0..2 {
        let outcomes: Arc<dyn OutcomeStore> = Arc::new(
            RedisOutcomes::connect(&redis.url, "cb:outcomes:", clock.clone())
                .await
                .unwrap(),
        );
        apps.push(
            Harness::start_with_options(
                clock.clone(),
                emulators.clone(),
                Arc::new(MemoryLedger::new()),
                Arc::new(Provisioning::parse(DEFAULT).unwrap().into_store()),
                Options {
                    outcomes: Some(outcomes),
                    ..Options::default()
                },
            )
            .await
            .unwrap(),
        );
    }
    let sid = "CA0000000000000000000000000out006";
    let frame = book(&apps[0], sid).await;
    assert_eq!(frame["booking"]["status"], "booked", "{frame}");

    // Server 1 ran no call, yet answers for it.
    let recs = call_bookings(&apps[1], sid, 1).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["event_id"], frame["booking"]["event_id"]);
    assert_eq!(recs[0]["start"], frame["booking"]["start"]);
    assert_eq!(recs[0]["invitee"], "jane@example.com");
    let by_campaign =
        bookings_until(&apps[1], "/v1/campaigns/demo/bookings", |l| !l.is_empty()).await;
    assert_eq!(by_campaign, recs);
    let (_, same) = admin(
        &apps[0],
        Method::GET,
        &format!("/v1/bookings?call_sid={sid}"),
        None,
    )
    .await;
    assert_eq!(same["bookings"], json!(recs));

    // An entry nobody can read is skipped, not a failure of the whole call.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("LPUSH")
        .arg(format!("cb:outcomes:outcomes:call:{sid}"))
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (status, after) = admin(
        &apps[1],
        Method::GET,
        &format!("/v1/bookings?call_sid={sid}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["bookings"], json!(recs));
    for app in apps {
        app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_bookings_api_needs_the_admin_token_and_a_sane_query() {
    let app = app_with(Clock::manual(tuesday_morning()), Options::default()).await;
    for path in [
        "/v1/bookings?call_sid=CA0000000000000000000000000out007",
        "/v1/campaigns/demo/bookings",
    ] {
        let url = format!("http://{}{path}", app.addr);
        let none = http().get(&url).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = none.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        // The pipeline's call token is not the admin token.
        for token in [app.token.as_str(), "wrong"] {
            let resp = http().get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
    }
    for (path, code) in [
        ("/v1/bookings", "bad_request"),
        ("/v1/bookings?call_sid=", "bad_request"),
        ("/v1/bookings?call_sid=CA1&limit=0", "invalid_limit"),
        ("/v1/campaigns/demo/bookings?limit=lots", "invalid_limit"),
        ("/v1/campaigns/demo/bookings?limit=100000", "invalid_limit"),
    ] {
        let (status, body) = admin(&app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], code, "{path}");
        assert!(body["message"].is_string());
    }
    let (status, body) = admin(&app, Method::GET, "/v1/campaigns/demo/bookings", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"bookings": []}));
    app.stop().await.unwrap();
}

/// The record a change of unknown outcome would make waits in the store
/// for the reconciler, is taken once, and is gone after its hour (in
/// process and in Redis alike).
#[tokio::test]
async fn a_pending_record_is_taken_once_and_expires() {
    let redis = RedisServer::start().await.unwrap();
    let clock = Clock::manual(tuesday_morning());
    let stores: Vec<(&str, Arc<dyn OutcomeStore>)> = vec![
        (
            "memory",
            Arc::new(callbook::outcomes::MemoryOutcomes::new(clock.clone())),
        ),
        (
            "redis",
            Arc::new(
                RedisOutcomes::connect(&redis.url, "cb:pending:", clock.clone())
                    .await
                    .unwrap(),
            ),
        ),
    ];
    let record = callbook::outcomes::BookingRecord {
        id: "rec-1".into(),
        call_sid: "CA0000000000000000000000000pend01".into(),
        campaign_id: Some("demo".into()),
        status: callbook::outcomes::OutcomeStatus::Booked,
        event_id: None,
        start: Some(tuesday_morning()),
        end: Some(tuesday_morning() + chrono::Duration::minutes(30)),
        previous_start: None,
        invitee: Some("jane@example.com".into()),
        reason: None,
        join_link: None,
        provider: None,
        at: tuesday_morning(),
    };
    for (what, store) in &stores {
        store.pend("claim-1", &record).await.unwrap();
        let taken = store.take_pending("claim-1").await.unwrap();
        assert_eq!(
            taken.as_ref().map(|r| r.id.as_str()),
            Some("rec-1"),
            "{what}"
        );
        assert!(
            store.take_pending("claim-1").await.unwrap().is_none(),
            "{what}: once"
        );
        assert!(
            store.take_pending("claim-2").await.unwrap().is_none(),
            "{what}"
        );
    }
    // In process, the hour is the store's clock's.
    let memory = &stores[0].1;
    memory.pend("claim-3", &record).await.unwrap();
    clock.advance(callbook::outcomes::PENDING_FOR + chrono::Duration::seconds(1));
    assert!(memory.take_pending("claim-3").await.unwrap().is_none());
}
