//! Who owns which calendar, and each campaign's booking settings.
//!
//! Behind a trait so the in-memory store (loaded from the provisioning file,
//! optionally saving its connections to a sealed state file) and a shared
//! store are interchangeable. A user may connect Google and Microsoft both;
//! calls book on the active one.

pub mod accounts;
mod memory;
pub mod provisioning;
mod redis;
pub mod secrets;
pub mod state_file;

pub use memory::MemoryStore;
pub use redis::RedisStore;

pub use crate::calendar::binding::ExpectedAccount;
use crate::domain::MeetingKind;
use crate::schedule::BookingRules;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Google,
    Microsoft,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "google" => Some(Provider::Google),
            "microsoft" => Some(Provider::Microsoft),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// The grant stopped working at this time; calls skip booking until the
    /// owner reconnects.
    Expired {
        since: DateTime<Utc>,
    },
    /// The owner's organisation requires an administrator to approve
    /// callbook; calls skip booking until one does and the owner reconnects.
    AdminApprovalNeeded {
        since: DateTime<Utc>,
    },
}

impl ConnectionStatus {
    pub fn is_active(&self) -> bool {
        matches!(self, ConnectionStatus::Active)
    }
}

/// A calendar owner's connection to one provider. No `Debug`: it holds a
/// token.
#[derive(Clone)]
pub struct Connection {
    pub provider: Provider,
    pub calendar_id: String,
    pub refresh_token: SecretString,
    pub status: ConnectionStatus,
    /// Microsoft's tenant, from the `id_token` at connect time (for the
    /// admin-consent link and to spot personal accounts).
    pub tenant: Option<String>,
    /// The account's address as the provider reported it at connect time.
    pub account_email: Option<String>,
    /// The connect was started with `allow_other_account` and finished by
    /// an account other than the one expected (or one that could not be
    /// checked): accepted on the administrator's word, and shown as such.
    pub other_account: bool,
    /// The calendar's id as the provider reports it, for the alias or id
    /// in `calendar_id` it was resolved from. Claims in the ledger are
    /// keyed by it, so one calendar is one key whoever books on it and
    /// however they named it.
    pub canonical: Option<CanonicalCalendar>,
}

/// A calendar's canonical id (Google's primary calendar: the account's
/// address; Graph's default calendar: its real id) and the `calendar_id`
/// (alias or id) it belongs to: once the owner chooses another calendar the
/// pair no longer applies and is resolved again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalCalendar {
    pub alias: String,
    pub id: String,
}

impl Connection {
    /// The canonical id of the calendar chosen now, if it was resolved.
    pub fn canonical_id(&self) -> Option<&str> {
        self.canonical
            .as_ref()
            .filter(|c| c.alias == self.calendar_id)
            .map(|c| c.id.as_str())
    }

    /// A freshly connected calendar: the primary one, active.
    pub fn new(provider: Provider, refresh_token: SecretString) -> Self {
        Self {
            provider,
            calendar_id: "primary".into(),
            refresh_token,
            status: ConnectionStatus::Active,
            tenant: None,
            account_email: None,
            other_account: false,
            canonical: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    /// The address the provisioning file gives: the account a connect
    /// expects when nothing more specific is known.
    #[serde(default)]
    pub email: Option<String>,
}

/// Booking settings for a campaign: as the provisioning file and the admin
/// API write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingSettings {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub rules: BookingRules,
    pub meeting: MeetingKind,
    /// Invite title; template tokens such as `{recipient.fullName}`.
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Where national phone numbers are read (ISO 3166 alpha-2); `US`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_title() -> String {
    "{owner.name} <> {recipient.fullName}".into()
}

/// A JSON error's sentence without serde_json's " at line L column C":
/// the field path says where, and a person filling in a form never saw
/// the JSON it was sent as.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(sentence) => sentence.to_string(),
        None => text,
    }
}

