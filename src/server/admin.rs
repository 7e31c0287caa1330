//! The admin API: calendar connections. An owner connects Google or
//! Outlook through the provider's consent screen (PKCE, single-use state),
//! picks the calendar to book on and the active provider, and disconnects
//! (Google's grant is revoked; Microsoft has no revoke endpoint, so the
//! stored token is deleted). Each connection shows its status, and for an
//! organisation that requires an administrator, the admin-consent link.

use super::{authorized, unauthorized, AppState};
use crate::calendar::binding::{self, ExpectedAccount, Mismatch, Verdict};
use crate::calendar::oauth::{admin_consent_url, ConsentSpec, OAuthClient};
use crate::calendar::{CalendarError, CalendarSummary};
use crate::domain::Email;
use crate::store::{
    BookingSettings, Campaign, Connection, ConnectionStatus, PendingFlow, Provider, StoreError,
    User,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

/// Admin settings.
pub struct Admin {
    /// Bearer token for the admin API; without one the API is off.
    pub token: Option<SecretString>,
    /// Where callbook is reachable from the owner's browser; the OAuth
    /// redirect is `{public_url}/v1/oauth/callback`.
    pub public_url: String,
    /// Signs and checks settings links and sessions, under a key derived
    /// from the admin token.
    pub(super) signer: super::settings::session::Signer,
}

impl Admin {
    pub fn new(token: Option<SecretString>, public_url: String) -> Self {
        let signer = super::settings::session::Signer::new(token.as_ref());
        Self {
            token,
            public_url,
            signer,
        }
    }

    pub(super) fn redirect_uri(&self) -> String {
        format!(
            "{}/v1/oauth/callback",
            self.public_url.trim_end_matches('/')
        )
    }
}

/// An admin API failure: a status, a stable code and a sentence.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::UNAUTHORIZED {
            return unauthorized();
        }
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub(super) type ApiResult = Result<Json<Value>, ApiError>;

pub(super) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

/// Checks the admin bearer token.
pub(super) fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.admin.token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is off: set CALLBOOK_ADMIN_TOKEN",
        ));
    };
    if !authorized(headers, token) {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", ""));
    }
    Ok(())
}

/// Checks the admin bearer token, then that the user exists.
pub(super) async fn guard(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
) -> Result<User, ApiError> {
    admin_only(state, headers)?;
    match state.deps.store.user(user).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("no user {user:?}"),
        )),
        Err(e) => Err(store_down(e)),
    }
}

pub(super) fn provider_of(s: &str) -> Result<Provider, ApiError> {
    Provider::parse(s).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            format!("{s:?} is not google or microsoft"),
        )
    })
}

/// A store failure as an answer: its kind's code and sentence, never the
/// error's text (which may name a file, a Redis address or a user); that
/// goes to the log.
pub(super) fn store_down(e: StoreError) -> ApiError {
    let kind = e.kind();
    tracing::error!(error = %e, kind = kind.code(), "store failed");
    error(StatusCode::SERVICE_UNAVAILABLE, kind.code(), kind.message())
}

/// What the provider said, as an admin API answer.
fn provider_error(e: CalendarError) -> ApiError {
    match e {
        CalendarError::Expired => error(
            StatusCode::CONFLICT,
            "calendar_expired",
            "the grant no longer works; connect again",
        ),
        CalendarError::ConsentRequired => error(
            StatusCode::CONFLICT,
            "admin_approval_needed",
            "an administrator must approve callbook for this organisation",
        ),
        CalendarError::ScopeMissing(missing) => error(
            StatusCode::BAD_REQUEST,
            "permissions_missing",
            format!(
                "the owner did not grant: {}; connect again and leave every box ticked",
                missing.join(", ")
            ),
        ),
        other => {
            tracing::warn!(error = %other, "admin API: the calendar provider failed");
            error(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                "the calendar provider could not be reached or refused the request; try again",
            )
        }
    }
}

