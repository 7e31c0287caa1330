//! The admin API's OpenAPI 3.1 document, generated from the handlers'
//! annotations (`#[utoipa::path]`) and served at `GET /v1/openapi.json`.
//!
//! The handlers answer `serde_json::Value` built in place, so their
//! answers' shapes are written down here as types; the integration tests
//! hold the two together (every routed admin path is documented, every
//! example matches its schema, and real answers match the schemas they
//! are documented with).

use super::admin::{ChooseCalendar, ChooseProvider};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The admin API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "callbook admin API",
        description = "Calendar connections, campaigns' booking settings, booking outcomes and diagnostics. Every request but the OAuth callback carries `Authorization: Bearer $CALLBOOK_ADMIN_TOKEN`. Errors are `{\"error\": code, \"message\": sentence}`."
    ),
    paths(
        super::admin::list,
        super::admin::connect,
        super::admin::disconnect,
        super::admin::calendars,
        super::admin::choose_calendar,
        super::admin::set_active,
        super::settings::link,
        super::admin::callback,
        super::admin::campaign,
        super::admin::set_booking,
        super::accounts::list_users,
        super::accounts::create_user,
        super::accounts::user,
        super::accounts::update_user,
        super::accounts::delete_user,
        super::accounts::list_teams,
        super::accounts::create_team,
        super::accounts::team,
        super::accounts::delete_team,
        super::accounts::add_member,
        super::accounts::remove_member,
        super::accounts::list_campaigns,
        super::accounts::create_campaign,
        super::accounts::update_campaign,
        super::accounts::delete_campaign,
        super::bookings::by_call,
        super::bookings::by_campaign,
        super::diagnostics::diagnostics,
        document,
    ),
    components(schemas(
        ErrorBody,
        ConnectionList,
        ConnectionView,
        ConnectStarted,
        ConnectRequest,
        Disconnected,
        SettingsLinkRequest,
        SettingsLink,
        CalendarList,
        CalendarView,
        CalendarChosen,
        ChooseCalendar,
        ChooseProvider,
        ActiveProvider,
        CampaignView,
        BookingState,
        CampaignList,
        CampaignRequest,
        CampaignChange,
        UserView,
        UserList,
        UserRequest,
        UserChange,
        TeamView,
        TeamList,
        Deleted,
        BookingSettings,
        BookingRules,
        BookingWindow,
        Meeting,
        Bookings,
        crate::outcomes::BookingRecord,
        crate::outcomes::OutcomeStatus,
        crate::store::Provider,
        super::diagnostics::Diagnostics,
        super::diagnostics::Check,
        super::diagnostics::ConnectLink,
        super::diagnostics::Slot,
        super::diagnostics::RecentCall,
    )),
    modifiers(&AdminToken),
    tags(
        (name = "connections", description = "Owners' calendar connections"),
        (name = "accounts", description = "Users, and teams whose members may own a campaign's calendar"),
        (name = "campaigns", description = "Campaigns, their booking settings and diagnostics"),
        (name = "bookings", description = "What became of each call's booking"),
        (name = "meta", description = "This document"),
    )
)]
pub struct AdminApi;

/// Declares the bearer scheme the operations name.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("CALLBOOK_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

impl AdminApi {
    /// The document as JSON, with the crate's version.
    pub fn json() -> serde_json::Value {
        let mut doc = AdminApi::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        serde_json::to_value(&doc).unwrap_or_default()
    }
}

/// `GET /v1/openapi.json`: this document. Open, like the API's shape is.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The admin API as OpenAPI 3.1", content_type = "application/json", body = Object))
)]
pub(super) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        AdminApi::json().to_string(),
    )
        .into_response()
}

/// Every admin API error: a stable code and a sentence. Never the
/// internals (no driver or OS text): those go to the log.
#[derive(ToSchema)]
#[schema(examples(json!({"error": "store_unavailable", "message": "the store cannot be reached just now; try again"})))]
pub struct ErrorBody {
    /// Stable, snake_case: `unauthorized`, `admin_disabled`,
    /// `unknown_user`, `unknown_provider`, `not_connected`,
    /// `unknown_campaign`, `bad_request`, `invalid_limit`,
    /// `invalid_booking`, `unknown_calendar`, `calendar_expired`,
    /// `admin_approval_needed`, `permissions_missing`,
    /// `provider_unavailable`, `store_unavailable`, `unknown_team`,
    /// `invalid_user`, `invalid_team`, `invalid_campaign`, `user_exists`,
    /// `team_exists`, `campaign_exists`, `in_use`, `not_a_member`.
    pub error: String,
    pub message: String,
}

