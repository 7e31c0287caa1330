//! The cost of deciding who wins a slot: a hold and its release on a
//! calendar that already has 1,000 committed claims, in process and through
//! a real `redis-server` on loopback (started here; skipped if missing),
//! plus 8 confirms racing for one slot through Redis.
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

/// 1,000 committed 30-minute claims, back to back.
async fn fill(l: &dyn Ledger) {
    for i in 0..1_000 {
        let id = format!("seed-{i}");
        l.hold("cal", &id, slot(i), None, now()).await.unwrap();
        l.commit("cal", &id, now()).await.unwrap();
    }
}

/// A hold in the middle of the filled range (refused: taken), and one past
/// it (granted, then released).
async fn round(l: &dyn Ledger) {
    let _ = l.hold("cal", "late", slot(500), None, now()).await;
    l.hold("cal", "free", slot(1_500), None, now())
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
    let memory = MemoryLedger::new();
    rt.block_on(fill(&memory));
    c.bench_function("memory: refused hold + granted hold + release", |b| {
        b.iter(|| rt.block_on(round(&memory)))
    });

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
    rt.block_on(fill(&redis));
    c.bench_function("redis: refused hold + granted hold + release", |b| {
        b.iter(|| rt.block_on(round(&redis)))
    });

    let racers: Vec<Arc<RedisLedger>> = (0..8).map(|_| Arc::new(redis.clone())).collect();
    let mut n = 0u64;
    c.bench_function("redis: 8 confirms racing for one slot", |b| {
        b.iter(|| {
            n += 1;
            let cal = format!("race-{n}");
            rt.block_on(async {
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
