//! `callbook load --twilio-rate`: what one call costs a server at the load
//! a deployment carries, measured next to a bare WebSocket server so the
//! ratio, not a figure of this machine, is what is read.
//!
//! Each server runs as a process of its own (this binary: `serve
//! --emulator`, or the bare server below), optionally pinned to one core,
//! and is measured from outside through `/proc/<pid>`. With
//! `emulator_process`, callbook serves against a `callbook emulator`
//! process instead, off the server's core, so the calendar's side of each
//! call's load is not counted as the server's.
//!
//! - **Idle memory per call:** resident memory before and after `idle`
//!   calls have connected and sent `connected` and `start` (and had their
//!   `sync` answered, so a call's setup is done), divided by the calls.
//! - **Streaming:** `calls` of them then send Twilio media frames every
//!   20 ms and a final transcript every 2 s, shaped as Twilio sends them.
//!   Server CPU (user + system, from `/proc/<pid>/stat`) over the window is
//!   divided by the frames received; each transcript's answer (its `turn`)
//!   is timed.
//! - **Burst (callbook only):** `burst` calls start at `burst_rate` a
//!   second, each sending `booking` `offer` right after `start`; the time
//!   from the offer to its first `say` is what a caller waits to hear.
//!
//! Runs alternate, bare then callbook, `rounds` times, so drift on a shared
//! machine falls on both. (Tooling: errors are `anyhow`.)

use anyhow::{anyhow, bail, Context};
use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The pipeline token the measured `serve` is started with.
const TOKEN: &str = "load-pipeline-token-0123456789";

/// Twilio sends a media frame every 20 ms.
const MEDIA_EVERY: Duration = Duration::from_millis(20);

/// A final transcript every 2 s: a caller's turn or a sentence of one.
const TRANSCRIPT_EVERY: Duration = Duration::from_secs(2);

/// Socket read buffer of each client (tungstenite's default is 128 KiB,
/// which 5,000 clients would not fit in).
const CLIENT_READ_BUFFER: usize = 4096;

/// Handshakes in progress at once while the idle calls connect (callbook
/// caps unauthenticated connections per client address).
const CONNECTING: usize = 32;

/// Small talk the agent answers: every transcript is understood and
/// answered with a `turn`, and none starts calendar work, so what is
/// measured is the streaming path, not the provider.
const SMALL_TALK: [&str; 4] = [
    "hi, what's this about?",
    "what's the weather like there?",
    "I see, tell me more about the product",
    "great, thanks",
];

/// 160 μ-law bytes of silence (20 ms at 8 kHz), base64: Twilio's payload.
fn silence_payload() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([0xFFu8; 160])
}

/// What `callbook load --twilio-rate` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls streaming media and transcripts.
    pub calls: usize,
    /// Calls connected for the memory figure (the streaming ones among
    /// them); at least `calls`.
    pub idle: usize,
    /// How long the streaming lasts.
    pub seconds: u64,
    /// Bare-then-callbook rounds.
    pub rounds: usize,
    /// Calls started in the burst (0: none).
    pub burst: usize,
    /// Call starts per second in the burst.
    pub burst_rate: u32,
    /// The callbook binary to measure (this one by default); the bare
    /// server is always this binary's.
    pub server_bin: Option<PathBuf>,
    /// Pin each server process to this core (`taskset`).
    pub pin_cpu: Option<usize>,
    /// Serve callbook against a `callbook emulator` process of its own.
    pub emulator_process: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Bare,
    Callbook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Callbook => "callbook",
        }
    }
}

