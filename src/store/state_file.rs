//! What callbook learns while running, kept in one JSON file: connections
//! (OAuth connects, rotated refresh tokens, expiry, the chosen calendar and
//! active provider) with every refresh token sealed, and the booking
//! settings, users, teams and campaigns set through the admin API.
//!
//! Each change rewrites the file: a temporary file beside it (created
//! `0600`, never through an existing path), written and fsynced, renamed
//! over the file, then the directory fsynced. A crash or a full disk leaves
//! either the old state or the new one, never a truncated file, and the
//! file is readable by its owner only.
//!
//! From its first write the file also holds `key_check`, a known value
//! sealed under the token key: loading refuses keys that do not open it, so
//! a wrong `CALLBOOK_TOKEN_KEY` stops the start even before any connection
//! is saved. Every write seals everything under the sealing key.

use super::memory::UserConnections;
use super::provisioning::sealed_owner;
use super::secrets::TokenCipher;
use super::{
    sealed_error, BookingSettings, Connection, ConnectionStatus, Provider, RekeyReport, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where connections are saved, and the keys that seal their tokens.
pub struct StateFile {
    path: PathBuf,
    cipher: TokenCipher,
    /// One writer at a time; each takes its snapshot under this lock so the
    /// last write holds the newest state.
    writing: tokio::sync::Mutex<()>,
    /// Makes the next write fail after its temporary file is written and
    /// before the rename, as a crash there would.
    #[cfg(test)]
    fail_before_rename: std::sync::atomic::AtomicBool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: u32,
    /// A known value sealed under the sealing key (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_check: Option<String>,
    users: BTreeMap<String, UserDoc>,
    /// Booking settings set through the admin API, by campaign; they
    /// override the provisioning file's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    bookings: BTreeMap<String, BookingSettings>,
    /// Users, teams and campaigns set through the admin API.
    #[serde(default, skip_serializing_if = "super::accounts::Overlay::is_empty")]
    accounts: super::accounts::Overlay,
}

/// What the file holds, or what is written to it.
#[derive(Default)]
pub(super) struct Snapshot {
    pub connections: std::collections::HashMap<String, UserConnections>,
    pub bookings: std::collections::HashMap<String, BookingSettings>,
    pub accounts: super::accounts::Overlay,
    /// Sealed values (tokens and the key check) not under the sealing key.
    pub stale: usize,
    /// Sealed values under the sealing key.
    pub current: usize,
    /// The file has no key check yet (new, or from an older callbook).
    pub unchecked: bool,
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
    /// The canonical id of the calendar named `canonical_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canonical_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canonical_for: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    other_account: bool,
}

const VERSION: u32 = 1;

/// The state file's mode: its owner reads and writes it, no one else.
#[cfg(unix)]
const MODE: u32 = 0o600;

impl StateFile {
    pub fn new(path: PathBuf, cipher: TokenCipher) -> Self {
        Self {
            path,
            cipher,
            writing: tokio::sync::Mutex::new(()),
            #[cfg(test)]
            fail_before_rename: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn unavailable(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(format!("{}: {what}", self.path.display()))
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}: {what}", self.path.display()))
    }

    /// What the file holds; nothing if it does not exist yet. Refuses keys
    /// that do not open its key check or any of its tokens.
    pub(super) async fn load(&self) -> Result<Snapshot, StoreError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Snapshot {
                    unchecked: true,
                    ..Snapshot::default()
                })
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let doc: Doc = serde_json::from_str(&text).map_err(|e| self.corrupt(e))?;
        if doc.version != VERSION {
            return Err(self.corrupt(format!("version {} is not {VERSION}", doc.version)));
        }
        let mut out = Snapshot {
            bookings: doc.bookings.into_iter().collect(),
            accounts: doc.accounts,
            unchecked: doc.key_check.is_none(),
            ..Snapshot::default()
        };
        let (mut current, mut stale) = (0, 0);
        let mut tally = |sealed: &str| {
            if self.cipher.is_current(sealed) {
                current += 1;
            } else {
                stale += 1;
            }
        };
        if let Some(check) = &doc.key_check {
            self.cipher.open_key_check(check).map_err(|e| {
                sealed_error(
                    format!("{}: key_check", self.path.display()),
                    e,
                    &self.cipher,
                )
            })?;
            tally(check);
        }
        for (user, u) in doc.users {
            let mut list = Vec::new();
            for c in u.connections {
                let owner = sealed_owner(&user, c.provider);
                let token = self
                    .cipher
                    .open(&c.refresh_token_sealed, &owner)
                    .map_err(|e| {
                        sealed_error(
                            format!(
                                "{}: users.{user}.{}",
                                self.path.display(),
                                c.provider.as_str()
                            ),
                            e,
                            &self.cipher,
                        )
                    })?;
                tally(&c.refresh_token_sealed);
                list.push(Connection {
                    provider: c.provider,
                    calendar_id: c.calendar_id,
                    refresh_token: token,
                    status: c.status,
                    tenant: c.tenant,
                    account_email: c.account_email,
                    other_account: c.other_account,
                    canonical: c
                        .canonical_for
                        .zip(c.canonical_id)
                        .map(|(alias, id)| super::CanonicalCalendar { alias, id }),
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
        out.current = current;
        out.stale = stale;
        Ok(out)
    }

    /// Writes the snapshot `take` returns, atomically, everything sealed
    /// under the sealing key.
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
                        other_account: c.other_account,
                        canonical_id: c.canonical.as_ref().map(|k| k.id.clone()),
                        canonical_for: c.canonical.as_ref().map(|k| k.alias.clone()),
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
            key_check: Some(self.cipher.seal_key_check()),
            users,
            bookings: snapshot.bookings.into_iter().collect(),
            accounts: snapshot.accounts,
        };
        let json = serde_json::to_vec_pretty(&doc).map_err(|e| self.corrupt(e))?;
        let path = self.path.clone();
        #[cfg(test)]
        let fail = self
            .fail_before_rename
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(test))]
        let fail = false;
        tokio::task::spawn_blocking(move || write_atomically(&path, &json, fail))
            .await
            .map_err(|e| self.unavailable(e))?
            .map_err(|e| self.unavailable(e))
    }

    /// Re-seals everything in the file under the sealing key. Run it with
    /// no `callbook serve` using the file (a running one would write its
    /// own state over it).
    pub async fn rekey(&self) -> Result<RekeyReport, StoreError> {
        let snapshot = self.load().await?;
        let report = RekeyReport {
            resealed: snapshot.stale,
            current: snapshot.current,
        };
        self.save(|| snapshot).await?;
        Ok(report)
    }

    #[cfg(test)]
    fn fail_next_write_before_rename(&self) {
        self.fail_before_rename
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Replaces `path` with `bytes`: a fresh `0600` temporary file in the same
/// directory, written and fsynced, renamed over `path`, and the directory
/// fsynced so the rename itself survives a crash. The temporary file is
/// removed if anything fails. `fail_before_rename` stops after the
/// temporary file is complete, as a crash there would (for tests).
fn write_atomically(path: &Path, bytes: &[u8], fail_before_rename: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, MODE);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if fail_before_rename {
            return Err(std::io::Error::other("interrupted before the rename"));
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable once the directory entry is on disk.
    #[cfg(unix)]
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Store};
    use base64::Engine;
    use secrecy::{ExposeSecret, SecretString};

    fn cipher() -> TokenCipher {
        let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
        TokenCipher::from_base64(&key).unwrap()
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
        store
            .set_canonical("alex", Provider::Microsoft, "primary", "AAMkDefault")
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
        assert_eq!(c.canonical_id(), Some("AAMkDefault"));
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
        let other = TokenCipher::from_base64(&other).unwrap();
        let err = MemoryStore::new()
            .with_state_file(StateFile::new(path, other))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::store::StoreErrorKind::WrongKey);
        // The key check is read first; both name the key setting.
        assert!(err.to_string().contains("key_check"), "{err}");
        assert!(err.to_string().contains("CALLBOOK_TOKEN_KEY"), "{err}");
    }

    fn keys(bytes: &[u8]) -> TokenCipher {
        let list: Vec<SecretString> = bytes
            .iter()
            .map(|b| SecretString::from(base64::engine::general_purpose::STANDARD.encode([*b; 32])))
            .collect();
        TokenCipher::from_base64_list(&list).unwrap()
    }

    #[tokio::test]
    async fn a_new_state_file_is_bound_to_its_key_before_any_connection() {
        let path = temp_path("state.json");
        MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[1])))
            .await
            .unwrap();
        assert!(path.exists(), "the key check is written at first start");
        let err = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[2])))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::store::StoreErrorKind::WrongKey);
    }

    #[tokio::test]
    async fn a_token_under_a_dropped_key_is_refused_even_when_the_check_opens() {
        let path = temp_path("state.json");
        let store = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[1])))
            .await
            .unwrap();
        store
            .put_connection(
                "alex",
                Connection::new(Provider::Google, SecretString::from("g")),
            )
            .await
            .unwrap();
        // The key check alone re-sealed under key 2, as if an old key had
        // been dropped before everything was re-sealed.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["key_check"] = serde_json::json!(keys(&[2]).seal_key_check());
        std::fs::write(&path, doc.to_string()).unwrap();
        let err = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[2])))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::store::StoreErrorKind::WrongKey);
        assert!(err.to_string().contains("users.alex.google"), "{err}");
    }

    #[tokio::test]
    async fn rekey_moves_everything_to_the_first_key_so_the_old_one_can_go() {
        let path = temp_path("state.json");
        let store = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[1])))
            .await
            .unwrap();
        store
            .put_connection(
                "alex",
                Connection::new(Provider::Google, SecretString::from("g-1")),
            )
            .await
            .unwrap();
        let report = StateFile::new(path.clone(), keys(&[2, 1]))
            .rekey()
            .await
            .unwrap();
        assert_eq!(
            report,
            RekeyReport {
                resealed: 2,
                current: 0
            }
        );
        let again = StateFile::new(path.clone(), keys(&[2, 1]))
            .rekey()
            .await
            .unwrap();
        assert_eq!(again.resealed, 0);
        let only_new = MemoryStore::new()
            .with_state_file(StateFile::new(path.clone(), keys(&[2])))
            .await
            .unwrap();
        let c = only_new.connection("alex").await.unwrap().unwrap();
        assert_eq!(c.refresh_token.expose_secret(), "g-1");
        assert!(MemoryStore::new()
            .with_state_file(StateFile::new(path, keys(&[1])))
            .await
            .is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_state_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path("state.json");
        // An older callbook left it world-readable.
        std::fs::write(&path, r#"{"version":1,"users":{}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
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
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        // A fresh file too.
        let fresh = temp_path("fresh.json");
        MemoryStore::new()
            .with_state_file(StateFile::new(fresh.clone(), cipher()))
            .await
            .unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    /// The files in the state file's directory.
    fn dir_entries(path: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_write_interrupted_before_its_rename_leaves_the_old_state_whole() {
        let path = temp_path("state.json");
        let state = StateFile::new(path.clone(), cipher());
        let one = |token: &str| {
            let mut connections = std::collections::HashMap::new();
            connections.insert(
                "alex".to_string(),
                UserConnections {
                    active: Some(Provider::Google),
                    list: vec![Connection::new(
                        Provider::Google,
                        SecretString::from(token.to_string()),
                    )],
                },
            );
            Snapshot {
                connections,
                ..Snapshot::default()
            }
        };
        state.save(|| one("before")).await.unwrap();
        let before = std::fs::read(&path).unwrap();
        state.fail_next_write_before_rename();
        assert!(state.save(|| one("after")).await.is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the old state, whole"
        );
        assert_eq!(dir_entries(&path), ["state.json"], "no temporary file left");
        let loaded = state.load().await.unwrap();
        assert_eq!(
            loaded.connections["alex"].list[0]
                .refresh_token
                .expose_secret(),
            "before"
        );
        // The next write goes through.
        state.save(|| one("after")).await.unwrap();
        let loaded = state.load().await.unwrap();
        assert_eq!(
            loaded.connections["alex"].list[0]
                .refresh_token
                .expose_secret(),
            "after"
        );
        assert_eq!(dir_entries(&path), ["state.json"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_never_sees_a_partly_written_file() {
        let path = temp_path("state.json");
        let store = std::sync::Arc::new(
            MemoryStore::new()
                .with_state_file(StateFile::new(path.clone(), cipher()))
                .await
                .unwrap(),
        );
        store
            .put_connection(
                "u0",
                Connection::new(Provider::Google, SecretString::from("t")),
            )
            .await
            .unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let bytes = std::fs::read(&path).unwrap();
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .unwrap_or_else(|e| panic!("a partial file ({} bytes): {e}", bytes.len()));
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..100 {
            // A large document, so a write in place would be seen half done.
            let mut c = Connection::new(Provider::Google, SecretString::from(format!("t-{i}")));
            c.calendar_id = "x".repeat(64 * 1024);
            store
                .put_connection(&format!("u{}", i % 7), c)
                .await
                .unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
    }
}
