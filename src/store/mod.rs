//! Who owns which calendar, and each campaign's booking settings.
//!
//! Behind a trait so the in-memory store (loaded from the provisioning file)
//! and a shared store later are interchangeable.

mod memory;
pub mod provisioning;
pub mod secrets;

pub use memory::MemoryStore;

use crate::dialog::MeetingKind;
use crate::schedule::BookingRules;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Google,
    Microsoft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    /// The grant stopped working at this time; calls skip booking until the
    /// owner reconnects.
    Expired {
        at: DateTime<Utc>,
    },
}

/// A calendar owner's connection. No `Debug`: it holds a token.
#[derive(Clone)]
pub struct Connection {
    pub provider: Provider,
    pub calendar_id: String,
    pub refresh_token: SecretString,
    pub status: ConnectionStatus,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
}

/// Booking settings for a campaign.
#[derive(Debug, Clone)]
pub struct BookingSettings {
    pub enabled: bool,
    pub rules: BookingRules,
    pub meeting: MeetingKind,
    pub title: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub booking: Option<BookingSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError>;
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn connection(&self, user_id: &str) -> Result<Option<Connection>, StoreError>;
    /// Records that the user's grant stopped working.
    async fn mark_expired(&self, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Replaces the stored refresh token (Microsoft rotates them).
    async fn update_refresh_token(
        &self,
        user_id: &str,
        token: SecretString,
    ) -> Result<(), StoreError>;
}