/// The consent request for `provider`, redirecting to `redirect`.
fn spec_for<'a>(
    state: &'a AppState,
    provider: Provider,
    redirect: &str,
) -> (ConsentSpec, &'a OAuthClient) {
    let cal = &state.deps.calendars;
    match provider {
        Provider::Google => (
            ConsentSpec::google(&cal.google().authorize_url, redirect),
            &cal.google().oauth,
        ),
        Provider::Microsoft => (
            ConsentSpec::microsoft(&cal.microsoft().authorize_url(), redirect),
            &cal.microsoft().oauth,
        ),
    }
}

pub(super) fn view(state: &AppState, c: &Connection, active: bool) -> Value {
    let mut v = json!({
        "provider": c.provider.as_str(),
        "active": active,
        "calendar_id": c.calendar_id,
    });
    match c.status {
        ConnectionStatus::Active => v["status"] = json!("active"),
        ConnectionStatus::Expired { since } => {
            v["status"] = json!("expired");
            v["since"] = json!(since);
        }
        ConnectionStatus::AdminApprovalNeeded { since } => {
            v["status"] = json!("admin_approval_needed");
            v["since"] = json!(since);
            let ms = state.deps.calendars.microsoft();
            if let (Provider::Microsoft, Some(tenant)) = (c.provider, &c.tenant) {
                v["admin_consent_url"] = json!(admin_consent_url(
                    &ms.authority,
                    tenant,
                    &ms.oauth.client_id,
                    &state.admin.redirect_uri(),
                ));
            }
        }
    }
    if let Some(email) = &c.account_email {
        v["account"] = json!(email);
    }
    if let Some(tenant) = &c.tenant {
        v["tenant"] = json!(tenant);
    }
    if c.other_account {
        v["other_account"] = json!(true);
    }
    v
}

/// `GET /v1/users/{user}/connections`
#[utoipa::path(
    get,
    path = "/v1/users/{user}/connections",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
    ),
    responses(
        (status = 200, description = "The owner's connections and which one calls book on", body = super::openapi::ConnectionList),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> ApiResult {
    guard(&state, &headers, &user).await?;
    let (conns, active) = state
        .deps
        .store
        .connections(&user)
        .await
        .map_err(store_down)?;
    let list: Vec<Value> = conns
        .iter()
        .map(|c| view(&state, c, active == Some(c.provider)))
        .collect();
    Ok(Json(
        json!({"user": user, "active_provider": active.map(Provider::as_str), "connections": list}),
    ))
}

/// The optional body of a connect start: whom the connect is for.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectStart {
    /// The account that must finish the consent, pre-selected on the
    /// provider's sign-in screen.
    login_hint: Option<String>,
    /// The Microsoft tenant (`tid`) the account must be in.
    tenant: Option<String>,
    /// Accept whichever account finishes the consent; the connection is
    /// flagged `other_account`.
    #[serde(default)]
    allow_other_account: bool,
}

/// Longest tenant id accepted (a GUID is 36 characters).
const MAX_TENANT_LEN: usize = 64;

fn bad_connect_start(message: &str) -> ApiError {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Reads a connect start's body; an empty body asks for the defaults.
fn connect_start(body: &[u8]) -> Result<ConnectStart, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ConnectStart::default());
    }
    let start: ConnectStart = serde_json::from_slice(body).map_err(|_| {
        bad_connect_start(
            "expected {\"login_hint\": \"…\", \"tenant\": \"…\", \"allow_other_account\": false}, each optional",
        )
    })?;
    if start
        .login_hint
        .as_deref()
        .is_some_and(|h| Email::parse(h).is_none())
    {
        return Err(bad_connect_start("login_hint: not an email address"));
    }
    if start.tenant.as_deref().is_some_and(|t| {
        t.is_empty()
            || t.len() > MAX_TENANT_LEN
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }) {
        return Err(bad_connect_start("tenant: not a tenant id"));
    }
    Ok(start)
}

