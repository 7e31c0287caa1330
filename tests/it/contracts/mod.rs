//! The emulators and the clients held to the providers' own published
//! contracts (kept in `tests/contracts/`): every request the Google and
//! Graph clients send during real runs against the emulators, and every
//! answer the emulators give, is recorded on the wire and validated against
//! Google Calendar's discovery document and Graph's CSDL metadata. A
//! loosened request (an enum value outside the document, an unknown event
//! field, a `$select` the client then reads past) fails here.

mod google;
mod graph;

pub use callbook::calendar::emulator::Exchange;

use callbook::calendar::check::check_provider;
use callbook::calendar::emulator::google::{Endpoint, Fault};
use callbook::calendar::emulator::{serve_local, AccountSpec, GoogleEmulator};
use callbook::calendar::emulator::{MicrosoftEmulator, MsAccountSpec};
use callbook::calendar::google::GoogleCalendar;
use callbook::calendar::microsoft::MicrosoftCalendar;
use callbook::calendar::retry::RetryPolicy;
use callbook::calendar::{CalendarError, CalendarProvider, NewEvent};
use callbook::dialog::MeetingKind;
use callbook::harness::{
    emulator_endpoints, ms_emulator_endpoints, EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET,
};
use callbook::schedule::Interval;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const OWNER: &str = "owner@acme.example";

/// Short waits, so retried faults do not slow the run.
const QUICK: RetryPolicy = RetryPolicy {
    budget: Duration::from_secs(5),
    base: Duration::from_millis(5),
    cap: Duration::from_millis(20),
    max_attempts: 4,
};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day() -> Interval {
    Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"))
}

fn event(booking: &str, meeting: MeetingKind) -> NewEvent {
    NewEvent {
        booking_id: booking.into(),
        slot: Interval::new(t("2026-12-01T19:00:00Z"), t("2026-12-01T19:30:00Z")),
        timezone: chrono_tz::America::New_York,
        title: "Alex <> Jane".into(),
        description: "Intro".into(),
        attendee_email: "jane@example.com".into(),
        attendee_name: "Jane".into(),
        meeting,
    }
}

/// Every violation of the recorded exchanges, and how many exchanges each
/// endpoint (with its answer's status class) had.
struct Report {
    violations: Vec<String>,
    coverage: BTreeMap<String, usize>,
}

impl Report {
    fn of(
        exchanges: &[Exchange],
        check: fn(&Exchange) -> Vec<String>,
        name: fn(&Exchange) -> String,
    ) -> Self {
        let mut violations = Vec::new();
        let mut coverage = BTreeMap::new();
        for x in exchanges {
            violations.extend(check(x));
            let class = if (200..300).contains(&x.status) {
                "ok"
            } else {
                "error"
            };
            *coverage.entry(format!("{} {class}", name(x))).or_insert(0) += 1;
        }
        Self {
            violations,
            coverage,
        }
    }

    fn google(exchanges: &[Exchange]) -> Self {
        Self::of(exchanges, google::check, |x| {
            google::method_for(&x.method, &x.path)
                .map_or_else(|| format!("{} {}", x.method, x.path), |m| m.id.to_string())
        })
    }

    fn graph(exchanges: &[Exchange]) -> Self {
        Self::of(exchanges, graph::check, |x| {
            graph::op_for(&x.method, &x.path).map_or_else(
                || format!("{} {}", x.method, x.path),
                |op| format!("{op:?}"),
            )
        })
    }

    fn assert_clean(&self) {
        eprintln!("exchanges validated per endpoint: {:?}", self.coverage);
        assert!(
            self.violations.is_empty(),
            "{} violations of the published contract:\n{}\ncoverage: {:?}",
            self.violations.len(),
            self.violations.join("\n"),
            self.coverage
        );
    }

    fn assert_covers(&self, endpoints: &[&str]) {
        for e in endpoints {
            assert!(
                self.coverage.contains_key(*e),
                "{e} was never exercised: {:?}",
                self.coverage
            );
        }
    }
}

