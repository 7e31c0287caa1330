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
    /// Checks on the calendar as a whole, after the script.
    #[serde(default)]
    pub calendar_checks: Option<CalendarChecks>,
    /// Set while recording a run to author expectations: steps may then
    /// lack `expect`.
    #[serde(skip)]
    pub recording: bool,
}

/// Invariants of the owner's calendar after the calls, checked on the
/// emulator's own events (what the provider holds), not on callbook's view.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CalendarChecks {
    /// How many live events callbook created.
    #[serde(default)]
    pub events: Option<usize>,
    /// No two live events overlap once the campaign's buffers are added.
    #[serde(default)]
    pub no_overlap: bool,
    /// Every live event starts within this many days of `now`.
    #[serde(default)]
    pub within_days: Option<i64>,
}

/// What a step expects: the frames exactly, in order (a list), or only
/// that some frames are among them and others are not (`includes`,
/// `excludes`). Inside either, a value may be a matcher (see `matches`).
#[derive(Debug)]
pub enum Expect {
    Exactly(Vec<Value>),
    Some {
        includes: Vec<Value>,
        excludes: Vec<Value>,
    },
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Some {
            #[serde(default)]
            includes: Vec<Value>,
            #[serde(default)]
            excludes: Vec<Value>,
        }
        match Value::deserialize(d)? {
            Value::Array(frames) => Ok(Expect::Exactly(frames)),
            v @ Value::Object(_) => {
                let some: Some = serde_json::from_value(v).map_err(serde::de::Error::custom)?;
                Ok(Expect::Some {
                    includes: some.includes,
                    excludes: some.excludes,
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "expect: a list of frames or {{\"includes\", \"excludes\"}}, not {other}"
            ))),
        }
    }
}

impl Expect {
    /// How many exact frames the step lists (0 for includes/excludes).
    pub fn len(&self) -> usize {
        match self {
            Expect::Exactly(frames) => frames.len(),
            Expect::Some { .. } => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact frames, when the step lists them.
    pub fn frames_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Expect::Exactly(frames) => Some(frames),
            Expect::Some { .. } => None,
        }
    }
}

/// A provider fault that starts mid-call, on the owner's account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// `token`, `calendar_list`, `mailbox_settings`, `free_busy`, `insert`,
    /// `get`, `patch` or `delete`.
    pub endpoint: String,
    /// An HTTP status to answer with (a 429 or 5xx is retried by callbook).
    #[serde(default)]
    pub status: Option<u16>,
    /// Or answer this late, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// How many requests it hits.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
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
    /// Microsoft: the mailbox's zone as Graph reports it (a Windows or an
    /// IANA name, or one neither); the campaign's zone by default.
    #[serde(default)]
    pub mailbox_zone: Option<String>,
    /// Microsoft: Teams links come back from the create without the link,
    /// which appears after this many reads of the event.
    #[serde(default)]
    pub teams_link_after_reads: Option<u32>,
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
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Instead of `start` and `end` (Microsoft only): an all-day event from
    /// this date for `days` days (1 by default), as Graph returns one.
    #[serde(default)]
    pub all_day: Option<chrono::NaiveDate>,
    #[serde(default)]
    pub days: Option<u32>,
    /// Microsoft's `showAs` (`busy` by default; `oof` for a day off).
    #[serde(default)]
    pub show_as: Option<String>,
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
/// `cancel`, `send`, `stop`, and says what it expects; a time step only
/// `advance`; a fault step only `fault`.
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
    pub fault: Option<FaultStep>,
    #[serde(default)]
    pub expect: Option<Expect>,
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
    /// Values captured by `{"$capture": name}` matchers.
    pub captures: Captures,
    /// Every calendar API request callbook sent during the replay and the
    /// emulator's answer, in order (Google's, then Graph's), for the
    /// checks against the providers' published contracts.
    pub exchanges: Vec<crate::calendar::emulator::Exchange>,
}

