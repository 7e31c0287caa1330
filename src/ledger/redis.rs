//! The shared ledger: claims in Redis, so any number of callbook instances
//! agree on who confirmed first.
//!
//! Each operation is one Lua script over one calendar's keys, so the
//! overlap check and the insert happen atomically on the server; there is
//! no lock to hold or lose. All of a calendar's keys share one hash tag and
//! live in one Cluster slot.
//!
//! Per calendar:
//! - `iv`: sorted set, start (unix seconds) → claim id;
//! - `b`: hash, claim id → `start|end|expires|replaces|state|event`
//!   (`expires` is 0 once committed; `state` is `u` for a claim whose event
//!   may exist, empty otherwise; `event` the provider's event id once known;
//!   records written before the last two fields existed read as empty);
//! - `exp`: sorted set, hold expiry → claim id (holds only);
//! - `done`: sorted set, end → claim id (committed claims only), so claims
//!   that ended more than [`PRUNE_AFTER`] ago are pruned first;
//! - `maxlen`: the longest claim, which bounds how far back a conflicting
//!   start can lie, so the overlap check reads only nearby claims;
//! - `mark`: present once the calendar's claims are known complete in this
//!   Redis (set by [`Ledger::rebuild`], from the provider's events);
//! - `ver` and `hist`: the calendar's history, a counter every write
//!   advances and the last [`HISTORY`] versions' tags (the server's time
//!   when written and the count), newest first;
//! - `epoch`: which rebuild the history follows: each one's is later than
//!   every epoch the Redis or the rebuilding instance knew, and than the
//!   server's clock in milliseconds, so a rebuild on a promoted replica
//!   orders after one on a primary whose writes the replica never got.
//!
//! The mark is the epoch marker: a Redis that restarted empty, or a
//! replica promoted without it, has no mark for any calendar, so holds and
//! reads there answer `Unverified` instead of "free" until the calendar's
//! claims are rebuilt from the events callbook tagged with their booking
//! ids. A calendar used for the first time is rebuilt the same way (one
//! provider read).
//!
//! A failover that lost only the latest writes keeps the marks, so each
//! instance also remembers, per calendar, the latest version it saw (not
//! the last reply it read: a late reply may come from a server that lost
//! writes), and sends it with every script. A Redis whose history of the calendar does
//! not hold that version (its counter is behind, or another write took the
//! same place) lost writes this instance saw: the script drops the mark,
//! and from then on every instance's holds and reads on the calendar are
//! refused as `Unverified` until it is rebuilt. A version written before
//! the last rebuild is accepted (the rebuild re-read what was lost from
//! the provider), so after a failover each calendar is rebuilt once, not
//! once per instance that saw the lost writes, even when the promoted
//! replica had nothing of the calendar. One from a rebuild this Redis does
//! not have is not, nor one written after this Redis's last rebuild in
//! another history (an instance that went on writing to the old primary):
//! "before" and "after" are by the servers' clocks, so with clocks apart
//! by more than the time between the writes, an instance can be refused
//! once more (a second rebuild ends it) or a write after the rebuild can
//! pass as one before. An instance that saw none
//! of the lost writes cannot tell; until one that saw them touches the
//! calendar, the provider re-check every booking makes and the reconciler
//! cover what was lost.
//!
//! "Now" for hold expiry and reaping is the Redis server's clock
//! (`redis.call('TIME')`), never a caller's: an instance whose clock runs
//! fast cannot reap other instances' live holds, and one running slow
//! cannot keep a dead hold alive. Only a ledger built with
//! [`RedisLedger::on_caller_clock`] takes "now" from its callers, as the
//! in-memory reference does, for replays on a virtual clock. Every script
//! is idempotent by claim id: a retry after a lost reply is safe.
//!
//! Pruning past claims asks both clocks: a committed claim goes once it
//! ended more than [`PRUNE_AFTER`] before the earlier of the server's and
//! the caller's "now", so neither a fast instance nor a fast server drops
//! a claim the other still counts as recent.

use super::{
    Claim, Ledger, LedgerError, Rebuilt, HOLD_TTL, MIN_HOLD_TTL, PRUNE_AFTER, UNKNOWN_TTL,
};
use crate::redis_conn::RedisConn;
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use redis::Script;
use sha2::{Digest, Sha256};

/// How many versions of a calendar's history Redis keeps for the lineage
/// check. An instance whose last seen version is further back than this
/// is taken at its word.
pub const HISTORY: u64 = 128;