struct GoogleRun {
    emu: GoogleEmulator,
    client: GoogleCalendar,
    base: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn google_run() -> GoogleRun {
    let emu = GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(AccountSpec {
        email: OWNER.into(),
        refresh_token: "rt-1".into(),
        time_zone: "America/New_York".into(),
        meet: true,
    });
    emu.recorder().start();
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let client = GoogleCalendar::new(
        callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
        emulator_endpoints(addr),
        "primary".into(),
        SecretString::from("rt-1"),
    )
    .with_policy(QUICK);
    GoogleRun {
        emu,
        client,
        base: format!("http://{addr}"),
        _stop: stop.drop_guard(),
    }
}

struct GraphRun {
    emu: MicrosoftEmulator,
    client: MicrosoftCalendar,
    base: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn graph_run(work: bool, zone: &str) -> GraphRun {
    let emu = MicrosoftEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(MsAccountSpec {
        email: OWNER.into(),
        refresh_token: "ms-rt".into(),
        windows_zone: zone.into(),
        work,
    });
    emu.recorder().start();
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let client = MicrosoftCalendar::new(
        callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
        ms_emulator_endpoints(addr),
        "primary".into(),
        SecretString::from("ms-rt"),
        None,
    )
    .with_policy(QUICK);
    GraphRun {
        emu,
        client,
        base: format!("http://{addr}"),
        _stop: stop.drop_guard(),
    }
}

fn status(code: u16, reason: &'static str) -> Fault {
    Fault::Status {
        code,
        reason,
        retry_after: None,
    }
}

#[tokio::test]
async fn a_google_booking_day_holds_to_the_discovery_document_both_ways() {
    let g = google_run().await;
    let c = &g.client;
    g.emu.add_event(
        OWNER,
        "Standup",
        Interval::new(t("2026-12-01T15:00:00Z"), t("2026-12-01T15:30:00Z")),
    );
    c.list_calendars().await.unwrap();
    c.calendar_info().await.unwrap();
    c.free_busy(day()).await.unwrap();
    // Longer than one freeBusy query allows: split.
    c.free_busy(Interval::new(
        day().start,
        day().start + chrono::Duration::days(120),
    ))
    .await
    .unwrap();
    // A Meet link that is pending at first, read back until it succeeds.
    g.emu.meet_pending_for(OWNER, 1);
    let made = c
        .create_event(&event("0000aaaa-0001", MeetingKind::Video))
        .await
        .unwrap();
    assert!(made.join_link.is_some());
    // The same booking again: Google's 409, then the event read back.
    c.create_event(&event("0000aaaa-0001", MeetingKind::Video))
        .await
        .unwrap();
    assert!(c.find_booking("0000aaaa-0001").await.unwrap().is_some());
    assert!(c.find_booking("0000aaaa-0009").await.unwrap().is_none());
    let later = Interval::new(t("2026-12-01T20:00:00Z"), t("2026-12-01T20:30:00Z"));
    c.move_event(&made.event_id, later, chrono_tz::America::New_York)
        .await
        .unwrap();
    c.cancel_event(&made.event_id).await.unwrap();
    // Deleting again: 410, and the event read back as cancelled.
    c.cancel_event(&made.event_id).await.unwrap();
    let phone = MeetingKind::Phone {
        number: "+14155550123".into(),
    };
    c.create_event(&event("0000aaaa-0002", phone))
        .await
        .unwrap();
    let address = MeetingKind::InPerson {
        address: "1 Main St".into(),
    };
    c.create_event(&event("0000aaaa-0003", address))
        .await
        .unwrap();
    // Faults, each in Google's own shape.
    for (code, reason) in [
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
        (429, "rateLimitExceeded"),
        (500, "backendError"),
        (503, "backendError"),
    ] {
        g.emu
            .inject(OWNER, Endpoint::FreeBusy, status(code, reason), 1);
        c.free_busy(day()).await.unwrap();
    }
    g.emu.inject(
        OWNER,
        Endpoint::FreeBusy,
        Fault::CalendarError("notFound"),
        1,
    );
    assert!(c.free_busy(day()).await.is_err());
    g.emu
        .inject(OWNER, Endpoint::Insert, status(403, "quotaExceeded"), 1);
    assert!(matches!(
        c.create_event(&event("0000aaaa-0004", MeetingKind::Video))
            .await,
        Err(CalendarError::RateLimited { .. })
    ));
    g.emu
        .inject(OWNER, Endpoint::Patch, status(404, "notFound"), 1);
    assert!(c
        .move_event("missingevent", later, chrono_tz::America::New_York)
        .await
        .is_err());
    // An access token past its life: Google's 401, one refresh, the retry.
    g.emu.expire_access_tokens();
    c.free_busy(day()).await.unwrap();
    // The operator's check, writing its test event.
    let steps = check_provider(c, OWNER, day(), true, t("2026-11-30T12:00:00Z")).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");

    let exchanges = g.emu.recorder().take();
    // Only the Calendar API is kept; the token endpoint (secrets) is not.
    assert!(exchanges
        .iter()
        .all(|x| x.path.starts_with("/calendar/v3/")));
    let report = Report::google(&exchanges);
    report.assert_covers(&[
        "calendar.calendarList.list ok",
        "calendar.freebusy.query ok",
        "calendar.freebusy.query error",
        "calendar.events.insert ok",
        "calendar.events.insert error",
        "calendar.events.get ok",
        "calendar.events.get error",
        "calendar.events.patch ok",
        "calendar.events.delete ok",
        "calendar.events.delete error",
    ]);
    report.assert_clean();
}

#[tokio::test]
async fn an_outlook_booking_day_holds_to_the_graph_metadata_both_ways() {
    let m = graph_run(true, "Pacific Standard Time").await;
    let c = &m.client;
    let busy = |from: &str, to: &str| Interval::new(t(from), t(to));
    m.emu.add_event(
        OWNER,
        "Standup",
        busy("2026-12-01T17:00:00Z", "2026-12-01T17:30:00Z"),
        "busy",
    );
    m.emu.add_event(
        OWNER,
        "Maybe",
        busy("2026-12-01T18:00:00Z", "2026-12-01T18:30:00Z"),
        "tentative",
    );
    m.emu.add_event(
        OWNER,
        "Focus",
        busy("2026-12-01T21:00:00Z", "2026-12-01T21:30:00Z"),
        "free",
    );
    m.emu.add_event(
        OWNER,
        "Remote",
        busy("2026-12-01T22:00:00Z", "2026-12-01T22:30:00Z"),
        "workingElsewhere",
    );
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    m.emu
        .add_all_day_event(OWNER, "Day off", date("2026-12-02"), 1, "oof");
    m.emu
        .add_weekly_all_day_series(OWNER, "Fridays off", date("2026-12-04"), 1, 3, "oof");
    c.list_calendars().await.unwrap();
    c.calendar_info().await.unwrap();
    // Enough events for calendarView to page through @odata.nextLink.
    let busy_time = c
        .free_busy(Interval::new(
            day().start,
            day().start + chrono::Duration::days(21),
        ))
        .await
        .unwrap();
    let blocks =
        |from: &str, to: &str| busy_time.iter().any(|b| b.start < t(to) && t(from) < b.end);
    assert!(
        blocks("2026-12-01T17:00:00Z", "2026-12-01T17:30:00Z"),
        "busy"
    );
    assert!(
        blocks("2026-12-01T18:00:00Z", "2026-12-01T18:30:00Z"),
        "tentative"
    );
    assert!(
        !blocks("2026-12-01T21:00:00Z", "2026-12-01T21:30:00Z"),
        "free is not busy"
    );
    assert!(
        !blocks("2026-12-01T22:00:00Z", "2026-12-01T22:30:00Z"),
        "working elsewhere is not busy"
    );
    // The day off is the owner's day in Los Angeles.
    assert!(blocks("2026-12-02T08:00:00Z", "2026-12-03T08:00:00Z"));
    assert!(!blocks("2026-12-02T07:00:00Z", "2026-12-02T07:59:00Z"));
    let made = c
        .create_event(&event("b-teams", MeetingKind::Video))
        .await
        .unwrap();
    assert!(made.join_link.is_some());
    // A repeated transactionId, answered with the first event.
    c.create_event(&event("b-teams", MeetingKind::Video))
        .await
        .unwrap();
    // … or with a 409: the event is found by the booking id it carries.
    m.emu.conflict_on_repeated_transaction_id(OWNER);
    c.create_event(&event("b-teams", MeetingKind::Video))
        .await
        .unwrap();
    assert!(c.find_booking("b-teams").await.unwrap().is_some());
    // A Teams link that arrives only when the event is read back.
    m.emu.teams_link_after_reads(OWNER, 2);
    let late = c
        .create_event(&event("b-late", MeetingKind::Video))
        .await
        .unwrap();
    assert!(late.join_link.is_some());
    let later = Interval::new(t("2026-12-01T20:00:00Z"), t("2026-12-01T20:30:00Z"));
    c.move_event(&made.event_id, later, chrono_tz::America::Los_Angeles)
        .await
        .unwrap();
    c.cancel_event(&made.event_id).await.unwrap();
    c.cancel_event(&made.event_id).await.unwrap();
    let phone = MeetingKind::Phone {
        number: "+14155550123".into(),
    };
    c.create_event(&event("b-phone", phone)).await.unwrap();
    // Throttling and outages, in Graph's shape.
    for (code, reason) in [
        (429, "TooManyRequests"),
        (503, "ServiceNotAvailable"),
        (500, "InternalServerError"),
    ] {
        m.emu.inject(
            OWNER,
            Endpoint::FreeBusy,
            Fault::Status {
                code,
                reason,
                retry_after: Some(0),
            },
            1,
        );
        c.free_busy(day()).await.unwrap();
    }
    m.emu.inject(
        OWNER,
        Endpoint::Insert,
        status(400, "ErrorInvalidRequest"),
        1,
    );
    assert!(c
        .create_event(&event("b-refused", MeetingKind::Video))
        .await
        .is_err());
    // An access token past its life: Graph's 401, one refresh, the retry.
    m.emu.expire_access_tokens();
    c.free_busy(day()).await.unwrap();
    let steps = check_provider(c, OWNER, day(), true, t("2026-11-30T12:00:00Z")).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");

    // A personal account with an IANA mailbox zone: no Teams.
    let p = graph_run(false, "Australia/Sydney").await;
    p.client.calendar_info().await.unwrap();
    p.client.free_busy(day()).await.unwrap();
    p.client
        .create_event(&event("b-personal", MeetingKind::Video))
        .await
        .unwrap();

    let mut exchanges = m.emu.recorder().take();
    exchanges.extend(p.emu.recorder().take());
    assert!(exchanges.iter().all(|x| x.path.starts_with("/v1.0/")));
    let report = Report::graph(&exchanges);
    report.assert_covers(&[
        "ListCalendars ok",
        "MailboxTimeZone ok",
        "CalendarView ok",
        "CalendarView error",
        "CreateEvent ok",
        "CreateEvent error",
        "ListEvents ok",
        "GetEvent ok",
        "UpdateEvent ok",
        "DeleteEvent ok",
        "DeleteEvent error",
    ]);
    report.assert_clean();
}

#[tokio::test]
async fn a_whole_call_booking_on_google_holds_to_the_discovery_document() {
    let app = crate::helpers::spawn_app().await;
    app.google.recorder().start();
    let booked = crate::helpers::book(&app, "CAcontract0001").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    let report = Report::google(&app.google.recorder().take());
    report.assert_covers(&["calendar.freebusy.query ok", "calendar.events.insert ok"]);
    report.assert_clean();
}

#[tokio::test]
async fn every_fixture_replays_within_the_published_contracts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut google_x, mut graph_x) = (Vec::new(), Vec::new());
    for path in &files {
        let report = callbook::replay::Fixture::load(path)
            .unwrap()
            .run()
            .await
            .unwrap();
        for x in report.exchanges {
            if x.path.starts_with("/v1.0/") {
                graph_x.push(x);
            } else {
                google_x.push(x);
            }
        }
    }
    let google = Report::google(&google_x);
    google.assert_covers(&[
        "calendar.calendarList.list ok",
        "calendar.freebusy.query ok",
        "calendar.events.insert ok",
        "calendar.events.patch ok",
        "calendar.events.delete ok",
    ]);
    google.assert_clean();
    let graph = Report::graph(&graph_x);
    graph.assert_covers(&[
        "ListCalendars ok",
        "MailboxTimeZone ok",
        "CalendarView ok",
        "CreateEvent ok",
        "GetEvent ok",
    ]);
    graph.assert_clean();
}