/// Values a fixture captured in one step to compare in a later one.
pub type Captures = HashMap<String, Value>;

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
        for e in &owner.events {
            match (e.start, e.end, e.all_day) {
                (Some(_), Some(_), None) => {}
                (None, None, Some(_)) if microsoft => {}
                (None, None, Some(_)) => bail!("owner.events: all_day is for microsoft owners"),
                _ => bail!("owner.events: give start and end, or all_day"),
            }
        }
        let harness = Harness::start(self.provisioning()?, clock.clone(), |emu| {
            emu.google.recorder().start();
            emu.microsoft.recorder().start();
            if let (true, Some(zone)) = (microsoft, &owner.mailbox_zone) {
                emu.microsoft.set_mailbox_zone(&owner.email, zone);
            }
            if let (true, Some(reads)) = (microsoft, owner.teams_link_after_reads) {
                emu.microsoft.teams_link_after_reads(&owner.email, reads);
            }
            for e in &owner.events {
                let show_as = e.show_as.as_deref().unwrap_or("busy");
                match (e.start, e.end, e.all_day) {
                    (_, _, Some(day)) => emu.microsoft.add_all_day_event(
                        &owner.email,
                        &e.summary,
                        day,
                        e.days.unwrap_or(1),
                        show_as,
                    ),
                    (Some(start), Some(end), None) if microsoft => emu.microsoft.add_event(
                        &owner.email,
                        &e.summary,
                        Interval::new(start, end),
                        show_as,
                    ),
                    (Some(start), Some(end), None) => {
                        emu.google
                            .add_event(&owner.email, &e.summary, Interval::new(start, end))
                    }
                    _ => {}
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
            captures: Captures::new(),
            exchanges: Vec::new(),
        };
        let result = self.run_script(&harness, &clock, &mut report).await;
        report.exchanges = harness.google.recorder().take();
        report.exchanges.extend(harness.microsoft.recorder().take());
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
            if let Some(diff) =
                compare_list("calendar", expected, &report.created, &mut report.captures)
            {
                report.failures.push(diff);
            }
        }
        if let Some(checks) = &self.calendar_checks {
            report.failures.extend(self.check_calendar(checks, &events));
        }
        Ok(report)
    }

    /// The calendar-wide checks, on the emulator's live events.
    fn check_calendar(&self, checks: &CalendarChecks, events: &[StoredEvent]) -> Vec<String> {
        let live: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| e.booking_id.is_some() && e.status != "cancelled")
            .collect();
        let mut problems = Vec::new();
        if let Some(n) = checks.events {
            if live.len() != n {
                problems.push(format!(
                    "calendar: expected {n} live events, found {}",
                    live.len()
                ));
            }
        }
        if checks.no_overlap {
            let rules = self.campaign.booking.as_ref().map(|b| &b["rules"]);
            let minutes =
                |k: &str| Duration::minutes(rules.and_then(|r| r[k].as_i64()).unwrap_or(0));
            let (before, after) = (
                minutes("buffer_before_minutes"),
                minutes("buffer_after_minutes"),
            );
            for (i, a) in live.iter().enumerate() {
                for b in &live[i + 1..] {
                    if a.start - before < b.end + after && b.start - before < a.end + after {
                        problems.push(format!(
                            "calendar: events {} and {} overlap with their buffers",
                            a.start, b.start
                        ));
                    }
                }
            }
        }
        if let Some(days) = checks.within_days {
            let limit = self.now + Duration::days(days);
            for e in &live {
                if e.start < self.now || e.start > limit {
                    problems.push(format!(
                        "calendar: event at {} is not within {days} days of now",
                        e.start
                    ));
                }
            }
        }
        problems
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
            if let Some(fault) = &step.fault {
                self.inject(harness, fault)?;
                report.frames.push(Vec::new());
                let _ = writeln!(
                    report.transcript,
                    "      ✕ the provider's {} starts failing",
                    fault.endpoint
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
            let what = format!("step {} (call {name})", i + 1);
            match &step.expect {
                Some(Expect::Exactly(expected)) => {
                    if let Some(diff) = compare_list(&what, expected, &got, &mut report.captures) {
                        report.failures.push(diff);
                    }
                }
                Some(Expect::Some { includes, excludes }) => {
                    if let Some(diff) = compare_some(&what, includes, excludes, &got, &mut report.captures)
                    {
                        report.failures.push(diff);
                    }
                }
                None if self.recording => {}
                None => report.failures.push(format!(
                    "{what}: no \"expect\": every call step must say what it expects ([] for nothing)"
                )),
            }
            report.frames.push(got);
        }
        Ok(())
    }
}

