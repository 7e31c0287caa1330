//! Attacks on the port, over real sockets: half-sent requests past the
//! caps (against a real `callbook serve` with a lowered open-file limit,
//! as the attack was measured), headers dripped slowly, silent
//! connections, a socket that never sends `start`, a started call gone
//! silent, and a client that never reads. While each runs, a legitimate
//! call books; each attacker is closed within its timeout. Then the edge:
//! start-up refusals of weak tokens, the bearer scheme in any case, the
//! headers every answer carries, the body limit and the trusted proxy.

use crate::helpers::{http, spawn_app, to_proposal, tuesday_morning};
use callbook::clock::Clock;
use callbook::harness::{frames, CallClient, Emulators, Harness, Options};
use callbook::ledger::MemoryLedger;
use callbook::server::limits::Limits;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "pipeline-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789-abcdef";

/// Slack on every "closed within" bound: the machine is shared and busy.
const SLACK: Duration = Duration::from_secs(10);

/// A real `callbook serve` under `ulimit -n open_files`, logging to a file.
struct Served {
    child: std::process::Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Served {
    async fn start(open_files: u32, extra: &[&str]) -> Served {
        let listen = crate::helpers::free_listen_addr();
        let log =
            std::env::temp_dir().join(format!("callbook-limits-{}.jsonl", uuid::Uuid::new_v4()));
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_callbook"))
            .args(["serve", "--emulator", "--listen", &listen])
            .args(["--auth-token", TOKEN, "--admin-token", ADMIN_TOKEN])
            .args(extra)
            .env("RUST_LOG", "callbook=info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            addr: listen.parse().unwrap(),
            log,
        };
        for _ in 0..400 {
            if reqwest::get(format!("http://{}/healthz", served.addr))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("callbook serve did not start");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A TCP connection to `addr` from `from`, another loopback address: one
/// attacker, apart from the legitimate pipeline on 127.0.0.1.
async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// What became of an attacker's connection: the first bytes the server
/// sent, and how long after `since` the server closed it.
struct Fate {
    answer: String,
    lived: Duration,
}

/// Reads until the server closes the connection (or `limit` passes).
async fn fate(mut tcp: TcpStream, since: Instant, limit: Duration) -> Fate {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection past {limit:?}"
    );
    Fate {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        lived: since.elapsed(),
    }
}

fn params() -> Value {
    json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"})
}

/// A legitimate call on `addr` from 127.0.0.1, started.
async fn start(addr: SocketAddr, token: &str, sid: &str) -> CallClient {
    let mut c = CallClient::connect(addr, Some(token)).await.unwrap();
    c.send(&frames::start(sid, params())).await.unwrap();
    c.settle().await.unwrap();
    c
}

/// Drives a started call to a booking, as a caller saying yes does, and
/// hangs up.
async fn book_on(mut c: CallClient, sid: &str) {
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        got.iter().any(|f| f["booking"]["status"] == "booked"),
        "{got:?}"
    );
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
}

async fn health(addr: SocketAddr) -> reqwest::StatusCode {
    http()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// A request head cut off before its end.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: callbook\r\nX-Padding: ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_from_one_client_past_its_cap_get_429_and_a_call_still_books() {
    // As measured: fd limit 1,024, 1,100 half-sent requests.
    let timeout = Duration::from_secs(5);
    let served = Served::start(1024, &["--header-timeout-seconds", "5"]).await;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let since = Instant::now();
    let mut fates = Vec::new();
    for _ in 0..1100 {
        let mut tcp = connect_from(attacker, served.addr).await;
        let _ = tcp.write_all(HALF_SENT).await;
        fates.push(tokio::spawn(fate(tcp, since, timeout + SLACK)));
    }
    // While they are held: health answers and a call books.
    assert_eq!(health(served.addr).await, 200);
    let sid = "CA00000000000000000000000limits001";
    book_on(start(served.addr, TOKEN, sid).await, sid).await;
    let mut refused = 0;
    let mut longest = Duration::ZERO;
    for f in fates {
        let f = f.await.unwrap();
        if f.answer.starts_with("HTTP/1.1 429") {
            refused += 1;
            assert!(
                f.answer.contains("\"error\":\"too_many_connections\""),
                "{}",
                f.answer
            );
            assert!(
                f.answer.contains("x-content-type-options: nosniff"),
                "{}",
                f.answer
            );
        } else {
            // Admitted (64), or refused while waiting for the rest of its
            // head: closed at its timeout without an answer.
            assert_eq!(f.answer, "");
        }
        longest = longest.max(f.lived);
    }
    eprintln!("1,100 half-sent requests: {refused} answered 429 at once; the last attacker socket closed after {longest:?}");
    assert!(refused >= 800, "{refused}");
    assert_eq!(health(served.addr).await, 200);
    let log = served.log();
    assert!(
        log.contains("too many connections from one client"),
        "{log}"
    );
    assert!(!log.contains(TOKEN) && !log.contains(ADMIN_TOKEN));
    assert!(!log.contains("Too many open files"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_from_many_clients_meet_the_global_cap_and_live_calls_go_on() {
    // 256 open files leave room for 160 connections; 20 clients send 60
    // half-sent requests each (under their own cap), 1,200 in all.
    let timeout = Duration::from_secs(5);
    let served = Served::start(256, &["--header-timeout-seconds", "5"]).await;
    let sid = "CA00000000000000000000000limits002";
    let call = start(served.addr, TOKEN, sid).await;
    let since = Instant::now();
    let mut fates = Vec::new();
    for i in 0..1200u32 {
        let from = Ipv4Addr::new(127, 0, 1, 10 + u8::try_from(i % 20).unwrap());
        let mut tcp = connect_from(from, served.addr).await;
        let _ = tcp.write_all(HALF_SENT).await;
        fates.push(tokio::spawn(fate(tcp, since, timeout + SLACK)));
    }
    // The full instance says so to a newcomer, clearly...
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: callbook\r\n\r\n")
        .await
        .unwrap();
    let busy = read_all(&mut tcp).await;
    assert!(
        busy.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{busy}"
    );
    assert!(busy.contains("cache-control: no-store"), "{busy}");
    assert!(busy.contains("\"error\":\"busy\""), "{busy}");
    // ...while the call it already has books.
    book_on(call, sid).await;
    let mut refused = 0;
    let mut longest = Duration::ZERO;
    for f in fates {
        let f = f.await.unwrap();
        refused += usize::from(f.answer.starts_with("HTTP/1.1 503"));
        longest = longest.max(f.lived);
    }
    eprintln!("1,200 half-sent requests from 20 clients: {refused} answered 503 at once; the last attacker socket closed after {longest:?}");
    assert!(refused >= 800, "{refused}");
    // Once the attackers' time is up, newcomers are served again.
    assert_eq!(health(served.addr).await, 200);
    let sid = "CA00000000000000000000000limits003";
    book_on(start(served.addr, TOKEN, sid).await, sid).await;
    let log = served.log();
    assert!(log.contains("lowered_to"), "{log}");
    assert!(log.contains("too many open connections"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
}

/// An in-process server with `limits`.
async fn app_with(limits: Limits) -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators,
        Arc::new(MemoryLedger::new()),
        Arc::new(prov.into_store()),
        Options {
            limits: Some(limits),
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

/// Starts and books a call on `app`, as the pipeline on 127.0.0.1.
async fn books(app: &Harness, sid: &str) {
    book_on(start(app.addr, &app.token, sid).await, sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_dripped_slowly_are_cut_off_at_the_header_timeout_and_a_call_still_books() {
    let timeout = Duration::from_secs(2);
    let app = app_with(Limits {
        header_timeout: timeout,
        ..Limits::default()
    })
    .await;
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let since = Instant::now();
    let mut drips = Vec::new();
    for _ in 0..20 {
        let tcp = connect_from(attacker, app.addr).await;
        drips.push(tokio::spawn(async move {
            let (mut rx, mut tx) = tcp.into_split();
            let dripping = async {
                // A head that never ends: one long header, byte by byte.
                for byte in HALF_SENT.iter().chain(std::iter::repeat(&b'a')) {
                    if tx.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            };
            let mut seen = Vec::new();
            let closed = async {
                let _ = rx.read_to_end(&mut seen).await;
            };
            tokio::time::timeout(timeout + SLACK, async {
                tokio::select! { _ = dripping => {}, _ = closed => {} }
            })
            .await
            .expect("a dripping client kept its connection");
            since.elapsed()
        }));
    }
    books(&app, "CA00000000000000000000000limits004").await;
    let mut longest = Duration::ZERO;
    for d in drips {
        longest = longest.max(d.await.unwrap());
    }
    eprintln!("headers dripped at 4 bytes/s: the last connection closed after {longest:?} (timeout {timeout:?})");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_at_the_header_timeout_and_a_call_still_books() {
    let timeout = Duration::from_secs(2);
    let app = app_with(Limits {
        header_timeout: timeout,
        ..Limits::default()
    })
    .await;
    let attacker = Ipv4Addr::new(127, 0, 0, 4);
    let since = Instant::now();
    let mut fates = Vec::new();
    for _ in 0..50 {
        let tcp = connect_from(attacker, app.addr).await;
        fates.push(tokio::spawn(fate(tcp, since, timeout + SLACK)));
    }
    books(&app, "CA00000000000000000000000limits005").await;
    let mut longest = Duration::ZERO;
    for f in fates {
        let f = f.await.unwrap();
        assert_eq!(f.answer, "", "a silent connection is closed without a word");
        longest = longest.max(f.lived);
    }
    eprintln!("50 silent connections: the last closed after {longest:?} (timeout {timeout:?})");
    // A kept-alive connection gone silent after its answer goes the same way.
    let mut tcp = connect_from(attacker, app.addr).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: callbook\r\n\r\n")
        .await
        .unwrap();
    let f = fate(tcp, Instant::now(), timeout + SLACK).await;
    assert!(f.answer.starts_with("HTTP/1.1 200"), "{}", f.answer);
    app.stop().await.unwrap();
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A call socket with the pipeline's token, from another address.
async fn call_socket(addr: SocketAddr, token: &str) -> Socket {
    let mut req = format!("ws://{addr}/v1/calls")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Reads a socket to its end: the text frames, the close frame's code and
/// reason, and how long after `since` it came.
async fn close_of(
    ws: &mut Socket,
    since: Instant,
    limit: Duration,
) -> (Vec<Value>, Option<(u16, String)>, Duration) {
    let mut frames = Vec::new();
    let close = tokio::time::timeout(limit, async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(t)) => frames.push(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(f)) => {
                    return f.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the server kept the socket open");
    (frames, close, since.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_start_gets_an_error_and_1008_and_a_call_still_books() {
    let timeout = Duration::from_secs(2);
    let app = app_with(Limits {
        start_timeout: timeout,
        ..Limits::default()
    })
    .await;
    let since = Instant::now();
    let mut idlers = Vec::new();
    for _ in 0..10 {
        let mut ws = call_socket(app.addr, &app.token).await;
        idlers.push(tokio::spawn(async move {
            // `connected` and pings do not stand in for `start`.
            ws.send(Message::Text(frames::connected().to_string().into()))
                .await
                .unwrap();
            let (mut tx, mut rx) = ws.split();
            let pinging = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
            };
            let ended = async {
                let mut frames = Vec::new();
                while let Some(Ok(msg)) = rx.next().await {
                    match msg {
                        Message::Text(t) => frames.push(serde_json::from_str::<Value>(&t).unwrap()),
                        Message::Close(f) => {
                            return (frames, f.map(|f| (u16::from(f.code), f.reason.to_string())));
                        }
                        _ => {}
                    }
                }
                (frames, None)
            };
            let (frames, close) = tokio::time::timeout(timeout + SLACK, async {
                tokio::select! {
                    _ = pinging => (Vec::new(), None),
                    ended = ended => ended,
                }
            })
            .await
            .expect("a socket without start stayed open");
            (frames, close, since.elapsed())
        }));
    }
    books(&app, "CA00000000000000000000000limits006").await;
    let mut longest = Duration::ZERO;
    for i in idlers {
        let (frames, close, lived) = i.await.unwrap();
        let error = frames
            .iter()
            .find(|f| f["event"] == "error")
            .expect("an error frame");
        assert_eq!(error["error"]["code"], "start_timeout", "{frames:?}");
        assert_eq!(close, Some((1008, "no start".to_string())));
        longest = longest.max(lived);
    }
    eprintln!("10 sockets without start: the last closed after {longest:?} (timeout {timeout:?})");
    // Operators see the refusals counted by the limit that made them.
    let page = crate::helpers::scrape(&app).await;
    assert!(
        crate::helpers::sample(
            &page,
            "callbook_limit_rejections_total",
            &[("kind", "start_timeout")]
        ) >= 10.0,
        "{page}"
    );
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_call_gone_silent_is_closed_at_the_idle_timeout_and_kept_for_a_resume() {
    let timeout = Duration::from_secs(2);
    let app = app_with(Limits {
        idle_timeout: timeout,
        ..Limits::default()
    })
    .await;
    let sid = "CA00000000000000000000000limits007";
    let mut ws = call_socket(app.addr, &app.token).await;
    ws.send(Message::Text(
        frames::start(sid, params()).to_string().into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text(frames::offer().to_string().into()))
        .await
        .unwrap();
    let since = Instant::now();
    let silent = tokio::spawn(async move { close_of(&mut ws, since, timeout + SLACK).await });
    // A quiet call that only pings is not idle.
    let mut quiet = call_socket(app.addr, &app.token).await;
    quiet
        .send(Message::Text(
            frames::start("CA00000000000000000000000limits008", params())
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let pinging = tokio::spawn(async move {
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            quiet.send(Message::Ping(Vec::new().into())).await.unwrap();
        }
        let sync = json!({"event": "sync", "sync": {"id": "still-there"}});
        quiet
            .send(Message::Text(sync.to_string().into()))
            .await
            .unwrap();
        while let Some(Ok(msg)) = quiet.next().await {
            if let Message::Text(t) = msg {
                if t.contains("still-there") {
                    return true;
                }
            }
        }
        false
    });
    // And a legitimate call books meanwhile.
    books(&app, "CA00000000000000000000000limits010").await;
    let (frames_seen, close, lived) = silent.await.unwrap();
    assert_eq!(close, Some((1008, "idle".to_string())), "{frames_seen:?}");
    assert!(frames_seen
        .iter()
        .any(|f| f["booking"]["status"] == "offered"));
    eprintln!("a silent started call: closed after {lived:?} (timeout {timeout:?})");
    assert!(pinging.await.unwrap(), "a call that pings stays open");
    // The silent call was kept: a resume takes it up where it stood.
    let mut again = CallClient::connect(app.addr, Some(&app.token))
        .await
        .unwrap();
    again.send(&frames::start(sid, params())).await.unwrap();
    let got = again.settle().await.unwrap();
    let resumed = got
        .iter()
        .find(|f| f["event"] == "resumed")
        .expect("resumed");
    assert_eq!(resumed["resumed"]["floor"], true, "{got:?}");
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_as_too_slow_and_its_call_kept_for_a_resume() {
    let app = spawn_app().await;
    let sid = "CA00000000000000000000000limits009";
    // A small receive window, and nobody reading it.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind((Ipv4Addr::new(127, 0, 0, 5), 0).into())
        .unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let mut req = format!("ws://{}/v1/calls", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.token).parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    let (mut tx, rx) = ws.split();
    tx.send(Message::Text(
        frames::start(sid, params()).to_string().into(),
    ))
    .await
    .unwrap();
    tx.send(Message::Text(frames::offer().to_string().into()))
        .await
        .unwrap();
    let since = Instant::now();
    let flood = tokio::spawn(async move {
        // Every sync asks for an answer that is never read.
        for i in 0..400_000u32 {
            let sync = json!({"event": "sync", "sync": {"id": format!("s{i}")}});
            if tx
                .send(Message::Text(sync.to_string().into()))
                .await
                .is_err()
            {
                return Some((i, since.elapsed()));
            }
            if since.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        None
    });
    // A legitimate call books meanwhile.
    books(&app, "CA00000000000000000000000limits011").await;
    let (sent, lived) = flood
        .await
        .unwrap()
        .expect("the server never closed a client that does not read");
    eprintln!("a client that never reads: closed after {lived:?}, {sent} syncs in");
    drop(rx);
    // Its call was kept, with everything it had said.
    let mut again = CallClient::connect(app.addr, Some(&app.token))
        .await
        .unwrap();
    again.send(&frames::start(sid, params())).await.unwrap();
    let got = again.settle().await.unwrap();
    assert!(got.iter().any(|f| f["event"] == "resumed"), "{got:?}");
    app.stop().await.unwrap();
}

#[test]
fn tokens_too_short_or_shared_are_refused_at_start() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callbook"))
            .args(["serve", "--emulator", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("CALLBOOK_ADMIN_TOKEN")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--auth-token", "short"]);
    assert!(
        !ok && err.contains("--auth-token") && err.contains("at least 16"),
        "{err}"
    );
    let (ok, err) = run(&["--auth-token", ""]);
    assert!(!ok && err.contains("--auth-token"), "{err}");
    let (ok, err) = run(&["--auth-token", TOKEN, "--admin-token", "x"]);
    assert!(
        !ok && err.contains("--admin-token") && err.contains("at least 16"),
        "{err}"
    );
    let (ok, err) = run(&["--auth-token", TOKEN, "--admin-token", TOKEN]);
    assert!(!ok && err.contains("must differ"), "{err}");
    assert!(!err.contains(TOKEN), "the token is never printed: {err}");
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let app = spawn_app().await;
    let mut req = format!("ws://{}/v1/calls", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("bearer {}", app.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"connected\""));
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let resp = http()
            .get(format!("http://{}/v1/campaigns/demo", app.addr))
            .header("authorization", format!("{scheme} {}", app.admin_token))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{scheme}");
    }
    let resp = http()
        .get(format!("http://{}/v1/campaigns/demo", app.addr))
        .header("authorization", format!("Basic {}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let base = format!("http://{}", app.addr);
    let answers = [
        http().get(format!("{base}/healthz")).send().await.unwrap(),
        http()
            .get(format!("{base}/v1/campaigns/demo"))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap(),
        http()
            .get(format!("{base}/v1/users/alex/connections"))
            .send()
            .await
            .unwrap(),
        http()
            .get(format!("{base}/v1/oauth/callback?code=x&state=forged"))
            .send()
            .await
            .unwrap(),
        http().get(format!("{base}/nowhere")).send().await.unwrap(),
    ];
    for resp in &answers {
        let h = resp.headers();
        assert_eq!(h["cache-control"], "no-store", "{}", resp.url());
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", resp.url());
        assert_eq!(h["referrer-policy"], "no-referrer", "{}", resp.url());
    }
    assert_eq!(answers[0].status(), 200);
    assert_eq!(answers[1].status(), 200);
    assert_eq!(answers[2].status(), 401);
    assert_eq!(answers[3].status(), 400);
    assert_eq!(answers[4].status(), 404);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_admin_body_over_the_limit_gets_413_with_error_and_message() {
    let app = spawn_app().await;
    let url = format!("http://{}/v1/campaigns/demo/booking", app.addr);
    let big = format!("{{\"padding\": \"{}\"}}", "a".repeat(100 * 1024));
    let resp = http()
        .put(&url)
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
    assert!(
        body["message"].as_str().unwrap().contains("65536"),
        "{body}"
    );
    // Sent in chunks, with no length given: refused all the same.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PUT /v1/campaigns/demo/booking HTTP/1.1\r\nHost: callbook\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.admin_token
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..20 {
        let chunk = "b".repeat(8 * 1024);
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if tcp.write_all(framed.as_bytes()).await.is_err() {
            break;
        }
    }
    let answer = read_all(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    app.stop().await.unwrap();
}

/// A request whose body never comes: it stays in progress, holding its
/// client's place.
async fn hanging_put(from: Ipv4Addr, addr: SocketAddr, forwarded_for: &str) -> TcpStream {
    let mut tcp = connect_from(from, addr).await;
    let head = format!(
        "PUT /v1/campaigns/demo/booking HTTP/1.1\r\nHost: callbook\r\nX-Forwarded-For: {forwarded_for}\r\nContent-Length: 10\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

async fn status_of(from: Ipv4Addr, addr: SocketAddr, forwarded_for: &str) -> String {
    let mut tcp = connect_from(from, addr).await;
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: callbook\r\nX-Forwarded-For: {forwarded_for}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let answer = read_all(&mut tcp).await;
    answer.lines().next().unwrap_or_default().to_string()
}

/// Everything the server sends until it closes (a reset ends it too).
async fn read_all(tcp: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_capped_not_the_proxy() {
    let proxy = Ipv4Addr::new(127, 0, 0, 1);
    let app = app_with(Limits {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        max_connections_per_client: 2,
        ..Limits::default()
    })
    .await;
    // The proxy holds more connections than one client may: not refused.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(hanging_put(proxy, app.addr, "203.0.113.7").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Client 203.0.113.7 has two requests in progress already (the third
    // was refused); another is refused, another client is served.
    assert_eq!(
        status_of(proxy, app.addr, "198.51.100.1, 203.0.113.7").await,
        "HTTP/1.1 429 Too Many Requests"
    );
    assert_eq!(
        status_of(proxy, app.addr, "203.0.113.8").await,
        "HTTP/1.1 200 OK"
    );
    // An untrusted peer's header is its own to write: ignored.
    assert_eq!(
        status_of(Ipv4Addr::new(127, 0, 0, 6), app.addr, "203.0.113.7").await,
        "HTTP/1.1 200 OK"
    );
    // The held requests end (their body never came): the client is
    // served again.
    drop(held);
    let mut served = false;
    for _ in 0..50 {
        if status_of(proxy, app.addr, "203.0.113.7").await == "HTTP/1.1 200 OK" {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served);
    app.stop().await.unwrap();
}

/// `callbook load` opens every call from loopback, one client address: it
/// measures more calls than the per-client cap allows one client (64)
/// rather than being refused with 429 past it.
#[tokio::test]
async fn load_runs_more_calls_than_one_clients_cap() {
    let report = callbook::load::turns(80, std::time::Duration::from_millis(1500))
        .await
        .expect("every call connects");
    assert_eq!(report["calls"], 80);
    assert_eq!(report["unanswered"], 0, "{report}");
}
