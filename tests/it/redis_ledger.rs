//! The Redis ledger against a real `redis-server`: the same contract as
//! the in-memory ledger, the same answers on random histories, first
//! confirm wins across instances, and two callbook servers sharing one
//! Redis never double-book.

use crate::helpers::{of_kind, tuesday_morning};
use callbook::clock::Clock;
use callbook::harness::{frames, Emulators, Harness, RedisServer};
use callbook::ledger::{
    Ledger, LedgerError, MemoryLedger, Rebuilt, RedisLedger, HOLD_TTL, PRUNE_AFTER, UNKNOWN_TTL,
};
use callbook::schedule::Interval;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::Store;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::sync::Arc;

fn t(min: i64) -> DateTime<Utc> {
    tuesday_morning() + Duration::minutes(min)
}

fn iv(a: i64, b: i64) -> Interval {
    Interval::new(t(a), t(b))
}

async fn redis_ledger(server: &RedisServer) -> RedisLedger {
    RedisLedger::connect(&server.url, "callbook:test:")
        .await
        .unwrap()
}

/// A Redis ledger that, like the reference, takes "now" from its callers,
/// so tests can move time.
async fn redis_ledger_on_caller_clock(server: &RedisServer) -> RedisLedger {
    redis_ledger(server).await.on_caller_clock()
}

/// Marks `calendars` complete (a rebuild with no events), as a first load
/// does: a shared ledger answers only for calendars whose claims it knows.
async fn ready(l: &dyn Ledger, calendars: &[&str]) {
    for cal in calendars {
        l.rebuild(cal, &[], t(-60)).await.unwrap();
    }
}

/// What every ledger must do, whatever it runs on.
pub(crate) async fn contract(l: &dyn Ledger) {
    let now = t(-60);
    ready(l, &["cal", "other"]).await;
    l.hold("cal", "a", iv(0, 40), None, now).await.unwrap();
    assert_eq!(
        l.hold("cal", "b", iv(30, 70), None, now).await,
        Err(LedgerError::Taken {
            conflict: iv(0, 40)
        })
    );
    // Holding again is idempotent; touching intervals do not overlap.
    l.hold("cal", "a", iv(0, 40), None, now).await.unwrap();
    l.hold("cal", "c", iv(40, 80), None, now).await.unwrap();
    // A claim that starts long before still conflicts when it ends late.
    l.hold("cal", "long", iv(200, 500), None, now)
        .await
        .unwrap();
    assert!(matches!(
        l.hold("cal", "d", iv(480, 510), None, now).await,
        Err(LedgerError::Taken { .. })
    ));
    // Another calendar is independent.
    l.hold("other", "e", iv(0, 40), None, now).await.unwrap();

    // Holds expire; commits stay.
    l.commit("cal", "c", now).await.unwrap();
    let later = now + HOLD_TTL + Duration::seconds(1);
    assert_eq!(l.commit("cal", "a", later).await, Err(LedgerError::NotHeld));
    let live = l.claims("cal", iv(-1000, 1000), later).await.unwrap();
    assert_eq!(
        live.iter()
            .map(|c| (c.id.as_str(), c.committed))
            .collect::<Vec<_>>(),
        vec![("c", true)]
    );

    // A move may overlap the claim it replaces, which goes at commit.
    l.hold("cal", "moved", iv(60, 100), Some("c"), later)
        .await
        .unwrap();
    l.commit("cal", "moved", later).await.unwrap();
    let live = l.claims("cal", iv(-1000, 1000), later).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "moved");
    assert_eq!(live[0].interval, iv(60, 100));

    // Release frees the time; releasing the unknown is fine.
    l.release("cal", "moved").await.unwrap();
    l.release("cal", "never-was").await.unwrap();
    l.hold("cal", "f", iv(60, 100), None, later).await.unwrap();
}

#[tokio::test]
async fn the_memory_ledger_keeps_the_contract() {
    contract(&MemoryLedger::new()).await;
}

#[tokio::test]
async fn the_redis_ledger_keeps_the_contract() {
    let server = RedisServer::start().await.unwrap();
    contract(&redis_ledger_on_caller_clock(&server).await).await;
}

