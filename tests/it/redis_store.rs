//! Connections in Redis, against a real `redis-server`: the same contract
//! as the in-memory store, sealed at rest, and shared by two callbook
//! servers: a consent started on one finishes on the other, and a
//! Microsoft token rotated by one is picked up by the other.

use crate::helpers::{admin, book, connect_via, start_call, tuesday_morning};
use base64::Engine;
use callbook::calendar::emulator::MsAccountSpec;
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, RedisServer};
use callbook::ledger::{Ledger, RedisLedger};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::secrets::TokenCipher;
use callbook::store::{
    Connection, ConnectionStatus, ExpectedAccount, MemoryStore, PendingFlow, Provider, RedisStore,
    Store, StoreError, StoreErrorKind,
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::Arc;

const OUTLOOK: &str = "alex@contoso.example";

pub(crate) fn cipher() -> TokenCipher {
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([5u8; 32]));
    TokenCipher::from_base64(&key).unwrap()
}

async fn redis_store(server: &RedisServer, prefix: &str) -> RedisStore {
    let base = Provisioning::parse(DEFAULT).unwrap().into_store();
    RedisStore::connect(&server.url, prefix, cipher(), base)
        .await
        .unwrap()
}

fn conn(p: Provider, token: &str) -> Connection {
    Connection::new(p, SecretString::from(token))
}

/// What every store must do with connections and flows. `alex` starts with
/// the default config's Google connection.
pub(crate) async fn contract(s: &dyn Store) {
    let (list, active) = s.connections("alex").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(active, Some(Provider::Google));
    assert!(s.user("alex").await.unwrap().is_some());
    assert!(s.campaign("demo").await.unwrap().is_some());

    let mut ms = conn(Provider::Microsoft, "m1");
    ms.tenant = Some("t-9".into());
    ms.account_email = Some(OUTLOOK.into());
    ms.other_account = true;
    s.put_connection("alex", ms).await.unwrap();
    // The most recently connected provider becomes active; the owner may
    // switch back.
    assert_eq!(
        s.connection("alex").await.unwrap().unwrap().provider,
        Provider::Microsoft
    );
    assert!(s.set_active("alex", Provider::Google).await.unwrap());
    assert_eq!(
        s.connection("alex").await.unwrap().unwrap().provider,
        Provider::Google
    );
    assert!(s.set_active("alex", Provider::Microsoft).await.unwrap());
    let active = s.connection("alex").await.unwrap().unwrap();
    assert_eq!(active.provider, Provider::Microsoft);
    assert_eq!(active.tenant.as_deref(), Some("t-9"));
    assert_eq!(active.account_email.as_deref(), Some(OUTLOOK));
    assert!(active.other_account);

    s.update_refresh_token("alex", Provider::Microsoft, SecretString::from("m2"))
        .await
        .unwrap();
    assert!(s
        .set_calendar("alex", Provider::Microsoft, "AAMkOther")
        .await
        .unwrap());
    let since = tuesday_morning();
    s.set_status(
        "alex",
        Provider::Microsoft,
        ConnectionStatus::AdminApprovalNeeded { since },
    )
    .await
    .unwrap();
    let c = s.connection("alex").await.unwrap().unwrap();
    assert_eq!(c.refresh_token.expose_secret(), "m2");
    assert_eq!(c.calendar_id, "AAMkOther");
    assert_eq!(c.status, ConnectionStatus::AdminApprovalNeeded { since });
    // A canonical id applies to the calendar it was resolved for, until
    // another is chosen; a reconnect starts over.
    assert_eq!(c.canonical_id(), None);
    assert!(s
        .set_canonical("alex", Provider::Microsoft, "AAMkOther", "AAMkOther-real")
        .await
        .unwrap());
    let c = s.connection("alex").await.unwrap().unwrap();
    assert_eq!(c.canonical_id(), Some("AAMkOther-real"));
    assert!(s
        .set_calendar("alex", Provider::Microsoft, "primary")
        .await
        .unwrap());
    assert_eq!(
        s.connection("alex").await.unwrap().unwrap().canonical_id(),
        None
    );
    assert!(s
        .set_calendar("alex", Provider::Microsoft, "AAMkOther")
        .await
        .unwrap());
    assert!(!s
        .set_canonical("nobody", Provider::Microsoft, "primary", "x")
        .await
        .unwrap());

    // Removing the active one hands over to the other.
    let gone = s
        .remove_connection("alex", Provider::Microsoft)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.refresh_token.expose_secret(), "m2");
    assert_eq!(
        s.connection("alex").await.unwrap().unwrap().provider,
        Provider::Google
    );
    // Changes to a connection that is gone do not bring it back.
    assert!(!s
        .set_calendar("alex", Provider::Microsoft, "x")
        .await
        .unwrap());
    s.update_refresh_token("alex", Provider::Microsoft, SecretString::from("m3"))
        .await
        .unwrap();
    assert!(!s.set_active("alex", Provider::Microsoft).await.unwrap());
    assert_eq!(s.connections("alex").await.unwrap().0.len(), 1);
    assert!(s
        .remove_connection("alex", Provider::Microsoft)
        .await
        .unwrap()
        .is_none());

    // A consent flow works once.
    let flow = PendingFlow {
        user_id: "alex".into(),
        provider: Provider::Microsoft,
        verifier: SecretString::from("v-123"),
        redirect_uri: "https://callbook.example/v1/oauth/callback".into(),
        expect: ExpectedAccount {
            account: Some(OUTLOOK.into()),
            tenant: Some("t-9".into()),
            allow_other: false,
        },
    };
    s.begin_flow("state-1", flow).await.unwrap();
    let got = s.finish_flow("state-1").await.unwrap().unwrap();
    assert_eq!(
        (got.user_id.as_str(), got.provider),
        ("alex", Provider::Microsoft)
    );
    assert_eq!(got.verifier.expose_secret(), "v-123");
    assert_eq!(got.expect.account.as_deref(), Some(OUTLOOK));
    assert_eq!(got.expect.tenant.as_deref(), Some("t-9"));
    assert_eq!(
        got.redirect_uri,
        "https://callbook.example/v1/oauth/callback"
    );
    assert!(s.finish_flow("state-1").await.unwrap().is_none());
    assert!(s.finish_flow("never").await.unwrap().is_none());
}

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    contract(&Provisioning::parse(DEFAULT).unwrap().into_store()).await;
}

