//! The accept loop: hyper-util's connection builder (HTTP/1.1 with
//! upgrades, as `axum::serve` uses) behind the connection limits of
//! [`super::limits`].
//!
//! `axum::serve` sets no header timeout, caps nothing and sleeps a whole
//! second on every accept error, so a few hundred half-sent requests ran
//! the process out of file descriptors and every call and health check
//! with it. Here:
//!
//! - over the global or the per-client cap, a connection is answered 503
//!   or 429 and closed, holding no place under the caps;
//! - a connection's first request head must arrive within the header
//!   timeout of its accept (hyper's own timeout only starts once the
//!   protocol is known, and a silent connection never gets there); later
//!   heads on a kept-alive connection are timed by hyper itself;
//! - an accept error (`EMFILE` at the open-file limit) backs off briefly
//!   and the loop goes on;
//! - the global cap is lowered at start to what the open-file limit
//!   allows, so the cap, not `EMFILE`, is what a flood meets.
//!
//! At shutdown the loop stops accepting, every connection finishes its
//! request in progress, and connections still open after
//! [`SHUTDOWN_GRACE`] are closed.

use super::headers;
use super::limits::{self, ClientSlot, Edge, Gate, Limits, Peer, Permit, Throttle};
use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long the loop waits after an accept error before trying again:
/// long enough not to spin at the open-file limit, short enough that a
/// freed descriptor is soon used.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Open files the process keeps for itself beside client connections
/// (listeners, Redis, provider connections, the state file, logs); the
/// global cap leaves them free.
const FD_RESERVE: usize = 64;

/// Refused connections answered properly at once, at most: each reads the
/// request (for up to [`REFUSAL_TIMEOUT`]) before answering it, as HTTP
/// clients expect. Past this many, during a flood, a refusal is answered
/// before its request is read and closed at once.
const MAX_REFUSING: usize = 32;