/// The saga's extra steps, on every ledger: an unknown claim keeps its
/// slot past a hold's life until committed (with its event id) or
/// released; an extended hold lives a full hold's life from the extension;
/// both refuse a hold that lapsed and leave a committed claim as it is.
async fn open_outcomes(l: &dyn Ledger) {
    let now = t(-600);
    ready(l, &["cal"]).await;
    l.hold("cal", "a", iv(0, 40), None, now).await.unwrap();
    l.mark_unknown("cal", "a", None, now).await.unwrap();
    let later = now + HOLD_TTL + Duration::seconds(30);
    let live = l.claims("cal", iv(-100, 100), later).await.unwrap();
    assert_eq!(live.len(), 1);
    assert!(live[0].unknown && !live[0].committed, "{live:?}");
    assert!(matches!(
        l.hold("cal", "b", iv(20, 60), None, later).await,
        Err(LedgerError::Taken { .. })
    ));
    // The reconciler found its event: committed, with the event's id.
    l.commit_event("cal", "a", Some("ev-a"), later)
        .await
        .unwrap();
    let live = l.claims("cal", iv(-100, 100), later).await.unwrap();
    assert!(live[0].committed && !live[0].unknown, "{live:?}");
    assert_eq!(live[0].event_id.as_deref(), Some("ev-a"));
    // Committed claims are left as they are.
    l.extend("cal", "a", later).await.unwrap();
    l.mark_unknown("cal", "a", None, later).await.unwrap();
    assert!(l.claims("cal", iv(-100, 100), later).await.unwrap()[0].committed);

    // Unknown claims lapse too, after UNKNOWN_TTL, if nothing settles them.
    l.hold("cal", "u", iv(100, 130), None, now).await.unwrap();
    l.mark_unknown("cal", "u", Some("ev-u"), now).await.unwrap();
    let live = l.claims("cal", iv(100, 130), later).await.unwrap();
    assert_eq!(live[0].event_id.as_deref(), Some("ev-u"));
    let past = now + UNKNOWN_TTL + Duration::seconds(1);
    assert!(l
        .claims("cal", iv(100, 130), past)
        .await
        .unwrap()
        .is_empty());

    // An extension counts a full hold's life from when it was made.
    let start = now + Duration::seconds(50);
    l.hold("cal", "h", iv(200, 230), None, now).await.unwrap();
    l.extend("cal", "h", start).await.unwrap();
    let after_first = now + HOLD_TTL + Duration::seconds(5);
    assert_eq!(
        l.claims("cal", iv(200, 230), after_first)
            .await
            .unwrap()
            .len(),
        1
    );
    let lapsed = start + HOLD_TTL + Duration::seconds(1);
    assert_eq!(
        l.extend("cal", "h", lapsed).await,
        Err(LedgerError::NotHeld)
    );
    assert_eq!(
        l.mark_unknown("cal", "h", None, lapsed).await,
        Err(LedgerError::NotHeld)
    );

    // A rebuild or an adoption that finds the event of a claim still held
    // (its commit's answer was lost, or the commit never ran) commits it:
    // the booking is made, so its slot never lapses back to free.
    let found = |id: &str, slot: Interval| Rebuilt {
        id: id.into(),
        interval: slot,
        event_id: format!("ev-{id}"),
    };
    l.hold("cal", "r", iv(300, 330), None, now).await.unwrap();
    l.rebuild("cal", &[found("r", iv(300, 330))], now)
        .await
        .unwrap();
    l.hold("cal", "o", iv(400, 430), None, now).await.unwrap();
    l.mark_unknown("cal", "o", None, now).await.unwrap();
    l.adopt("cal", &[found("o", iv(400, 430))], now)
        .await
        .unwrap();
    let past = now + UNKNOWN_TTL + Duration::seconds(1);
    let live = l.claims("cal", iv(300, 430), past).await.unwrap();
    assert_eq!(live.len(), 2, "{live:?}");
    for c in &live {
        assert!(c.committed && !c.unknown, "{c:?}");
        assert_eq!(c.event_id, Some(format!("ev-{}", c.id)));
    }
    assert!(matches!(
        l.hold("cal", "late", iv(310, 320), None, past).await,
        Err(LedgerError::Taken { .. })
    ));
}

#[tokio::test]
async fn the_memory_ledger_keeps_unknown_and_extended_claims() {
    open_outcomes(&MemoryLedger::new()).await;
}

#[tokio::test]
async fn the_redis_ledger_keeps_unknown_and_extended_claims() {
    let server = RedisServer::start().await.unwrap();
    open_outcomes(&redis_ledger_on_caller_clock(&server).await).await;
}

