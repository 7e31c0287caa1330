//! The settings pages: where a calendar owner connects Google or Outlook,
//! picks the calendar and the one calls book on, disconnects, and sets up
//! the Booking step of the campaigns of their teams. Plain server-rendered
//! HTML ([`page`], escaped by `maud`) and one small script, no build step.
//!
//! Access: the host product asks the admin API for a short-lived signed
//! link for one user (`POST /v1/users/{user}/settings_link`); opening it
//! starts a session for that user alone ([`session`]). Every request here
//! acts for the session's user, never a user it names; every change needs
//! the session's CSRF token. The work itself is the admin API's
//! ([`super::admin`], [`super::accounts`]): the pages only call it for the
//! session's user.

mod page;
pub mod session;

use super::accounts::{self, replace_campaign};
use super::admin::{self, error, ApiError, ConnectStart};
use super::AppState;
use crate::store::accounts::Team;
use crate::store::{Campaign, ConnectionStatus, Provider, User};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use session::{Claims, Purpose, Refused};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "callbook_settings";
/// The header a page sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the pages may load and where they may be shown: their own script
/// only (no inline script), their own inline styles, requests to this
/// origin, and never inside another site's frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A page, with the content security policy.
fn html(status: StatusCode, markup: String) -> Response {
    let mut resp = (status, Html(markup)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// A refused settings request, as JSON like the admin API's errors.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

fn now(state: &AppState) -> i64 {
    state.deps.clock.now().timestamp()
}

/// The session the request's cookie carries, if valid now.
fn session(state: &AppState, headers: &HeaderMap) -> Option<Claims> {
    let now = now(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v).flatten())
        .filter(|c| c.name() == SESSION_COOKIE)
        .find_map(|c| {
            state
                .admin
                .signer
                .open(Purpose::Session, c.value(), now)
                .ok()
        })
}

/// The session's user, if the session is valid and the user still exists.
async fn session_user(state: &AppState, headers: &HeaderMap) -> Result<(Claims, User), Response> {
    let no_session = || {
        refusal(
            StatusCode::UNAUTHORIZED,
            "session_required",
            "your settings session has ended: open your settings link again",
        )
    };
    let claims = session(state, headers).ok_or_else(no_session)?;
    match state.deps.store.user(&claims.user).await {
        Ok(Some(user)) => Ok((claims, user)),
        Ok(None) => Err(no_session()),
        Err(e) => Err(admin::store_down(e).into_response()),
    }
}

/// As [`session_user`], for a change: the request must also carry the
/// session's CSRF token, or it is refused (403) whatever else it holds.
async fn changing_user(state: &AppState, headers: &HeaderMap) -> Result<User, Response> {
    let (claims, user) = session_user(state, headers).await?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !state.admin.signer.csrf_matches(&claims, given) {
        tracing::warn!("settings change refused: no valid CSRF token");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "csrf_refused",
            "this change did not come from your settings page: reload it and try again",
        ));
    }
    Ok(user)
}

/// The optional body of a settings link request.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    ttl_seconds: Option<i64>,
}

