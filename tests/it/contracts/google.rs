//! Google Calendar API v3 as its discovery document describes it
//! (`tests/contracts/google/calendar-v3.discovery.json`): each recorded
//! request is matched to a method by HTTP method and path template; its
//! query parameters are checked against the method's and the API's
//! `parameters` (known, `location`, type, `minimum`/`maximum`, `enum`,
//! `required`, repeated), its body against the method's `request` schema
//! (known fields, types, formats, `annotations.required` for that method),
//! and the answer against the method's `response` schema (or nothing, for
//! a delete). Error answers are held to the error body Google documents
//! (developers.google.com/workspace/calendar/api/guides/errors), which the
//! discovery document does not describe.

use super::Exchange;
use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The path every method's `path` is relative to.
const SERVICE_PATH: &str = "/calendar/v3/";

pub fn discovery() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(include_str!(
            "../../contracts/google/calendar-v3.discovery.json"
        ))
        .expect("the kept discovery document is JSON")
    })
}

/// A method of the API: `calendar.events.insert` and its description.
pub struct Method<'a> {
    pub id: &'a str,
    pub http_method: &'a str,
    pub path: &'a str,
    pub desc: &'a Value,
}

/// Every method, from the nested `resources`.
pub fn methods() -> Vec<Method<'static>> {
    fn walk(resources: &'static Value, out: &mut Vec<Method<'static>>) {
        for resource in resources.as_object().into_iter().flatten().map(|(_, r)| r) {
            for (_, m) in resource
                .get("methods")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                out.push(Method {
                    id: m["id"].as_str().unwrap_or_default(),
                    http_method: m["httpMethod"].as_str().unwrap_or_default(),
                    path: m["path"].as_str().unwrap_or_default(),
                    desc: m,
                });
            }
            if let Some(nested) = resource.get("resources") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&discovery()["resources"], &mut out);
    out
}

/// The method a request calls: same HTTP method, same number of segments,
/// literal segments equal; the most literal match wins.
pub fn method_for(http_method: &str, path: &str) -> Option<Method<'static>> {
    let rel = path.strip_prefix(SERVICE_PATH)?;
    let segs: Vec<&str> = rel.split('/').collect();
    methods()
        .into_iter()
        .filter(|m| m.http_method == http_method)
        .filter_map(|m| {
            let tmpl: Vec<&str> = m.path.split('/').collect();
            if tmpl.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in tmpl.iter().zip(&segs) {
                if t.starts_with('{') && t.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if t == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, m))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, m)| m)
}

/// The violations of one exchange (empty when it holds to the contract).
pub fn check(x: &Exchange) -> Vec<String> {
    let mut out = Vec::new();
    let at = format!("{} {}", x.method, x.path);
    let Some(m) = method_for(&x.method, &x.path) else {
        out.push(format!("{at}: no method of the API has this path"));
        return out;
    };
    check_query(m.desc, &x.query, &mut |v| {
        out.push(format!("{at} ({}): {v}", m.id))
    });
    let mut push = |v: String| out.push(format!("{at} ({}): {v}", m.id));
    match (m.desc.get("request"), &x.request) {
        (Some(r), Some(body)) => check_value(body, r, "request", Some(m.id), &mut push),
        (Some(_), None) => push("request: the method takes a body and none was sent".into()),
        (None, Some(_)) => push("request: the method takes no body".into()),
        (None, None) => {}
    }
    if (200..300).contains(&x.status) {
        match (m.desc.get("response"), &x.response) {
            (Some(r), Some(body)) => check_value(body, r, "response", None, &mut push),
            (Some(_), None) => push(format!("response: {} without the body", x.status)),
            (None, Some(b)) => push(format!("response: the method answers no body, got {b}")),
            (None, None) => {}
        }
    } else {
        match &x.response {
            Some(body) => check_error(body, x.status, &mut push),
            None => push(format!(
                "response: {} without Google's error body",
                x.status
            )),
        }
    }
    out
}

/// Query parameters against the method's and the API's `parameters`.
pub fn check_query(method: &Value, query: &[(String, String)], push: &mut dyn FnMut(String)) {
    let own = method.get("parameters").and_then(Value::as_object);
    let global = discovery()["parameters"].as_object();
    let lookup = |name: &str| {
        own.and_then(|p| p.get(name))
            .or_else(|| global.and_then(|p| p.get(name)))
    };
    for (i, (name, value)) in query.iter().enumerate() {
        let Some(p) = lookup(name) else {
            push(format!("query: unknown parameter {name}"));
            continue;
        };
        if p["location"] != "query" {
            push(format!("query: {name} belongs in the {}", p["location"]));
        }
        let repeated = p.get("repeated").and_then(Value::as_bool) == Some(true);
        if !repeated && query[..i].iter().any(|(n, _)| n == name) {
            push(format!("query: {name} given twice"));
        }
        check_scalar(value, p, &format!("query {name}"), push);
    }
    for (name, p) in own.into_iter().flatten() {
        let required = p.get("required").and_then(Value::as_bool) == Some(true);
        if required && p["location"] == "query" && !query.iter().any(|(n, _)| n == name) {
            push(format!("query: required parameter {name} missing"));
        }
    }
}

