//! The booking saga under faults, over real HTTP against the emulator and
//! (where the ledger is shared) a real `redis-server`: a slot whose event
//! may exist is never released; the reconciler settles it; a hold whose
//! lease runs short is extended before the write; a hold that lapsed and
//! was taken during the write is undone, not reported booked.

use crate::helpers::{of_kind, scrape, start_call, to_proposal, tuesday_morning};
use callbook::calendar::emulator::google::{Endpoint, Fault};
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, Options, RedisServer};
use callbook::ledger::{Claim, Ledger, RedisLedger, HOLD_TTL};
use callbook::schedule::Interval;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;

const OWNER: &str = "alex@callbook.example";
const CALENDAR: &str = "google:alex@callbook.example";

fn whole_look_ahead() -> Interval {
    let t = tuesday_morning();
    Interval::new(t - Duration::days(30), t + Duration::days(60))
}

/// One callbook on the default config whose ledger is a real Redis.
async fn on_redis(server: &RedisServer) -> Harness {
    on_redis_with(server, Options::default()).await
}

async fn on_redis_with(server: &RedisServer, options: Options) -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let ledger: Arc<dyn Ledger> = Arc::new(
        RedisLedger::connect(&server.url, "callbook:saga:")
            .await
            .unwrap(),
    );
    Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators,
        ledger,
        Arc::new(prov.into_store()),
        options,
    )
    .await
    .unwrap()
}

async fn claims(app: &Harness) -> Vec<Claim> {
    app.ledger
        .claims(CALENDAR, whole_look_ahead(), app.clock.now())
        .await
        .unwrap()
}

fn statuses(frames: &[Value]) -> Vec<String> {
    of_kind(frames, "booking")
        .iter()
        .map(|f| f["booking"]["status"].as_str().unwrap().to_string())
        .collect()
}

/// The start of the last slot proposed in `frames`.
fn proposed(frames: &[Value]) -> Value {
    of_kind(frames, "booking")
        .into_iter()
        .rfind(|f| f["booking"]["status"] == "proposed")
        .expect("a proposal")["booking"]["start"]
        .clone()
}

