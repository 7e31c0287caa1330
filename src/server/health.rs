//! `GET /metrics` and what readiness asks of the shared parts.

use super::admin::admin_only;
use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// How long readiness waits for each shared part's PING. Short: a load
/// balancer probes often, and a Redis this slow cannot serve calls either.
pub const READY_TIMEOUT: Duration = Duration::from_millis(500);

/// The Prometheus text format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: every metric in Prometheus text format. Open by
/// default (no label carries a caller's data); behind the admin token with
/// `--metrics-auth`.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.metrics_auth {
        if let Err(e) = admin_only(&state, &headers) {
            return e.into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        crate::observe::metrics::render(),
    )
        .into_response()
}

/// A part that is not ready, as `/readyz` names it.
#[derive(Debug, Serialize)]
pub(super) struct NotReady {
    check: &'static str,
    detail: &'static str,
}

/// The shared parts that do not answer now (empty when all do). The
/// ledger and the store are asked at once, each bounded by
/// [`READY_TIMEOUT`]; what went wrong is logged, not answered.
pub(super) async fn not_ready(state: &AppState) -> Vec<NotReady> {
    let deps = &state.deps;
    let (ledger, store) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, deps.ledger.ping()),
        tokio::time::timeout(READY_TIMEOUT, deps.store.ping()),
    );
    let mut out = Vec::new();
    match ledger {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the ledger does not answer");
            out.push(NotReady {
                check: "ledger",
                detail: "the ledger (Redis) does not answer",
            });
        }
        Err(_) => out.push(NotReady {
            check: "ledger",
            detail: "the ledger (Redis) did not answer in time",
        }),
    }
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store does not answer");
            out.push(NotReady {
                check: "store",
                detail: "the connection store (Redis) does not answer",
            });
        }
        Err(_) => out.push(NotReady {
            check: "store",
            detail: "the connection store (Redis) did not answer in time",
        }),
    }
    out
}
