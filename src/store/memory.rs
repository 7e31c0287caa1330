use super::accounts::{decode, decode_all, encode, merge, set_member, Kind, Overlay, Team};
use super::state_file::{Snapshot, StateFile};
use super::{
    BookingSettings, Campaign, Connection, ConnectionStatus, PendingFlow, Provider, Store,
    StoreError, User,
};
use crate::calendar::oauth::PendingFlows;
use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::RwLock;

/// What a pending consent flow keeps besides its verifier: user, provider,
/// redirect URI and the expected account.
type FlowMeta = (String, Provider, String, super::ExpectedAccount);

/// A user's calendar connections, at most one per provider.
#[derive(Clone, Default)]
pub(super) struct UserConnections {
    pub(super) active: Option<Provider>,
    pub(super) list: Vec<Connection>,
}

impl UserConnections {
    fn get_mut(&mut self, provider: Provider) -> Option<&mut Connection> {
        self.list.iter_mut().find(|c| c.provider == provider)
    }
}

/// Everything in process memory; what the provisioning file loads into.
/// With a [`StateFile`], every change to a connection is written through to
/// it (tokens sealed), so rotated tokens and reconnections survive a
/// restart.
#[derive(Default)]
pub struct MemoryStore {
    campaigns: RwLock<HashMap<String, Campaign>>,
    users: RwLock<HashMap<String, User>>,
    connections: RwLock<HashMap<String, UserConnections>>,
    /// Booking settings set through the admin API, over the campaigns'.
    bookings: RwLock<HashMap<String, BookingSettings>>,
    /// Users, teams and campaigns set through the admin API, over the
    /// provisioning file's.
    overlay: RwLock<Overlay>,
    state: Option<StateFile>,
    flows: PendingFlows<FlowMeta>,
    /// Single-use values already used, with when each expires (Unix
    /// seconds). In process only: one instance is the whole deployment.
    used: std::sync::Mutex<HashMap<String, i64>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes connections through to `state`, after loading what it holds
    /// (which replaces the provisioning file's connections for its users).
    /// Fails when the token keys do not open what the file holds; a file
    /// without a key check (new, or from an older callbook) is written at
    /// once, so the keys it was started with are the file's from now on.
    pub async fn with_state_file(mut self, state: StateFile) -> Result<Self, StoreError> {
        let saved = state.load().await?;
        write(&self.connections).extend(saved.connections);
        write(&self.bookings).extend(saved.bookings);
        *write(&self.overlay) = saved.accounts;
        self.state = Some(state);
        if saved.stale > 0 {
            tracing::warn!(
                values = saved.stale,
                "the state file holds values sealed under an older token key; they are re-sealed on the next write (or run callbook rekey)"
            );
        }
        if saved.unchecked {
            self.persist().await?;
        }
        Ok(self)
    }

    /// Every user's connections, for seeding a shared store.
    pub(super) fn all_connections(&self) -> Vec<(String, UserConnections)> {
        read(&self.connections)
            .iter()
            .map(|(u, c)| (u.clone(), c.clone()))
            .collect()
    }

    pub fn put_campaign(&self, c: Campaign) {
        write(&self.campaigns).insert(c.id.clone(), c);
    }

    pub fn put_user(&self, u: User) {
        write(&self.users).insert(u.id.clone(), u);
    }

    /// The provisioning file's records of `kind`, by id.
    pub(super) fn seeds(
        &self,
        kind: Kind,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        match kind {
            Kind::User => read(&self.users)
                .iter()
                .map(|(id, u)| (id.clone(), json(u)))
                .collect(),
            Kind::Team => Default::default(),
            Kind::Campaign => read(&self.campaigns)
                .iter()
                .map(|(id, c)| (id.clone(), json(c)))
                .collect(),
        }
    }

    /// The provisioning file's record, without the admin API's.
    pub(super) fn seed(&self, kind: Kind, id: &str) -> Option<serde_json::Value> {
        match kind {
            Kind::User => read(&self.users).get(id).map(json),
            Kind::Team => None,
            Kind::Campaign => read(&self.campaigns).get(id).map(json),
        }
    }

    /// Adds a connection while loading, before anything is served.
    pub fn load_connection(&self, user_id: &str, c: Connection) {
        upsert(
            write(&self.connections)
                .entry(user_id.to_string())
                .or_default(),
            c,
        );
    }

