//! The Google fault matrix, over real HTTP against the emulator: each fault
//! gets its defined outcome, and no duplicate event is ever created.

use callbook::calendar::emulator::google::{Endpoint, Fault};
use callbook::calendar::emulator::TokenFault;
use callbook::calendar::emulator::{serve_local, AccountSpec, GoogleEmulator};
use callbook::calendar::google::GoogleCalendar;
use callbook::calendar::{CalendarError, CalendarProvider, NewEvent};
use callbook::dialog::MeetingKind;
use callbook::harness::{emulator_endpoints, EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET};
use callbook::schedule::Interval;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::time::Duration as StdDuration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const OWNER: &str = "owner@acme.example";

struct Setup {
    emu: GoogleEmulator,
    client: GoogleCalendar,
    _stop: tokio_util::sync::DropGuard,
}

async fn setup() -> Setup {
    let emu = GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(AccountSpec {
        email: OWNER.into(),
        refresh_token: "rt-1".into(),
        time_zone: "America/New_York".into(),
        meet: true,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let client = GoogleCalendar::new(
        callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
        emulator_endpoints(addr),
        "primary".into(),
        SecretString::from("rt-1"),
    );
    Setup {
        emu,
        client,
        _stop: stop.drop_guard(),
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event(booking: &str) -> NewEvent {
    NewEvent {
        booking_id: booking.into(),
        slot: Interval::new(t("2026-12-01T19:00:00Z"), t("2026-12-01T19:30:00Z")),
        timezone: chrono_tz::America::New_York,
        title: "Alex <> Jane".into(),
        description: "Intro".into(),
        attendee_email: "jane@example.com".into(),
        attendee_name: "Jane".into(),
        meeting: MeetingKind::Video,
    }
}

fn ours(s: &Setup) -> usize {
    s.emu
        .events(OWNER)
        .iter()
        .filter(|e| e.booking_id.is_some())
        .count()
}

#[tokio::test]
async fn the_access_token_is_refreshed_once_and_reused() {
    let s = setup().await;
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    s.client.free_busy(day).await.unwrap();
    s.client.calendar_info().await.unwrap();
    s.client.free_busy(day).await.unwrap();
    assert_eq!(s.emu.tokens_issued(), 1);
}

#[tokio::test]
async fn a_revoked_grant_is_expired() {
    let s = setup().await;
    s.emu.revoke(OWNER);
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    assert_eq!(s.client.free_busy(day).await, Err(CalendarError::Expired));
}

#[tokio::test]
async fn a_revoked_grant_mid_call_is_expired_after_one_refresh() {
    let s = setup().await;
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    s.client.free_busy(day).await.unwrap();
    // The cached access token stops working and the refresh is refused.
    s.emu.revoke(OWNER);
    assert_eq!(
        s.client.create_event(&event("b0000001")).await,
        Err(CalendarError::Expired)
    );
    assert_eq!(ours(&s), 0);
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let s = setup().await;
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    let fault = Fault::Status {
        code: 429,
        reason: "rateLimitExceeded",
        retry_after: Some(1),
    };
    s.emu.inject(OWNER, Endpoint::FreeBusy, fault, 1);
    let started = Instant::now();
    s.client.free_busy(day).await.unwrap();
    assert!(started.elapsed() >= StdDuration::from_secs(1));
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_budget_gives_up() {
    let s = setup().await;
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    let fault = Fault::Status {
        code: 403,
        reason: "userRateLimitExceeded",
        retry_after: Some(60),
    };
    s.emu.inject(OWNER, Endpoint::FreeBusy, fault, 5);
    let started = Instant::now();
    assert!(matches!(
        s.client.free_busy(day).await,
        Err(CalendarError::RateLimited { .. })
    ));
    assert!(started.elapsed() < StdDuration::from_secs(5));
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id_and_create_once() {
    let s = setup().await;
    let fault = Fault::Status {
        code: 503,
        reason: "backendError",
        retry_after: None,
    };
    s.emu.inject(OWNER, Endpoint::Insert, fault, 2);
    let made = s.client.create_event(&event("b0000002")).await.unwrap();
    assert_eq!(made.event_id, "b0000002");
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let s = setup().await;
    let fault = Fault::Status {
        code: 400,
        reason: "badRequest",
        retry_after: None,
    };
    s.emu.inject(OWNER, Endpoint::Insert, fault, 2);
    assert!(matches!(
        s.client.create_event(&event("b0000003")).await,
        Err(CalendarError::Rejected(_))
    ));
    // One fault is left: the first attempt was the only one.
    assert!(matches!(
        s.client.create_event(&event("b0000003")).await,
        Err(CalendarError::Rejected(_))
    ));
    s.client.create_event(&event("b0000003")).await.unwrap();
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn commit_then_drop_is_resolved_by_looking_the_event_up() {
    let s = setup().await;
    s.emu
        .inject(OWNER, Endpoint::Insert, Fault::CommitThenDrop, 1);
    let made = s.client.create_event(&event("b0000004")).await.unwrap();
    assert_eq!(made.event_id, "b0000004");
    assert!(made.join_link.is_some());
    assert_eq!(ours(&s), 1, "the retry must not create a second event");
}

#[tokio::test]
async fn the_same_booking_twice_is_one_event() {
    let s = setup().await;
    let a = s.client.create_event(&event("b0000005")).await.unwrap();
    let b = s.client.create_event(&event("b0000005")).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn an_id_taken_by_another_booking_is_a_duplicate() {
    let s = setup().await;
    s.client.create_event(&event("abcde-1")).await.unwrap();
    // Maps to the same provider id, but carries another booking id.
    assert_eq!(
        s.client.create_event(&event("abcde1")).await,
        Err(CalendarError::Duplicate)
    );
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn a_pending_meet_link_is_polled_until_it_arrives() {
    let s = setup().await;
    s.emu.meet_pending_for(OWNER, 2);
    let made = s.client.create_event(&event("b0000006")).await.unwrap();
    assert!(made
        .join_link
        .as_deref()
        .is_some_and(|l| l.starts_with("https://meet.google.com/")));
}

#[tokio::test]
async fn a_meet_link_still_pending_after_the_budget_is_reported_missing() {
    let s = setup().await;
    s.emu.meet_pending_for(OWNER, 1_000);
    let started = Instant::now();
    let made = s.client.create_event(&event("b0000007")).await.unwrap();
    assert_eq!(made.join_link, None);
    assert!(started.elapsed() < StdDuration::from_secs(5));
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn a_calendar_error_inside_a_200_fails_closed() {
    let s = setup().await;
    s.emu.inject(
        OWNER,
        Endpoint::FreeBusy,
        Fault::CalendarError("notFound"),
        10,
    );
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    assert!(matches!(
        s.client.free_busy(day).await,
        Err(CalendarError::Transient(_))
    ));
}

#[tokio::test]
async fn long_ranges_are_split_into_90_day_queries() {
    let s = setup().await;
    s.emu.add_event(
        OWNER,
        "far away",
        Interval::new(t("2027-05-01T15:00:00Z"), t("2027-05-01T16:00:00Z")),
    );
    let long = Interval::new(t("2026-12-01T00:00:00Z"), t("2027-06-01T00:00:00Z"));
    let busy = s.client.free_busy(long).await.unwrap();
    assert_eq!(
        busy,
        vec![Interval::new(
            t("2027-05-01T15:00:00Z"),
            t("2027-05-01T16:00:00Z")
        )]
    );
}

#[tokio::test]
async fn free_busy_may_lag_writes() {
    let s = setup().await;
    s.emu.lag_free_busy(OWNER, StdDuration::from_millis(300));
    s.client.create_event(&event("b0000008")).await.unwrap();
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    // Not visible yet: callbook's own claims in the ledger cover this gap.
    assert!(s.client.free_busy(day).await.unwrap().is_empty());
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(s.client.free_busy(day).await.unwrap().len(), 1);
}

#[tokio::test]
async fn slow_answers_within_the_timeout_just_take_longer() {
    let s = setup().await;
    s.emu.inject(
        OWNER,
        Endpoint::Insert,
        Fault::Latency(StdDuration::from_millis(500)),
        1,
    );
    let started = Instant::now();
    s.client.create_event(&event("b0000009")).await.unwrap();
    assert!(started.elapsed() >= StdDuration::from_millis(500));
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn an_admin_policy_refusal_is_admin_approval_needed() {
    let s = setup().await;
    let fault = Fault::Token(TokenFault::ConsentRequired);
    s.emu.inject(OWNER, Endpoint::Token, fault, 1);
    assert_eq!(
        s.client.create_event(&event("b000000a")).await,
        Err(CalendarError::ConsentRequired)
    );
    assert_eq!(ours(&s), 0);
}

#[tokio::test]
async fn a_reauth_demand_is_handled_like_expiry() {
    let s = setup().await;
    let fault = Fault::Token(TokenFault::InteractionRequired);
    s.emu.inject(OWNER, Endpoint::Token, fault, 1);
    assert_eq!(s.client.calendar_info().await, Err(CalendarError::Expired));
}

#[tokio::test]
async fn a_token_endpoint_briefly_unavailable_is_retried() {
    let s = setup().await;
    let fault = Fault::Token(TokenFault::TemporarilyUnavailable);
    s.emu.inject(OWNER, Endpoint::Token, fault, 1);
    s.client
        .free_busy(Interval::new(
            t("2026-12-01T00:00:00Z"),
            t("2026-12-02T00:00:00Z"),
        ))
        .await
        .unwrap();
    assert_eq!(s.emu.tokens_issued(), 1);
}

#[tokio::test]
async fn calendar_usage_limits_are_not_retried_while_a_caller_waits() {
    let s = setup().await;
    let fault = Fault::Status {
        code: 403,
        reason: "quotaExceeded",
        retry_after: None,
    };
    s.emu.inject(OWNER, Endpoint::Insert, fault, 2);
    assert!(matches!(
        s.client.create_event(&event("b000000b")).await,
        Err(CalendarError::RateLimited { .. })
    ));
    // One fault is left: the first attempt was the only one.
    assert!(s.client.create_event(&event("b000000b")).await.is_err());
    s.client.create_event(&event("b000000b")).await.unwrap();
    assert_eq!(ours(&s), 1);
}

#[tokio::test]
async fn a_401_from_the_api_gets_one_refresh_and_one_retry() {
    let s = setup().await;
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    s.client.free_busy(day).await.unwrap();
    let fault = Fault::Status {
        code: 401,
        reason: "authError",
        retry_after: None,
    };
    s.emu.inject(OWNER, Endpoint::FreeBusy, fault, 1);
    s.client.free_busy(day).await.unwrap();
    assert_eq!(s.emu.tokens_issued(), 2);
}

/// The Google emulator served bare, with an access token for the owner,
/// for requests the client never sends.
async fn raw_google() -> (GoogleEmulator, String, String, tokio_util::sync::DropGuard) {
    let emu = GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(AccountSpec {
        email: OWNER.into(),
        refresh_token: "rt-1".into(),
        time_zone: "America/New_York".into(),
        meet: true,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let base = format!("http://{addr}");
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-1"),
            ("client_id", EMULATOR_CLIENT_ID),
            ("client_secret", EMULATOR_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();
    (emu, base, access, stop.drop_guard())
}

#[tokio::test]
async fn the_emulator_refuses_values_outside_google_s_parameter_enums() {
    let (emu, base, access, _stop) = raw_google().await;
    let body = serde_json::json!({
        "start": {"dateTime": "2026-12-01T19:00:00Z"}, "end": {"dateTime": "2026-12-01T19:30:00Z"}});
    for query in [
        "conferenceDataVersion=2",
        "conferenceDataVersion=yes",
        "sendUpdates=everyone",
        "sendUpdates=ALL",
    ] {
        let resp = reqwest::Client::new()
            .post(format!(
                "{base}/calendar/v3/calendars/primary/events?{query}"
            ))
            .bearer_auth(&access)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], 400, "{query}");
    }
    assert!(emu.events(OWNER).is_empty());
    let ok = reqwest::Client::new()
        .post(format!(
            "{base}/calendar/v3/calendars/primary/events?conferenceDataVersion=1&sendUpdates=externalOnly"
        ))
        .bearer_auth(&access)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
}

#[tokio::test]
async fn rate_limits_come_in_google_s_two_shapes() {
    let (emu, base, access, _stop) = raw_google().await;
    let cases = [
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (429, "rateLimitExceeded", "global"),
    ];
    for (code, reason, domain) in cases {
        let fault = Fault::Status {
            code,
            reason,
            retry_after: None,
        };
        emu.inject(OWNER, Endpoint::FreeBusy, fault, 1);
        let resp = reqwest::Client::new()
            .post(format!("{base}/calendar/v3/freeBusy"))
            .bearer_auth(&access)
            .json(&serde_json::json!({"timeMin": "2026-12-01T00:00:00Z",
                "timeMax": "2026-12-02T00:00:00Z", "items": [{"id": "primary"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code);
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], code);
        assert_eq!(err["error"]["errors"][0]["reason"], reason);
        assert_eq!(
            err["error"]["errors"][0]["domain"], domain,
            "{code} {reason}"
        );
    }
}