/// `GET /v1/users/{user}/connections`
#[derive(ToSchema)]
#[schema(examples(json!({
    "user": "alex", "active_provider": "google",
    "connections": [{"provider": "google", "active": true, "calendar_id": "primary", "status": "active", "account": "alex@callbook.example"}]
})))]
pub struct ConnectionList {
    pub user: String,
    /// `google`, `microsoft`, or null with no connection.
    pub active_provider: Option<String>,
    pub connections: Vec<ConnectionView>,
}

/// One connection.
#[derive(ToSchema)]
#[schema(examples(json!({
    "provider": "microsoft", "active": false, "calendar_id": "primary", "status": "admin_approval_needed",
    "since": "2026-12-01T15:00:00Z", "tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "admin_consent_url": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/adminconsent?client_id=app&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=https%3A%2F%2Fcallbook.example%2Fv1%2Foauth%2Fcallback"
})))]
pub struct ConnectionView {
    /// `google` or `microsoft`.
    pub provider: String,
    /// Calls book on this connection.
    pub active: bool,
    pub calendar_id: String,
    /// `active`, `expired` or `admin_approval_needed`.
    pub status: String,
    /// When the grant stopped working (expired, admin approval needed).
    #[schema(required = false)]
    pub since: Option<DateTime<Utc>>,
    /// The account's address as the provider reported it.
    #[schema(required = false)]
    pub account: Option<String>,
    /// Microsoft's tenant.
    #[schema(required = false)]
    pub tenant: Option<String>,
    /// Where the tenant's administrator approves callbook.
    #[schema(required = false)]
    pub admin_consent_url: Option<String>,
}

/// `POST /v1/users/{user}/connections/{provider}`
#[derive(ToSchema)]
#[schema(examples(json!({
    "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=app&state=s&code_challenge=c&code_challenge_method=S256",
    "redirect_uri": "https://callbook.example/v1/oauth/callback"
})))]
pub struct ConnectStarted {
    /// Where to send the owner's browser.
    pub authorize_url: String,
    pub redirect_uri: String,
    /// The account that must finish the consent (sent as `login_hint`);
    /// `null` with `allow_other_account`.
    pub expected_account: Option<String>,
    /// The Microsoft tenant the account must be in, when one is expected.
    pub expected_tenant: Option<String>,
    pub allow_other_account: Option<bool>,
}

/// The optional body of `POST /v1/users/{user}/connections/{provider}`:
/// whom the connect is for.
#[derive(ToSchema)]
#[schema(examples(json!({"login_hint": "alex@acme.example"})))]
pub struct ConnectRequest {
    /// The account that must finish the consent, pre-selected on the
    /// provider's sign-in screen. Defaults to the connection's current
    /// account, else the user's email.
    pub login_hint: Option<String>,
    /// The Microsoft tenant (`tid`) the account must be in.
    pub tenant: Option<String>,
    /// Accept whichever account finishes the consent; the connection is
    /// flagged `other_account`.
    pub allow_other_account: Option<bool>,
}

/// The optional body of `POST /v1/users/{user}/settings_link`.
#[derive(ToSchema)]
#[schema(examples(json!({"ttl_seconds": 600})))]
pub struct SettingsLinkRequest {
    /// How long the link stays valid: 60 to 3600 seconds, 600 by default.
    pub ttl_seconds: Option<i64>,
}

/// `POST /v1/users/{user}/settings_link`: the link to send the user's
/// browser to (once; it expires at `expires_at`).
#[derive(ToSchema)]
#[schema(examples(json!({"url": "https://callbook.example/settings/open?token=eyJ1c2VyIjoiYWxleCJ9.c2ln", "expires_at": "2026-12-01T15:10:00Z"})))]
pub struct SettingsLink {
    pub url: String,
    pub expires_at: String,
}

/// `DELETE /v1/users/{user}/connections/{provider}`
#[derive(ToSchema)]
#[schema(examples(json!({"provider": "google", "deleted": true, "revoked": true})))]
pub struct Disconnected {
    pub provider: String,
    pub deleted: bool,
    /// Whether the provider revoked the grant (Google; Microsoft has no
    /// endpoint for it).
    pub revoked: bool,
}

/// `GET /v1/users/{user}/connections/{provider}/calendars`
#[derive(ToSchema)]
#[schema(examples(json!({
    "calendars": [{"id": "alex@callbook.example", "name": "Alex Morgan", "primary": true, "timezone": "America/New_York"}],
    "chosen": "primary"
})))]
pub struct CalendarList {
    pub calendars: Vec<CalendarView>,
    /// The calendar bookings go on (`primary` for the owner's main one).
    pub chosen: String,
}