#[tokio::test]
async fn the_redis_store_keeps_the_contract_with_tokens_sealed() {
    let server = RedisServer::start().await.unwrap();
    let store = redis_store(&server, "cb:contract:").await;
    contract(&store).await;
    // Nothing in Redis holds a token in clear.
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("cb:contract:conn:alex")
        .query_async(&mut c)
        .await
        .unwrap();
    let token = all["google:token"].clone();
    assert!(token.starts_with("v2:"), "{token}");
    assert!(!all.values().any(|v| v.contains("demo-refresh")));
}

#[tokio::test]
async fn what_redis_holds_wins_over_the_provisioning_file_on_restart() {
    let server = RedisServer::start().await.unwrap();
    let first = redis_store(&server, "cb:restart:").await;
    first
        .update_refresh_token("alex", Provider::Google, SecretString::from("rotated"))
        .await
        .unwrap();
    drop(first);
    let again = redis_store(&server, "cb:restart:").await;
    let c = again.connection("alex").await.unwrap().unwrap();
    assert_eq!(c.refresh_token.expose_secret(), "rotated");
}

#[tokio::test]
async fn booking_settings_set_on_one_instance_are_what_every_instance_uses() {
    let server = RedisServer::start().await.unwrap();
    let one = redis_store(&server, "cb:booking:").await;
    let two = redis_store(&server, "cb:booking:").await;
    let mut booking = one
        .campaign("demo")
        .await
        .unwrap()
        .unwrap()
        .booking
        .unwrap();
    booking.rules.length_minutes = 45;
    booking.enabled = false;
    assert!(one.set_booking("demo", booking.clone()).await.unwrap());
    assert!(!one.set_booking("nope", booking.clone()).await.unwrap());
    let seen = two.campaign("demo").await.unwrap().unwrap();
    assert_eq!(seen.booking, Some(booking));
    assert_eq!(seen.name, "Acme outreach");
}