impl BookingSettings {
    /// Parses and validates settings from JSON; the error names the field
    /// at fault (`rules.window.start: …`, `title: unknown template token …`).
    pub fn parse(json: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let settings: BookingSettings = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = without_position(&e.into_inner());
            // Validation inside the rules names its own field
            // ("window.start: …"): join the two into one path.
            let nested = inner.split_once(": ").is_some_and(|(head, _)| {
                head.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
            });
            match (path.as_str(), nested) {
                (".", _) => inner,
                (_, true) => format!("{path}.{inner}"),
                _ => format!("{path}: {inner}"),
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses template tokens the invite cannot fill.
    pub fn validate(&self) -> Result<(), String> {
        for (field, text) in [("title", &self.title), ("description", &self.description)] {
            if let Some(token) = crate::calendar::template::unknown_tokens(text)
                .into_iter()
                .next()
            {
                return Err(format!("{field}: unknown template token {{{token}}}"));
            }
        }
        if let Some(country) = &self.default_country {
            if !crate::phone::is_country(country) {
                return Err(format!(
                    "default_country: {country:?} is not an ISO 3166 two-letter country code"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// The team the owner is chosen among (campaigns from the provisioning
    /// file have none).
    #[serde(default)]
    pub team: Option<String>,
    pub owner: String,
    #[serde(default)]
    pub booking: Option<BookingSettings>,
}

/// An OAuth consent flow waiting for its callback: whose connection, which
/// provider, and the PKCE verifier. No `Debug`: it holds the verifier.
#[derive(Clone)]
pub struct PendingFlow {
    pub user_id: String,
    pub provider: Provider,
    pub verifier: SecretString,
    /// The redirect URI the consent was asked with; the code exchange must
    /// send the same one.
    pub redirect_uri: String,
    /// The account the connect is for; the callback refuses another.
    pub expect: ExpectedAccount,
}

/// A store failure. The text is for logs (it may name a file, a Redis
/// error or a user); what a caller is told comes from [`StoreError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written: Redis down, a file that
    /// cannot be read.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// What the store holds does not open with the configured token keys.
    #[error("the token keys (CALLBOOK_TOKEN_KEY) do not open what the store holds: {0}")]
    WrongKey(String),
    /// The store holds something callbook did not write or cannot read.
    #[error("the store holds data callbook cannot read: {0}")]
    Corrupt(String),
}

/// What kind of store failure, stable for answers and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    Unavailable,
    WrongKey,
    Corrupt,
}

impl StoreErrorKind {
    /// A stable code for API answers.
    pub fn code(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "store_unavailable",
            StoreErrorKind::WrongKey => "store_key_mismatch",
            StoreErrorKind::Corrupt => "store_corrupt",
        }
    }

    /// A sentence for API answers: no internals (addresses, paths, users).
    pub fn message(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "the connection store cannot be reached; try again",
            StoreErrorKind::WrongKey => {
                "the connection store holds tokens the configured keys do not open"
            }
            StoreErrorKind::Corrupt => "the connection store holds data callbook cannot read",
        }
    }
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Unavailable(_) => StoreErrorKind::Unavailable,
            StoreError::WrongKey(_) => StoreErrorKind::WrongKey,
            StoreError::Corrupt(_) => StoreErrorKind::Corrupt,
        }
    }
}

/// A sealed value in a store that did not open: the wrong keys, or (when
/// it is not even in the sealed format) data callbook did not write.
pub(crate) fn sealed_error(
    at: impl std::fmt::Display,
    e: secrets::SecretsError,
    keys: &secrets::TokenCipher,
) -> StoreError {
    match e {
        secrets::SecretsError::Malformed => StoreError::Corrupt(format!("{at}: {e}")),
        _ => StoreError::WrongKey(format!("{at}: {e}; configured keys: {}", keys.describe())),
    }
}

/// What re-sealing a store under the sealing key did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// Values that were under another key (or an old format) and are now
    /// under the sealing key.
    pub resealed: usize,
    /// Values already under the sealing key.
    pub current: usize,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError>;
    /// Replaces a campaign's booking settings (from the next call on);
    /// `false` for an unknown campaign.
    async fn set_booking(&self, id: &str, booking: BookingSettings) -> Result<bool, StoreError>;
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// The connection calls book on: the user's active provider's.
    async fn connection(&self, user_id: &str) -> Result<Option<Connection>, StoreError>;
    /// Every connection of the user, and which provider is active.
    async fn connections(
        &self,
        user_id: &str,
    ) -> Result<(Vec<Connection>, Option<Provider>), StoreError>;
    /// Adds or replaces the user's connection to `c.provider`, which
    /// becomes the active one: the most recently connected provider is the
    /// one calls book on until the owner chooses another.
    async fn put_connection(&self, user_id: &str, c: Connection) -> Result<(), StoreError>;
    /// Removes the connection and returns it; if it was active, another
    /// connected provider (if any) becomes active.
    async fn remove_connection(
        &self,
        user_id: &str,
        provider: Provider,
    ) -> Result<Option<Connection>, StoreError>;
    /// Makes `provider` the one calls book on; `false` if not connected.
    async fn set_active(&self, user_id: &str, provider: Provider) -> Result<bool, StoreError>;
    /// Chooses the calendar of a connection; `false` if not connected.
    async fn set_calendar(
        &self,
        user_id: &str,
        provider: Provider,
        calendar_id: &str,
    ) -> Result<bool, StoreError>;
    /// Records the canonical id of the connection's calendar `alias`;
    /// `false` if not connected. Applies only while `alias` stays chosen.
    async fn set_canonical(
        &self,
        user_id: &str,
        provider: Provider,
        alias: &str,
        canonical: &str,
    ) -> Result<bool, StoreError>;
    /// Records what the provider last said about the grant.
    async fn set_status(
        &self,
        user_id: &str,
        provider: Provider,
        status: ConnectionStatus,
    ) -> Result<(), StoreError>;
    /// Remembers a consent flow under its `state` until the callback, at
    /// most [`crate::calendar::oauth::FLOW_TTL`]. Kept with connections so
    /// the callback may reach any instance.
    async fn begin_flow(&self, state: &str, flow: PendingFlow) -> Result<(), StoreError>;
    /// The flow for `state`, once; `None` if unknown, used or expired.
    async fn finish_flow(&self, state: &str) -> Result<Option<PendingFlow>, StoreError>;
    /// Replaces the stored refresh token (Microsoft rotates them).
    async fn update_refresh_token(
        &self,
        user_id: &str,
        provider: Provider,
        token: SecretString,
    ) -> Result<(), StoreError>;