/// Whom a connect is for: the `login_hint` given, else the account of the
/// user's current connection to the provider (a reconnect), else the
/// user's address from the provisioning file. For Microsoft, the tenant
/// given, else the current connection's.
fn expected_account(
    start: ConnectStart,
    user: &User,
    provider: Provider,
    current: Option<&Connection>,
) -> ExpectedAccount {
    let account = start
        .login_hint
        .or_else(|| current.and_then(|c| c.account_email.clone()))
        .or_else(|| user.email.clone())
        .map(|a| a.trim().to_string());
    let tenant = match provider {
        Provider::Microsoft => start
            .tenant
            .or_else(|| current.and_then(|c| c.tenant.clone())),
        Provider::Google => None,
    };
    ExpectedAccount {
        account,
        tenant,
        allow_other: start.allow_other_account,
    }
}

/// `POST /v1/users/{user}/connections/{provider}`: starts a connect; the
/// answer's `authorize_url` is where to send the owner's browser. The
/// connect is bound to an account (see [`expected_account`]): the callback
/// refuses any other unless the body says `allow_other_account`.
#[utoipa::path(
    post,
    path = "/v1/users/{user}/connections/{provider}",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
        ("provider" = String, Path, description = "`google` or `microsoft`"),
    ),
    request_body(content = Option<super::openapi::ConnectRequest>, description = "Whom the connect is for (optional)"),
    responses(
        (status = 200, description = "A consent flow started: send the owner's browser to `authorize_url` (valid 10 minutes, once)", body = super::openapi::ConnectStarted),
        (status = 400, description = "The body is not a connect request", body = super::openapi::ErrorBody, example = json!({"error": "bad_request", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user or provider", body = super::openapi::ErrorBody, example = json!({"error": "unknown_provider", "message": "…"})),
        (status = 502, description = "The provider's consent endpoint is misconfigured", body = super::openapi::ErrorBody, example = json!({"error": "provider_unavailable", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, provider)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let known = guard(&state, &headers, &user).await?;
    let provider = provider_of(&provider)?;
    let start = connect_start(&body)?;
    start_connect(&state, &known, provider, start).await
}

/// Starts a connect of `provider` for `known` (the admin API's and the
/// settings page's): the consent flow is stored, and the answer carries
/// the `authorize_url` to send the owner's browser to.
pub(super) async fn start_connect(
    state: &AppState,
    known: &User,
    provider: Provider,
    start: ConnectStart,
) -> ApiResult {
    let user = known.id.clone();
    let (list, _) = state
        .deps
        .store
        .connections(&user)
        .await
        .map_err(store_down)?;
    let current = list.iter().find(|c| c.provider == provider);
    let expect = expected_account(start, known, provider, current);
    if expect.account.is_none() && !expect.allow_other {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "account_unknown",
            "no account is known for this user: give login_hint, or allow_other_account",
        ));
    }
    let (spec, oauth) = spec_for(state, provider, &state.admin.redirect_uri());
    let spec = spec.with_login_hint(expect.account.as_deref());
    let auth = oauth.authorize(&spec).map_err(provider_error)?;
    let answer = json!({
        "authorize_url": auth.url,
        "redirect_uri": spec.redirect_uri,
        "expected_account": expect.account,
        "expected_tenant": expect.tenant,
        "allow_other_account": expect.allow_other,
    });
    let flow = PendingFlow {
        user_id: user,
        provider,
        verifier: auth.verifier,
        redirect_uri: spec.redirect_uri.clone(),
        expect,
    };
    state
        .deps
        .store
        .begin_flow(&auth.state, flow)
        .await
        .map_err(store_down)?;
    Ok(Json(answer))
}

/// For logs: an address redacted, or nothing.
fn redacted(account: Option<&str>) -> String {
    account
        .and_then(Email::parse)
        .map(|e| e.redacted())
        .unwrap_or_default()
}

/// What the owner's browser is told when the account that finished the
/// consent is not the one the connect was for. Names no account: whoever
/// holds a leaked link learns nothing from it.
fn mismatch_page(m: Mismatch) -> &'static str {
    match m {
        Mismatch::Account => {
            "No calendar was connected: you signed in with another account than the one this connection was started for. Sign in with that account, or ask your administrator to start the connection again."
        }
        Mismatch::Tenant => {
            "No calendar was connected: the account you signed in with belongs to another organisation than the one this connection was started for. Ask your administrator to start the connection again."
        }
        Mismatch::Unverifiable => {
            "No calendar was connected: the provider did not confirm which account signed in. Ask your administrator to start the connection again."
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Callback {
    /// The authorization code.
    code: Option<String>,
    /// The single-use state the consent started with.
    state: Option<String>,
    /// The provider's error code when consent was not given.
    error: Option<String>,
    /// Microsoft's answer to the admin-consent link: `True` once an
    /// administrator approved callbook for `tenant`.
    admin_consent: Option<String>,
    /// The tenant an administrator answered for.
    tenant: Option<String>,
}

/// `GET /v1/oauth/callback`: the provider sends the owner's browser back
/// here. The single-use `state` is the credential. An administrator who
/// followed the admin-consent link lands here too, with no state.
#[utoipa::path(
    get,
    path = "/v1/oauth/callback",
    tag = "connections",
    params(Callback),
    responses(
        (status = 200, description = "Connected (or an administrator approved callbook): a page for the owner", body = String, content_type = "text/html"),
        (status = 400, description = "Unknown, used or expired `state`, or no code", body = String, content_type = "text/html"),
        (status = 403, description = "Consent refused", body = String, content_type = "text/html"),
        (status = 502, description = "The code exchange failed or gave no offline access", body = String, content_type = "text/html"),
        (status = 503, description = "The store cannot be reached", body = String, content_type = "text/html"),
    ),
    security(())
)]
pub(super) async fn callback(State(state): State<AppState>, Query(q): Query<Callback>) -> Response {
    let page = super::settings::oauth_done;
    if q.state.is_none() && (q.admin_consent.is_some() || q.tenant.is_some()) {
        let approved = q
            .admin_consent
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        tracing::info!(
            tenant = q.tenant.as_deref().unwrap_or(""),
            approved,
            error = q.error.as_deref().unwrap_or(""),
            "admin consent answered"
        );
        return if approved && q.error.is_none() {
            page(
                StatusCode::OK,
                "Thank you: callbook is approved for your organisation. The calendar owner can now connect their calendar again.",
            )
        } else {
            page(
                StatusCode::FORBIDDEN,
                "callbook was not approved for your organisation, so calendars there cannot be connected.",
            )
        };
    }
    let flow = match q.state.as_deref() {
        Some(s) => state.deps.store.finish_flow(s).await,
        None => Ok(None),
    };
    let PendingFlow {
        user_id: user,
        provider,
        verifier,
        redirect_uri,
        expect,
    } =
        match flow {
            Ok(Some(flow)) => flow,
            Ok(None) => return page(
                StatusCode::BAD_REQUEST,
                "This sign-in link has expired or was already used. Start the connection again.",
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not read a consent flow");
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The calendar could not be connected just now. Try again in a moment.",
                );
            }
        };
    if let Some(err) = q.error.as_deref() {
        tracing::info!(user = %user, provider = provider.as_str(), error = err, "owner did not finish consent");
        let text = match err {
            "consent_required" | "admin_policy_enforced" => {
                "Your organisation requires an administrator to approve this app before it can use your calendar."
            }
            "access_denied" => "Access was not granted, so no calendar was connected.",
            _ => "The provider did not connect the calendar. Start the connection again.",
        };
        return page(StatusCode::FORBIDDEN, text);
    }
    let Some(code) = q.code.as_deref() else {
        return page(StatusCode::BAD_REQUEST, "The provider sent no code.");
    };
    // The exchange repeats the redirect URI the consent used, whichever
    // instance started it.
    let (spec, oauth) = spec_for(&state, provider, &redirect_uri);
    let http = state.deps.calendars.http().clone();
    let grant = match oauth.exchange(&http, &spec, code, verifier).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(user = %user, provider = provider.as_str(), error = %e, "code exchange failed");
            let text = match e {
                CalendarError::ScopeMissing(_) => "Some permissions were not granted. Connect again and leave every box ticked.",
                CalendarError::ConsentRequired => "Your organisation requires an administrator to approve this app before it can use your calendar.",
                _ => "The calendar could not be connected. Try again.",
            };
            return page(StatusCode::BAD_GATEWAY, text);
        }
    };
    let Some(refresh) = grant.refresh_token else {
        return page(
            StatusCode::BAD_GATEWAY,
            "The provider gave no offline access. Remove the app's access in your account settings and connect again.",
        );
    };
    let identity = grant.identity.unwrap_or_default();
    let trusted = binding::trusted_account(provider, &identity).map(str::to_string);
    let other_account = match binding::check(provider, &expect, &identity) {
        Verdict::Matched => false,
        Verdict::OtherAllowed(m) => {
            tracing::warn!(
                user = %user,
                provider = provider.as_str(),
                mismatch = m.as_str(),
                expected = %redacted(expect.account.as_deref()),
                signed_in = %redacted(trusted.as_deref()),
                "connect finished by another account; allowed when it was started"
            );
            true
        }
        Verdict::Refused(m) => {
            tracing::warn!(
                user = %user,
                provider = provider.as_str(),
                mismatch = m.as_str(),
                expected = %redacted(expect.account.as_deref()),
                signed_in = %redacted(trusted.as_deref()),
                "connect refused: finished by another account than the one it was started for"
            );
            refuse_grant(&state, provider, &refresh).await;
            return page(StatusCode::FORBIDDEN, mismatch_page(m));
        }
    };
    let store = &state.deps.store;
    // Reconnecting keeps the calendar chosen before.
    let unavailable = |e: StoreError| {
        tracing::error!(error = %e, "could not save a connection");
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The calendar could not be saved just now. Try again in a moment.",
        )
    };
    let previous = match store.connections(&user).await {
        Ok((list, _)) => list.into_iter().find(|c| c.provider == provider),
        Err(e) => return unavailable(e),
    };
    let conn = Connection {
        calendar_id: previous.map_or_else(|| "primary".to_string(), |p| p.calendar_id),
        tenant: identity.tenant,
        account_email: trusted.or(identity.email),
        other_account,
        ..Connection::new(provider, refresh)
    };
    if let Err(e) = store.put_connection(&user, conn.clone()).await {
        return unavailable(e);
    }
    state.deps.calendars.forget(&user);
    resolve_canonical(&state, &user, &conn).await;
    tracing::info!(user = %user, provider = provider.as_str(), "calendar connected");
    page(
        StatusCode::OK,
        "Your calendar is connected. You can close this window.",
    )
}