/// A parameter's text against its type, range and enum.
fn check_scalar(value: &str, p: &Value, at: &str, push: &mut dyn FnMut(String)) {
    match p["type"].as_str() {
        Some("integer") => match value.parse::<i64>() {
            Ok(n) => {
                let bound = |k: &str| {
                    p.get(k)
                        .and_then(Value::as_str)
                        .and_then(|b| b.parse::<i64>().ok())
                };
                if bound("minimum").is_some_and(|min| n < min)
                    || bound("maximum").is_some_and(|max| n > max)
                {
                    push(format!(
                        "{at}: {n} outside [{}, {}]",
                        p["minimum"], p["maximum"]
                    ));
                }
            }
            Err(_) => push(format!("{at}: {value:?} is not an integer")),
        },
        Some("boolean") if !matches!(value, "true" | "false") => {
            push(format!("{at}: {value:?} is not a boolean"))
        }
        _ => {}
    }
    if let Some(allowed) = p.get("enum").and_then(Value::as_array) {
        if !allowed.iter().any(|a| a.as_str() == Some(value)) {
            push(format!(
                "{at}: {value:?} is not one of {}",
                Value::Array(allowed.clone())
            ));
        }
    }
    check_format(value, p, at, push);
}

fn check_format(value: &str, p: &Value, at: &str, push: &mut dyn FnMut(String)) {
    let ok = match p.get("format").and_then(Value::as_str) {
        Some("date-time") => DateTime::parse_from_rfc3339(value).is_ok(),
        Some("date") => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
        Some("int64") => value.parse::<i64>().is_ok(),
        _ => true,
    };
    if !ok {
        push(format!("{at}: {value:?} is not a {}", p["format"]));
    }
}

/// A JSON value against a schema (a `$ref` or an inline one). `method`
/// names the method whose `annotations.required` apply (request bodies).
pub fn check_value(
    v: &Value,
    schema: &Value,
    at: &str,
    method: Option<&str>,
    push: &mut dyn FnMut(String),
) {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
        match discovery()["schemas"].get(name) {
            Some(s) => check_value(v, s, at, method, push),
            None => push(format!("{at}: schema {name} is not in the document")),
        }
        return;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => match v.as_object() {
            Some(obj) => check_object(obj, schema, at, method, push),
            None => push(format!("{at}: expected an object, got {v}")),
        },
        Some("array") => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, &schema["items"], &format!("{at}[{i}]"), method, push);
                }
            }
            None => push(format!("{at}: expected an array, got {v}")),
        },
        Some("string") => match v.as_str() {
            Some(s) => {
                if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
                    if !allowed.iter().any(|a| a.as_str() == Some(s)) {
                        push(format!(
                            "{at}: {s:?} is not one of {}",
                            Value::Array(allowed.clone())
                        ));
                    }
                }
                check_format(s, schema, at, push);
            }
            None => push(format!("{at}: expected a string, got {v}")),
        },
        Some("integer") => {
            let fits = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                _ => v.as_i64().is_some(),
            };
            if !fits {
                push(format!(
                    "{at}: expected an integer ({}), got {v}",
                    schema["format"]
                ));
            }
        }
        Some("boolean") if !v.is_boolean() => push(format!("{at}: expected a boolean, got {v}")),
        Some("number") if !v.is_number() => push(format!("{at}: expected a number, got {v}")),
        _ => {}
    }
}

fn check_object(
    obj: &Map<String, Value>,
    schema: &Value,
    at: &str,
    method: Option<&str>,
    push: &mut dyn FnMut(String),
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let extra = schema.get("additionalProperties");
    for (k, v) in obj {
        match (props.and_then(|p| p.get(k)), extra) {
            (Some(p), _) => check_value(v, p, &format!("{at}.{k}"), method, push),
            (None, Some(e)) => check_value(v, e, &format!("{at}.{k}"), method, push),
            (None, None) => push(format!("{at}: unknown field {k}")),
        }
    }
    let Some(method) = method else { return };
    for (k, p) in props.into_iter().flatten() {
        let required = p
            .pointer("/annotations/required")
            .and_then(Value::as_array)
            .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(method)));
        if required && !obj.contains_key(k) {
            push(format!("{at}: {k} is required by {method}"));
        }
    }
}

/// Google's error body: `{"error": {"code", "message", "errors": [{"domain",
/// "reason", "message", "location"?, "locationType"?}], "status"?}}`, its
/// `code` the HTTP status.
pub fn check_error(body: &Value, status: u16, push: &mut dyn FnMut(String)) {
    let Some(err) = body.get("error").and_then(Value::as_object) else {
        push(format!("error {status}: no error object in {body}"));
        return;
    };
    if body.as_object().map_or(0, Map::len) != 1 {
        push(format!("error {status}: fields beside error in {body}"));
    }
    if err.get("code").and_then(Value::as_u64) != Some(u64::from(status)) {
        push(format!(
            "error {status}: code {:?} is not the status",
            err.get("code")
        ));
    }
    if !err.get("message").is_some_and(Value::is_string) {
        push(format!("error {status}: no message"));
    }
    for (k, _) in err {
        if !matches!(k.as_str(), "code" | "message" | "errors" | "status") {
            push(format!("error {status}: unknown field error.{k}"));
        }
    }
    let items = err.get("errors").and_then(Value::as_array);
    if items.is_none_or(|i| i.is_empty()) {
        push(format!("error {status}: no errors[] with a reason"));
    }
    for item in items.into_iter().flatten() {
        for k in ["domain", "reason", "message"] {
            if !item.get(k).is_some_and(Value::is_string) {
                push(format!("error {status}: errors[] item without {k}: {item}"));
            }
        }
        for (k, _) in item.as_object().into_iter().flatten() {
            if !matches!(
                k.as_str(),
                "domain" | "reason" | "message" | "location" | "locationType"
            ) {
                push(format!("error {status}: unknown field errors[].{k}"));
            }
        }
    }
}