/// The smallest epoch that is a rebuild's time in milliseconds (one in
/// 2001) rather than a count of rebuilds, as epochs were before.
pub const EPOCH_IS_TIME: u64 = 1_000_000_000_000;

/// Shared by every script: the calendar's keys and the caller's last seen
/// version (`ARGV[1]` counter, `ARGV[2]` tag, empty for none), checked
/// against this Redis's history of the calendar (the mark is dropped when
/// it does not hold it), and `advance`, which every write calls once.
const LINEAGE: &str = r#"
local iv, b, exp, maxlen, done, mark, ver, hist, epoch =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local function version()
  return tonumber(redis.call('GET', epoch) or '0'), tonumber(redis.call('GET', ver) or '0'),
    redis.call('LINDEX', hist, 0) or ''
end
-- A server time (seconds and microseconds, as TIME gives them) in
-- milliseconds: the unit of epochs.
local function ms(sec, usec)
  return tonumber(sec) * 1000 + math.floor(tonumber(usec) / 1000)
end
local ke, kc = string.match(ARGV[1], '^(%d+):(%d+)$')
ke, kc = tonumber(ke), tonumber(kc)
-- Version 0 comes before every history: nothing of it can be lost.
if ke and kc > 0 then
  local e, c = version()
  local lost
  if ke > e then
    -- This Redis lost a rebuild the caller saw.
    lost = true
  elseif ke < e then
    -- A rebuild since re-read the provider, unless the caller's version
    -- was written after it (by the servers' clocks, in milliseconds): a
    -- write to a primary this one replaced, after the rebuild here.
    -- Epochs from before they were times (small counts) tell nothing.
    local s, us = string.match(ARGV[2], '^(%d+)%.(%d+)%.')
    lost = e >= EPOCH_IS_TIME and s ~= nil and ms(s, us) > e
  else
    local back = c - kc
    lost = back < 0 or (back < HISTORY and redis.call('LINDEX', hist, back) ~= ARGV[2])
  end
  if lost then
    redis.call('DEL', mark)
  end
end
local function advance()
  local c = redis.call('INCR', ver)
  local t = redis.call('TIME')
  redis.call('LPUSH', hist, t[1] .. '.' .. t[2] .. '.' .. c)
  redis.call('LTRIM', hist, 0, HISTORY - 1)
end
-- The reply: the calendar's version after the script, then its result.
local function reply(result)
  local e, c, t = version()
  local out = {string.format('%.0f', e) .. ':' .. tostring(c), t}
  for _, r in ipairs(result) do
    table.insert(out, r)
  end
  return out
end
"#;

/// Shared by the scripts that read or write claims: `clock` is "now" in unix
/// seconds, the server's unless the caller passed its own (a ledger on the
/// caller's clock); `reap` drops holds whose expiry is at or before `now`,
/// and committed claims that ended before `cutoff`, from every key.
const REAP: &str = r#"
local function clock(arg)
  if arg == '' then
    return tonumber(redis.call('TIME')[1])
  end
  return tonumber(arg)
end
local function reap(iv, b, exp, done, now, cutoff)
  local dead = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  for _, d in ipairs(dead) do
    redis.call('ZREM', iv, d)
    redis.call('HDEL', b, d)
  end
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', exp, '-inf', now)
  end
  local past = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. cutoff)
  for _, d in ipairs(past) do
    redis.call('ZREM', iv, d)
    redis.call('HDEL', b, d)
  end
  if #past > 0 then
    redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
  end
end
-- The prune cutoff: PRUNE_AFTER (prune) before the earlier of the clock's
-- now and the caller's.
local function cutoff(now, caller, prune)
  return math.min(now, tonumber(caller)) - tonumber(prune)
end
local function parse(rec)
  local s, e, x, rest = string.match(rec, '^(%d+)|(%d+)|(%d+)|(.*)$')
  local rep, st, ev = string.match(rest, '^([^|]*)|([^|]*)|(.*)$')
  if not rep then
    rep, st, ev = rest, '', ''
  end
  return tonumber(s), tonumber(e), x, rep, st, ev
end
local function record(s, e, x, rep, st, ev)
  return tostring(s) .. '|' .. tostring(e) .. '|' .. tostring(x) .. '|' .. rep .. '|' .. st .. '|' .. ev
end
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), id, start,
/// end, now ('' for the server's), ttl, replaces, caller's now, prune
/// after. Returns the version, then {'ok'}, {'taken', start, end} of the
/// first conflict, or {'unverified'} without the calendar's mark.
const HOLD: &str = r#"
if redis.call('EXISTS', mark) == 0 then
  return reply({'unverified'})
