use callbook::clock::Clock;
use callbook::harness::{frames, CallClient, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Tuesday 2026-12-01 10:00 New York.
pub fn tuesday_morning() -> DateTime<Utc> {
    "2026-12-01T15:00:00Z".parse().unwrap()
}

/// The embedded default config on a virtual clock.
pub async fn spawn_app() -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), |_| {})
        .await
        .unwrap()
}

/// Starts a call on the default campaign and returns after the start settled.
pub async fn start_call(app: &Harness, sid: &str) -> CallClient {
    let mut c = app.connect().await.unwrap();
    c.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    c.send(&frames::start(sid, params)).await.unwrap();
    c.settle().await.unwrap();
    c
}

/// Drives a call up to the first proposal; returns every frame on the way.
pub async fn to_proposal(c: &mut CallClient) -> Vec<Value> {
    c.send(&frames::offer()).await.unwrap();
    let mut seen = c.settle().await.unwrap();
    for text in ["yes", "jane at example dot com", "yes"] {
        c.send(&frames::transcript(text)).await.unwrap();
        seen.extend(c.settle().await.unwrap());
    }
    seen
}

pub fn of_kind<'a>(frames: &'a [Value], event: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["event"] == event).collect()
}

pub fn http() -> reqwest::Client {
    callbook::app::http_client().unwrap()
}

pub async fn admin(
    app: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http()
        .request(method, format!("http://{}{path}", app.addr))
        .bearer_auth(&app.admin_token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Runs the whole consent dance like an owner's browser: starts it on
/// `app` with `start` as the connect's body (whom it is for), follows the
/// provider's consent screen, and lands on the callback of `callback_on`
/// (another instance behind the same load balancer, or `app` itself).
pub async fn connect_via(
    app: &Harness,
    provider: &str,
    callback_on: &Harness,
    start: Option<Value>,
) -> (StatusCode, String) {
    let (status, page, _) = connect_as(app, provider, callback_on, start, None).await;
    (status, page)
}

/// [`connect_via`], with the person at the browser picking `choose` on the
/// provider's account chooser instead of the account the connect
/// pre-selected. Also returns the connect's answer.
pub async fn connect_as(
    app: &Harness,
    provider: &str,
    callback_on: &Harness,
    start: Option<Value>,
    choose: Option<&str>,
) -> (StatusCode, String, Value) {
    let (status, started) = admin(
        app,
        reqwest::Method::POST,
        &format!("/v1/users/alex/connections/{provider}"),
        start,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut url = reqwest::Url::parse(started["authorize_url"].as_str().unwrap()).unwrap();
    if let Some(account) = choose {
        url.query_pairs_mut()
            .append_pair(callbook::calendar::emulator::CHOOSE_ACCOUNT, account);
    }
    let consent = http().get(url).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::FOUND);
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&format!("http://{}/v1/oauth/callback?", app.addr)),
        "{back}"
    );
    let back = back.replace(&app.addr.to_string(), &callback_on.addr.to_string());
    let done = http().get(&back).send().await.unwrap();
    (done.status(), done.text().await.unwrap(), started)
}

/// Books a meeting on a fresh call and returns the booking frame.
pub async fn book(app: &Harness, sid: &str) -> Value {
    let mut c = start_call(app, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    got.into_iter()
        .find(|f| f["event"] == "booking")
        .expect("a booking frame")
}

/// The default config with its campaign renamed `campaign`, so a test's
/// metrics and diagnostics are its own even with other tests running in
/// the same process.
pub async fn spawn_campaign(campaign: &str) -> Harness {
    spawn_campaign_with(campaign, |_| {}).await
}

/// As [`spawn_campaign`], seeding the emulators first.
pub async fn spawn_campaign_with(
    campaign: &str,
    seed: impl FnOnce(&callbook::harness::Emulators),
) -> Harness {
    let prov = Provisioning::parse(&campaign_config(campaign)).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), seed)
        .await
        .unwrap()
}

/// The default provisioning file with its campaign renamed.
pub fn campaign_config(campaign: &str) -> String {
    DEFAULT.replace("\"id\": \"demo\"", &format!("\"id\": \"{campaign}\""))
}

/// Starts a call on `campaign`, from `phone`, and returns after the start
/// settled.
pub async fn start_call_on(app: &Harness, sid: &str, campaign: &str) -> CallClient {
    let mut c = app.connect().await.unwrap();
    c.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": campaign, "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    c.send(&frames::start(sid, params)).await.unwrap();
    c.settle().await.unwrap();
    c
}

/// The server's `/metrics` page.
pub async fn scrape(app: &Harness) -> String {
    http()
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `name` whose labels include every pair of
/// `labels` (summed when several match; 0 when none does).
pub fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// A loopback address with a port nothing listens on now, for a process
/// the test starts.
pub fn free_listen_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}
