//! The settings pages as HTML. Every value is interpolated through `maud`,
//! which escapes it; nothing here builds markup from strings.

use crate::calendar::CalendarSummary;
use crate::store::{Campaign, Provider, User};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

const STYLE: &str = "
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.05rem;margin:0 0 .5rem}
.provider{border:1px solid #c9ced6;border-radius:8px;padding:1rem;margin:1rem 0}
.status{font-weight:600}.status-active{color:#0a6b2d}.status-expired,.status-admin_approval_needed{color:#a14300}
label{display:block;font-weight:600;margin-top:.75rem}
fieldset{border:1px solid #c9ced6;border-radius:8px;margin-top:1rem}
fieldset label{display:inline;font-weight:normal;margin-right:1rem}
input[type=text],input[type=number],select,textarea{font:inherit;padding:.3rem;min-width:16rem}
button{font:inherit;padding:.4rem .9rem;margin:.5rem .5rem 0 0;cursor:pointer}
button:focus,input:focus,select:focus,textarea:focus,a:focus{outline:3px solid #2563eb;outline-offset:2px}
.error{color:#b00020;margin:.25rem 0}.prompt{border-left:4px solid #a14300;padding:.5rem 1rem;background:#fff6ed}
#status{min-height:1.5rem;font-weight:600}
";

fn layout(title: &str, body_attrs: BodyAttrs, csrf: Option<&str>, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(token) = csrf {
                    meta name="csrf-token" content=(token);
                }
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body data-page=(body_attrs.page) data-next=[body_attrs.next] data-message=[body_attrs.message] data-campaign=[body_attrs.campaign] {
                (content)
                script src="/settings/settings.js" {}
            }
        }
    }
    .into_string()
}

#[derive(Default)]
struct BodyAttrs<'a> {
    page: &'a str,
    next: Option<&'a str>,
    message: Option<&'a str>,
    campaign: Option<&'a str>,
}

/// A page with one sentence (a refused link, an ended session).
pub(super) fn notice(title: &str, text: &str) -> String {
    layout(
        title,
        BodyAttrs {
            page: "notice",
            ..Default::default()
        },
        None,
        html! { main { h1 { (title) } p { (text) } } },
    )
}

/// What a just-opened link answers: the script goes on to `next`.
pub(super) fn opening(next: &str) -> String {
    layout(
        "Opening your settings",
        BodyAttrs {
            page: "open",
            next: Some(next),
            ..Default::default()
        },
        None,
        html! { main { p { "Opening your settings… " a href=(next) { "Continue" } } } },
    )
}

/// What the OAuth callback answers: `text` for the person in the sign-in
/// window, `flash` for the settings page a same-window sign-in returns to.
pub(super) fn oauth_done(text: &str, flash: &str) -> String {
    layout(
        "Calendar connection",
        BodyAttrs {
            page: "oauth-done",
            message: Some(flash),
            ..Default::default()
        },
        None,
        html! { main { h1 { "Calendar connection" } p id="result" { (text) } } },
    )
}

/// One provider's part of the settings page.
pub(super) struct ProviderView {
    pub provider: Provider,
    /// The connection as the admin API shows it (`status`, `active`,
    /// `account`, `admin_consent_url`), if there is one.
    pub connection: Option<Value>,
    /// The calendars the owner can write to (connected ones only).
    pub calendars: Vec<CalendarSummary>,
    /// The calendar bookings go on (`primary` or an id).
    pub chosen: String,
    /// The chosen calendar's zone, as the provider reports it.
    pub zone: Option<String>,
    /// Why the calendars could not be shown.
    pub problem: Option<&'static str>,
}

fn label(p: Provider) -> &'static str {
    match p {
        Provider::Google => "Google Calendar",
        Provider::Microsoft => "Outlook Calendar",
    }
}

fn status_text(status: &str) -> &'static str {
    match status {
        "active" => "Connected",
        "expired" => "Expired — reconnect",
        "admin_approval_needed" => "Needs admin approval",
        _ => "Not connected",
    }
}

fn reason_text(reason: &str) -> &'static str {
    match reason {
        "booking_disabled" => "booking is turned off",
        "owner_not_connected" => "the calendar owner has not connected a calendar",
        "calendar_expired" => "the owner's calendar connection expired",
        "admin_approval_needed" => "the owner's organisation must approve callbook first",
        _ => "booking is not available",
    }
}