/// Two instances whose clocks are 10 minutes apart share one Redis: the
/// fast one does not take the slow one's hold for expired, because expiry
/// is the server's clock, not the callers'.
#[tokio::test]
async fn a_fast_clock_cannot_reap_another_instances_live_hold() {
    let server = RedisServer::start().await.unwrap();
    let (slow, fast) = (redis_ledger(&server).await, redis_ledger(&server).await);
    let slow_now = t(-60);
    let fast_now = slow_now + Duration::minutes(10);
    ready(&slow, &["cal"]).await;
    slow.hold("cal", "slow", iv(0, 30), None, slow_now)
        .await
        .unwrap();
    assert_eq!(
        fast.hold("cal", "fast", iv(0, 30), None, fast_now).await,
        Err(LedgerError::Taken {
            conflict: iv(0, 30)
        })
    );
    let live = fast.claims("cal", iv(-60, 60), fast_now).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "slow");
    // The holder can still commit it, whatever clock it passes.
    slow.commit("cal", "slow", fast_now).await.unwrap();
}

/// Committed claims that ended more than a day ago are pruned; younger
/// ones stay, and the pruned time can be held again.
pub(crate) async fn past_claims_are_pruned(l: &dyn Ledger) {
    let now = t(-60);
    ready(l, &["cal"]).await;
    for (id, slot) in [("old", iv(0, 30)), ("recent", iv(60, 90))] {
        l.hold("cal", id, slot, None, now).await.unwrap();
        l.commit("cal", id, now).await.unwrap();
    }
    let everything = iv(-1000, 1000);
    assert_eq!(l.claims("cal", everything, now).await.unwrap().len(), 2);
    // A day and a minute after "old" ended; "recent" ended 59 minutes later.
    let later = t(30) + PRUNE_AFTER + Duration::minutes(1);
    let live = l.claims("cal", everything, later).await.unwrap();
    assert_eq!(
        live.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["recent"]
    );
    l.hold("cal", "again", iv(0, 30), None, later)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_memory_ledger_prunes_claims_that_ended_a_day_ago() {
    let l = MemoryLedger::new();
    past_claims_are_pruned(&l).await;
    // What is kept: "recent" and the hold "again".
    assert_eq!(l.len("cal"), 2);
}

#[tokio::test]
async fn the_redis_ledger_prunes_claims_that_ended_a_day_ago() {
    let server = RedisServer::start().await.unwrap();
    past_claims_are_pruned(&redis_ledger_on_caller_clock(&server).await).await;
    // The stored claims shrank too, not only the answers.
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("callbook:test:*:b")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let kept: usize = redis::cmd("HLEN")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 2);
}

/// A caller whose clock runs a day fast does not prune what the server
/// still counts as recent: pruning takes the earlier of the two clocks.
#[tokio::test]
async fn a_fast_caller_alone_cannot_prune_recent_claims() {
    let server = RedisServer::start().await.unwrap();
    let l = redis_ledger(&server).await;
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (secs, _): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let real = DateTime::from_timestamp(secs, 0).unwrap();
    let slot = Interval::new(real - Duration::hours(1), real);
    ready(&l, &["cal"]).await;
    l.hold("cal", "yesterday", slot, None, real).await.unwrap();
    l.commit("cal", "yesterday", real).await.unwrap();
    let fast = real + PRUNE_AFTER + Duration::hours(2);
    let live = l.claims("cal", slot, fast).await.unwrap();
    assert_eq!(live.len(), 1);
}

