//! Headers every answer carries, whatever route or error produced it.
//!
//! - `Cache-Control: no-store`: admin answers hold calendar and booking
//!   data and OAuth pages follow a one-time code; nothing callbook says is
//!   worth a cached copy on a shared proxy. A route that wants caching may
//!   set its own (none does).
//! - `X-Content-Type-Options: nosniff`: a browser must not read a JSON
//!   error or a plain-text OAuth page as HTML or script.
//! - `Referrer-Policy: no-referrer`: the OAuth callback's URL carries a
//!   code and state; a link followed from that page must not leak them.

use axum::http::header::{CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Router;

/// The same headers as raw HTTP/1.1 lines, for the answers written before
/// a request is parsed (connection refusals).
pub(crate) const RAW: &str =
    "cache-control: no-store\r\nx-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n";

/// Wraps every route, the fallback and every rejection of `router`.
pub(crate) fn harden(router: Router) -> Router {
    router.layer(axum::middleware::map_response(secure))
}

async fn secure(mut answer: Response) -> Response {
    secure_headers(answer.headers_mut());
    answer
}

/// Sets the headers on an answer made outside the router.
pub(crate) fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