fn calendar_option(c: &CalendarSummary, chosen: &str) -> Markup {
    let value = if c.primary { "primary" } else { c.id.as_str() };
    let selected = chosen == value || chosen == c.id;
    html! {
        option value=(value) selected[selected] {
            @if c.primary { "Primary (" (c.name) ")" } @else { (c.name) }
        }
    }
}

fn provider_section(v: &ProviderView) -> Markup {
    let p = v.provider.as_str();
    let name = label(v.provider);
    let status = v
        .connection
        .as_ref()
        .and_then(|c| c["status"].as_str())
        .unwrap_or("none");
    let active = v
        .connection
        .as_ref()
        .is_some_and(|c| c["active"] == Value::Bool(true));
    let chosen_value = v
        .calendars
        .iter()
        .find(|c| v.chosen == c.id || (v.chosen == "primary" && c.primary))
        .map(|c| if c.primary { "primary" } else { c.id.as_str() })
        .unwrap_or(v.chosen.as_str());
    html! {
        section class="provider" id={"provider-" (p)} aria-labelledby={"heading-" (p)} data-status=(status) {
            h3 id={"heading-" (p)} { (name) }
            p { "Status: " span id={"status-" (p)} class={"status status-" (status)} { (status_text(status)) }
                @if active { " · " span id={"in-use-" (p)} { "used for bookings" } } }
            @if let Some(account) = v.connection.as_ref().and_then(|c| c["account"].as_str()) {
                p { "Account: " span id={"account-" (p)} { (account) } }
            }
            @if status == "admin_approval_needed" {
                @if let Some(url) = v.connection.as_ref().and_then(|c| c["admin_consent_url"].as_str()) {
                    p { "Your organisation must approve callbook before this calendar can be used. Send this link to an administrator: "
                        a id={"admin-consent-" (p)} href=(url) target="_blank" rel="noopener noreferrer" { "admin approval link" } }
                } @else {
                    p { "Your organisation must approve callbook before this calendar can be used. Ask an administrator, then reconnect." }
                }
            }
            @if status == "active" {
                p { "Timezone: " span id={"zone-" (p)} { (v.zone.as_deref().unwrap_or("unknown")) } }
                @if let Some(problem) = v.problem {
                    p class="error" { (problem) }
                } @else {
                    label for={"calendar-" (p)} { "Calendar to book on (" (name) ")" }
                    select id={"calendar-" (p)} name={"calendar-" (p)} data-calendar=(p) data-initial=(chosen_value) {
                        @for c in &v.calendars { (calendar_option(c, &v.chosen)) }
                    }
                }
                div {
                    button type="button" id={"disconnect-" (p)} data-disconnect=(p) data-done={(name) " disconnected."} { "Disconnect " (name) }
                }
            } @else {
                button type="button" id={"connect-" (p)} data-connect=(p) {
                    @if status == "none" { "Connect " (name) } @else { "Reconnect " (name) }
                }
            }
        }
    }
}

