//! The ledger and the store on a real Redis Cluster (`redis-server` nodes
//! joined by `redis-cli --cluster create`, reached through a
//! `redis+cluster://` URL): the same contracts as on a single node,
//! contended holds from two instances with one winner per slot, and a
//! failover of the primary that owns a busy calendar's slot in the middle
//! of contended holds.

use crate::helpers::{tuesday_morning, RedisCluster};
use callbook::ledger::{Ledger, LedgerError, Rebuilt, RedisLedger};
use callbook::schedule::Interval;
use callbook::store::provisioning::{Provisioning, DEFAULT};
use callbook::store::{
    Connection, ExpectedAccount, PendingFlow, Provider, RedisStore, Store, StoreErrorKind,
};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};

fn t(min: i64) -> DateTime<Utc> {
    tuesday_morning() + Duration::minutes(min)
}

fn iv(a: i64, b: i64) -> Interval {
    Interval::new(t(a), t(b))
}

async fn ledger(cluster: &RedisCluster, prefix: &str) -> RedisLedger {
    RedisLedger::connect(&cluster.url, prefix).await.unwrap()
}

async fn store(
    cluster: &RedisCluster,
    prefix: &str,
    cipher: callbook::store::secrets::TokenCipher,
) -> Result<RedisStore, callbook::store::StoreError> {
    let base = Provisioning::parse(DEFAULT).unwrap().into_store();
    RedisStore::connect(&cluster.url, prefix, cipher, base).await
}

/// The ledger's contract, pruning, and server-clock expiry on three
/// primaries; its keys for one calendar all land on one of them, and
/// different calendars spread over several.
#[tokio::test]
async fn the_ledger_keeps_its_contract_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let l = ledger(&cluster, "cb:c:").await;
    // The readiness probe asks every primary.
    l.ping().await.unwrap();
    crate::redis_ledger::contract(&l.on_caller_clock()).await;
    crate::redis_ledger::past_claims_are_pruned(&ledger(&cluster, "cb:p:").await.on_caller_clock())
        .await;

    // Two instances, clocks 10 minutes apart: the fast one cannot reap the
    // slow one's live hold (expiry is the owning primary's clock).
    let (slow, fast) = (
        ledger(&cluster, "cb:x:").await,
        ledger(&cluster, "cb:x:").await,
    );
    slow.rebuild("cal", &[], t(-60)).await.unwrap();
    slow.hold("cal", "slow", iv(0, 30), None, t(-60))
        .await
        .unwrap();
    assert_eq!(
        fast.hold("cal", "fast", iv(0, 30), None, t(-50)).await,
        Err(LedgerError::Taken {
            conflict: iv(0, 30)
        })
    );
    slow.commit("cal", "slow", t(-50)).await.unwrap();

    // Many calendars: each one's keys share a slot, and the calendars
    // spread over the primaries.
    let spread = ledger(&cluster, "cb:s:").await;
    for n in 0..24 {
        spread
            .rebuild(&format!("cal-{n}"), &[], t(-60))
            .await
            .unwrap();
        spread
            .hold(&format!("cal-{n}"), "a", iv(0, 30), None, t(-60))
            .await
            .unwrap();
    }
    let mut home: std::collections::HashMap<String, u16> = Default::default();
    let mut total = 0;
    for (port, keys) in cluster.keys_by_primary("cb:s:*").await {
        total += keys.len();
        for k in keys {
            let tag = k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
            // Every key of one calendar sits on one primary.
            assert_eq!(*home.entry(tag).or_insert(port), port, "{k}");
        }
    }
    assert_eq!(home.len(), 24);
    // A hold writes at least `iv`, `b` and `exp` for its calendar.
    assert!(total >= 24 * 3, "{total}");
    let used: std::collections::HashSet<u16> = home.values().copied().collect();
    assert!(used.len() >= 2, "24 calendars all on one primary");
}