end
local id, rep = ARGV[3], ARGV[8]
local s, e, now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), clock(ARGV[6]), tonumber(ARGV[7])
reap(iv, b, exp, done, now, cutoff(now, ARGV[9], ARGV[10]))
if redis.call('HEXISTS', b, id) == 1 then
  return reply({'ok'})
end
local ml = tonumber(redis.call('GET', maxlen) or '0')
local near = redis.call('ZRANGEBYSCORE', iv, s - ml, '(' .. ARGV[5])
for _, c in ipairs(near) do
  if c ~= rep then
    local cs, ce = parse(redis.call('HGET', b, c))
    if cs < e and s < ce then
      return reply({'taken', tostring(cs), tostring(ce)})
    end
  end
end
redis.call('ZADD', iv, s, id)
redis.call('HSET', b, id, record(ARGV[4], ARGV[5], now + ttl, rep, '', ''))
redis.call('ZADD', exp, now + ttl, id)
if e - s > ml then
  redis.call('SET', maxlen, e - s)
end
advance()
return reply({'ok'})
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), id, now (''
/// for the server's), caller's now, prune after, event id ('' when not
/// given). Returns the version, then 'ok' or 'not_held'.
const COMMIT: &str = r#"
local id = ARGV[3]
local now = clock(ARGV[4])
reap(iv, b, exp, done, now, cutoff(now, ARGV[5], ARGV[6]))
local rec = redis.call('HGET', b, id)
if not rec then
  return reply({'not_held'})
end
local s, e, x, rep, st, ev = parse(rec)
if ARGV[7] ~= '' then
  ev = ARGV[7]
end
redis.call('ZREM', exp, id)
redis.call('HSET', b, id, record(s, e, 0, '', '', ev))
redis.call('ZADD', done, e, id)
if rep ~= '' then
  redis.call('ZREM', iv, rep)
  redis.call('HDEL', b, rep)
  redis.call('ZREM', exp, rep)
  redis.call('ZREM', done, rep)
end
advance()
return reply({'ok'})
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), id, now (''
/// for the server's), caller's now, prune after, ttl, mark ('u' to mark
/// unknown, '' to keep the state), event id ('' when not given). A live
/// hold expires `ttl` from now (never earlier than it did). Returns the
/// version, then 'ok' or 'not_held'.
const EXTEND: &str = r#"
local id = ARGV[3]
local now = clock(ARGV[4])
reap(iv, b, exp, done, now, cutoff(now, ARGV[5], ARGV[6]))
local rec = redis.call('HGET', b, id)
if not rec then
  return reply({'not_held'})
end
local s, e, x, rep, st, ev = parse(rec)
if x == '0' then
  return reply({'ok'})
end
local until_ = math.max(tonumber(x), now + tonumber(ARGV[7]))
if ARGV[8] ~= '' then
  st = ARGV[8]
end
if ARGV[9] ~= '' then
  ev = ARGV[9]
end
redis.call('HSET', b, id, record(s, e, until_, rep, st, ev))
redis.call('ZADD', exp, until_, id)
advance()
return reply({'ok'})
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), now (''
/// for the server's), caller's now, prune after, then id, start, end, event
/// id for each claim. Adds each claim not there yet as committed; with
/// `FULL` (a rebuild, not an adoption) then sets the mark and starts a new
/// epoch. Returns the version, then 'ok'.
const REBUILD: &str = r#"
local now = clock(ARGV[3])
reap(iv, b, exp, done, now, cutoff(now, ARGV[4], ARGV[5]))
local ml = tonumber(redis.call('GET', maxlen) or '0')
for i = 6, #ARGV, 4 do
  local id, s, e, ev = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  -- A claim still held whose event exists is made: committed, as its
  -- commit would have; a committed one is left as it is.
  local rec = redis.call('HGET', b, id)
  local held = false
  if rec then
    local _, _, x = parse(rec)
    held = tonumber(x) ~= 0
  end
  if held then
    redis.call('ZREM', exp, id)
  end
  if not rec or held then
    redis.call('ZADD', iv, s, id)
    redis.call('HSET', b, id, record(s, e, 0, '', '', ev))
    redis.call('ZADD', done, e, id)
    if e - s > ml then
      ml = e - s
      redis.call('SET', maxlen, ml)
    end
  end
end
-- A full rebuild re-read every claim: the calendar is complete again.
-- An adoption added some only.
-- Its epoch orders after every one this Redis or the caller saw, and
-- after any rebuild in another history (a primary whose writes this one
-- never got) that ran earlier by the server's clock, in milliseconds: an
-- instance that saw that history's versions is not refused again.
if FULL then
  redis.call('SET', mark, '1')
  local t = redis.call('TIME')
  local stored = tonumber(redis.call('GET', epoch) or '0')
  redis.call('SET', epoch, string.format('%.0f', math.max(ms(t[1], t[2]), stored + 1, (ke or 0) + 1)))
end
advance()
return reply({'ok'})
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), id. Returns
/// the version, then 'ok'.
const RELEASE: &str = r#"
local id = ARGV[3]
if redis.call('HDEL', b, id) == 1 then
  redis.call('ZREM', iv, id)
  redis.call('ZREM', exp, id)
  redis.call('ZREM', done, id)
  advance()
