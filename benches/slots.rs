//! Slot engine speed on a heavy calendar: 60 days, 2,000 unsorted and
//! overlapping busy blocks, a 15-minute step; and the same 10× larger (600
//! days, 20,000 blocks) to show cost grows linearly.
//!
//! `cargo bench --bench slots`

use callbook::schedule::{BookingRules, Interval, SlotFinder};
use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

fn rules(days: u32) -> BookingRules {
    BookingRules::parse(&format!(
        r#"{{"timezone":"America/New_York","length_minutes":30,"slot_step_minutes":15,
            "window":{{"days":["mon","tue","wed","thu","fri"],"start":"08:00","end":"18:00"}},
            "buffer_before_minutes":5,"buffer_after_minutes":10,"min_notice_minutes":120,
            "look_ahead_days":{days}}}"#
    ))
    .unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-12-01T13:07:00Z".parse().unwrap()
}

/// `n` busy blocks spread over `days`, unsorted and overlapping, from a
/// fixed-seed generator so every run measures the same input.
fn busy(n: usize, days: i64) -> Vec<Interval> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    (0..n)
        .map(|_| {
            let start = now() + Duration::minutes(next((days * 24 * 60) as u64) as i64);
            Interval::new(start, start + Duration::minutes(15 + next(150) as i64))
        })
        .collect()
}

fn bench_size(c: &mut Criterion, label: &str, days: u32, blocks: usize) {
    let rules = rules(days);
    let busy = busy(blocks, i64::from(days));
    let prepared = SlotFinder::new(&rules, busy.clone(), now());
    let target = now() + Duration::days(i64::from(days) / 2) + Duration::minutes(7);
    let mut g = c.benchmark_group(label);
    g.bench_function("first 3 free after now", |b| {
        b.iter(|| black_box(prepared.first_free(now(), 3)))
    });
    g.bench_function("3 nearest a requested instant", |b| {
        b.iter(|| black_box(prepared.nearest(target, 3, &[])))
    });
    g.bench_function("full listing", |b| {
        b.iter(|| black_box(prepared.free().count()))
    });
    g.bench_function("merge busy (once per call)", |b| {
        b.iter_batched(
            || busy.clone(),
            |v| black_box(SlotFinder::new(&rules, v, now()).busy().len()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("cold: merge + first 3", |b| {
        b.iter_batched(
            || busy.clone(),
            |v| black_box(SlotFinder::new(&rules, v, now()).first_free(now(), 3)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn slots(c: &mut Criterion) {
    bench_size(c, "60 days, 2000 blocks", 60, 2_000);
    bench_size(c, "600 days, 20000 blocks", 600, 20_000);
}

criterion_group!(benches, slots);
criterion_main!(benches);
