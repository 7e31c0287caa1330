//! The settings pages' access rules, over real HTTP: a signed link opens a
//! session for one user only, once, until it expires; a session acts for
//! its user and no other; every change without the session's CSRF token
//! is refused.

use crate::helpers::{admin, connect_via, http, tuesday_morning};
use callbook::calendar::emulator::MsAccountSpec;
use callbook::clock::Clock;
use callbook::harness::Harness;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The default config (alex, connected to Google, owning `demo`) and sam,
/// who has no calendar.
async fn app() -> Harness {
    let mut config: Value = serde_json::from_str(DEFAULT).unwrap();
    config["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "sam", "name": "Sam Lee", "email": "sam@callbook.example"}));
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

const OUTLOOK: &str = "alex@contoso.example";

async fn link(app: &Harness, user: &str, body: Option<Value>) -> String {
    let (status, answer) = admin(
        app,
        Method::POST,
        &format!("/v1/users/{user}/settings_link"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["url"].as_str().unwrap().to_string()
}

/// Opens a link; answers the status, the page and the session cookie set.
async fn open(url: &str) -> (StatusCode, String, Option<String>) {
    let resp = http().get(url).send().await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.text().await.unwrap(), cookie)
}

/// A session for `user`: the cookie to send and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn session(app: &Harness, user: &str) -> Session {
    let (status, _, set) = open(&link(app, user, None).await).await;
    assert_eq!(status, StatusCode::OK);
    let set = set.expect("a session cookie");
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, page) = get(app, "/settings", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    Session {
        cookie,
        csrf: csrf_of(&page),
    }
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf-token\" content=\"")
        .expect("a CSRF meta")
        + 27;
    page[at..].split('"').next().unwrap().to_string()
}

async fn get(app: &Harness, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = http().get(format!("http://{}{path}", app.addr));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn change(
    app: &Harness,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, format!("http://{}{path}", app.addr));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn alex_connected(app: &Harness) -> bool {
    let (status, body) = admin(app, Method::GET, "/v1/users/alex/connections", None).await;
    assert_eq!(status, StatusCode::OK);
    body["connections"].as_array().unwrap().len() == 1
}

#[tokio::test]
async fn a_settings_link_needs_the_admin_token_and_an_existing_user() {
    let app = app().await;
    let resp = http()
        .post(format!("http://{}/v1/users/alex/settings_link", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = admin(&app, Method::POST, "/v1/users/nobody/settings_link", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for ttl in [json!(5), json!(86_400), json!("soon")] {
        let (status, body) = admin(
            &app,
            Method::POST,
            "/v1/users/alex/settings_link",
            Some(json!({"ttl_seconds": ttl})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ttl}: {body}");
    }
    let (status, body) = admin(&app, Method::POST, "/v1/users/alex/settings_link", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("http://{}/settings/open?token=", app.addr)));
    assert_eq!(body["expires_at"], "2026-12-01T15:10:00Z");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn opening_a_link_sets_a_strict_http_only_session_cookie_for_the_settings_pages_only() {
    let app = app().await;
    let (status, page, cookie) = open(&link(&app, "alex", None).await).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cookie = cookie.unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/settings",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(attr), "{attr}: {cookie}");
    }
    // The token does not stay in the address bar: the page moves on to
    // /settings, which names no token.
    assert!(page.contains("data-next=\"/settings\""), "{page}");
    // Without the cookie there is no page.
    let (status, _) = get(&app, "/settings", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_link_opens_once_and_not_after_it_expires() {
    let app = app().await;
    let url = link(&app, "alex", None).await;
    assert_eq!(open(&url).await.0, StatusCode::OK);
    let (status, page, cookie) = open(&url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("already used"), "{page}");
    assert!(cookie.is_none());

    let url = link(&app, "alex", Some(json!({"ttl_seconds": 60}))).await;
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, page, cookie) = open(&url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("expired"), "{page}");
    assert!(cookie.is_none());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_ends_after_an_hour() {
    let app = app().await;
    let s = session(&app, "alex").await;
    app.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(
        get(&app, "/settings", Some(&s.cookie)).await.0,
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        get(&app, "/settings", Some(&s.cookie)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = change(
        &app,
        Method::DELETE,
        "/settings/connections/google",
        Some(&s.cookie),
        Some(&s.csrf),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(alex_connected(&app).await);
    app.stop().await.unwrap();
}

/// Re-signs nothing: swaps the user in a signed value's claims and keeps
/// its tag, as someone holding one link would try.
fn for_another_user(token: &str, user: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let (body, tag) = token.split_once('.').unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
    claims["user"] = json!(user);
    format!("{}.{tag}", B64.encode(claims.to_string()))
}

#[tokio::test]
async fn a_link_or_session_altered_to_name_another_user_is_refused() {
    let app = app().await;
    let url = link(&app, "sam", None).await;
    let token = url.split("token=").nth(1).unwrap();
    let forged = format!(
        "http://{}/settings/open?token={}",
        app.addr,
        for_another_user(token, "alex")
    );
    let (status, page, cookie) = open(&forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("not valid"), "{page}");
    assert!(cookie.is_none());
    for junk in ["", "x", "a.b", "%00", &"A".repeat(10_000)] {
        let (status, _, cookie) =
            open(&format!("http://{}/settings/open?token={junk}", app.addr)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{junk:.10}");
        assert!(cookie.is_none());
    }
    // A link is not a session either.
    let as_cookie = format!("callbook_settings={token}");
    assert_eq!(
        get(&app, "/settings", Some(&as_cookie)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let sam = session(&app, "sam").await;
    let value = sam.cookie.split_once('=').unwrap().1;
    let forged = format!("callbook_settings={}", for_another_user(value, "alex"));
    assert_eq!(
        get(&app, "/settings", Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = change(
        &app,
        Method::DELETE,
        "/settings/connections/google",
        Some(&forged),
        Some(&sam.csrf),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(alex_connected(&app).await);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_for_one_user_cannot_read_or_change_another_users_connections() {
    let app = app().await;
    let sam = session(&app, "sam").await;
    let (status, page) = get(&app, "/settings", Some(&sam.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Sam Lee"), "{page}");
    assert!(!page.contains("Alex Morgan"), "{page}");
    assert!(!page.contains("alex@callbook.example"), "{page}");
    assert!(page.contains("Connect Google Calendar"), "{page}");

    // The pages take no user from the request: every change is sam's own.
    let attempts = [
        (Method::DELETE, "/settings/connections/google", None),
        (
            Method::PUT,
            "/settings/connections/google/calendar",
            Some(json!({"calendar_id": "primary"})),
        ),
        (
            Method::PUT,
            "/settings/active_provider",
            Some(json!({"provider": "google"})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = change(
            &app,
            method.clone(),
            path,
            Some(&sam.cookie),
            Some(&sam.csrf),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "not_connected", "{answer}");
    }
    // alex's campaign is not sam's to read or change.
    assert_eq!(
        get(&app, "/settings/campaigns/demo", Some(&sam.cookie))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = change(
        &app,
        Method::PUT,
        "/settings/campaigns/demo",
        Some(&sam.cookie),
        Some(&sam.csrf),
        Some(json!({"owner": "sam"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor do the admin API's paths accept a settings session.
    let resp = http()
        .get(format!("http://{}/v1/users/alex/connections", app.addr))
        .header("cookie", &sam.cookie)
        .header("x-csrf-token", &sam.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(alex_connected(&app).await);

    // alex's own session sees and changes alex's.
    let alex = session(&app, "alex").await;
    let (_, page) = get(&app, "/settings", Some(&alex.cookie)).await;
    assert!(page.contains("alex@callbook.example"), "{page}");
    assert!(page.contains("America/New_York"), "{page}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_change_without_the_sessions_csrf_token_is_refused() {
    let app = app().await;
    let alex = session(&app, "alex").await;
    let sam = session(&app, "sam").await;
    let changes = [
        (Method::POST, "/settings/connections/microsoft", None),
        (Method::DELETE, "/settings/connections/google", None),
        (
            Method::PUT,
            "/settings/connections/google/calendar",
            Some(json!({"calendar_id": "primary"})),
        ),
        (
            Method::PUT,
            "/settings/active_provider",
            Some(json!({"provider": "google"})),
        ),
        (
            Method::PUT,
            "/settings/campaigns/demo",
            Some(json!({"owner": "alex", "booking": null})),
        ),
    ];
    let another_sessions = sam.csrf.clone();
    let other_session_of_alex = session(&app, "alex").await.csrf;
    for (method, path, body) in &changes {
        for token in [
            None,
            Some(""),
            Some("forged"),
            Some(another_sessions.as_str()),
            Some(other_session_of_alex.as_str()),
        ] {
            let (status, answer) = change(
                &app,
                method.clone(),
                path,
                Some(&alex.cookie),
                token,
                body.clone(),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} {token:?}");
            assert_eq!(answer["error"], "csrf_refused", "{answer}");
        }
    }
    // Nothing changed: still connected, the campaign still books.
    assert!(alex_connected(&app).await);
    let (_, campaign) = admin(&app, Method::GET, "/v1/campaigns/demo", None).await;
    assert_eq!(campaign["booking_state"]["effective"], "on", "{campaign}");

    // With the token, the same change goes through.
    let (status, answer) = change(
        &app,
        Method::DELETE,
        "/settings/connections/google",
        Some(&alex.cookie),
        Some(&alex.csrf),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!alex_connected(&app).await);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_booking_step_reports_the_field_at_fault_and_the_connect_first_prompt() {
    let app = app().await;
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/teams",
            json!({"id": "sales", "name": "Sales", "members": ["alex", "sam"]}),
        ),
        (
            Method::POST,
            "/v1/campaigns",
            json!({"id": "spring", "name": "Spring push", "team": "sales", "owner": "alex"}),
        ),
    ] {
        let (status, answer) = admin(&app, method, path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let sam = session(&app, "sam").await;
    let (status, page) = get(&app, "/settings/campaigns/spring", Some(&sam.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The owner choice lists the members who connected a calendar.
    assert!(
        page.contains("<option value=\"alex\" selected>Alex Morgan</option>"),
        "{page}"
    );
    assert!(!page.contains("<option value=\"sam\""), "{page}");

    let (_, demo) = admin(&app, Method::GET, "/v1/campaigns/demo", None).await;
    let mut booking = demo["booking"].clone();
    booking["rules"]["length_minutes"] = json!(0);
    let (status, answer) = change(
        &app,
        Method::PUT,
        "/settings/campaigns/spring",
        Some(&sam.cookie),
        Some(&sam.csrf),
        Some(json!({"owner": "alex", "booking": booking})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer["message"],
        "booking.rules.length_minutes: must be greater than zero"
    );

    // Sam as the owner, with no calendar: allowed, and booking is off with
    // the prompt to connect one first.
    booking["rules"]["length_minutes"] = json!(45);
    let (status, answer) = change(
        &app,
        Method::PUT,
        "/settings/campaigns/spring",
        Some(&sam.cookie),
        Some(&sam.csrf),
        Some(json!({"owner": "sam", "booking": booking})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["booking_state"]["reason"], "owner_not_connected");
    assert_eq!(answer["booking"]["rules"]["length_minutes"], 45);
    let (_, page) = get(&app, "/settings/campaigns/spring", Some(&sam.cookie)).await;
    assert!(page.contains("id=\"connect-first\""), "{page}");
    assert!(page.contains("href=\"/settings#connections\""), "{page}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_shows_each_connections_status_and_what_to_do_about_it() {
    use callbook::store::{ConnectionStatus, Provider};
    let app = app().await;
    let (status, page) = connect_via(
        &app,
        "microsoft",
        &app,
        Some(json!({"login_hint": OUTLOOK})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The callback's page closes the sign-in popup (its script does).
    assert!(page.contains("data-page=\"oauth-done\""), "{page}");
    let alex = session(&app, "alex").await;
    let (_, page) = get(&app, "/settings", Some(&alex.cookie)).await;
    assert!(page.contains("id=\"in-use-microsoft\""), "{page}");
    assert!(
        page.contains("id=\"active-microsoft\" value=\"microsoft\" checked"),
        "{page}"
    );

    let since = tuesday_morning();
    app.store
        .set_status(
            "alex",
            Provider::Google,
            ConnectionStatus::Expired { since },
        )
        .await
        .unwrap();
    app.store
        .set_status(
            "alex",
            Provider::Microsoft,
            ConnectionStatus::AdminApprovalNeeded { since },
        )
        .await
        .unwrap();
    let (status, page) = get(&app, "/settings", Some(&alex.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Expired — reconnect"), "{page}");
    assert!(page.contains("Reconnect Google Calendar"), "{page}");
    assert!(page.contains("Needs admin approval"), "{page}");
    let at = page
        .find("id=\"admin-consent-microsoft\" href=\"")
        .expect("the consent link")
        + 36;
    let link = page[at..].split('"').next().unwrap().replace("&amp;", "&");
    assert!(link.contains("/adminconsent?client_id="), "{link}");
    assert!(page.contains("Reconnect Outlook Calendar"), "{page}");
    // Nothing to pick while a connection does not work.
    assert!(!page.contains("id=\"calendar-google\""), "{page}");
    app.stop().await.unwrap();
}
