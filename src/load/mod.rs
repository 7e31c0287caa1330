//! The load generator: many booking calls at once against one calendar,
//! each over its own WebSocket, with how long every reply took.
//!
//! `callbook load --calls N [--instances K] [--redis-url URL]` runs the
//! embedded defaults in-process on the provider emulators. With a Redis
//! URL, K callbook servers share it (ledger and store) and the calls are
//! spread across them. Every call takes the first slot it is offered and
//! says yes again when told it was just taken. The report counts bookings
//! and events, checks that no two events overlap, and gives reply times.
//! (Tooling: errors are `anyhow`.)

pub mod twilio;

use crate::clock::Clock;
use crate::harness::{frames, CallClient, Emulators, Harness};
use crate::ledger::{Ledger, MemoryLedger, RedisLedger};
use crate::store::provisioning::{Provisioning, DEFAULT};
use crate::store::secrets::TokenCipher;
use crate::store::{RedisStore, Store};
use anyhow::{bail, Context};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How many proposals a caller says yes to before giving up; enough for
/// every caller to find a slot while hundreds chase the same calendar.
const MAX_TRIES: usize = 200;

/// What one call saw.
struct CallResult {
    booked: bool,
    taken: u32,
    replies: Vec<Duration>,
}

/// Runs `calls` concurrent calls over `instances` servers and returns the
/// report as JSON.
pub async fn run(calls: usize, instances: usize, redis_url: Option<&str>) -> anyhow::Result<Value> {
    if instances > 1 && redis_url.is_none() {
        bail!("--instances above 1 needs --redis-url: separate instances share claims only through Redis");
    }
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT)?);
    let clock = Clock::System;
    let prefix = format!("callbook:load:{}:", uuid::Uuid::new_v4().simple());
    // One throwaway key for all instances (they must open each other's
    // tokens); the run's tokens are the emulator's and need no lasting
    // secrecy.
    let key = SecretString::from(base64_key());
    let mut apps = Vec::new();
    for _ in 0..instances.max(1) {
        let prov = Provisioning::parse(DEFAULT)?;
        let (ledger, store): (Arc<dyn Ledger>, Arc<dyn Store>) = match redis_url {
            Some(url) => {
                let cipher = TokenCipher::from_base64(&key)?;
                let store = RedisStore::connect(url, &prefix, cipher, prov.into_store())
                    .await
                    .context("connecting to Redis")?;
                let ledger = RedisLedger::connect(url, &format!("{prefix}ledger:"))
                    .await
                    .context("connecting to Redis")?;
                (Arc::new(ledger), Arc::new(store))
            }
            None => (Arc::new(MemoryLedger::new()), Arc::new(prov.into_store())),
        };
        apps.push(Arc::new(
            Harness::start_with_options(
                clock.clone(),
                emulators.clone(),
                ledger,
                store,
                loopback_clients(calls),
            )
            .await?,
        ));
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            tokio::spawn(async move { one_call(&app, i).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    let elapsed = started.elapsed();
    for app in apps {
        if let Ok(app) = Arc::try_unwrap(app) {
            app.stop().await?;
        }
    }
    let events: Vec<_> = emulators
        .google
        .events("alex@callbook.example")
        .into_iter()
        .filter(|e| e.booking_id.is_some() && e.status != "cancelled")
        .collect();
    let mut overlapping = 0;
    for (i, a) in events.iter().enumerate() {
        for b in &events[i + 1..] {
            if a.start < b.end && b.start < a.end {
                overlapping += 1;
            }
        }
    }
    let mut replies: Vec<Duration> = results.iter().flat_map(|r| r.replies.clone()).collect();
    replies.sort();
    let pct = |p: f64| {
        let i = ((replies.len() as f64 - 1.0) * p).round() as usize;
        replies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(json!({
        "calls": calls,
        "instances": instances.max(1),
        "ledger": if redis_url.is_some() { "redis" } else { "memory" },
        "booked": results.iter().filter(|r| r.booked).count(),
        "taken_then_rebooked": results.iter().map(|r| r.taken).sum::<u32>(),
        "events": events.len(),
        "overlapping_events": overlapping,
        "replies": replies.len(),
        "reply_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        "elapsed_s": elapsed.as_secs_f64(),
    }))
}

/// What a caller says, one line a second: small talk for the agent and a
/// whole booking for callbook, so both kinds of turn are measured, some
/// of them while calendar work runs.
const TURN_SCRIPT: [&str; 8] = [
    "hi, what's this about?",
    "can we set up a meeting?",
    "sure",
    "caller at example dot com",
    "yes that's right",
    "yes that works",
    "great, thanks",
    "what's the weather like there?",
];

/// Every simulated call comes from loopback, one client address: the
/// per-client connection cap (64 by default, against one abusive client)
/// is raised to the calls the run opens, so the load is measured rather
/// than refused.
fn loopback_clients(calls: usize) -> crate::harness::Options {
    let defaults = crate::server::limits::Limits::default();
    crate::harness::Options {
        limits: Some(crate::server::limits::Limits {
            max_connections_per_client: defaults.max_connections_per_client.max(calls + 16),
            ..defaults
        }),
        ..crate::harness::Options::default()
    }
}

/// `callbook load --turns-for S`: `calls` concurrent calls, each streaming
/// Twilio media (a frame every 20 ms, as Twilio sends them) and a final
/// transcript every second. Reports how long each transcript waited for
/// its `turn` answer, the figure a pipeline waits on before letting its
/// LLM speak.
pub async fn turns(calls: usize, run_for: Duration) -> anyhow::Result<Value> {
    let emulators = Emulators::new();
    emulators.seed(&Provisioning::parse(DEFAULT)?);
    let app = Arc::new(
        Harness::start_with_options(
            Clock::System,
            emulators,
            Arc::new(MemoryLedger::new()),
            Arc::new(Provisioning::parse(DEFAULT)?.into_store()),
            loopback_clients(calls),
        )
        .await?,
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move { turn_call(&app, i, run_for).await })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut sent, mut media, mut callbook_turns) = (0usize, 0usize, 0usize);
    for t in tasks {
        let r = t.await??;
        sent += r.sent;
        media += r.media;
        callbook_turns += r.callbook;
        latencies.extend(r.latencies);
    }
    let elapsed = started.elapsed();
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await?;
    }
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(json!({
        "calls": calls,
        "transcripts": sent,
        "media_frames": media,
        "turns": latencies.len(),
        "callbook_turns": callbook_turns,
        "unanswered": sent - latencies.len(),
        "turn_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        "elapsed_s": elapsed.as_secs_f64(),
    }))
}

struct TurnResult {
    sent: usize,
    media: usize,
    callbook: usize,
    latencies: Vec<Duration>,
}

async fn turn_call(app: &Harness, i: usize, run_for: Duration) -> anyhow::Result<TurnResult> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut call = app.connect().await?;
    let sid = format!("CA{:032x}", 0x7000_0000 + i);
    let params = json!({"campaign_id": "demo", "recipient_phone": "+14155550123",
                        "recipient_first_name": "Caller"});
    call.send(&frames::connected()).await?;
    call.send(&frames::start(&sid, params)).await?;
    call.settle().await?;
    let (mut tx, mut rx) = call.into_split();
    // Calls start their transcripts at different moments within a second.
    let offset = Duration::from_millis((i as u64 * 7) % 1000);
    let mut media = tokio::time::interval(Duration::from_millis(20));
    let mut speak = tokio::time::interval_at(Instant::now() + offset, Duration::from_secs(1));
    let end = Instant::now() + run_for;
    let mut pending: std::collections::VecDeque<Instant> = Default::default();
    let mut result = TurnResult {
        sent: 0,
        media: 0,
        callbook: 0,
        latencies: Vec::new(),
    };
    let mut seq = 2u64;
    loop {
        tokio::select! {
            _ = media.tick() => {
                if Instant::now() >= end {
                    break;
                }
                seq += 1;
                tx.send(Message::Text(frames::media(seq).to_string().into())).await?;
                result.media += 1;
            }
            _ = speak.tick() => {
                let line = TURN_SCRIPT[result.sent % TURN_SCRIPT.len()];
                pending.push_back(Instant::now());
                tx.send(Message::Text(frames::transcript(line).to_string().into())).await?;
                result.sent += 1;
            }
            frame = rx.next() => {
                let Some(Ok(Message::Text(text))) = frame else { break };
                let v: Value = serde_json::from_str(&text)?;
                if v["event"] == "turn" {
                    if let Some(at) = pending.pop_front() {
                        result.latencies.push(at.elapsed());
                    }
                    if v["turn"]["owner"] == "callbook" {
                        result.callbook += 1;
                    }
                }
            }
        }
    }
    // Collect the answers still in flight.
    while !pending.is_empty() {
        match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let v: Value = serde_json::from_str(&text)?;
                if v["event"] == "turn" {
                    if let Some(at) = pending.pop_front() {
                        result.latencies.push(at.elapsed());
                    }
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    tx.send(Message::Text(frames::stop(&sid).to_string().into()))
        .await?;
    Ok(result)
}

fn base64_key() -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One caller: offer, yes, email, confirm the read-back, then yes to each
/// proposal (or "the first one" when several are on offer) until booked (a
/// taken slot brings alternatives).
async fn one_call(app: &Harness, i: usize) -> anyhow::Result<CallResult> {
    let mut call = app.connect().await?;
    call.send(&frames::connected()).await?;
    let sid = format!("CA{:032x}", i + 1);
    let phone = format!("+1415555{:04}", i % 10_000);
    let params = json!({"campaign_id": "demo", "recipient_phone": phone,
                        "recipient_first_name": "Caller", "recipient_last_name": format!("{i}")});
    call.send(&frames::start(&sid, params)).await?;
    call.settle().await?;
    let mut result = CallResult {
        booked: false,
        taken: 0,
        replies: Vec::new(),
    };
    let email = format!("caller {i} at example dot com");
    let script = [
        frames::offer(),
        frames::transcript("yes"),
        frames::transcript(&email),
        frames::transcript("yes"),
    ];
    for frame in script {
        let (took, _) = turn(&mut call, frame).await?;
        result.replies.push(took);
    }
    // Several slots on offer are answered with a pick, one with a yes.
    let mut answer = "yes";
    for _ in 0..MAX_TRIES {
        let (took, got) = turn(&mut call, frames::transcript(answer)).await?;
        answer = if got
            .iter()
            .any(|f| f["booking"]["status"] == "proposed" && f["booking"]["options"].is_array())
        {
            "the first one"
        } else {
            "yes"
        };
        result.replies.push(took);
        let status = got
            .iter()
            .filter(|f| f["event"] == "booking")
            .map(|f| {
                f["booking"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<Vec<_>>();
        if status.iter().any(|s| s == "booked") {
            result.booked = true;
            break;
        }
        if status.iter().any(|s| s == "taken") {
            result.taken += 1;
            continue;
        }
        break;
    }
    Ok(result)
}

/// Sends one frame and waits for everything it causes; returns how long
/// that took.
async fn turn(call: &mut CallClient, frame: Value) -> anyhow::Result<(Duration, Vec<Value>)> {
    let t = Instant::now();
    call.send(&frame).await?;
    let got = call.settle().await?;
    Ok((t.elapsed(), got))
}
