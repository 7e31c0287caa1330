//! The admin API over real HTTP: connecting calendars through the
//! providers' consent screens (the emulators'), choosing the calendar and
//! the active provider, admin approval with the tenant's admin-consent
//! link, and disconnecting; a connect bound to the account it was started
//! for.

use crate::helpers::{admin, book, connect_as, connect_via, http, start_call, tuesday_morning};
use callbook::calendar::emulator::microsoft::WORK_TENANT;
use callbook::calendar::emulator::{AccountSpec, Endpoint, Fault, MsAccountSpec, TokenFault};
use callbook::clock::Clock;
use callbook::harness::{frames, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::{Connection, Provider};
use reqwest::StatusCode;
use serde_json::{json, Value};

const OUTLOOK: &str = "alex@contoso.example";
const ALEX: &str = "alex@callbook.example";

/// The default config, plus an Outlook work account the owner can connect.
async fn app() -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), |emu| {
        emu.microsoft.add_account(MsAccountSpec {
            email: OUTLOOK.into(),
            refresh_token: "never-handed-out".into(),
            windows_zone: "Eastern Standard Time".into(),
            work: true,
        });
    })
    .await
    .unwrap()
}

/// Connects the default user's Google account, or the Outlook account.
async fn connect(app: &Harness, provider: &str) -> (StatusCode, String) {
    let start = (provider == "microsoft").then(|| json!({"login_hint": OUTLOOK}));
    connect_via(app, provider, app, start).await
}

/// The default user's connection to `provider` as the store holds it.
async fn stored_connection(app: &Harness, provider: Provider) -> Connection {
    let (list, _) = app.store.connections("alex").await.unwrap();
    list.into_iter().find(|c| c.provider == provider).unwrap()
}

async fn connections(app: &Harness) -> Value {
    let (status, body) = admin(
        app,
        reqwest::Method::GET,
        "/v1/users/alex/connections",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    body
}

fn by_provider<'a>(list: &'a Value, provider: &str) -> &'a Value {
    list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} connection in {list}"))
}