/// Keys from these bytes, the sealing one first.
pub(crate) fn keys(bytes: &[u8]) -> TokenCipher {
    let list: Vec<SecretString> = bytes
        .iter()
        .map(|b| SecretString::from(base64::engine::general_purpose::STANDARD.encode([*b; 32])))
        .collect();
    TokenCipher::from_base64_list(&list).unwrap()
}

async fn connect_with(
    server: &RedisServer,
    prefix: &str,
    cipher: TokenCipher,
) -> Result<RedisStore, StoreError> {
    let base = Provisioning::parse(DEFAULT).unwrap().into_store();
    RedisStore::connect(&server.url, prefix, cipher, base).await
}

async fn hash(server: &RedisServer, key: &str) -> std::collections::HashMap<String, String> {
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_that_do_not_open_what_redis_holds_are_refused_before_anything_is_written() {
    let server = RedisServer::start().await.unwrap();
    redis_store(&server, "cb:key:").await;
    let before = hash(&server, "cb:key:conn:alex").await;
    let err = connect_with(&server, "cb:key:", keys(&[6]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::WrongKey);
    assert!(err.to_string().contains("CALLBOOK_TOKEN_KEY"), "{err}");
    assert_eq!(hash(&server, "cb:key:conn:alex").await, before);
    // A store with no token yet is bound to its first key by the key check.
    connect_with(&server, "cb:empty:", keys(&[5]))
        .await
        .unwrap();
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg("cb:empty:conn:alex")
        .query_async(&mut c)
        .await
        .unwrap();
    let err = connect_with(&server, "cb:empty:", keys(&[6]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::WrongKey);
}

#[tokio::test]
async fn a_token_written_under_another_key_while_running_is_an_error_not_a_missing_connection() {
    let server = RedisServer::start().await.unwrap();
    let store = redis_store(&server, "cb:later:").await;
    let foreign = keys(&[6]).seal(&SecretString::from("x"), "alex|google");
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg("cb:later:conn:alex")
        .arg("google:token")
        .arg(foreign)
        .query_async(&mut c)
        .await
        .unwrap();
    let err = store.connection("alex").await.err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::WrongKey);
}

#[tokio::test]
async fn rekey_moves_redis_to_the_new_key_so_the_old_one_can_be_dropped() {
    let server = RedisServer::start().await.unwrap();
    let prefix = "cb:rotate:";
    // Everything under key A: the provisioning file's Google connection, an
    // Outlook one, and a consent flow in progress.
    let a = connect_with(&server, prefix, keys(&[1])).await.unwrap();
    a.put_connection("alex", conn(Provider::Microsoft, "m-1"))
        .await
        .unwrap();
    let flow = PendingFlow {
        user_id: "alex".into(),
        provider: Provider::Google,
        verifier: SecretString::from("v-9"),
        redirect_uri: "https://callbook.example/v1/oauth/callback".into(),
        expect: ExpectedAccount::default(),
    };
    a.begin_flow("state-r", flow).await.unwrap();
    // New key first, old one still there: everything opens.
    let both = connect_with(&server, prefix, keys(&[2, 1])).await.unwrap();
    assert_eq!(both.connections("alex").await.unwrap().0.len(), 2);
    let report = both.rekey().await.unwrap();
    // Two tokens, the flow and the key check.
    assert_eq!((report.resealed, report.current), (4, 0));
    assert_eq!(both.rekey().await.unwrap().resealed, 0);
    // The flow kept its expiry.
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}flow:state-r"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0, "{ttl}");
    // Only the new key now: it opens everything; the old one alone opens
    // nothing.
    let b = connect_with(&server, prefix, keys(&[2])).await.unwrap();
    let (list, _) = b.connections("alex").await.unwrap();
    let ms = list
        .iter()
        .find(|c| c.provider == Provider::Microsoft)
        .unwrap();
    assert_eq!(ms.refresh_token.expose_secret(), "m-1");
    let got = b.finish_flow("state-r").await.unwrap().unwrap();
    assert_eq!(got.verifier.expose_secret(), "v-9");
    let err = connect_with(&server, prefix, keys(&[1]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::WrongKey);
}

#[tokio::test]
async fn with_redis_down_a_call_skips_booking_as_unavailable_not_missing() {
    let mut server = RedisServer::start().await.unwrap();
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT).unwrap());
    let store: Arc<dyn Store> = Arc::new(redis_store(&server, "cb:down:").await);
    let app = Harness::start_with(
        Clock::manual(tuesday_morning()),
        emulators,
        Arc::new(callbook::ledger::MemoryLedger::new()),
        store,
    )
    .await
    .unwrap();
    server.kill();
    let mut c = start_call(&app, "CA000000000000000000000000down0001").await;
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter().any(|f| f["booking"]
            == json!({"status": "skipped", "reason": "calendar_unavailable"})),
        "{got:?}"
    );
    // The admin API says the store is down, in its own words only.
    let (status, body) = admin(
        &app,
        reqwest::Method::GET,
        "/v1/users/alex/connections",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "store_unavailable");
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("refused")
            && !message.contains("os error")
            && !message.contains("127.0.0.1"),
        "{message}"
    );
    app.stop().await.unwrap();
}

