//! What a client may hold open, and for how long.
//!
//! Anyone who can reach the port can open connections before showing a
//! token, so every limit here applies before authentication:
//!
//! - a global cap on open connections (call sockets included), so the
//!   process never runs out of file descriptors and keeps answering the
//!   calls and health checks it already has;
//! - a cap per client address on connections that are not (yet) an
//!   authenticated call socket, so one client cannot take the whole global
//!   cap with half-sent requests. A pipeline host running hundreds of calls
//!   is not held back by it: a call socket stops counting once its bearer
//!   token is checked;
//! - a time limit on a request's headers and body, on a call socket's wait
//!   for `start` and on a started call's silence (the last two are applied
//!   in `server::ws`);
//! - a limit on request bodies (the admin API's are small JSON documents).
//!
//! Behind a load balancer every connection comes from the balancer, so the
//! client is read from `X-Forwarded-For` (or a configured header), but only
//! when the peer is one of the `--trusted-proxy` addresses: the header is
//! anyone's to write otherwise. Proxied traffic is counted per request, as
//! the proxy, not the client, holds the connections.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Default for [`Limits::header_timeout`]: a client on a slow mobile link
/// sends a request head in well under a second.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::start_timeout`]: Twilio sends `start` right after
/// `connected`, as does every pipeline we know of.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::idle_timeout`]: a live call streams media every
/// 20 ms; a pipeline that sends only transcripts keeps its socket alive
/// with WebSocket pings (Python's `websockets` pings every 20 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Limits::max_connections`]; lowered at start to what the
/// process's open-file limit allows.
pub const MAX_CONNECTIONS: usize = 4096;
/// Default for [`Limits::max_connections_per_client`].
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// Default for [`Limits::max_body_bytes`]: the largest admin request, a
/// campaign's booking settings, is a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Default for [`Limits::body_timeout`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The header naming the client behind a trusted proxy, by default.
pub const CLIENT_IP_HEADER: &str = "x-forwarded-for";

/// How often a refusal of one kind is logged at most; the line says how
/// many were refused since the last one, so a flood is one line a second.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The server's limits on what a client may hold open, and for how long.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time allowed for a request's head: from the accept for the first
    /// request, and from the previous answer for the next ones on a
    /// kept-alive connection. A connection that sends nothing is closed
    /// after it too.
    pub header_timeout: Duration,
    /// Time allowed from the WebSocket upgrade to the `start` frame.
    pub start_timeout: Duration,
    /// Time a started call's socket may go without any frame (pings and
    /// pongs count) before it is closed; the call is kept for a resume.
    pub idle_timeout: Duration,
    /// Open connections at most, call sockets included; more get 503.
    pub max_connections: usize,
    /// Open connections at most from one client that are not an
    /// authenticated call socket; more get 429.
    pub max_connections_per_client: usize,
    /// Largest request body accepted; larger get 413.
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's body; slower get 408.
    pub body_timeout: Duration,
    /// Peers whose client header is believed (load balancers, proxies).
    pub trusted_proxies: Vec<Cidr>,
    /// The header that names the client when the peer is a trusted proxy.
    pub client_ip_header: HeaderName,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: HEADER_TIMEOUT,
            start_timeout: START_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
            max_body_bytes: MAX_BODY_BYTES,
            body_timeout: BODY_TIMEOUT,
            trusted_proxies: Vec::new(),
            client_ip_header: HeaderName::from_static(CLIENT_IP_HEADER),
        }
    }
}