#[tokio::test]
async fn an_owner_connects_outlook_makes_it_active_and_calls_book_there() {
    let app = app().await;
    let (status, page) = connect(&app, "microsoft").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The alias "primary" was resolved at connect to the default calendar's
    // real id, kept beside it: the ledger keys claims by that id.
    let stored = stored_connection(&app, Provider::Microsoft).await;
    assert_eq!(stored.calendar_id, "primary");
    let canonical = stored.canonical_id().expect("resolved at connect");
    assert_ne!(canonical, "primary");
    let list = connections(&app).await;
    // The most recently connected provider is the active one.
    assert_eq!(list["active_provider"], "microsoft");
    let ms = by_provider(&list, "microsoft");
    assert_eq!(ms["status"], "active");
    assert_eq!(ms["account"], OUTLOOK);
    assert_eq!(ms["tenant"], WORK_TENANT);

    let booked = book(&app, "CA000000000000000000000000admin001").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    assert!(booked["booking"]["join_link"]
        .as_str()
        .unwrap()
        .starts_with("https://teams.microsoft.com/"));
    assert_eq!(app.microsoft.events(OUTLOOK).len(), 1);
    assert!(app
        .google
        .events("alex@callbook.example")
        .iter()
        .all(|e| e.booking_id.is_none()));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn admin_approval_needed_is_recorded_with_the_tenants_consent_link() {
    let app = app().await;
    connect(&app, "microsoft").await;
    admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/active_provider",
        Some(json!({"provider": "microsoft"})),
    )
    .await;
    app.microsoft.inject(
        OUTLOOK,
        Endpoint::Token,
        Fault::Token(TokenFault::ConsentRequired),
        u32::MAX,
    );
    let mut c = start_call(&app, "CA000000000000000000000000admin002").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter().any(
            |f| f["booking"] == json!({"status": "skipped", "reason": "admin_approval_needed"})
        ),
        "{got:?}"
    );
    let list = connections(&app).await;
    let ms = by_provider(&list, "microsoft");
    assert_eq!(ms["status"], "admin_approval_needed");
    assert_eq!(ms["since"], json!(tuesday_morning()));
    let link = ms["admin_consent_url"].as_str().unwrap();
    assert!(
        link.contains(&format!("/{WORK_TENANT}/v2.0/adminconsent?client_id=")),
        "{link}"
    );
    assert!(link.contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"));

    // The next call skips at once, without asking the provider again.
    let mut c = start_call(&app, "CA000000000000000000000000admin003").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(got
        .iter()
        .any(|f| f["booking"]["reason"] == "admin_approval_needed"));

    // Once an administrator approves, the owner reconnects and booking
    // works again.
    app.microsoft.clear_faults();
    let (status, _) = connect(&app, "microsoft").await;
    assert_eq!(status, StatusCode::OK);
    let list = connections(&app).await;
    assert_eq!(by_provider(&list, "microsoft")["status"], "active");
    let booked = book(&app, "CA000000000000000000000000admin004").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn reconnecting_an_expired_google_connection_restores_booking() {
    let app = app().await;
    app.google.revoke("alex@callbook.example");
    let mut c = start_call(&app, "CA000000000000000000000000admin005").await;
    c.send(&frames::offer()).await.unwrap();
    c.settle().await.unwrap();
    let list = connections(&app).await;
    assert_eq!(by_provider(&list, "google")["status"], "expired");

    let (status, page) = connect(&app, "google").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let list = connections(&app).await;
    let google = by_provider(&list, "google");
    assert_eq!(google["status"], "active");
    assert_eq!(google["account"], "alex@callbook.example");
    let booked = book(&app, "CA000000000000000000000000admin006").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn disconnecting_revokes_google_and_deletes_outlook() {
    let app = app().await;
    connect(&app, "microsoft").await;
    let tokens_before = app.google.tokens_issued();
    let (status, body) = admin(
        &app,
        reqwest::Method::DELETE,
        "/v1/users/alex/connections/google",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"provider": "google", "deleted": true, "revoked": true})
    );
    // The provider refuses the grant now.
    assert!(app.google.is_revoked("alex@callbook.example"));
    assert_eq!(app.google.tokens_issued(), tokens_before);
    // The remaining connection becomes the active one.
    let list = connections(&app).await;
    assert_eq!(list["active_provider"], "microsoft");

    let (status, body) = admin(
        &app,
        reqwest::Method::DELETE,
        "/v1/users/alex/connections/microsoft",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Microsoft has no revoke endpoint: the token is deleted.
    assert_eq!(
        body,
        json!({"provider": "microsoft", "deleted": true, "revoked": false})
    );
    let list = connections(&app).await;
    assert_eq!(list["connections"], json!([]));
    assert_eq!(list["active_provider"], Value::Null);
    // Calls skip booking: no calendar.
    let mut c = start_call(&app, "CA000000000000000000000000admin007").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter()
            .any(|f| f["booking"]["reason"] == "owner_not_connected"),
        "{got:?}"
    );
    // Disconnecting again is a clear 404.
    let (status, body) = admin(
        &app,
        reqwest::Method::DELETE,
        "/v1/users/alex/connections/microsoft",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_connected");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_owner_picks_a_writable_calendar() {
    let app = app().await;
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        "/v1/users/alex/connections/google/calendars",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cals = body["calendars"].as_array().unwrap();
    assert_eq!(cals.len(), 2, "{body}");
    assert_eq!(cals[0]["primary"], true);
    assert_eq!(cals[0]["timezone"], "America/New_York");
    assert_eq!(cals[1]["primary"], false);
    assert_eq!(cals[1]["name"], "Bookings");
    let (status, body) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/connections/google/calendar",
        Some(json!({"calendar_id": "someone-elses@group.calendar.google.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "unknown_calendar");
    let id = cals[0]["id"].as_str().unwrap();
    let (status, body) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/connections/google/calendar",
        Some(json!({"calendar_id": id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The primary calendar stays named "primary", with its own id kept
    // beside it for the ledger.
    assert_eq!(body["calendar_id"], "primary");
    let stored = stored_connection(&app, Provider::Google).await;
    assert_eq!(stored.canonical_id(), Some(id));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_books_on_the_secondary_calendar_the_owner_chose() {
    let app = app().await;
    let secondary = callbook::calendar::emulator::google::secondary_calendar_id(ALEX);
    let (status, body) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/connections/google/calendar",
        Some(json!({"calendar_id": secondary})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["calendar_id"], secondary.as_str());
    let booking = book(&app, "CA-secondary").await;
    assert_eq!(booking["booking"]["status"], "booked", "{booking}");
    // On the provider's ground truth: the event is on the chosen calendar,
    // and the primary one has none.
    let events = app.google.events(ALEX);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].calendar, secondary);
    assert_eq!(events[0].status, "confirmed");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_books_on_the_secondary_outlook_calendar_the_owner_chose() {
    let app = app().await;
    let (status, page) = connect_via(
        &app,
        "microsoft",
        &app,
        Some(json!({"login_hint": OUTLOOK})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        "/v1/users/alex/connections/microsoft/calendars",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secondary = app.microsoft.secondary_calendar(OUTLOOK).unwrap();
    let listed: Vec<&str> = body["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(listed.contains(&secondary.as_str()), "{body}");
    let (status, body) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/connections/microsoft/calendar",
        Some(json!({"calendar_id": secondary})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let booking = book(&app, "CA-secondary-ms").await;
    assert_eq!(booking["booking"]["status"], "booked", "{booking}");
    let events = app.microsoft.events(OUTLOOK);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].calendar, secondary);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_wants_its_own_token_and_says_what_is_wrong() {
    let app = app().await;
    let url = |p: &str| format!("http://{}{p}", app.addr);
    let resp = http()
        .get(url("/v1/users/alex/connections"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The pipeline's call token is not an admin token.
    let resp = http()
        .get(url("/v1/users/alex/connections"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let cases = [
        (
            reqwest::Method::GET,
            "/v1/users/nobody/connections",
            None,
            "unknown_user",
        ),
        (
            reqwest::Method::POST,
            "/v1/users/alex/connections/yahoo",
            None,
            "unknown_provider",
        ),
        (
            reqwest::Method::PUT,
            "/v1/users/alex/active_provider",
            Some(json!({"provider": "microsoft"})),
            "not_connected",
        ),
    ];
    for (method, path, body, code) in cases {
        let (status, got) = admin(&app, method, path, body).await;
        assert_eq!(
            (status, got["error"].clone()),
            (StatusCode::NOT_FOUND, json!(code)),
            "{path}"
        );
    }
    let (status, _) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/users/alex/active_provider",
        Some(json!("google")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_consent_callback_works_once() {
    let app = app().await;
    let (_, started) = admin(
        &app,
        reqwest::Method::POST,
        "/v1/users/alex/connections/google",
        None,
    )
    .await;
    let consent = http()
        .get(started["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        http().get(&back).send().await.unwrap().status(),
        StatusCode::OK
    );
    let again = http().get(&back).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("expired or was already used"));
    // A forged state is refused the same way.
    let forged = format!("http://{}/v1/oauth/callback?code=x&state=forged", app.addr);
    assert_eq!(
        http().get(&forged).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_administrators_approval_lands_on_the_callback_and_is_acknowledged() {
    let app = app().await;
    let url = |q: &str| format!("http://{}/v1/oauth/callback?{q}", app.addr);
    // As Microsoft answers the admin-consent link (no state).
    let ok = http()
        .get(url(&format!(
            "admin_consent=True&tenant={WORK_TENANT}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok
        .text()
        .await
        .unwrap()
        .contains("approved for your organisation"));
    let refused = http()
        .get(url(&format!(
            "tenant={WORK_TENANT}&error=access_denied&error_description=AADSTS65004"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.stop().await.unwrap();
}

/// The default campaign's booking settings with `change` applied.
async fn demo_booking(app: &Harness, change: impl FnOnce(&mut Value)) -> Value {
    let (status, c) = admin(app, reqwest::Method::GET, "/v1/campaigns/demo", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut booking = c["booking"].clone();
    change(&mut booking);
    booking
}

#[tokio::test]
async fn booking_rules_change_through_the_admin_api_from_the_next_call() {
    let app = app().await;
    let booking = demo_booking(&app, |b| {
        b["rules"]["length_minutes"] = json!(45);
        b["description"] = json!("{meeting.minutes} minutes with {recipient.firstName}.");
    })
    .await;
    let (status, got) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/campaigns/demo/booking",
        Some(booking),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["booking"]["rules"]["length_minutes"], 45);
    let booked = book(&app, "CA000000000000000000000000rules01").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    let start: chrono::DateTime<chrono::Utc> = booked["booking"]["start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: chrono::DateTime<chrono::Utc> =
        booked["booking"]["end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, chrono::Duration::minutes(45));
    let event = app
        .google
        .events("alex@callbook.example")
        .into_iter()
        .find(|e| e.booking_id.is_some())
        .unwrap();
    assert_eq!(event.description, "45 minutes with Jane.");

    // Turning booking off skips it on the next call.
    let off = demo_booking(&app, |b| b["enabled"] = json!(false)).await;
    admin(
        &app,
        reqwest::Method::PUT,
        "/v1/campaigns/demo/booking",
        Some(off),
    )
    .await;
    let mut c = start_call(&app, "CA000000000000000000000000rules02").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter()
            .any(|f| f["booking"]["reason"] == "booking_disabled"),
        "{got:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_booking_rules_are_refused_naming_the_field_and_change_nothing() {
    let app = app().await;
    let cases = [
        (
            demo_booking(&app, |b| b["rules"]["window"]["start"] = json!("25:00")).await,
            "rules.window.start",
        ),
        (
            demo_booking(&app, |b| b["title"] = json!("Hi {recipient.nickname}")).await,
            "title: unknown template token {recipient.nickname}",
        ),
        (
            demo_booking(&app, |b| b["meeting"] = json!({"type": "carrier pigeon"})).await,
            "meeting",
        ),
        (
            demo_booking(&app, |b| b["surprise"] = json!(1)).await,
            "surprise",
        ),
    ];
    for (body, field) in cases {
        let (status, got) = admin(
            &app,
            reqwest::Method::PUT,
            "/v1/campaigns/demo/booking",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{got}");
        assert_eq!(got["error"], "invalid_booking");
        assert!(
            got["message"].as_str().unwrap().contains(field),
            "{field}: {got}"
        );
    }
    let unchanged = demo_booking(&app, |_| {}).await;
    assert_eq!(unchanged["rules"]["window"]["start"], "09:00");
    let (status, got) = admin(
        &app,
        reqwest::Method::PUT,
        "/v1/campaigns/nope/booking",
        Some(unchanged),
    )
    .await;
    assert_eq!(
        (status, got["error"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_campaign"))
    );
    app.stop().await.unwrap();
}

/// Someone else's accounts, signed in on whatever browser opens a leaked
/// connect link.
const MALLORY: &str = "mallory@evil.example";
const MALLORY_MS: &str = "mallory@contoso.example";

/// [`app`], with Mallory's Google and Outlook accounts at the providers.
async fn app_with_mallory() -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), |emu| {
        emu.microsoft.add_account(MsAccountSpec {
            email: OUTLOOK.into(),
            refresh_token: "never-handed-out".into(),
            windows_zone: "Eastern Standard Time".into(),
            work: true,
        });
        emu.google.add_account(AccountSpec {
            email: MALLORY.into(),
            refresh_token: "mallory-google".into(),
            time_zone: "America/New_York".into(),
            meet: true,
        });
        emu.microsoft.add_account(MsAccountSpec {
            email: MALLORY_MS.into(),
            refresh_token: "mallory-ms".into(),
            windows_zone: "Eastern Standard Time".into(),
            work: true,
        });
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_connect_finished_by_another_account_is_refused_and_the_users_calendar_stays() {
    let app = app_with_mallory().await;
    let before = connections(&app).await;
    // Mallory opens alex's connect link, signed in as herself.
    let (status, page, started) = connect_as(&app, "google", &app, None, Some(MALLORY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("another account"), "{page}");
    // The page names no account: a leaked link tells its holder nothing.
    assert!(!page.contains('@'), "{page}");
    // The connect asked Google to pre-select alex's account.
    assert_eq!(started["expected_account"], "alex@callbook.example");
    let url = started["authorize_url"].as_str().unwrap();
    assert!(url.contains("login_hint=alex%40callbook.example"), "{url}");
    // Nothing stored: alex's connection is as it was, and calls book there.
    assert_eq!(connections(&app).await, before);
    let booked = book(&app, "CA000000000000000000000000bind0001").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    assert_eq!(
        app.google
            .events("alex@callbook.example")
            .iter()
            .filter(|e| e.booking_id.is_some())
            .count(),
        1
    );
    assert!(app.google.events(MALLORY).is_empty());
    // The grant callbook will not keep is given back.
    assert!(app.google.is_revoked(MALLORY));

    // The expected account finishes the same kind of connect.
    let (status, page, _) = connect_as(&app, "google", &app, None, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let list = connections(&app).await;
    let google = by_provider(&list, "google");
    assert_eq!(google["account"], "alex@callbook.example");
    assert!(google.get("other_account").is_none(), "{google}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_outlook_connect_is_bound_to_the_hinted_account_and_its_tenant() {
    let app = app_with_mallory().await;
    let hint = json!({"login_hint": OUTLOOK});
    let (status, page, started) = connect_as(
        &app,
        "microsoft",
        &app,
        Some(hint.clone()),
        Some(MALLORY_MS),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let url = started["authorize_url"].as_str().unwrap();
    assert!(url.contains("login_hint=alex%40contoso.example"), "{url}");
    // The right account, in another organisation than the one expected.
    let elsewhere =
        json!({"login_hint": OUTLOOK, "tenant": "0b7c9e2a-1111-4f00-8000-000000000001"});
    let (status, page, _) = connect_as(&app, "microsoft", &app, Some(elsewhere), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("another organisation"), "{page}");
    let list = connections(&app).await;
    assert!(
        list["connections"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["provider"] != "microsoft"),
        "{list}"
    );
    // The hinted account connects.
    let (status, page, _) = connect_as(&app, "microsoft", &app, Some(hint), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // A reconnect without a body expects the connected account and tenant.
    let (status, page, started) = connect_as(&app, "microsoft", &app, None, Some(MALLORY_MS)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert_eq!(started["expected_account"], OUTLOOK);
    assert_eq!(started["expected_tenant"], WORK_TENANT);
    let (status, page, _) = connect_as(&app, "microsoft", &app, None, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let list = connections(&app).await;
    assert_eq!(by_provider(&list, "microsoft")["account"], OUTLOOK);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn another_account_is_accepted_only_when_the_connect_allowed_it_and_is_flagged() {
    let app = app_with_mallory().await;
    let (status, page, started) = connect_as(
        &app,
        "google",
        &app,
        Some(json!({"allow_other_account": true})),
        Some(MALLORY),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(started["allow_other_account"], true);
    let list = connections(&app).await;
    let google = by_provider(&list, "google");
    assert_eq!(google["account"], MALLORY);
    assert_eq!(google["other_account"], true);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_connect_start_with_a_bad_body_is_refused() {
    let app = app().await;
    for body in [
        json!({"login_hint": "not an address"}),
        json!({"tenant": "a tenant; DROP"}),
        json!({"surprise": true}),
        json!("alex@acme.example"),
    ] {
        let (status, got) = admin(
            &app,
            reqwest::Method::POST,
            "/v1/users/alex/connections/google",
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, got["error"].clone()),
            (StatusCode::BAD_REQUEST, json!("bad_request")),
            "{body}"
        );
    }
    app.stop().await.unwrap();
}