/// How long a refused connection may take to send its request head.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// How long connections may finish their requests once serving stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Lowers `max` to what the process's open-file limit leaves for client
/// connections; a cap above it would be met as `EMFILE` instead.
pub(crate) fn fit_open_file_limit(max: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return max;
    };
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_RESERVE + MAX_REFUSING)
        .max(1);
    if room < max {
        tracing::warn!(
            configured = max,
            open_file_limit = limit,
            lowered_to = room,
            "the connection cap is lowered to what the open-file limit allows (raise it with `ulimit -n`)"
        );
        return room;
    }
    max
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` until `stop` fires, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Arc<Limits>,
    stop: CancellationToken,
) {
    let gate = Gate::new(
        fit_open_file_limit(limits.max_connections),
        limits.max_connections_per_client,
    );
    let edge = Edge {
        limits: limits.clone(),
        gate: gate.clone(),
        refused: Arc::new(Throttle::new()),
    };
    let app = headers::harden(
        app.layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            limits::limit_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            limits::admit_proxied,
        )),
    );
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut refusals = Builder::new(TokioExecutor::new());
    refusals
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT)
        .keep_alive(false);
    let refusals = Arc::new(refusals);
    tracing::info!(
        max_connections = gate.max(),
        max_connections_per_client = gate.per_client(),
        header_timeout_s = limits.header_timeout.as_secs_f64(),
        start_timeout_s = limits.start_timeout.as_secs_f64(),
        idle_timeout_s = limits.idle_timeout.as_secs_f64(),
        trusted_proxies = limits.trusted_proxies.len(),
        "connection limits"
    );
    let conns = TaskTracker::new();
    let force = CancellationToken::new();
    let refusing = Arc::new(AtomicUsize::new(0));
    let busy = Throttle::new();
    let crowded = Throttle::new();
    let accept_errors = Throttle::new();
    loop {
        let (tcp, addr) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    if let Some(errors) = accept_errors.hit() {
                        tracing::error!(error = %e, errors, "accept failed; backing off");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            },
        };
        let ip = addr.ip().to_canonical();
        let Some(permit) = gate.open() else {
            if let Some(refused) = busy.hit() {
                tracing::warn!(
                    client = %ip,
                    cap = gate.max(),
                    refused,
                    reason = "too many open connections",
                    "connection refused (503)"
                );
            }
            refuse(tcp, Refusal::Busy, &refusals, &refusing);
            continue;
        };
        let proxied = limits.trusts(ip);
        let slot: Option<ClientSlot> = if proxied {
            None
        } else {
            match gate.client(ip) {
                Some(slot) => Some(slot),
                None => {
                    drop(permit);
                    if let Some(refused) = crowded.hit() {
                        tracing::warn!(
                            client = %ip,
                            cap = gate.per_client(),
                            refused,
                            reason = "too many connections from one client",
                            "connection refused (429)"
                        );
                    }
                    refuse(tcp, Refusal::Crowded, &refusals, &refusing);
                    continue;
                }
            }
        };
        // Replies are small frames a caller is waiting on: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let peer = Peer::new(ip, proxied, slot);
        conns.spawn(connection(
            builder.clone(),
            Counted {
                tcp,
                _permit: permit,
            },
            peer,
            app.clone(),
            limits.header_timeout,
            stop.clone(),
            force.clone(),
        ));
    }
    drop(listener);
    conns.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, conns.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = conns.len(),
            "connections still busy after the shutdown grace; closing them"
        );
        force.cancel();
        conns.wait().await;
    }
}

/// Errors of one connection that the listener itself survives.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one admitted connection: hyper with upgrades, the first-request
/// deadline, graceful shutdown.
async fn connection(
    builder: Arc<Builder<TokioExecutor>>,
    io: Counted,
    peer: Peer,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    force: CancellationToken,
) {
    let service = {
        let peer = peer.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            peer.saw_request();
            req.extensions_mut().insert(peer.clone());
            app.clone().oneshot(req.map(Body::new))
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let first_head = tokio::time::sleep(header_timeout);
    tokio::pin!(first_head);
    let (mut waiting, mut stopping) = (true, false);
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(peer = %peer.addr(), error = %e, "connection ended");
                }
                return;
            }
            _ = &mut first_head, if waiting => {
                waiting = false;
                if !peer.has_seen_request() {
                    tracing::debug!(peer = %peer.addr(), "no request within the header timeout; closed");
                    return;
                }
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = force.cancelled() => return,
        }
    }
}

/// Why a connection is refused before it is served.
#[derive(Clone, Copy)]
enum Refusal {
    /// The global cap is reached.
    Busy,
    /// The client's cap is reached.
    Crowded,
}

impl Refusal {
    fn says(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Refusal::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "this instance has too many open connections; try again or another instance",
            ),
            Refusal::Crowded => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "too many open connections from this client; close some and retry",
            ),
        }
    }

    fn body(self) -> String {
        let (_, code, message) = self.says();
        serde_json::json!({"error": code, "message": message}).to_string()
    }

    /// The answer to a request read in full.
    fn response(self) -> Response {
        let (status, _, _) = self.says();
        let mut answer = (
            status,
            [
                (CONTENT_TYPE, "application/json"),
                (CONNECTION, "close"),
                (RETRY_AFTER, "1"),
            ],
            self.body(),
        )
            .into_response();
        headers::secure_headers(answer.headers_mut());
        answer
    }

    /// The whole answer as raw HTTP/1.1, for one written before reading.
    fn raw(self) -> String {
        let (status, _, _) = self.says();
        let body = self.body();
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n{}\r\n{body}",
            body.len(),
            headers::RAW,
        )
    }
}

/// Answers a connection over a cap and closes it: after reading its
/// request head, while few refusals are under way; during a flood, at once.
fn refuse(
    tcp: TcpStream,
    why: Refusal,
    refusals: &Arc<Builder<TokioExecutor>>,
    refusing: &Arc<AtomicUsize>,
) {
    crate::observe::metrics::limit_rejected(match why {
        Refusal::Busy => "connections",
        Refusal::Crowded => "connections_per_client",
    });
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        // The answer fits in a fresh socket's send buffer. Closing on
        // unread bytes would send a reset, which may cost the client the
        // answer: take what has come, then close.
        let _ = tcp.try_write(why.raw().as_bytes());
        let mut sink = [0u8; 1024];
        while matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let (refusals, refusing) = (refusals.clone(), refusing.clone());
    tokio::spawn(async move {
        let service =
            hyper::service::service_fn(move |_req: hyper::Request<Incoming>| async move {
                Ok::<_, std::convert::Infallible>(why.response())
            });
        let conn = refusals.serve_connection(TokioIo::new(tcp), service);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, conn).await;
        refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// A client connection holding its place under the global cap for as long
/// as it is open, upgraded call sockets included (hyper hands this very
/// object to the WebSocket).
struct Counted {
    tcp: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