/// Runs every round and returns the report: each run's figures, and per
/// figure the median of the runs and callbook's ratio to the bare server.
pub async fn run(opts: Options) -> anyhow::Result<Value> {
    if opts.idle < opts.calls {
        bail!("--idle-calls must be at least --calls (the streaming calls are among them)");
    }
    let me = std::env::current_exe().context("finding this binary")?;
    let callbook_bin = opts.server_bin.clone().unwrap_or_else(|| me.clone());
    let tick = clock_ticks();
    let mut runs = Vec::new();
    let mut bursts = Vec::new();
    for round in 0..opts.rounds.max(1) {
        for kind in [Kind::Bare, Kind::Callbook] {
            let bin = if kind == Kind::Bare {
                &me
            } else {
                &callbook_bin
            };
            eprintln!("round {}: {} …", round + 1, kind.name());
            let server = Server::start(kind, bin, &opts).await?;
            let run = measure(&server, &opts, tick).await;
            server.stop();
            let mut run = run?;
            run["round"] = json!(round + 1);
            eprintln!("  {run}");
            runs.push(run);
        }
        if opts.burst > 0 {
            eprintln!("round {}: burst of {} call starts …", round + 1, opts.burst);
            let server = Server::start(Kind::Callbook, &callbook_bin, &opts).await?;
            let burst = burst(&server, opts.burst, opts.burst_rate, tick, opts.pin_cpu).await;
            server.stop();
            let mut burst = burst?;
            burst["round"] = json!(round + 1);
            eprintln!("  {burst}");
            bursts.push(burst);
        }
    }
    Ok(json!({
        "calls": opts.calls,
        "idle_calls": opts.idle,
        "seconds": opts.seconds,
        "pinned_cpu": opts.pin_cpu,
        "emulator_process": opts.emulator_process,
        "summary": summary(&runs),
        "runs": runs,
        "burst": bursts,
    }))
}

/// Per figure: the median over the runs of each server, and the ratio.
fn summary(runs: &[Value]) -> Value {
    let figures = [
        "messages_per_s",
        "cpu_us_per_message",
        "reply_p50_ms",
        "reply_p99_ms",
        "reply_max_ms",
        "idle_bytes_per_call",
        "setup_cpu_ms_per_call",
    ];
    let mut out = serde_json::Map::new();
    for f in figures {
        let median = |kind: &str| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter(|r| r["server"] == kind)
                .filter_map(|r| r[f].as_f64())
                .collect();
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => None,
                n if n % 2 == 1 => Some(v[n / 2]),
                n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
            }
        };
        let (bare, cb) = (median("bare"), median("callbook"));
        let ratio = match (bare, cb) {
            (Some(b), Some(c)) if b > 0.0 => Some(round2(c / b)),
            _ => None,
        };
        out.insert(
            f.to_string(),
            json!({"bare": bare.map(round2), "callbook": cb.map(round2), "ratio": ratio}),
        );
    }
    Value::Object(out)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A measured server process, killed when stopped or dropped, with the
/// emulator process it serves against, if any.
struct Server {
    child: std::process::Child,
    addr: SocketAddr,
    kind: Kind,
    emulator: Option<Emulator>,
}

/// `bin`, pinned to `cpu` with `taskset` when given.
fn command(bin: &std::path::Path, cpu: Option<usize>) -> std::process::Command {
    match cpu {
        Some(cpu) => {
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(bin);
            c
        }
        None => std::process::Command::new(bin),
    }
}

/// A `callbook emulator` process seeded with the demo's provisioning, and
/// that provisioning as a file for `serve` to read.
struct Emulator {
    child: std::process::Child,
    /// Removed when the emulator is dropped.
    provisioning: PathBuf,
    /// `serve`'s provider flags pointing at it.
    serve_args: Vec<String>,
}

impl Emulator {
    /// Starts this binary's emulator on a core other than the server's.
    async fn start(server_cpu: Option<usize>) -> anyhow::Result<Emulator> {
        use std::io::BufRead;
        let provisioning = std::env::temp_dir().join(format!(
            "callbook-load-{}-{:016x}.json",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&provisioning, crate::store::provisioning::DEFAULT)
            .with_context(|| format!("writing {}", provisioning.display()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = server_cpu.and_then(|s| (0..cores).find(|&c| c != s));
        let me = std::env::current_exe().context("finding this binary")?;
        let spawned = command(&me, cpu)
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_file(&provisioning);
                return Err(anyhow::Error::new(e).context("starting the emulator"));
            }
        };
        // Owned from here: killed and its file removed on any early return.
        let mut emulator = Emulator {
            child,
            provisioning,
            serve_args: Vec::new(),
        };
        let stdout = emulator
            .child
            .stdout
            .take()
            .context("the emulator's output")?;
        // Its first line names its endpoints.
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await??;
        let flags: Value = serde_json::from_str(&line).context("the emulator's flags line")?;
        emulator.serve_args = crate::harness::serve_args_for_emulator(&flags)
            .context("the emulator's flags line names every endpoint")?;
        Ok(emulator)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.provisioning);
    }
}

