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
//! - `b`: hash, claim id → `start|end|expires|replaces` (`expires` is 0 once
//!   committed);
//! - `exp`: sorted set, hold expiry → claim id (holds only);
//! - `done`: sorted set, end → claim id (committed claims only), so claims
//!   that ended more than [`PRUNE_AFTER`] ago are pruned first;
//! - `maxlen`: the longest claim, which bounds how far back a conflicting
//!   start can lie, so the overlap check reads only nearby claims.
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

use super::{Claim, Ledger, LedgerError, HOLD_TTL, PRUNE_AFTER};
use crate::redis_conn::RedisConn;
use crate::schedule::Interval;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use redis::Script;
use sha2::{Digest, Sha256};

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
  local s, e, x, rep = string.match(rec, '^(%d+)|(%d+)|(%d+)|(.*)$')
  return tonumber(s), tonumber(e), x, rep
end
"#;

/// KEYS: iv, b, exp, maxlen, done. ARGV: id, start, end, now ('' for the
/// server's), ttl, replaces, caller's now, prune after.
/// Returns {'ok'} or {'taken', start, end} of the first conflict.
const HOLD: &str = r#"
local iv, b, exp, maxlen, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, rep = ARGV[1], ARGV[6]
local s, e, now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), clock(ARGV[4]), tonumber(ARGV[5])
reap(iv, b, exp, done, now, cutoff(now, ARGV[7], ARGV[8]))
if redis.call('HEXISTS', b, id) == 1 then
  return {'ok'}
end
local ml = tonumber(redis.call('GET', maxlen) or '0')
local near = redis.call('ZRANGEBYSCORE', iv, s - ml, '(' .. ARGV[3])
for _, c in ipairs(near) do
  if c ~= rep then
    local cs, ce = parse(redis.call('HGET', b, c))
    if cs < e and s < ce then
      return {'taken', tostring(cs), tostring(ce)}
    end
  end
end
redis.call('ZADD', iv, s, id)
redis.call('HSET', b, id, ARGV[2] .. '|' .. ARGV[3] .. '|' .. tostring(now + ttl) .. '|' .. rep)
redis.call('ZADD', exp, now + ttl, id)
if e - s > ml then
  redis.call('SET', maxlen, e - s)
end
return {'ok'}
"#;

/// KEYS: iv, b, exp, done. ARGV: id, now ('' for the server's), caller's
/// now, prune after. Returns 'ok' or 'not_held'.
const COMMIT: &str = r#"
local iv, b, exp, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
local now = clock(ARGV[2])
reap(iv, b, exp, done, now, cutoff(now, ARGV[3], ARGV[4]))
local rec = redis.call('HGET', b, id)
if not rec then
  return 'not_held'
end
local s, e, x, rep = parse(rec)
redis.call('ZREM', exp, id)
redis.call('HSET', b, id, tostring(s) .. '|' .. tostring(e) .. '|0|')
redis.call('ZADD', done, e, id)
if rep ~= '' then
  redis.call('ZREM', iv, rep)
  redis.call('HDEL', b, rep)
  redis.call('ZREM', exp, rep)
  redis.call('ZREM', done, rep)
end
return 'ok'
"#;

/// KEYS: iv, b, exp, done. ARGV: id.
const RELEASE: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 'ok'
"#;

/// KEYS: iv, b, exp, maxlen, done. ARGV: window start, window end, now (''
/// for the server's), caller's now, prune after.
/// Returns a flat list: id, start, end, committed (1/0), …
const CLAIMS: &str = r#"
local iv, b, exp, maxlen, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ws, we = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock(ARGV[3])
reap(iv, b, exp, done, now, cutoff(now, ARGV[4], ARGV[5]))
local ml = tonumber(redis.call('GET', maxlen) or '0')
local out = {}
for _, c in ipairs(redis.call('ZRANGEBYSCORE', iv, ws - ml, '(' .. ARGV[2])) do
  local cs, ce, x = parse(redis.call('HGET', b, c))
  if cs < we and ws < ce then
    table.insert(out, c)
    table.insert(out, tostring(cs))
    table.insert(out, tostring(ce))
    table.insert(out, x == '0' and '1' or '0')
  end
