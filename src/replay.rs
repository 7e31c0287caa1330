//! Replayable call fixtures: `callbook replay FILE…` and the fixture tests.
//!
//! A fixture sets a virtual start time, the owner's calendar and a campaign,
//! then runs a script of steps for one or more calls, interleaved with time
//! steps. After each call step the harness settles the call (see
//! [`CallClient::settle`]) and compares the frames the server sent with the
//! step's `expect` list: the same number of frames, each expected frame a
//! subset of the actual one (objects by key, arrays element by element,
//! scalars exactly, `"*"` for any present value). At the end it compares the events callbook created
//! with `calendar`. Everything runs in-process against the Google emulator
//! over real HTTP, on a virtual clock.

use crate::calendar::emulator::{Endpoint, Fault, StoredEvent, TokenFault};
use crate::clock::Clock;
use crate::harness::{frames, CallClient, Harness};
use crate::schedule::Interval;
use crate::store::provisioning::Provisioning;
use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// A fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The virtual clock's start.
    pub now: DateTime<Utc>,
    pub owner: Owner,
    pub campaign: CampaignSpec,
    /// Call name → who is called.
    pub calls: HashMap<String, Callee>,
    pub script: Vec<Step>,
    /// Events callbook created, in creation order (partial match each).
    #[serde(default)]
    pub calendar: Option<Vec<Value>>,
    /// Whether steps expect `turn` frames (protocol 1.2). Fixtures written
    /// before turns existed leave them out and still replay.
    #[serde(default)]
    pub turns: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub name: String,
    pub email: String,
    #[serde(default = "google")]
    pub provider: String,
    /// `active` (default), `expired` (marked in callbook's store),
    /// `revoked` (the provider refuses the grant), `consent_required` (the
    /// owner's organisation wants an administrator to approve callbook), or
    /// `missing`.
    #[serde(default = "active")]
    pub connection: String,
    #[serde(default = "yes")]
    pub meet: bool,
    /// For Microsoft: `work` (Teams, the default) or `personal`.
    #[serde(default = "work")]
    pub account: String,
    /// Events already on the calendar.
    #[serde(default)]
    pub events: Vec<SeedEvent>,
}

fn google() -> String {
    "google".into()
}

fn work() -> String {
    "work".into()
}

fn active() -> String {
    "active".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedEvent {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The provisioning file's `booking` object.
    pub booking: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callee {
    pub phone: String,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
}

/// One step. A call step does exactly one of `start`, `say`, `offer`,
/// `cancel`, `send`, `stop`; a time step only `advance`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub call: Option<String>,
    #[serde(default)]
    pub start: bool,
    #[serde(default)]
    pub say: Option<String>,
    #[serde(default)]
    pub offer: bool,
    #[serde(default)]
    pub cancel: bool,
    /// A raw frame (any JSON, or a string sent as-is).
    #[serde(default)]
    pub send: Option<Value>,
    #[serde(default)]
    pub stop: bool,
    /// "30s", "5m", "2h", "1d".
    #[serde(default)]
    pub advance: Option<String>,
    #[serde(default)]
    pub expect: Option<Vec<Value>>,
}

/// The outcome of one fixture.
pub struct Report {
    pub name: String,
    pub transcript: String,
    pub failures: Vec<String>,
    /// What each step produced (empty for time steps), for `--record`.
    pub frames: Vec<Vec<Value>>,
    /// Events callbook created, as stored by the emulator.
    pub created: Vec<Value>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    Ok(match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => bail!("bad duration unit in {s:?} (use s, m, h or d)"),
    })
}

impl Fixture {
    pub fn load(path: &Path) -> anyhow::Result<Fixture> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    fn provisioning(&self) -> anyhow::Result<Provisioning> {
        let mut user = json!({"id": "owner", "name": self.owner.name, "email": self.owner.email});
        if self.owner.connection != "missing" {
            let mut conn =
                json!({"provider": self.owner.provider, "refresh_token": "fixture-refresh-token"});
            if self.owner.connection == "expired" {
                conn["expired_at"] = json!(self.now - Duration::days(1));
            }
            user["connection"] = conn;
        }
        let mut campaign =
            json!({"id": self.campaign.id, "name": self.campaign.name, "owner": "owner"});
        if let Some(b) = &self.campaign.booking {
            campaign["booking"] = b.clone();
        }
        let doc = json!({"users": [user], "campaigns": [campaign]});
        Provisioning::parse(&doc.to_string()).map_err(|e| anyhow!("fixture setup: {e}"))
    }