    /// Applies `change` to the user's connections and, when it changed
    /// something, writes the state file.
    async fn change<T>(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut UserConnections) -> (T, bool),
    ) -> Result<T, StoreError> {
        let (out, changed) = {
            let mut conns = write(&self.connections);
            let uc = conns.entry(user_id.to_string()).or_default();
            change(uc)
        };
        if changed {
            self.persist().await?;
        }
        Ok(out)
    }

    /// The record `id` of `kind` as stored: the admin API's if set, else
    /// the provisioning file's.
    fn record(&self, kind: Kind, id: &str) -> Option<serde_json::Value> {
        if let Some(set) = read(&self.overlay).of(kind).get(id) {
            return set.clone();
        }
        self.seed(kind, id)
    }

    /// Every live record of `kind`, by id.
    fn records(&self, kind: Kind) -> Vec<serde_json::Value> {
        let over = read(&self.overlay).of(kind).clone();
        merge(self.seeds(kind), over)
    }

    /// Sets (or, with `None`, deletes) a record and writes the state file.
    /// Setting a campaign drops booking settings set apart from it.
    async fn put_record(
        &self,
        kind: Kind,
        id: &str,
        value: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        write(&self.overlay)
            .of_mut(kind)
            .insert(id.to_string(), value);
        if kind == Kind::Campaign {
            write(&self.bookings).remove(id);
        }
        self.persist().await
    }

    /// Adds or removes a member under one lock, so no change is lost.
    async fn change_members(
        &self,
        team: &str,
        user: &str,
        present: bool,
    ) -> Result<Option<Team>, StoreError> {
        let (t, changed) = {
            let mut overlay = write(&self.overlay);
            let current = match overlay.of(Kind::Team).get(team) {
                Some(set) => set.clone(),
                None => self.seed(Kind::Team, team),
            };
            let Some(mut t) = decode::<Team>(current)? else {
                return Ok(None);
            };
            let changed = set_member(&mut t, user, present);
            if changed {
                overlay
                    .of_mut(Kind::Team)
                    .insert(team.to_string(), Some(encode(&t)?));
            }
            (t, changed)
        };
        if changed {
            self.persist().await?;
        }
        Ok(Some(t))
    }

    /// Writes the state file, when there is one.
    async fn persist(&self) -> Result<(), StoreError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        state
            .save(|| Snapshot {
                connections: read(&self.connections).clone(),
                bookings: read(&self.bookings).clone(),
                accounts: read(&self.overlay).clone(),
                ..Snapshot::default()
            })
            .await
    }
}