/// Random histories of holds, commits, releases, reads and passing time:
/// Redis answers exactly as the in-memory reference does.
#[tokio::test]
async fn redis_answers_like_the_reference_on_random_histories() {
    let server = RedisServer::start().await.unwrap();
    let redis = redis_ledger_on_caller_clock(&server).await;
    for seed in 0..5u64 {
        let model = MemoryLedger::new();
        let mut rng = fastrand::Rng::with_seed(seed);
        let cal = format!("cal-{seed}");
        ready(&redis, &[&cal]).await;
        let mut now = t(-600);
        let mut ids: Vec<String> = Vec::new();
        for step in 0..300 {
            let pick = |rng: &mut fastrand::Rng, ids: &[String]| {
                if ids.is_empty() || rng.u8(0..4) == 0 {
                    format!("x{}", rng.u32(0..1000))
                } else {
                    ids[rng.usize(0..ids.len())].clone()
                }
            };
            match rng.u8(0..10) {
                0..=3 => {
                    let start = i64::from(rng.u8(0..48)) * 15;
                    let len = i64::from(rng.u8(1..9)) * 15;
                    let id = format!("c{step}");
                    let replaces = (rng.u8(0..4) == 0).then(|| pick(&mut rng, &ids));
                    let slot = iv(start, start + len);
                    let a = model.hold(&cal, &id, slot, replaces.as_deref(), now).await;
                    let b = redis.hold(&cal, &id, slot, replaces.as_deref(), now).await;
                    assert_eq!(a, b, "seed {seed} step {step}: hold {id} {slot:?}");
                    ids.push(id);
                }
                4..=5 => {
                    let id = pick(&mut rng, &ids);
                    let a = model.commit(&cal, &id, now).await;
                    let b = redis.commit(&cal, &id, now).await;
                    assert_eq!(a, b, "seed {seed} step {step}: commit {id}");
                }
                6 => {
                    let id = pick(&mut rng, &ids);
                    model.release(&cal, &id).await.unwrap();
                    redis.release(&cal, &id).await.unwrap();
                }
                7 => now += Duration::seconds(i64::from(rng.u8(1..40))),
                _ => {
                    let start = i64::from(rng.u8(0..48)) * 15;
                    let window = iv(start, start + 120);
                    let mut a = model.claims(&cal, window, now).await.unwrap();
                    let mut b = redis.claims(&cal, window, now).await.unwrap();
                    a.sort_by(|x, y| x.id.cmp(&y.id));
                    b.sort_by(|x, y| x.id.cmp(&y.id));
                    assert_eq!(a, b, "seed {seed} step {step}: claims {window:?}");
                }
            }
        }
    }
}