impl Server {
    async fn start(kind: Kind, bin: &std::path::Path, opts: &Options) -> anyhow::Result<Self> {
        let addr = free_addr()?;
        let listen = addr.to_string();
        let mut emulator = None;
        let args: Vec<String> = match kind {
            Kind::Bare => vec!["bare-echo".into(), "--listen".into(), listen],
            Kind::Callbook => {
                let mut args: Vec<String> = [
                    "serve",
                    "--listen",
                    &listen,
                    "--auth-token",
                    TOKEN,
                    "--max-connections",
                    "100000",
                    "--max-connections-per-client",
                    "100000",
                    "--idle-timeout-seconds",
                    "3600",
                    "--start-timeout-seconds",
                    "600",
                ]
                .into_iter()
                .map(String::from)
                .collect();
                if opts.emulator_process {
                    let e = Emulator::start(opts.pin_cpu).await?;
                    args.push("--provisioning".into());
                    args.push(e.provisioning.display().to_string());
                    args.extend(e.serve_args.iter().cloned());
                    emulator = Some(e);
                } else {
                    args.push("--emulator".into());
                }
                args
            }
        };
        let child = command(bin, opts.pin_cpu)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let server = Server {
            child,
            addr,
            kind,
            emulator,
        };
        server.ready().await?;
        Ok(server)
    }

    /// Waits for `/healthz` to answer.
    async fn ready(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("http://{}/healthz", self.addr);
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the {} server did not come up", self.kind.name())
    }

    /// The server's own pid (under `taskset`, which execs it, the same).
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.emulator.take());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields count from after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let utime: u64 = fields.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: u64 = fields.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    Ok(utime + stime)
}

/// How long the threads of a process have waited, runnable, for a CPU
/// (`/proc/<pid>/task/*/schedstat`, second field), in seconds: time lost
/// to whatever else the machine runs, or to the process's own threads
/// queueing for its one core.
fn run_queue_wait_s(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// One core's run and steal time so far, from `/proc/stat`.
fn core_ticks(cpu: usize) -> Option<CoreTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = v.iter().take(7).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some(CoreTicks {
        busy,
        steal: *v.get(7)?,
    })
}

/// A core's time so far, in clock ticks: run (by any process or the
/// kernel), and taken by the hypervisor (steal) while this machine wanted
/// to run.
#[derive(Clone, Copy)]
struct CoreTicks {
    busy: u64,
    steal: u64,
}

/// Resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| anyhow!("no VmRSS"))?
        .parse()?;
    Ok(kib * 1024)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One call's socket, split.
struct Call {
    tx: SplitSink<Socket, Message>,
    rx: SplitStream<Socket>,
    sid: String,
    stream_sid: String,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Socket> {
    let mut req = format!("ws://{addr}/v1/calls").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse()?);
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    Ok(ws)
}

fn start_frame(sid: &str, stream_sid: &str, i: usize) -> String {
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC00000000000000000000000000000000",
            "streamSid": stream_sid,
            "callSid": sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"campaign_id": "demo",
                                 "recipient_phone": format!("+1415555{:04}", i % 10_000),
                                 "recipient_first_name": "Caller"},
        },
        "streamSid": stream_sid,
    })
    .to_string()
}

async fn send(tx: &mut SplitSink<Socket, Message>, text: String) -> anyhow::Result<()> {
    tx.send(Message::Text(text.into())).await?;
    Ok(())
}

/// Connects a call and sends `connected` and `start`, as Twilio opens a
/// stream.
async fn start_call(addr: SocketAddr, i: usize, tag: &str) -> anyhow::Result<Call> {
    let ws = connect(addr).await?;
    let (mut tx, rx) = ws.split();
    let sid = format!("CA{tag}{i:030x}");
    let stream_sid = format!("MZ{tag}{i:030x}");
    send(
        &mut tx,
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
    )
    .await?;
    send(&mut tx, start_frame(&sid, &stream_sid, i)).await?;
    Ok(Call {
        tx,
        rx,
        sid,
        stream_sid,
    })
}

