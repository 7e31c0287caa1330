use super::{Campaign, Connection, ConnectionStatus, Store, StoreError, User};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::RwLock;

/// Everything in process memory; what the provisioning file loads into.
#[derive(Default)]
pub struct MemoryStore {
    campaigns: RwLock<HashMap<String, Campaign>>,
    users: RwLock<HashMap<String, User>>,
    connections: RwLock<HashMap<String, Connection>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put_campaign(&self, c: Campaign) {
        self.campaigns
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone(), c);
    }

    pub fn put_user(&self, u: User) {
        self.users
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(u.id.clone(), u);
    }

    pub fn put_connection(&self, user_id: &str, c: Connection) {
        self.connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.to_string(), c);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        Ok(self
            .campaigns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned())
    }

    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned())
    }

    async fn connection(&self, user_id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .connections
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .cloned())
    }

    async fn update_refresh_token(
        &self,
        user_id: &str,
        token: secrecy::SecretString,
    ) -> Result<(), StoreError> {
        if let Some(c) = self
            .connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(user_id)
        {
            c.refresh_token = token;
        }
        Ok(())
    }

    async fn mark_expired(&self, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(c) = self
            .connections
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(user_id)
        {
            c.status = ConnectionStatus::Expired { at };
        }
        Ok(())
    }
}