/// Many confirms at once through two instances (two connections): no two
/// live claims overlap, and every loser was told about a real conflict.
#[tokio::test]
async fn first_confirm_wins_across_instances() {
    let server = RedisServer::start().await.unwrap();
    let instances = [redis_ledger(&server).await, redis_ledger(&server).await];
    ready(&instances[0], &["hot"]).await;
    let now = t(-60);
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let ledger = instances[(i % 2) as usize].clone();
        let start = i64::from(i % 16) * 15;
        tasks.push(tokio::spawn(async move {
            let slot = iv(start, start + 30);
            let id = format!("call-{i}");
            let got = ledger.hold("hot", &id, slot, None, now).await;
            if got.is_ok() {
                ledger.commit("hot", &id, now).await.unwrap();
            }
            (id, slot, got)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (id, slot, got) = task.await.unwrap();
        match got {
            Ok(()) => winners.push((id, slot)),
            Err(LedgerError::Taken { conflict }) => assert!(conflict.overlaps(&slot)),
            Err(e) => panic!("{e}"),
        }
    }
    for (i, (_, a)) in winners.iter().enumerate() {
        for (_, b) in &winners[i + 1..] {
            assert!(!a.overlaps(b), "{a:?} and {b:?} both won");
        }
    }
    let live = instances[0].claims("hot", iv(-60, 600), now).await.unwrap();
    assert_eq!(live.len(), winners.len());
    assert!(live.iter().all(|c| c.committed));
    // 16 starts 15 minutes apart, 30-minute meetings: each start overlaps
    // only its neighbours, and every start lost to a winner next to it, so
    // however the race went the winners leave no start free: at least one
    // in three (6) won. (Not one in two: winners at the 2nd, 5th, 8th… start
    // block all the others.)
    assert!(winners.len() >= 6, "{winners:?}");
    let free = (0..16i64).map(|k| iv(k * 15, k * 15 + 30));
    for slot in free {
        assert!(
            winners.iter().any(|(_, w)| w.overlaps(&slot)),
            "{slot:?} lost to nobody"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let got = RedisLedger::connect(&format!("redis://127.0.0.1:{port}/"), "x:").await;
    assert!(matches!(got, Err(LedgerError::Unavailable(_))));
}

/// Two callbook servers, one Redis, one calendar: both callers say yes to
/// the same slot at once; one books it, the other hears it was just taken
/// and gets an alternative. One event exists.
#[tokio::test]
async fn two_servers_sharing_redis_never_double_book() {
    let server = RedisServer::start().await.unwrap();
    let prov = || Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov());
    let clock = Clock::manual(tuesday_morning());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let ledger: Arc<dyn Ledger> = Arc::new(redis_ledger(&server).await);
        let store = Arc::new(prov().into_store());
        apps.push(
            Harness::start_with(clock.clone(), emulators.clone(), ledger, store)
                .await
                .unwrap(),
        );
    }
    let mut calls = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let sid = format!("CA00000000000000000000000000redis{i}");
        let mut c = crate::helpers::start_call(app, &sid).await;
        let seen = crate::helpers::to_proposal(&mut c).await;
        let proposed = of_kind(&seen, "booking")
            .into_iter()
            .rfind(|f| f["booking"]["status"] == "proposed")
            .unwrap()["booking"]["start"]
            .clone();
        calls.push((c, proposed));
    }
    assert_eq!(calls[0].1, calls[1].1, "both are offered the same slot");
    let (mut a, _) = calls.remove(0);
    let (mut b, _) = calls.remove(0);
    let (ra, rb) = tokio::join!(
        async {
            a.send(&frames::transcript("yes")).await.unwrap();
            a.settle().await.unwrap()
        },
        async {
            b.send(&frames::transcript("yes")).await.unwrap();
            b.settle().await.unwrap()
        }
    );
    let status = |frames: &[serde_json::Value]| {
        of_kind(frames, "booking")
            .iter()
            .map(|f| f["booking"]["status"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (sa, sb) = (status(&ra), status(&rb));
    let booked = [&sa, &sb]
        .iter()
        .filter(|s| s.contains(&"booked".to_string()))
        .count();
    let taken = [&sa, &sb]
        .iter()
        .filter(|s| s.contains(&"taken".to_string()))
        .count();
    assert_eq!((booked, taken), (1, 1), "{sa:?} {sb:?}");
    let events: Vec<_> = emulators
        .google
        .events("alex@callbook.example")
        .into_iter()
        .filter(|e| e.booking_id.is_some())
        .collect();
    assert_eq!(events.len(), 1);
    // The loser is offered another slot, not the taken one.
    let loser = if sa.contains(&"taken".to_string()) {
        &ra
    } else {
        &rb
    };
    let again = of_kind(loser, "booking")
        .into_iter()
        .find(|f| f["booking"]["status"] == "proposed")
        .expect("an alternative is proposed");
    assert_ne!(again["booking"]["start"], json!(events[0].start));
    for app in apps {
        app.stop().await.unwrap();
    }
}

/// Redis goes away between the proposal and the caller's yes: nothing is
/// booked without the ledger's decision, and the caller hears a sentence,
/// not silence. When Redis is back, booking works again.
#[tokio::test]
async fn without_redis_nothing_is_booked_and_the_caller_is_told_until_it_is_back() {
    let server = RedisServer::start().await.unwrap();
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let ledger: Arc<dyn Ledger> = Arc::new(redis_ledger(&server).await);
    let app = Harness::start_with(
        Clock::manual(tuesday_morning()),
        emulators.clone(),
        ledger,
        Arc::new(prov.into_store()),
    )
    .await
    .unwrap();
    let mut c = crate::helpers::start_call(&app, "CA000000000000000000000000redisgone").await;
    crate::helpers::to_proposal(&mut c).await;
    let mut server = server;
    server.kill();
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["turn"]["owner"], "callbook");
    // The hold is retried for a moment first (a filler line may come).
    assert_eq!(
        of_kind(&got, "booking")[0]["booking"],
        json!({"status": "failed", "reason": "calendar_unavailable"}),
        "{got:?}"
    );
    assert!(of_kind(&got, "say")
        .iter()
        .any(|f| f["say"]["text"].as_str().unwrap().contains("follow up")));
    assert!(emulators
        .google
        .events("alex@callbook.example")
        .iter()
        .all(|e| e.booking_id.is_none()));

    // Redis comes back: the next call books without a restart of callbook.
    server.restart().await.unwrap();
    let mut c = crate::helpers::start_call(&app, "CA000000000000000000000000redisback").await;
    crate::helpers::to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[1]["booking"]["status"], "booked", "{got:?}");
    app.stop().await.unwrap();
}

/// The load generator's own check: 30 callers over two servers on one
/// Redis, all chasing the first slot, every one booked, no overlap.
#[tokio::test]
async fn thirty_concurrent_callers_over_two_servers_all_book_without_overlap() {
    let server = RedisServer::start().await.unwrap();
    let report = callbook::load::run(30, 2, Some(&server.url)).await.unwrap();
    assert_eq!(report["booked"], 30, "{report}");
    assert_eq!(report["events"], 30, "{report}");
    assert_eq!(report["overlapping_events"], 0, "{report}");
}

/// Two owners whose connections reach one Google calendar, one by the alias
/// "primary", the other by the calendar's id (the account's address): both
/// calls book into one ledger key, `google:<canonical id>`, so when both
/// callers say yes to the same slot at once exactly one books it.
#[tokio::test]
async fn one_calendar_named_two_ways_by_two_owners_is_one_ledger_key() {
    let mut doc: serde_json::Value = serde_json::from_str(DEFAULT).unwrap();
    let mut sam = doc["users"][0].clone();
    sam["id"] = json!("sam");
    sam["name"] = json!("Sam Lee");
    sam["connection"]["calendar_id"] = json!("alex@callbook.example");
    doc["users"].as_array_mut().unwrap().push(sam);
    let mut campaign = doc["campaigns"][0].clone();
    campaign["id"] = json!("demo-sam");
    campaign["owner"] = json!("sam");
    doc["campaigns"].as_array_mut().unwrap().push(campaign);
    let prov = || Provisioning::parse(&doc.to_string()).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov());
    let ledger = Arc::new(MemoryLedger::new());
    let store = Arc::new(prov().into_store());
    let app = Harness::start_with(
        Clock::manual(tuesday_morning()),
        emulators.clone(),
        ledger.clone(),
        store.clone(),
    )
    .await
    .unwrap();
    let mut calls = Vec::new();
    for (sid, campaign) in [
        ("CA000000000000000000000000shared01", "demo"),
        ("CA000000000000000000000000shared02", "demo-sam"),
    ] {
        let mut c = crate::helpers::start_call_on(&app, sid, campaign).await;
        let seen = crate::helpers::to_proposal(&mut c).await;
        let proposed = of_kind(&seen, "booking")
            .into_iter()
            .rfind(|f| f["booking"]["status"] == "proposed")
            .unwrap()["booking"]["start"]
            .clone();
        calls.push((c, proposed));
    }
    assert_eq!(calls[0].1, calls[1].1, "both are offered the same slot");
    let (mut a, _) = calls.remove(0);
    let (mut b, _) = calls.remove(0);
    let (ra, rb) = tokio::join!(
        async {
            a.send(&frames::transcript("yes")).await.unwrap();
            a.settle().await.unwrap()
        },
        async {
            b.send(&frames::transcript("yes")).await.unwrap();
            b.settle().await.unwrap()
        }
    );
    let booked = [&ra, &rb]
        .iter()
        .filter(|r| {
            of_kind(r, "booking")
                .iter()
                .any(|f| f["booking"]["status"] == "booked")
        })
        .count();
    assert_eq!(booked, 1, "{ra:?} {rb:?}");
    let events: Vec<_> = emulators
        .google
        .events("alex@callbook.example")
        .into_iter()
        .filter(|e| e.booking_id.is_some())
        .collect();
    assert_eq!(events.len(), 1);
    // The one key: provider and the id Google reports for the calendar.
    let live = ledger
        .claims(
            "google:alex@callbook.example",
            Interval::new(t(-24 * 60), t(30 * 24 * 60)),
            tuesday_morning(),
        )
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live[0].committed);
    assert!(ledger.is_empty("alex:primary"));
    // Connections stored with only the alias were resolved once, and the
    // answer kept for the next call.
    for user in ["alex", "sam"] {
        let conn = store.connection(user).await.unwrap().unwrap();
        assert_eq!(conn.canonical_id(), Some("alex@callbook.example"), "{user}");
    }
    assert_eq!(
        store.connection("alex").await.unwrap().unwrap().calendar_id,
        "primary"
    );
    app.stop().await.unwrap();
}

