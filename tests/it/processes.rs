//! Separate processes, as deployed: one `callbook emulator`, one
//! `redis-server` (append-only file, fsynced on every write), three
//! `callbook serve` sharing it, and concurrent callers spread over the
//! servers. The faults:
//!
//! - one server killed -9 mid-run, another stopped (SIGSTOP) past the
//!   hold's life (8 s in this run) and continued;
//! - Redis killed and restarted from its file;
//! - Redis replies lost on the way back (a loopback proxy that drops the
//!   answer to a command Redis ran, and the connection with it);
//! - clocks: one server's wall clock runs fast, one slow (`faketime`);
//! - the calendar: 503 and 429 storms, a create that lands but whose
//!   answer is lost, free/busy lagging writes, and an outage in which every
//!   create lands unanswered while every read fails (the outcome unknown).
//!
//! The invariants are checked on the emulator's ground truth, read over
//! HTTP, and on the ledger after a quiet period in which only the servers'
//! periodic reconciler runs, and counted (`N passed, N failed`) before
//! they are asserted.

use callbook::harness::{frames, CallClient, RedisServer};
use callbook::store::provisioning::DEFAULT;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_callbook");
const PIPELINE_TOKEN: &str = "pipeline-token-0123456789";
const OWNER: &str = "alex@callbook.example";
const CALLERS: usize = 30;
const SERVERS: usize = 3;
/// Proposals a caller says yes to before giving up.
const MAX_TRIES: usize = 60;
/// The servers' hold life, short so that a server stopped for longer lets
/// its holds lapse mid-booking within a short run.
const HOLD_TTL_SECONDS: u64 = 8;
/// The servers' reconciler period, short so the quiet period is short.
const RECONCILE_SECONDS: u64 = 2;
/// The wall-clock skew of the first two servers, fast and slow.
const SKEW_SECONDS: [i64; 2] = [37, -29];

/// libfaketime (Debian's `faketime`), preloaded into a process to shift
/// its wall clock; `.ci/run` installs it. Without it, a run outside CI has
/// no clock skew (and says so); in CI it is required.
fn faketime() -> Option<std::path::PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
        "/usr/local/lib/faketime",
    ]
    .iter()
    .map(|d| std::path::Path::new(d).join("libfaketimeMT.so.1"))
    .find(|p| p.is_file());
    if found.is_none() && std::env::var_os("CI").is_some() {
        panic!("libfaketime is missing (apt-get install faketime)");
    }
    found
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Proc {
    /// Sends a signal by name (`STOP`, `CONT`) to this process only.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// SIGKILL: nothing of the process runs its shutdown.
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `callbook emulator` and the flags it printed.
struct Emulator {
    _proc: Proc,
    flags: Value,
}

impl Emulator {
    fn start(provisioning: &std::path::Path) -> Emulator {
        let mut child = Command::new(BIN)
            .args(["emulator", "--listen", "127.0.0.1:0", "--provisioning"])
            .arg(provisioning)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let flags: Value = serde_json::from_str(&line).expect("the emulator's flags line");
        Emulator { _proc: proc, flags }
    }

    fn flag(&self, name: &str) -> String {
        self.flags[name].as_str().unwrap().to_string()
    }

    /// `serve`'s provider flags pointing at this emulator.
    fn serve_args(&self) -> Vec<String> {
        callbook::harness::serve_args_for_emulator(&self.flags).expect("the emulator's flags")
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.flag("control"));
        let mut req = reqwest::Client::new().request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "control API: {}", resp.status());
        resp.json().await.unwrap_or(Value::Null)
    }
}