/// Reads the call's frames until one of `event` comes, within `limit`.
async fn until_event(
    rx: &mut SplitStream<Socket>,
    event: &str,
    limit: Duration,
    i: usize,
) -> anyhow::Result<()> {
    loop {
        let frame = tokio::time::timeout(limit, rx.next())
            .await
            .map_err(|_| anyhow!("call {i}: no {event} within {limit:?}"))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text)?;
                if v["event"] == event {
                    return Ok(());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("call {i}: socket closed before a {event}"),
        }
    }
}

/// Starts a call ([`start_call`]) and sends a `sync`, whose answer says
/// the server has set the call up.
async fn open_call(addr: SocketAddr, i: usize, tag: &str) -> anyhow::Result<Call> {
    let mut call = start_call(addr, i, tag).await?;
    send(
        &mut call.tx,
        json!({"event": "sync", "sync": {"id": "ready"}}).to_string(),
    )
    .await?;
    until_event(&mut call.rx, "sync", Duration::from_secs(60), i).await?;
    Ok(call)
}

/// What one streaming call saw.
#[derive(Default)]
struct Streamed {
    media: usize,
    transcripts: usize,
    replies: Vec<Duration>,
}

/// Streams Twilio-rate media and transcripts until `end`, timing each
/// transcript's `turn`.
async fn stream_call(call: &mut Call, i: usize, end: Instant) -> anyhow::Result<Streamed> {
    let payload = silence_payload();
    // Calls spread their frames over the 20 ms and their transcripts
    // over the 2 s, as independent calls do.
    let now = Instant::now();
    let media_at = now + Duration::from_millis((i as u64 * 7) % 20);
    let speak_at = now + Duration::from_millis((i as u64 * 131) % 2000);
    let mut media = tokio::time::interval_at(media_at, MEDIA_EVERY);
    media.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut speak = tokio::time::interval_at(speak_at, TRANSCRIPT_EVERY);
    let mut pending: VecDeque<Instant> = VecDeque::new();
    let mut out = Streamed::default();
    let mut seq = 1u64;
    loop {
        tokio::select! {
            _ = media.tick() => {
                if Instant::now() >= end {
                    break;
                }
                seq += 1;
                let chunk = seq - 1;
                let frame = format!(
                    r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{}","payload":"{payload}"}},"streamSid":"{}"}}"#,
                    chunk * 20,
                    call.stream_sid
                );
                send(&mut call.tx, frame).await?;
                out.media += 1;
            }
            _ = speak.tick() => {
                let line = SMALL_TALK[out.transcripts % SMALL_TALK.len()];
                let id = format!("t{}", out.transcripts);
                let frame = json!({"event": "transcript",
                                   "transcript": {"id": id, "text": line, "final": true}});
                pending.push_back(Instant::now());
                send(&mut call.tx, frame.to_string()).await?;
                out.transcripts += 1;
            }
            frame = call.rx.next() => {
                let Some(Ok(msg)) = frame else { bail!("call {i}: socket closed while streaming") };
                take_reply(&msg, &mut pending, &mut out.replies)?;
            }
        }
    }
    // The answers still in flight.
    while !pending.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), call.rx.next()).await {
            Ok(Some(Ok(msg))) => take_reply(&msg, &mut pending, &mut out.replies)?,
            _ => break,
        }
    }
    Ok(out)
}

fn take_reply(
    msg: &Message,
    pending: &mut VecDeque<Instant>,
    replies: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    if let Message::Text(text) = msg {
        let v: Value = serde_json::from_str(text)?;
        if v["event"] == "turn" {
            if let Some(at) = pending.pop_front() {
                replies.push(at.elapsed());
            }
        }
    }
    Ok(())
}

