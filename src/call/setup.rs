//! Turning a `start` frame into the dialog's [`Setup`] and the booking
//! environment the effects need.

use super::effects::BookingEnv;
use super::CallDeps;
use crate::calendar::google::{GoogleCalendar, GoogleEndpoints};
use crate::calendar::microsoft::{MicrosoftCalendar, MicrosoftEndpoints};
use crate::calendar::oauth::ReloadToken;
use crate::calendar::{CalendarError, CalendarInfo, CalendarProvider};
use crate::dialog::{BookingContext, Recipient, Setup};
use crate::domain::SkipReason;
use crate::phone::{DEFAULT_COUNTRY, E164};
use crate::protocol::Start;
use crate::store::{Campaign, Connection, ConnectionStatus, Provider};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Provider clients, one per connected user, kept so access tokens are
/// reused across calls. A client is rebuilt when the user's active provider
/// or calendar changes, and dropped with [`Calendars::forget`] when the
/// connection is replaced or removed.
pub struct Calendars {
    http: reqwest::Client,
    google: GoogleEndpoints,
    microsoft: MicrosoftEndpoints,
    /// Where rotated refresh tokens are written back.
    store: Arc<dyn Store>,
    clients: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    provider: Provider,
    calendar_id: String,
    client: Arc<dyn CalendarProvider>,
    /// What the client last said of its calendar, and when it was asked.
    info: Option<(CalendarInfo, Instant)>,
}

impl Calendars {
    pub fn new(
        http: reqwest::Client,
        google: GoogleEndpoints,
        microsoft: MicrosoftEndpoints,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            http,
            google,
            microsoft,
            store,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn google(&self) -> &GoogleEndpoints {
        &self.google
    }

    pub fn microsoft(&self) -> &MicrosoftEndpoints {
        &self.microsoft
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The provider client for a user's connection, reused while the
    /// connection's provider and calendar stay the same.
    pub fn for_user(&self, user_id: &str, conn: &Connection) -> Arc<dyn CalendarProvider> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(user_id) {
            if c.provider == conn.provider && c.calendar_id == conn.calendar_id {
                return c.client.clone();
            }
        }
        let client = self.build(user_id, conn);
        clients.insert(
            user_id.to_string(),
            Cached {
                provider: conn.provider,
                calendar_id: conn.calendar_id.clone(),
                client: client.clone(),
                info: None,
            },
        );
        client
    }

    /// What `client` (the user's, from [`Calendars::for_user`]) says of
    /// its calendar, asked again once [`CALENDAR_INFO_FOR`](crate::calendar::CALENDAR_INFO_FOR) has passed.
    /// Only answers are kept; a client no longer the user's cached one is
    /// asked every time.
    pub async fn info(
        &self,
        user_id: &str,
        client: &Arc<dyn CalendarProvider>,
    ) -> Result<CalendarInfo, CalendarError> {
        let kept = |clients: &HashMap<String, Cached>| {
            clients
                .get(user_id)
                .filter(|c| Arc::ptr_eq(&c.client, client))
                .and_then(|c| c.info.as_ref())
                .filter(|(_, asked)| asked.elapsed() < crate::calendar::CALENDAR_INFO_FOR)
                .map(|(info, _)| info.clone())
        };
        if let Some(info) = kept(&self.clients.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(info);
        }
        let asked = Instant::now();
        let info = client.calendar_info().await?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients
            .get_mut(user_id)
            .filter(|c| Arc::ptr_eq(&c.client, client))
        {
            c.info = Some((info.clone(), asked));
        }
        Ok(info)
    }

    /// Drops the user's cached client (its tokens are no longer the
    /// stored ones).
    pub fn forget(&self, user_id: &str) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id);
    }

    /// A fresh client for a connection, not cached.
    pub fn build(&self, user_id: &str, conn: &Connection) -> Arc<dyn CalendarProvider> {
        let reload = self.reload(user_id, conn.provider);
        match conn.provider {
            Provider::Google => Arc::new(
                GoogleCalendar::new(
                    self.http.clone(),
                    self.google.clone(),
                    conn.calendar_id.clone(),
                    conn.refresh_token.clone(),
                )
                .with_reload(reload),
            ),
            Provider::Microsoft => {
                let store = self.store.clone();
                let user = user_id.to_string();
                let persist: crate::calendar::microsoft::OnRotate = Arc::new(move |token| {
                    let (store, user) = (store.clone(), user.clone());
                    Box::pin(async move {
                        if let Err(e) = store
                            .update_refresh_token(&user, Provider::Microsoft, token)
                            .await
                        {
                            tracing::warn!(error = %e, "could not store a rotated refresh token");
                        }
                    })
                });
                Arc::new(
                    MicrosoftCalendar::new(
                        self.http.clone(),
                        self.microsoft.clone(),
                        conn.calendar_id.clone(),
                        conn.refresh_token.clone(),
                        Some(persist),
                    )
                    .with_tenant(conn.tenant.as_deref())
                    .with_reload(reload),
                )
            }
        }
    }

    /// The stored refresh token of the user's connection to `provider`, as
    /// it is now (another instance may have rotated or replaced it).
    fn reload(&self, user_id: &str, provider: Provider) -> ReloadToken {
        let store = self.store.clone();
        let user = user_id.to_string();
        Arc::new(move || {
            let (store, user) = (store.clone(), user.clone());
            Box::pin(async move {
                match store.connections(&user).await {
                    Ok((list, _)) => list
                        .into_iter()
                        .find(|c| c.provider == provider)
                        .map(|c| c.refresh_token),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the stored refresh token");
                        None
                    }
                }
            })
        })
    }
}