async fn start_serve(
    emulator: &Emulator,
    redis: &str,
    prov: &std::path::Path,
    key: &str,
    skew: Option<(&std::path::Path, i64)>,
) -> (Proc, SocketAddr) {
    let listen = crate::helpers::free_listen_addr();
    let mut command = Command::new(BIN);
    if let Some((lib, secs)) = skew {
        // Only the wall clock moves: timers and timeouts keep real time.
        command
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", format!("{secs:+}s"))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    let child = command
        .args(["serve", "--listen", &listen, "--redis-url", redis])
        .args(["--hold-ttl-seconds", &HOLD_TTL_SECONDS.to_string()])
        .args(["--reconcile-seconds", &RECONCILE_SECONDS.to_string()])
        .args(["--auth-token", PIPELINE_TOKEN, "--provisioning"])
        .arg(prov)
        .args(emulator.serve_args())
        .env("CALLBOOK_TOKEN_KEY", key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let addr: SocketAddr = listen.parse().unwrap();
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return (proc, addr);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("callbook serve did not start");
}

/// The socket dropped (its server died) before the sync came back.
struct Gone;

/// Sends `frame`, then a sync, and returns what came before its answer.
async fn turn(call: &mut CallClient, frame: &Value, n: &mut u64) -> Result<Vec<Value>, Gone> {
    *n += 1;
    let id = format!("p-{n}");
    call.send(frame).await.map_err(|_| Gone)?;
    call.send(&json!({"event": "sync", "sync": {"id": id}}))
        .await
        .map_err(|_| Gone)?;
    let mut got = Vec::new();
    loop {
        match call.recv().await {
            Ok(Some(f)) if f["event"] == "sync" && f["sync"]["id"] == id.as_str() => {
                return Ok(got)
            }
            Ok(Some(f)) => got.push(f),
            _ => return Err(Gone),
        }
    }
}

/// A slot as frames carry it, start and end.
type Slot = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

fn slot_of(f: &Value) -> Option<Slot> {
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(f["booking"][k].as_str()?)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    Some((at("start")?, at("end")?))
}

/// What one caller saw.
#[derive(Default, Debug)]
struct Caller {
    /// Event ids of every `booked` frame.
    booked: Vec<String>,
    taken: u32,
    /// The slots it was told were taken.
    taken_slots: Vec<Slot>,
    /// The reason of each `failed` frame.
    failures: Vec<String>,
    /// The last slot proposed to it.
    proposed: Option<Slot>,
    /// Each slot it said yes to, and how that turn ended: `booked`,
    /// `taken`, `failed`, `silent` (no answer yet) or `gone` (the socket
    /// dropped).
    yeses: Vec<(Slot, &'static str)>,
    resumes: u32,
    /// Sockets that dropped under it.
    drops: u32,
    /// The booking frames and says of its last turns, for a failure's report.
    trail: Vec<Value>,
}

fn statuses(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| f["event"] == "booking")
        .filter_map(|f| f["booking"]["status"].as_str())
        .collect()
}

/// One caller: offer, yes, email, yes to the read-back, then yes (or
/// "the first one") to each proposal until booked. When its server dies
/// it reconnects to the next live one with the same callSid and says its
/// last line again.
async fn caller(
    i: usize,
    servers: Arc<Vec<SocketAddr>>,
    dead: Arc<AtomicUsize>,
    booked_count: Arc<AtomicUsize>,
) -> Caller {
    let sid = format!("CA{:032x}", 0xb00c_0000 + i);
    let params = json!({"campaign_id": "demo", "recipient_phone": format!("+1415555{:04}", i),
                        "recipient_first_name": "Caller", "recipient_last_name": format!("{i}")});
    let mut out = Caller::default();
    let mut n = 0;
    let mut server = i % servers.len();
    let mut call = None;
    let email = format!("caller {i} at example dot com");
    let mut script: Vec<Value> = vec![
        frames::offer(),
        frames::transcript("yes"),
        frames::transcript(&email),
        frames::transcript("yes"),
        frames::transcript("yes"),
    ];
    let mut step = 0;
    let mut tries = 0;
    let mut silent = 0;
    let mut refused = 0;
    while step < script.len() && tries < MAX_TRIES * 4 {
        tries += 1;
        if call.is_none() {
            // A server marked dead is skipped: the callers there move on.
            if server == dead.load(Ordering::SeqCst) {
                server = (server + 1) % servers.len();
            }
            let Ok(mut c) = CallClient::connect(servers[server], Some(PIPELINE_TOKEN)).await else {
                // Busy (a server caps unauthenticated connections per
                // client): try it again a few times, then the next one.
                refused += 1;
                if refused % 10 == 0 {
                    server = (server + 1) % servers.len();
                }
                tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(..30))).await;
                continue;
            };
            let started = async {
                c.send(&frames::connected()).await.map_err(|_| Gone)?;
                turn(&mut c, &frames::start(&sid, params.clone()), &mut n).await
            }
            .await;
            match started {
                Ok(got) => {
                    record(&got, &mut out, &booked_count);
                    call = Some(c);
                }
                Err(Gone) => {
                    server = (server + 1) % servers.len();
                    continue;
                }
            }
            if !out.booked.is_empty() {
                break;
            }
        }
        let Some(c) = call.as_mut() else { continue };
        // From the fifth line on, each is an answer to a proposal.
        let answering = if step >= 4 { out.proposed } else { None };
        let result = turn(c, &script[step], &mut n).await;
        if let Some(slot) = answering {
            let ended = match &result {
                Err(Gone) => "gone",
                Ok(got) => {
                    let st = statuses(got);
                    ["booked", "taken", "failed"]
                        .into_iter()
                        .find(|s| st.contains(s))
                        .unwrap_or("silent")
                }
            };
            out.yeses.push((slot, ended));
        }
        match result {
            Err(Gone) => {
                out.drops += 1;
                call = None;
                server = (server + 1) % servers.len();
            }
            Ok(got) => {
                record(&got, &mut out, &booked_count);
                if !out.booked.is_empty() {
                    break;
                }
                // A resumed call may wait for its dead server's work
                // (up to 15 s) before it answers, and one that booked
                // before its server died says nothing more about it: stop
                // after a while of silent turns.
                if statuses(&got).is_empty() {
                    silent += 1;
                    if silent >= 18 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                } else {
                    silent = 0;
                }
                step += 1;
                let st = statuses(&got);
                if step >= 4 && out.taken < MAX_TRIES as u32 && !st.contains(&"failed") {
                    // Still choosing: answer the next proposal.
                    let options = got.iter().any(|f| {
                        f["booking"]["status"] == "proposed" && f["booking"]["options"].is_array()
                    });
                    let answer = if options { "the first one" } else { "yes" };
                    if step == script.len() {
                        script.push(frames::transcript(answer));
                    } else {
                        script[step] = frames::transcript(answer);
                    }
                }
            }
        }
    }
    if let Some(mut c) = call {
        let _ = c.send(&frames::stop(&sid)).await;
    }
    out
}

