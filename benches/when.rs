//! Time-phrase parsing speed: every utterance of `tests/corpora/when.tsv`
//! parsed and resolved against its own `now` and zone, one iteration per
//! utterance on average (the target is well under 100 µs each).
//!
//! `cargo bench --bench when`

use callbook::dialog::understand::when;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

fn cases() -> Vec<(String, DateTime<Utc>, Tz)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpora/when.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

fn parse_corpus(c: &mut Criterion) {
    let cases = cases();
    let mut group = c.benchmark_group("when");
    group.throughput(Throughput::Elements(cases.len() as u64));
    group.bench_function("parse and resolve the corpus", |b| {
        b.iter(|| {
            for (text, now, tz) in &cases {
                let local = now.with_timezone(tz).naive_local();
                let target =
                    when::parse(black_box(text), local).and_then(|p| p.target(None, *now, *tz));
                black_box(target);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse_corpus);
criterion_main!(benches);