// ---- Loosened requests fail -------------------------------------------

/// An access token for the emulated Google account.
async fn google_token(base: &str) -> String {
    let token: Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-1"),
            ("client_id", EMULATOR_CLIENT_ID),
            ("client_secret", EMULATOR_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

fn insert_body() -> Value {
    json!({
        "id": "0123456789abcdef",
        "summary": "Alex <> Jane",
        "start": {"dateTime": "2026-12-01T14:00:00-05:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-12-01T14:30:00-05:00", "timeZone": "America/New_York"},
    })
}

#[tokio::test]
async fn a_send_updates_value_outside_the_enum_is_refused_in_googles_shape_and_flagged() {
    let g = google_run().await;
    let token = google_token(&g.base).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/calendar/v3/calendars/primary/events", g.base))
        .query(&[("sendUpdates", "everyone")])
        .bearer_auth(&token)
        .json(&insert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let item = &body["error"]["errors"][0];
    assert_eq!(item["reason"], "invalidParameter", "{body}");
    assert_eq!(item["location"], "sendUpdates", "{body}");
    assert_eq!(item["locationType"], "parameter", "{body}");
    assert_eq!(body["error"]["code"], 400);
    assert!(g.emu.events(OWNER).is_empty(), "nothing written");
    let report = Report::google(&g.emu.recorder().take());
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("query sendUpdates: \"everyone\" is not one of")),
        "{:?}",
        report.violations
    );
}

#[tokio::test]
async fn a_min_access_role_outside_the_enum_is_refused_and_flagged() {
    let g = google_run().await;
    let token = google_token(&g.base).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/calendar/v3/users/me/calendarList", g.base))
        .query(&[("minAccessRole", "editor")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["errors"][0]["reason"], "invalidParameter",
        "{body}"
    );
    assert_eq!(
        body["error"]["errors"][0]["location"], "minAccessRole",
        "{body}"
    );
    let report = Report::google(&g.emu.recorder().take());
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("query minAccessRole: \"editor\" is not one of")),
        "{:?}",
        report.violations
    );
}