/// A calendar the owner can write to.
#[derive(ToSchema)]
pub struct CalendarView {
    pub id: String,
    pub name: String,
    pub primary: bool,
    /// The calendar's zone (Google).
    #[schema(required = false)]
    pub timezone: Option<String>,
}

/// `PUT /v1/users/{user}/connections/{provider}/calendar`
#[derive(ToSchema)]
#[schema(examples(json!({"provider": "google", "calendar_id": "primary", "name": "Alex Morgan"})))]
pub struct CalendarChosen {
    pub provider: String,
    pub calendar_id: String,
    pub name: String,
}

/// `PUT /v1/users/{user}/active_provider`
#[derive(ToSchema)]
#[schema(examples(json!({"active_provider": "microsoft"})))]
pub struct ActiveProvider {
    pub active_provider: String,
}

/// `GET /v1/campaigns/{id}`
#[derive(ToSchema)]
#[schema(examples(json!({
    "id": "demo", "name": "Acme outreach", "team": "sales", "owner": "alex",
    "booking": {
        "enabled": true,
        "rules": {"timezone": "America/New_York", "length_minutes": 30, "slot_step_minutes": 30,
                  "window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"},
                  "buffer_before_minutes": 0, "buffer_after_minutes": 10, "min_notice_minutes": 120, "look_ahead_days": 14},
        "meeting": {"type": "video"},
        "title": "{owner.name} <> {recipient.fullName}",
        "description": "A {meeting.minutes}-minute intro call."
    },
    "booking_state": {"effective": "off", "reason": "owner_not_connected", "connect_url": "/v1/users/alex/connections/{provider}"}
})))]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    /// The team the owner is chosen among; null for a campaign from the
    /// provisioning file.
    pub team: Option<String>,
    pub owner: String,
    /// Null when the campaign has no booking settings.
    pub booking: Option<BookingSettings>,
    pub booking_state: BookingState,
}

/// Whether calls on a campaign book now.
#[derive(ToSchema)]
#[schema(examples(json!({"effective": "off", "reason": "owner_not_connected", "connect_url": "/v1/users/alex/connections/{provider}"})))]
pub struct BookingState {
    /// `on`, or `off` when calls skip booking.
    #[schema(pattern = "^(on|off)$")]
    pub effective: String,
    /// When off: the skip reason calls give (`booking_disabled`,
    /// `owner_not_connected`, `calendar_expired`, `admin_approval_needed`).
    #[schema(required = false)]
    pub reason: Option<String>,
    /// With `owner_not_connected`: the connect request's path; `POST` it
    /// with `{provider}` as `google` or `microsoft`.
    #[schema(required = false)]
    pub connect_url: Option<String>,
}

/// A campaign's booking settings, as the provisioning file and
/// `PUT /v1/campaigns/{id}/booking` write them.
#[derive(ToSchema)]
#[schema(examples(json!({
    "enabled": false,
    "rules": {"timezone": "Europe/Berlin", "length_minutes": 45, "window": {"days": ["mon", "wed"], "start": "10:00", "end": "16:00"}, "look_ahead_days": 7},
    "meeting": {"type": "phone", "number": "+4930123456"}
})))]
pub struct BookingSettings {
    /// Off: calls skip booking (`booking_disabled`). Default true.
    #[schema(required = false, default = true)]
    pub enabled: bool,
    pub rules: BookingRules,
    pub meeting: Meeting,
    /// Invite title; template tokens such as `{recipient.fullName}`.
    #[schema(required = false)]
    pub title: String,
    #[schema(required = false)]
    pub description: String,
    /// Where national phone numbers are read (ISO 3166 alpha-2); `US`
    /// when absent.
    #[schema(required = false)]
    pub default_country: Option<String>,
}

/// Booking rules (see the README, "Booking rules").
#[derive(ToSchema)]
pub struct BookingRules {
    /// IANA zone of the owner.
    pub timezone: String,
    #[schema(minimum = 1)]
    pub length_minutes: u32,
    /// Must divide a day; default 30.
    #[schema(required = false, minimum = 1)]
    pub slot_step_minutes: u32,
    pub window: BookingWindow,
    #[schema(required = false)]
    pub buffer_before_minutes: u32,
    #[schema(required = false)]
    pub buffer_after_minutes: u32,
    #[schema(required = false)]
    pub min_notice_minutes: u32,
    #[schema(maximum = 730)]
    pub look_ahead_days: u32,
}

