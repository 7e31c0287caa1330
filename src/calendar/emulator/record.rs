//! What crosses an emulator's wire, kept for tests that hold both sides to
//! the providers' published contracts: every API request the clients send
//! (method, path, query, `Prefer`, JSON body) and every answer the emulator
//! gives (status, JSON body).
//!
//! Only the calendar APIs are kept (`/calendar/v3/…`, `/v1.0/…`): the token
//! endpoints carry secrets and are not part of those contracts. Recording
//! is off until [`Recorder::start`]; a long run (the load generator, the
//! demo) keeps nothing.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Bodies larger than this are not kept (the emulators' answers are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request and the emulator's answer to it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exchange {
    pub method: String,
    /// The path as sent, percent-decoded per segment
    /// (`/calendar/v3/calendars/primary/events`).
    pub path: String,
    /// Query parameters in order, decoded.
    pub query: Vec<(String, String)>,
    /// The request's `Prefer` header (Graph's response preferences).
    pub prefer: Option<String>,
    /// The request body: JSON, or the raw text when it is not JSON.
    pub request: Option<Value>,
    pub status: u16,
    /// The answer's body: JSON, or the raw text when it is not JSON.
    pub response: Option<Value>,
}

/// The exchanges an emulator has seen since recording started; clones
/// share them.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    kept: Arc<Mutex<Option<Vec<Exchange>>>>,
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Exchange>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts keeping exchanges (those kept so far stay).
    pub fn start(&self) {
        self.lock().get_or_insert_with(Vec::new);
    }

    /// The exchanges kept so far, leaving the list empty (recording goes on).
    pub fn take(&self) -> Vec<Exchange> {
        self.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn on(&self) -> bool {
        self.lock().is_some()
    }

    fn keep(&self, exchange: Exchange) {
        if let Some(list) = self.lock().as_mut() {
            list.push(exchange);
        }
    }
}

fn body_value(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    )
}

fn is_api(path: &str) -> bool {
    path.starts_with("/calendar/v3/") || path.starts_with("/v1.0/")
}

/// The middleware: passes the request on, keeping it and its answer when
/// recording.
pub(crate) async fn layer(State(rec): State<Recorder>, req: Request, next: Next) -> Response {
    if !rec.on() || !is_api(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(req_bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts
        .uri
        .path()
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let prefer = parts
        .headers
        .get("prefer")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let method = parts.method.to_string();
    let request = body_value(&req_bytes);
    let resp = next
        .run(Request::from_parts(parts, Body::from(req_bytes)))
        .await;
    let (parts, body) = resp.into_parts();
    let Ok(resp_bytes) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    rec.keep(Exchange {
        method,
        path,
        query,
        prefer,
        request,
        status: parts.status.as_u16(),
        response: body_value(&resp_bytes),
    });
    Response::from_parts(parts, Body::from(resp_bytes))
}