impl Fixture {
    /// Starts a provider fault on the owner's account, on both providers
    /// (only the one in use sees requests).
    fn inject(&self, harness: &Harness, fault: &FaultStep) -> anyhow::Result<()> {
        use crate::calendar::emulator::{Endpoint, Fault};
        let endpoint = match fault.endpoint.as_str() {
            "token" => Endpoint::Token,
            "calendar_list" => Endpoint::CalendarList,
            "mailbox_settings" => Endpoint::MailboxSettings,
            "free_busy" => Endpoint::FreeBusy,
            "insert" => Endpoint::Insert,
            "get" => Endpoint::Get,
            "list" => Endpoint::List,
            "patch" => Endpoint::Patch,
            "delete" => Endpoint::Delete,
            other => bail!("fault: unknown endpoint {other:?}"),
        };
        // Each provider's own reason (Google) or code (Graph).
        let (google, graph) = match (fault.status, fault.latency_ms) {
            (Some(code), None) => {
                let status = |reason| Fault::Status {
                    code,
                    reason,
                    retry_after: None,
                };
                match code {
                    429 => (status("rateLimitExceeded"), status("TooManyRequests")),
                    _ => (status("backendError"), status("ServiceNotAvailable")),
                }
            }
            (None, Some(ms)) => {
                let late = Fault::Latency(std::time::Duration::from_millis(ms));
                (late.clone(), late)
            }
            _ => bail!("fault: give exactly one of status and latency_ms"),
        };
        let email = &self.owner.email;
        harness.google.inject(email, endpoint, google, fault.times);
        harness
            .microsoft
            .inject(email, endpoint, graph, fault.times);
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
/// Whether `actual` holds everything in `expected`. Objects match on the
/// keys expected; arrays item by item; `"*"` is any value present and not
/// null. An object with a single `$` key is a matcher:
///
/// - `{"$contains": "text"}`, `{"$not_contains": "text"}`, `{"$regex": "…"}`
///   on strings;
/// - `{"$min_items": n}`, `{"$max_items": n}` on arrays;
/// - `{"$capture": "name"}` keeps the value (any, not null) and
///   `{"$same_as": "name"}` compares with a value kept earlier.
fn subset(
    expected: &Value,
    actual: &Value,
    path: &str,
    captures: &mut Captures,
) -> Result<(), String> {
    if let Some((op, arg)) = matcher(expected) {
        return check_matcher(op, arg, actual, path, captures);
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    Some(av) => subset(v, av, &p, captures)?,
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
                subset(ev, av, &format!("{path}/{i}"), captures)?;
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

/// A matcher's operator and argument, when `v` is one.
fn matcher(v: &Value) -> Option<(&str, &Value)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (k, arg) = obj.iter().next()?;
    k.starts_with('$').then_some((k.as_str(), arg))
}

fn check_matcher(
    op: &str,
    arg: &Value,
    actual: &Value,
    path: &str,
    captures: &mut Captures,
) -> Result<(), String> {
    let text = || {
        actual
            .as_str()
            .ok_or_else(|| format!("{path}: expected a string for {op}, got {actual}"))
    };
    let want_str = || {
        arg.as_str()
            .ok_or_else(|| format!("{path}: {op} takes a string"))
    };
    let count = || {
        actual
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| format!("{path}: expected a list for {op}, got {actual}"))
    };
    let n = || {
        arg.as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("{path}: {op} takes a number"))
    };
    match op {
        "$contains" => {
            let (t, w) = (text()?, want_str()?);
            t.contains(w)
                .then_some(())
                .ok_or_else(|| format!("{path}: {t:?} does not contain {w:?}"))
        }
        "$not_contains" => {
            let (t, w) = (text()?, want_str()?);
            (!t.contains(w))
                .then_some(())
                .ok_or_else(|| format!("{path}: {t:?} contains {w:?}"))
        }
        "$regex" => {
            let (t, w) = (text()?, want_str()?);
            let re = regex::Regex::new(w).map_err(|e| format!("{path}: bad $regex: {e}"))?;
            re.is_match(t)
                .then_some(())
                .ok_or_else(|| format!("{path}: {t:?} does not match /{w}/"))
        }
        "$min_items" => {
            let (c, m) = (count()?, n()?);
            (c >= m)
                .then_some(())
                .ok_or_else(|| format!("{path}: expected at least {m} items, got {c}"))
        }
        "$max_items" => {
            let (c, m) = (count()?, n()?);
            (c <= m)
                .then_some(())
                .ok_or_else(|| format!("{path}: expected at most {m} items, got {c}"))
        }
        "$capture" => {
            let name = want_str()?;
            if actual.is_null() {
                return Err(format!("{path}: nothing to capture as {name:?}"));
            }
            captures.insert(name.to_string(), actual.clone());
            Ok(())
        }
        "$same_as" => {
            let name = want_str()?;
            match captures.get(name) {
                Some(v) if v == actual => Ok(()),
                Some(v) => Err(format!("{path}: expected {v} (as {name:?}), got {actual}")),
                None => Err(format!("{path}: nothing was captured as {name:?}")),
            }
        }
        other => Err(format!("{path}: unknown matcher {other}")),
    }
}

/// `includes`: each must match some frame; `excludes`: none may match any.
fn compare_some(
    what: &str,
    includes: &[Value],
    excludes: &[Value],
    actual: &[Value],
    captures: &mut Captures,
) -> Option<String> {
    let mut problems = Vec::new();
    for inc in includes {
        let found = actual.iter().find(|a| {
            let mut scratch = captures.clone();
            subset(inc, a, "", &mut scratch).is_ok()
        });
        match found {
            // Match again for real, so its captures are kept.
            Some(a) => {
                let _ = subset(inc, a, "", captures);
            }
            None => problems.push(format!("no frame matches {inc}")),
        }
    }
    for exc in excludes {
        for a in actual {
            let mut scratch = captures.clone();
            if subset(exc, a, "", &mut scratch).is_ok() {
                problems.push(format!("a frame matches what it must not ({exc}): {a}"));
            }
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut out = format!("{what}:\n");
    for p in &problems {
        let _ = writeln!(out, "    {p}");
    }
    let _ = writeln!(out, "  actual:");
    for a in actual {
        let _ = writeln!(out, "    + {a}");
    }
    Some(out)
}

/// Compares an expected list with the actual one; `None` when they match.
fn compare_list(
    what: &str,
    expected: &[Value],
    actual: &[Value],
    captures: &mut Captures,
) -> Option<String> {
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
                if let Err(p) = subset(e, a, "", captures) {
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
        let mut fixture = Fixture::load(path)?;
        fixture.recording = record;
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
        let mut c = Captures::new();
        let actual = json!({"event": "say", "say": {"id": "s1", "text": "hello"}});
        assert!(subset(&json!({"event": "say"}), &actual, "", &mut c).is_ok());
        let err = subset(&json!({"say": {"text": "bye"}}), &actual, "", &mut c).unwrap_err();
        assert_eq!(err, "/say/text: expected \"bye\", got \"hello\"");
    }

    #[test]
    fn a_missing_expected_frame_is_a_mismatch() {
        let mut c = Captures::new();
        let actual = vec![json!({"event": "say"}), json!({"event": "booking"})];
        assert!(compare_list("x", &[json!({"event": "say"})], &actual, &mut c).is_some());
        assert!(
            compare_list("x", &[json!({"event": "say"}), json!({})], &actual, &mut c).is_none()
        );
    }

    #[test]
    fn matchers_say_what_failed() {
        let mut c = Captures::new();
        let say = json!({"say": {"text": "I have Wednesday at 10 or 2:30. Which works best?"}});
        let ok = |e: Value, c: &mut Captures| subset(&e, &say, "", c);
        assert!(ok(
            json!({"say": {"text": {"$contains": "Which works"}}}),
            &mut c
        )
        .is_ok());
        assert!(ok(
            json!({"say": {"text": {"$not_contains": "closest"}}}),
            &mut c
        )
        .is_ok());
        assert!(ok(
            json!({"say": {"text": {"$regex": "^I have .* or \\d"}}}),
            &mut c
        )
        .is_ok());
        let err = ok(json!({"say": {"text": {"$contains": "Thursday"}}}), &mut c).unwrap_err();
        assert!(
            err.starts_with("/say/text: ") && err.contains("does not contain"),
            "{err}"
        );
        let options = json!({"options": [1, 2, 3]});
        assert!(subset(&json!({"options": {"$min_items": 2}}), &options, "", &mut c).is_ok());
        assert!(subset(&json!({"options": {"$max_items": 2}}), &options, "", &mut c).is_err());
        // A value captured in one frame is compared in a later one.
        let booked = json!({"event_id": "ev-1"});
        subset(
            &json!({"event_id": {"$capture": "ev"}}),
            &booked,
            "",
            &mut c,
        )
        .unwrap();
        assert!(subset(
            &json!({"id": {"$same_as": "ev"}}),
            &json!({"id": "ev-1"}),
            "",
            &mut c
        )
        .is_ok());
        assert!(subset(
            &json!({"id": {"$same_as": "ev"}}),
            &json!({"id": "ev-2"}),
            "",
            &mut c
        )
        .is_err());
        assert!(subset(
            &json!({"id": {"$same_as": "nope"}}),
            &json!({"id": "ev-1"}),
            "",
            &mut c
        )
        .is_err());
    }

    #[test]
    fn includes_and_excludes() {
        let mut c = Captures::new();
        let frames = vec![
            json!({"event": "turn"}),
            json!({"event": "say", "say": {"text": "hi"}}),
        ];
        assert!(compare_some(
            "x",
            &[json!({"event": "say"})],
            &[json!({"event": "booking"})],
            &frames,
            &mut c
        )
        .is_none());
        assert!(compare_some("x", &[json!({"event": "booking"})], &[], &frames, &mut c).is_some());
        assert!(compare_some("x", &[], &[json!({"event": "turn"})], &frames, &mut c).is_some());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::days(2));
        assert!(parse_duration("soon").is_err());
    }
}
