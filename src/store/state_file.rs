//! What callbook learns while running, kept in one JSON file: connections
//! (OAuth connects, rotated refresh tokens, expiry, the chosen calendar and
//! active provider) with every refresh token sealed, and the booking
//! settings set through the admin API.
//!
//! Each change rewrites the file: a temporary file beside it, then a
//! rename, so a crash leaves either the old state or the new one.

use super::memory::UserConnections;
use super::provisioning::sealed_owner;
use super::secrets::TokenCipher;
use super::{BookingSettings, Connection, ConnectionStatus, Provider, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where connections are saved, and the key that seals their tokens.
pub struct StateFile {
    path: PathBuf,
    cipher: TokenCipher,
    /// One writer at a time; each takes its snapshot under this lock so the
    /// last write holds the newest state.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: u32,
    users: BTreeMap<String, UserDoc>,
    /// Booking settings set through the admin API, by campaign; they
    /// override the provisioning file's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    bookings: BTreeMap<String, BookingSettings>,
}

/// What the file holds, or what is written to it.
#[derive(Default)]
pub(super) struct Snapshot {
    pub connections: std::collections::HashMap<String, UserConnections>,
    pub bookings: std::collections::HashMap<String, BookingSettings>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserDoc {
    active: Option<Provider>,
    connections: Vec<ConnectionDoc>,
}

#[derive(Serialize, Deserialize)]
struct ConnectionDoc {
    provider: Provider,
    calendar_id: String,
    refresh_token_sealed: String,
    #[serde(flatten)]
    status: ConnectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_email: Option<String>,
}

const VERSION: u32 = 1;

fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(what.to_string())
}

impl StateFile {
    pub fn new(path: PathBuf, cipher: TokenCipher) -> Self {
        Self {
            path,
            cipher,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// What the file holds; nothing if it does not exist yet.
    pub(super) async fn load(&self) -> Result<Snapshot, StoreError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Snapshot::default()),
            Err(e) => return Err(unavailable(format!("{}: {e}", self.path.display()))),
        };
        let doc: Doc = serde_json::from_str(&text)
            .map_err(|e| unavailable(format!("{}: {e}", self.path.display())))?;
        if doc.version != VERSION {
            return Err(unavailable(format!(
                "{}: version {} is not {VERSION}",
                self.path.display(),
                doc.version
            )));
        }
        let mut out = Snapshot {
            bookings: doc.bookings.into_iter().collect(),
            ..Snapshot::default()
        };
        for (user, u) in doc.users {
            let mut list = Vec::new();
            for c in u.connections {
                let owner = sealed_owner(&user, c.provider);
                let token = self
                    .cipher
                    .open(&c.refresh_token_sealed, &owner)
                    .map_err(|e| {
                        unavailable(format!(
                            "{}: users.{user}.{}: {e}",
                            self.path.display(),
                            c.provider.as_str()
                        ))
                    })?;
                list.push(Connection {
                    provider: c.provider,
                    calendar_id: c.calendar_id,
                    refresh_token: token,
                    status: c.status,
                    tenant: c.tenant,
                    account_email: c.account_email,
                });
            }
            out.connections.insert(
                user,
                UserConnections {
                    active: u.active,
                    list,
                },
            );
        }
        Ok(out)
    }

    /// Writes the snapshot `take` returns, atomically.
    pub(super) async fn save(&self, take: impl FnOnce() -> Snapshot) -> Result<(), StoreError> {
        let _one_writer = self.writing.lock().await;
        let snapshot = take();
        let users = snapshot
            .connections
            .into_iter()
            .filter(|(_, uc)| !uc.list.is_empty())
            .map(|(user, uc)| {
                let connections = uc
                    .list
                    .iter()
                    .map(|c| ConnectionDoc {
                        provider: c.provider,
                        calendar_id: c.calendar_id.clone(),
                        refresh_token_sealed: self
                            .cipher
                            .seal(&c.refresh_token, &sealed_owner(&user, c.provider)),
                        status: c.status,
                        tenant: c.tenant.clone(),
                        account_email: c.account_email.clone(),
                    })
                    .collect();
                (
                    user,
                    UserDoc {
                        active: uc.active,
                        connections,
                    },
                )
            })
            .collect();
        let doc = Doc {
            version: VERSION,
            users,
            bookings: snapshot.bookings.into_iter().collect(),
        };
        let json = serde_json::to_vec_pretty(&doc).map_err(unavailable)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        tokio::fs::write(&tmp, json)
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.path.display())))?;
        tokio::fs::rename(&tmp, &self.path)
            .await
            .map_err(|e| unavailable(format!("{}: {e}", self.path.display())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Store};
    use base64::Engine;
    use secrecy::{ExposeSecret, SecretString};

    fn cipher() -> TokenCipher {
        let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
        TokenCipher::from_base64("k1", &key).unwrap()
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("callbook-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[tokio::test]
    async fn connections_survive_a_restart_with_tokens_sealed() {
        let path = temp_path("state.json");
        let store = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), cipher()))
            .await
            .unwrap();
        let mut c = Connection::new(Provider::Microsoft, SecretString::from("rt-0"));
        c.tenant = Some("t-1".into());
        store.put_connection("alex", c).await.unwrap();
        store
            .update_refresh_token("alex", Provider::Microsoft, SecretString::from("rt-1"))
            .await
            .unwrap();
        let since = "2026-12-01T10:00:00Z".parse().unwrap();
        store
            .set_status(
                "alex",
                Provider::Microsoft,
                ConnectionStatus::AdminApprovalNeeded { since },
            )
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("rt-1"), "tokens are sealed at rest");

        let again = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), cipher()))
            .await
            .unwrap();
        let c = again.connection("alex").await.unwrap().unwrap();
        assert_eq!(c.refresh_token.expose_secret(), "rt-1");
        assert_eq!(c.status, ConnectionStatus::AdminApprovalNeeded { since });
        assert_eq!(c.tenant.as_deref(), Some("t-1"));
    }

    #[tokio::test]
    async fn booking_settings_set_while_running_survive_a_restart() {
        use crate::store::provisioning::{Provisioning, DEFAULT};
        let path = temp_path("state.json");
        let open = || async {
            Provisioning::parse(DEFAULT)
                .unwrap()
                .into_store()
                .with_state_file(StateFile::new(path.clone(), cipher()))
                .await
                .unwrap()
        };
        let store = open().await;
        let mut booking = store
            .campaign("demo")
            .await
            .unwrap()
            .unwrap()
            .booking
            .unwrap();
        booking.rules.length_minutes = 45;
        assert!(store.set_booking("demo", booking.clone()).await.unwrap());
        assert!(!store.set_booking("nope", booking.clone()).await.unwrap());
        let again = open().await;
        let got = again
            .campaign("demo")
            .await
            .unwrap()
            .unwrap()
            .booking
            .unwrap();
        assert_eq!(got, booking);
    }

    #[tokio::test]
    async fn a_state_file_sealed_with_another_key_is_refused() {
        let path = temp_path("state.json");
        let store = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), cipher()))
            .await
            .unwrap();
        store
            .put_connection(
                "alex",
                Connection::new(Provider::Google, SecretString::from("g")),
            )
            .await
            .unwrap();
        let other = SecretString::from(base64::engine::general_purpose::STANDARD.encode([1u8; 32]));
        let other = TokenCipher::from_base64("k1", &other).unwrap();
        let err = MemoryStore::new()
            .with_state_file(StateFile::new(path, other))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("users.alex.google"), "{err}");
    }
}
