//! Connections and consent flows in Redis, shared by every instance: a
//! connect, a rotated Microsoft token, an expiry or a change of calendar
//! made through one instance is what the next call on any instance sees,
//! and an OAuth callback may land on any of them. Users and campaigns come
//! from the provisioning file, which every instance loads; booking settings
//! set through the admin API are kept in Redis (`{prefix}booking:{id}`) and
//! override the file's, and so do users, teams and campaigns made through
//! it (`{prefix}accounts:{user|team|campaign}`, a hash of JSON records by
//! id, `null` for one deleted).
//!
//! One hash per user, `{prefix}conn:{user}`: `active`, and per provider
//! `<p>:token` (sealed), `<p>:calendar`, `<p>:status` (JSON), `<p>:tenant`,
//! `<p>:email`, `<p>:other` (`1` when another account was allowed). Each
//! change writes only its own fields, in a script that
//! first checks the connection exists, so concurrent changes from two
//! instances never undo each other or bring back a removed connection.
//! Flows are `{prefix}flow:{state}`, expiring with the flow and taken with
//! `GETDEL`, so each works once.
//!
//! Single-use values (settings links' nonces) are `{prefix}used:{nonce}`,
//! set with `SET NX` and expiring with the value, so a link opens once
//! whichever instance it reaches.
//!
//! `{prefix}keycheck` holds a known value sealed under the token key the
//! store was first used with. Connecting refuses keys that do not open it
//! or any stored token, before anything is written, so an instance with a
//! wrong `CALLBOOK_TOKEN_KEY` never starts (and never seals a reconnect
//! under a key the others cannot open). [`RedisStore::rekey`] re-seals
//! every token, pending flow and the key check under the sealing key.

use super::accounts::{decode, decode_all, encode, merge, set_member, Kind, Team};
use super::memory::UserConnections;
use super::provisioning::sealed_owner;
use super::secrets::TokenCipher;
use super::{
    sealed_error, BookingSettings, Campaign, Connection, ConnectionStatus, ExpectedAccount,
    MemoryStore, PendingFlow, Provider, RekeyReport, Store, StoreError, User,
};
use crate::calendar::oauth::FLOW_TTL;
use crate::redis_conn::RedisConn;
use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// KEYS: conn. ARGV: provider, token, calendar, status, tenant, email,
/// other, only_if_absent ("1" when seeding). Makes the provider active
/// (when seeding: only if none is).
const PUT: &str = r#"
local k, p = KEYS[1], ARGV[1]
if ARGV[8] == '1' and redis.call('HEXISTS', k, p .. ':token') == 1 then
  return 0
end
redis.call('HSET', k, p .. ':token', ARGV[2], p .. ':calendar', ARGV[3], p .. ':status', ARGV[4])
for i, f in ipairs({'tenant', 'email', 'other'}) do
  local v = ARGV[4 + i]
  if v == '' then redis.call('HDEL', k, p .. ':' .. f) else redis.call('HSET', k, p .. ':' .. f, v) end
end
if ARGV[9] == '' then redis.call('HDEL', k, p .. ':canonical') else redis.call('HSET', k, p .. ':canonical', ARGV[9]) end
if ARGV[8] == '1' then
  redis.call('HSETNX', k, 'active', p)
else
  redis.call('HSET', k, 'active', p)
end
return 1
"#;

/// KEYS: conn. ARGV: provider, the other provider. Returns the removed
/// fields (token, calendar, status, tenant, email, other) or an empty list.
const REMOVE: &str = r#"
local k, p, other = KEYS[1], ARGV[1], ARGV[2]
local got = redis.call('HMGET', k, p .. ':token', p .. ':calendar', p .. ':status', p .. ':tenant', p .. ':email', p .. ':other')
if not got[1] then
  return {}
end
redis.call('HDEL', k, p .. ':token', p .. ':calendar', p .. ':status', p .. ':tenant', p .. ':email', p .. ':other', p .. ':canonical')
if redis.call('HGET', k, 'active') == p then
  if redis.call('HEXISTS', k, other .. ':token') == 1 then
    redis.call('HSET', k, 'active', other)
  else
    redis.call('HDEL', k, 'active')
  end