    /// Runs the fixture and reports every expectation that failed.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let clock = Clock::manual(self.now);
        let owner = &self.owner;
        let microsoft = owner.provider == "microsoft";
        let harness = Harness::start(self.provisioning()?, clock.clone(), |emu| {
            for e in &owner.events {
                let slot = Interval::new(e.start, e.end);
                if microsoft {
                    emu.microsoft
                        .add_event(&owner.email, &e.summary, slot, "busy");
                } else {
                    emu.google.add_event(&owner.email, &e.summary, slot);
                }
            }
            if microsoft && owner.account == "personal" {
                emu.microsoft.make_personal(&owner.email);
            }
            if owner.connection == "revoked" {
                emu.google.revoke(&owner.email);
                emu.microsoft.revoke(&owner.email);
            }
            if owner.connection == "consent_required" {
                let fault = Fault::Token(TokenFault::ConsentRequired);
                emu.google
                    .inject(&owner.email, Endpoint::Token, fault.clone(), u32::MAX);
                emu.microsoft
                    .inject(&owner.email, Endpoint::Token, fault, u32::MAX);
            }
        })
        .await?;
        let mut report = Report {
            name: self.name.clone(),
            transcript: String::new(),
            failures: Vec::new(),
            frames: Vec::new(),
            created: Vec::new(),
        };
        let result = self.run_script(&harness, &clock, &mut report).await;
        let events: Vec<StoredEvent> = if microsoft {
            harness.microsoft.events(&self.owner.email)
        } else {
            harness.google.events(&self.owner.email)
        };
        harness.stop().await?;
        result?;
        report.created = events
            .iter()
            .filter(|e| e.booking_id.is_some())
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        if let Some(expected) = &self.calendar {
            if let Some(diff) = compare_list("calendar", expected, &report.created) {
                report.failures.push(diff);
            }
        }
        Ok(report)
    }

    async fn run_script(
        &self,
        harness: &Harness,
        clock: &Clock,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let mut clients: HashMap<String, CallClient> = HashMap::new();
        for (i, step) in self.script.iter().enumerate() {
            if let Some(d) = &step.advance {
                clock.advance(parse_duration(d)?);
                report.frames.push(Vec::new());
                let _ = writeln!(
                    report.transcript,
                    "      … {d} later ({})",
                    clock.now().format("%a %Y-%m-%d %H:%M UTC")
                );
                continue;
            }
            let name = step
                .call
                .clone()
                .ok_or_else(|| anyhow!("step {i}: needs \"call\" or \"advance\""))?;
            let callee = self
                .calls
                .get(&name)
                .ok_or_else(|| anyhow!("step {i}: unknown call {name:?}"))?;
            let call_sid = format!("CA{:0>32}", name);
            if step.start {
                let mut client = harness.connect().await?;
                let mut params = json!({
                    "campaign_id": self.campaign.id,
                    "recipient_phone": callee.phone,
                    "recipient_first_name": callee.first_name,
                });
                if let Some(last) = &callee.last_name {
                    params["recipient_last_name"] = json!(last);
                }
                client.send(&frames::connected()).await?;
                client.send(&frames::start(&call_sid, params)).await?;
                for seq in 2..5 {
                    client.send(&frames::media(seq)).await?;
                }
                let _ = writeln!(report.transcript, "[{name}] ── call starts ──");
                clients.insert(name.clone(), client);
            } else {
                let client = clients
                    .get_mut(&name)
                    .ok_or_else(|| anyhow!("step {i}: call {name:?} has not started"))?;
                if let Some(text) = &step.say {
                    let _ = writeln!(report.transcript, "[{name}] caller: {text}");
                    client.send(&frames::transcript(text)).await?;
                } else if step.offer {
                    let _ = writeln!(report.transcript, "[{name}] pipeline: booking offer");
                    client.send(&frames::offer()).await?;
                } else if step.cancel {
                    let _ = writeln!(report.transcript, "[{name}] pipeline: booking cancel");
                    client
                        .send(&json!({"event": "booking", "booking": {"action": "cancel"}}))
                        .await?;
                } else if let Some(raw) = &step.send {
                    let text = raw.as_str().map_or_else(|| raw.to_string(), str::to_string);
                    let _ = writeln!(report.transcript, "[{name}] pipeline sends: {text}");
                    client.send_raw(&text).await?;
                } else if step.stop {
                    let _ = writeln!(report.transcript, "[{name}] ── call ends ──");
                    client.send(&frames::stop(&call_sid)).await?;
                } else {
                    bail!("step {i}: nothing to do");
                }
            }
            let client = clients
                .get_mut(&name)
                .ok_or_else(|| anyhow!("step {i}: no client"))?;
            let mut got = if step.stop {
                client.drain().await?
            } else {
                client.settle().await?
            };
            if !self.turns {
                got.retain(|f| f["event"] != "turn");
            }
            for frame in &got {
                let _ = writeln!(report.transcript, "[{name}] {}", describe(frame));
            }
            if let Some(expected) = &step.expect {
                if let Some(diff) =
                    compare_list(&format!("step {} (call {name})", i + 1), expected, &got)
                {
                    report.failures.push(diff);
                }
            }
            report.frames.push(got);
        }
        Ok(())
    }
}