/// Two servers on one Redis (store and ledger) and the same emulators.
async fn two_servers(server: &RedisServer) -> (Vec<Harness>, Emulators) {
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT).unwrap());
    emulators.microsoft.add_account(MsAccountSpec {
        email: OUTLOOK.into(),
        refresh_token: "never-handed-out".into(),
        windows_zone: "Eastern Standard Time".into(),
        work: true,
    });
    let clock = Clock::manual(tuesday_morning());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let ledger: Arc<dyn Ledger> = Arc::new(
            RedisLedger::connect(&server.url, "cb:two:ledger:")
                .await
                .unwrap(),
        );
        let store: Arc<dyn Store> = Arc::new(redis_store(server, "cb:two:").await);
        apps.push(
            Harness::start_with(clock.clone(), emulators.clone(), ledger, store)
                .await
                .unwrap(),
        );
    }
    (apps, emulators)
}

#[tokio::test]
async fn a_consent_started_on_one_server_finishes_on_the_other() {
    let server = RedisServer::start().await.unwrap();
    let (apps, _emulators) = two_servers(&server).await;
    // The load balancer sends the browser back to the other server.
    let (status, page) = connect_via(
        &apps[0],
        "microsoft",
        &apps[1],
        Some(json!({"login_hint": OUTLOOK})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, list) = admin(
        &apps[0],
        reqwest::Method::GET,
        "/v1/users/alex/connections",
        None,
    )
    .await;
    let ms = list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == "microsoft")
        .cloned()
        .expect("server 0 sees the connection server 1 made");
    assert_eq!(ms["account"], OUTLOOK);
    for app in apps {
        app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_token_rotated_by_one_server_is_picked_up_by_the_other() {
    let server = RedisServer::start().await.unwrap();
    let (apps, emulators) = two_servers(&server).await;
    // Connect Outlook and make it active (through server 0).
    connect_via(
        &apps[0],
        "microsoft",
        &apps[0],
        Some(json!({"login_hint": OUTLOOK})),
    )
    .await;
    admin(
        &apps[0],
        reqwest::Method::PUT,
        "/v1/users/alex/active_provider",
        Some(json!({"provider": "microsoft"})),
    )
    .await;

    // Server 1 books (its client refreshes and rotates the token), then
    // server 0 books (its own refresh rotates it again, killing the one
    // server 1 holds).
    let b1 = book(&apps[1], "CA000000000000000000000000rotat01").await;
    assert_eq!(b1["booking"]["status"], "booked", "{b1}");
    let b0 = book(&apps[0], "CA000000000000000000000000rotat02").await;
    assert_eq!(b0["booking"]["status"], "booked", "{b0}");
    // Access tokens run out: server 1's next refresh must use the token
    // server 0 stored, not the one it holds.
    emulators.microsoft.expire_access_tokens();
    let b2 = book(&apps[1], "CA000000000000000000000000rotat03").await;
    assert_eq!(b2["booking"]["status"], "booked", "{b2}");
    let (_, list) = admin(
        &apps[1],
        reqwest::Method::GET,
        "/v1/users/alex/connections",
        None,
    )
    .await;
    assert!(list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "active"));
    assert_eq!(emulators.microsoft.events(OUTLOOK).len(), 3);
    for app in apps {
        app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn memory_and_redis_stores_agree_on_a_fresh_users_first_connection() {
    let server = RedisServer::start().await.unwrap();
    let stores: [Box<dyn Store>; 2] = [
        Box::new(MemoryStore::new()),
        Box::new(redis_store(&server, "cb:fresh:").await),
    ];
    for s in &stores {
        assert!(s.connection("newcomer").await.unwrap().is_none());
        s.put_connection("newcomer", conn(Provider::Microsoft, "x"))
            .await
            .unwrap();
        let (list, active) = s.connections("newcomer").await.unwrap();
        assert_eq!((list.len(), active), (1, Some(Provider::Microsoft)));
    }
}

/// Two servers behind one load balancer: one Redis and one admin token.
async fn two_servers_sharing_the_admin_token(server: &RedisServer, prefix: &str) -> Vec<Harness> {
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT).unwrap());
    let clock = Clock::manual(tuesday_morning());
    let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let ledger: Arc<dyn Ledger> = Arc::new(
            RedisLedger::connect(&server.url, &format!("{prefix}ledger:"))
                .await
                .unwrap(),
        );
        let store: Arc<dyn Store> = Arc::new(redis_store(server, prefix).await);
        let options = callbook::harness::Options {
            admin_token: Some(admin_token.clone()),
            ..Default::default()
        };
        apps.push(
            Harness::start_with_options(clock.clone(), emulators.clone(), ledger, store, options)
                .await
                .unwrap(),
        );
    }
    apps
}

