use crate::helpers::{spawn_app, start_call, to_proposal};
use callbook::harness::frames;
use serde_json::{json, Value};
use std::path::Path;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A validator for one direction: the schema with its root pointed at it.
fn validator(direction: &str) -> jsonschema::Validator {
    let mut s = schema();
    let obj = s.as_object_mut().unwrap();
    obj.remove("anyOf");
    obj.insert("$ref".into(), json!(format!("#/$defs/{direction}")));
    jsonschema::validator_for(&s).unwrap()
}

fn examples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/examples");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (
                name,
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_example_validates_against_the_schema() {
    let inbound = validator("inbound");
    let outbound = validator("outbound");
    let all = examples();
    assert!(all.len() >= 20);
    for (name, value) in &all {
        let v = if name.starts_with("in-") {
            &inbound
        } else {
            &outbound
        };
        if let Err(e) = v.validate(value) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn every_inbound_example_parses() {
    for (name, value) in examples().iter().filter(|(n, _)| n.starts_with("in-")) {
        callbook::protocol::parse(&value.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_schema_rejects_what_the_server_rejects() {
    let inbound = validator("inbound");
    assert!(!inbound.is_valid(&json!({"event": "transcript", "transcript": {"final": true}})));
    assert!(!inbound.is_valid(&json!({"event": "booking", "booking": {"action": "maybe"}})));
    let outbound = validator("outbound");
    assert!(!outbound.is_valid(&json!({"event": "booking", "booking": {"status": "booked"}})));
}

#[tokio::test]
async fn every_frame_of_a_real_call_matches_the_schema() {
    let app = spawn_app().await;
    let mut call = start_call(&app, "CA00000000000000000000000000schema").await;
    let mut seen = vec![call.hello.clone()];
    seen.extend(to_proposal(&mut call).await);
    call.send(&frames::transcript("yes")).await.unwrap();
    seen.extend(call.settle().await.unwrap());
    call.send_raw("{oops").await.unwrap();
    seen.extend(call.settle().await.unwrap());
    call.send(&frames::stop("CA00000000000000000000000000schema"))
        .await
        .unwrap();
    seen.extend(call.drain().await.unwrap());
    let outbound = validator("outbound");
    for f in &seen {
        if let Err(e) = outbound.validate(f) {
            panic!("{f}: {e}");
        }
    }
    let statuses: Vec<&str> = seen
        .iter()
        .filter_map(|f| f["booking"]["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["offered", "email_confirmed", "proposed", "booked", "done"]
    );
    app.stop().await.unwrap();
}