#[tokio::test]
async fn a_conference_data_version_out_of_range_is_refused_and_flagged() {
    let g = google_run().await;
    let token = google_token(&g.base).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/calendar/v3/calendars/primary/events", g.base))
        .query(&[("conferenceDataVersion", "2")])
        .bearer_auth(&token)
        .json(&insert_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["errors"][0]["reason"], "invalidParameter",
        "{body}"
    );
    assert_eq!(
        body["error"]["errors"][0]["location"], "conferenceDataVersion",
        "{body}"
    );
    let report = Report::google(&g.emu.recorder().take());
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("conferenceDataVersion: 2 outside [\"0\", \"1\"]")),
        "{:?}",
        report.violations
    );
}

#[tokio::test]
async fn an_unknown_event_field_or_a_missing_required_one_is_flagged_for_google() {
    let mut body = insert_body();
    body["summry"] = json!("typo");
    body.as_object_mut().unwrap().remove("end");
    let x = Exchange {
        method: "POST".into(),
        path: "/calendar/v3/calendars/primary/events".into(),
        query: vec![("sendUpdates".into(), "all".into())],
        prefer: None,
        request: Some(body),
        status: 400,
        response: Some(
            json!({"error": {"code": 400, "message": "Missing end time.",
            "errors": [{"domain": "global", "reason": "required", "message": "Missing end time."}]}}),
        ),
    };
    let v = google::check(&x);
    assert!(
        v.iter().any(|v| v.contains("unknown field summry")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| v.contains("end is required by calendar.events.insert")),
        "{v:?}"
    );
    assert_eq!(v.len(), 2, "{v:?}");
}