/// Every key of one ledger prefix, as `DUMP` payloads: a replica's copy.
async fn snapshot(url: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push((k, dump));
    }
    out
}

/// Puts a prefix's keys back as `snapshot` found them: what a failover to
/// a replica that missed the latest writes leaves.
async fn fail_over_to(url: &str, prefix: &str, copy: &[(String, Vec<u8>)]) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for k in now {
        let _: i64 = redis::cmd("DEL")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    for (k, dump) in copy {
        let _: String = redis::cmd("RESTORE")
            .arg(k)
            .arg(0)
            .arg(dump.as_slice())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A failover to a replica that missed the latest writes keeps every
/// calendar's mark. The instance that made (or saw) the lost writes
/// notices at its next step, even when another write has since taken the
/// lost one's place in the history, and from then on every instance is
/// refused on that calendar until it is rebuilt from the provider; the
/// rebuilt claim then wins.
#[tokio::test]
async fn a_failover_that_lost_the_latest_writes_is_detected_and_refused_until_rebuilt() {
    let server = RedisServer::start().await.unwrap();
    let prefix = "callbook:failover:";
    let a = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let b = RedisLedger::connect(&server.url, prefix).await.unwrap();
    // C also sees the write that will be lost, and does nothing more until
    // after the rebuild.
    let c = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let cal = "google:owner@callbook.example";
    let now = Clock::System.now();
    let window = iv(-600, 6000);
    // Before any write, a read is refused and remembers version 0, which
    // every later history holds: it drops nothing.
    assert_eq!(
        c.claims(cal, window, now).await,
        Err(LedgerError::Unverified)
    );
    a.rebuild(cal, &[], now).await.unwrap();
    assert!(c.claims(cal, window, now).await.is_ok());
    b.hold(cal, "b-0", iv(0, 30), None, now).await.unwrap();
    let replica = snapshot(&server.url, prefix).await;

    // A books; the replica never gets it.
    a.hold(cal, "a-1", iv(60, 90), None, now).await.unwrap();
    a.commit_event(cal, "a-1", Some("ev-a1"), now)
        .await
        .unwrap();
    assert!(c.claims(cal, window, now).await.is_ok());
    fail_over_to(&server.url, prefix, &replica).await;

    // B saw none of it and cannot tell; it writes twice, so the history's
    // counter is back where A last saw it, with other writes in its place.
    let seen = b.claims(cal, window, now).await.unwrap();
    assert!(seen.iter().all(|c| c.id != "a-1"), "the write was lost");
    b.hold(cal, "b-2", iv(120, 150), None, now).await.unwrap();
    b.release(cal, "b-2").await.unwrap();

    // A's next step finds its booking missing from this history.
    assert_eq!(
        a.claims(cal, window, now).await,
        Err(LedgerError::Unverified)
    );
    // Every instance is refused now, not only the one that noticed.
    assert_eq!(
        b.hold(cal, "b-3", iv(60, 90), None, now).await,
        Err(LedgerError::Unverified)
    );
    assert_eq!(
        b.claims(cal, window, now).await,
        Err(LedgerError::Unverified)
    );
    // Rebuilt from the provider's events, the lost booking wins again.
    let rebuilt = callbook::ledger::Rebuilt {
        id: "a-1".into(),
        interval: iv(60, 90),
        event_id: "ev-a1".into(),
    };
    // Taking in one booking (as a confirm's re-check does) is no rebuild:
    // the calendar stays refused.
    b.adopt(cal, std::slice::from_ref(&rebuilt), now)
        .await
        .unwrap();
    assert_eq!(
        b.hold(cal, "b-3", iv(200, 230), None, now).await,
        Err(LedgerError::Unverified)
    );
    a.rebuild(cal, &[rebuilt], now).await.unwrap();
    assert!(matches!(
        b.hold(cal, "b-3", iv(60, 90), None, now).await,
        Err(LedgerError::Taken { .. })
    ));
    let after = a.claims(cal, window, now).await.unwrap();
    assert!(after.iter().any(|c| c.id == "a-1" && c.committed));
    // Once rebuilt, no one is refused for what was lost before: not even C,
    // which saw the lost write and has not been here since.
    c.hold(cal, "c-5", iv(300, 330), None, now).await.unwrap();
    b.hold(cal, "b-4", iv(200, 230), None, now).await.unwrap();
    assert!(a.claims(cal, window, now).await.is_ok());
    assert!(b.claims(cal, window, now).await.is_ok());
}

/// A booking as a rebuild finds it on the calendar: its event is `ev-` and
/// its id.
fn booked_as(id: &str, slot: Interval) -> callbook::ledger::Rebuilt {
    callbook::ledger::Rebuilt {
        id: id.into(),
        interval: slot,
        event_id: format!("ev-{id}"),
    }
}

/// A replica promoted with nothing of a calendar (it never got the old
/// primary's writes): every instance is refused there until the calendar
/// is rebuilt. One rebuild, by an instance that saw none of the old
/// history (a process started after the failover), then serves them all:
/// those that saw the old primary's later versions are not refused again.
#[tokio::test]
async fn after_a_failover_to_a_replica_without_the_calendar_one_rebuild_serves_every_instance() {
    let server = RedisServer::start().await.unwrap();
    let prefix = "callbook:bare-replica:";
    let a = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let b = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let cal = "google:owner@callbook.example";
    let now = Clock::System.now();
    let window = iv(-600, 6000);
    let bare = snapshot(&server.url, prefix).await;
    assert!(bare.is_empty());
    a.rebuild(cal, &[], now).await.unwrap();
    let mut booked = Vec::new();
    for n in 0..6 {
        let id = format!("a-{n}");
        a.hold(cal, &id, iv(n * 60, n * 60 + 30), None, now)
            .await
            .unwrap();
        a.commit_event(cal, &id, Some(&format!("ev-{id}")), now)
            .await
            .unwrap();
        booked.push(booked_as(&id, iv(n * 60, n * 60 + 30)));
    }
    assert_eq!(b.claims(cal, window, now).await.unwrap().len(), 6);
    // The server's clock moves on, as it does between the old primary's
    // rebuild and the failover.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    fail_over_to(&server.url, prefix, &bare).await;

    assert_eq!(
        b.hold(cal, "b-1", iv(400, 430), None, now).await,
        Err(LedgerError::Unverified)
    );
    let fresh = RedisLedger::connect(&server.url, prefix).await.unwrap();
    fresh.rebuild(cal, &booked, now).await.unwrap();
    assert!(matches!(
        b.hold(cal, "b-2", iv(0, 30), None, now).await,
        Err(LedgerError::Taken { .. })
    ));
    b.hold(cal, "b-3", iv(400, 430), None, now).await.unwrap();
    assert_eq!(a.claims(cal, window, now).await.unwrap().len(), 7);
    assert_eq!(fresh.claims(cal, window, now).await.unwrap().len(), 7);
}

/// An instance that goes on writing to the old primary after the promoted
/// replica was rebuilt (cut off from the failover, then caught up by it)
/// wrote what that rebuild could not read: its next step on the new
/// primary is refused, and every instance with it, until the calendar is
/// rebuilt again; then its booking holds its slot.
#[tokio::test]
async fn a_write_to_the_old_primary_after_the_new_one_was_rebuilt_is_detected() {
    let server = RedisServer::start().await.unwrap();
    let prefix = "callbook:split:";
    let a = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let fresh = RedisLedger::connect(&server.url, prefix).await.unwrap();
    let cal = "google:owner@callbook.example";
    let now = Clock::System.now();
    let window = iv(-600, 6000);
    let bare = snapshot(&server.url, prefix).await;
    a.rebuild(cal, &[], now).await.unwrap();
    a.hold(cal, "a-0", iv(0, 30), None, now).await.unwrap();
    a.commit_event(cal, "a-0", Some("ev-a-0"), now)
        .await
        .unwrap();
    let old_primary = snapshot(&server.url, prefix).await;

    // The replica is promoted with nothing of the calendar and rebuilt.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    pause().await;
    fail_over_to(&server.url, prefix, &bare).await;
    fresh
        .rebuild(cal, &[booked_as("a-0", iv(0, 30))], now)
        .await
        .unwrap();
    let new_primary = snapshot(&server.url, prefix).await;

    // A, still on the old primary, books there after that rebuild.
    pause().await;
    fail_over_to(&server.url, prefix, &old_primary).await;
    a.hold(cal, "a-1", iv(60, 90), None, now).await.unwrap();
    a.commit_event(cal, "a-1", Some("ev-a-1"), now)
        .await
        .unwrap();

    // The failover catches A up: its booking is not on the new primary.
    fail_over_to(&server.url, prefix, &new_primary).await;
    assert_eq!(
        a.claims(cal, window, now).await,
        Err(LedgerError::Unverified)
    );
    assert_eq!(
        fresh.hold(cal, "f-1", iv(60, 90), None, now).await,
        Err(LedgerError::Unverified)
    );
    fresh
        .rebuild(
            cal,
            &[booked_as("a-0", iv(0, 30)), booked_as("a-1", iv(60, 90))],
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        fresh.hold(cal, "f-2", iv(60, 90), None, now).await,
        Err(LedgerError::Taken { .. })
    ));
    assert_eq!(a.claims(cal, window, now).await.unwrap().len(), 2);
}