/// The `failed` frame's reason and what the caller heard with it.
fn failure(frames: &[Value]) -> (String, String) {
    let reason = frames
        .iter()
        .find(|f| f["booking"]["status"] == "failed")
        .map(|f| {
            f["booking"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let said = frames
        .iter()
        .filter_map(|f| f["say"]["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (reason, said)
}

fn booked_events(app: &Harness) -> Vec<callbook::calendar::emulator::google::StoredEvent> {
    app.google
        .events(OWNER)
        .into_iter()
        .filter(|e| e.booking_id.is_some() && e.status != "cancelled")
        .collect()
}

/// Reads of events fail for good (a final 400, so no retry waits): the
/// create's own look-up, its read-back and the reconciler's all fail.
fn reads_fail(app: &Harness) {
    refuse(app, Endpoint::Get);
}

/// Every request to `endpoint` gets a final 400 from now on.
fn refuse(app: &Harness, endpoint: Endpoint) {
    let fault = Fault::Status {
        code: 400,
        reason: "badRequest",
        retry_after: None,
    };
    app.google.inject(OWNER, endpoint, fault, u32::MAX);
}

/// The create's answer is lost on its last attempt although the event was
/// stored, and reading it back fails: the caller hears the calendar did not
/// confirm in time and the invite comes if it went through
/// (`outcome_unknown`), and the slot stays held (marked unknown) so nobody
/// else is offered it; once the provider answers again the reconciler finds the
/// event and commits the claim with the event's id.
#[tokio::test]
async fn a_create_lost_on_its_last_attempt_keeps_the_slot_until_the_reconciler_finds_the_event() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    // Free/busy does not show the event yet: only the ledger covers it.
    app.google
        .lag_free_busy(OWNER, std::time::Duration::from_secs(3600));
    let mut a = start_call(&app, "CA0000000000000000000000saga00001").await;
    let slot = proposed(&to_proposal(&mut a).await);
    // The first insert is stored, its answer lost; the retry finds the id
    // taken, and every read of the event fails.
    app.google
        .inject(OWNER, Endpoint::Insert, Fault::CommitThenDrop, 1);
    reads_fail(&app);
    a.send(&frames::transcript("yes")).await.unwrap();
    let got = a.settle().await.unwrap();
    assert_eq!(statuses(&got), vec!["failed"], "{got:?}");
    // The caller is not told it failed: it may have gone through.
    let (reason, said) = failure(&got);
    assert_eq!(reason, "outcome_unknown");
    assert!(said.contains("If it went through"), "{said}");
    assert_eq!(booked_events(&app).len(), 1, "the event was stored");
    let held = claims(&app).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].unknown && !held[0].committed, "{held:?}");

    // Another caller is not offered the slot while its event may exist.
    let mut b = start_call(&app, "CA0000000000000000000000saga00002").await;
    let offered = proposed(&to_proposal(&mut b).await);
    assert_ne!(offered, slot);
    assert_eq!(claims(&app).await.len(), 1, "the reconciler could not read");

    // The provider answers again: the next load reconciles.
    app.google.clear_faults();
    let mut c = start_call(&app, "CA0000000000000000000000saga00003").await;
    let offered = proposed(&to_proposal(&mut c).await);
    assert_ne!(offered, slot, "the slot is booked");
    let settled = claims(&app).await;
    let event = &booked_events(&app)[0];
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert!(settled[0].committed && !settled[0].unknown, "{settled:?}");
    assert_eq!(settled[0].event_id.as_deref(), Some(event.id.as_str()));
    // The first call's outcomes say how it ended: failed (outcome unknown),
    // then booked, with the event.
    let records = outcomes_of(&app, "CA0000000000000000000000saga00001", 2).await;
    assert_eq!(records[1].status.as_str(), "failed");
    assert_eq!(records[1].reason.as_deref(), Some("outcome_unknown"));
    assert_eq!(records[0].status.as_str(), "booked");
    assert_eq!(records[0].event_id.as_deref(), Some(event.id.as_str()));
    assert_eq!(records[0].start, Some(event.start));
    assert_eq!(records[0].campaign_id.as_deref(), Some("demo"));
    assert!(records[0].invitee.is_some());
    app.stop().await.unwrap();
}

/// The call's outcome records, newest first, once there are `n` of them
/// (they are written off the call's path).
async fn outcomes_of(
    app: &Harness,
    call_sid: &str,
    n: usize,
) -> Vec<callbook::outcomes::BookingRecord> {
    let waited = tokio::time::Instant::now();
    loop {
        let records = app.outcomes.by_call(call_sid, 10).await.unwrap();
        if records.len() >= n {
            return records;
        }
        // A liveness bound only.
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "{records:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Nobody loads the calendar again after a create's answer was lost: the
/// periodic run (every second here) finds the event once the provider
/// answers, and commits the claim on its own.
#[tokio::test]
async fn the_periodic_reconciler_settles_an_unknown_create_with_no_other_call() {
    let server = RedisServer::start().await.unwrap();
    let options = Options {
        reconcile_period: Some(std::time::Duration::from_secs(1)),
        ..Options::default()
    };
    let app = on_redis_with(&server, options).await;
    app.google
        .lag_free_busy(OWNER, std::time::Duration::from_secs(3600));
    let mut a = start_call(&app, "CA0000000000000000000000saga00005").await;
    to_proposal(&mut a).await;
    app.google
        .inject(OWNER, Endpoint::Insert, Fault::CommitThenDrop, 1);
    reads_fail(&app);
    a.send(&frames::transcript("yes")).await.unwrap();
    let got = a.settle().await.unwrap();
    assert_eq!(failure(&got).0, "outcome_unknown");
    let held = claims(&app).await;
    assert!(held.len() == 1 && held[0].unknown, "{held:?}");
    // While reads fail, it stays unknown (whatever the periodic runs try).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let held = claims(&app).await;
    assert!(held.len() == 1 && held[0].unknown, "{held:?}");

    app.google.clear_faults();
    let event = booked_events(&app).remove(0);
    let waited = tokio::time::Instant::now();
    loop {
        let held = claims(&app).await;
        if held.len() == 1 && held[0].committed {
            assert!(!held[0].unknown);
            assert_eq!(held[0].event_id.as_deref(), Some(event.id.as_str()));
            break;
        }
        // A liveness bound only: the run comes every second.
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "the periodic reconciler never settled {held:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Whoever follows the call's outcomes hears the booking was made.
    let records = outcomes_of(&app, "CA0000000000000000000000saga00005", 2).await;
    assert_eq!(records[0].status.as_str(), "booked");
    assert_eq!(records[0].event_id.as_deref(), Some(event.id.as_str()));
    app.stop().await.unwrap();
}

/// Every create attempt fails and nothing was stored, but the read-back
/// fails too, so the saga cannot know: the slot stays held until the
/// reconciler, able to read again, finds no event and releases it; then
/// the slot is offered again.
#[tokio::test]
async fn a_create_that_never_landed_is_released_by_the_reconciler_not_before() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    let mut a = start_call(&app, "CA0000000000000000000000saga00011").await;
    let slot = proposed(&to_proposal(&mut a).await);
    let fault = Fault::Status {
        code: 503,
        reason: "backendError",
        retry_after: None,
    };
    app.google.inject(OWNER, Endpoint::Insert, fault, u32::MAX);
    reads_fail(&app);
    a.send(&frames::transcript("yes")).await.unwrap();
    let got = a.settle().await.unwrap();
    assert_eq!(statuses(&got), vec!["failed"], "{got:?}");
    assert_eq!(failure(&got).0, "outcome_unknown");
    assert!(booked_events(&app).is_empty());
    let held = claims(&app).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].unknown, "{held:?}");
    let mut b = start_call(&app, "CA0000000000000000000000saga00012").await;
    assert_ne!(proposed(&to_proposal(&mut b).await), slot, "still held");

    app.google.clear_faults();
    let mut c = start_call(&app, "CA0000000000000000000000saga00013").await;
    let offered = proposed(&to_proposal(&mut c).await);
    assert_eq!(offered, slot, "released, the slot is free again");
    assert!(claims(&app).await.is_empty());
    app.stop().await.unwrap();
}

/// When the create's read-back finds no event (and the create answered,
/// so nothing is in flight), the hold is released at once: a plain
/// failure leaves no claim behind.
#[tokio::test]
async fn a_create_refused_outright_releases_its_hold() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    let mut a = start_call(&app, "CA0000000000000000000000saga00021").await;
    to_proposal(&mut a).await;
    let fault = Fault::Status {
        code: 400,
        reason: "badRequest",
        retry_after: None,
    };
    app.google.inject(OWNER, Endpoint::Insert, fault, 1);
    a.send(&frames::transcript("yes")).await.unwrap();
    let got = a.settle().await.unwrap();
    assert_eq!(statuses(&got), vec!["failed"], "{got:?}");
    assert!(claims(&app).await.is_empty());
    app.stop().await.unwrap();
}

/// The re-check before the create is slow enough to eat most of the
/// hold's lease: the hold is extended before the create starts, so the
/// event is written under a live hold and committed at once (not held
/// again after lapsing).
#[tokio::test]
async fn a_recheck_that_eats_the_lease_extends_the_hold_before_the_create() {
    let app = crate::helpers::spawn_campaign("saga-lease").await;
    let mut c =
        crate::helpers::start_call_on(&app, "CA0000000000000000000000saga00031", "saga-lease")
            .await;
    to_proposal(&mut c).await;
    let before = callbook_sample(&app, "callbook_ledger_leases_extended_total", "extended").await;
    app.google.inject(
        OWNER,
        Endpoint::FreeBusy,
        Fault::Latency(std::time::Duration::from_millis(800)),
        1,
    );
    c.send(&frames::transcript("yes")).await.unwrap();
    // While the re-check is in flight, most of the lease goes by.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.clock.advance(HOLD_TTL - Duration::seconds(15));
    let got = c.settle().await.unwrap();
    assert!(statuses(&got).contains(&"booked".to_string()), "{got:?}");
    let after = callbook_sample(&app, "callbook_ledger_leases_extended_total", "extended").await;
    assert!(after > before, "{before} -> {after}");
    let held = claims(&app).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].committed);
    app.stop().await.unwrap();
}

