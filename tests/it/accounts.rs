//! Users, teams and campaigns through the admin API, over real HTTP:
//! created, read, listed, changed and deleted, refused with the field at
//! fault, kept across a restart in the state file and shared by two
//! instances on one Redis. And which calendar a campaign's owner books on:
//! the most recently connected provider, unless the owner chooses another;
//! disconnecting the active one falls back to the other; with none left
//! booking is off on every campaign the owner has, with the reason calls
//! give and the connect request.

use crate::helpers::{admin, connect_via, start_call, start_call_on, tuesday_morning};
use base64::Engine;
use callbook::calendar::emulator::MsAccountSpec;
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, RedisServer};
use callbook::ledger::MemoryLedger;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::secrets::TokenCipher;
use callbook::store::state_file::StateFile;
use callbook::store::{RedisStore, Store};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;

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

fn cipher() -> TokenCipher {
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    TokenCipher::from_base64(&key).unwrap()
}

/// A callbook on `store`, with the default config's emulators.
async fn on(store: Arc<dyn Store>) -> Harness {
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT).unwrap());
    Harness::start_with(
        Clock::manual(tuesday_morning()),
        emulators,
        Arc::new(MemoryLedger::new()),
        store,
    )
    .await
    .unwrap()
}

async fn call(app: &Harness, method: Method, path: &str, body: Option<Value>) -> Value {
    let (status, got) = admin(app, method, path, body).await;
    assert!(status.is_success(), "{path}: {status} {got}");
    got
}

async fn refused(
    app: &Harness,
    method: Method,
    path: &str,
    body: Value,
    status: StatusCode,
) -> Value {
    let (got_status, got) = admin(app, method, path, Some(body)).await;
    assert_eq!(got_status, status, "{got}");
    got
}

/// The default campaign's booking settings.
async fn demo_booking(app: &Harness) -> Value {
    call(app, Method::GET, "/v1/campaigns/demo", None).await["booking"].clone()
}