end
return out
"#;

/// Claims in Redis, shared by every instance pointing at the same server.
#[derive(Clone)]
pub struct RedisLedger {
    conn: RedisConn,
    prefix: String,
    hold: std::sync::Arc<Script>,
    commit: std::sync::Arc<Script>,
    release: std::sync::Arc<Script>,
    claims: std::sync::Arc<Script>,
    /// Take "now" from the callers instead of the server (replays only).
    caller_clock: bool,
}

fn unavailable(e: redis::RedisError) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

/// The five keys of one calendar. The calendar key is hashed, so any
/// calendar id is safe inside the hash tag and all five share a slot.
fn keys(prefix: &str, calendar: &str) -> [String; 5] {
    let digest = Sha256::digest(calendar.as_bytes());
    let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    ["iv", "b", "exp", "maxlen", "done"].map(|k| format!("{prefix}{{{tag}}}:{k}"))
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
        let script = |body: &str| std::sync::Arc::new(Script::new(&format!("{REAP}\n{body}")));
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            hold: script(HOLD),
            commit: script(COMMIT),
            release: std::sync::Arc::new(Script::new(RELEASE)),
            claims: script(CLAIMS),
            caller_clock: false,
        })
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
        let [iv, b, exp, maxlen, done] = keys(&self.prefix, calendar);
        let mut conn = self.conn.clone();
        let reply: Vec<String> = self
            .hold
            .key(iv)
            .key(b)
            .key(exp)
            .key(maxlen)
            .key(done)
            .arg(claim)
            .arg(secs(interval.start))
            .arg(secs(interval.end))
            .arg(self.now_arg(now))
            .arg(HOLD_TTL.num_seconds())
            .arg(replaces.unwrap_or(""))
            .arg(secs(now))
            .arg(PRUNE_AFTER.num_seconds())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            [taken, s, e] if taken == "taken" => Err(LedgerError::Taken {
                conflict: Interval::new(at(s)?, at(e)?),
            }),
            other => Err(LedgerError::Unavailable(format!(
                "unexpected ledger reply {other:?}"
            ))),
        }
    }

    async fn commit(
        &self,
        calendar: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let [iv, b, exp, _, done] = keys(&self.prefix, calendar);
        let mut conn = self.conn.clone();
        let reply: String = self
            .commit
            .key(iv)
            .key(b)
            .key(exp)
            .key(done)
            .arg(claim)
            .arg(self.now_arg(now))
            .arg(secs(now))
            .arg(PRUNE_AFTER.num_seconds())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        match reply.as_str() {
            "ok" => Ok(()),
            _ => Err(LedgerError::NotHeld),
        }
    }

    async fn release(&self, calendar: &str, claim: &str) -> Result<(), LedgerError> {
        let [iv, b, exp, _, done] = keys(&self.prefix, calendar);
        let mut conn = self.conn.clone();
        let _: String = self
            .release
            .key(iv)
            .key(b)
            .key(exp)
            .key(done)
            .arg(claim)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn claims(
        &self,
        calendar: &str,
        window: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, LedgerError> {
        let [iv, b, exp, maxlen, done] = keys(&self.prefix, calendar);
        let mut conn = self.conn.clone();
        let flat: Vec<String> = self
            .claims
            .key(iv)
            .key(b)
            .key(exp)
            .key(maxlen)
            .key(done)
            .arg(secs(window.start))
            .arg(secs(window.end))
            .arg(self.now_arg(now))
            .arg(secs(now))
            .arg(PRUNE_AFTER.num_seconds())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        flat.chunks(4)
            .map(|c| match c {
                [id, s, e, committed] => Ok(Claim {
                    id: id.clone(),
                    interval: Interval::new(at(s)?, at(e)?),
                    committed: committed == "1",
                }),
                _ => Err(LedgerError::Unavailable("truncated ledger reply".into())),
            })
            .collect()
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
