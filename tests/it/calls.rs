use crate::helpers::{of_kind, spawn_app, start_call, to_proposal};
use callbook::harness::{frames, CallClient};
use callbook::schedule::Interval;
use chrono::Duration;
use serde_json::json;

#[tokio::test]
async fn a_missing_bearer_token_gets_401_and_no_socket() {
    let app = spawn_app().await;
    let err = CallClient::connect(app.addr, None)
        .await
        .err()
        .expect("must not connect");
    assert!(err.to_string().contains("401"), "{err}");
    let err = CallClient::connect(app.addr, Some("wrong"))
        .await
        .err()
        .expect("must not connect");
    assert!(err.to_string().contains("401"), "{err}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn health_reports_the_protocol_version() {
    let app = spawn_app().await;
    let body: serde_json::Value = reqwest::get(format!("http://{}/healthz", app.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"status": "ok", "protocol": "1.5.0"}));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_first_frame_announces_the_version() {
    let app = spawn_app().await;
    let c = app.connect().await.unwrap();
    assert_eq!(
        c.hello,
        json!({"event": "connected", "protocol": "callbook", "version": "1.5.0"})
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_errors_and_the_call_goes_on() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA0000000000000000000000000000bad1").await;
    for (raw, code) in [
        ("{nope", "malformed_json"),
        ("{\"no_event\":1}", "missing_event"),
        ("{\"event\":\"teleport\"}", "unknown_event"),
        (
            "{\"event\":\"booking\",\"booking\":{\"action\":\"maybe\"}}",
            "invalid_frame",
        ),
        ("[]", "malformed_json"),
        ("\"just a string\"", "malformed_json"),
    ] {
        c.send_raw(raw).await.unwrap();
        let got = c.settle().await.unwrap();
        assert_eq!(got.len(), 1, "{raw}: {got:?}");
        assert_eq!(got[0]["error"]["code"], code, "{raw}");
    }
    c.send_binary(vec![0xff, 0x00]).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["error"]["code"], "binary_frame");
    let after = to_proposal(&mut c).await;
    let statuses: Vec<_> = of_kind(&after, "booking")
        .iter()
        .map(|f| f["booking"]["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        ["offered", "email_confirmed", "proposed"],
        "the call still books"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn transcripts_before_start_are_refused() {
    let app = spawn_app().await;
    let mut c = app.connect().await.unwrap();
    c.send(&frames::transcript("hello")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["error"]["code"], "not_started");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn interim_transcripts_do_not_drive_the_dialog() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000000inter").await;
    c.send(&frames::offer()).await.unwrap();
    c.settle().await.unwrap();
    c.send(&json!({"event": "transcript", "transcript": {"text": "no", "final": false}}))
        .await
        .unwrap();
    assert!(c.settle().await.unwrap().is_empty());
    app.stop().await.unwrap();
}

fn whole_look_ahead() -> Interval {
    let t = crate::helpers::tuesday_morning();
    Interval::new(t - Duration::days(30), t + Duration::days(60))
}

#[tokio::test]
async fn hanging_up_before_yes_leaves_no_claim() {
    let app = spawn_app().await;
    let sid = "CA00000000000000000000000000hang01";
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::stop(sid)).await.unwrap();
    let tail = c.drain().await.unwrap();
    assert_eq!(
        tail.last().unwrap()["booking"],
        json!({"status": "done", "booked": false, "reason": "hangup"})
    );
    let claims = app
        .ledger
        .claims(
            "google:alex@callbook.example",
            whole_look_ahead(),
            app.clock.now(),
        )
        .await
        .unwrap();
    assert!(claims.is_empty(), "{claims:?}");
    assert!(app.google.events("alex@callbook.example").is_empty());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn hanging_up_mid_booking_finishes_the_booking_and_orphans_nothing() {
    let app = spawn_app().await;
    let sid = "CA00000000000000000000000000hang02";
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    // The yes and the hang-up arrive back to back: the booking is in flight.
    c.send(&frames::transcript("yes")).await.unwrap();
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    // The socket closes only after the call's work is done.
    let claims = app
        .ledger
        .claims(
            "google:alex@callbook.example",
            whole_look_ahead(),
            app.clock.now(),
        )
        .await
        .unwrap();
    let events = app.google.events("alex@callbook.example");
    assert_eq!(events.len(), 1, "the caller said yes: the booking stands");
    assert_eq!(claims.len(), 1);
    assert!(claims[0].committed, "no hold is left behind");
    assert!(claims[0].interval.contains(events[0].start));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_socket_dropped_without_stop_ends_the_call() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA00000000000000000000000000drop01").await;
    to_proposal(&mut c).await;
    c.close().await.unwrap();
    // The server drains and stops cleanly: the actor saw the hang-up.
    let claims = app
        .ledger
        .claims(
            "google:alex@callbook.example",
            whole_look_ahead(),
            app.clock.now(),
        )
        .await
        .unwrap();
    assert!(claims.is_empty());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_revoked_grant_skips_booking_without_a_word_to_the_caller() {
    let prov =
        callbook::store::provisioning::Provisioning::parse(callbook::store::provisioning::DEFAULT)
            .unwrap();
    let app = callbook::harness::Harness::start(
        prov,
        callbook::clock::Clock::manual(crate::helpers::tuesday_morning()),
        |e| e.google.revoke("alex@callbook.example"),
    )
    .await
    .unwrap();
    let mut c = start_call(&app, "CA00000000000000000000000000revok1").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(of_kind(&got, "say").len(), 0, "{got:?}");
    assert_eq!(
        got[0]["booking"],
        json!({"status": "skipped", "reason": "calendar_expired"})
    );
    app.stop().await.unwrap();
}

/// Drives a call to its proposal, breaks the grant with `break_grant`, says
/// yes, and checks what the caller and the connection get: a failure with
/// `reason`, a follow-up sentence, the connection marked with `status`, and
/// no claim or event left behind.
async fn trouble_at_yes(
    sid: &str,
    break_grant: impl FnOnce(&callbook::harness::Harness),
    reason: &str,
    status: impl FnOnce(chrono::DateTime<chrono::Utc>) -> callbook::store::ConnectionStatus,
) {
    let app = spawn_app().await;
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    break_grant(&app);
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["turn"]["owner"], "callbook");
    assert_eq!(
        got[1]["booking"],
        json!({"status": "failed", "reason": reason})
    );
    assert!(got[2]["say"]["text"]
        .as_str()
        .unwrap()
        .contains("Someone from our team will follow up"));
    let conn = app.store.connection("alex").await.unwrap().unwrap();
    assert_eq!(conn.status, status(app.clock.now()));
    // No claim and no event are left behind.
    let claims = app
        .ledger
        .claims(
            "google:alex@callbook.example",
            whole_look_ahead(),
            app.clock.now(),
        )
        .await
        .unwrap();
    assert!(claims.is_empty());
    assert!(app
        .google
        .events("alex@callbook.example")
        .iter()
        .all(|e| e.booking_id.is_none()));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_grant_revoked_mid_booking_gets_a_sentence_and_marks_the_connection_expired() {
    use callbook::store::ConnectionStatus;
    trouble_at_yes(
        "CA00000000000000000000000000revok2",
        |app| app.google.revoke("alex@callbook.example"),
        "calendar_expired",
        |since| ConnectionStatus::Expired { since },
    )
    .await;
}

#[tokio::test]
async fn admin_approval_needed_mid_booking_gets_a_sentence_and_is_recorded() {
    use callbook::calendar::emulator::{Endpoint, Fault, TokenFault};
    use callbook::store::ConnectionStatus;
    // The Workspace administrator restricts the app while the caller talks.
    let restrict = |app: &callbook::harness::Harness| {
        let owner = "alex@callbook.example";
        app.google.revoke(owner);
        app.google.inject(
            owner,
            Endpoint::Token,
            Fault::Token(TokenFault::ConsentRequired),
            u32::MAX,
        );
    };
    trouble_at_yes(
        "CA00000000000000000000000000cons01",
        restrict,
        "admin_approval_needed",
        |since| ConnectionStatus::AdminApprovalNeeded { since },
    )
    .await;
}

#[tokio::test]
async fn a_slow_calendar_gets_a_filler_line_before_the_answer() {
    use callbook::calendar::emulator::google::{Endpoint, Fault};
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA00000000000000000000000000slow01").await;
    to_proposal(&mut c).await;
    app.google.inject(
        "alex@callbook.example",
        Endpoint::Insert,
        Fault::Latency(std::time::Duration::from_millis(1800)),
        1,
    );
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    let says: Vec<&str> = of_kind(&got, "say")
        .iter()
        .map(|f| f["say"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(says[0], "One moment while I check the calendar.");
    assert!(says[1].starts_with("You're all set"));
    app.stop().await.unwrap();
}

/// The hold lapses while the provider creates the event (the create takes
/// longer than the hold lives): the booking stands, and its claim is held
/// again under the same id and committed, counted as `recommitted`, so the
/// ledger still covers the slot.
#[tokio::test]
async fn a_hold_that_lapses_during_the_create_is_held_again_and_committed() {
    use callbook::calendar::emulator::{Endpoint, Fault};
    let app = spawn_app().await;
    let sid = "CA00000000000000000000000lapse001";
    let mut c = start_call(&app, sid).await;
    to_proposal(&mut c).await;
    app.google.inject(
        "alex@callbook.example",
        Endpoint::Insert,
        Fault::Latency(std::time::Duration::from_millis(800)),
        1,
    );
    c.send(&frames::transcript("yes")).await.unwrap();
    // While the create is in flight, the hold's time runs out.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.clock
        .advance(callbook::ledger::HOLD_TTL + Duration::seconds(30));
    let got = c.settle().await.unwrap();
    assert!(
        got.iter().any(|f| f["booking"]["status"] == "booked"),
        "{got:?}"
    );
    let claims = app
        .ledger
        .claims(
            "google:alex@callbook.example",
            whole_look_ahead(),
            app.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert!(claims[0].committed);
    let metrics = crate::helpers::scrape(&app).await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("callbook_ledger_commits_after_write_total")
                && l.contains("op=\"book\"")
                && l.contains("outcome=\"recommitted\"")
        ),
        "{metrics}"
    );
    app.stop().await.unwrap();
}

/// Each call loads the calendar's free/busy at its start; what the
/// calendar is (its id, zone, Meet support) is asked once for the calls
/// that follow within a few minutes, not once per call. Both calls still
/// get the calendar's answer: the same proposal.
#[tokio::test]
async fn calls_on_one_calendar_ask_what_it_is_once_and_its_free_busy_each() {
    let app = spawn_app().await;
    let recorder = app.google.recorder();
    recorder.start();
    let mut proposals = Vec::new();
    for sid in [
        "CA0000000000000000000000000info01",
        "CA0000000000000000000000000info02",
    ] {
        let mut c = start_call(&app, sid).await;
        let seen = to_proposal(&mut c).await;
        let proposed = of_kind(&seen, "booking")
            .into_iter()
            .rfind(|f| f["booking"]["status"] == "proposed")
            .cloned()
            .expect("a proposal");
        proposals.push(proposed["booking"]["start"].clone());
        c.cut();
    }
    assert_eq!(proposals[0], proposals[1]);
    let asked = recorder.take();
    let count = |suffix: &str| asked.iter().filter(|e| e.path.ends_with(suffix)).count();
    assert_eq!(count("/users/me/calendarList"), 1, "{asked:#?}");
    assert_eq!(count("/freeBusy"), 2, "{asked:#?}");
    app.stop().await.unwrap();
}
