//! The cost of deciding who wins a slot: a hold and its release on a
//! calendar that already has 1,000 committed claims, in process and through
//! a real `redis-server` on loopback (started here; skipped if missing),
//! plus 8 confirms racing for one slot through Redis. In process it is also
//! measured at 100,000 claims: the index keeps it flat.
//!
//! `cargo bench --bench ledger`

use callbook::harness::RedisServer;
use callbook::ledger::{Ledger, MemoryLedger, RedisLedger};
use callbook::schedule::Interval;
use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

fn now() -> DateTime<Utc> {
    "2026-12-01T13:00:00Z".parse().unwrap()
}

fn slot(i: i64) -> Interval {
    let start = now() + Duration::minutes(30 * i);
    Interval::new(start, start + Duration::minutes(30))
}

/// `n` committed 30-minute claims, back to back.
async fn fill(l: &dyn Ledger, n: i64) {
    // A shared ledger answers only for calendars whose claims it knows.
    l.rebuild("cal", &[], now()).await.unwrap();
    for i in 0..n {
        let id = format!("seed-{i}");
        l.hold("cal", &id, slot(i), None, now()).await.unwrap();
        l.commit("cal", &id, now()).await.unwrap();
    }
}

/// A hold in the middle of the `n` filled slots (refused: taken), and one
/// past them (granted, then released).
async fn round(l: &dyn Ledger, n: i64) {
    let _ = l.hold("cal", "late", slot(n / 2), None, now()).await;
    l.hold("cal", "free", slot(n + 500), None, now())
        .await
        .unwrap();
    l.release("cal", "free").await.unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for n in [1_000, 100_000] {
        let memory = MemoryLedger::new();
        rt.block_on(fill(&memory, n));
        c.bench_function(
            &format!("memory, {n} claims: refused hold + granted hold + release"),
            |b| b.iter(|| rt.block_on(round(&memory, n))),
        );
    }

    let server = match rt.block_on(RedisServer::start()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping the Redis benchmarks: {e:#}");
            return;
        }
    };
    let redis = rt
        .block_on(RedisLedger::connect(&server.url, "bench:"))
        .unwrap();
    rt.block_on(fill(&redis, 1_000));
    c.bench_function("redis: refused hold + granted hold + release", |b| {
        b.iter(|| rt.block_on(round(&redis, 1_000)))
    });

    let racers: Vec<Arc<RedisLedger>> = (0..8).map(|_| Arc::new(redis.clone())).collect();
    let mut n = 0u64;
    c.bench_function("redis: 8 confirms racing for one slot", |b| {
        b.iter(|| {
            n += 1;
            let cal = format!("race-{n}");
            rt.block_on(async {
                racers[0].rebuild(&cal, &[], now()).await.unwrap();
                let tasks: Vec<_> = racers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let (l, cal) = (l.clone(), cal.clone());
                        tokio::spawn(async move {
                            l.hold(&cal, &format!("c{i}"), slot(0), None, now())
                                .await
                                .is_ok()
                        })
                    })
                    .collect();
                let mut winners = 0;
                for t in tasks {
                    winners += usize::from(t.await.unwrap());
                }
                assert_eq!(winners, 1);
            })
        })
    });
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