/// How long a connect waits for the provider to name the chosen calendar's
/// canonical id; past it, the first call resolves it instead.
const CANONICAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves the connection's calendar (the alias "primary", say) to the id
/// the provider reports for it and stores it: the ledger keys claims by it.
/// A failure is logged only; the first call resolves it again.
async fn resolve_canonical(state: &AppState, user: &str, conn: &Connection) {
    let client = state.deps.calendars.for_user(user, conn);
    let info = match tokio::time::timeout(CANONICAL_TIMEOUT, client.calendar_info()).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            tracing::warn!(user = %user, error = %e, "calendar's canonical id not resolved at connect");
            return;
        }
        Err(_) => {
            tracing::warn!(user = %user, "calendar's canonical id not resolved at connect: timed out");
            return;
        }
    };
    if let Err(e) = state
        .deps
        .store
        .set_canonical(user, conn.provider, &conn.calendar_id, &info.calendar_id)
        .await
    {
        tracing::warn!(user = %user, error = %e, "could not record the calendar's canonical id");
    }
}

/// Gives back a grant callbook will not keep (the wrong account finished
/// the consent), where the provider can revoke one (Google); Microsoft's
/// lapses unused.
async fn refuse_grant(state: &AppState, provider: Provider, refresh: &SecretString) {
    if provider != Provider::Google {
        return;
    }
    let cal = &state.deps.calendars;
    if let Err(e) = OAuthClient::revoke(cal.http(), &cal.google().revoke_url, refresh).await {
        tracing::info!(error = %e, "could not revoke a refused grant");
    }
}

