//! `/v1/openapi.json` against the router it describes: every admin route
//! the router serves is documented with exactly the methods it answers,
//! every example in the document matches its schema, real answers match
//! the schemas they are documented with, and while Redis is down no admin
//! answer carries internal error text.

use crate::helpers::{admin, book, http, spawn_app};
use callbook::harness::{Harness, RedisServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

async fn document(app: &Harness) -> Value {
    let resp = http()
        .get(format!("http://{}/v1/openapi.json", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

/// The admin API's paths as the router has them: everything under `/v1/`
/// but the call socket.
fn routed_admin_paths() -> BTreeSet<String> {
    callbook::server::paths()
        .into_iter()
        .filter(|p| p.starts_with("/v1/") && *p != "/v1/calls")
        .map(str::to_string)
        .collect()
}

/// A path template with sample values in its parameters.
fn concrete(template: &str) -> String {
    template
        .replace("{user}", "alex")
        .replace("{provider}", "google")
        .replace("{id}", "demo")
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

#[tokio::test]
async fn every_admin_route_the_router_serves_is_documented_with_its_methods() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = routed_admin_paths();
    assert!(routed.len() >= 11, "{routed:?}");
    assert_eq!(routed, documented);

    // The methods each path answers (anything but 405, even without a
    // token) are the methods it documents.
    for path in &routed {
        let mut answered = BTreeSet::new();
        for m in METHODS {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let resp = http()
                .request(method, format!("http://{}{}", app.addr, concrete(path)))
                .send()
                .await
                .unwrap();
            if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
                answered.insert(m.to_string());
            }
        }
        let ops: BTreeSet<String> = doc["paths"][path]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.contains(&k.as_str()))
            .cloned()
            .collect();
        assert_eq!(answered, ops, "{path}");
        // Each operation names the admin token, but the browser's
        // callback and the document itself.
        for op in &ops {
            let security = &doc["paths"][path][op]["security"];
            let open = path == "/v1/oauth/callback" || path == "/v1/openapi.json";
            let named = security
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("admin_token").is_some()));
            assert_eq!(named, !open, "{op} {path}: {security}");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"],
        json!({"type": "http", "scheme": "bearer", "description": "CALLBOOK_ADMIN_TOKEN"})
    );
    app.stop().await.unwrap();
}

/// A validator for `schema`, resolving `#/components/…` in `doc`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = match schema {
        Value::Object(o) => o.clone(),
        other => {
            let mut m = Map::new();
            m.insert("allOf".into(), json!([other]));
            m
        }
    };
    root.insert("components".into(), doc["components"].clone());
    jsonschema::validator_for(&Value::Object(root)).unwrap()
}