/// The weekly window in the owner's zone.
#[derive(ToSchema)]
pub struct BookingWindow {
    /// `mon` … `sun` (or full names).
    pub days: Vec<String>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, or `24:00` for the end of the day.
    pub end: String,
}

/// How the meeting happens.
#[derive(serde::Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(examples(json!({"type": "in_person", "address": "1 Main St, Springfield"})))]
pub enum Meeting {
    /// A Meet or Teams link, where the calendar allows one.
    Video,
    /// The owner calls this number.
    Phone { number: String },
    /// At this address.
    InPerson { address: String },
}

/// `GET /v1/bookings`, `GET /v1/campaigns/{id}/bookings`
#[derive(ToSchema)]
#[schema(examples(json!({"bookings": [{
    "id": "0b6c1f7e-3c1d-4f0a-9a43-5d8b2f1e6a10", "call_sid": "CA0123456789abcdef0123456789abcdef",
    "campaign_id": "demo", "status": "booked", "event_id": "cb1f0e", "start": "2026-12-02T15:00:00Z",
    "end": "2026-12-02T15:30:00Z", "previous_start": null, "invitee": "jane@example.com", "reason": null,
    "join_link": "https://meet.google.com/abc-defg-hij", "provider": "google", "at": "2026-12-01T15:04:10Z"
}]})))]
pub struct Bookings {
    /// Newest first.
    pub bookings: Vec<crate::outcomes::BookingRecord>,
}

/// `GET /v1/campaigns`
#[derive(ToSchema)]
#[schema(examples(json!({"campaigns": [{"id": "spring", "name": "Spring outreach", "team": "sales", "owner": "sam", "booking": null, "booking_state": {"effective": "off", "reason": "booking_disabled"}}]})))]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

/// `POST /v1/campaigns`
#[derive(ToSchema)]
#[schema(examples(json!({"id": "spring", "name": "Spring outreach", "team": "sales", "owner": "sam"})))]
pub struct CampaignRequest {
    /// 1–64 lower-case letters, digits, `-` and `_`.
    pub id: String,
    pub name: String,
    pub team: String,
    /// A member of `team`: whose calendar calls book on.
    pub owner: String,
    /// The Booking step's settings; none: calls skip (`booking_disabled`).
    #[schema(required = false)]
    pub booking: Option<BookingSettings>,
}

/// `PUT /v1/campaigns/{id}`
#[derive(ToSchema)]
#[schema(examples(json!({"name": "Spring outreach", "team": "sales", "owner": "sam"})))]
pub struct CampaignChange {
    pub name: String,
    pub team: String,
    /// A member of `team`: whose calendar calls book on.
    pub owner: String,
    #[schema(required = false)]
    pub booking: Option<BookingSettings>,
}

/// A user.
#[derive(ToSchema)]
#[schema(examples(json!({"id": "sam", "name": "Sam Lee", "email": "sam@example.com"})))]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
}

/// `GET /v1/users`
#[derive(ToSchema)]
#[schema(examples(json!({"users": [{"id": "sam", "name": "Sam Lee", "email": "sam@example.com"}]})))]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `POST /v1/users`
#[derive(ToSchema)]
#[schema(examples(json!({"id": "sam", "name": "Sam Lee", "email": "sam@example.com"})))]
pub struct UserRequest {
    /// 1–64 lower-case letters, digits, `-` and `_`.
    pub id: String,
    pub name: String,
    pub email: String,
}

/// `PUT /v1/users/{user}`
#[derive(ToSchema)]
#[schema(examples(json!({"name": "Sam Lee", "email": "sam@example.com"})))]
pub struct UserChange {
    pub name: String,
    pub email: String,
}

/// A team and its members (user ids).
#[derive(ToSchema)]
#[schema(examples(json!({"id": "sales", "name": "Sales", "members": ["alex", "sam"]})))]
pub struct TeamView {
    /// 1–64 lower-case letters, digits, `-` and `_`.
    pub id: String,
    pub name: String,
    #[schema(required = false)]
    pub members: Vec<String>,
}

/// `GET /v1/teams`
#[derive(ToSchema)]
#[schema(examples(json!({"teams": [{"id": "sales", "name": "Sales", "members": ["alex", "sam"]}]})))]
pub struct TeamList {
    pub teams: Vec<TeamView>,
}

/// What a delete answers.
#[derive(ToSchema)]
#[schema(examples(json!({"id": "sam", "deleted": true})))]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}