end
for i = 1, 6 do
  if not got[i] then got[i] = '' end
end
return got
"#;

/// KEYS: conn. ARGV: provider, field, value ('' with field 'active' makes
/// the provider active). Returns 1, or 0 when not connected.
const SET: &str = r#"
local k, p = KEYS[1], ARGV[1]
if redis.call('HEXISTS', k, p .. ':token') == 0 then
  return 0
end
if ARGV[2] == 'active' then
  redis.call('HSET', k, 'active', p)
else
  redis.call('HSET', k, p .. ':' .. ARGV[2], ARGV[3])
end
return 1
"#;

/// KEYS: a key. ARGV: its value as read, the new value. Replaces the value
/// only if it is still the one read, keeping its expiry. Returns 1 when
/// replaced.
const SWAP: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"#;

/// KEYS: conn. ARGV: field, its value as read, the new value. Replaces the
/// field only if it still holds the value read. Returns 1 when replaced.
const HSWAP: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"#;

/// KEYS: a hash of records. ARGV: the id, "1" if the record was there
/// when read ("0" if absent), its JSON as read, the new JSON. Writes the
/// new JSON only if the record is still what was read. Returns 1 when
/// written.
const SWAP_RECORD: &str = r#"
local now = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if now ~= ARGV[3] then return 0 end
elseif now then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 1
"#;

/// How many times a membership change reads again after another instance
/// changed the team between its read and its write. Each retry follows a
/// change that did land, so running out means a team under constant
/// change, reported as unavailable.
const MEMBER_ATTEMPTS: usize = 64;

/// Keys walked per `SCAN` step when checking or re-sealing every token.
const SCAN_BATCH: usize = 500;

#[derive(Serialize, Deserialize)]
struct FlowDoc {
    user: String,
    provider: Provider,
    verifier_sealed: String,
    redirect_uri: String,
    /// Flows begun before connects were bound have none: their callback is
    /// refused (see `calendar::binding`).
    #[serde(default)]
    expect: ExpectedAccount,
}

/// Shared connections; users and campaigns from provisioning.
pub struct RedisStore {
    conn: RedisConn,
    prefix: String,
    cipher: Arc<TokenCipher>,
    /// Users and campaigns (read-only, from the provisioning file).
    base: MemoryStore,
    put: Script,
    remove: Script,
    set: Script,
    swap_record: Script,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// `prefix` as a literal inside a `SCAN MATCH` pattern.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn other(p: Provider) -> Provider {
    match p {
        Provider::Google => Provider::Microsoft,
        Provider::Microsoft => Provider::Google,
    }
}

impl RedisStore {
    /// Connects, proves the token keys against what Redis holds (its key
    /// check, written at first use, and every stored token), and seeds Redis
    /// with the provisioning file's connections for users it knows nothing
    /// about yet (what Redis holds wins). Keys that do not open what Redis
    /// holds are [`StoreError::WrongKey`], and nothing is written.
    pub async fn connect(
        url: &str,
        prefix: &str,
        cipher: TokenCipher,
        base: MemoryStore,
    ) -> Result<Self, StoreError> {
        let conn = crate::redis_conn::connect(url).await.map_err(unavailable)?;
        let store = Self {
            conn,
            prefix: prefix.to_string(),
            cipher: Arc::new(cipher),
            base,
            put: Script::new(PUT),
            remove: Script::new(REMOVE),
            set: Script::new(SET),
            swap_record: Script::new(SWAP_RECORD),
        };
        store.prove_keys().await?;
        for (user, uc) in store.base.all_connections() {
            for c in uc.list {
                store.write(&user, &c, true).await?;
            }
        }
        Ok(store)
    }

    fn key_check_key(&self) -> String {
        format!("{}keycheck", self.prefix)
    }