/// `DELETE /v1/users/{user}/connections/{provider}`
#[utoipa::path(
    delete,
    path = "/v1/users/{user}/connections/{provider}",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
        ("provider" = String, Path, description = "`google` or `microsoft`"),
    ),
    responses(
        (status = 200, description = "The connection is deleted (and Google's grant revoked)", body = super::openapi::Disconnected),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user or provider, or not connected", body = super::openapi::ErrorBody, example = json!({"error": "not_connected", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, provider)): Path<(String, String)>,
) -> ApiResult {
    guard(&state, &headers, &user).await?;
    let provider = provider_of(&provider)?;
    disconnect_provider(&state, &user, provider).await
}

/// Deletes the user's connection to `provider`, revoking Google's grant.
pub(super) async fn disconnect_provider(
    state: &AppState,
    user: &str,
    provider: Provider,
) -> ApiResult {
    let gone = match state.deps.store.remove_connection(user, provider).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(not_connected(user, provider)),
        Err(e) => return Err(store_down(e)),
    };
    state.deps.calendars.forget(user);
    let revoked = match provider {
        Provider::Google => {
            let cal = &state.deps.calendars;
            match OAuthClient::revoke(cal.http(), &cal.google().revoke_url, &gone.refresh_token)
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(user = %user, error = %e, "could not revoke the Google grant; the token is deleted");
                    false
                }
            }
        }
        // Microsoft has no endpoint to revoke one app's refresh token.
        Provider::Microsoft => false,
    };
    Ok(Json(
        json!({"provider": provider.as_str(), "deleted": true, "revoked": revoked}),
    ))
}