/// The store's contract on three primaries, booking settings replaced with
/// their campaign, and `rekey`, whose walk over every key must visit every
/// primary.
#[tokio::test]
async fn the_store_keeps_its_contract_and_rekeys_every_primary_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let s = store(&cluster, "cb:contract:", crate::redis_store::cipher())
        .await
        .unwrap();
    crate::redis_store::contract(&s).await;

    // Booking settings set on their own, then the campaign replaced: the
    // new record's settings are what is read, not the old override.
    let mut booking = s.campaign("demo").await.unwrap().unwrap().booking.unwrap();
    let original = booking.clone();
    booking.rules.length_minutes = 45;
    assert!(s.set_booking("demo", booking.clone()).await.unwrap());
    assert_eq!(
        s.campaign("demo").await.unwrap().unwrap().booking,
        Some(booking.clone())
    );
    let mut record = s.campaign("demo").await.unwrap().unwrap();
    record.name = "Renamed".into();
    record.booking = Some(original.clone());
    s.save_campaign(&record).await.unwrap();
    let seen = s.campaign("demo").await.unwrap().unwrap();
    assert_eq!(seen.name, "Renamed");
    assert_eq!(seen.booking, Some(original.clone()));

    // Listing campaigns reads every campaign's own booking settings, which
    // live in different slots: no cross-slot command.
    let mut second = seen.clone();
    second.id = "demo-2".into();
    s.save_campaign(&second).await.unwrap();
    let mut longer = original.clone();
    longer.rules.length_minutes = 60;
    assert!(s.set_booking("demo-2", longer.clone()).await.unwrap());
    assert!(s.set_booking("demo", booking.clone()).await.unwrap());
    let listed = s.campaigns().await.unwrap();
    let of = |id: &str| {
        listed
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.booking.clone())
    };
    assert_eq!(of("demo"), Some(booking));
    assert_eq!(of("demo-2"), Some(longer));

    // Everything under key A: tokens and a dozen consent flows, whose keys
    // land on several primaries.
    let prefix = "cb:rotate:";
    let a = store(&cluster, prefix, crate::redis_store::keys(&[1]))
        .await
        .unwrap();
    a.put_connection(
        "alex",
        Connection::new(Provider::Microsoft, SecretString::from("m-1")),
    )
    .await
    .unwrap();
    for n in 0..12 {
        let flow = PendingFlow {
            user_id: "alex".into(),
            provider: Provider::Google,
            verifier: SecretString::from(format!("v-{n}")),
            redirect_uri: "https://callbook.example/v1/oauth/callback".into(),
            expect: ExpectedAccount::default(),
        };
        a.begin_flow(&format!("state-{n}"), flow).await.unwrap();
    }
    let spread = cluster.keys_by_primary(&format!("{prefix}*")).await;
    assert!(
        spread.iter().filter(|(_, k)| !k.is_empty()).count() >= 2,
        "{spread:?}"
    );
    let both = store(&cluster, prefix, crate::redis_store::keys(&[2, 1]))
        .await
        .unwrap();
    let report = both.rekey().await.unwrap();
    // Two tokens, twelve flows and the key check, from every primary.
    assert_eq!((report.resealed, report.current), (15, 0));
    // The new key alone opens everything; the old one alone nothing.
    let b = store(&cluster, prefix, crate::redis_store::keys(&[2]))
        .await
        .unwrap();
    let got = b.finish_flow("state-11").await.unwrap().unwrap();
    assert_eq!(got.verifier.expose_secret(), "v-11");
    let err = store(&cluster, prefix, crate::redis_store::keys(&[1]))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::WrongKey);
}

/// How a round of contention went.
#[derive(Default)]
struct Round {
    winners: Vec<(String, Interval)>,
    /// Calls failed for want of Redis (none but during a failover).
    unavailable: usize,
    /// Calls refused because the ledger found it lost writes it had
    /// acknowledged (a failover whose replica missed them).
    unverified: usize,
}

/// One round of contention: `callers` claims from two instances on
/// intervals that all overlap one another (and no other round's), each
/// committed when it wins.
async fn round(instances: &[RedisLedger; 2], calendar: &str, round: i64, callers: i64) -> Round {
    let mut tasks = Vec::new();
    for k in 0..callers {
        let ledger = instances[(k % 2) as usize].clone();
        let calendar = calendar.to_string();
        // Starts 0, 10 or 20 minutes into the round's hour, 30 minutes
        // long: every pair overlaps; the next round starts an hour on.
        let start = round * 60 + (k % 3) * 10;
        tasks.push(tokio::spawn(async move {
            let slot = iv(start, start + 30);
            let id = format!("r{round}-c{k}");
            let mut got = ledger.hold(&calendar, &id, slot, None, t(-60)).await;
            if got.is_ok() {
                got = ledger.commit(&calendar, &id, t(-60)).await;
            }
            (id, slot, got)
        }));
    }
    let mut out = Round::default();
    for task in tasks {
        let (id, slot, got) = task.await.unwrap();
        match got {
            Ok(()) => out.winners.push((id, slot)),
            Err(LedgerError::Taken { conflict }) => assert!(conflict.overlaps(&slot)),
            Err(LedgerError::Unavailable(_)) => out.unavailable += 1,
            Err(LedgerError::Unverified) => out.unverified += 1,
            Err(e) => panic!("{e}"),
        }
    }
    out
}

/// What a booking does when the ledger refuses a calendar as unverified:
/// rebuilds it from the provider's events, here every winner so far.
async fn rebuild_from(l: &RedisLedger, calendar: &str, winners: &[(String, Interval)]) {
    let events: Vec<Rebuilt> = winners
        .iter()
        .map(|(id, slot)| Rebuilt {
            id: id.clone(),
            interval: *slot,
            event_id: format!("ev-{id}"),
        })
        .collect();
    l.rebuild(calendar, &events, t(-60)).await.unwrap();
}

/// What the ledger holds for `calendar`: no two live claims overlap, and
/// every winner's committed claim is there.
/// `rounds` is how many rounds ran.
async fn check_no_overlap(
    l: &RedisLedger,
    calendar: &str,
    rounds: i64,
    winners: &[(String, Interval)],
) {
    let live = l
        .claims(calendar, iv(-600, rounds * 60), t(-60))
        .await
        .unwrap();
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            assert!(!a.interval.overlaps(&b.interval), "{a:?} and {b:?}");
        }
    }
    let lost: Vec<&String> = winners
        .iter()
        .filter(|(id, slot)| {
            !live
                .iter()
                .any(|c| &c.id == id && c.interval == *slot && c.committed)
        })
        .map(|(id, _)| id)
        .collect();
    assert!(lost.is_empty(), "winners lost: {lost:?}");
}