end
return reply({'ok'})
"#;

/// KEYS: the calendar's nine. ARGV: last seen version (2), window
/// start, window end, now ('' for the server's), caller's now, prune
/// after. Returns the version, then {'unverified'} without the calendar's
/// mark, else a flat list after 'ok': id, start, end, committed (1/0),
/// unknown (1/0), event id, …
const CLAIMS: &str = r#"
if redis.call('EXISTS', mark) == 0 then
  return reply({'unverified'})
end
local ws, we = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = clock(ARGV[5])
reap(iv, b, exp, done, now, cutoff(now, ARGV[6], ARGV[7]))
local ml = tonumber(redis.call('GET', maxlen) or '0')
local out = {'ok'}
for _, c in ipairs(redis.call('ZRANGEBYSCORE', iv, ws - ml, '(' .. ARGV[4])) do
  local cs, ce, x, rep, st, ev = parse(redis.call('HGET', b, c))
  if cs < we and ws < ce then
    table.insert(out, c)
    table.insert(out, tostring(cs))
    table.insert(out, tostring(ce))
    table.insert(out, x == '0' and '1' or '0')
    table.insert(out, st == 'u' and '1' or '0')
    table.insert(out, ev)
  end
end
return reply(out)
"#;

/// Claims in Redis, shared by every instance pointing at the same server.
#[derive(Clone)]
pub struct RedisLedger {
    conn: RedisConn,
    prefix: String,
    hold: std::sync::Arc<Script>,
    commit: std::sync::Arc<Script>,
    release: std::sync::Arc<Script>,
    extend: std::sync::Arc<Script>,
    rebuild: std::sync::Arc<Script>,
    adopt: std::sync::Arc<Script>,
    claims: std::sync::Arc<Script>,
    /// Take "now" from the callers instead of the server (replays only).
    caller_clock: bool,
    hold_ttl: Duration,
    /// Per calendar, the latest version of its history this instance saw
    /// (counter, tag), sent with every script for the lineage check.
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (String, String)>>>,
}

fn unavailable(e: redis::RedisError) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

/// The nine keys of one calendar. The calendar key is hashed, so any
/// calendar id is safe inside the hash tag and all nine share a slot.
fn keys(prefix: &str, calendar: &str) -> [String; 9] {
    let digest = Sha256::digest(calendar.as_bytes());
    let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    [
        "iv", "b", "exp", "maxlen", "done", "mark", "ver", "hist", "epoch",
    ]
    .map(|k| format!("{prefix}{{{tag}}}:{k}"))
}

/// An event id as a script argument: empty when there is none, or when it
/// could not be stored in a record (a `|`; no provider's ids have one).
fn event_arg(event_id: Option<&str>) -> &str {
    event_id.filter(|id| !id.contains('|')).unwrap_or("")
}

/// A COMMIT or EXTEND result: done, or the claim was not held.
fn held(reply: &[String]) -> Result<(), LedgerError> {
    match reply {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(LedgerError::NotHeld),
    }
}