    /// Refuses keys that do not open the key check (written now if there is
    /// none) or any stored token; warns when values are still sealed under
    /// an older key.
    async fn prove_keys(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key_check_key();
        let mut stale = 0;
        let check: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        if let Some(check) = &check {
            self.check_key_check(&key, check)?;
            stale += usize::from(!self.cipher.is_current(check));
        }
        self.each_token(|user, p, sealed| {
            self.cipher
                .open(sealed, &sealed_owner(user, p))
                .map_err(|e| {
                    sealed_error(
                        format!("{}: {user}.{}", self.key(user), p.as_str()),
                        e,
                        &self.cipher,
                    )
                })?;
            stale += usize::from(!self.cipher.is_current(sealed));
            Ok(())
        })
        .await?;
        if check.is_none() {
            // Only once every token opened, so the check is never written
            // under a wrong key. Another instance may write one first.
            let written: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(self.cipher.seal_key_check())
                .arg("NX")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if written.is_none() {
                let check: Option<String> = conn.get(&key).await.map_err(unavailable)?;
                if let Some(check) = check {
                    self.check_key_check(&key, &check)?;
                }
            }
        }
        if stale > 0 {
            tracing::warn!(
                values = stale,
                "Redis holds values sealed under an older token key; run callbook rekey before dropping it"
            );
        }
        Ok(())
    }

    fn check_key_check(&self, key: &str, check: &str) -> Result<(), StoreError> {
        self.cipher
            .open_key_check(check)
            .map_err(|e| sealed_error(key, e, &self.cipher))
    }

    /// Calls `f` with every stored token: user, provider, sealed value.
    async fn each_token(
        &self,
        mut f: impl FnMut(&str, Provider, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let conn_prefix = format!("{}conn:", self.prefix);
        for key in self
            .scan(&format!("{}*", glob_escape(&conn_prefix)))
            .await?
        {
            let Some(user) = key.strip_prefix(&conn_prefix) else {
                continue;
            };
            let mut conn = self.conn.clone();
            let all: HashMap<String, String> = conn.hgetall(&key).await.map_err(unavailable)?;
            for p in [Provider::Google, Provider::Microsoft] {
                if let Some(sealed) = all.get(&format!("{}:token", p.as_str())) {
                    f(user, p, sealed)?;
                }
            }
        }
        Ok(())
    }

    /// Every key matching `pattern` (on every primary of a Cluster).
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        self.conn
            .scan_match(pattern, SCAN_BATCH)
            .await
            .map_err(unavailable)
    }