/// Sam (no calendar) and a team `sales` of Alex and Sam.
async fn sales_team(app: &Harness) {
    let (status, sam) = admin(
        app,
        Method::POST,
        "/v1/users",
        Some(json!({"id": "sam", "name": "Sam Lee", "email": "sam@example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sam}");
    assert_eq!(
        sam,
        json!({"id": "sam", "name": "Sam Lee", "email": "sam@example.com"})
    );
    let (status, team) = admin(
        app,
        Method::POST,
        "/v1/teams",
        Some(json!({"id": "sales", "name": "Sales", "members": ["alex"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team = call(app, Method::PUT, "/v1/teams/sales/members/sam", None).await;
    assert_eq!(team["members"], json!(["alex", "sam"]));
}

#[tokio::test]
async fn users_teams_and_campaigns_are_made_changed_and_deleted() {
    let app = app().await;
    sales_team(&app).await;

    // Users: listed with the provisioning file's, read, changed.
    let users = call(&app, Method::GET, "/v1/users", None).await;
    let ids: Vec<_> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("alex"), json!("sam")]);
    let sam = call(
        &app,
        Method::PUT,
        "/v1/users/sam",
        Some(json!({"name": "Samantha Lee", "email": "samantha@example.com"})),
    )
    .await;
    assert_eq!(sam["name"], "Samantha Lee");
    assert_eq!(call(&app, Method::GET, "/v1/users/sam", None).await, sam);

    // A campaign of the team, owned by Alex: booking on.
    let booking = demo_booking(&app).await;
    let (status, spring) = admin(
        &app,
        Method::POST,
        "/v1/campaigns",
        Some(json!({"id": "spring", "name": "Spring", "team": "sales", "owner": "alex", "booking": booking})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{spring}");
    assert_eq!(spring["team"], "sales");
    assert_eq!(spring["booking"], booking);
    assert_eq!(spring["booking_state"], json!({"effective": "on"}));
    let listed = call(&app, Method::GET, "/v1/campaigns", None).await;
    assert_eq!(listed["campaigns"].as_array().unwrap().len(), 3);
    let teams = call(&app, Method::GET, "/v1/teams", None).await;
    assert_eq!(
        teams,
        json!({"teams": [{"id": "sales", "name": "Sales", "members": ["alex", "sam"]}]})
    );

    // In use: the owner cannot leave the team, the team cannot go.
    let gone = admin(&app, Method::DELETE, "/v1/teams/sales/members/alex", None).await;
    assert_eq!(gone.0, StatusCode::CONFLICT, "{}", gone.1);
    let gone = admin(&app, Method::DELETE, "/v1/teams/sales", None).await;
    assert_eq!(gone.0, StatusCode::CONFLICT, "{}", gone.1);
    let gone = admin(&app, Method::DELETE, "/v1/users/alex", None).await;
    assert_eq!(gone.0, StatusCode::CONFLICT, "{}", gone.1);

    // Deleted: 404 after, and calls naming the campaign skip.
    call(&app, Method::DELETE, "/v1/campaigns/spring", None).await;
    let (status, _) = admin(&app, Method::GET, "/v1/campaigns/spring", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    call(&app, Method::DELETE, "/v1/teams/sales/members/sam", None).await;
    // Alex owns no campaign of the team now, but has a calendar connected.
    call(&app, Method::DELETE, "/v1/teams/sales/members/alex", None).await;
    call(&app, Method::DELETE, "/v1/campaigns/second", None).await;
    call(&app, Method::DELETE, "/v1/campaigns/demo", None).await;
    let (status, body) = admin(&app, Method::DELETE, "/v1/users/alex", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("google calendar connected"),
        "{body}"
    );
    call(&app, Method::DELETE, "/v1/users/sam", None).await;
    let (status, body) = admin(&app, Method::GET, "/v1/users/sam", None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("unknown_user"))
    );
    call(&app, Method::DELETE, "/v1/teams/sales", None).await;
    let (status, body) = admin(&app, Method::GET, "/v1/teams/sales", None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("unknown_team"))
    );

    // A provisioning file's campaign may be deleted too (above), and calls
    // naming it skip.
    let mut c = start_call(&app, "CA0000000000000000000000accounts02").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter()
            .any(|f| f["booking"] == json!({"status": "skipped", "reason": "campaign_unknown"})),
        "{got:?}"
    );
}

#[tokio::test]
async fn invalid_records_are_refused_naming_the_field() {
    let app = app().await;
    sales_team(&app).await;
    let user = |body: Value| {
        refused(
            &app,
            Method::POST,
            "/v1/users",
            body,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    for (body, message) in [
        (
            json!({"name": "X", "email": "x@example.com"}),
            "id: missing",
        ),
        (
            json!({"id": "Bad Id", "name": "X", "email": "x@example.com"}),
            "id: use 1 to 64 lower-case letters, digits, '-' and '_'",
        ),
        (
            json!({"id": "x", "email": "x@example.com"}),
            "name: missing",
        ),
        (
            json!({"id": "x", "name": "X", "email": "not-an-address"}),
            "email: not an email address",
        ),
        (
            json!({"id": "x", "name": "X", "email": "x@example.com", "role": "boss"}),
            "role: unknown field",
        ),
    ] {
        let got = user(body).await;
        assert_eq!(got, json!({"error": "invalid_user", "message": message}));
    }
    let got = refused(
        &app,
        Method::POST,
        "/v1/users",
        json!({"id": "sam", "name": "Sam", "email": "sam@example.com"}),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(got["error"], "user_exists");
    let got = refused(
        &app,
        Method::POST,
        "/v1/teams",
        json!({"id": "ops", "name": "Ops", "members": ["alex", "nobody"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        got,
        json!({"error": "invalid_team", "message": "members[1]: no user \"nobody\""})
    );

    // The owner must be one of the team's members.
    call(
        &app,
        Method::POST,
        "/v1/users",
        Some(json!({"id": "kim", "name": "Kim", "email": "kim@example.com"})),
    )
    .await;
    let got = refused(
        &app,
        Method::POST,
        "/v1/campaigns",
        json!({"id": "spring", "name": "Spring", "team": "sales", "owner": "kim"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        got,
        json!({"error": "invalid_campaign", "message": "owner: \"kim\" is not a member of team \"sales\""})
    );
    let got = refused(
        &app,
        Method::POST,
        "/v1/campaigns",
        json!({"id": "spring", "name": "Spring", "team": "nope", "owner": "kim"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(got["message"], "team: no team \"nope\"");
    let mut booking = demo_booking(&app).await;
    booking["rules"]["window"]["start"] = json!("25:00");
    let got = refused(
        &app,
        Method::POST,
        "/v1/campaigns",
        json!({"id": "spring", "name": "Spring", "team": "sales", "owner": "alex", "booking": booking}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(got["error"], "invalid_campaign");
    assert!(
        got["message"]
            .as_str()
            .unwrap()
            .starts_with("booking.rules.window.start"),
        "{got}"
    );
    // Changing an existing campaign's owner to a non-member is refused too.
    let got = refused(
        &app,
        Method::PUT,
        "/v1/campaigns/demo",
        json!({"name": "Demo", "team": "sales", "owner": "kim"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        got["message"].as_str().unwrap().starts_with("owner: "),
        "{got}"
    );
    assert_eq!(
        call(&app, Method::GET, "/v1/campaigns/demo", None).await["owner"],
        "alex"
    );
}

#[tokio::test]
async fn an_owner_without_a_calendar_turns_booking_off_and_calls_skip() {
    let app = app().await;
    sales_team(&app).await;
    let booking = demo_booking(&app).await;
    let spring = call(
        &app,
        Method::POST,
        "/v1/campaigns",
        Some(json!({"id": "spring", "name": "Spring", "team": "sales", "owner": "sam", "booking": booking})),
    )
    .await;
    assert_eq!(
        spring["booking_state"],
        json!({"effective": "off", "reason": "owner_not_connected", "connect_url": "/v1/users/sam/connections/{provider}"})
    );
    let mut c = start_call_on(&app, "CA0000000000000000000000accounts03", "spring").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter()
            .any(|f| f["booking"] == json!({"status": "skipped", "reason": "owner_not_connected"})),
        "{got:?}"
    );
    // Choosing a connected owner turns it on.
    let spring = call(
        &app,
        Method::PUT,
        "/v1/campaigns/spring",
        Some(json!({"name": "Spring", "team": "sales", "owner": "alex", "booking": booking})),
    )
    .await;
    assert_eq!(spring["booking_state"], json!({"effective": "on"}));
}

/// What `sales_team` and a campaign `spring` leave, as read back.
async fn made(app: &Harness) -> Value {
    json!({
        "user": call(app, Method::GET, "/v1/users/sam", None).await,
        "team": call(app, Method::GET, "/v1/teams/sales", None).await,
        "campaign": call(app, Method::GET, "/v1/campaigns/spring", None).await,
        "demo": admin(app, Method::GET, "/v1/campaigns/demo", None).await.0.as_u16(),
    })
}

async fn make(app: &Harness) -> Value {
    sales_team(app).await;
    call(
        app,
        Method::POST,
        "/v1/campaigns",
        Some(json!({"id": "spring", "name": "Spring", "team": "sales", "owner": "sam"})),
    )
    .await;
    call(app, Method::DELETE, "/v1/campaigns/demo", None).await;
    let got = made(app).await;
    assert_eq!(got["demo"], 404);
    got
}

#[tokio::test]
async fn what_the_api_made_survives_a_restart_with_the_state_file() {
    let dir = std::env::temp_dir().join(format!("callbook-accounts-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let store = |path: std::path::PathBuf| async move {
        let s = Provisioning::parse(DEFAULT)
            .unwrap()
            .into_store()
            .with_state_file(StateFile::new(path, cipher()))
            .await
            .unwrap();
        Arc::new(s) as Arc<dyn Store>
    };
    let first = on(store(path.clone()).await).await;
    let before = make(&first).await;
    first.stop().await.unwrap();
    let second = on(store(path).await).await;
    assert_eq!(made(&second).await, before);
    second.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn two_instances_on_one_redis_see_the_same_records() {
    let server = RedisServer::start().await.unwrap();
    let store = || async {
        let base = Provisioning::parse(DEFAULT).unwrap().into_store();
        let s = RedisStore::connect(&server.url, "cb:accounts:", cipher(), base)
            .await
            .unwrap();
        Arc::new(s) as Arc<dyn Store>
    };
    let one = on(store().await).await;
    let two = on(store().await).await;
    let before = make(&one).await;
    assert_eq!(made(&two).await, before);
}

/// Records as callbook has always stored them: the JSON of each struct,
/// `null` for one deleted (the provisioning file's `demo` here).
fn stored_before() -> [(&'static str, &'static str, &'static str); 5] {
    [
        (
            "user",
            "kim",
            r#"{"id":"kim","name":"Kim Park","email":"kim@callbook.example"}"#,
        ),
        (
            "team",
            "sales",
            r#"{"id":"sales","name":"Sales","members":["alex","kim"]}"#,
        ),
        ("team", "empty", r#"{"id":"empty","name":"Nobody yet"}"#),
        (
            "campaign",
            "spring",
            r#"{"id":"spring","name":"Spring","team":"sales","owner":"kim","booking":null}"#,
        ),
        ("campaign", "demo", "null"),
    ]
}

/// What the typed store reads from [`stored_before`].
async fn reads_what_was_stored_before(s: &dyn Store) {
    let kim = s.user("kim").await.unwrap().expect("kim");
    assert_eq!(
        (kim.name.as_str(), kim.email.as_deref()),
        ("Kim Park", Some("kim@callbook.example"))
    );
    let users: Vec<String> = s.users().await.unwrap().into_iter().map(|u| u.id).collect();
    assert!(
        users.contains(&"kim".into()) && users.contains(&"alex".into()),
        "{users:?}"
    );
    let sales = s.team("sales").await.unwrap().expect("sales");
    assert_eq!(sales.members, ["alex", "kim"]);
    assert!(s.team("empty").await.unwrap().unwrap().members.is_empty());
    assert_eq!(s.teams().await.unwrap().len(), 2);
    let spring = s.campaign("spring").await.unwrap().expect("spring");
    assert_eq!(
        (spring.owner.as_str(), spring.team.as_deref()),
        ("kim", Some("sales"))
    );
    assert!(s.campaign("demo").await.unwrap().is_none(), "stays deleted");
    let ids: Vec<String> = s
        .campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["spring"]);
}

#[tokio::test]
async fn records_stored_before_load_through_the_typed_store_from_a_state_file() {
    let dir = std::env::temp_dir().join(format!("callbook-compat-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let load = || async {
        Provisioning::parse(DEFAULT)
            .unwrap()
            .into_store()
            .with_state_file(StateFile::new(path.clone(), cipher()))
            .await
            .unwrap()
    };
    // A state file as an earlier callbook wrote it, accounts in it.
    drop(load().await);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut accounts = json!({"users": {}, "teams": {}, "campaigns": {}});
    for (kind, id, json) in stored_before() {
        accounts[format!("{kind}s")][id] = serde_json::from_str(json).unwrap();
    }
    doc["accounts"] = accounts;
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let store = load().await;
    reads_what_was_stored_before(&store).await;
    // Written back through the typed store, the file reads the same.
    store.add_member("empty", "kim").await.unwrap();
    let again = load().await;
    assert_eq!(again.team("empty").await.unwrap().unwrap().members, ["kim"]);
    reads_after_add(&again).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn reads_after_add(s: &dyn Store) {
    assert_eq!(
        s.team("sales").await.unwrap().unwrap().members,
        ["alex", "kim"]
    );
    assert!(s.campaign("demo").await.unwrap().is_none());
}

#[tokio::test]
async fn records_stored_before_load_through_the_typed_store_from_redis() {
    let server = RedisServer::start().await.unwrap();
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for (kind, id, json) in stored_before() {
        let _: () = redis::cmd("HSET")
            .arg(format!("cb:compat:accounts:{kind}"))
            .arg(id)
            .arg(json)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let base = Provisioning::parse(DEFAULT).unwrap().into_store();
    let store = RedisStore::connect(&server.url, "cb:compat:", cipher(), base)
        .await
        .unwrap();
    reads_what_was_stored_before(&store).await;
    // What the typed store writes is what was there before: the struct's
    // JSON in the same hash.
    store.add_member("empty", "kim").await.unwrap();
    let written: String = redis::cmd("HGET")
        .arg("cb:compat:accounts:team")
        .arg("empty")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&written).unwrap(),
        json!({"id": "empty", "name": "Nobody yet", "members": ["kim"]})
    );
    reads_after_add(&store).await;
}

#[tokio::test]
async fn two_instances_adding_members_to_one_team_at_once_lose_none() {
    const USERS: usize = 24;
    let server = RedisServer::start().await.unwrap();
    let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT).unwrap());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let base = Provisioning::parse(DEFAULT).unwrap().into_store();
        let store = RedisStore::connect(&server.url, "cb:members:", cipher(), base)
            .await
            .unwrap();
        let options = callbook::harness::Options {
            admin_token: Some(admin_token.clone()),
            ..Default::default()
        };
        apps.push(
            Harness::start_with_options(
                Clock::manual(tuesday_morning()),
                emulators.clone(),
                Arc::new(MemoryLedger::new()),
                Arc::new(store),
                options,
            )
            .await
            .unwrap(),
        );
    }
    call(
        &apps[0],
        Method::POST,
        "/v1/teams",
        Some(json!({"id": "sales", "name": "Sales"})),
    )
    .await;
    let ids: Vec<String> = (0..USERS).map(|i| format!("member{i:02}")).collect();
    for id in &ids {
        call(
            &apps[1],
            Method::POST,
            "/v1/users",
            Some(json!({"id": id, "name": id, "email": format!("{id}@callbook.example")})),
        )
        .await;
    }
    // Every member added at once, half through each instance.
    let adds = ids.iter().enumerate().map(|(i, id)| {
        let app = &apps[i % 2];
        async move {
            let (status, body) = admin(
                app,
                Method::PUT,
                &format!("/v1/teams/sales/members/{id}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    });
    futures_util::future::join_all(adds).await;
    for app in &apps {
        let team = call(app, Method::GET, "/v1/teams/sales", None).await;
        let mut members: Vec<String> = team["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();
        members.sort();
        assert_eq!(members, ids, "{team}");
    }
    // And removed at once, none left behind.
    let removes = ids.iter().enumerate().map(|(i, id)| {
        let app = &apps[i % 2];
        async move {
            let (status, body) = admin(
                app,
                Method::DELETE,
                &format!("/v1/teams/sales/members/{id}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    });
    futures_util::future::join_all(removes).await;
    let team = call(&apps[0], Method::GET, "/v1/teams/sales", None).await;
    assert_eq!(team["members"], json!([]), "{team}");
    for app in apps {
        app.stop().await.unwrap();
    }
}
