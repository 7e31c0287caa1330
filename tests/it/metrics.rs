//! `/metrics` and `/readyz` against real calls: the funnel of a booked
//! call moves its campaign's counters, nothing of the caller reaches the
//! scrape, `/metrics` can sit behind the admin token, and readiness
//! follows Redis.
//!
//! The recorder is one per process and every test in this binary shares
//! it, so each test reads counters labelled with a campaign of its own,
//! or the growth of process-wide counters between two scrapes.

use crate::helpers::{
    http, sample, scrape, spawn_campaign, start_call_on, to_proposal, tuesday_morning,
};
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, Options, RedisServer};
use callbook::ledger::{Ledger, RedisLedger};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::secrets::TokenCipher;
use callbook::store::{RedisStore, Store};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const PHONE: &str = "+14155550123";
const EMAIL: &str = "jane@example.com";

/// Waits until `check` holds on a fresh scrape (calls end, and are
/// counted, just after their sockets close).
async fn eventually(app: &Harness, what: &str, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let page = scrape(app).await;
        if check(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never showed in /metrics:\n{}", scrape(app).await);
}

#[tokio::test]
async fn a_booked_call_moves_its_campaigns_funnel_and_the_process_counters() {
    let campaign = "metrics-funnel";
    let app = spawn_campaign(campaign).await;
    let before = scrape(&app).await;
    let sid = "CA00000000000000000000000metrics01";
    let mut c = start_call_on(&app, sid, campaign).await;
    let during = scrape(&app).await;
    assert!(
        sample(&during, "callbook_live_calls", &[]) >= 1.0,
        "{during}"
    );
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(got.iter().any(|f| f["booking"]["status"] == "booked"));
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();

    let page = eventually(&app, "the call's end", |p| {
        sample(
            p,
            "callbook_calls_ended_total",
            &[("campaign", campaign), ("stage", "booked")],
        ) == 1.0
    })
    .await;
    let step = |s: &str| {
        sample(
            &page,
            "callbook_booking_funnel_total",
            &[("campaign", campaign), ("step", s)],
        )
    };
    assert_eq!(
        sample(
            &page,
            "callbook_calls_started_total",
            &[("campaign", campaign)]
        ),
        1.0
    );
    for s in ["offered", "email_captured", "email_confirmed", "booked"] {
        assert_eq!(step(s), 1.0, "{s}:\n{page}");
    }
    assert!(step("proposed") >= 1.0);
    assert_eq!(step("declined"), 0.0);

    // Process-wide counters grew by at least this call's share.
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&page, name, labels) - sample(&before, name, labels)
    };
    assert!(grew("callbook_frames_received_total", &[("event", "transcript")]) >= 4.0);
    assert!(grew("callbook_frames_received_total", &[("event", "start")]) >= 1.0);
    assert!(grew("callbook_frames_sent_total", &[("event", "say")]) >= 4.0);
    assert!(grew("callbook_frames_sent_total", &[("event", "booking")]) >= 4.0);
    let insert = [
        ("provider", "google"),
        ("endpoint", "events_insert"),
        ("outcome", "ok"),
    ];
    assert!(grew("callbook_provider_requests_total", &insert) >= 1.0);
    assert!(
        grew(
            "callbook_provider_request_duration_seconds_count",
            &[("provider", "google"), ("endpoint", "free_busy")]
        ) >= 2.0,
        "availability at start and the re-check before the create"
    );
    assert!(grew("callbook_token_refreshes_total", &[("provider", "google")]) >= 1.0);
    let hold = [("op", "hold"), ("outcome", "ok")];
    assert!(grew("callbook_ledger_decisions_total", &hold) >= 1.0);
    assert!(
        grew(
            "callbook_ledger_decision_duration_seconds_count",
            &[("op", "commit")]
        ) >= 1.0
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn skips_refusals_and_unknown_campaigns_are_counted_without_new_labels() {
    let campaign = "metrics-skips";
    let app = spawn_campaign(campaign).await;
    let (status, _) = crate::helpers::admin(
        &app,
        reqwest::Method::PUT,
        &format!("/v1/campaigns/{campaign}/booking"),
        Some(json!({
            "enabled": false,
            "rules": {"timezone": "America/New_York", "length_minutes": 30,
                      "window": {"days": ["mon"], "start": "09:00", "end": "17:00"}, "look_ahead_days": 7},
            "meeting": {"type": "video"}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let before = scrape(&app).await;
    let mut c = start_call_on(&app, "CA000000000000000000000metricsskip", campaign).await;
    // Offered twice: still one skip.
    for _ in 0..2 {
        c.send(&frames::offer()).await.unwrap();
        c.settle().await.unwrap();
    }
    c.send_raw("{not json").await.unwrap();
    c.settle().await.unwrap();
    // A campaign nobody provisioned is counted as `unknown`.
    let mut stranger =
        start_call_on(&app, "CA000000000000000000000metricsunkn", "made-up-9f3a1c").await;
    for call in [&mut c, &mut stranger] {
        call.send(&frames::stop("CA")).await.unwrap();
        call.drain().await.unwrap();
    }
    // The limits' counter, as their code will call it.
    callbook::observe::metrics::limit_rejected("test_only");

    let page = eventually(&app, "the skipped call's end", |p| {
        sample(
            p,
            "callbook_calls_ended_total",
            &[("campaign", campaign), ("stage", "skipped")],
        ) == 1.0
    })
    .await;
    let skipped = [("campaign", campaign), ("reason", "booking_disabled")];
    assert_eq!(
        sample(&page, "callbook_booking_skipped_total", &skipped),
        1.0
    );
    assert!(
        sample(
            &page,
            "callbook_protocol_errors_total",
            &[("kind", "malformed_json")]
        ) > sample(
            &before,
            "callbook_protocol_errors_total",
            &[("kind", "malformed_json")]
        )
    );
    assert!(
        sample(
            &page,
            "callbook_frames_received_total",
            &[("event", "invalid")]
        ) >= 1.0
    );
    assert!(
        sample(
            &page,
            "callbook_limit_rejections_total",
            &[("kind", "test_only")]
        ) >= 1.0
    );
    assert!(!page.contains("made-up-9f3a1c"), "{page}");
    assert!(
        sample(
            &page,
            "callbook_calls_started_total",
            &[("campaign", "unknown")]
        ) >= 1.0
    );
    app.stop().await.unwrap();
}

/// Nothing that names the caller or the meeting reaches the scrape: not
/// the number (in any form), the email, the call or stream SID, the event
/// id or the join link.
#[tokio::test]
async fn the_scrape_carries_no_callers_data() {
    let campaign = "metrics-pii";
    let app = spawn_campaign(campaign).await;
    let sid = "CA0000000000000000000000metricspii";
    let mut c = start_call_on(&app, sid, campaign).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    let booked = got
        .iter()
        .find(|f| f["booking"]["status"] == "booked")
        .expect("booked")["booking"]
        .clone();
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    let page = eventually(&app, "the call's end", |p| {
        sample(p, "callbook_calls_ended_total", &[("campaign", campaign)]) == 1.0
    })
    .await;
    let event_id = booked["event_id"].as_str().unwrap();
    let stream = format!("MZ{}", sid.trim_start_matches("CA"));
    let mut secrets = vec![
        PHONE.to_string(),
        PHONE.trim_start_matches('+').to_string(),
        "4155550123".into(),
        "5550123".into(),
        EMAIL.into(),
        "example.com".into(),
        "jane".into(),
        "Jane".into(),
        sid.into(),
        sid.trim_start_matches("CA").into(),
        stream,
        event_id.into(),
    ];
    if let Some(link) = booked["join_link"].as_str() {
        secrets.push(link.into());
    }
    for s in &secrets {
        assert!(!page.contains(s.as_str()), "{s:?} is in the scrape");
    }
    // And the labels are from the closed sets.
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let labels = line
            .split_once('{')
            .and_then(|(_, r)| r.rsplit_once('}'))
            .map(|(l, _)| l)
            .unwrap_or_default();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (key, _) = pair.split_once('=').unwrap();
            assert!(
                [
                    "campaign", "step", "reason", "stage", "provider", "endpoint", "outcome",
                    "class", "op", "event", "kind", "le"
                ]
                .contains(&key),
                "unexpected label {key:?} in {line}"
            );
        }
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_can_be_put_behind_the_admin_token() {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let options = Options {
        metrics_auth: true,
        ..Options::default()
    };
    let app = Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators,
        Arc::new(callbook::ledger::MemoryLedger::new()),
        Arc::new(prov.into_store()),
        options,
    )
    .await
    .unwrap();
    // Something to show: a socket's hello frame.
    app.connect().await.unwrap().close().await.unwrap();
    let url = format!("http://{}/metrics", app.addr);
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let calls = http()
        .get(&url)
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(calls.status(), StatusCode::UNAUTHORIZED);
    let admin = http()
        .get(&url)
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    assert!(admin.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let page = admin.text().await.unwrap();
    assert!(
        page.contains("# TYPE callbook_frames_sent_total counter"),
        "{page}"
    );
    // Open by default.
    let open = spawn_campaign("metrics-open").await;
    let page = http()
        .get(format!("http://{}/metrics", open.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    app.stop().await.unwrap();
    open.stop().await.unwrap();
}

async fn readyz(app: &Harness) -> (StatusCode, Value) {
    let resp = http()
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// A callbook whose ledger and store are both in `server`'s Redis.
pub async fn redis_app(server: &RedisServer, prefix: &str) -> Harness {
    use base64::Engine;
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let cipher = TokenCipher::from_base64(&key).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&server.url, prefix, cipher, prov.into_store())
            .await
            .unwrap(),
    );
    let ledger: Arc<dyn Ledger> = Arc::new(
        RedisLedger::connect(&server.url, &format!("{prefix}ledger:"))
            .await
            .unwrap(),
    );
    let outcomes: Arc<dyn callbook::outcomes::OutcomeStore> = Arc::new(
        callbook::outcomes::RedisOutcomes::connect(&server.url, prefix, Clock::System)
            .await
            .unwrap(),
    );
    let options = Options {
        outcomes: Some(outcomes),
        ..Options::default()
    };
    Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators,
        ledger,
        store,
        options,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn readiness_fails_while_redis_is_down_and_names_what_and_comes_back() {
    let mut server = RedisServer::start().await.unwrap();
    let app = redis_app(&server, "cb:ready:").await;
    assert_eq!(
        readyz(&app).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );

    server.kill();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    let failing: Vec<&str> = body["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["ledger", "store"], "{body}");
    let text = body.to_string();
    for internal in ["os error", "refused", "Connection", "IoError"] {
        assert!(!text.contains(internal), "{text}");
    }
    // Liveness does not follow Redis.
    let health = http()
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    server.restart().await.unwrap();
    let mut back = None;
    for _ in 0..100 {
        let (status, body) = readyz(&app).await;
        if status == StatusCode::OK {
            back = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, Some(json!({"status": "ready"})));
    app.stop().await.unwrap();
}