    /// Re-seals every stored token, pending consent flow and the key check
    /// under the sealing key, so older keys can be dropped. Safe while
    /// instances run: each value is replaced only if it is still the one
    /// read (a token rotated meanwhile is already under the running
    /// instance's sealing key, and is read again).
    pub async fn rekey(&self) -> Result<RekeyReport, StoreError> {
        let mut report = RekeyReport::default();
        let hswap = Script::new(HSWAP);
        let swap = Script::new(SWAP);
        let conn_prefix = format!("{}conn:", self.prefix);
        for key in self
            .scan(&format!("{}*", glob_escape(&conn_prefix)))
            .await?
        {
            let Some(user) = key.strip_prefix(&conn_prefix) else {
                continue;
            };
            for p in [Provider::Google, Provider::Microsoft] {
                let field = format!("{}:token", p.as_str());
                let owner = sealed_owner(user, p);
                loop {
                    let mut conn = self.conn.clone();
                    let sealed: Option<String> =
                        conn.hget(&key, &field).await.map_err(unavailable)?;
                    let Some(sealed) = sealed.filter(|s| !s.is_empty()) else {
                        break;
                    };
                    if self.cipher.is_current(&sealed) {
                        report.current += 1;
                        break;
                    }
                    let token = self.cipher.open(&sealed, &owner).map_err(|e| {
                        sealed_error(format!("{key}: {user}.{}", p.as_str()), e, &self.cipher)
                    })?;
                    let done: i64 = hswap
                        .key(&key)
                        .arg(&field)
                        .arg(&sealed)
                        .arg(self.cipher.seal(&token, &owner))
                        .invoke_async(&mut conn)
                        .await
                        .map_err(unavailable)?;
                    if done == 1 {
                        report.resealed += 1;
                        break;
                    }
                }
            }
        }
        let flow_prefix = format!("{}flow:", self.prefix);
        for key in self
            .scan(&format!("{}*", glob_escape(&flow_prefix)))
            .await?
        {
            let state = key.strip_prefix(&flow_prefix).unwrap_or_default();
            let mut conn = self.conn.clone();
            let json: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            // Taken by its callback meanwhile.
            let Some(json) = json else { continue };
            let mut doc: FlowDoc = serde_json::from_str(&json).map_err(corrupt)?;
            if self.cipher.is_current(&doc.verifier_sealed) {
                report.current += 1;
                continue;
            }
            let owner = format!("flow|{state}");
            let verifier = self
                .cipher
                .open(&doc.verifier_sealed, &owner)
                .map_err(|e| sealed_error(&key, e, &self.cipher))?;
            doc.verifier_sealed = self.cipher.seal(&verifier, &owner);
            let resealed = serde_json::to_string(&doc).map_err(corrupt)?;
            // Not replaced: taken by its callback meanwhile, and a flow
            // works once, so it must not come back.
            let done: i64 = swap
                .key(&key)
                .arg(&json)
                .arg(&resealed)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            report.resealed += usize::try_from(done).unwrap_or(0);
        }
        // The key check last: once it is under the new key, every value
        // before it is too.
        let key = self.key_check_key();
        let mut conn = self.conn.clone();
        let check: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        match check {
            Some(check) if self.cipher.is_current(&check) => report.current += 1,
            Some(check) => {
                self.cipher
                    .open_key_check(&check)
                    .map_err(|e| sealed_error(&key, e, &self.cipher))?;
                let _: () = conn
                    .set(&key, self.cipher.seal_key_check())
                    .await
                    .map_err(unavailable)?;
                report.resealed += 1;
            }
            None => {
                let _: () = conn
                    .set(&key, self.cipher.seal_key_check())
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(report)
    }

    fn key(&self, user: &str) -> String {
        format!("{}conn:{user}", self.prefix)
    }

    /// Records of `kind` set through the admin API: a hash by id, each a
    /// JSON value (`null` for a deleted one).
    fn records_key(&self, kind: Kind) -> String {
        format!("{}accounts:{}", self.prefix, kind.as_str())
    }

    /// Booking settings set through the admin API for a campaign.
    fn booking_key(&self, campaign: &str) -> String {
        format!("{}booking:{campaign}", self.prefix)
    }

    fn status_json(status: &ConnectionStatus) -> Result<String, StoreError> {
        serde_json::to_string(status).map_err(corrupt)
    }

    async fn write(
        &self,
        user: &str,
        c: &Connection,
        only_if_absent: bool,
    ) -> Result<(), StoreError> {
        let sealed = self
            .cipher
            .seal(&c.refresh_token, &sealed_owner(user, c.provider));
        let mut conn = self.conn.clone();
        let _: i64 = self
            .put
            .key(self.key(user))
            .arg(c.provider.as_str())
            .arg(sealed)
            .arg(&c.calendar_id)
            .arg(Self::status_json(&c.status)?)
            .arg(c.tenant.as_deref().unwrap_or(""))
            .arg(c.account_email.as_deref().unwrap_or(""))
            .arg(if c.other_account { "1" } else { "" })
            .arg(if only_if_absent { "1" } else { "0" })
            .arg(
                c.canonical
                    .as_ref()
                    .map(|k| format!("{}\n{}", k.alias, k.id))
                    .unwrap_or_default(),
            )
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// One connection from its fields; a token that does not open is an
    /// error, never a silently missing connection.
    fn connection_of(
        &self,
        user: &str,
        p: Provider,
        field: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Connection>, StoreError> {
        let Some(sealed) = field("token").filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let token = self
            .cipher
            .open(&sealed, &sealed_owner(user, p))
            .map_err(|e| sealed_error(format!("{user}.{}", p.as_str()), e, &self.cipher))?;
        let status = match field("status") {
            Some(s) if !s.is_empty() => serde_json::from_str(&s).map_err(corrupt)?,
            _ => ConnectionStatus::Active,
        };
        let nonempty = |f: &str| field(f).filter(|v| !v.is_empty());
        Ok(Some(Connection {
            provider: p,
            calendar_id: nonempty("calendar").unwrap_or_else(|| "primary".into()),
            refresh_token: token,
            status,
            tenant: nonempty("tenant"),
            account_email: nonempty("email"),
            other_account: nonempty("other").is_some(),
            canonical: nonempty("canonical").and_then(|v| {
                let (alias, id) = v.split_once('\n')?;
                Some(super::CanonicalCalendar {
                    alias: alias.to_string(),
                    id: id.to_string(),
                })
            }),
        }))
    }

    async fn read(&self, user: &str) -> Result<UserConnections, StoreError> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> =
            conn.hgetall(self.key(user)).await.map_err(unavailable)?;
        let mut list = Vec::new();
        for p in [Provider::Google, Provider::Microsoft] {
            let field = |f: &str| all.get(&format!("{}:{f}", p.as_str())).cloned();
            if let Some(c) = self.connection_of(user, p, field)? {
                list.push(c);
            }
        }
        let active = all.get("active").and_then(|a| Provider::parse(a));
        Ok(UserConnections { active, list })
    }

    async fn set(
        &self,
        user: &str,
        p: Provider,
        field: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let done: i64 = self
            .set
            .key(self.key(user))
            .arg(p.as_str())
            .arg(field)
            .arg(value)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }
}

impl RedisStore {
    /// The record `id` of `kind`: the admin API's if set, else the
    /// provisioning file's.
    async fn record(&self, kind: Kind, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = conn
            .hget(self.records_key(kind), id)
            .await
            .map_err(unavailable)?;
        match set {
            Some(json) => {
                let v: serde_json::Value = serde_json::from_str(&json).map_err(corrupt)?;
                Ok((!v.is_null()).then_some(v))
            }
            None => Ok(self.base.seed(kind, id)),
        }
    }

    /// Every live record of `kind`, by id.
    async fn records(&self, kind: Kind) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> = conn
            .hgetall(self.records_key(kind))
            .await
            .map_err(unavailable)?;
        let mut over = Vec::with_capacity(all.len());
        for (id, json) in all {
            let v: serde_json::Value = serde_json::from_str(&json).map_err(corrupt)?;
            over.push((id, (!v.is_null()).then_some(v)));
        }
        Ok(merge(self.base.seeds(kind), over))
    }

    /// Sets (or, with `None`, deletes) a record. Setting a campaign drops
    /// booking settings set apart from it.
    async fn put_record(
        &self,
        kind: Kind,
        id: &str,
        value: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&value.unwrap_or_default()).map_err(corrupt)?;
        let mut conn = self.conn.clone();
        // The campaign's booking settings and its record hash to different
        // slots, so a Redis Cluster cannot change both in one transaction.
        // The settings go first: a write cut in between leaves the old
        // record without the settings the new one replaces (the caller sees
        // the error and writes again), never the new record under old
        // settings.
        if kind == Kind::Campaign {
            let _: () = conn.del(self.booking_key(id)).await.map_err(unavailable)?;
        }
        let _: () = conn
            .hset(self.records_key(kind), id, json)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Adds or removes a member without losing a concurrent change: reads
    /// the team, changes it, and writes it only if it is still what was
    /// read (one script, [`SWAP_RECORD`]); otherwise reads again.
    async fn change_members(
        &self,
        team: &str,
        user: &str,
        present: bool,
    ) -> Result<Option<Team>, StoreError> {
        let key = self.records_key(Kind::Team);
        let mut conn = self.conn.clone();
        for _ in 0..MEMBER_ATTEMPTS {
            let stored: Option<String> = conn.hget(&key, team).await.map_err(unavailable)?;
            let current = match &stored {
                Some(json) => {
                    let v: serde_json::Value = serde_json::from_str(json).map_err(corrupt)?;
                    (!v.is_null()).then_some(v)
                }
                None => self.base.seed(Kind::Team, team),
            };
            let Some(mut t) = decode::<Team>(current)? else {
                return Ok(None);
            };
            if !set_member(&mut t, user, present) {
                return Ok(Some(t));
            }
            let json = serde_json::to_string(&t).map_err(corrupt)?;
            let swapped: i64 = self
                .swap_record
                .key(&key)
                .arg(team)
                .arg(if stored.is_some() { "1" } else { "0" })
                .arg(stored.as_deref().unwrap_or(""))
                .arg(json)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if swapped == 1 {
                return Ok(Some(t));
            }
        }
        Err(StoreError::Unavailable(format!(
            "team {team:?} kept changing; its members were not changed"
        )))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let Some(c) = self.record(Kind::Campaign, id).await? else {
            return Ok(None);
        };
        let mut c: Campaign = super::memory::parse(c)?;
        let mut conn = self.conn.clone();
        let set: Option<String> = conn.get(self.booking_key(id)).await.map_err(unavailable)?;
        if let Some(json) = set {
            c.booking = Some(serde_json::from_str(&json).map_err(corrupt)?);
        }
        Ok(Some(c))
    }

    async fn set_booking(&self, id: &str, booking: BookingSettings) -> Result<bool, StoreError> {
        if self.campaign(id).await?.is_none() {
            return Ok(false);
        }
        let json = serde_json::to_string(&booking).map_err(corrupt)?;
        let mut conn = self.conn.clone();
        let _: () = conn
            .set(self.booking_key(id), json)
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        decode(self.record(Kind::User, id).await?)
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        decode_all(self.records(Kind::User).await?)
    }

    async fn save_user(&self, user: &User) -> Result<(), StoreError> {
        self.put_record(Kind::User, &user.id, Some(encode(user)?))
            .await
    }

    async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        self.put_record(Kind::User, id, None).await
    }

    async fn team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        decode(self.record(Kind::Team, id).await?)
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        decode_all(self.records(Kind::Team).await?)
    }