    /// Every user: the admin API's over the provisioning file's.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Creates or replaces a user.
    async fn save_user(&self, user: &User) -> Result<(), StoreError>;
    /// Deletes a user (one from the provisioning file stays deleted).
    async fn delete_user(&self, id: &str) -> Result<(), StoreError>;
    async fn team(&self, id: &str) -> Result<Option<accounts::Team>, StoreError>;
    async fn teams(&self) -> Result<Vec<accounts::Team>, StoreError>;
    /// Creates or replaces a team, members included.
    async fn save_team(&self, team: &accounts::Team) -> Result<(), StoreError>;
    async fn delete_team(&self, id: &str) -> Result<(), StoreError>;
    /// Adds `user` to the team's members in one atomic step, so members
    /// added at the same time through other instances are all kept;
    /// `None` for an unknown team.
    async fn add_member(
        &self,
        team: &str,
        user: &str,
    ) -> Result<Option<accounts::Team>, StoreError>;
    /// Removes `user` from the team's members, atomically as
    /// [`Store::add_member`]; `None` for an unknown team.
    async fn remove_member(
        &self,
        team: &str,
        user: &str,
    ) -> Result<Option<accounts::Team>, StoreError>;
    /// Every campaign, each with the booking settings calls use (as
    /// [`Store::campaign`]).
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    /// Creates or replaces a campaign, booking settings included (booking
    /// settings set apart from it are dropped).
    async fn save_campaign(&self, campaign: &Campaign) -> Result<(), StoreError>;
    async fn delete_campaign(&self, id: &str) -> Result<(), StoreError>;

    /// Records that the single-use value `key` (a settings link's nonce)
    /// was used; `true` only the first time, across every instance sharing
    /// the store. Forgotten once `expires` (Unix seconds) is past: by then
    /// the value is refused as expired anyway.
    async fn first_use(&self, key: &str, now: i64, expires: i64) -> Result<bool, StoreError>;

    /// Whether the store answers now (readiness). In process it always
    /// does; a shared store asks its server, once.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
