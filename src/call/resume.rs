//! Calls that outlive their socket.
//!
//! After every step that changes it, a call's [`Memo`] is saved here under
//! its call SID for the resume window. A `start` with that SID takes it up
//! again: on this instance, or on another one when the states live in
//! Redis. Each socket that takes up a call gets a higher generation, and a
//! save from an older generation never overwrites a newer one, so a
//! lingering actor finishing its last calendar work cannot undo what the
//! resumed call did since.
//!
//! A saved state is *settled* when no calendar work was in flight. A
//! resuming call waits (bounded) for the previous socket's work to settle,
//! so it sees the outcome instead of guessing.

use crate::dialog::Memo;
use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use redis::Script;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long a resuming call waits for the previous socket's calendar work
/// to report back, by default. Longer than any one booking's provider
/// budget, so only a dead instance's work is given up on.
pub const SETTLE_WAIT: Duration = Duration::from_secs(15);

/// How often a resuming call looks again while it waits.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// A call's saved state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub generation: u64,
    /// No calendar work was in flight when it was saved.
    pub settled: bool,
    pub memo: Memo,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("call state store unavailable: {0}")]
    Unavailable(String),
}

/// Where calls' states wait for a resume.
#[async_trait]
pub trait CallStates: Send + Sync {
    /// Saves `saved` for `ttl` unless a newer generation is stored.
    async fn save(&self, call_sid: &str, saved: &Saved, ttl: Duration) -> Result<(), ResumeError>;

    async fn load(&self, call_sid: &str) -> Result<Option<Saved>, ResumeError>;
}

/// Loads a call's state for a resume, waiting up to `wait` for work in
/// flight elsewhere to settle. An unsettled state past the wait is returned
/// as it is (its owner is gone); the dialog then asks for that work again
/// under the same attempt, which finds it if it was done.
pub async fn take_up(states: &dyn CallStates, call_sid: &str, wait: Duration) -> Option<Saved> {
    let deadline = Instant::now() + wait;
    loop {
        match states.load(call_sid).await {
            Ok(Some(saved)) if saved.settled || Instant::now() >= deadline => return Some(saved),
            Ok(Some(_)) => tokio::time::sleep(SETTLE_POLL).await,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the call's saved state; starting afresh");
                return None;
            }
        }
    }
}

/// How often the in-process states drop the expired ones: a sweep is a
/// pass over all of them, so it runs at most this often, not per save.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// In process: one instance.
#[derive(Default)]
pub struct MemoryCallStates {
    inner: Mutex<Inner>,
}

/// Each state is boxed: the map keeps room for more entries than it holds,
/// and a state is a few hundred bytes where its box is one word.
#[derive(Default)]
struct Inner {
    states: HashMap<Box<str>, Box<(Instant, Saved)>>,
    swept: Option<Instant>,
}

impl MemoryCallStates {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CallStates for MemoryCallStates {
    async fn save(&self, call_sid: &str, saved: &Saved, ttl: Duration) -> Result<(), ResumeError> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner
            .swept
            .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            inner.states.retain(|_, state| state.0 > now);
            inner.swept = Some(now);
        }
        match inner.states.get_mut(call_sid) {
            Some(state) if state.1.generation > saved.generation => {}
            // Saved again (after every step that changes the call): the
            // box is reused.
            Some(state) => **state = (now + ttl, saved.clone()),
            None => {
                inner
                    .states
                    .insert(call_sid.into(), Box::new((now + ttl, saved.clone())));
            }
        }
        Ok(())
    }

    async fn load(&self, call_sid: &str) -> Result<Option<Saved>, ResumeError> {
        let now = Instant::now();
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(inner
            .states
            .get(call_sid)
            .filter(|state| state.0 > now)
            .map(|state| state.1.clone()))
    }
}

/// Saves unless the stored generation is newer: `KEYS[1]` the call's hash,
/// `ARGV` generation, state JSON, TTL in milliseconds.
const SAVE: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'gen')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'state', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// In Redis: a reconnect may land on any instance.
pub struct RedisCallStates {
    conn: RedisConn,
    prefix: String,
    save: Script,
}

impl RedisCallStates {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ResumeError> {
        let conn = crate::redis_conn::connect(url)
            .await
            .map_err(|e| ResumeError::Unavailable(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            save: Script::new(SAVE),
        })
    }

    fn key(&self, call_sid: &str) -> String {
        format!("{}{call_sid}", self.prefix)
    }
}

#[async_trait]
impl CallStates for RedisCallStates {
    async fn save(&self, call_sid: &str, saved: &Saved, ttl: Duration) -> Result<(), ResumeError> {
        let json =
            serde_json::to_string(saved).map_err(|e| ResumeError::Unavailable(e.to_string()))?;
        let mut conn = self.conn.clone();
        let _: i64 = self
            .save
            .key(self.key(call_sid))
            .arg(saved.generation)
            .arg(json)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| ResumeError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn load(&self, call_sid: &str) -> Result<Option<Saved>, ResumeError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("HGET")
            .arg(self.key(call_sid))
            .arg("state")
            .query_async(&mut conn)
            .await
            .map_err(|e| ResumeError::Unavailable(e.to_string()))?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialog::Dialog;

    fn saved(generation: u64) -> Saved {
        Saved {
            generation,
            settled: true,
            memo: Dialog::new().memo(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_generation_never_overwrites_a_newer_one_and_states_expire() {
        let states = MemoryCallStates::new();
        let ttl = Duration::from_secs(600);
        states.save("CA1", &saved(2), ttl).await.unwrap();
        states.save("CA1", &saved(1), ttl).await.unwrap();
        assert_eq!(states.load("CA1").await.unwrap().unwrap().generation, 2);
        states.save("CA1", &saved(3), ttl).await.unwrap();
        assert_eq!(states.load("CA1").await.unwrap().unwrap().generation, 3);
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        assert!(states.load("CA1").await.unwrap().is_none());
        // A later save sweeps what expired.
        states.save("CA2", &saved(1), ttl).await.unwrap();
        let inner = states.inner.lock().unwrap();
        assert_eq!(inner.states.len(), 1);
    }
}
