//! Property tests: every slot obeys every rule, and no free candidate is
//! missing, checked against a brute-force reference written plainly here.

use super::*;
use chrono::{Datelike, LocalResult, Timelike};
use proptest::prelude::*;
use std::collections::BTreeSet;

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Santiago",
    "Europe/London",
    "Europe/Paris",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Asia/Tehran",
];

/// Step sizes that divide a day.
const STEPS: &[u32] = &[5, 10, 15, 20, 30, 45, 60, 90, 120];

/// Clock-change dates (and ordinary ones) to start near.
const ANCHORS: &[&str] = &[
    "2026-03-08T06:00:00Z",
    "2026-03-29T00:00:00Z",
    "2026-04-05T00:00:00Z",
    "2026-09-06T00:00:00Z",
    "2026-10-04T00:00:00Z",
    "2026-10-25T00:00:00Z",
    "2026-11-01T06:00:00Z",
    "2026-12-01T15:00:00Z",
];

fn arb_rules() -> impl Strategy<Value = BookingRules> {
    (
        0..ZONES.len(),
        0..STEPS.len(),
        5u32..=120,
        0u32..(24 * 12),
        1u8..=127,
        (0u32..=60, 0u32..=60, 0u32..=600, 0u32..=8),
    )
        .prop_filter_map(
            "window too short",
            |(z, st, len, start5, days, (before, after, notice, look))| {
                let start = start5 * 5;
                let end = (start + len + (start5 * 7 % 300)).min(24 * 60);
                if end < start + len {
                    return None;
                }
                let hm = |m: u32| {
                    if m == 24 * 60 {
                        "24:00".to_string()
                    } else {
                        format!("{:02}:{:02}", m / 60, m % 60)
                    }
                };
                let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                let day_list: Vec<String> = (0..7)
                    .filter(|i| days & (1 << i) != 0)
                    .map(|i| format!("\"{}\"", names[i]))
                    .collect();
                let json = format!(
                    r#"{{"timezone":"{}","length_minutes":{len},"slot_step_minutes":{},
                    "window":{{"days":[{}],"start":"{}","end":"{}"}},
                    "buffer_before_minutes":{before},"buffer_after_minutes":{after},
                    "min_notice_minutes":{notice},"look_ahead_days":{look}}}"#,
                    ZONES[z],
                    STEPS[st],
                    day_list.join(","),
                    hm(start),
                    hm(end)
                );
                BookingRules::parse(&json).ok()
            },
        )
}

fn arb_now() -> impl Strategy<Value = DateTime<Utc>> {
    (0..ANCHORS.len(), -4 * 86_400i64..4 * 86_400).prop_map(|(a, off)| {
        DateTime::parse_from_rfc3339(ANCHORS[a])
            .unwrap()
            .with_timezone(&Utc)
            + Duration::seconds(off)
    })
}

fn arb_busy(now: DateTime<Utc>) -> impl Strategy<Value = Vec<Interval>> {
    prop::collection::vec((-1440i64..12 * 1440, 1i64..600), 0..30).prop_map(move |v| {
        v.into_iter()
            .map(|(start, len)| {
                let s = now + Duration::minutes(start);
                Interval::new(s, s + Duration::minutes(len))
            })
            .collect()
    })
}

/// The rule for local times, written out: step forward a minute at a time
/// out of a gap; take the earlier of two.
fn plain_resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    loop {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return x.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(1),
        }
    }
}