/// One outbound frame as a transcript line.
fn describe(frame: &Value) -> String {
    match frame["event"].as_str() {
        Some("say") => format!(
            "agent: {}",
            frame["say"]["text"].as_str().unwrap_or_default()
        ),
        Some("booking") => {
            let b = &frame["booking"];
            let mut rest = b.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("status");
            }
            let detail = if rest.as_object().is_some_and(|o| o.is_empty()) {
                String::new()
            } else {
                format!(" {rest}")
            };
            format!("booking: {}{}", b["status"].as_str().unwrap_or("?"), detail)
        }
        Some("error") => format!(
            "error: {} ({})",
            frame["error"]["code"], frame["error"]["message"]
        ),
        Some("turn") => {
            let t = &frame["turn"];
            let floor = if t["floor"] == true {
                ", callbook holds the floor"
            } else {
                ""
            };
            format!("turn: {}{floor}", t["owner"].as_str().unwrap_or("?"))
        }
        _ => frame.to_string(),
    }
}

/// Whether `expected` is a subset of `actual`; on mismatch, the JSON path.
fn subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    Some(av) => subset(v, av, &p)?,
                    None => return Err(format!("{p}: missing (expected {v})")),
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, av, &format!("{path}/{i}"))?;
            }
            Ok(())
        }
        // "*" stands for any value that is present and not null (ids,
        // links and other values that differ from run to run).
        (Value::String(w), a) if w == "*" && !a.is_null() => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, got {a}")),
    }
}

/// Compares an expected list with the actual one; `None` when they match.
fn compare_list(what: &str, expected: &[Value], actual: &[Value]) -> Option<String> {
    let mut problems = Vec::new();
    if expected.len() != actual.len() {
        problems.push(format!(
            "expected {} frames, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, e) in expected.iter().enumerate() {
        match actual.get(i) {
            Some(a) => {
                if let Err(p) = subset(e, a, "") {
                    problems.push(format!("item {}: {p}", i + 1));
                }
            }
            None => problems.push(format!("item {}: missing", i + 1)),
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut out = format!("{what}:\n");
    for p in &problems {
        let _ = writeln!(out, "    {p}");
    }
    let _ = writeln!(out, "  expected:");
    for e in expected {
        let _ = writeln!(out, "    - {e}");
    }
    let _ = writeln!(out, "  actual:");
    for a in actual {
        let _ = writeln!(out, "    + {a}");
    }
    Some(out)
}

/// Replays each file, printing transcripts and diffs; true when all pass.
/// With `record`, prints what each run produced as JSON instead (one object
/// per file: `{"file", "steps": [[frame…]…], "calendar": [event…]}`), to
/// author expectations from a reviewed run.
pub async fn replay_files(
    paths: &[std::path::PathBuf],
    verbose: bool,
    record: bool,
) -> anyhow::Result<bool> {
    let mut passed = 0usize;
    let mut failed = 0usize;
    for path in paths {
        let fixture = Fixture::load(path)?;
        let report = fixture
            .run()
            .await
            .with_context(|| format!("replaying {}", path.display()))?;
        if record {
            let out = json!({"file": path.display().to_string(), "steps": report.frames, "calendar": report.created});
            println!("{out}");
            continue;
        }
        let mark = if report.passed() { "ok  " } else { "FAIL" };
        println!("{mark} {} — {}", path.display(), report.name);
        if verbose || !report.passed() {
            for line in report.transcript.lines() {
                println!("     {line}");
            }
        }
        for f in &report.failures {
            println!("  mismatch in {f}");
        }
        if report.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    if !record {
        println!("{passed} passed, {failed} failed");
    }
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_matching_names_the_path() {
        let actual = json!({"event": "say", "say": {"id": "s1", "text": "hello"}});
        assert!(subset(&json!({"event": "say"}), &actual, "").is_ok());
        let err = subset(&json!({"say": {"text": "bye"}}), &actual, "").unwrap_err();
        assert_eq!(err, "/say/text: expected \"bye\", got \"hello\"");
    }

    #[test]
    fn a_missing_expected_frame_is_a_mismatch() {
        let actual = vec![json!({"event": "say"}), json!({"event": "booking"})];
        assert!(compare_list("x", &[json!({"event": "say"})], &actual).is_some());
        assert!(compare_list("x", &[json!({"event": "say"}), json!({})], &actual).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::days(2));
        assert!(parse_duration("soon").is_err());
    }
}