fn assert_valid(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{instance:#}");
}

/// Every schema node with `examples` inside `node`, with its pointer.
fn schemas_with_examples<'a>(node: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match node {
        Value::Object(o) => {
            if o.get("examples").is_some_and(Value::is_array) || o.contains_key("example") {
                out.push((at.clone(), node));
            }
            for (k, v) in o {
                schemas_with_examples(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                schemas_with_examples(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_documented_example_validates_against_its_schema() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut checked = 0;
    // Examples on schemas (components and anything nested in them).
    let mut nodes = Vec::new();
    schemas_with_examples(
        &doc["components"]["schemas"],
        "#/components/schemas".into(),
        &mut nodes,
    );
    for (at, node) in &nodes {
        let mut schema = (*node).clone();
        let examples: Vec<Value> = match schema.as_object_mut() {
            Some(o) => {
                let mut ex = o
                    .remove("examples")
                    .and_then(|e| e.as_array().cloned())
                    .unwrap_or_default();
                ex.extend(o.remove("example"));
                ex
            }
            None => continue,
        };
        for e in &examples {
            assert_valid(&doc, &schema, e, at);
            checked += 1;
        }
    }
    // Examples on request and response bodies.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut bodies: Vec<(String, &Value)> = Vec::new();
            if let Some(content) = op["requestBody"]["content"].as_object() {
                bodies.extend(content.values().map(|c| ("request".to_string(), c)));
            }
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                for c in r["content"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, c)| c)
                {
                    bodies.push((status.clone(), c));
                }
            }
            for (what, media) in bodies {
                let mut examples: Vec<Value> = media.get("example").cloned().into_iter().collect();
                for e in media["examples"].as_object().into_iter().flatten() {
                    examples.push(e.1["value"].clone());
                }
                for e in &examples {
                    assert_valid(
                        &doc,
                        &media["schema"],
                        e,
                        &format!("{method} {path} {what}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked >= 40,
        "only {checked} examples: the test is not looking"
    );
    app.stop().await.unwrap();
}

/// The schema documented for an answer; panics when the status is not
/// documented for the operation.
fn documented<'a>(doc: &'a Value, template: &str, method: &str, status: StatusCode) -> &'a Value {
    let responses = &doc["paths"][template][method]["responses"];
    let r = &responses[status.as_str()];
    assert!(
        r.is_object(),
        "{method} {template} answered {status}, which is not documented"
    );
    &r["content"]["application/json"]["schema"]
}

/// Calls the admin API and checks the answer against the document.
async fn conforms(
    app: &Harness,
    doc: &Value,
    method: &str,
    template: &str,
    concrete_path: &str,
    body: Option<Value>,
    expect: StatusCode,
) -> Value {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let (status, answer) = admin(app, m, concrete_path, body).await;
    assert_eq!(status, expect, "{method} {concrete_path}: {answer}");
    let schema = documented(doc, template, method, status);
    assert_valid(doc, schema, &answer, &format!("{method} {concrete_path}"));
    answer
}

#[tokio::test]
async fn real_answers_match_the_schemas_they_are_documented_with() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let booked = book(&app, "CA0000000000000000000000openapi01").await;
    assert_eq!(booked["booking"]["status"], "booked");
    let ok = StatusCode::OK;
    let cases: Vec<(&str, &str, String, Option<Value>, StatusCode)> = vec![
        (
            "get",
            "/v1/users/{user}/connections",
            "/v1/users/alex/connections".into(),
            None,
            ok,
        ),
        (
            "get",
            "/v1/users/{user}/connections",
            "/v1/users/nobody/connections".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "get",
            "/v1/users/{user}/connections/{provider}/calendars",
            "/v1/users/alex/connections/google/calendars".into(),
            None,
            ok,
        ),
        (
            "put",
            "/v1/users/{user}/connections/{provider}/calendar",
            "/v1/users/alex/connections/google/calendar".into(),
            Some(json!({"calendar_id": "primary"})),
            ok,
        ),
        (
            "put",
            "/v1/users/{user}/connections/{provider}/calendar",
            "/v1/users/alex/connections/google/calendar".into(),
            Some(json!({"calendar_id": "nope"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "put",
            "/v1/users/{user}/active_provider",
            "/v1/users/alex/active_provider".into(),
            Some(json!({"provider": "google"})),
            ok,
        ),
        (
            "put",
            "/v1/users/{user}/active_provider",
            "/v1/users/alex/active_provider".into(),
            Some(json!({"provider": "microsoft"})),
            StatusCode::NOT_FOUND,
        ),
        (
            "get",
            "/v1/campaigns/{id}",
            "/v1/campaigns/demo".into(),
            None,
            ok,
        ),
        (
            "get",
            "/v1/bookings",
            "/v1/bookings?call_sid=CA0000000000000000000000openapi01".into(),
            None,
            ok,
        ),
        (
            "get",
            "/v1/bookings",
            "/v1/bookings?call_sid=CA1&limit=0".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "get",
            "/v1/campaigns/{id}/bookings",
            "/v1/campaigns/demo/bookings?limit=5".into(),
            None,
            ok,
        ),
        (
            "get",
            "/v1/campaigns/{id}/diagnostics",
            "/v1/campaigns/demo/diagnostics".into(),
            None,
            ok,
        ),
        (
            "get",
            "/v1/campaigns/{id}/diagnostics",
            "/v1/campaigns/nope/diagnostics".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "post",
            "/v1/users/{user}/connections/{provider}",
            "/v1/users/alex/connections/microsoft".into(),
            None,
            ok,
        ),
        (
            "post",
            "/v1/users/{user}/connections/{provider}",
            "/v1/users/alex/connections/yahoo".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, template, path, body, status) in cases {
        conforms(&app, &doc, method, template, &path, body, status).await;
    }
    let bookings = conforms(
        &app,
        &doc,
        "get",
        "/v1/bookings",
        "/v1/bookings?call_sid=CA0000000000000000000000openapi01",
        None,
        ok,
    )
    .await;
    assert_eq!(bookings["bookings"][0]["status"], "booked");
    // The booking settings read back are what the PUT takes, and both
    // match the one schema.
    let campaign = conforms(
        &app,
        &doc,
        "get",
        "/v1/campaigns/{id}",
        "/v1/campaigns/demo",
        None,
        ok,
    )
    .await;
    let settings = campaign["booking"].clone();
    let request = &doc["paths"]["/v1/campaigns/{id}/booking"]["put"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_valid(
        &doc,
        request,
        &settings,
        "the booking settings as a request",
    );
    conforms(
        &app,
        &doc,
        "put",
        "/v1/campaigns/{id}/booking",
        "/v1/campaigns/demo/booking",
        Some(settings),
        ok,
    )
    .await;
    conforms(
        &app,
        &doc,
        "put",
        "/v1/campaigns/{id}/booking",
        "/v1/campaigns/demo/booking",
        Some(json!({"rules": {}})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Unauthorised and disconnect last: they change nothing the others need.
    let (status, body) = admin(
        &app,
        Method::DELETE,
        "/v1/users/alex/connections/google",
        None,
    )
    .await;
    assert_eq!(status, ok);
    assert_valid(
        &doc,
        documented(
            &doc,
            "/v1/users/{user}/connections/{provider}",
            "delete",
            status,
        ),
        &body,
        "disconnect",
    );
    let resp = http()
        .get(format!("http://{}/v1/campaigns/demo", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_valid(
        &doc,
        documented(&doc, "/v1/campaigns/{id}", "get", StatusCode::UNAUTHORIZED),
        &body,
        "401",
    );
    app.stop().await.unwrap();
}

/// Text that would mean an error's internals reached an answer.
const INTERNALS: &[&str] = &[
    "os error",
    "connection refused",
    "redis",
    "ioerror",
    "io error",
    "broken pipe",
    "unavailable:",
    "response was",
    "(os",
];

/// A valid body for each operation that takes one.
fn body_for(template: &str) -> Option<Value> {
    match template {
        "/v1/users/{user}/connections/{provider}/calendar" => {
            Some(json!({"calendar_id": "primary"}))
        }
        "/v1/users/{user}/active_provider" => Some(json!({"provider": "google"})),
        "/v1/campaigns/{id}/booking" => Some(json!({
            "rules": {"timezone": "America/New_York", "length_minutes": 30,
                      "window": {"days": ["mon"], "start": "09:00", "end": "17:00"}, "look_ahead_days": 7},
            "meeting": {"type": "video"}
        })),
        _ => None,
    }
}

/// A query that gets past the parameter checks.
fn query_for(template: &str) -> &'static str {
    match template {
        "/v1/bookings" => "?call_sid=CA0000000000000000000000redisdown",
        "/v1/oauth/callback" => "?state=some-state&code=some-code",
        _ => "",
    }
}

#[tokio::test]
async fn while_redis_is_down_no_admin_answer_carries_internal_error_text() {
    let mut server = RedisServer::start().await.unwrap();
    let app = crate::metrics::redis_app(&server, "cb:leak:").await;
    let doc = document(&app).await;
    server.kill();
    let mut unavailable = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = format!(
                "http://{}{}{}",
                app.addr,
                concrete(template),
                query_for(template)
            );
            let mut req = http().request(m, url).bearer_auth(&app.admin_token);
            if let Some(b) = body_for(template) {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let json = resp.headers().get("content-type").is_some_and(|c| {
                c.to_str()
                    .unwrap_or_default()
                    .starts_with("application/json")
            });
            let text = resp.text().await.unwrap();
            let lower = text.to_lowercase();
            for internal in INTERNALS {
                assert!(
                    !lower.contains(internal),
                    "{method} {template} ({status}) says {internal:?}: {text}"
                );
            }
            if template == "/v1/openapi.json" {
                continue;
            }
            assert!(
                doc["paths"][template][method]["responses"][status.as_str()].is_object(),
                "{method} {template} answered {status}, which is not documented"
            );
            if status == StatusCode::SERVICE_UNAVAILABLE {
                unavailable += 1;
            }
            if json && !status.is_success() {
                let body: Value = serde_json::from_str(&text).unwrap();
                let keys: BTreeSet<&str> = body
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, BTreeSet::from(["error", "message"]), "{text}");
                assert_valid(
                    &doc,
                    documented(&doc, template, method, status),
                    &body,
                    template,
                );
            }
        }
    }
    // Every operation that needs Redis said it is unavailable.
    assert!(unavailable >= 10, "only {unavailable} answered 503");
    app.stop().await.unwrap();
}