/// `/settings`: connections, the active-provider selector, campaigns.
pub(super) fn settings(
    user: &User,
    providers: &[ProviderView],
    campaigns: &[(Campaign, Value)],
    csrf: &str,
) -> String {
    let connected: Vec<&ProviderView> = providers
        .iter()
        .filter(|v| v.connection.is_some())
        .collect();
    let content = html! {
        main {
            h1 { "Calendar settings" }
            p { "Signed in as " strong { (user.name) } }
            p id="status" role="status" aria-live="polite" {}
            section id="connections" aria-labelledby="connections-heading" {
                h2 id="connections-heading" { "Calendar connections" }
                p { "Connect the calendar meetings are booked on. Sign-in opens in a new window." }
                @for v in providers { (provider_section(v)) }
                @if !connected.is_empty() {
                    fieldset id="active-provider" {
                        legend { "Calendar used for bookings" }
                        @for v in &connected {
                            @let p = v.provider.as_str();
                            @let on = v.connection.as_ref().is_some_and(|c| c["active"] == Value::Bool(true));
                            input type="radio" name="active_provider" id={"active-" (p)} value=(p) checked[on] data-initial[on];
                            label for={"active-" (p)} { (label(v.provider)) }
                        }
                    }
                    button type="button" id="save" { "Save" }
                }
            }
            section id="campaigns" aria-labelledby="campaigns-heading" {
                h2 id="campaigns-heading" { "Campaigns" }
                @if campaigns.is_empty() {
                    p { "None of your teams has a campaign yet." }
                } @else {
                    ul {
                        @for (c, state) in campaigns {
                            li {
                                a href={"/settings/campaigns/" (c.id)} id={"campaign-" (c.id)} { (c.name) }
                                " — booking "
                                @if state["effective"] == "on" { "on" } @else {
                                    "off (" (reason_text(state["reason"].as_str().unwrap_or_default())) ")"
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(
        "Calendar settings",
        BodyAttrs {
            page: "settings",
            ..Default::default()
        },
        Some(csrf),
        content,
    )
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
];

/// A labelled text or number input for `field`, with its error slot.
fn input(field: &str, text: &str, kind: &str, value: &str, hint: Option<&str>) -> Markup {
    let id = format!("f-{}", field.replace('.', "-"));
    let err = format!("err-{}", field.replace('.', "-"));
    html! {
        div {
            label for=(id) { (text) }
            @if let Some(h) = hint { small id={(id) "-hint"} { (h) } br; }
            input type=(kind) id=(id) name=(field) data-field=(field) value=(value)
                aria-describedby={(err) @if hint.is_some() { " " (id) "-hint" }};
            p class="error" id=(err) data-error-for=(field) aria-live="polite" hidden {}
        }
    }
}

fn field_str<'a>(v: &'a Value, path: &[&str]) -> String {
    let mut at: &'a Value = v;
    for p in path {
        at = &at[*p];
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `/settings/campaigns/{id}`: the Booking step. `owners` are the team
/// members who connected a calendar (and the current owner), each with
/// whether they did.
pub(super) fn campaign(
    user: &User,
    c: &Campaign,
    owners: &[(User, bool)],
    state: &Value,
    csrf: &str,
) -> String {
    let booking = c
        .booking
        .as_ref()
        .and_then(|b| serde_json::to_value(b).ok())
        .unwrap_or_else(default_booking);
    let enabled = c.booking.as_ref().is_some_and(|b| b.enabled);
    let days: Vec<&str> = booking["rules"]["window"]["days"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let kind = field_str(&booking, &["meeting", "type"]);
    let owner_name = owners
        .iter()
        .find(|(u, _)| u.id == c.owner)
        .map(|(u, _)| u.name.as_str())
        .unwrap_or(c.owner.as_str());
    let r = |f: &str| field_str(&booking, &["rules", f]);
    let content = html! {
        main {
            p { a href="/settings" { "← Calendar settings" } }
            h1 { "Booking: " (c.name) }
            p id="status" role="status" aria-live="polite" {}
            @if state["reason"] == "owner_not_connected" {
                div id="connect-first" class="prompt" role="alert" {
                    p { strong { "Connect a calendar first." } " " (owner_name) " has no calendar connected, so calls on this campaign do not book. " }
                    @if c.owner == user.id {
                        p { a id="connect-first-link" href="/settings#connections" { "Connect your calendar" } }
                    } @else {
                        p { "Ask " (owner_name) " to connect theirs from their settings, or choose another owner." }
                    }
                }
            } @else if state["effective"] == "on" {
                p id="booking-state" { "Booking is on: calls on this campaign book on " (owner_name) "'s calendar." }
            } @else {
                p id="booking-state" { "Booking is off: " (reason_text(state["reason"].as_str().unwrap_or_default())) "." }
            }
            form id="booking-form" novalidate {
                p class="error" data-error-for="form" aria-live="polite" hidden {}
                div {
                    input type="checkbox" id="f-enabled" name="enabled" data-field="enabled" checked[enabled];
                    label for="f-enabled" style="display:inline" { "Book meetings on calls" }
                }
                div {
                    label for="f-owner" { "Whose calendar" }
                    select id="f-owner" name="owner" data-field="owner" aria-describedby="err-owner" {
                        @for (u, connected) in owners {
                            option value=(u.id) selected[u.id == c.owner] {
                                (u.name) @if !connected { " (no calendar connected)" }
                            }
                        }
                    }
                    p class="error" id="err-owner" data-error-for="owner" aria-live="polite" hidden {}
                }
                (input("rules.length_minutes", "Meeting length (minutes)", "number", &r("length_minutes"), None))
                (input("rules.slot_step_minutes", "Start times every (minutes)", "number", &r("slot_step_minutes"), None))
                (input("rules.timezone", "Time zone of the booking window", "text", &r("timezone"), Some("an IANA zone, such as America/New_York")))
                fieldset data-field="rules.window.days" aria-describedby="err-rules-window-days" {
                    legend { "Days meetings may be booked" }
                    @for (code, name) in DAYS {
                        input type="checkbox" name="day" id={"day-" (code)} value=(code) checked[days.contains(&code)];
                        label for={"day-" (code)} { (name) }
                    }
                    p class="error" id="err-rules-window-days" data-error-for="rules.window.days" aria-live="polite" hidden {}
                }
                (input("rules.window.start", "Window starts (HH:MM)", "text", &field_str(&booking, &["rules", "window", "start"]), None))
                (input("rules.window.end", "Window ends (HH:MM)", "text", &field_str(&booking, &["rules", "window", "end"]), None))
                (input("rules.buffer_before_minutes", "Buffer before (minutes)", "number", &r("buffer_before_minutes"), None))
                (input("rules.buffer_after_minutes", "Buffer after (minutes)", "number", &r("buffer_after_minutes"), None))
                (input("rules.min_notice_minutes", "Minimum notice (minutes)", "number", &r("min_notice_minutes"), None))
                (input("rules.look_ahead_days", "Look ahead (days)", "number", &r("look_ahead_days"), None))
                div {
                    label for="f-meeting-type" { "Meeting type" }
                    select id="f-meeting-type" name="meeting.type" data-field="meeting.type" aria-describedby="err-meeting" {
                        option value="video" selected[kind == "video"] { "Video (Meet or Teams link)" }
                        option value="phone" selected[kind == "phone"] { "Phone call" }
                        option value="in_person" selected[kind == "in_person"] { "In person" }
                    }
                    p class="error" id="err-meeting" data-error-for="meeting" aria-live="polite" hidden {}
                }
                div data-meeting="phone" {
                    (input("meeting.number", "Phone number to call", "text", &field_str(&booking, &["meeting", "number"]), None))
                }
                div data-meeting="in_person" {
                    (input("meeting.address", "Address", "text", &field_str(&booking, &["meeting", "address"]), None))
                }
                (input("title", "Invite title", "text", &field_str(&booking, &["title"]), Some("tokens: {recipient.firstName}, {recipient.lastName}, {recipient.fullName}, {recipient.email}, {owner.name}, {campaign.name}, {meeting.minutes}")))
                div {
                    label for="f-description" { "Invite description" }
                    textarea id="f-description" name="description" data-field="description" rows="3" aria-describedby="err-description" {
                        (field_str(&booking, &["description"]))
                    }
                    p class="error" id="err-description" data-error-for="description" aria-live="polite" hidden {}
                }
                (input("default_country", "Country for national numbers (optional)", "text", &field_str(&booking, &["default_country"]), Some("two letters, such as US")))
                button type="submit" id="save-booking" { "Save" }
            }
        }
    };
    layout(
        &format!("Booking: {}", c.name),
        BodyAttrs {
            page: "campaign",
            campaign: Some(&c.id),
            ..Default::default()
        },
        Some(csrf),
        content,
    )
}

/// What a campaign with no booking settings starts from.
fn default_booking() -> Value {
    serde_json::json!({
        "enabled": false,
        "rules": {"timezone": "UTC", "length_minutes": 30, "slot_step_minutes": 30,
                  "window": {"days": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "17:00"},
                  "buffer_before_minutes": 0, "buffer_after_minutes": 0,
                  "min_notice_minutes": 120, "look_ahead_days": 14},
        "meeting": {"type": "video"},
        "title": "{owner.name} <> {recipient.fullName}",
        "description": ""
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_escaped() {
        let user = User {
            id: "x".into(),
            name: "<script>alert(1)</script>".into(),
            email: None,
        };
        let page = settings(&user, &[], &[], "tok\"en");
        assert!(!page.contains("<script>alert(1)"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("content=\"tok&quot;en\""));
    }
}
