//! `GET /v1/campaigns/{id}/diagnostics` and `callbook diagnose`: the
//! checklist answers each item for a campaign in each failing state, on
//! the real server with the Google emulator behind it.

use crate::helpers::{
    admin, sample, scrape, spawn_campaign, spawn_campaign_with, start_call_on, to_proposal,
    tuesday_morning,
};
use callbook::calendar::emulator::{Endpoint, Fault, TokenFault};
use callbook::harness::{frames, Harness};
use callbook::schedule::Interval;
use callbook::store::{Connection, ConnectionStatus, Provider};
use chrono::Duration;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

const OWNER: &str = "alex@callbook.example";

async fn diagnostics(app: &Harness, campaign: &str) -> Value {
    let (status, body) = admin(
        app,
        Method::GET,
        &format!("/v1/campaigns/{campaign}/diagnostics"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn check<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {d}"))
}

fn ok(d: &Value, name: &str) -> bool {
    check(d, name)["ok"].as_bool().unwrap()
}

/// Every item, in order, each with `check`, `ok` and `detail`.
fn well_formed(d: &Value) {
    let names: Vec<&str> = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["ok"].is_boolean() && c["detail"].is_string(), "{c}");
            c["check"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "booking_enabled",
            "calendar_connected",
            "connection_status",
            "provider_reachable",
            "free_slots",
            "recent_calls"
        ]
    );
    let all = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true);
    assert_eq!(d["ok"], all);
}