#[tokio::test]
async fn loosened_graph_requests_are_flagged() {
    let x = |query: Vec<(&str, &str)>, request: Option<Value>, method: &str, path: &str| Exchange {
        method: method.into(),
        path: path.into(),
        query: query
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        prefer: Some("outlook.timezone=\"UTC\"".into()),
        request,
        status: 400,
        response: Some(json!({"error": {"code": "BadRequest", "message": "refused"}})),
    };
    // A $select naming what event does not have, and no time window.
    let view = graph::check(&x(
        vec![("$select", "start,end,showas")],
        None,
        "GET",
        "/v1.0/me/calendars/AAMk/calendarView",
    ));
    assert!(
        view.iter().any(|v| v.contains("$select names \"showas\"")),
        "{view:?}"
    );
    assert!(
        view.iter()
            .any(|v| v.contains("calendarView needs startDateTime")),
        "{view:?}"
    );
    // An unknown event field, a showAs outside freeBusyStatus, a time without dateTime.
    let create = graph::check(&x(
        vec![],
        Some(
            json!({"subjet": "typo", "showAs": "maybe", "start": {"timeZone": "UTC"},
                    "end": {"dateTime": "2026-12-01T19:30:00", "timeZone": "UTC"}}),
        ),
        "POST",
        "/v1.0/me/calendars/AAMk/events",
    ));
    assert!(
        create
            .iter()
            .any(|v| v.contains("event has no property subjet")),
        "{create:?}"
    );
    assert!(
        create
            .iter()
            .any(|v| v.contains("\"maybe\" is not a member of freeBusyStatus")),
        "{create:?}"
    );
    assert!(
        create
            .iter()
            .any(|v| v.contains("dateTimeTimeZone without dateTime")),
        "{create:?}"
    );
    assert_eq!(create.len(), 3, "{create:?}");
}

