//! Connections and consent flows in Redis, shared by every instance: a
//! connect, a rotated Microsoft token, an expiry or a change of calendar
//! made through one instance is what the next call on any instance sees,
//! and an OAuth callback may land on any of them. Users and campaigns come
//! from the provisioning file, which every instance loads; booking settings
//! set through the admin API are kept in Redis (`{prefix}booking:{id}`) and
//! override the file's.
//!
//! One hash per user, `{prefix}conn:{user}`: `active`, and per provider
//! `<p>:token` (sealed), `<p>:calendar`, `<p>:status` (JSON), `<p>:tenant`,
//! `<p>:email`. Each change writes only its own fields, in a script that
//! first checks the connection exists, so concurrent changes from two
//! instances never undo each other or bring back a removed connection.
//! Flows are `{prefix}flow:{state}`, expiring with the flow and taken with
//! `GETDEL`, so each works once.

use super::memory::UserConnections;
use super::provisioning::sealed_owner;
use super::secrets::TokenCipher;
use super::{
    BookingSettings, Campaign, Connection, ConnectionStatus, MemoryStore, PendingFlow, Provider,
    Store, StoreError, User,
};
use crate::calendar::oauth::FLOW_TTL;
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// KEYS: conn. ARGV: provider, token, calendar, status, tenant, email,
/// only_if_absent ("1" when seeding). Makes the provider active when none is.
const PUT: &str = r#"
local k, p = KEYS[1], ARGV[1]
if ARGV[7] == '1' and redis.call('HEXISTS', k, p .. ':token') == 1 then
  return 0
end
redis.call('HSET', k, p .. ':token', ARGV[2], p .. ':calendar', ARGV[3], p .. ':status', ARGV[4])
for i, f in ipairs({'tenant', 'email'}) do
  local v = ARGV[4 + i]
  if v == '' then redis.call('HDEL', k, p .. ':' .. f) else redis.call('HSET', k, p .. ':' .. f, v) end
end
redis.call('HSETNX', k, 'active', p)
return 1
"#;

/// KEYS: conn. ARGV: provider, the other provider. Returns the removed
/// fields (token, calendar, status, tenant, email) or an empty list.
const REMOVE: &str = r#"
local k, p, other = KEYS[1], ARGV[1], ARGV[2]
local got = redis.call('HMGET', k, p .. ':token', p .. ':calendar', p .. ':status', p .. ':tenant', p .. ':email')
if not got[1] then
  return {}
end
redis.call('HDEL', k, p .. ':token', p .. ':calendar', p .. ':status', p .. ':tenant', p .. ':email')
if redis.call('HGET', k, 'active') == p then
  if redis.call('HEXISTS', k, other .. ':token') == 1 then
    redis.call('HSET', k, 'active', other)
  else
    redis.call('HDEL', k, 'active')
  end
end
for i = 1, 5 do
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

#[derive(Serialize, Deserialize)]
struct FlowDoc {
    user: String,
    provider: Provider,
    verifier_sealed: String,
    redirect_uri: String,
}

/// Shared connections; users and campaigns from provisioning.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    cipher: Arc<TokenCipher>,
    /// Users and campaigns (read-only, from the provisioning file).
    base: MemoryStore,
    put: Script,
    remove: Script,
    set: Script,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn other(p: Provider) -> Provider {
    match p {
        Provider::Google => Provider::Microsoft,
        Provider::Microsoft => Provider::Google,
    }
}

impl RedisStore {
    /// Connects, and seeds Redis with the provisioning file's connections
    /// for users it knows nothing about yet (what Redis holds wins).
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
        };
        for (user, uc) in store.base.all_connections() {
            for c in uc.list {
                store.write(&user, &c, true).await?;
            }
        }
        Ok(store)
    }

    fn key(&self, user: &str) -> String {
        format!("{}conn:{user}", self.prefix)
    }

    /// Booking settings set through the admin API for a campaign.
    fn booking_key(&self, campaign: &str) -> String {
        format!("{}booking:{campaign}", self.prefix)
    }

    fn status_json(status: &ConnectionStatus) -> Result<String, StoreError> {
        serde_json::to_string(status).map_err(unavailable)
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
            .arg(if only_if_absent { "1" } else { "0" })
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
            .map_err(|e| unavailable(format!("{user}.{}: {e}", p.as_str())))?;
        let status = match field("status") {
            Some(s) if !s.is_empty() => serde_json::from_str(&s).map_err(unavailable)?,
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

#[async_trait]
impl Store for RedisStore {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let Some(mut c) = self.base.campaign(id).await? else {
            return Ok(None);
        };
        let mut conn = self.conn.clone();
        let set: Option<String> = conn.get(self.booking_key(id)).await.map_err(unavailable)?;
        if let Some(json) = set {
            c.booking = Some(serde_json::from_str(&json).map_err(unavailable)?);
        }
        Ok(Some(c))
    }

    async fn set_booking(&self, id: &str, booking: BookingSettings) -> Result<bool, StoreError> {
        if self.base.campaign(id).await?.is_none() {
            return Ok(false);
        }
        let json = serde_json::to_string(&booking).map_err(unavailable)?;
        let mut conn = self.conn.clone();
        let _: () = conn
            .set(self.booking_key(id), json)
            .await
            .map_err(unavailable)?;
        Ok(true)
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.base.user(id).await
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
        let names = ["token", "calendar", "status", "tenant", "email"];
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
        };
        let json = serde_json::to_string(&doc).map_err(unavailable)?;
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
        let doc: FlowDoc = serde_json::from_str(&json).map_err(unavailable)?;
        let verifier = self
            .cipher
            .open(&doc.verifier_sealed, &format!("flow|{state}"))
            .map_err(unavailable)?;
        Ok(Some(PendingFlow {
            user_id: doc.user,
            provider: doc.provider,
            verifier,
            redirect_uri: doc.redirect_uri,
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

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
