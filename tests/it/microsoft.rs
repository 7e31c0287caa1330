//! The Graph client against the Microsoft emulator, over real HTTP: work and
//! personal accounts, token rotation, paging, zones, expiry.

use callbook::calendar::emulator::{serve_local, MicrosoftEmulator, MsAccountSpec};
use callbook::calendar::microsoft::{MicrosoftCalendar, OnRotate};
use callbook::calendar::{CalendarError, CalendarProvider, NewEvent};
use callbook::dialog::{MeetingKind, Video};
use callbook::harness::{ms_emulator_endpoints, EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET};
use callbook::schedule::Interval;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub(crate) const OWNER: &str = "owner@contoso.example";

/// A Graph client on one emulated account; `rotated` collects every refresh
/// token handed over for storage.
pub(crate) struct Setup {
    pub emu: MicrosoftEmulator,
    pub addr: std::net::SocketAddr,
    pub client: MicrosoftCalendar,
    pub rotated: Arc<Mutex<Vec<String>>>,
    _stop: tokio_util::sync::DropGuard,
}

pub(crate) async fn setup(work: bool, zone: &str) -> Setup {
    let emu = MicrosoftEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(MsAccountSpec {
        email: OWNER.into(),
        refresh_token: "ms-rt".into(),
        windows_zone: zone.into(),
        work,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let rotated = Arc::new(Mutex::new(Vec::new()));
    let sink = rotated.clone();
    let on_rotate: OnRotate = Arc::new(move |t: SecretString| {
        sink.lock().unwrap().push(t.expose_secret().to_string());
        Box::pin(async {})
    });
    let client = MicrosoftCalendar::new(
        callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
        ms_emulator_endpoints(addr),
        "primary".into(),
        SecretString::from("ms-rt"),
        Some(on_rotate),
    );
    Setup {
        emu,
        addr,
        client,
        rotated,
        _stop: stop.drop_guard(),
    }
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(crate) fn event(booking: &str) -> NewEvent {
    NewEvent {
        booking_id: booking.into(),
        slot: Interval::new(t("2026-12-01T19:00:00Z"), t("2026-12-01T19:30:00Z")),
        timezone: chrono_tz::America::New_York,
        title: "Alex <> Jane".into(),
        description: "Intro".into(),
        attendee_email: "jane@example.com".into(),
        attendee_name: "Jane".into(),
        meeting: MeetingKind::Video,
    }
}

#[tokio::test]
async fn a_work_account_books_with_a_teams_link_in_the_owners_zone() {
    let s = setup(true, "Eastern Standard Time").await;
    let info = s.client.calendar_info().await.unwrap();
    assert_eq!(info.timezone, Some(chrono_tz::America::New_York));
    assert_eq!(info.video, Video::Available("Microsoft Teams".into()));
    let made = s.client.create_event(&event("bk-1")).await.unwrap();
    assert!(made
        .join_link
        .unwrap()
        .starts_with("https://teams.microsoft.com/"));
    assert_eq!(made.slot.start, t("2026-12-01T19:00:00Z"));
}

#[tokio::test]
async fn a_personal_account_books_without_a_link_and_never_asks_for_one() {
    let s = setup(false, "Pacific Standard Time").await;
    let info = s.client.calendar_info().await.unwrap();
    assert_eq!(info.video, Video::Unavailable);
    let made = s.client.create_event(&event("bk-2")).await.unwrap();
    assert_eq!(made.join_link, None);
    assert_eq!(s.emu.events(OWNER)[0].attendees, vec!["jane@example.com"]);
}

#[tokio::test]
async fn rotated_refresh_tokens_are_handed_over_for_storage() {
    let s = setup(true, "Eastern Standard Time").await;
    s.client.calendar_info().await.unwrap();
    let rotated = s.rotated.lock().unwrap().clone();
    assert_eq!(rotated.len(), 1);
    assert_eq!(Some(rotated[0].clone()), s.emu.current_refresh_token(OWNER));
}

#[tokio::test]
async fn busy_time_pages_through_next_links_and_skips_free_and_cancelled() {
    let s = setup(true, "Eastern Standard Time").await;
    for (i, show) in [
        "busy",
        "tentative",
        "free",
        "workingElsewhere",
        "oof",
        "busy",
        "busy",
    ]
    .iter()
    .enumerate()
    {
        let start = t("2026-12-01T14:00:00Z") + chrono::Duration::hours(i as i64);
        s.emu.add_event(
            OWNER,
            "x",
            Interval::new(start, start + chrono::Duration::minutes(30)),
            show,
        );
    }
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    let busy = s.client.free_busy(day).await.unwrap();
    // 7 events over 3 pages; free and workingElsewhere are not busy.
    assert_eq!(busy.len(), 5);
    assert_eq!(busy[0].start, t("2026-12-01T14:00:00Z"));
    // A cancelled meeting frees its time.
    let made = s.client.create_event(&event("bk-3")).await.unwrap();
    s.client.cancel_event(&made.event_id).await.unwrap();
    assert_eq!(s.client.free_busy(day).await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_retried_create_with_the_same_transaction_id_is_one_event() {
    let s = setup(true, "Eastern Standard Time").await;
    let a = s.client.create_event(&event("bk-4")).await.unwrap();
    let b = s.client.create_event(&event("bk-4")).await.unwrap();
    assert_eq!(a.event_id, b.event_id);
    assert_eq!(s.emu.events(OWNER).len(), 1);
}

#[tokio::test]
async fn a_move_keeps_the_event_and_its_link() {
    let s = setup(true, "Eastern Standard Time").await;
    let made = s.client.create_event(&event("bk-5")).await.unwrap();
    let to = Interval::new(t("2026-12-02T15:00:00Z"), t("2026-12-02T15:30:00Z"));
    let moved = s
        .client
        .move_event(&made.event_id, to, chrono_tz::America::New_York)
        .await
        .unwrap();
    assert_eq!(moved.event_id, made.event_id);
    assert_eq!(moved.slot, to);
    assert_eq!(moved.join_link, made.join_link);
}

#[tokio::test]
async fn a_mailbox_set_to_an_iana_zone_is_read_as_that_zone() {
    let s = setup(true, "Australia/Sydney").await;
    let info = s.client.calendar_info().await.unwrap();
    assert_eq!(info.timezone, Some(chrono_tz::Australia::Sydney));
    assert_eq!(info.zone_unresolved, None);
    s.client.free_busy(day_of("2026-12-01")).await.unwrap();
}

#[tokio::test]
async fn an_unresolvable_mailbox_zone_is_no_zone_and_says_so_but_calls_still_work() {
    let s = setup(true, "Customized Time Zone").await;
    let info = s.client.calendar_info().await.unwrap();
    assert_eq!(info.timezone, None, "never a guess");
    assert_eq!(
        info.zone_unresolved.as_deref(),
        Some("Customized Time Zone")
    );
    s.client.free_busy(day_of("2026-12-01")).await.unwrap();
    let made = s.client.create_event(&event("b-zone")).await.unwrap();
    assert!(made.join_link.is_some());
}

fn day_of(d: &str) -> Interval {
    let start = t(&format!("{d}T00:00:00Z"));
    Interval::new(start, start + chrono::Duration::days(1))
}

#[tokio::test]
async fn a_revoked_grant_is_expired() {
    let s = setup(true, "Eastern Standard Time").await;
    s.emu.revoke(OWNER);
    assert_eq!(s.client.calendar_info().await, Err(CalendarError::Expired));
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_restart_through_the_state_file() {
    use base64::Engine;
    use callbook::call::Calendars;
    use callbook::harness::emulator_endpoints;
    use callbook::store::secrets::TokenCipher;
    use callbook::store::state_file::StateFile;
    use callbook::store::{Connection, MemoryStore, Provider, Store};

    let emu = MicrosoftEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(MsAccountSpec {
        email: OWNER.into(),
        refresh_token: "ms-rt".into(),
        windows_zone: "Eastern Standard Time".into(),
        work: true,
    });
    let stop = CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let _stop = stop.drop_guard();
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let dir = std::env::temp_dir().join(format!("callbook-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let open_store = || async {
        let cipher = TokenCipher::from_base64(&key).unwrap();
        Arc::new(
            MemoryStore::new()
                .with_state_file(StateFile::new(path.clone(), cipher))
                .await
                .unwrap(),
        )
    };
    let calendars_over = |store: Arc<MemoryStore>| {
        Calendars::new(
            callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
            // Google is not used here.
            emulator_endpoints(addr),
            ms_emulator_endpoints(addr),
            store,
        )
    };

    let store = open_store().await;
    store
        .put_connection(
            "alex",
            Connection::new(Provider::Microsoft, SecretString::from("ms-rt")),
        )
        .await
        .unwrap();
    let conn = store.connection("alex").await.unwrap().unwrap();
    let calendars = calendars_over(store.clone());
    calendars
        .for_user("alex", &conn)
        .calendar_info()
        .await
        .unwrap();
    // The first token is dead now: only the rotated one works.
    let rotated = emu.current_refresh_token(OWNER).unwrap();
    assert_ne!(rotated, "ms-rt");

    // Restart: a new store from the same file has the rotated token, and a
    // new client refreshes with it.
    drop(calendars);
    let store = open_store().await;
    let conn = store.connection("alex").await.unwrap().unwrap();
    assert_eq!(conn.refresh_token.expose_secret(), rotated);
    let calendars = calendars_over(store.clone());
    calendars
        .for_user("alex", &conn)
        .calendar_info()
        .await
        .unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains(&rotated));
}

#[tokio::test]
async fn a_personal_tenant_never_gets_teams_even_if_the_calendar_lists_it() {
    use callbook::calendar::oauth::MICROSOFT_PERSONAL_TENANT;
    // The emulated calendar offers teamsForBusiness (a work account), but
    // the token said the consumer tenant: either signal means no Teams.
    let s = setup(true, "Eastern Standard Time").await;
    let endpoints = ms_emulator_endpoints(s.addr);
    let client = MicrosoftCalendar::new(
        callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap(),
        endpoints,
        "primary".into(),
        SecretString::from("ms-rt"),
        None,
    )
    .with_tenant(Some(MICROSOFT_PERSONAL_TENANT));
    assert_eq!(
        client.calendar_info().await.unwrap().video,
        Video::Unavailable
    );
    let made = client.create_event(&event("bk-tenant")).await.unwrap();
    assert_eq!(made.join_link, None);
}

fn date(d: &str) -> chrono::NaiveDate {
    d.parse().unwrap()
}

/// Busy time over 30 November to 5 December (UTC) with one all-day event
/// on 2 December in a mailbox set to `zone`.
async fn all_day_busy(zone: &str) -> Vec<Interval> {
    let s = setup(true, zone).await;
    s.emu
        .add_all_day_event(OWNER, "Day off", date("2026-12-02"), 1, "oof");
    let window = Interval::new(t("2026-11-30T00:00:00Z"), t("2026-12-05T00:00:00Z"));
    s.client.free_busy(window).await.unwrap()
}

#[tokio::test]
async fn an_all_day_event_is_the_owners_local_day_in_los_angeles() {
    let busy = all_day_busy("Pacific Standard Time").await;
    assert_eq!(
        busy,
        vec![Interval::new(
            t("2026-12-02T08:00:00Z"),
            t("2026-12-03T08:00:00Z")
        )]
    );
}

#[tokio::test]
async fn an_all_day_event_is_the_owners_local_day_in_sydney_from_an_iana_mailbox() {
    let busy = all_day_busy("Australia/Sydney").await;
    assert_eq!(
        busy,
        vec![Interval::new(
            t("2026-12-01T13:00:00Z"),
            t("2026-12-02T13:00:00Z")
        )]
    );
}

#[tokio::test]
async fn an_all_day_event_in_an_unknown_zone_covers_every_zones_reading_of_the_day() {
    let busy = all_day_busy("Customized Time Zone").await;
    assert_eq!(
        busy,
        vec![Interval::new(
            t("2026-12-01T10:00:00Z"),
            t("2026-12-03T12:00:00Z")
        )]
    );
}

#[tokio::test]
async fn a_two_day_all_day_event_covers_both_local_days() {
    let s = setup(true, "Pacific Standard Time").await;
    s.emu
        .add_all_day_event(OWNER, "Conference", date("2026-12-02"), 2, "busy");
    let window = Interval::new(t("2026-12-03T12:00:00Z"), t("2026-12-03T13:00:00Z"));
    assert_eq!(
        s.client.free_busy(window).await.unwrap(),
        vec![Interval::new(
            t("2026-12-02T08:00:00Z"),
            t("2026-12-04T08:00:00Z")
        )]
    );
}

#[tokio::test]
async fn the_graph_emulator_honours_select_top_prefer_and_expand() {
    let s = setup(true, "Pacific Standard Time").await;
    let made = s.client.create_event(&event("b-raw")).await.unwrap();
    s.emu.add_event(
        OWNER,
        "Later",
        Interval::new(t("2026-12-01T21:00:00Z"), t("2026-12-01T22:00:00Z")),
        "free",
    );
    let base = format!("http://{}", s.addr);
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/common/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                s.emu.current_refresh_token(OWNER).unwrap().as_str(),
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
    let access = token["access_token"].as_str().unwrap();
    let cal = s.client.calendar_info().await.unwrap().calendar_id;
    let view: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1.0/me/calendars/{cal}/calendarView"))
        .query(&[
            ("startDateTime", "2026-12-01T00:00:00Z"),
            ("endDateTime", "2026-12-02T00:00:00Z"),
            ("$select", "start,end"),
            ("$top", "1"),
        ])
        .header("Prefer", "outlook.timezone=\"Pacific Standard Time\"")
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let value = view["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "$top");
    assert!(view["@odata.nextLink"].is_string());
    let ev = &value[0];
    assert_eq!(ev["id"], made.event_id.as_str());
    assert!(ev.get("showAs").is_none(), "not selected: {ev}");
    assert!(ev.get("subject").is_none(), "not selected: {ev}");
    assert_eq!(ev["start"]["timeZone"], "Pacific Standard Time");
    assert_eq!(ev["start"]["dateTime"], "2026-12-01T11:00:00.0000000");
    // Extended properties only with $expand.
    let filter = format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq '{}' and ep/value eq 'b-raw')",
        "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name callbookBookingId"
    );
    let list = |expand: bool| {
        let mut q = vec![("$filter", filter.clone())];
        if expand {
            q.push(("$expand", "singleValueExtendedProperties".to_string()));
        }
        reqwest::Client::new()
            .get(format!("{base}/v1.0/me/calendars/{cal}/events"))
            .query(&q)
            .bearer_auth(access)
            .send()
    };
    let plain: serde_json::Value = list(false).await.unwrap().json().await.unwrap();
    assert!(plain["value"][0]
        .get("singleValueExtendedProperties")
        .is_none());
    let expanded: serde_json::Value = list(true).await.unwrap().json().await.unwrap();
    assert!(expanded["value"][0]["singleValueExtendedProperties"].is_array());
}

#[tokio::test]
async fn a_weekly_all_day_series_is_each_occurrences_local_day() {
    let s = setup(true, "Pacific Standard Time").await;
    // Fridays off, four weeks; calendarView expands the series.
    s.emu
        .add_weekly_all_day_series(OWNER, "Fridays off", date("2026-12-04"), 1, 4, "oof");
    let window = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-22T00:00:00Z"));
    let busy = s.client.free_busy(window).await.unwrap();
    let fridays = ["2026-12-04", "2026-12-11", "2026-12-18"];
    assert_eq!(
        busy,
        fridays
            .iter()
            .map(|d| {
                let start = t(&format!("{d}T08:00:00Z"));
                Interval::new(start, start + chrono::Duration::days(1))
            })
            .collect::<Vec<_>>()
    );
}

/// What a ledger that lost its claims is rebuilt from: the events callbook
/// made (carrying their booking ids) in the window, across pages, not the
/// owner's own events nor cancelled ones; and one event by its id, gone
/// once cancelled.
#[tokio::test]
async fn tagged_events_are_listed_with_their_booking_ids_and_read_back_by_id() {
    let s = setup(true, "Eastern Standard Time").await;
    for i in 0..12 {
        let start = t("2026-12-01T13:00:00Z") + chrono::Duration::minutes(30 * i);
        s.emu.add_event(
            OWNER,
            "owner's own",
            Interval::new(start, start + chrono::Duration::minutes(15)),
            "busy",
        );
    }
    let kept = s.client.create_event(&event("bk-6")).await.unwrap();
    let mut second = event("bk-7");
    second.slot = Interval::new(t("2026-12-01T20:00:00Z"), t("2026-12-01T20:30:00Z"));
    let cancelled = s.client.create_event(&second).await.unwrap();
    s.client.cancel_event(&cancelled.event_id).await.unwrap();
    let day = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-02T00:00:00Z"));
    let tagged = s.client.tagged_events(day).await.unwrap();
    assert_eq!(tagged.len(), 1, "{tagged:?}");
    assert_eq!(tagged[0].booking_id, "bk-6");
    assert_eq!(tagged[0].event.event_id, kept.event_id);
    assert_eq!(tagged[0].event.slot, kept.slot);
    assert_eq!(
        s.client
            .event(&kept.event_id)
            .await
            .unwrap()
            .map(|e| e.slot),
        Some(kept.slot)
    );
    assert_eq!(s.client.event(&cancelled.event_id).await.unwrap(), None);
}

/// A call's load asks what the calendar is and its free/busy at once;
/// both need the calendar resolved (`/me/calendars`, the mailbox's zone),
/// which is asked once for both and kept for the calls that follow.
#[tokio::test]
async fn requests_at_once_resolve_the_calendar_once() {
    let s = setup(true, "Eastern Standard Time").await;
    let recorder = s.emu.recorder();
    recorder.start();
    let window = Interval::new(t("2026-12-01T00:00:00Z"), t("2026-12-08T00:00:00Z"));
    let (info, busy) = tokio::join!(s.client.calendar_info(), s.client.free_busy(window));
    assert_eq!(info.unwrap().timezone, Some(chrono_tz::America::New_York));
    busy.unwrap();
    s.client.free_busy(window).await.unwrap();
    let asked = recorder.take();
    let count = |suffix: &str| asked.iter().filter(|e| e.path.ends_with(suffix)).count();
    assert_eq!(count("/me/calendars"), 1, "{asked:#?}");
    assert_eq!(count("/mailboxSettings/timeZone"), 1, "{asked:#?}");
}