#[tokio::test]
async fn graph_answers_only_what_was_selected_so_a_client_dropping_show_as_would_see_none() {
    let m = graph_run(true, "Eastern Standard Time").await;
    let free = Interval::new(t("2026-12-01T19:00:00Z"), t("2026-12-01T20:00:00Z"));
    m.emu.add_event(OWNER, "Lunch walk", free, "free");
    // The client selects showAs: time shown free stays free.
    assert!(m.client.free_busy(day()).await.unwrap().is_empty());
    let cal = m.client.calendar_info().await.unwrap().calendar_id;
    m.emu.recorder().take();
    // The same query without showAs: the answer has none, so every event
    // would count as busy.
    let token: Value = reqwest::Client::new()
        .post(format!("{}/common/oauth2/v2.0/token", m.base))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                m.emu.current_refresh_token(OWNER).unwrap().as_str(),
            ),
            ("client_id", EMULATOR_CLIENT_ID),
            ("client_secret", EMULATOR_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let view: Value = reqwest::Client::new()
        .get(format!("{}/v1.0/me/calendars/{cal}/calendarView", m.base))
        .query(&[
            ("startDateTime", "2026-12-01T00:00:00Z"),
            ("endDateTime", "2026-12-02T00:00:00Z"),
            ("$select", "start,end,isCancelled"),
        ])
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["value"][0].get("showAs").is_none(), "{view}");
    // And the answer itself holds to the contract ($select honoured).
    Report::graph(&m.emu.recorder().take()).assert_clean();
}

#[tokio::test]
async fn a_select_naming_what_event_lacks_is_refused_as_graph_does_and_flagged() {
    let m = graph_run(true, "Eastern Standard Time").await;
    let cal = m.client.calendar_info().await.unwrap().calendar_id;
    let token: Value = reqwest::Client::new()
        .post(format!("{}/common/oauth2/v2.0/token", m.base))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                m.emu.current_refresh_token(OWNER).unwrap().as_str(),
            ),
            ("client_id", EMULATOR_CLIENT_ID),
            ("client_secret", EMULATOR_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    m.emu.recorder().take();
    let resp = reqwest::Client::new()
        .get(format!("{}/v1.0/me/calendars/{cal}/calendarView", m.base))
        .query(&[
            ("startDateTime", "2026-12-01T00:00:00Z"),
            ("endDateTime", "2026-12-02T00:00:00Z"),
            ("$select", "start,end,freeBusy"),
        ])
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find a property named 'freeBusy' on type 'microsoft.graph.event'"),
        "{body}"
    );
    let report = Report::graph(&m.emu.recorder().take());
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(
        report.violations[0].contains("$select names \"freeBusy\""),
        "{:?}",
        report.violations
    );
}