/// Percentile `p` (0..=1) of sorted durations, in ms.
fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    round3(sorted[i].as_secs_f64() * 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One server's run: idle memory, then streaming.
async fn measure(server: &Server, opts: &Options, tick: f64) -> anyhow::Result<Value> {
    let pid = server.pid();
    // Let the process finish starting before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_bytes(pid)?;
    let setup_cpu_before = cpu_ticks(pid)?;
    let tag = format!("{:02x}", fastrand::u8(..));
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let (done_tx, done_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(opts.idle);
    let mut tasks = Vec::with_capacity(opts.idle);
    for i in 0..opts.idle {
        let gate = gate.clone();
        let streams = i < opts.calls;
        let (mut go_rx, mut done_rx) = (go_rx.clone(), done_rx.clone());
        let ready_tx = ready_tx.clone();
        let addr = server.addr;
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let opened = open_call(addr, i, &tag).await;
            drop(permit);
            let mut call = match opened {
                Ok(c) => {
                    let _ = ready_tx.send(Ok(())).await;
                    c
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow!("{e:#}"))).await;
                    return Err(e);
                }
            };
            let result = if streams {
                let end = loop {
                    if let Some(end) = *go_rx.borrow_and_update() {
                        break end;
                    }
                    go_rx.changed().await?;
                };
                Some(stream_call(&mut call, i, end).await?)
            } else {
                None
            };
            while !*done_rx.borrow_and_update() {
                done_rx.changed().await?;
            }
            let stop = json!({"event": "stop", "sequenceNumber": "99",
                              "stop": {"accountSid": "AC00000000000000000000000000000000", "callSid": call.sid}});
            let _ = send(&mut call.tx, stop.to_string()).await;
            anyhow::Ok(result)
        }));
    }
    drop(ready_tx);
    let connecting = Instant::now();
    for _ in 0..opts.idle {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("{} server: a call did not start: {e}", server.kind.name()),
            None => bail!("{} server: calls ended early", server.kind.name()),
        }
    }
    let setup_s = connecting.elapsed().as_secs_f64();
    let setup_cpu_s = cpu_ticks(pid)?.saturating_sub(setup_cpu_before) as f64 / tick;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_bytes(pid)?;
    let idle_bytes = rss_idle.saturating_sub(rss_before) as f64 / opts.idle as f64;

    let cpu_before = cpu_ticks(pid)?;
    let started = Instant::now();
    let window = Duration::from_secs(opts.seconds);
    let _ = go_tx.send(Some(started + window));
    tokio::time::sleep_until(started + window).await;
    let cpu_after = cpu_ticks(pid)?;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_streaming = rss_bytes(pid)?;
    let _ = done_tx.send(true);
    let (mut media, mut transcripts, mut replies) = (0usize, 0usize, Vec::new());
    for t in tasks {
        if let Some(s) = t.await?? {
            media += s.media;
            transcripts += s.transcripts;
            replies.extend(s.replies);
        }
    }
    replies.sort();
    let messages = media + transcripts;
    let cpu_s = cpu_after.saturating_sub(cpu_before) as f64 / tick;
    Ok(json!({
        "server": server.kind.name(),
        "idle_calls": opts.idle,
        "setup_s": round3(setup_s),
        "setup_cpu_ms_per_call": round3(setup_cpu_s * 1e3 / opts.idle as f64),
        "rss_before_mb": round2(rss_before as f64 / 1e6),
        "rss_idle_mb": round2(rss_idle as f64 / 1e6),
        "rss_streaming_mb": round2(rss_streaming as f64 / 1e6),
        "idle_bytes_per_call": idle_bytes.round(),
        "calls": opts.calls,
        "media_frames": media,
        "transcripts": transcripts,
        "replies": replies.len(),
        "unanswered": transcripts - replies.len(),
        "messages_per_s": (messages as f64 / elapsed).round(),
        "server_cpu_s": round3(cpu_s),
        "cpu_us_per_message": if messages > 0 { round3(cpu_s * 1e6 / messages as f64) } else { 0.0 },
        "reply_p50_ms": pct_ms(&replies, 0.5),
        "reply_p99_ms": pct_ms(&replies, 0.99),
        "reply_max_ms": pct_ms(&replies, 1.0),
    }))
}

