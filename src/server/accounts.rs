//! The admin API for users, teams and campaigns: created, read, listed,
//! changed and deleted here, over what the provisioning file seeds. A
//! campaign's calendar owner is one of its team's members; one without a
//! connected calendar is allowed, and the campaign then reports booking
//! off (`owner_not_connected`).

use super::admin::{admin_only, campaign_view, error, store_down, ApiError, ApiResult};
use super::AppState;
use crate::store::accounts::{Kind, Team};
use crate::store::{BookingSettings, Campaign, User};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};

/// A 422 with `code`, naming the field at fault.
fn invalid(code: &'static str, field: &str, what: impl std::fmt::Display) -> ApiError {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!("{field}: {what}"),
    )
}

fn not_found(kind: Kind, id: &str) -> ApiError {
    let code = match kind {
        Kind::User => "unknown_user",
        Kind::Team => "unknown_team",
        Kind::Campaign => "unknown_campaign",
    };
    error(
        StatusCode::NOT_FOUND,
        code,
        format!("no {} {id:?}", kind.as_str()),
    )
}

fn conflict(code: &'static str, message: String) -> ApiError {
    error(StatusCode::CONFLICT, code, message)
}

/// The body as a JSON object.
fn object(code: &'static str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid(code, "body", "must be a JSON object")),
        Err(e) => Err(invalid(code, "body", e)),
    }
}

/// Refuses fields the record does not have.
fn only(code: &'static str, m: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(invalid(code, k, "unknown field")),
        None => Ok(()),
    }
}

/// A required, non-empty string field.
fn text(code: &'static str, m: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match m.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) => Err(invalid(code, field, "must not be empty")),
        Some(_) => Err(invalid(code, field, "must be a string")),
        None => Err(invalid(code, field, "missing")),
    }
}

/// An id: 1–64 of lower-case letters, digits, `-` and `_`.
fn id_field(code: &'static str, m: &Map<String, Value>) -> Result<String, ApiError> {
    let id = text(code, m, "id")?;
    let ok = id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(
            code,
            "id",
            "use 1 to 64 lower-case letters, digits, '-' and '_'",
        ));
    }
    Ok(id)
}

