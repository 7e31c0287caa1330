//! Which calendar a campaign's owner books on: the most recently connected
//! provider, unless the owner chooses another; disconnecting the active one
//! falls back to the other; with none left booking is off on every campaign
//! the owner has, with the reason calls give and the connect request.

use crate::helpers::{admin, connect_via, start_call, tuesday_morning};
use callbook::calendar::emulator::MsAccountSpec;
use callbook::clock::Clock;
use callbook::harness::{frames, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OUTLOOK: &str = "alex@contoso.example";

/// The default config with a second campaign of the same owner, and an
/// Outlook work account the owner can connect.
async fn app() -> Harness {
    let mut config: Value = serde_json::from_str(DEFAULT).unwrap();
    let mut second = config["campaigns"][0].clone();
    second["id"] = json!("second");
    second["name"] = json!("Second outreach");
    config["campaigns"].as_array_mut().unwrap().push(second);
    let prov = Provisioning::parse(&config.to_string()).unwrap();
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

async fn connect(app: &Harness, provider: &str) {
    let start = (provider == "microsoft").then(|| json!({"login_hint": OUTLOOK}));
    let (status, page) = connect_via(app, provider, app, start).await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

async fn active(app: &Harness) -> Value {
    let (status, body) = admin(app, Method::GET, "/v1/users/alex/connections", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active_provider"].clone()
}

async fn disconnect(app: &Harness, provider: &str) {
    let (status, body) = admin(
        app,
        Method::DELETE,
        &format!("/v1/users/alex/connections/{provider}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn booking_state(app: &Harness, campaign: &str) -> Value {
    let (status, body) = admin(app, Method::GET, &format!("/v1/campaigns/{campaign}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["booking_state"].clone()
}

#[tokio::test]
async fn the_latest_connection_is_active_until_another_is_chosen_and_the_other_takes_over_when_it_goes(
) {
    let app = app().await;
    assert_eq!(active(&app).await, "google");
    assert_eq!(
        booking_state(&app, "demo").await,
        json!({"effective": "on"})
    );

    // Connecting a second provider makes it the active one.
    connect(&app, "microsoft").await;
    assert_eq!(active(&app).await, "microsoft");

    // The selector changes it.
    let (status, body) = admin(
        &app,
        Method::PUT,
        "/v1/users/alex/active_provider",
        Some(json!({"provider": "google"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(active(&app).await, "google");

    // Reconnecting a provider makes it the most recent again.
    connect(&app, "microsoft").await;
    assert_eq!(active(&app).await, "microsoft");

    // Disconnecting the active one falls back to the other.
    disconnect(&app, "microsoft").await;
    assert_eq!(active(&app).await, "google");
    assert_eq!(
        booking_state(&app, "second").await,
        json!({"effective": "on"})
    );
}

#[tokio::test]
async fn with_no_calendar_left_every_campaign_of_the_owner_is_off_and_calls_skip() {
    let app = app().await;
    connect(&app, "microsoft").await;
    disconnect(&app, "microsoft").await;
    assert_eq!(active(&app).await, "google");
    disconnect(&app, "google").await;
    assert_eq!(active(&app).await, Value::Null);

    let off = json!({
        "effective": "off",
        "reason": "owner_not_connected",
        "connect_url": "/v1/users/alex/connections/{provider}"
    });
    for campaign in ["demo", "second"] {
        assert_eq!(booking_state(&app, campaign).await, off, "{campaign}");
    }
    let mut c = start_call(&app, "CA0000000000000000000000accounts01").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter()
            .any(|f| f["booking"] == json!({"status": "skipped", "reason": "owner_not_connected"})),
        "{got:?}"
    );

    // Connecting again turns booking back on everywhere.
    connect(&app, "google").await;
    for campaign in ["demo", "second"] {
        assert_eq!(
            booking_state(&app, campaign).await,
            json!({"effective": "on"})
        );
    }
}

#[tokio::test]
async fn a_campaign_with_booking_turned_off_says_so() {
    let app = app().await;
    let (_, c) = admin(&app, Method::GET, "/v1/campaigns/second", None).await;
    let mut booking = c["booking"].clone();
    booking["enabled"] = json!(false);
    let (status, body) = admin(
        &app,
        Method::PUT,
        "/v1/campaigns/second/booking",
        Some(booking),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["booking_state"],
        json!({"effective": "off", "reason": "booking_disabled"})
    );
    assert_eq!(
        booking_state(&app, "demo").await,
        json!({"effective": "on"})
    );
}