/// `GET /v1/users/{user}/connections/{provider}/calendars`
#[utoipa::path(
    get,
    path = "/v1/users/{user}/connections/{provider}/calendars",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
        ("provider" = String, Path, description = "`google` or `microsoft`"),
    ),
    responses(
        (status = 200, description = "The calendars the owner can write to, as the provider lists them now", body = super::openapi::CalendarList),
        (status = 400, description = "The owner did not grant every permission", body = super::openapi::ErrorBody, example = json!({"error": "permissions_missing", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user or provider, or not connected", body = super::openapi::ErrorBody, example = json!({"error": "not_connected", "message": "…"})),
        (status = 409, description = "The grant expired or needs an administrator's approval", body = super::openapi::ErrorBody, example = json!({"error": "calendar_expired", "message": "…"})),
        (status = 502, description = "The provider could not be reached", body = super::openapi::ErrorBody, example = json!({"error": "provider_unavailable", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn calendars(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, provider)): Path<(String, String)>,
) -> ApiResult {
    guard(&state, &headers, &user).await?;
    let provider = provider_of(&provider)?;
    let (conn, list) = writable_calendars(&state, &user, provider).await?;
    Ok(Json(json!({"calendars": list, "chosen": conn.calendar_id})))
}

/// The connection, and the calendars its owner can write to, as the
/// provider lists them now.
pub(super) async fn writable_calendars(
    state: &AppState,
    user: &str,
    provider: Provider,
) -> Result<(Connection, Vec<CalendarSummary>), ApiError> {
    let conn = connection(state, user, provider).await?;
    let list = state
        .deps
        .calendars
        .build(user, &conn)
        .list_calendars()
        .await
        .map_err(provider_error)?;
    Ok((conn, list))
}

async fn connection(
    state: &AppState,
    user: &str,
    provider: Provider,
) -> Result<Connection, ApiError> {
    let (list, _) = state
        .deps
        .store
        .connections(user)
        .await
        .map_err(store_down)?;
    list.into_iter()
        .find(|c| c.provider == provider)
        .ok_or_else(|| not_connected(user, provider))
}

fn not_connected(user: &str, provider: Provider) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_connected",
        format!("{user} has no {} connection", provider.as_str()),
    )
}

/// The calendar to book on: an id from the calendars list, or `primary`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"calendar_id": "primary"})))]
pub(super) struct ChooseCalendar {
    calendar_id: String,
}

/// `PUT /v1/users/{user}/connections/{provider}/calendar`: bookings go on
/// this calendar from the next call. It must be one the owner can write to.
#[utoipa::path(
    put,
    path = "/v1/users/{user}/connections/{provider}/calendar",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
        ("provider" = String, Path, description = "`google` or `microsoft`"),
    ),
    request_body = ChooseCalendar,
    responses(
        (status = 200, description = "Bookings go on this calendar from the next call", body = super::openapi::CalendarChosen),
        (status = 400, description = "The body is not a calendar choice", body = super::openapi::ErrorBody, example = json!({"error": "bad_request", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user or provider, or not connected", body = super::openapi::ErrorBody, example = json!({"error": "not_connected", "message": "…"})),
        (status = 409, description = "The grant expired or needs an administrator's approval", body = super::openapi::ErrorBody, example = json!({"error": "calendar_expired", "message": "…"})),
        (status = 422, description = "No writable calendar with that id", body = super::openapi::ErrorBody, example = json!({"error": "unknown_calendar", "message": "…"})),
        (status = 502, description = "The provider could not be reached", body = super::openapi::ErrorBody, example = json!({"error": "provider_unavailable", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn choose_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, provider)): Path<(String, String)>,
    body: Result<Json<ChooseCalendar>, JsonRejection>,
) -> ApiResult {
    guard(&state, &headers, &user).await?;
    let provider = provider_of(&provider)?;
    let Json(body) = body.map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"calendar_id\": \"…\"}",
        )
    })?;
    choose(&state, &user, provider, &body.calendar_id).await
}

/// Books go on `calendar_id` (`primary` or an id the provider lists as
/// writable) of the user's `provider` connection from the next call.
pub(super) async fn choose(
    state: &AppState,
    user: &str,
    provider: Provider,
    calendar_id: &str,
) -> ApiResult {
    let (_, list) = writable_calendars(state, user, provider).await?;
    let chosen = list
        .iter()
        .find(|c| c.id == calendar_id || (calendar_id == "primary" && c.primary))
        .ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_calendar",
                "no writable calendar with that id",
            )
        })?;
    // The primary calendar is kept as "primary" whatever its id; the ledger
    // keys claims by the id itself (recorded beside it), so both names are
    // one key.
    let stored = if chosen.primary {
        "primary"
    } else {
        chosen.id.as_str()
    };
    state
        .deps
        .store
        .set_calendar(user, provider, stored)
        .await
        .map_err(store_down)?;
    state
        .deps
        .store
        .set_canonical(user, provider, stored, &chosen.id)
        .await
        .map_err(store_down)?;
    state.deps.calendars.forget(user);
    Ok(Json(
        json!({"provider": provider.as_str(), "calendar_id": stored, "name": chosen.name}),
    ))
}

