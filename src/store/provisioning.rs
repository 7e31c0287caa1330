//! The provisioning file: users, their calendar connections and campaigns'
//! booking rules, in one JSON document. The embedded default
//! (`config/default.json`) needs no network: its connection points at the
//! built-in Google emulator.

use super::{BookingSettings, Campaign, Connection, ConnectionStatus, MemoryStore, Provider, User};
use crate::calendar::template;
use crate::dialog::MeetingKind;
use crate::schedule::BookingRules;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;

/// The file compiled into the binary.
pub const DEFAULT: &str = include_str!("../../config/default.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    pub users: Vec<UserEntry>,
    pub campaigns: Vec<CampaignEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub connection: Option<ConnectionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionEntry {
    pub provider: Provider,
    #[serde(default = "primary")]
    pub calendar_id: String,
    pub refresh_token: SecretString,
    #[serde(default)]
    pub expired_at: Option<DateTime<Utc>>,
}

fn primary() -> String {
    "primary".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignEntry {
    pub id: String,
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub booking: Option<BookingEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingEntry {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub rules: BookingRules,
    pub meeting: MeetingKind,
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}

fn default_title() -> String {
    "{owner.name} <> {recipient.fullName}".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("provisioning file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("campaigns[{campaign}].owner: no user {owner:?}")]
    UnknownOwner { campaign: String, owner: String },
    #[error("campaigns[{campaign}].booking.{field}: unknown template token {{{token}}}")]
    UnknownToken {
        campaign: String,
        field: &'static str,
        token: String,
    },
}

impl Provisioning {
    pub fn parse(json: &str) -> Result<Self, ProvisioningError> {
        let p: Provisioning = serde_json::from_str(json)?;
        for c in &p.campaigns {
            if !p.users.iter().any(|u| u.id == c.owner) {
                return Err(ProvisioningError::UnknownOwner {
                    campaign: c.id.clone(),
                    owner: c.owner.clone(),
                });
            }
            if let Some(b) = &c.booking {
                for (field, text) in [("title", &b.title), ("description", &b.description)] {
                    if let Some(token) = template::unknown_tokens(text).into_iter().next() {
                        return Err(ProvisioningError::UnknownToken {
                            campaign: c.id.clone(),
                            field,
                            token,
                        });
                    }
                }
            }
        }
        Ok(p)
    }

    /// Loads everything into a fresh in-memory store.
    pub fn into_store(self) -> MemoryStore {
        let store = MemoryStore::new();
        for u in self.users {
            if let Some(c) = u.connection {
                store.put_connection(
                    &u.id,
                    Connection {
                        provider: c.provider,
                        calendar_id: c.calendar_id,
                        refresh_token: c.refresh_token,
                        status: c.expired_at.map_or(ConnectionStatus::Active, |at| {
                            ConnectionStatus::Expired { at }
                        }),
                    },
                );
            }
            store.put_user(User {
                id: u.id,
                name: u.name,
            });
        }
        for c in self.campaigns {
            store.put_campaign(Campaign {
                id: c.id,
                name: c.name,
                owner: c.owner,
                booking: c.booking.map(|b| BookingSettings {
                    enabled: b.enabled,
                    rules: b.rules,
                    meeting: b.meeting,
                    title: b.title,
                    description: b.description,
                }),
            });
        }
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        Provisioning::parse(DEFAULT).unwrap();
    }

    #[test]
    fn an_unknown_owner_is_named() {
        let bad = r#"{"users":[],"campaigns":[{"id":"c","name":"C","owner":"ghost"}]}"#;
        let e = Provisioning::parse(bad).err().unwrap().to_string();
        assert!(e.contains("campaigns[c].owner"), "{e}");
    }
}