#[tokio::test]
async fn a_healthy_campaign_passes_every_check_with_its_next_slots() {
    let app = spawn_campaign("diag-healthy").await;
    let d = diagnostics(&app, "diag-healthy").await;
    well_formed(&d);
    assert_eq!(d["ok"], true, "{d:#}");
    assert!(d["verdict"]
        .as_str()
        .unwrap()
        .starts_with("booking can be offered"));
    let slots = check(&d, "free_slots");
    assert!(slots["count"].as_u64().unwrap() > 100, "{slots}");
    let next = slots["next"].as_array().unwrap();
    assert_eq!(next.len(), 3);
    // Tuesday 10:00 New York plus two hours' notice: 12:00 is the first.
    assert_eq!(next[0]["start"], "2026-12-01T17:00:00Z");
    assert_eq!(next[0]["local"], "Tue 2026-12-01 12:00 EST");
    assert_eq!(check(&d, "connection_status")["status"], "active");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_connection_the_checklist_says_connect_and_how() {
    let app = spawn_campaign("diag-none").await;
    app.store
        .remove_connection("alex", Provider::Google)
        .await
        .unwrap();
    let d = diagnostics(&app, "diag-none").await;
    well_formed(&d);
    assert!(ok(&d, "booking_enabled"));
    let connected = check(&d, "calendar_connected");
    assert_eq!(connected["ok"], false);
    assert_eq!(
        connected["connect"],
        json!([
            {"method": "POST", "path": "/v1/users/alex/connections/google"},
            {"method": "POST", "path": "/v1/users/alex/connections/microsoft"}
        ])
    );
    for later in ["connection_status", "provider_reachable", "free_slots"] {
        assert!(!ok(&d, later));
        assert!(check(&d, later)["detail"]
            .as_str()
            .unwrap()
            .starts_with("not checked"));
    }
    assert_eq!(d["ok"], false);
    assert!(
        d["verdict"]
            .as_str()
            .unwrap()
            .contains("alex has no connected calendar"),
        "{}",
        d["verdict"]
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_connection_is_named_with_the_reconnect_request() {
    let app = spawn_campaign("diag-expired").await;
    let since = tuesday_morning() - Duration::hours(3);
    app.store
        .set_status(
            "alex",
            Provider::Google,
            ConnectionStatus::Expired { since },
        )
        .await
        .unwrap();
    let d = diagnostics(&app, "diag-expired").await;
    well_formed(&d);
    assert!(ok(&d, "calendar_connected"));
    let status = check(&d, "connection_status");
    assert_eq!(status["ok"], false);
    assert_eq!(status["status"], "expired");
    assert_eq!(status["since"], json!(since));
    assert_eq!(
        status["connect"],
        json!([{"method": "POST", "path": "/v1/users/alex/connections/google"}])
    );
    assert!(!ok(&d, "provider_reachable"));
    assert!(d["verdict"]
        .as_str()
        .unwrap()
        .contains("google connection has expired"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_organisation_needing_approval_gets_the_administrators_link() {
    let app = spawn_campaign("diag-approval").await;
    let since = tuesday_morning();
    let conn = Connection {
        tenant: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        status: ConnectionStatus::AdminApprovalNeeded { since },
        ..Connection::new(Provider::Microsoft, SecretString::from("ms-token"))
    };
    app.store.put_connection("alex", conn).await.unwrap();
    assert!(app
        .store
        .set_active("alex", Provider::Microsoft)
        .await
        .unwrap());
    let d = diagnostics(&app, "diag-approval").await;
    let status = check(&d, "connection_status");
    assert_eq!(status["status"], "admin_approval_needed");
    let link = status["admin_consent_url"].as_str().unwrap();
    assert!(
        link.contains("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/adminconsent?client_id="),
        "{link}"
    );
    assert!(link.contains(&format!(
        "redirect_uri=http%3A%2F%2F{}%2Fv1%2Foauth%2Fcallback",
        app.addr.to_string().replace(':', "%3A")
    )));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn booking_turned_off_is_the_verdict_though_the_calendar_is_fine() {
    let app = spawn_campaign("diag-off").await;
    let (_, campaign) = admin(&app, Method::GET, "/v1/campaigns/diag-off", None).await;
    let mut booking = campaign["booking"].clone();
    booking["enabled"] = json!(false);
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/v1/campaigns/diag-off/booking",
        Some(booking),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let d = diagnostics(&app, "diag-off").await;
    well_formed(&d);
    assert!(!ok(&d, "booking_enabled"));
    for fine in [
        "calendar_connected",
        "connection_status",
        "provider_reachable",
        "free_slots",
    ] {
        assert!(ok(&d, fine), "{fine}: {d:#}");
    }
    assert!(d["verdict"]
        .as_str()
        .unwrap()
        .starts_with("booking will not be offered: booking is turned off"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_calendar_has_no_free_slots_and_says_so() {
    let now = tuesday_morning();
    let app = spawn_campaign_with("diag-full", |emu| {
        emu.google.add_event(
            OWNER,
            "Sabbatical",
            Interval::new(now - Duration::days(2), now + Duration::days(30)),
        );
    })
    .await;
    let d = diagnostics(&app, "diag-full").await;
    well_formed(&d);
    assert!(ok(&d, "provider_reachable"));
    let slots = check(&d, "free_slots");
    assert_eq!(slots["ok"], false);
    assert_eq!(slots["count"], 0);
    assert_eq!(slots["next"], json!([]));
    assert!(d["verdict"].as_str().unwrap().contains("no free slot"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_provider_that_fails_is_named_by_class_without_its_text() {
    let app = spawn_campaign("diag-down").await;
    let fault = Fault::Status {
        code: 503,
        reason: "backendError",
        retry_after: None,
    };
    app.google.inject(OWNER, Endpoint::CalendarList, fault, 20);
    let d = diagnostics(&app, "diag-down").await;
    let reach = check(&d, "provider_reachable");
    assert_eq!(reach["ok"], false);
    assert_eq!(reach["error"], "transient");
    assert!(
        !reach["detail"].as_str().unwrap().contains("503"),
        "{reach}"
    );
    assert!(!ok(&d, "free_slots"));
    app.google.clear_faults();

    // A refused grant: the checklist says so, and the refresh failure is
    // counted by class.
    let before = scrape(&app).await;
    let refused = spawn_campaign("diag-refused").await;
    refused.google.inject(
        OWNER,
        Endpoint::Token,
        Fault::Token(TokenFault::InvalidGrant),
        5,
    );
    let d = diagnostics(&refused, "diag-refused").await;
    assert_eq!(check(&d, "provider_reachable")["error"], "expired");
    let after = scrape(&refused).await;
    let failures = [("provider", "google"), ("class", "expired")];
    assert!(
        sample(&after, "callbook_token_refresh_failures_total", &failures)
            > sample(&before, "callbook_token_refresh_failures_total", &failures)
    );
    // Diagnostics only read: the connection is not marked expired by them.
    let (conn, _) = refused.store.connections("alex").await.unwrap();
    assert!(conn[0].status.is_active());
    app.stop().await.unwrap();
    refused.stop().await.unwrap();
}

/// Waits until the campaign's diagnostics show `n` recent calls.
async fn with_calls(app: &Harness, campaign: &str, n: usize) -> Value {
    for _ in 0..100 {
        let d = diagnostics(app, campaign).await;
        if check(&d, "recent_calls")["calls"].as_array().unwrap().len() >= n {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{n} calls never showed");
}

#[tokio::test]
async fn calls_that_end_before_the_offer_are_the_answer_to_why_it_did_not_book() {
    let campaign = "diag-early";
    let app = spawn_campaign(campaign).await;
    for i in 0..2 {
        let sid = format!("CA00000000000000000000000diagearly{i}");
        let mut c = start_call_on(&app, &sid, campaign).await;
        c.send(&frames::transcript("hi, who is this?"))
            .await
            .unwrap();
        c.settle().await.unwrap();
        c.send(&frames::stop(&sid)).await.unwrap();
        c.drain().await.unwrap();
    }
    let d = with_calls(&app, campaign, 2).await;
    well_formed(&d);
    let recent = check(&d, "recent_calls");
    assert_eq!(recent["ok"], false, "{recent:#}");
    let calls = recent["calls"].as_array().unwrap();
    assert_eq!(calls[0]["call_sid"], "CA00000000000000000000000diagearly1");
    for c in calls {
        assert_eq!(c["stage"], "listening");
        assert_eq!(c["ending"], "hangup");
        assert_eq!(c["outcome"], Value::Null);
        assert!(c["why"]
            .as_str()
            .unwrap()
            .contains("before the pipeline offered booking"));
    }
    for fine in [
        "booking_enabled",
        "calendar_connected",
        "connection_status",
        "provider_reachable",
        "free_slots",
    ] {
        assert!(ok(&d, fine), "{fine}");
    }
    let verdict = d["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("the campaign and its calendar are ready, but recent calls"),
        "{verdict}"
    );
    assert!(verdict.contains("before the pipeline offered booking (2)"));

    // A call that gets as far as an email read-back, and one that books:
    // each shows where it stopped, the booked one with its outcome.
    let sid = "CA000000000000000000000diagemail00";
    let mut c = start_call_on(&app, sid, campaign).await;
    c.send(&frames::offer()).await.unwrap();
    c.settle().await.unwrap();
    for text in ["yes", "jane at example dot com"] {
        c.send(&frames::transcript(text)).await.unwrap();
        c.settle().await.unwrap();
    }
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    let sid = "CA000000000000000000000diagbooked0";
    let mut c = start_call_on(&app, sid, campaign).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    c.settle().await.unwrap();
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    let d = with_calls(&app, campaign, 4).await;
    let recent = check(&d, "recent_calls");
    assert_eq!(recent["ok"], true);
    let calls = recent["calls"].as_array().unwrap();
    assert_eq!(calls[0]["call_sid"], "CA000000000000000000000diagbooked0");
    assert_eq!(calls[0]["stage"], "booked");
    assert_eq!(calls[0]["outcome"], "booked");
    assert_eq!(calls[1]["stage"], "email_captured");
    assert!(calls[1]["why"]
        .as_str()
        .unwrap()
        .contains("before the caller confirmed the email"));
    // Nothing of the caller is in the answer.
    let text = d.to_string();
    for pii in ["jane", "example.com", "4155550123"] {
        assert!(!text.contains(pii), "{pii} in {text}");
    }
    assert_eq!(d["ok"], true);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_campaign_is_404_and_the_checklist_needs_the_admin_token() {
    let app = spawn_campaign("diag-auth").await;
    let (status, body) = admin(&app, Method::GET, "/v1/campaigns/nope/diagnostics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown_campaign");
    let resp = crate::helpers::http()
        .get(format!(
            "http://{}/v1/campaigns/diag-auth/diagnostics",
            app.addr
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn callbook_diagnose_prints_the_checklist_and_exits_1_when_a_check_fails() {
    let app = spawn_campaign("diag-cli").await;
    app.store
        .remove_connection("alex", Provider::Google)
        .await
        .unwrap();
    let url = format!("http://{}", app.addr);
    let run = |args: Vec<String>| {
        let token = app.admin_token.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_callbook"))
                .args(args)
                .env("CALLBOOK_ADMIN_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    let out = run(vec![
        "diagnose".into(),
        "diag-cli".into(),
        "--url".into(),
        url.clone(),
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("campaign diag-cli (Acme outreach), owner alex"));
    assert!(text.contains("  FAIL  calendar_connected   alex has no connected calendar"));
    assert!(text.contains("connect: POST /v1/users/alex/connections/google"));
    assert!(text.contains("\nverdict: booking will not be offered: alex has no connected calendar"));

    let out = run(vec![
        "diagnose".into(),
        "missing".into(),
        "--url".into(),
        url,
        "--json".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("unknown_campaign"),
        "{err}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_outlook_zone_callbook_cannot_resolve_is_shown_and_slots_still_come() {
    let app = spawn_campaign_with("diag-zone", |emu| {
        emu.microsoft
            .add_account(callbook::calendar::emulator::MsAccountSpec {
                email: OWNER.into(),
                refresh_token: "ms-diag".into(),
                windows_zone: "Customized Time Zone".into(),
                work: true,
            });
    })
    .await;
    let conn = Connection::new(Provider::Microsoft, SecretString::from("ms-diag"));
    app.store.put_connection("alex", conn).await.unwrap();
    assert!(app
        .store
        .set_active("alex", Provider::Microsoft)
        .await
        .unwrap());
    let d = diagnostics(&app, "diag-zone").await;
    let reach = check(&d, "provider_reachable");
    assert_eq!(reach["ok"], true, "{reach}");
    assert_eq!(reach["zone_unresolved"], "Customized Time Zone", "{reach}");
    assert!(reach.get("timezone").is_none(), "{reach}");
    assert!(ok(&d, "free_slots"), "{d}");
    app.stop().await.unwrap();
}