/// The provider calls book on: `google` or `microsoft`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"provider": "microsoft"})))]
pub(super) struct ChooseProvider {
    provider: String,
}

/// `PUT /v1/users/{user}/active_provider` with `{"provider": "…"}`.
#[utoipa::path(
    put,
    path = "/v1/users/{user}/active_provider",
    tag = "connections",
    params(
        ("user" = String, Path, description = "The calendar owner's user id"),
    ),
    request_body = ChooseProvider,
    responses(
        (status = 200, description = "Calls book on this provider's connection from the next call", body = super::openapi::ActiveProvider),
        (status = 400, description = "The body is not a provider choice", body = super::openapi::ErrorBody, example = json!({"error": "bad_request", "message": "…"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user or provider, or not connected", body = super::openapi::ErrorBody, example = json!({"error": "not_connected", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: Result<Json<ChooseProvider>, JsonRejection>,
) -> ApiResult {
    guard(&state, &headers, &user).await?;
    let Json(body) = body.map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"provider\": \"google\" | \"microsoft\"}",
        )
    })?;
    let provider = provider_of(&body.provider)?;
    activate(&state, &user, provider).await
}

/// Calls book on the user's `provider` connection from the next call.
pub(super) async fn activate(state: &AppState, user: &str, provider: Provider) -> ApiResult {
    if !state
        .deps
        .store
        .set_active(user, provider)
        .await
        .map_err(store_down)?
    {
        return Err(not_connected(user, provider));
    }
    state.deps.calendars.forget(user);
    Ok(Json(json!({"active_provider": provider.as_str()})))
}