fn record(got: &[Value], out: &mut Caller, booked_count: &AtomicUsize) {
    out.trail.extend(
        got.iter()
            .filter(|f| {
                ["booking", "resumed", "say"].contains(&f["event"].as_str().unwrap_or_default())
            })
            .cloned(),
    );
    let keep = out.trail.len().saturating_sub(12);
    out.trail.drain(..keep);
    // `resumed` may come after the start's sync answer.
    out.resumes += got.iter().filter(|f| f["event"] == "resumed").count() as u32;
    for f in got.iter().filter(|f| f["event"] == "booking") {
        match f["booking"]["status"].as_str() {
            Some("booked") => {
                out.booked.push(
                    f["booking"]["event_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                booked_count.fetch_add(1, Ordering::SeqCst);
            }
            Some("taken") => {
                out.taken += 1;
                out.taken_slots.extend(slot_of(f));
            }
            Some("failed") => out.failures.push(
                f["booking"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            Some("proposed") => out.proposed = slot_of(f),
            _ => {}
        }
    }
}

fn base64_key(seed: u64) -> String {
    use base64::Engine;
    let mut rng = fastrand::Rng::with_seed(seed);
    let bytes: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_on_one_redis_and_one_emulator_never_double_book() {
    let seed = std::env::var("CALLBOOK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (CALLBOOK_TEST_SEED={seed} repeats it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = std::env::temp_dir().join(format!("callbook-processes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = dir.join("provisioning.json");
    std::fs::write(&prov, DEFAULT).unwrap();
    let key = base64_key(seed);

    let emulator = Emulator::start(&prov);
    let mut redis = RedisServer::start_with_aof().await.unwrap();
    // The servers reach Redis through a proxy that loses replies.
    let proxy = crate::lossy::LossyProxy::start(&redis.url).await;
    let faketime = faketime();
    if faketime.is_none() {
        println!("faketime not found: this run has no clock skew");
    }
    let mut procs = Vec::new();
    let mut addrs = Vec::new();
    for s in 0..SERVERS {
        let skew = faketime
            .as_deref()
            .and_then(|f| SKEW_SECONDS.get(s).map(|secs| (f, *secs)));
        let (p, a) = start_serve(&emulator, &proxy.url, &prov, &key, skew).await;
        procs.push(p);
        addrs.push(a);
    }
    let fault = |endpoint: &str, fault: Value, times: u32| {
        json!({"provider": "google", "email": OWNER, "endpoint": endpoint,
               "fault": fault, "times": times})
    };
    // Faults through the control API: 503 and 429 storms, a create that
    // lands but whose answer is lost, and free/busy lagging writes.
    let storm = rng.u32(2..6);
    let throttled = rng.u32(2..6);
    let lag_ms = rng.u64(2000..5000);
    for f in [
        fault("insert", json!({"status": 503}), storm),
        fault(
            "insert",
            json!({"status": 429, "retry_after": 1}),
            throttled,
        ),
        fault(
            "free_busy",
            json!({"status": 429, "retry_after": 1}),
            throttled,
        ),
        fault("insert", json!({"commit_then_drop": true}), 1),
    ] {
        emulator
            .control(reqwest::Method::POST, "/faults", Some(f))
            .await;
    }
    emulator
        .control(
            reqwest::Method::PUT,
            "/lag",
            Some(json!({"provider": "google", "email": OWNER, "free_busy_ms": lag_ms})),
        )
        .await;

    let servers = Arc::new(addrs);
    let dead = Arc::new(AtomicUsize::new(usize::MAX));
    let booked = Arc::new(AtomicUsize::new(0));
    let victim = rng.usize(..SERVERS);
    let kill_after = rng.usize(1..4);
    let outage_after = kill_after + rng.usize(0..2);
    let stopped = (victim + 1 + rng.usize(..SERVERS - 1)) % SERVERS;
    // Past the hold's life: the stopped server's holds lapse mid-booking.
    let pause = Duration::from_millis(
        rng.u64(HOLD_TTL_SECONDS * 1000 + 1000..HOLD_TTL_SECONDS * 1000 + 4000),
    );
    let restart_after = outage_after + rng.usize(1..4);
    let loss_every = Duration::from_millis(rng.u64(150..600));
    println!(
        "{storm} 503s and {throttled} 429s on insert, {throttled} 429s on free/busy, one commit-then-drop, free/busy {lag_ms} ms behind; \
         serve #{victim} killed -9 after {kill_after} bookings; a calendar outage after {outage_after}; \
         serve #{stopped} stopped for {pause:?} and Redis restarted after {restart_after}; \
         a Redis reply lost every {loss_every:?}; clocks {}",
        if faketime.is_some() {
            format!("{:+} s and {:+} s on serve #0 and #1", SKEW_SECONDS[0], SKEW_SECONDS[1])
        } else {
            "not skewed".to_string()
        }
    );
    let losing = {
        let proxy_lose = Arc::new(proxy);
        let p = proxy_lose.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(loss_every).await;
                p.lose_replies(1);
            }
        });
        (proxy_lose, task)
    };
    let wait_for = |n: usize, tasks: &Vec<tokio::task::JoinHandle<Caller>>| {
        let done = tasks.iter().all(|t| t.is_finished());
        booked.load(Ordering::SeqCst) >= n || done
    };
    let run = async {
        let tasks: Vec<_> = (0..CALLERS)
            .map(|i| tokio::spawn(caller(i, servers.clone(), dead.clone(), booked.clone())))
            .collect();
        // Kill one server mid-run: once some bookings are in (or the
        // callers are done).
        while !wait_for(kill_after, &tasks) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        dead.store(victim, Ordering::SeqCst);
        procs[victim].kill9();
        println!(
            "killed serve #{victim} at {} booked frames, {} callers done",
            booked.load(Ordering::SeqCst),
            tasks.iter().filter(|t| t.is_finished()).count()
        );
        while !wait_for(outage_after, &tasks) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // An outage: every create lands but its answer is lost, and every
        // read fails, so the bookings in flight cannot learn their outcome.
        for f in [
            json!({"provider": "google", "email": OWNER, "endpoint": "insert",
                   "fault": {"commit_then_drop": true}, "for_ms": 1500}),
            json!({"provider": "google", "email": OWNER, "endpoint": "get",
                   "fault": {"status": 503}, "for_ms": 4000}),
        ] {
            emulator
                .control(reqwest::Method::POST, "/faults", Some(f))
                .await;
        }
        println!(
            "calendar outage at {} booked frames",
            booked.load(Ordering::SeqCst)
        );
        while !wait_for(restart_after, &tasks) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // One server freezes mid-work while Redis dies and comes back.
        procs[stopped].signal("STOP");
        redis.restart().await.unwrap();
        tokio::time::sleep(pause).await;
        procs[stopped].signal("CONT");
        println!(
            "stopped serve #{stopped} and restarted Redis at {} booked frames",
            booked.load(Ordering::SeqCst)
        );
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    };
    let started = tokio::time::Instant::now();
    let results = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the callers finish");
    losing.1.abort();
    let lost_replies = losing.0.lost();

    // The quiet period: no caller, no fault; only the servers' periodic
    // reconciler runs. Long enough for every hold to lapse and for two
    // reconciler runs after the last read fault.
    emulator
        .control(reqwest::Method::DELETE, "/faults", None)
        .await;
    tokio::time::sleep(Duration::from_secs(
        HOLD_TTL_SECONDS + 3 * RECONCILE_SECONDS,
    ))
    .await;

    // Ground truth, from the emulator process.
    let events = emulator
        .control(
            reqwest::Method::GET,
            &format!("/events?provider=google&email={OWNER}"),
            None,
        )
        .await;
    let events = events.as_array().unwrap();
    let live: Vec<&Value> = events
        .iter()
        .filter(|e| e["status"] != "cancelled" && !e["booking_id"].is_null())
        .collect();
    let time = |e: &Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(e[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let campaign: Value = serde_json::from_str(DEFAULT).unwrap();
    let rules = &campaign["campaigns"][0]["booking"]["rules"];
    let before = chrono::Duration::minutes(rules["buffer_before_minutes"].as_i64().unwrap());
    let after = chrono::Duration::minutes(rules["buffer_after_minutes"].as_i64().unwrap());
    let padded = |(a, b): Slot| (a - before, b + after);
    let overlap = |x: Slot, y: Slot| {
        let ((x0, x1), (y0, y1)) = (padded(x), padded(y));
        x0 < y1 && y0 < x1
    };
    let slot = |e: &Value| (time(e, "start"), time(e, "end"));
    let mut overlaps = 0;
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            if overlap(slot(a), slot(b)) {
                overlaps += 1;
                for e in [a, b] {
                    println!(
                        "overlapping: event {} booking {} {}–{} attendees {}",
                        e["id"], e["booking_id"], e["start"], e["end"], e["attendees"]
                    );
                }
            }
        }
    }
    let mut per_booking: HashMap<&str, usize> = HashMap::new();
    for e in &live {
        *per_booking
            .entry(e["booking_id"].as_str().unwrap())
            .or_default() += 1;
    }
    let ids: HashSet<&str> = live.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let told: Vec<&String> = results.iter().flat_map(|r| &r.booked).collect();
    let callers_booked = results.iter().filter(|r| !r.booked.is_empty()).count();
    let resumed = results.iter().filter(|r| r.resumes > 0).count();
    let dropped = results.iter().filter(|r| r.drops > 0).count();
    let taken: u32 = results.iter().map(|r| r.taken).sum();
    let unknown: usize = results
        .iter()
        .filter(|r| r.failures.iter().any(|f| f == "outcome_unknown"))
        .count();
    let unheard = results
        .iter()
        .filter(|r| r.resumes > 0 && r.booked.is_empty())
        .count();
    println!(
        "callers {CALLERS}, unheard {unheard}, booked {callers_booked} ({} booked frames), dropped {dropped}, resumed {resumed}, taken {taken}, outcome unknown {unknown}, Redis replies lost {lost_replies}, events {} live of {}, overlaps {overlaps}, elapsed {:.1?}",
        told.len(),
        live.len(),
        events.len(),
        started.elapsed()
    );

    for (i, r) in results.iter().enumerate() {
        if r.booked.is_empty() {
            println!(
                "caller {i}: booked {:?}, resumes {}, taken {}, failures {:?}",
                r.booked, r.resumes, r.taken, r.failures
            );
            for f in &r.trail {
                println!("    {f}");
            }
        }
    }
    // Whose event is whose: each caller's address is its own.
    let invitee = |e: &Value| -> Option<usize> {
        let attendees = e["attendees"].to_string();
        (0..CALLERS).find(|i| attendees.contains(&format!("\"caller{i}@example.com\"")))
    };
    // A caller told plainly that booking failed (not that the outcome is
    // unknown) has no meeting: no invite went out behind its back.
    let failed_with_event: Vec<usize> = live
        .iter()
        .filter_map(|e| invitee(e))
        .filter(|i| {
            let r = &results[*i];
            r.booked.is_empty()
                && !r.failures.is_empty()
                && !r.failures.iter().any(|f| f == "outcome_unknown")
        })
        .collect();
    // Every "taken" lost to a real booking (a live event, or one cancelled
    // after its hold lapsed) or to another caller's confirmation still in
    // flight when a fault cut it off.
    let unfinished: Vec<(usize, Slot)> = results
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.yeses
                .iter()
                .filter(|(_, ended)| *ended != "booked" && *ended != "taken")
                .map(move |(s, _)| (i, *s))
        })
        .collect();
    let any_event: Vec<Slot> = events
        .iter()
        .filter(|e| !e["start"].is_null())
        .map(slot)
        .collect();
    let mut taken_to_events = 0;
    let mut taken_to_in_flight = 0;
    let mut taken_unexplained = Vec::new();
    for (i, r) in results.iter().enumerate() {
        for t in &r.taken_slots {
            if any_event.iter().any(|e| overlap(*e, *t)) {
                taken_to_events += 1;
            } else if unfinished.iter().any(|(j, s)| *j != i && overlap(*s, *t)) {
                taken_to_in_flight += 1;
            } else {
                taken_unexplained.push((i, t.0));
            }
        }
    }
    let mut ends: HashMap<&str, usize> = HashMap::new();
    for (_, ended) in results.iter().flat_map(|r| &r.yeses) {
        *ends.entry(ended).or_default() += 1;
    }
    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for f in results.iter().flat_map(|r| &r.failures) {
        *reasons.entry(f.as_str()).or_default() += 1;
    }
    println!("answers to proposals, by how the turn ended: {ends:?}; failures: {reasons:?}");
    let mut told_ids: Vec<&str> = told.iter().map(|s| s.as_str()).collect();
    told_ids.sort_unstable();
    told_ids.dedup();
    let ledger = callbook::ledger::RedisLedger::connect(&redis.url, "callbook:ledger:")
        .await
        .unwrap();
    let now = callbook::clock::Clock::System.now();
    let window = callbook::schedule::Interval::new(
        now - chrono::Duration::days(30),
        now + chrono::Duration::days(400),
    );
    let claims = callbook::ledger::Ledger::claims(&ledger, &format!("google:{OWNER}"), window, now)
        .await
        .unwrap();
    let committed: HashSet<&str> = claims
        .iter()
        .filter(|c| c.committed)
        .map(|c| c.id.as_str())
        .collect();
    let uncovered: Vec<&str> = live
        .iter()
        .map(|e| e["booking_id"].as_str().unwrap())
        .filter(|b| !committed.contains(b))
        .collect();
    let open_claims: Vec<&callbook::ledger::Claim> = claims
        .iter()
        .filter(|c| !c.committed || c.unknown)
        .collect();
    println!(
        "events without a caller told booked: {} (the caller heard the outcome was unknown, or its server died); claims {} ({} committed, {} open); events without a committed claim: {uncovered:?}; taken: {taken_to_events} to an event, {taken_to_in_flight} to a confirmation cut off by a fault, unexplained {taken_unexplained:?}",
        live.len() - told_ids.len(),
        claims.len(),
        committed.len(),
        open_claims.len(),
    );
    let checks = [
        ("no two live events overlap with buffers", overlaps == 0),
        (
            "at most one event per booking",
            per_booking.values().all(|n| *n == 1),
        ),
        (
            "every caller told booked has an event",
            told.iter().all(|id| ids.contains(id.as_str())),
        ),
        (
            "no caller told it failed has an event",
            failed_with_event.is_empty(),
        ),
        (
            "every live event has a committed claim",
            uncovered.is_empty(),
        ),
        (
            "no hold or unknown claim outlives its TTL and the reconciler's runs",
            open_claims.is_empty(),
        ),
        (
            "every caller told taken lost to a real booking or one in flight",
            taken_unexplained.is_empty(),
        ),
        ("some callers booked", callers_booked > 0),
    ];
    for (name, ok) in &checks {
        println!("{} {name}", if *ok { "pass" } else { "FAIL" });
    }
    let failed = checks.iter().filter(|(_, ok)| !ok).count();
    println!("{} passed, {failed} failed", checks.len() - failed);
    assert_eq!(overlaps, 0, "no two live events overlap with buffers");
    assert!(
        per_booking.values().all(|n| *n == 1),
        "at most one event per booking id: {per_booking:?}"
    );
    for id in &told {
        assert!(
            ids.contains(id.as_str()),
            "a caller told booked has event {id}"
        );
    }
    assert!(
        failed_with_event.is_empty(),
        "callers told their booking failed have events: {failed_with_event:?}"
    );
    assert!(
        uncovered.is_empty(),
        "every live event has a committed claim: {uncovered:?}"
    );
    assert!(
        open_claims.is_empty(),
        "holds or unknown claims outlived the quiet period: {open_claims:?}"
    );
    assert!(
        taken_unexplained.is_empty(),
        "callers told taken with nothing there: {taken_unexplained:?}"
    );
    assert!(callers_booked > 0, "some callers booked");
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_process_takes_faults_and_busy_time_and_shows_its_events() {
    let dir = std::env::temp_dir().join(format!("callbook-emuctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = dir.join("provisioning.json");
    std::fs::write(&prov, DEFAULT).unwrap();
    let emulator = Emulator::start(&prov);
    assert_eq!(
        emulator.flag("google_client_id"),
        callbook::harness::EMULATOR_CLIENT_ID
    );
    let base = emulator.flag("control");
    let http = reqwest::Client::new();
    // Busy time goes in and comes back out as stored.
    emulator
        .control(
            reqwest::Method::POST,
            "/events",
            Some(
                json!({"provider": "google", "email": OWNER, "summary": "Dentist",
                        "start": "2030-01-07T15:00:00Z", "end": "2030-01-07T16:00:00Z"}),
            ),
        )
        .await;
    let events = emulator
        .control(
            reqwest::Method::GET,
            &format!("/events?provider=google&email={OWNER}"),
            None,
        )
        .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["summary"], "Dentist");
    assert_eq!(events[0]["start"], "2030-01-07T15:00:00Z");
    assert!(events[0]["booking_id"].is_null());
    // A fault fires on the provider's own endpoint, then is used up.
    emulator
        .control(
            reqwest::Method::POST,
            "/faults",
            Some(
                json!({"provider": "google", "email": OWNER, "endpoint": "token",
                        "fault": {"token": "invalid_grant"}}),
            ),
        )
        .await;
    let refresh = || {
        http.post(emulator.flag("google_token_url")).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "demo-refresh-token"),
            ("client_id", callbook::harness::EMULATOR_CLIENT_ID),
            ("client_secret", callbook::harness::EMULATOR_CLIENT_SECRET),
        ])
    };
    let first = refresh().send().await.unwrap();
    assert_eq!(first.status(), 400);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(refresh().send().await.unwrap().status().is_success());
    // Faults cleared do not fire.
    emulator
        .control(
            reqwest::Method::POST,
            "/faults",
            Some(
                json!({"provider": "google", "email": OWNER, "endpoint": "token",
                        "fault": {"status": 503}, "times": 5}),
            ),
        )
        .await;
    emulator
        .control(reqwest::Method::DELETE, "/faults", None)
        .await;
    assert!(refresh().send().await.unwrap().status().is_success());
    // What the control API cannot do, it says.
    for bad in [
        json!({"provider": "google", "email": OWNER, "endpoint": "nope", "fault": {"status": 503}}),
        json!({"provider": "google", "email": OWNER, "endpoint": "insert", "fault": {}}),
        json!({"provider": "google", "email": OWNER, "endpoint": "insert",
               "fault": {"status": 503, "latency_ms": 5}}),
        json!({"provider": "google", "email": OWNER, "endpoint": "insert", "fault": {"status": 200}}),
    ] {
        let resp = http
            .post(format!("{base}/faults"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