fn param<'a>(start: &'a Start, name: &str) -> Option<&'a str> {
    start.param(name)
}

/// Looks up the campaign, owner and connection named by the `start` frame.
pub(super) async fn prepare(deps: &CallDeps, start: &Start) -> (Setup, Option<BookingEnv>) {
    // Read once: the campaign says both where national numbers are read
    // and how booking runs.
    let campaign = match param(start, "campaign_id") {
        Some(id) => deps.store.campaign(id).await.map_err(store_failed),
        None => Ok(None),
    };
    let country = campaign
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .and_then(|c| c.booking.as_ref())
        .and_then(|b| b.default_country.as_deref())
        .unwrap_or(DEFAULT_COUNTRY);
    let raw_phone = param(start, "recipient_phone");
    let phone = raw_phone.and_then(|p| E164::parse_in(p, country).ok());
    if raw_phone.is_some() && phone.is_none() {
        tracing::info!("recipient_phone unusable; the caller will be asked their zone");
    }
    let recipient = Recipient {
        first_name: param(start, "recipient_first_name")
            .unwrap_or("there")
            .to_string(),
        last_name: param(start, "recipient_last_name").map(str::to_string),
        phone,
    };
    let booking = booking_env(deps, start, campaign).await;
    tracing::info!(
        call = %start.call_sid,
        phone = %recipient.phone.as_ref().map(E164::redacted).unwrap_or_default(),
        booking = ?booking.as_ref().err(),
        "call started"
    );
    match booking {
        Ok(env) => (
            Setup {
                recipient,
                booking: Ok(env.context()),
            },
            Some(env),
        ),
        Err(reason) => (
            Setup {
                recipient,
                booking: Err(reason),
            },
            None,
        ),
    }
}

/// A store that cannot be read at call start: booking is skipped as
/// `calendar_unavailable`, never as if nothing were configured.
fn store_failed(e: StoreError) -> SkipReason {
    tracing::warn!(error = %e, kind = e.kind().code(), "store unreadable at call start; booking skipped");
    SkipReason::CalendarUnavailable
}