impl Limits {
    /// Whether `ip`'s client header is believed.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    /// The client a request speaks for. For an untrusted peer, the peer.
    /// For a trusted proxy, the right-most address in the client header
    /// that is not itself a trusted proxy (each proxy appends the address
    /// it saw, so entries left of that are the client's to forge); the
    /// proxy itself when the header is missing or that entry unreadable.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all(&self.client_ip_header) {
            let Ok(value) = value.to_str() else {
                return peer;
            };
            hops.extend(value.split(',').map(str::trim));
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One entry of a client header: an address, possibly with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// An address block given to `--trusted-proxy`: `10.0.0.0/8`, `fd00::/8`,
/// or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A `--trusted-proxy` value that is not an address or address block.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or an address block like 10.0.0.0/8")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Counts open connections, overall and per client.
pub(crate) struct Gate {
    max: usize,
    per_client: usize,
    open: AtomicUsize,
    clients: Mutex<HashMap<IpAddr, usize>>,
}

impl Gate {
    pub(crate) fn new(max: usize, per_client: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max,
            per_client,
            open: AtomicUsize::new(0),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// A place among the open connections, or `None` at the cap.
    pub(crate) fn open(self: &Arc<Self>) -> Option<Permit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(self.clone()))
    }

    /// A place among `client`'s connections, or `None` at its cap.
    pub(crate) fn client(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = clients.entry(client).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            gate: self.clone(),
            client,
        })
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    pub(crate) fn per_client(&self) -> usize {
        self.per_client
    }
}

