//! The whole OAuth dance against the Google emulator over real HTTP:
//! consent URL with PKCE, callback, code exchange, scope check, revoke.

use callbook::calendar::emulator::{serve_local, AccountSpec, GoogleEmulator};
use callbook::calendar::google::GoogleCalendar;
use callbook::calendar::oauth::{ConsentSpec, OAuthClient, PendingFlows};
use callbook::calendar::{CalendarError, CalendarProvider};
use callbook::harness::{emulator_endpoints, EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET};
use callbook::schedule::Interval;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

const REDIRECT: &str = "https://callbook.example/oauth/google/callback";

async fn emulator() -> (GoogleEmulator, SocketAddr, tokio_util::sync::DropGuard) {
    let emu = GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(AccountSpec {
        email: "owner@acme.example".into(),
        refresh_token: "old".into(),
        time_zone: "America/New_York".into(),
        meet: true,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    (emu, addr, stop.drop_guard())
}

/// Follows the consent URL like a browser would and returns the callback's
/// query parameters.
async fn consent(url: &str) -> HashMap<String, String> {
    let resp = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT)
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn an_owner_connects_google_and_callbook_can_read_the_calendar() {
    let (_emu, addr, _g) = emulator().await;
    let endpoints = emulator_endpoints(addr);
    let spec = ConsentSpec::google(&format!("http://{addr}/o/oauth2/v2/auth"), REDIRECT);
    let auth = endpoints.oauth.authorize(&spec).unwrap();
    // The URL asks for exactly what the product needs.
    for part in [
        "code_challenge_method=S256",
        "access_type=offline",
        "prompt=consent",
        "include_granted_scopes=true",
        "calendar.freebusy",
    ] {
        assert!(auth.url.contains(part), "{part} missing from {}", auth.url);
    }
    let flows = PendingFlows::default();
    flows.put(&auth, ());
    let back = consent(&auth.url).await;
    let (verifier, ()) = flows.take(&back["state"]).expect("state matches");
    assert!(flows.take(&back["state"]).is_none(), "a state works once");
    let http = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap();
    let grant = endpoints
        .oauth
        .exchange(&http, &spec, &back["code"], verifier)
        .await
        .unwrap();
    let refresh = grant
        .refresh_token
        .expect("offline access gives a refresh token");
    let cal = GoogleCalendar::new(http, endpoints, "primary".into(), refresh);
    let day = Interval::new(
        "2026-12-01T00:00:00Z".parse().unwrap(),
        "2026-12-02T00:00:00Z".parse().unwrap(),
    );
    assert!(cal.free_busy(day).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused() {
    let (_emu, addr, _g) = emulator().await;
    let endpoints = emulator_endpoints(addr);
    let spec = ConsentSpec::google(&format!("http://{addr}/o/oauth2/v2/auth"), REDIRECT);
    let auth = endpoints.oauth.authorize(&spec).unwrap();
    let back = consent(&auth.url).await;
    let other = endpoints.oauth.authorize(&spec).unwrap().verifier;
    let got = endpoints
        .oauth
        .exchange(
            &callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
            &spec,
            &back["code"],
            other,
        )
        .await;
    assert_eq!(got.err(), Some(CalendarError::Expired));
}

#[tokio::test]
async fn unticked_calendar_scopes_fail_clearly() {
    let (emu, addr, _g) = emulator().await;
    emu.grant_only("openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/calendar.freebusy");
    let endpoints = emulator_endpoints(addr);
    let spec = ConsentSpec::google(&format!("http://{addr}/o/oauth2/v2/auth"), REDIRECT);
    let auth = endpoints.oauth.authorize(&spec).unwrap();
    let back = consent(&auth.url).await;
    let got = endpoints
        .oauth
        .exchange(
            &callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
            &spec,
            &back["code"],
            auth.verifier,
        )
        .await;
    match got {
        Err(CalendarError::ScopeMissing(missing)) => {
            assert!(
                missing.iter().any(|s| s.ends_with("calendar.events")),
                "{missing:?}"
            );
        }
        other => panic!("expected a scope error, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn disconnecting_revokes_the_grant() {
    let (_emu, addr, _g) = emulator().await;
    let endpoints = emulator_endpoints(addr);
    let http = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap();
    let old = secrecy::SecretString::from("old");
    OAuthClient::revoke(&http, &format!("http://{addr}/revoke"), &old)
        .await
        .unwrap();
    assert_eq!(
        endpoints.oauth.refresh(&http, &old).await.err(),
        Some(CalendarError::Expired)
    );
    // Revoking again is fine: the goal is reached.
    OAuthClient::revoke(&http, &format!("http://{addr}/revoke"), &old)
        .await
        .unwrap();
}

const MS_REDIRECT: &str = "https://callbook.example/oauth/microsoft/callback";

async fn ms_emulator(
    work: bool,
) -> (
    callbook::calendar::emulator::MicrosoftEmulator,
    SocketAddr,
    tokio_util::sync::DropGuard,
) {
    use callbook::calendar::emulator::{MicrosoftEmulator, MsAccountSpec};
    let emu = MicrosoftEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(MsAccountSpec {
        email: "owner@contoso.example".into(),
        refresh_token: "ms-old".into(),
        windows_zone: "Pacific Standard Time".into(),
        work,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    (emu, addr, stop.drop_guard())
}

#[tokio::test]
async fn an_owner_connects_outlook_and_the_tenant_tells_work_from_personal() {
    use callbook::calendar::microsoft::MicrosoftCalendar;
    use callbook::harness::ms_emulator_endpoints;
    for work in [true, false] {
        let (_emu, addr, _g) = ms_emulator(work).await;
        let endpoints = ms_emulator_endpoints(addr);
        let spec = ConsentSpec::microsoft(
            &format!("http://{addr}/common/oauth2/v2.0/authorize"),
            MS_REDIRECT,
        );
        let auth = endpoints.oauth.authorize(&spec).unwrap();
        for part in [
            "code_challenge_method=S256",
            "response_mode=query",
            "offline_access",
            "Calendars.ReadWrite",
            "MailboxSettings.Read",
        ] {
            assert!(auth.url.contains(part), "{part} missing from {}", auth.url);
        }
        let resp = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT)
            .unwrap()
            .get(&auth.url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let back: HashMap<String, String> =
            reqwest::Url::parse(resp.headers()["location"].to_str().unwrap())
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
        assert_eq!(back["state"], auth.state);
        let http = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap();
        // Graph reports scopes with their resource prefix; the check must
        // still see them as granted.
        let grant = endpoints
            .oauth
            .exchange(&http, &spec, &back["code"], auth.verifier)
            .await
            .unwrap();
        let identity = grant.identity.expect("an id_token comes back");
        assert_eq!(identity.is_microsoft_personal(), !work);
        assert_eq!(identity.email.as_deref(), Some("owner@contoso.example"));
        let cal = MicrosoftCalendar::new(
            http,
            endpoints,
            "primary".into(),
            grant.refresh_token.expect("a refresh token"),
            None,
        );
        assert_eq!(
            cal.calendar_info().await.unwrap().timezone,
            Some(chrono_tz::America::Los_Angeles)
        );
    }
}