/// `POST /v1/users/{user}/settings_link`: a signed link to the settings
/// page for this user, valid for `ttl_seconds` (10 minutes by default).
#[utoipa::path(
    post,
    path = "/v1/users/{user}/settings_link",
    tag = "accounts",
    params(("user" = String, Path, description = "The user the page is for")),
    request_body(content = Option<super::openapi::SettingsLinkRequest>, description = "How long the link stays valid (optional)"),
    responses(
        (status = 200, description = "A link to the settings page for this user; opening it starts a session for them alone", body = super::openapi::SettingsLink),
        (status = 400, description = "The body is not a link request", body = super::openapi::ErrorBody, example = json!({"error": "bad_request", "message": "ttl_seconds: between 60 and 3600"})),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let user = admin::guard(&state, &headers, &user).await?;
    let request: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "expected {\"ttl_seconds\": n}, optional",
            )
        })?
    };
    let ttl = request.ttl_seconds.unwrap_or(session::LINK_TTL);
    if !session::LINK_TTL_RANGE.contains(&ttl) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "ttl_seconds: between {} and {}",
                session::LINK_TTL_RANGE.start(),
                session::LINK_TTL_RANGE.end()
            ),
        ));
    }
    let now = state.deps.clock.now();
    let expires = now + chrono::Duration::seconds(ttl);
    let claims = Claims::new(&user.id, expires.timestamp());
    let token = state
        .admin
        .signer
        .sign(Purpose::Link, &claims)
        .ok_or_else(|| {
            error(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the admin API is off: set CALLBOOK_ADMIN_TOKEN",
            )
        })?;
    let url = format!(
        "{}/settings/open?token={token}",
        state.admin.public_url.trim_end_matches('/')
    );
    tracing::info!(user = %user.id, ttl_seconds = ttl, "settings link issued");
    Ok(Json(
        json!({"url": url, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
    ))
}

#[derive(Deserialize)]
pub(super) struct OpenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /settings/open?token=…`: opens a settings link once. Sets the
/// session cookie and moves on to `/settings` (through the page's own
/// navigation, so the `SameSite=Strict` cookie goes with it).
pub(super) async fn open(State(state): State<AppState>, Query(q): Query<OpenQuery>) -> Response {
    let now = now(&state);
    let signer = &state.admin.signer;
    let refused = |text: &str| html(StatusCode::FORBIDDEN, page::notice("Settings", text));
    let link = match signer.open(Purpose::Link, &q.token, now) {
        Ok(link) => link,
        Err(Refused::Expired) => {
            return refused(
                "This settings link has expired. Open the settings again from the product you came from.",
            )
        }
        Err(Refused::Invalid) => {
            tracing::warn!("settings link refused: not one this server signed");
            return refused(
                "This settings link is not valid. Open the settings again from the product you came from.",
            );
        }
    };
    match state
        .deps
        .store
        .first_use(&format!("link:{}", link.nonce), now, link.exp)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(user = %link.user, "settings link refused: already opened");
            return refused(
                "This settings link was already used. Open the settings again from the product you came from.",
            );
        }
        Err(e) => return admin::store_down(e).into_response(),
    }
    match state.deps.store.user(&link.user).await {
        Ok(Some(_)) => {}
        Ok(None) => return refused("This settings link is for a user who no longer exists."),
        Err(e) => return admin::store_down(e).into_response(),
    }
    let claims = Claims::new(&link.user, now + session::SESSION_TTL);
    let Some(token) = signer.sign(Purpose::Session, &claims) else {
        return refused("Settings are off on this server.");
    };
    let cookie = cookie::Cookie::build((SESSION_COOKIE, token))
        .path("/settings")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(state.admin.public_url.starts_with("https://"))
        .max_age(cookie::time::Duration::seconds(session::SESSION_TTL))
        .build();
    tracing::info!(user = %link.user, "settings session started");
    let mut resp = html(StatusCode::OK, page::opening("/settings"));
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /settings/settings.js`: the pages' script.
pub(super) async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("settings.js"),
    )
        .into_response()
}

/// A page for a request with no valid session.
fn session_ended() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        page::notice(
            "Settings",
            "Your settings session has ended. Open the settings again from the product you came from.",
        ),
    )
}

/// `GET /settings`: the session user's calendar connections and campaigns.
pub(super) async fn settings(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok((claims, user)) = session_user(&state, &headers).await else {
        return session_ended();
    };
    match connections_page(&state, &claims, &user).await {
        Ok(markup) => html(StatusCode::OK, markup),
        Err(e) => e.into_response(),
    }
}