/// One open connection; counted until dropped.
pub(crate) struct Permit(Arc<Gate>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One of a client's connections (or, behind a proxy, requests); counted
/// until dropped.
pub(crate) struct ClientSlot {
    gate: Arc<Gate>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut clients = self.gate.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = clients.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

/// The connection a request came on, in every request's extensions.
#[derive(Clone)]
pub struct Peer(Arc<PeerInner>);

struct PeerInner {
    addr: IpAddr,
    /// The peer is a trusted proxy: its requests are counted per client.
    proxied: bool,
    /// The connection's place among its client's; none when proxied.
    slot: Mutex<Option<ClientSlot>>,
    /// A request head has arrived on this connection.
    seen_request: AtomicBool,
}

impl Peer {
    pub(crate) fn new(addr: IpAddr, proxied: bool, slot: Option<ClientSlot>) -> Peer {
        Peer(Arc::new(PeerInner {
            addr,
            proxied,
            slot: Mutex::new(slot),
            seen_request: AtomicBool::new(false),
        }))
    }

    /// The address the connection comes from (a proxy's, when proxied).
    pub fn addr(&self) -> IpAddr {
        self.0.addr
    }

    /// The connection passed the bearer check and becomes a call socket:
    /// it stops counting against its client's cap, so a pipeline host may
    /// run as many calls as the global cap allows.
    pub fn authenticated(&self) {
        let slot = self.0.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(slot);
    }

    pub(crate) fn saw_request(&self) {
        self.0.seen_request.store(true, Ordering::Release);
    }

    pub(crate) fn has_seen_request(&self) -> bool {
        self.0.seen_request.load(Ordering::Acquire)
    }
}

/// Rate-limits a log line: at most one per [`LOG_EVERY`], reporting how
/// many occurrences it stands for.
pub(crate) struct Throttle {
    last: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Throttle {
    pub(crate) fn new() -> Throttle {
        Throttle {
            last: Mutex::new(None),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence; `Some(n)` when a line is due, standing for
    /// the `n` occurrences since the previous one.
    pub(crate) fn hit(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::AcqRel);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(self.count.swap(0, Ordering::AcqRel))
    }
}

/// What the request-level limits need.
#[derive(Clone)]
pub(crate) struct Edge {
    pub(crate) limits: Arc<Limits>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) refused: Arc<Throttle>,
}

/// An `{error, message}` answer, as the admin API gives.
fn refusal(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// Counts a trusted proxy's request against the client it speaks for
/// while the request is handled (a call socket's until its bearer token
/// is checked); over the client's cap, 429.
pub(crate) async fn admit_proxied(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let Some(peer) = req.extensions().get::<Peer>().filter(|p| p.0.proxied) else {
        return next.run(req).await;
    };
    let client = edge.limits.client_of(peer.addr(), req.headers());
    let Some(slot) = edge.gate.client(client) else {
        if let Some(refused) = edge.refused.hit() {
            tracing::warn!(
                client = %client,
                proxy = %peer.addr(),
                cap = edge.gate.per_client(),
                refused,
                reason = "too many connections from one client",
                "request refused (429)"
            );
        }
        return refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            "too many requests from this client at once; close some and retry",
        );
    };
    let answer = next.run(req).await;
    drop(slot);
    answer
}

/// Reads the request body up front, at most `max_body_bytes` of it within
/// `body_timeout`, so handlers get it whole and a client cannot hold a
/// connection by sending a body slowly or endlessly. 413 and 408 are the
/// admin API's `{error, message}`.
pub(crate) async fn limit_body(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let limit = edge.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let (parts, body) = req.into_parts();
    let read = http_body_util::Limited::new(body, limit).collect();
    let bytes = match tokio::time::timeout(edge.limits.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return too_large(limit);
        }
        Ok(Err(_)) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                "the request body could not be read",
            );
        }
        Err(_) => {
            crate::observe::metrics::limit_rejected("body_timeout");
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time",
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The 413 answer, saying the limit in bytes.
fn too_large(limit: usize) -> Response {
    crate::observe::metrics::limit_rejected("body_too_large");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({
            "error": "body_too_large",
            "message": format!("the request body is over the limit of {limit} bytes"),
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn behind(proxies: &[&str]) -> Limits {
        Limits {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..Limits::default()
        }
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn address_blocks_match_their_addresses_only() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "v4-mapped is v4");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::1/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_forwarded_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let limits = behind(&["10.0.0.0/8"]);
        let h = forwarded(&["203.0.113.7"]);
        assert_eq!(limits.client_of(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(
            Limits::default().client_of(ip("10.0.0.2"), &h),
            ip("10.0.0.2")
        );
        assert_eq!(limits.client_of(ip("10.0.0.2"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy() {
        let limits = behind(&["10.0.0.0/8"]);
        let proxy = ip("10.0.0.2");
        // The left-most entries are whatever the client wrote.
        let h = forwarded(&["1.2.3.4, 203.0.113.7, 10.0.0.9"]);
        assert_eq!(limits.client_of(proxy, &h), ip("203.0.113.7"));
        // Several header lines read as one list, in order.
        let h = forwarded(&["1.2.3.4", "203.0.113.7:4711", "10.0.0.9"]);
        assert_eq!(limits.client_of(proxy, &h), ip("203.0.113.7"));
        // Garbage where the client should be: the last proxy seen.
        let h = forwarded(&["203.0.113.7, nonsense, 10.0.0.9"]);
        assert_eq!(limits.client_of(proxy, &h), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(limits.client_of(proxy, &HeaderMap::new()), proxy);
    }

    #[test]
    fn a_configured_header_names_the_client_instead() {
        let limits = Limits {
            client_ip_header: HeaderName::from_static("x-real-ip"),
            ..behind(&["127.0.0.1"])
        };
        let mut h = forwarded(&["1.2.3.4"]);
        h.insert("x-real-ip", HeaderValue::from_static("2001:db8::5"));
        assert_eq!(limits.client_of(ip("127.0.0.1"), &h), ip("2001:db8::5"));
    }

    #[test]
    fn the_gate_counts_connections_overall_and_per_client_until_dropped() {
        let gate = Gate::new(3, 2);
        let a = ip("192.0.2.1");
        let permits: Vec<_> = (0..3).map(|_| gate.open().unwrap()).collect();
        assert!(gate.open().is_none());
        drop(permits);
        assert!(gate.open().is_some());
        let s1 = gate.client(a).unwrap();
        let _s2 = gate.client(a).unwrap();
        assert!(gate.client(a).is_none());
        assert!(gate.client(ip("192.0.2.2")).is_some());
        drop(s1);
        assert!(gate.client(a).is_some());
    }

    #[test]
    fn an_authenticated_connection_stops_counting_against_its_client() {
        let gate = Gate::new(10, 1);
        let a = ip("192.0.2.1");
        let peer = Peer::new(a, false, gate.client(a));
        assert!(gate.client(a).is_none());
        peer.authenticated();
        assert!(gate.client(a).is_some());
    }
}
