use callbook::clock::Clock;
use callbook::harness::{frames, CallClient, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use chrono::{DateTime, Utc};
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