    async fn save_team(&self, team: &Team) -> Result<(), StoreError> {
        self.put_record(Kind::Team, &team.id, Some(encode(team)?))
            .await
    }

    async fn delete_team(&self, id: &str) -> Result<(), StoreError> {
        self.put_record(Kind::Team, id, None).await
    }

    async fn add_member(&self, team: &str, user: &str) -> Result<Option<Team>, StoreError> {
        self.change_members(team, user, true).await
    }

    async fn remove_member(&self, team: &str, user: &str) -> Result<Option<Team>, StoreError> {
        self.change_members(team, user, false).await
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let mut list: Vec<Campaign> = decode_all(self.records(Kind::Campaign).await?)?;
        if list.is_empty() {
            return Ok(list);
        }
        let keys: Vec<String> = list.iter().map(|c| self.booking_key(&c.id)).collect();
        let mut conn = self.conn.clone();
        // The keys hash to different slots: on a Cluster the client splits
        // the MGET by node (tested on a real cluster).
        let set: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        for (c, json) in list.iter_mut().zip(set) {
            if let Some(json) = json {
                c.booking = Some(serde_json::from_str(&json).map_err(corrupt)?);
            }
        }
        Ok(list)
    }

    async fn save_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        self.put_record(Kind::Campaign, &campaign.id, Some(encode(campaign)?))
            .await
    }

    async fn delete_campaign(&self, id: &str) -> Result<(), StoreError> {
        self.put_record(Kind::Campaign, id, None).await
    }

    async fn connection(&self, user_id: &str) -> Result<Option<Connection>, StoreError> {
        let uc = self.read(user_id).await?;
        let Some(active) = uc.active else {
            return Ok(None);
        };
        Ok(uc.list.into_iter().find(|c| c.provider == active))
    }

    async fn connections(
        &self,
        user_id: &str,
    ) -> Result<(Vec<Connection>, Option<Provider>), StoreError> {
        let uc = self.read(user_id).await?;
        Ok((uc.list, uc.active))
    }

    async fn put_connection(&self, user_id: &str, c: Connection) -> Result<(), StoreError> {
        self.write(user_id, &c, false).await
    }

    async fn remove_connection(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> Result<Option<Connection>, StoreError> {
        let mut conn = self.conn.clone();
        let got: Vec<String> = self
            .remove
            .key(self.key(user_id))
            .arg(provider.as_str())
            .arg(other(provider).as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let names = [
            "token",
            "calendar",
            "status",
            "tenant",
            "email",
            "other",
            "canonical",
        ];
        let field = |f: &str| {
            names
                .iter()
                .position(|n| *n == f)
                .and_then(|i| got.get(i).cloned())
        };
        self.connection_of(user_id, provider, field)
    }

    async fn set_active(&self, user_id: &str, provider: Provider) -> Result<bool, StoreError> {
        self.set(user_id, provider, "active", "").await
    }

    async fn set_calendar(
        &self,
        user_id: &str,
        provider: Provider,
        calendar_id: &str,
    ) -> Result<bool, StoreError> {
        self.set(user_id, provider, "calendar", calendar_id).await
    }

    async fn set_canonical(
        &self,
        user_id: &str,
        provider: Provider,
        alias: &str,
        canonical: &str,
    ) -> Result<bool, StoreError> {
        let value = format!("{alias}\n{canonical}");
        self.set(user_id, provider, "canonical", &value).await
    }

    async fn set_status(
        &self,
        user_id: &str,
        provider: Provider,
        status: ConnectionStatus,
    ) -> Result<(), StoreError> {
        self.set(user_id, provider, "status", &Self::status_json(&status)?)
            .await
            .map(|_| ())
    }

    async fn begin_flow(&self, state: &str, flow: PendingFlow) -> Result<(), StoreError> {
        let doc = FlowDoc {
            user: flow.user_id,
            provider: flow.provider,
            verifier_sealed: self.cipher.seal(&flow.verifier, &format!("flow|{state}")),
            redirect_uri: flow.redirect_uri,
            expect: flow.expect,
        };
        let json = serde_json::to_string(&doc).map_err(corrupt)?;
        let mut conn = self.conn.clone();
        let _: () = conn
            .set_ex(
                format!("{}flow:{state}", self.prefix),
                json,
                FLOW_TTL.as_secs(),
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn finish_flow(&self, state: &str) -> Result<Option<PendingFlow>, StoreError> {
        let mut conn = self.conn.clone();
        let json: Option<String> = redis::cmd("GETDEL")
            .arg(format!("{}flow:{state}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let Some(json) = json else {
            return Ok(None);
        };
        let doc: FlowDoc = serde_json::from_str(&json).map_err(corrupt)?;
        let verifier = self
            .cipher
            .open(&doc.verifier_sealed, &format!("flow|{state}"))
            .map_err(|e| sealed_error("a consent flow", e, &self.cipher))?;
        Ok(Some(PendingFlow {
            user_id: doc.user,
            provider: doc.provider,
            verifier,
            redirect_uri: doc.redirect_uri,
            expect: doc.expect,
        }))
    }

    async fn update_refresh_token(
        &self,
        user_id: &str,
        provider: Provider,
        token: SecretString,
    ) -> Result<(), StoreError> {
        let sealed = self.cipher.seal(&token, &sealed_owner(user_id, provider));
        self.set(user_id, provider, "token", &sealed)
            .await
            .map(|_| ())
    }

    async fn first_use(&self, key: &str, now: i64, expires: i64) -> Result<bool, StoreError> {
        // `SET NX` with the value's remaining lifetime: one instance wins,
        // and Redis forgets the key when the value would be refused anyway.
        let ttl = u64::try_from(expires.saturating_sub(now))
            .unwrap_or(0)
            .max(1);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}used:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