async fn callbook_sample(app: &Harness, name: &str, outcome: &str) -> f64 {
    crate::helpers::sample(&scrape(app).await, name, &[("outcome", outcome)])
}

/// The hold lapses while the provider creates the event, and another claim
/// takes the slot meanwhile: the event just written is cancelled and the
/// caller hears the slot was taken and gets an alternative, never
/// "booked" for a slot the ledger gave to someone else.
#[tokio::test]
async fn a_hold_lapsed_and_taken_during_the_create_is_undone_and_the_caller_hears_taken() {
    let app = crate::helpers::spawn_app().await;
    let mut c = start_call(&app, "CA0000000000000000000000saga00041").await;
    let slot = proposed(&to_proposal(&mut c).await);
    app.google.inject(
        OWNER,
        Endpoint::Insert,
        Fault::Latency(std::time::Duration::from_millis(800)),
        1,
    );
    c.send(&frames::transcript("yes")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The hold lapses; another booking takes the slot.
    app.clock.advance(HOLD_TTL + Duration::seconds(30));
    let start: chrono::DateTime<chrono::Utc> = slot.as_str().unwrap().parse().unwrap();
    let other = Interval::new(start, start + Duration::minutes(30));
    app.ledger
        .hold(CALENDAR, "another-booking", other, None, app.clock.now())
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    let said = statuses(&got);
    assert!(said.contains(&"taken".to_string()), "{got:?}");
    assert!(!said.contains(&"booked".to_string()), "{got:?}");
    assert_ne!(proposed(&got), slot, "an alternative is offered");
    assert!(booked_events(&app).is_empty(), "the event was cancelled");
    app.stop().await.unwrap();
}

/// Redis restarts without persistence and comes back empty. Its missing
/// epoch mark makes the ledger refuse rather than report the calendar
/// free: a caller confirming while the calendar cannot be read hears a
/// follow-up sentence and nothing is booked. Once the calendar answers,
/// the next load rebuilds the claims from the events callbook tagged, and
/// a competitor for the booked slot loses to the rebuilt claim, although
/// the provider's free/busy does not show the meeting yet.
#[tokio::test]
async fn a_redis_restarted_empty_refuses_confirms_until_rebuilt_and_the_rebuilt_claim_wins() {
    let mut server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    app.google
        .lag_free_busy(OWNER, std::time::Duration::from_secs(3600));
    let booked = crate::helpers::book(&app, "CA0000000000000000000000saga00051").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    let start: chrono::DateTime<chrono::Utc> = booked["booking"]["start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let meeting = Interval::new(start, start + Duration::minutes(30));
    let mut b = start_call(&app, "CA0000000000000000000000saga00052").await;
    to_proposal(&mut b).await;

    server.restart().await.unwrap();
    let mut refused = Err(callbook::ledger::LedgerError::Unavailable(String::new()));
    for _ in 0..3 {
        // The first command after the restart may meet the old connection.
        refused = app
            .ledger
            .hold(CALENDAR, "competitor", meeting, None, app.clock.now())
            .await;
        if !matches!(refused, Err(callbook::ledger::LedgerError::Unavailable(_))) {
            break;
        }
    }
    assert_eq!(refused, Err(callbook::ledger::LedgerError::Unverified));
    // The calendar's events cannot be listed, so the claims cannot be
    // rebuilt: the confirm is refused with a sentence, and nothing is
    // written.
    reads_fail(&app);
    refuse(&app, Endpoint::List);
    b.send(&frames::transcript("yes")).await.unwrap();
    let got = b.settle().await.unwrap();
    assert_eq!(statuses(&got), vec!["failed"], "{got:?}");
    assert!(of_kind(&got, "say")
        .iter()
        .any(|f| f["say"]["text"].as_str().unwrap().contains("follow up")));
    assert_eq!(booked_events(&app).len(), 1);

    app.google.clear_faults();
    let mut c = start_call(&app, "CA0000000000000000000000saga00053").await;
    let offered = proposed(&to_proposal(&mut c).await);
    assert_ne!(
        offered, booked["booking"]["start"],
        "the booked slot is not offered"
    );
    let event = &booked_events(&app)[0];
    let rebuilt = claims(&app).await;
    assert_eq!(rebuilt.len(), 1, "{rebuilt:?}");
    assert!(rebuilt[0].committed);
    assert_eq!(Some(&rebuilt[0].id), event.booking_id.as_ref());
    assert_eq!(rebuilt[0].event_id.as_deref(), Some(event.id.as_str()));
    assert!(matches!(
        app.ledger
            .hold(CALENDAR, "competitor", meeting, None, app.clock.now())
            .await,
        Err(callbook::ledger::LedgerError::Taken { .. })
    ));
    app.stop().await.unwrap();
}

/// Two instances share one Redis and one calendar, and one's clock runs
/// ten minutes fast. While the slow one's create is in flight, the fast
/// one's caller confirms the same slot: the hold is still live by the
/// Redis server's clock, so the fast instance's caller hears it was taken,
/// and one event exists.
#[tokio::test]
async fn an_instance_with_a_fast_clock_does_not_take_a_slot_another_holds() {
    let server = RedisServer::start().await.unwrap();
    let prov = || Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov());
    let mut apps = Vec::new();
    for skew in [-10, 0] {
        let clock = Clock::manual(tuesday_morning() + Duration::minutes(skew));
        let ledger: Arc<dyn Ledger> = Arc::new(
            RedisLedger::connect(&server.url, "callbook:skew:")
                .await
                .unwrap(),
        );
        let store = Arc::new(prov().into_store());
        apps.push(
            Harness::start_with(clock, emulators.clone(), ledger, store)
                .await
                .unwrap(),
        );
    }
    let mut slow = start_call(&apps[0], "CA0000000000000000000000saga00061").await;
    let mut fast = start_call(&apps[1], "CA0000000000000000000000saga00062").await;
    let (a, b) = (
        proposed(&to_proposal(&mut slow).await),
        proposed(&to_proposal(&mut fast).await),
    );
    assert_eq!(a, b, "both are offered the same slot");
    emulators.google.inject(
        OWNER,
        Endpoint::Insert,
        Fault::Latency(std::time::Duration::from_millis(1500)),
        1,
    );
    slow.send(&frames::transcript("yes")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    fast.send(&frames::transcript("yes")).await.unwrap();
    let (got_slow, got_fast) = (slow.settle().await.unwrap(), fast.settle().await.unwrap());
    assert!(
        statuses(&got_slow).contains(&"booked".to_string()),
        "{got_slow:?}"
    );
    assert!(
        statuses(&got_fast).contains(&"taken".to_string()),
        "{got_fast:?}"
    );
    let events: Vec<_> = emulators
        .google
        .events(OWNER)
        .into_iter()
        .filter(|e| e.booking_id.is_some() && e.status != "cancelled")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    for app in apps {
        app.stop().await.unwrap();
    }
}

/// The owner deletes a booked meeting in Google Calendar itself: its
/// claim would keep the slot from every caller, so the next load of the
/// calendar looks the event up (its time shows free), finds it gone, and
/// removes the claim; the slot is offered again.
#[tokio::test]
async fn a_meeting_deleted_in_the_calendar_app_frees_its_slot_at_the_next_load() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    let booked = crate::helpers::book(&app, "CA0000000000000000000000saga00071").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    let held = claims(&app).await;
    assert_eq!(held.len(), 1);
    let event_id = booked["booking"]["event_id"].as_str().unwrap();
    assert_eq!(held[0].event_id.as_deref(), Some(event_id));
    // While the event stands, the slot is not offered.
    let mut b = start_call(&app, "CA0000000000000000000000saga00072").await;
    assert_ne!(
        proposed(&to_proposal(&mut b).await),
        booked["booking"]["start"]
    );

    app.google.delete_by_owner(OWNER, event_id);
    let mut c = start_call(&app, "CA0000000000000000000000saga00073").await;
    assert_eq!(
        proposed(&to_proposal(&mut c).await),
        booked["booking"]["start"]
    );
    assert!(claims(&app).await.is_empty());
    app.stop().await.unwrap();
}

/// Books, then asks to move the meeting to Wednesday and returns the
/// frames up to the proposal of the new time.
async fn booked_then_asked_to_move(
    app: &Harness,
    sid: &str,
) -> (callbook::harness::CallClient, Value) {
    let mut c = start_call(app, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    let booked = of_kind(&got, "booking")
        .into_iter()
        .find(|f| f["booking"]["status"] == "booked")
        .expect("booked")
        .clone();
    c.send(&frames::transcript(
        "actually can we make it Wednesday instead?",
    ))
    .await
    .unwrap();
    let got = c.settle().await.unwrap();
    assert!(statuses(&got).contains(&"proposed".to_string()), "{got:?}");
    (c, booked)
}

/// The move's answer is lost after it landed, and every retry fails: the
/// event is read back by its id, found in the new slot, and the move is
/// reported and committed (the old claim replaced), not failed.
#[tokio::test]
async fn a_move_whose_answer_was_lost_is_read_back_and_committed() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    let (mut c, booked) =
        booked_then_asked_to_move(&app, "CA0000000000000000000000saga00081").await;
    app.google
        .inject(OWNER, Endpoint::Patch, Fault::CommitThenDrop, 1);
    let fault = Fault::Status {
        code: 503,
        reason: "backendError",
        retry_after: None,
    };
    app.google.inject(OWNER, Endpoint::Patch, fault, u32::MAX);
    c.send(&frames::transcript("yes please")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert!(
        statuses(&got).contains(&"rescheduled".to_string()),
        "{got:?}"
    );
    let events = booked_events(&app);
    assert_eq!(events.len(), 1);
    assert_ne!(json_time(events[0].start), booked["booking"]["start"]);
    let held = claims(&app).await;
    assert_eq!(held.len(), 1, "the old claim was replaced: {held:?}");
    assert!(held[0].committed);
    assert_eq!(held[0].interval.start, events[0].start);
    app.stop().await.unwrap();
}

/// A move that fails and cannot be read back keeps its new slot held as
/// unknown beside the meeting's claim; once the calendar answers, the
/// reconciler sees the meeting still in its old slot and releases the new
/// one.
#[tokio::test]
async fn a_move_of_unknown_outcome_is_rolled_back_by_the_reconciler() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    let (mut c, booked) =
        booked_then_asked_to_move(&app, "CA0000000000000000000000saga00091").await;
    let fault = Fault::Status {
        code: 503,
        reason: "backendError",
        retry_after: None,
    };
    app.google.inject(OWNER, Endpoint::Patch, fault, u32::MAX);
    reads_fail(&app);
    c.send(&frames::transcript("yes please")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(statuses(&got), vec!["failed"], "{got:?}");
    let (reason, said) = failure(&got);
    assert_eq!(reason, "outcome_unknown");
    assert!(said.contains("an updated invite is on its way"), "{said}");
    let held = claims(&app).await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(held.iter().filter(|h| h.unknown).count(), 1, "{held:?}");

    app.google.clear_faults();
    let mut d = start_call(&app, "CA0000000000000000000000saga00092").await;
    to_proposal(&mut d).await;
    let held = claims(&app).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].committed);
    assert_eq!(
        json_time(held[0].interval.start),
        booked["booking"]["start"]
    );
    app.stop().await.unwrap();
}