/// A version as the scripts write it, `epoch:counter`, for ordering:
/// a later rebuild's versions come after every earlier one's. Unreadable
/// ones order first.
fn version(v: &str) -> (u64, u64) {
    v.split_once(':')
        .and_then(|(e, c)| Some((e.parse().ok()?, c.parse().ok()?)))
        .unwrap_or((0, 0))
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn at(s: &str) -> Result<DateTime<Utc>, LedgerError> {
    s.parse::<i64>()
        .ok()
        .and_then(|n| Utc.timestamp_opt(n, 0).single())
        .ok_or_else(|| LedgerError::Unavailable(format!("unreadable time {s:?} in the ledger")))
}

impl RedisLedger {
    /// Connects to `url` (`redis://host:port/db`); keys start with
    /// `prefix`, e.g. `callbook:ledger:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LedgerError> {
        let conn = crate::redis_conn::connect(url).await.map_err(unavailable)?;
        let script = |body: &str| {
            std::sync::Arc::new(Script::new(&format!(
                "local HISTORY = {HISTORY}\nlocal EPOCH_IS_TIME = {EPOCH_IS_TIME}\n{LINEAGE}\n{REAP}\n{body}"
            )))
        };
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            hold: script(HOLD),
            commit: script(COMMIT),
            release: script(RELEASE),
            extend: script(EXTEND),
            rebuild: script(&format!("local FULL = true\n{REBUILD}")),
            adopt: script(&format!("local FULL = false\n{REBUILD}")),
            claims: script(CLAIMS),
            caller_clock: false,
            hold_ttl: HOLD_TTL,
            seen: Default::default(),
        })
    }

    /// `script` on `calendar`: its nine keys, then the version of the
    /// calendar this instance saw last; the script's own arguments follow.
    fn on<'a>(&self, script: &'a Script, calendar: &str) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        for k in keys(&self.prefix, calendar) {
            call.key(k);
        }
        let (count, tag) = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(calendar)
            .cloned()
            .unwrap_or_default();
        call.arg(count).arg(tag);
        call
    }

    /// Runs `call` and returns the script's result, remembering the
    /// version of the calendar that came with it when it is the latest
    /// this instance has seen.
    async fn run(
        &self,
        calendar: &str,
        call: redis::ScriptInvocation<'_>,
    ) -> Result<Vec<String>, LedgerError> {
        self.run_then(calendar, call, false).await
    }

    /// [`RedisLedger::run`]; after a full rebuild (`rebuilt`) the reply's
    /// version replaces whatever was seen before: the rebuild re-read the
    /// provider, so nothing seen earlier can be missing from it.
    async fn run_then(
        &self,
        calendar: &str,
        call: redis::ScriptInvocation<'_>,
        rebuilt: bool,
    ) -> Result<Vec<String>, LedgerError> {
        let mut conn = self.conn.clone();
        let mut reply: Vec<String> = call.invoke_async(&mut conn).await.map_err(unavailable)?;
        if reply.len() < 2 {
            return Err(LedgerError::Unavailable(format!(
                "unexpected ledger reply {reply:?}"
            )));
        }
        let result = reply.split_off(2);
        let [count, tag]: [String; 2] = reply.try_into().unwrap_or_default();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // The latest version seen, not the last reply read: a reply to a
        // command sent earlier, or answered by a server that lost writes
        // (a failover under way), must not hide what this instance saw.
        let newer = match seen.get(calendar) {
            Some((known, _)) => rebuilt || version(&count) > version(known),
            None => true,
        };
        if newer {
            seen.insert(calendar.to_string(), (count, tag));
        }
        Ok(result)
    }

    /// This ledger takes "now" from its callers, like the in-memory
    /// reference, so a replay on a virtual clock (or a comparison with the
    /// reference) sees holds expire when that clock says. Never for
    /// instances sharing a Redis: their clocks would decide each other's
    /// holds.
    #[must_use]
    pub fn on_caller_clock(mut self) -> Self {
        self.caller_clock = true;
        self
    }

    /// The EXTEND script: a live hold lives `ttl` from now, `mark`ed
    /// (`u`: unknown) and with its event id when given.
    async fn renew(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        mark: &str,
        event_id: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut call = self.on(&self.extend, calendar);
        call.arg(claim);
        self.clock(&mut call, now)
            .arg(ttl.num_seconds())
            .arg(mark)
            .arg(event_arg(event_id));
        held(&self.run(calendar, call).await?)
    }

    /// The REBUILD script (`script`: the full rebuild, `full`, or an
    /// adoption): `claims` added as committed where their ids are not
    /// there yet, and committed where they are still held.
    async fn add_committed(
        &self,
        script: &Script,
        full: bool,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut call = self.on(script, calendar);
        self.clock(&mut call, now);
        for c in claims {
            call.arg(&c.id)
                .arg(secs(c.interval.start))
                .arg(secs(c.interval.end))
                .arg(event_arg(Some(&c.event_id)));
        }
        self.run_then(calendar, call, full).await?;
        Ok(())
    }

    /// Holds on this ledger live `ttl` (at least [`MIN_HOLD_TTL`]) instead
    /// of [`HOLD_TTL`]. Every instance sharing the Redis should use the
    /// same; a short one makes a stopped or slow instance's holds lapse
    /// sooner (test runs use it to reach that case in seconds).
    #[must_use]
    pub fn with_hold_ttl(mut self, ttl: Duration) -> Self {
        self.hold_ttl = ttl.max(MIN_HOLD_TTL);
        self
    }

    /// The arguments every reaping script takes in a row: its "now" (empty
    /// for the server's clock), the caller's now, and the prune age.
    fn clock<'c, 'a>(
        &self,
        call: &'c mut redis::ScriptInvocation<'a>,
        now: DateTime<Utc>,
    ) -> &'c mut redis::ScriptInvocation<'a> {
        call.arg(self.now_arg(now))
            .arg(secs(now))
            .arg(PRUNE_AFTER.num_seconds())
    }

    /// The `now` argument of a script: empty for the server's clock.
    fn now_arg(&self, now: DateTime<Utc>) -> String {
        if self.caller_clock {
            secs(now).to_string()
        } else {
            String::new()
        }
    }
}