/// A seed record as JSON (a plain struct: it always serializes).
fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn upsert(uc: &mut UserConnections, c: Connection) {
    let provider = c.provider;
    match uc.get_mut(provider) {
        Some(slot) => *slot = c,
        None => uc.list.push(c),
    }
    if uc.active.is_none() {
        uc.active = Some(provider);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let Some(c) = self.record(Kind::Campaign, id) else {
            return Ok(None);
        };
        let mut c: Campaign = parse(c)?;
        if let Some(b) = read(&self.bookings).get(id) {
            c.booking = Some(b.clone());
        }
        Ok(Some(c))
    }

    async fn set_booking(&self, id: &str, booking: BookingSettings) -> Result<bool, StoreError> {
        if self.campaign(id).await?.is_none() {
            return Ok(false);
        }
        write(&self.bookings).insert(id.to_string(), booking);
        self.persist().await?;
        Ok(true)
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        decode(self.record(Kind::User, id))
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        decode_all(self.records(Kind::User))
    }

    async fn save_user(&self, user: &User) -> Result<(), StoreError> {
        self.put_record(Kind::User, &user.id, Some(encode(user)?))
            .await
    }

    async fn delete_user(&self, id: &str) -> Result<(), StoreError> {
        self.put_record(Kind::User, id, None).await
    }

    async fn team(&self, id: &str) -> Result<Option<Team>, StoreError> {
        decode(self.record(Kind::Team, id))
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        decode_all(self.records(Kind::Team))
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
        let mut list: Vec<Campaign> = decode_all(self.records(Kind::Campaign))?;
        let bookings = read(&self.bookings);
        for c in &mut list {
            if let Some(b) = bookings.get(&c.id) {
                c.booking = Some(b.clone());
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

    async fn first_use(&self, key: &str, now: i64, expires: i64) -> Result<bool, StoreError> {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        used.retain(|_, exp| *exp > now);
        Ok(used.insert(key.to_string(), expires).is_none())
    }

    async fn connection(&self, user_id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(read(&self.connections).get(user_id).and_then(|uc| {
            let active = uc.active?;
            uc.list.iter().find(|c| c.provider == active).cloned()
        }))
    }

    async fn connections(
        &self,
        user_id: &str,
    ) -> Result<(Vec<Connection>, Option<Provider>), StoreError> {
        Ok(read(&self.connections)
            .get(user_id)
            .map(|uc| (uc.list.clone(), uc.active))
            .unwrap_or_default())
    }

    async fn put_connection(&self, user_id: &str, c: Connection) -> Result<(), StoreError> {
        self.change(user_id, |uc| {
            let provider = c.provider;
            upsert(uc, c);
            uc.active = Some(provider);
            ((), true)
        })
        .await
    }

    async fn remove_connection(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> Result<Option<Connection>, StoreError> {
        self.change(user_id, |uc| {
            let Some(i) = uc.list.iter().position(|c| c.provider == provider) else {
                return (None, false);
            };
            let gone = uc.list.remove(i);
            if uc.active == Some(provider) {
                uc.active = uc.list.first().map(|c| c.provider);
            }
            (Some(gone), true)
        })
        .await
    }

    async fn set_active(&self, user_id: &str, provider: Provider) -> Result<bool, StoreError> {
        self.change(user_id, |uc| {
            let known = uc.list.iter().any(|c| c.provider == provider);
            if known {
                uc.active = Some(provider);
            }
            (known, known)
        })
        .await
    }

    async fn set_calendar(
        &self,
        user_id: &str,
        provider: Provider,
        calendar_id: &str,
    ) -> Result<bool, StoreError> {
        self.change(user_id, |uc| match uc.get_mut(provider) {
            Some(c) => {
                c.calendar_id = calendar_id.to_string();
                (true, true)
            }
            None => (false, false),
        })
        .await
    }

    async fn set_canonical(
        &self,
        user_id: &str,
        provider: Provider,
        alias: &str,
        canonical: &str,
    ) -> Result<bool, StoreError> {
        self.change(user_id, |uc| match uc.get_mut(provider) {
            Some(c) => {
                c.canonical = Some(super::CanonicalCalendar {
                    alias: alias.to_string(),
                    id: canonical.to_string(),
                });
                (true, true)
            }
            None => (false, false),
        })
        .await
    }

    async fn set_status(
        &self,
        user_id: &str,
        provider: Provider,
        status: ConnectionStatus,
    ) -> Result<(), StoreError> {
        self.change(user_id, |uc| match uc.get_mut(provider) {
            Some(c) if c.status != status => {
                c.status = status;
                ((), true)
            }
            _ => ((), false),
        })
        .await
    }

    async fn begin_flow(&self, state: &str, flow: PendingFlow) -> Result<(), StoreError> {
        self.flows.put_state(
            state,
            flow.verifier,
            (flow.user_id, flow.provider, flow.redirect_uri, flow.expect),
        );
        Ok(())
    }

    async fn finish_flow(&self, state: &str) -> Result<Option<PendingFlow>, StoreError> {
        Ok(self
            .flows
            .take(state)
            .map(
                |(verifier, (user_id, provider, redirect_uri, expect))| PendingFlow {
                    user_id,
                    provider,
                    verifier,
                    redirect_uri,
                    expect,
                },
            ))
    }

    async fn update_refresh_token(
        &self,
        user_id: &str,
        provider: Provider,
        token: SecretString,
    ) -> Result<(), StoreError> {
        self.change(user_id, |uc| match uc.get_mut(provider) {
            Some(c) => {
                c.refresh_token = token;
                ((), true)
            }
            None => ((), false),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn conn(p: Provider, token: &str) -> Connection {
        Connection::new(p, SecretString::from(token))
    }

    #[tokio::test]
    async fn the_latest_connection_is_active_and_another_takes_over_when_it_goes() {
        let s = MemoryStore::new();
        s.put_connection("u", conn(Provider::Google, "g"))
            .await
            .unwrap();
        s.put_connection("u", conn(Provider::Microsoft, "m"))
            .await
            .unwrap();
        let active = s.connection("u").await.unwrap().unwrap();
        assert_eq!(active.provider, Provider::Microsoft);
        assert!(s.set_active("u", Provider::Google).await.unwrap());
        assert_eq!(
            s.connection("u").await.unwrap().unwrap().provider,
            Provider::Google
        );
        assert!(s.set_active("u", Provider::Microsoft).await.unwrap());
        assert_eq!(
            s.connection("u").await.unwrap().unwrap().provider,
            Provider::Microsoft
        );
        let gone = s.remove_connection("u", Provider::Microsoft).await.unwrap();
        assert_eq!(gone.unwrap().refresh_token.expose_secret(), "m");
        assert_eq!(
            s.connection("u").await.unwrap().unwrap().provider,
            Provider::Google
        );
        s.remove_connection("u", Provider::Google).await.unwrap();
        assert!(s.connection("u").await.unwrap().is_none());
        assert!(!s.set_active("u", Provider::Google).await.unwrap());
    }
}