fn json_time(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// An instance dies between the create and the commit, and its hold lapses:
/// the event stands with no claim, and free/busy does not show it yet. The
/// next load lists the calendar's tagged events, adopts the orphan with a
/// committed claim, and does not offer its slot.
#[tokio::test]
async fn an_event_no_claim_covers_is_adopted_at_the_next_load() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    app.google
        .lag_free_busy(OWNER, std::time::Duration::from_secs(3600));
    let booked = crate::helpers::book(&app, "CA0000000000000000000000saga00101").await;
    assert_eq!(booked["booking"]["status"], "booked", "{booked}");
    let claim = claims(&app).await.remove(0);
    // What a lapsed hold leaves: nothing in the ledger.
    app.ledger.release(CALENDAR, &claim.id).await.unwrap();
    assert!(claims(&app).await.is_empty());

    let mut b = start_call(&app, "CA0000000000000000000000saga00102").await;
    assert_ne!(
        proposed(&to_proposal(&mut b).await),
        booked["booking"]["start"]
    );
    let adopted = claims(&app).await;
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_eq!(adopted[0].id, claim.id);
    assert!(adopted[0].committed);
    assert_eq!(adopted[0].event_id, claim.event_id);
    app.stop().await.unwrap();
}

/// A booking's event exists but the ledger lost its claim (its instance
/// died before the commit and the hold lapsed, or Redis lost it), and
/// free/busy does not show the event yet. Another caller confirming that
/// slot hears it was taken: the re-check lists the events callbook made,
/// finds it, and takes it into the ledger. Before, the slot was booked a
/// second time.
#[tokio::test]
async fn a_booking_the_ledger_lost_is_found_at_the_recheck_while_free_busy_lags() {
    let server = RedisServer::start().await.unwrap();
    let app = on_redis(&server).await;
    app.google
        .lag_free_busy(OWNER, std::time::Duration::from_secs(3600));
    // B is offered the earliest slot while it is free.
    let mut b = start_call(&app, "CA0000000000000000000000saga00071").await;
    let offered = proposed(&to_proposal(&mut b).await);
    // A books that slot; then its claim is lost.
    let booked = crate::helpers::book(&app, "CA0000000000000000000000saga00072").await;
    assert_eq!(booked["booking"]["start"], offered, "{booked}");
    let lost = claims(&app).await;
    assert_eq!(lost.len(), 1, "{lost:?}");
    app.ledger.release(CALENDAR, &lost[0].id).await.unwrap();

    b.send(&frames::transcript("yes")).await.unwrap();
    let got = b.settle().await.unwrap();
    assert_eq!(statuses(&got)[0], "taken", "{got:?}");
    let live = booked_events(&app);
    assert_eq!(live.len(), 1, "one meeting in the slot: {live:?}");
    let held = claims(&app).await;
    assert!(
        held.iter()
            .any(|c| c.committed && Some(&c.id) == live[0].booking_id.as_ref()),
        "the lost booking is in the ledger again: {held:?}"
    );
    app.stop().await.unwrap();
}