async fn connections_page(
    state: &AppState,
    claims: &Claims,
    user: &User,
) -> Result<String, ApiError> {
    let (conns, active) = state
        .deps
        .store
        .connections(&user.id)
        .await
        .map_err(admin::store_down)?;
    let mut providers = Vec::new();
    for provider in [Provider::Google, Provider::Microsoft] {
        let conn = conns.iter().find(|c| c.provider == provider);
        let mut view = page::ProviderView {
            provider,
            connection: conn.map(|c| admin::view(state, c, active == Some(provider))),
            calendars: Vec::new(),
            chosen: conn.map(|c| c.calendar_id.clone()).unwrap_or_default(),
            zone: None,
            problem: None,
        };
        if let Some(c) = conn.filter(|c| c.status == ConnectionStatus::Active) {
            let client = state.deps.calendars.build(&user.id, c);
            match client.list_calendars().await {
                Ok(list) => view.calendars = list,
                Err(e) => {
                    tracing::warn!(user = %user.id, error = %e, "settings: could not list calendars");
                    view.problem = Some(
                        "Your calendars could not be read just now. Reload the page to try again.",
                    );
                }
            }
            if let Ok(info) = client.calendar_info().await {
                view.zone = info
                    .timezone
                    .map(|z| z.name().to_string())
                    .or(info.zone_unresolved);
            }
        }
        providers.push(view);
    }
    let campaigns = visible_campaigns(state, &user.id).await?;
    let mut listed = Vec::new();
    for c in campaigns {
        let booking = admin::booking_state(state, &c).await?;
        listed.push((c, booking));
    }
    let csrf = state.admin.signer.csrf(claims).unwrap_or_default();
    Ok(page::settings(user, &providers, &listed, &csrf))
}

/// Whether `user` may see and set up `c`: its owner, or a member of its team.
fn may_edit(c: &Campaign, teams: &[Team], user: &str) -> bool {
    c.owner == user
        || c.team.as_deref().is_some_and(|t| {
            teams
                .iter()
                .any(|team| team.id == t && team.members.iter().any(|m| m == user))
        })
}

async fn visible_campaigns(state: &AppState, user: &str) -> Result<Vec<Campaign>, ApiError> {
    let teams: Vec<Team> = accounts::stored(state.deps.store.teams()).await?;
    let campaigns: Vec<Campaign> = accounts::stored(state.deps.store.campaigns()).await?;
    Ok(campaigns
        .into_iter()
        .filter(|c| may_edit(c, &teams, user))
        .collect())
}

/// The campaign, if `user` may set it up; otherwise as if there were none.
async fn campaign_for(
    state: &AppState,
    user: &str,
    id: &str,
) -> Result<(Campaign, Option<Team>), ApiError> {
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            "unknown_campaign",
            format!("no campaign {id:?}"),
        )
    };
    let c = state
        .deps
        .store
        .campaign(id)
        .await
        .map_err(admin::store_down)?
        .ok_or_else(unknown)?;
    let team: Option<Team> = match &c.team {
        Some(t) => accounts::stored(state.deps.store.team(t)).await?,
        None => None,
    };
    if !may_edit(&c, team.as_slice(), user) {
        return Err(unknown());
    }
    Ok((c, team))
}

/// `GET /settings/campaigns/{id}`: a campaign's Booking step.
pub(super) async fn campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok((claims, user)) = session_user(&state, &headers).await else {
        return session_ended();
    };
    match campaign_page(&state, &claims, &user, &id).await {
        Ok(markup) => html(StatusCode::OK, markup),
        Err(e) if e.status() == StatusCode::NOT_FOUND => html(
            StatusCode::NOT_FOUND,
            page::notice("Campaign", "No such campaign among your teams'."),
        ),
        Err(e) => e.into_response(),
    }
}