#[test]
fn the_graph_emulator_knows_event_as_the_metadata_declares_it() {
    use callbook::calendar::emulator::microsoft::{EVENT_NAVIGATION, EVENT_PROPERTIES};
    let model = graph::model();
    let mut declared: Vec<&str> = ["event", "outlookItem", "entity"]
        .iter()
        .flat_map(|t| model.types[*t].props.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    declared.sort_unstable();
    let mut known = EVENT_PROPERTIES.to_vec();
    known.sort_unstable();
    assert_eq!(known, declared);
    let mut nav: Vec<&str> = model.types["event"]
        .nav
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    nav.sort_unstable();
    let mut known_nav = EVENT_NAVIGATION.to_vec();
    known_nav.sort_unstable();
    assert_eq!(known_nav, nav);
}

#[test]
fn an_emulator_answer_beyond_select_or_expand_is_flagged() {
    let x = Exchange {
        method: "GET".into(),
        path: "/v1.0/me/events/AAMk1".into(),
        query: vec![("$select".into(), "isOnlineMeeting,onlineMeeting".into())],
        prefer: None,
        request: None,
        status: 200,
        response: Some(
            json!({"id": "AAMk1", "isOnlineMeeting": true, "onlineMeeting": {"joinUrl": "https://teams.example/j"},
                              "showAs": "busy", "singleValueExtendedProperties": [{"id": "x", "value": "y"}]}),
        ),
    };
    let v = graph::check(&x);
    assert!(
        v.iter()
            .any(|v| v.contains("showAs: answered though not in $select")),
        "{v:?}"
    );
    assert!(
        v.iter().any(|v| v.contains(
            "singleValueExtendedProperties: navigation property answered without $expand"
        )),
        "{v:?}"
    );
    assert_eq!(v.len(), 2, "{v:?}");
}

#[test]
fn the_kept_contracts_describe_every_endpoint_callbook_calls() {
    let doc = google::discovery();
    assert_eq!(doc["id"], "calendar:v3");
    for (method, path, id) in [
        (
            "GET",
            "/calendar/v3/users/me/calendarList",
            "calendar.calendarList.list",
        ),
        ("POST", "/calendar/v3/freeBusy", "calendar.freebusy.query"),
        (
            "POST",
            "/calendar/v3/calendars/primary/events",
            "calendar.events.insert",
        ),
        (
            "GET",
            "/calendar/v3/calendars/primary/events/abcde",
            "calendar.events.get",
        ),
        (
            "PATCH",
            "/calendar/v3/calendars/primary/events/abcde",
            "calendar.events.patch",
        ),
        (
            "DELETE",
            "/calendar/v3/calendars/primary/events/abcde",
            "calendar.events.delete",
        ),
    ] {
        assert_eq!(
            google::method_for(method, path).map(|m| m.id),
            Some(id),
            "{method} {path}"
        );
    }
    let model = graph::model();
    for ty in [
        "event",
        "calendar",
        "dateTimeTimeZone",
        "attendee",
        "mailboxSettings",
        "singleValueLegacyExtendedProperty",
    ] {
        assert!(model.types.contains_key(ty), "{ty}");
    }
    assert_eq!(
        model.property("event", "showAs"),
        Some(("freeBusyStatus", true))
    );
    assert_eq!(
        model.property("event", "id"),
        Some(("Edm.String", false)),
        "from entity"
    );
    assert_eq!(
        model.property("attendee", "emailAddress"),
        Some(("emailAddress", true)),
        "from recipient"
    );
    let (members, _) = &model.enums["freeBusyStatus"];
    assert_eq!(
        members,
        &[
            "unknown",
            "free",
            "tentative",
            "busy",
            "oof",
            "workingElsewhere"
        ]
    );
}