/// The store's answer, or 503 when it cannot be reached.
pub(super) async fn stored<T>(
    answer: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Result<T, ApiError> {
    answer.await.map_err(store_down)
}

fn user_view(u: &User) -> Value {
    json!({"id": u.id, "name": u.name, "email": u.email})
}

/// `name` and `email` of a user body.
fn user_fields(m: &Map<String, Value>) -> Result<(String, String), ApiError> {
    let name = text("invalid_user", m, "name")?;
    let email = text("invalid_user", m, "email")?;
    let ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !ok {
        return Err(invalid("invalid_user", "email", "not an email address"));
    }
    Ok((name, email))
}

/// `GET /v1/users`: every user.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "accounts",
    responses(
        (status = 200, description = "Every user", body = super::openapi::UserList),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn list_users(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    admin_only(&state, &headers)?;
    let users: Vec<User> = stored(state.deps.store.users()).await?;
    Ok(Json(
        json!({"users": users.iter().map(user_view).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/users` with `{id, name, email}`.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "accounts",
    request_body = super::openapi::UserRequest,
    responses(
        (status = 201, description = "The user is created", body = super::openapi::UserView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 409, description = "A user with that id exists", body = super::openapi::ErrorBody, example = json!({"error": "user_exists", "message": "…"})),
        (status = 422, description = "Invalid user; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_user", "message": "email: not an email address"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin_only(&state, &headers)?;
    let m = object("invalid_user", &body)?;
    only("invalid_user", &m, &["id", "name", "email"])?;
    let id = id_field("invalid_user", &m)?;
    let (name, email) = user_fields(&m)?;
    if stored(state.deps.store.user(&id)).await?.is_some() {
        return Err(conflict("user_exists", format!("a user {id:?} exists")));
    }
    let u = User {
        id: id.clone(),
        name,
        email: Some(email),
    };
    stored(state.deps.store.save_user(&u)).await?;
    tracing::info!(user = %id, "user created");
    Ok((StatusCode::CREATED, Json(user_view(&u))))
}

/// `GET /v1/users/{user}`.
#[utoipa::path(
    get,
    path = "/v1/users/{user}",
    tag = "accounts",
    params(("user" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user", body = super::openapi::UserView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let u: User = stored(state.deps.store.user(&id))
        .await?
        .ok_or_else(|| not_found(Kind::User, &id))?;
    Ok(Json(user_view(&u)))
}

/// `PUT /v1/users/{user}` with `{name, email}`.
#[utoipa::path(
    put,
    path = "/v1/users/{user}",
    tag = "accounts",
    params(("user" = String, Path, description = "The user id")),
    request_body = super::openapi::UserChange,
    responses(
        (status = 200, description = "The user is changed", body = super::openapi::UserView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 422, description = "Invalid user; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_user", "message": "name: missing"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let m = object("invalid_user", &body)?;
    only("invalid_user", &m, &["id", "name", "email"])?;
    if m.get("id").is_some_and(|v| v != &json!(id)) {
        return Err(invalid("invalid_user", "id", "differs from the path"));
    }
    let (name, email) = user_fields(&m)?;
    let mut u: User = stored(state.deps.store.user(&id))
        .await?
        .ok_or_else(|| not_found(Kind::User, &id))?;
    u.name = name;
    u.email = Some(email);
    stored(state.deps.store.save_user(&u)).await?;
    Ok(Json(user_view(&u)))
}

/// `DELETE /v1/users/{user}`: refused while the user owns a campaign or
/// has a calendar connected (disconnecting revokes the grant); removes the
/// user from every team.
#[utoipa::path(
    delete,
    path = "/v1/users/{user}",
    tag = "accounts",
    params(("user" = String, Path, description = "The user id")),
    responses(
        (status = 200, description = "The user is deleted", body = super::openapi::Deleted),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 409, description = "The user owns a campaign or has a calendar connected", body = super::openapi::ErrorBody, example = json!({"error": "in_use", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    if stored(state.deps.store.user(&id)).await?.is_none() {
        return Err(not_found(Kind::User, &id));
    }
    let campaigns: Vec<Campaign> = stored(state.deps.store.campaigns()).await?;
    if let Some(c) = campaigns.iter().find(|c| c.owner == id) {
        return Err(conflict(
            "in_use",
            format!(
                "user {id:?} owns campaign {:?}; choose another owner first",
                c.id
            ),
        ));
    }
    let (connections, _) = state
        .deps
        .store
        .connections(&id)
        .await
        .map_err(store_down)?;
    if let Some(c) = connections.first() {
        return Err(conflict(
            "in_use",
            format!(
                "user {id:?} has a {} calendar connected; disconnect it first",
                c.provider.as_str()
            ),
        ));
    }
    let teams: Vec<Team> = stored(state.deps.store.teams()).await?;
    for t in teams.into_iter().filter(|t| t.members.contains(&id)) {
        stored(state.deps.store.remove_member(&t.id, &id)).await?;
    }
    stored(state.deps.store.delete_user(&id)).await?;
    tracing::info!(user = %id, "user deleted");
    Ok(Json(json!({"id": id, "deleted": true})))
}

/// `GET /v1/teams`.
#[utoipa::path(
    get,
    path = "/v1/teams",
    tag = "accounts",
    responses(
        (status = 200, description = "Every team", body = super::openapi::TeamList),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn list_teams(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    admin_only(&state, &headers)?;
    let teams: Vec<Team> = stored(state.deps.store.teams()).await?;
    Ok(Json(json!({ "teams": teams })))
}

/// `POST /v1/teams` with `{id, name, members?}`.
#[utoipa::path(
    post,
    path = "/v1/teams",
    tag = "accounts",
    request_body = super::openapi::TeamView,
    responses(
        (status = 201, description = "The team is created", body = super::openapi::TeamView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 409, description = "A team with that id exists", body = super::openapi::ErrorBody, example = json!({"error": "team_exists", "message": "…"})),
        (status = 422, description = "Invalid team; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_team", "message": "members[0]: no user \"sam\""})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn create_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin_only(&state, &headers)?;
    let m = object("invalid_team", &body)?;
    only("invalid_team", &m, &["id", "name", "members"])?;
    let id = id_field("invalid_team", &m)?;
    let name = text("invalid_team", &m, "name")?;
    let mut members = Vec::new();
    match m.get("members") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                let field = format!("members[{i}]");
                let Some(u) = v.as_str() else {
                    return Err(invalid("invalid_team", &field, "must be a user id"));
                };
                if stored(state.deps.store.user(u)).await?.is_none() {
                    return Err(invalid("invalid_team", &field, format!("no user {u:?}")));
                }
                if !members.iter().any(|m| m == u) {
                    members.push(u.to_string());
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "invalid_team",
                "members",
                "must be a list of user ids",
            ))
        }
    }
    if stored(state.deps.store.team(&id)).await?.is_some() {
        return Err(conflict("team_exists", format!("a team {id:?} exists")));
    }
    let t = Team {
        id: id.clone(),
        name,
        members,
    };
    stored(state.deps.store.save_team(&t)).await?;
    tracing::info!(team = %id, "team created");
    Ok((StatusCode::CREATED, Json(json!(t))))
}

/// `GET /v1/teams/{team}`.
#[utoipa::path(
    get,
    path = "/v1/teams/{team}",
    tag = "accounts",
    params(("team" = String, Path, description = "The team id")),
    responses(
        (status = 200, description = "The team and its members", body = super::openapi::TeamView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such team", body = super::openapi::ErrorBody, example = json!({"error": "unknown_team", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let t: Team = stored(state.deps.store.team(&id))
        .await?
        .ok_or_else(|| not_found(Kind::Team, &id))?;
    Ok(Json(json!(t)))
}

/// `DELETE /v1/teams/{team}`: refused while a campaign uses the team.
#[utoipa::path(
    delete,
    path = "/v1/teams/{team}",
    tag = "accounts",
    params(("team" = String, Path, description = "The team id")),
    responses(
        (status = 200, description = "The team is deleted", body = super::openapi::Deleted),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such team", body = super::openapi::ErrorBody, example = json!({"error": "unknown_team", "message": "…"})),
        (status = 409, description = "A campaign uses the team", body = super::openapi::ErrorBody, example = json!({"error": "in_use", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn delete_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    if stored(state.deps.store.team(&id)).await?.is_none() {
        return Err(not_found(Kind::Team, &id));
    }
    let campaigns: Vec<Campaign> = stored(state.deps.store.campaigns()).await?;
    if let Some(c) = campaigns.iter().find(|c| c.team.as_deref() == Some(&id)) {
        return Err(conflict(
            "in_use",
            format!("campaign {:?} uses team {id:?}", c.id),
        ));
    }
    stored(state.deps.store.delete_team(&id)).await?;
    tracing::info!(team = %id, "team deleted");
    Ok(Json(json!({"id": id, "deleted": true})))
}

/// `PUT /v1/teams/{team}/members/{user}`: adds the user (idempotent).
#[utoipa::path(
    put,
    path = "/v1/teams/{team}/members/{user}",
    tag = "accounts",
    params(
        ("team" = String, Path, description = "The team id"),
        ("user" = String, Path, description = "The user id"),
    ),
    responses(
        (status = 200, description = "The team with the user among its members", body = super::openapi::TeamView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such team or user", body = super::openapi::ErrorBody, example = json!({"error": "unknown_user", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, user)): Path<(String, String)>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    if stored(state.deps.store.team(&team)).await?.is_none() {
        return Err(not_found(Kind::Team, &team));
    }
    if stored(state.deps.store.user(&user)).await?.is_none() {
        return Err(not_found(Kind::User, &user));
    }
    // One atomic change in the store: members added at the same time
    // through other instances are all kept.
    let t = stored(state.deps.store.add_member(&team, &user))
        .await?
        .ok_or_else(|| not_found(Kind::Team, &team))?;
    Ok(Json(json!(t)))
}

/// `DELETE /v1/teams/{team}/members/{user}`: refused while the user owns
/// one of the team's campaigns.
#[utoipa::path(
    delete,
    path = "/v1/teams/{team}/members/{user}",
    tag = "accounts",
    params(
        ("team" = String, Path, description = "The team id"),
        ("user" = String, Path, description = "The user id"),
    ),
    responses(
        (status = 200, description = "The team without the user", body = super::openapi::TeamView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such team, or the user is not a member", body = super::openapi::ErrorBody, example = json!({"error": "not_a_member", "message": "…"})),
        (status = 409, description = "The user owns one of the team's campaigns", body = super::openapi::ErrorBody, example = json!({"error": "in_use", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team, user)): Path<(String, String)>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let t: Team = stored(state.deps.store.team(&team))
        .await?
        .ok_or_else(|| not_found(Kind::Team, &team))?;
    if !t.members.contains(&user) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_a_member",
            format!("user {user:?} is not a member of team {team:?}"),
        ));
    }
    let campaigns: Vec<Campaign> = stored(state.deps.store.campaigns()).await?;
    if let Some(c) = campaigns
        .iter()
        .find(|c| c.owner == user && c.team.as_deref() == Some(&team))
    {
        return Err(conflict(
            "in_use",
            format!(
                "user {user:?} owns campaign {:?} of team {team:?}; choose another owner first",
                c.id
            ),
        ));
    }
    let t = stored(state.deps.store.remove_member(&team, &user))
        .await?
        .ok_or_else(|| not_found(Kind::Team, &team))?;
    Ok(Json(json!(t)))
}

/// A campaign body's `name`, `team`, `owner` and `booking`, checked: the
/// owner must be one of the team's members.
async fn campaign_fields(
    state: &AppState,
    m: &Map<String, Value>,
) -> Result<(String, String, String, Option<BookingSettings>), ApiError> {
    const CODE: &str = "invalid_campaign";
    let name = text(CODE, m, "name")?;
    let team = text(CODE, m, "team")?;
    let owner = text(CODE, m, "owner")?;
    let booking = match m.get("booking") {
        None | Some(Value::Null) => None,
        Some(b) => Some(BookingSettings::parse(&b.to_string()).map_err(|e| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                CODE,
                format!("booking.{e}"),
            )
        })?),
    };
    let Some(t) = stored(state.deps.store.team(&team)).await? else {
        return Err(invalid(CODE, "team", format!("no team {team:?}")));
    };
    if !t.members.contains(&owner) {
        return Err(invalid(
            CODE,
            "owner",
            format!("{owner:?} is not a member of team {team:?}"),
        ));
    }
    Ok((name, team, owner, booking))
}

/// `GET /v1/campaigns`.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    responses(
        (status = 200, description = "Every campaign", body = super::openapi::CampaignList),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn list_campaigns(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    admin_only(&state, &headers)?;
    let campaigns: Vec<Campaign> = stored(state.deps.store.campaigns()).await?;
    let mut out = Vec::with_capacity(campaigns.len());
    for c in campaigns {
        out.push(campaign_view(&state, &c.id).await?.0);
    }
    Ok(Json(json!({ "campaigns": out })))
}

/// `POST /v1/campaigns` with `{id, name, team, owner, booking?}`.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    tag = "campaigns",
    request_body = super::openapi::CampaignRequest,
    responses(
        (status = 201, description = "The campaign is created", body = super::openapi::CampaignView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 409, description = "A campaign with that id exists", body = super::openapi::ErrorBody, example = json!({"error": "campaign_exists", "message": "…"})),
        (status = 422, description = "Invalid campaign; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_campaign", "message": "owner: \"sam\" is not a member of team \"sales\""})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn create_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin_only(&state, &headers)?;
    let m = object("invalid_campaign", &body)?;
    only(
        "invalid_campaign",
        &m,
        &["id", "name", "team", "owner", "booking"],
    )?;
    let id = id_field("invalid_campaign", &m)?;
    let (name, team, owner, booking) = campaign_fields(&state, &m).await?;
    if stored(state.deps.store.campaign(&id)).await?.is_some() {
        return Err(conflict(
            "campaign_exists",
            format!("a campaign {id:?} exists"),
        ));
    }
    let c = Campaign {
        id: id.clone(),
        name,
        team: Some(team),
        owner,
        booking,
    };
    stored(state.deps.store.save_campaign(&c)).await?;
    tracing::info!(campaign = %id, "campaign created");
    Ok((StatusCode::CREATED, campaign_view(&state, &id).await?))
}

/// `PUT /v1/campaigns/{id}` with `{name, team, owner, booking?}`: replaces
/// the campaign (booking settings included) from the next call on.
#[utoipa::path(
    put,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign id")),
    request_body = super::openapi::CampaignChange,
    responses(
        (status = 200, description = "The campaign is replaced", body = super::openapi::CampaignView),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such campaign", body = super::openapi::ErrorBody, example = json!({"error": "unknown_campaign", "message": "…"})),
        (status = 422, description = "Invalid campaign; the message names the field", body = super::openapi::ErrorBody, example = json!({"error": "invalid_campaign", "message": "team: no team \"sales\""})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn update_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    admin_only(&state, &headers)?;
    let m = object("invalid_campaign", &body)?;
    replace_campaign(&state, &id, m).await
}

/// Replaces campaign `id` with the body `m` (`name`, `team`, `owner`,
/// `booking`), checked as a new one is; the admin API's and the settings
/// page's.
pub(super) async fn replace_campaign(
    state: &AppState,
    id: &str,
    m: Map<String, Value>,
) -> ApiResult {
    only(
        "invalid_campaign",
        &m,
        &["id", "name", "team", "owner", "booking"],
    )?;
    if m.get("id").is_some_and(|v| v != &json!(id)) {
        return Err(invalid("invalid_campaign", "id", "differs from the path"));
    }
    if state
        .deps
        .store
        .campaign(id)
        .await
        .map_err(store_down)?
        .is_none()
    {
        return Err(not_found(Kind::Campaign, id));
    }
    let (name, team, owner, booking) = campaign_fields(state, &m).await?;
    let c = Campaign {
        id: id.to_string(),
        name,
        team: Some(team),
        owner,
        booking,
    };
    stored(state.deps.store.save_campaign(&c)).await?;
    tracing::info!(campaign = %id, "campaign replaced");
    campaign_view(state, id).await
}

/// `DELETE /v1/campaigns/{id}`: calls naming it skip (`campaign_unknown`).
#[utoipa::path(
    delete,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    params(("id" = String, Path, description = "The campaign id")),
    responses(
        (status = 200, description = "The campaign is deleted", body = super::openapi::Deleted),
        (status = 401, description = "No or wrong admin token", body = super::openapi::ErrorBody, example = json!({"error": "unauthorized", "message": "…"})),
        (status = 403, description = "The admin API is off (no admin token configured)", body = super::openapi::ErrorBody, example = json!({"error": "admin_disabled", "message": "…"})),
        (status = 404, description = "No such campaign", body = super::openapi::ErrorBody, example = json!({"error": "unknown_campaign", "message": "…"})),
        (status = 503, description = "The store cannot be reached", body = super::openapi::ErrorBody, example = json!({"error": "store_unavailable", "message": "…"})),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn delete_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    admin_only(&state, &headers)?;
    if stored(state.deps.store.campaign(&id)).await?.is_none() {
        return Err(not_found(Kind::Campaign, &id));
    }
    stored(state.deps.store.delete_campaign(&id)).await?;
    tracing::info!(campaign = %id, "campaign deleted");
    Ok(Json(json!({"id": id, "deleted": true})))
}