async fn campaign_page(
    state: &AppState,
    claims: &Claims,
    user: &User,
    id: &str,
) -> Result<String, ApiError> {
    let (c, team) = campaign_for(state, &user.id, id).await?;
    let members: Vec<String> = match &team {
        Some(t) => t.members.clone(),
        None => vec![c.owner.clone()],
    };
    let mut owners = Vec::new();
    for m in members {
        let Some(u) = state.deps.store.user(&m).await.map_err(admin::store_down)? else {
            continue;
        };
        let connected = state
            .deps
            .store
            .connection(&m)
            .await
            .map_err(admin::store_down)?
            .is_some();
        if connected || m == c.owner {
            owners.push((u, connected));
        }
    }
    let booking = admin::booking_state(state, &c).await?;
    let csrf = state.admin.signer.csrf(claims).unwrap_or_default();
    Ok(page::campaign(user, &c, &owners, &booking, &csrf))
}

/// `POST /settings/connections/{provider}`: starts a connect for the
/// session's user; answers the `authorize_url` to open.
pub(super) async fn connect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> Response {
    let user = match changing_user(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = match admin::provider_of(&provider) {
        Ok(p) => admin::start_connect(&state, &user, p, ConnectStart::default()).await,
        Err(e) => Err(e),
    };
    result
        .map(|Json(v)| Json(json!({"authorize_url": v["authorize_url"]})))
        .into_response()
}

/// `DELETE /settings/connections/{provider}`: disconnects it.
pub(super) async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> Response {
    let user = match changing_user(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match admin::provider_of(&provider) {
        Ok(p) => admin::disconnect_provider(&state, &user.id, p)
            .await
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CalendarChoice {
    calendar_id: String,
}

/// `PUT /settings/connections/{provider}/calendar` `{"calendar_id"}`.
pub(super) async fn choose_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let user = match changing_user(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(choice) = serde_json::from_slice::<CalendarChoice>(&body) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"calendar_id\": \"…\"}",
        );
    };
    match admin::provider_of(&provider) {
        Ok(p) => admin::choose(&state, &user.id, p, &choice.calendar_id)
            .await
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderChoice {
    provider: String,
}

/// `PUT /settings/active_provider` `{"provider"}`.
pub(super) async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let user = match changing_user(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(choice) = serde_json::from_slice::<ProviderChoice>(&body) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"provider\": \"google\" | \"microsoft\"}",
        );
    };
    match admin::provider_of(&choice.provider) {
        Ok(p) => admin::activate(&state, &user.id, p).await.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `PUT /settings/campaigns/{id}` `{"owner", "booking"}`: the Booking
/// step, checked as the admin API checks a campaign (errors name the
/// field: `owner: …`, `booking.rules.window.start: …`).
pub(super) async fn set_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let user = match changing_user(&state, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (c, team) = match campaign_for(&state, &user.id, &id).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let Ok(Value::Object(given)) = serde_json::from_slice::<Value>(&body) else {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_campaign",
            "expected {\"owner\": \"…\", \"booking\": {…}}",
        );
    };
    if let Some(extra) = given.keys().find(|k| *k != "owner" && *k != "booking") {
        return refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_campaign",
            &format!("{extra}: unknown field"),
        );
    }
    let owner = given.get("owner").cloned().unwrap_or(json!(c.owner));
    let booking = given.get("booking").cloned().unwrap_or(Value::Null);
    let Some(team) = team else {
        // A campaign from the provisioning file has no team: its owner
        // stays, its booking settings may change.
        if owner != json!(c.owner) {
            return refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_campaign",
                "owner: this campaign has no team; its owner is set where it was provisioned",
            );
        }
        return admin::replace_booking(&state, &id, &booking.to_string())
            .await
            .into_response();
    };
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    m.insert("team".into(), json!(team.id));
    m.insert("owner".into(), owner);
    m.insert("booking".into(), booking);
    replace_campaign(&state, &id, m).await.into_response()
}

/// The page the OAuth callback answers with: the sentence for the owner,
/// and the script that closes the sign-in popup (or returns to the page
/// that started a same-window sign-in).
pub(super) fn oauth_done(status: StatusCode, text: &str) -> Response {
    let flash = if status.is_success() {
        "Calendar connected."
    } else {
        text
    };
    html(status, page::oauth_done(text, flash))
}
