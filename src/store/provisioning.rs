//! The provisioning file: users, their calendar connections and campaigns'
//! booking rules, in one JSON document. The embedded default
//! (`config/default.json`) needs no network: its connection points at the
//! built-in Google emulator.

use super::{BookingSettings, Campaign, Connection, ConnectionStatus, MemoryStore, Provider, User};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;

/// The file compiled into the binary.
pub const DEFAULT: &str = include_str!("../../config/default.json");

/// No users, no campaigns: what `serve` starts with when given no file and
/// no `--emulator`.
pub const EMPTY: &str = r#"{"users": [], "campaigns": []}"#;

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
    /// The refresh token in clear (the embedded demo, emulators).
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// The refresh token sealed at rest (see `store::secrets`); opened at
    /// start with `CALLBOOK_TOKEN_KEY`.
    #[serde(default)]
    pub refresh_token_sealed: Option<String>,
    #[serde(default)]
    pub expired_at: Option<DateTime<Utc>>,
}

/// What a sealed token is bound to: `<user id>|<provider>`.
pub fn sealed_owner(user: &str, provider: Provider) -> String {
    format!("{user}|{}", provider.as_str())
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
    pub booking: Option<BookingSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error("provisioning file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("users[{0}].connection: give exactly one of refresh_token and refresh_token_sealed")]
    TokenForm(String),
    #[error("users[{user}].connection.refresh_token_sealed: {error} with CALLBOOK_TOKEN_KEY")]
    Sealed {
        user: String,
        error: super::secrets::SecretsError,
    },
    #[error("users[{0}].connection.refresh_token_sealed: no token key is configured (CALLBOOK_TOKEN_KEY)")]
    NoTokenKey(String),
    #[error("campaigns[{campaign}].owner: no user {owner:?}")]
    UnknownOwner { campaign: String, owner: String },
    #[error("campaigns[{campaign}].booking.{error}")]
    Booking { campaign: String, error: String },
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
                b.validate().map_err(|error| ProvisioningError::Booking {
                    campaign: c.id.clone(),
                    error,
                })?;
            }
        }
        for u in &p.users {
            if let Some(c) = &u.connection {
                if c.refresh_token.is_some() == c.refresh_token_sealed.is_some() {
                    return Err(ProvisioningError::TokenForm(u.id.clone()));
                }
            }
        }
        Ok(p)
    }

    /// Opens every sealed refresh token with `cipher` (the token keys).
    /// The owner each token is bound to is `<user id>|<provider>`.
    pub fn open_sealed(
        &mut self,
        cipher: Option<&super::secrets::TokenCipher>,
    ) -> Result<(), ProvisioningError> {
        for u in &mut self.users {
            let Some(c) = u.connection.as_mut() else {
                continue;
            };
            let Some(sealed) = c.refresh_token_sealed.take() else {
                continue;
            };
            let cipher = cipher.ok_or_else(|| ProvisioningError::NoTokenKey(u.id.clone()))?;
            let owner = sealed_owner(&u.id, c.provider);
            let token =
                cipher
                    .open(&sealed, &owner)
                    .map_err(|error| ProvisioningError::Sealed {
                        user: u.id.clone(),
                        error,
                    })?;
            c.refresh_token = Some(token);
        }
        Ok(())
    }

    /// Loads everything into a fresh in-memory store.
    pub fn into_store(self) -> MemoryStore {
        let store = MemoryStore::new();
        for u in self.users {
            // A token still sealed (not opened) leaves the user unconnected.
            if let Some((c, token)) = u
                .connection
                .and_then(|c| c.refresh_token.clone().map(|t| (c, t)))
            {
                store.load_connection(
                    &u.id,
                    Connection {
                        status: c.expired_at.map_or(ConnectionStatus::Active, |since| {
                            ConnectionStatus::Expired { since }
                        }),
                        calendar_id: c.calendar_id,
                        ..Connection::new(c.provider, token)
                    },
                );
            }
            store.put_user(User {
                id: u.id,
                name: u.name,
                email: Some(u.email).filter(|e| !e.trim().is_empty()),
            });
        }
        for c in self.campaigns {
            store.put_campaign(Campaign {
                id: c.id,
                name: c.name,
                team: None,
                owner: c.owner,
                booking: c.booking,
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
    fn sealed_tokens_open_with_the_key_and_only_for_their_user() {
        use crate::store::secrets::TokenCipher;
        use base64::Engine;
        use secrecy::ExposeSecret;
        let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([3u8; 32]));
        let cipher = TokenCipher::from_base64(&key).unwrap();
        let sealed = cipher.seal(&SecretString::from("1//rt"), "alex|google");
        let doc = |user: &str| {
            format!(
                r#"{{"users":[{{"id":"{user}","name":"A","email":"a@x.io",
                   "connection":{{"provider":"google","refresh_token_sealed":"{sealed}"}}}}],"campaigns":[]}}"#
            )
        };
        let mut p = Provisioning::parse(&doc("alex")).unwrap();
        p.open_sealed(Some(&cipher)).unwrap();
        let token = p.users[0]
            .connection
            .as_ref()
            .unwrap()
            .refresh_token
            .as_ref()
            .unwrap();
        assert_eq!(token.expose_secret(), "1//rt");
        // Copied onto another user, it does not open.
        let mut p = Provisioning::parse(&doc("mallory")).unwrap();
        assert!(p
            .open_sealed(Some(&cipher))
            .unwrap_err()
            .to_string()
            .contains("users[mallory]"));
        // Without a key, the error says which setting is missing.
        let mut p = Provisioning::parse(&doc("alex")).unwrap();
        assert!(p
            .open_sealed(None)
            .unwrap_err()
            .to_string()
            .contains("CALLBOOK_TOKEN_KEY"));
    }

    #[test]
    fn an_unknown_owner_is_named() {
        let bad = r#"{"users":[],"campaigns":[{"id":"c","name":"C","owner":"ghost"}]}"#;
        let e = Provisioning::parse(bad).err().unwrap().to_string();
        assert!(e.contains("campaigns[c].owner"), "{e}");
    }
}