/// Every free start, by trying every grid point of every bookable day
/// against every rule and every busy interval.
fn reference(r: &BookingRules, busy: &[Interval], now: DateTime<Utc>) -> BTreeSet<DateTime<Utc>> {
    let tz = r.timezone;
    let today = now.with_timezone(&tz).date_naive();
    let mut out = BTreeSet::new();
    for d in 0..=i64::from(r.look_ahead_days) {
        let date = today + Duration::days(d);
        if !r.window.days[date.weekday().num_days_from_monday() as usize] {
            continue;
        }
        let open = plain_resolve(tz, date.and_time(r.window.start));
        let close = match r.window.end {
            Some(e) => plain_resolve(tz, date.and_time(e)),
            None => plain_resolve(tz, (date + Duration::days(1)).and_time(NaiveTime::MIN)),
        };
        for k in 0..(1440 / r.slot_step_minutes) {
            let local = date.and_time(NaiveTime::MIN)
                + Duration::minutes(i64::from(k * r.slot_step_minutes));
            let s = plain_resolve(tz, local);
            let e = s + Duration::minutes(i64::from(r.length_minutes));
            if s < open || e > close || s < now + Duration::minutes(i64::from(r.min_notice_minutes))
            {
                continue;
            }
            let ps = s - Duration::minutes(i64::from(r.buffer_before_minutes));
            let pe = e + Duration::minutes(i64::from(r.buffer_after_minutes));
            if busy
                .iter()
                .any(|b| b.start < b.end && b.start < pe && ps < b.end)
            {
                continue;
            }
            out.insert(s);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn slots_equal_the_brute_force_reference(
        (rules, now, busy) in (arb_rules(), arb_now()).prop_flat_map(|(r, n)| (Just(r), Just(n), arb_busy(n)))
    ) {
        let finder = SlotFinder::new(&rules, busy.clone(), now);
        let got: Vec<DateTime<Utc>> = finder.free().map(|s| s.start).collect();
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "not strictly ordered");
        let expected: Vec<DateTime<Utc>> = reference(&rules, &busy, now).into_iter().collect();
        prop_assert_eq!(&got, &expected);
        // The point queries agree with the listing.
        prop_assert_eq!(finder.first_free(now, 3), finder.free().take(3).collect::<Vec<_>>());
        for s in finder.free().take(20) {
            prop_assert!(finder.is_free(s));
        }
    }

    #[test]
    fn every_slot_obeys_every_rule(
        (rules, now, busy) in (arb_rules(), arb_now()).prop_flat_map(|(r, n)| (Just(r), Just(n), arb_busy(n)))
    ) {
        let tz = rules.timezone;
        let today = now.with_timezone(&tz).date_naive();
        let finder = SlotFinder::new(&rules, busy.clone(), now);
        for slot in finder.free() {
            let local = slot.start.with_timezone(&tz);
            let date = local.date_naive();
            // Inside the window, read in the owner's zone.
            let open = plain_resolve(tz, date.and_time(rules.window.start));
            let close = match rules.window.end {
                Some(e) => plain_resolve(tz, date.and_time(e)),
                None => plain_resolve(tz, (date + Duration::days(1)).and_time(NaiveTime::MIN)),
            };
            prop_assert!(rules.window.allows(date));
            prop_assert!(slot.start >= open && slot.end <= close);
            // Aligned: on the grid, or the first instant after a gap.
            let minutes = local.hour() * 60 + local.minute();
            let after_gap = tz.offset_from_utc_datetime(&(slot.start - Duration::minutes(1)).naive_utc())
                != tz.offset_from_utc_datetime(&slot.start.naive_utc());
            prop_assert!(minutes % rules.slot_step_minutes == 0 || after_gap);
            prop_assert_eq!(local.second(), 0);
            // Notice and look-ahead.
            prop_assert!(slot.start >= now + rules.min_notice());
            prop_assert!(date >= today && date <= today + Duration::days(i64::from(rules.look_ahead_days)));
            // Padded interval clear of every busy interval.
            let padded = rules.padded(slot);
            prop_assert!(busy.iter().all(|b| !b.overlaps(&padded)));
        }
    }

    #[test]
    fn nearest_is_the_closest_free_slots(
        (rules, now, busy, off) in (arb_rules(), arb_now())
            .prop_flat_map(|(r, n)| (Just(r), Just(n), arb_busy(n), -1440i64..12 * 1440))
    ) {
        let finder = SlotFinder::new(&rules, busy, now);
        let target = now + Duration::minutes(off);
        let mut all: Vec<Interval> = finder.free().collect();
        all.sort_by_key(|s| ((s.start - target).num_seconds().abs(), s.start));
        all.truncate(3);
        prop_assert_eq!(finder.nearest(target, 3, &[]), all);
    }
}