/// The booking environment of the call's campaign, as read at its start
/// (`Ok(None)`: no campaign named, or none by that name).
async fn booking_env(
    deps: &CallDeps,
    start: &Start,
    campaign: Result<Option<Campaign>, SkipReason>,
) -> Result<BookingEnv, SkipReason> {
    let campaign = campaign?.ok_or(SkipReason::CampaignUnknown)?;
    let settings = campaign
        .booking
        .clone()
        .filter(|b| b.enabled)
        .ok_or(SkipReason::BookingDisabled)?;
    let owner = deps.store.user(&campaign.owner).await.ok().flatten();
    let conn = deps
        .store
        .connection(&campaign.owner)
        .await
        .map_err(store_failed)?
        .ok_or(SkipReason::OwnerNotConnected)?;
    match conn.status {
        ConnectionStatus::Active => {}
        ConnectionStatus::Expired { .. } => return Err(SkipReason::CalendarExpired),
        ConnectionStatus::AdminApprovalNeeded { .. } => {
            return Err(SkipReason::AdminApprovalNeeded)
        }
    }
    let provider = deps.calendars.for_user(&campaign.owner, &conn);
    // Named now when the store knows the calendar's canonical id; else by
    // the first effect that needs it, never before the caller's first
    // lines ([`BookingEnv::calendar_key`]).
    let known = conn
        .canonical_id()
        .map(|id| format!("{}:{id}", conn.provider.as_str()));
    Ok(BookingEnv {
        key: tokio::sync::OnceCell::new_with(known),
        calendar_alias: conn.calendar_id.clone(),
        campaign_id: campaign.id.clone(),
        owner_id: campaign.owner.clone(),
        owner_name: owner.map(|o| o.name).unwrap_or_default(),
        campaign_name: campaign.name,
        recipient_first: param(start, "recipient_first_name")
            .unwrap_or_default()
            .to_string(),
        recipient_last: param(start, "recipient_last_name")
            .unwrap_or_default()
            .to_string(),
        settings,
        provider,
        provider_kind: conn.provider,
    })
}

impl BookingEnv {
    /// The ledger key of the call's calendar: `provider:canonical id`, so
    /// one calendar is one key whoever books on it (two owners sharing it
    /// compete) and however it was named ("primary" or its id).
    ///
    /// A connection stored before its canonical id was known is resolved
    /// by the first effect that needs the key (the load, or a resumed
    /// call's booking), and the answer persisted; the dialog's first lines
    /// do not wait for it. If the provider cannot say, the owner-scoped
    /// key stands in for the rest of this call: the load asks the provider
    /// the same question and fails the same way, and the provider re-check
    /// before every create still guards the slot.
    pub async fn calendar_key(&self, deps: &CallDeps) -> &str {
        self.key
            .get_or_init(|| async {
                // The load asked the same question: its answer is kept.
                match deps.calendars.info(&self.owner_id, &self.provider).await {
                    Ok(info) => self.name_calendar(deps, &info).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "calendar's canonical id unknown; owner-scoped ledger key");
                        format!("{}:{}", self.owner_id, self.calendar_alias)
                    }
                }
            })
            .await
    }

    /// The key of the calendar the provider described, its canonical id
    /// kept for the connection's next calls.
    async fn name_calendar(&self, deps: &CallDeps, info: &CalendarInfo) -> String {
        let (owner, kind, alias) = (&self.owner_id, self.provider_kind, &self.calendar_alias);
        if let Err(e) = deps
            .store
            .set_canonical(owner, kind, alias, &info.calendar_id)
            .await
        {
            tracing::warn!(error = %e, "could not record the calendar's canonical id");
        }
        format!("{}:{}", kind.as_str(), info.calendar_id)
    }

    fn context(&self) -> BookingContext {
        BookingContext {
            rules: self.settings.rules.clone(),
            owner_name: self.owner_name.clone(),
            meeting: self.settings.meeting.clone(),
        }
    }
}