/// The campaign as the admin API shows it, booking settings included.
pub(super) async fn campaign_view(state: &AppState, id: &str) -> ApiResult {
    let c = state
        .deps
        .store
        .campaign(id)
        .await
        .map_err(store_down)?
        .ok_or_else(|| unknown_campaign(id))?;
    let booking_state = booking_state(state, &c).await?;
    Ok(Json(
        json!({"id": c.id, "name": c.name, "team": c.team, "owner": c.owner, "booking": c.booking, "booking_state": booking_state}),
    ))
}

/// Whether calls on the campaign would book now, and if not why (the skip
/// reason calls give) and, when the owner must connect a calendar, the path
/// of the connect request.
pub(super) async fn booking_state(state: &AppState, c: &Campaign) -> Result<Value, ApiError> {
    let off = |reason: &str| json!({"effective": "off", "reason": reason});
    if !c.booking.as_ref().is_some_and(|b| b.enabled) {
        return Ok(off("booking_disabled"));
    }
    let conn = state
        .deps
        .store
        .connection(&c.owner)
        .await
        .map_err(store_down)?;
    Ok(match conn.map(|c| c.status) {
        None => {
            let mut v = off("owner_not_connected");
            v["connect_url"] = json!(format!("/v1/users/{}/connections/{{provider}}", c.owner));
            v
        }
        Some(ConnectionStatus::Expired { .. }) => off("calendar_expired"),
        Some(ConnectionStatus::AdminApprovalNeeded { .. }) => off("admin_approval_needed"),
        Some(ConnectionStatus::Active) => json!({"effective": "on"}),
    })
}

fn unknown_campaign(id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "unknown_campaign",
        format!("no campaign {id:?}"),
    )
}

/// `GET /v1/campaigns/{id}`: the campaign and its booking settings.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    params(
        ("id" = String, Path, description = "The campaign id"),
    ),
    responses(
        (status = 200, description = "The campaign and its booking settings", body = super::openapi::CampaignView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such campaign", body = super::openapi::ErrorBody, example = json!({"error": "unknown_campaign", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    campaign_view(&state, &id).await
}

/// `PUT /v1/campaigns/{id}/booking`: replaces the booking settings (rules,
/// meeting type, invite templates) from the next call on. Invalid settings
/// are refused with the field at fault; nothing changes then.
#[utoipa::path(
    put,
    path = "/v1/campaigns/{id}/booking",
    tag = "campaigns",
    params(
        ("id" = String, Path, description = "The campaign id"),
    ),
    request_body = super::openapi::BookingSettings,
    responses(
        (status = 200, description = "The settings are replaced from the next call on", body = super::openapi::CampaignView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such campaign", body = super::openapi::ErrorBody, example = json!({"error": "unknown_campaign", "message": "…"})),
        (status = 422, description = "Invalid settings; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_booking", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn set_booking(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> ApiResult {
    admin_only(&state, &headers)?;
    replace_booking(&state, &id, &body).await
}

/// Replaces campaign `id`'s booking settings with `body` (JSON), checked.
pub(super) async fn replace_booking(state: &AppState, id: &str, body: &str) -> ApiResult {
    let settings = BookingSettings::parse(body)
        .map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_booking", e))?;
    if !state
        .deps
        .store
        .set_booking(id, settings)
        .await
        .map_err(store_down)?
    {
        return Err(unknown_campaign(id));
    }
    tracing::info!(campaign = %id, "booking settings replaced");
    campaign_view(state, id).await
}