/// Two instances, 24 rounds of 16 callers on each of three calendars
/// (whose slots lie on different primaries or not): exactly one winner a
/// round, and the ledger agrees.
#[tokio::test]
async fn contended_holds_on_a_redis_cluster_have_one_winner_per_slot() {
    let cluster = RedisCluster::start(3, 0).await;
    let instances = [
        ledger(&cluster, "cb:hot:").await,
        ledger(&cluster, "cb:hot:").await,
    ];
    for calendar in ["hot-a", "hot-b", "hot-c"] {
        // A first load marks the calendar's claims complete.
        instances[0].rebuild(calendar, &[], t(-60)).await.unwrap();
        let mut all = Vec::new();
        for r in 0..24 {
            let got = round(&instances, calendar, r, 16).await;
            assert_eq!((got.unavailable, got.unverified), (0, 0));
            let winners = got.winners;
            assert_eq!(winners.len(), 1, "round {r} on {calendar}: {winners:?}");
            all.extend(winners);
        }
        check_no_overlap(&instances[0], calendar, 24, &all).await;
    }
}

/// Contended holds keep running while the primary that owns the busy
/// calendar's slot fails over to its replica: no round ever has two
/// winners, no winner's claim is lost, no two live claims overlap, and
/// once the replica serves the slot every round has its one winner again.
#[tokio::test]
async fn a_failover_of_the_busy_calendars_primary_keeps_one_winner_and_holds_resume() {
    let cluster = RedisCluster::start(3, 1).await;
    let instances = [
        ledger(&cluster, "cb:fo:").await,
        ledger(&cluster, "cb:fo:").await,
    ];
    let calendar = "busy";
    instances[0].rebuild(calendar, &[], t(-60)).await.unwrap();
    let mut all = round(&instances, calendar, 0, 16).await.winners;
    assert_eq!(all.len(), 1);
    let key = cluster
        .keys_by_primary("cb:fo:*:b")
        .await
        .into_iter()
        .find_map(|(_, k)| k.into_iter().next())
        .unwrap();
    let primary = cluster.owner_of(&key).await;

    let failed_over = std::sync::atomic::AtomicBool::new(false);
    let before = all.clone();
    let contend = async {
        let mut r = 1;
        let mut during = before;
        let (mut unavailable, mut unverified) = (0, 0);
        // Rounds until the failover is over (bounded, in case it never
        // ends; the failover's own checks fail then).
        while r < 20_000 {
            let got = round(&instances, calendar, r, 16).await;
            assert!(got.winners.len() <= 1, "round {r}: {:?}", got.winners);
            during.extend(got.winners);
            unavailable += got.unavailable;
            // The failover loses no acknowledged write (its writes wait
            // for it); should the replica still lack some, the ledger says
            // so and the calendar is rebuilt, as a booking would.
            if got.unverified > 0 {
                println!("round {r}: {} refused as unverified", got.unverified);
                unverified += got.unverified;
                rebuild_from(&instances[0], calendar, &during).await;
            }
            r += 1;
            tokio::task::yield_now().await;
            if failed_over.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
        }
        (r, during, unavailable, unverified)
    };
    let (new_primary, (next, during, unavailable, unverified)) = tokio::join!(
        async {
            let p = cluster.fail_over(primary).await;
            failed_over.store(true, std::sync::atomic::Ordering::SeqCst);
            p
        },
        contend
    );
    assert_ne!(new_primary, primary);
    assert_eq!(cluster.owner_of(&key).await, new_primary);
    all = during;

    // Holds resume on the new primary: every round has its one winner.
    for r in next..next + 10 {
        let got = round(&instances, calendar, r, 16).await;
        assert_eq!((got.unavailable, got.unverified), (0, 0), "round {r}");
        assert_eq!(got.winners.len(), 1, "round {r}: {:?}", got.winners);
        all.extend(got.winners);
    }
    println!(
        "failover: {} rounds during it, {} winners in all, {unavailable} calls unavailable, \
         {unverified} refused as unverified",
        next - 1,
        all.len()
    );
    check_no_overlap(&instances[1], calendar, next + 10, &all).await;
}

/// The whole service on a Redis Cluster: 30 callers over two callbook
/// servers whose store and ledger share the cluster, all chasing one
/// calendar; every one books, and no two events overlap.
#[tokio::test]
async fn thirty_callers_over_two_servers_on_a_redis_cluster_all_book_without_overlap() {
    let cluster = RedisCluster::start(3, 0).await;
    let report = callbook::load::run(30, 2, Some(&cluster.url))
        .await
        .unwrap();
    assert_eq!(report["booked"], 30, "{report}");
    assert_eq!(report["events"], 30, "{report}");
    assert_eq!(report["overlapping_events"], 0, "{report}");
}