#[async_trait]
impl Ledger for RedisLedger {
    async fn hold(
        &self,
        calendar: &str,
        claim: &str,
        interval: Interval,
        replaces: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut call = self.on(&self.hold, calendar);
        call.arg(claim)
            .arg(secs(interval.start))
            .arg(secs(interval.end))
            .arg(self.now_arg(now))
            .arg(self.hold_ttl.num_seconds())
            .arg(replaces.unwrap_or(""))
            .arg(secs(now))
            .arg(PRUNE_AFTER.num_seconds());
        let reply = self.run(calendar, call).await?;
        match reply.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            [unverified] if unverified == "unverified" => Err(LedgerError::Unverified),
            [taken, s, e] if taken == "taken" => Err(LedgerError::Taken {
                conflict: Interval::new(at(s)?, at(e)?),
            }),
            other => Err(LedgerError::Unavailable(format!(
                "unexpected ledger reply {other:?}"
            ))),
        }
    }

    async fn commit_event(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut call = self.on(&self.commit, calendar);
        call.arg(claim);
        self.clock(&mut call, now).arg(event_arg(event_id));
        held(&self.run(calendar, call).await?)
    }

    async fn extend(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.renew(calendar, claim, now, self.hold_ttl, "", None)
            .await
    }

    async fn mark_unknown(
        &self,
        calendar: &str,
        claim: &str,
        event_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.renew(calendar, claim, now, UNKNOWN_TTL, "u", event_id)
            .await
    }

    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError> {
        let mut call = self.on(&self.release, calendar);
        call.arg(claim);
        self.run(calendar, call).await?;
        Ok(())
    }

    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError> {
        let mut call = self.on(&self.claims, calendar);
        call.arg(secs(window.start)).arg(secs(window.end));
        self.clock(&mut call, now);
        let flat = self.run(calendar, call).await?;
        let flat = match flat.split_first() {
            Some((ok, rest)) if ok == "ok" => rest,
            Some((unverified, _)) if unverified == "unverified" => {
                return Err(LedgerError::Unverified)
            }
            _ => return Err(LedgerError::Unavailable("unexpected ledger reply".into())),
        };
        flat.chunks(6)
            .map(|c| match c {
                [id, s, e, committed, unknown, event] => Ok(Claim {
                    id: id.clone(),
                    interval: Interval::new(at(s)?, at(e)?),
                    committed: committed == "1",
                    unknown: unknown == "1",
                    event_id: (!event.is_empty()).then(|| event.clone()),
                }),
                _ => Err(LedgerError::Unavailable("truncated ledger reply".into())),
            })
            .collect()
    }

    async fn rebuild(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.add_committed(&self.rebuild, true, calendar, claims, now)
            .await
    }

    async fn adopt(
        &self,
        calendar: &str,
        claims: &[Rebuilt],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.add_committed(&self.adopt, false, calendar, claims, now)
            .await
    }

    fn hold_ttl(&self) -> Duration {
        self.hold_ttl
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn versions_order_by_rebuild_then_by_write() {
        assert!(version("0:12") > version("0:9"));
        assert!(version("1:1") > version("0:500"));
        assert!(version("2:0") > version("1:99"));
        // Nothing seen, or a reply that cannot be read, orders first.
        assert_eq!(version(""), (0, 0));
        assert_eq!(version("x:1"), (0, 0));
    }
}