/// `calls` call starts at `rate` a second, each offering booking at once:
/// how long the offer's first `say` takes.
async fn burst(
    server: &Server,
    calls: usize,
    rate: u32,
    tick: f64,
    pinned: Option<usize>,
) -> anyhow::Result<Value> {
    let addr = server.addr;
    let pid = server.pid();
    let core_before = pinned.and_then(core_ticks);
    let (cpu_before, waited_before) = (cpu_ticks(pid)?, run_queue_wait_s(pid));
    let (me, my_waited_before) = (std::process::id(), run_queue_wait_s(std::process::id()));
    let my_cpu_before = cpu_ticks(me)?;
    let tag = format!("{:02x}", fastrand::u8(..));
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(calls);
    for i in 0..calls {
        every.tick().await;
        let tag = tag.clone();
        tasks.push(tokio::spawn(async move {
            let mut call = start_call(addr, i, &tag).await?;
            let offered = Instant::now();
            send(
                &mut call.tx,
                json!({"event": "booking", "booking": {"action": "offer"}}).to_string(),
            )
            .await?;
            until_event(&mut call.rx, "say", Duration::from_secs(30), i).await?;
            let waited = offered.elapsed();
            // Kept open until every call has started, as live calls are.
            anyhow::Ok((waited, call))
        }));
    }
    let mut waits = Vec::with_capacity(calls);
    let mut sockets = Vec::with_capacity(calls);
    for t in tasks {
        let (waited, call) = t.await??;
        waits.push(waited);
        sockets.push(call);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = cpu_ticks(pid)?.saturating_sub(cpu_before) as f64 / tick;
    let server_waited = run_queue_wait_s(pid) - waited_before;
    let client_cpu = cpu_ticks(me)?.saturating_sub(my_cpu_before) as f64 / tick;
    let client_waited = run_queue_wait_s(me) - my_waited_before;
    // What else ran on the server's core meanwhile: the core's busy time
    // less the server's own.
    let core = pinned
        .and_then(core_ticks)
        .zip(core_before)
        .map(|(after, before)| {
            let share = |ticks: u64| ticks as f64 / tick / elapsed;
            (
                round3(share(after.busy.saturating_sub(before.busy)) - server_cpu / elapsed),
                round3(share(after.steal.saturating_sub(before.steal))),
            )
        });
    drop(sockets);
    waits.sort();
    Ok(json!({
        "calls": calls,
        "rate_per_s": rate,
        "elapsed_s": round3(elapsed),
        // Busy share of a core, and time spent runnable but waiting for
        // one: a tail the server's own work explains, or the machine's.
        "server_cpu_share": round3(server_cpu / elapsed),
        "server_run_queue_wait_ms": round3(server_waited * 1e3),
        "client_cpu_share": round3(client_cpu / elapsed),
        "client_run_queue_wait_ms": round3(client_waited * 1e3),
        "others_share_of_server_core": core.map(|c| c.0),
        "steal_share_of_server_core": core.map(|c| c.1),
        "first_say_p50_ms": pct_ms(&waits, 0.5),
        "first_say_p99_ms": pct_ms(&waits, 0.99),
        "first_say_max_ms": pct_ms(&waits, 1.0),
    }))
}

/// The bare server callbook is compared with: an axum WebSocket server
/// with the same read buffer as callbook's call sockets that parses every frame as JSON, answers each
/// transcript with a `turn` and each `sync` with a `sync`, and does
/// nothing else. `callbook bare-echo --listen ADDR` serves it.
pub async fn bare_echo(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/calls", get(bare_upgrade));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn bare_upgrade(ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(crate::server::CALL_READ_BUFFER)
        .on_upgrade(bare_socket)
}

async fn bare_socket(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let AxMessage::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let reply = match v["event"].as_str() {
            Some("transcript") => json!({"event": "turn",
                "turn": {"id": v["transcript"]["id"], "owner": "agent", "floor": false}}),
            Some("sync") => json!({"event": "sync", "sync": {"id": v["sync"]["id"]}}),
            _ => continue,
        };
        if socket
            .send(AxMessage::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_cpu_time_and_resident_memory_are_read_from_proc() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(rss_bytes(pid).unwrap() > 0);
    }

    #[test]
    fn a_twilio_payload_is_twenty_milliseconds_of_mulaw() {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(silence_payload())
            .unwrap();
        assert_eq!(bytes.len(), 160);
    }

    #[test]
    fn the_summary_gives_medians_and_the_ratio() {
        let runs = vec![
            json!({"server": "bare", "cpu_us_per_message": 8.0}),
            json!({"server": "callbook", "cpu_us_per_message": 9.0}),
            json!({"server": "bare", "cpu_us_per_message": 10.0}),
            json!({"server": "callbook", "cpu_us_per_message": 11.0}),
        ];
        let s = summary(&runs);
        assert_eq!(s["cpu_us_per_message"]["bare"], 9.0);
        assert_eq!(s["cpu_us_per_message"]["callbook"], 10.0);
        assert_eq!(s["cpu_us_per_message"]["ratio"], 1.11);
    }
}