#[tokio::test]
async fn a_settings_link_opened_on_one_server_is_refused_on_the_other() {
    let server = RedisServer::start().await.unwrap();
    let apps = two_servers_sharing_the_admin_token(&server, "cb:links:").await;
    let (status, answer) = admin(
        &apps[0],
        reqwest::Method::POST,
        "/v1/users/alex/settings_link",
        Some(json!({"ttl_seconds": 120})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let url = answer["url"].as_str().unwrap().to_string();
    let on = |app: &Harness| url.replace(&apps[0].addr.to_string(), &app.addr.to_string());
    let client = crate::helpers::http();

    let first = client.get(on(&apps[0])).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("set-cookie").is_some());
    for app in [&apps[1], &apps[0]] {
        let again = client.get(on(app)).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::FORBIDDEN, "on {}", app.addr);
        assert!(again.headers().get("set-cookie").is_none());
        assert!(again.text().await.unwrap().contains("already used"));
    }

    // A fresh link signed by one server opens on the other, once.
    let (_, answer) = admin(
        &apps[1],
        reqwest::Method::POST,
        "/v1/users/alex/settings_link",
        None,
    )
    .await;
    let url = answer["url"].as_str().unwrap().to_string();
    let on_first = url.replace(&apps[1].addr.to_string(), &apps[0].addr.to_string());
    assert_eq!(
        client.get(&on_first).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Redis forgets an opened link once it would be refused as expired.
    let redis = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cb:links:used:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=600).contains(&ttl), "{key}: {ttl}");
    }
    for app in apps {
        app.stop().await.unwrap();
    }
}
