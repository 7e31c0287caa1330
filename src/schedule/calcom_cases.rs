//! Cal.com's own slot test cases, ported as facts. Each case says where
//! callbook's rules deliberately differ:
//!
//! - callbook has one window per day; Cal.com's multiple ranges become one
//!   window with busy time in the gaps;
//! - callbook aligns starts to multiples of the step from local midnight;
//!   Cal.com aligns to the range start;
//! - busy time is half-open, so a meeting may end exactly when busy starts.
//!
//! The clock is frozen at 2021-06-20T11:59:59Z as in `slots.test.ts`.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    utc("2021-06-20T11:59:59Z")
}

fn rules(
    tz: &str,
    start: &str,
    end: &str,
    len: u32,
    step: u32,
    notice: u32,
    look: u32,
) -> BookingRules {
    BookingRules::parse(&format!(
        r#"{{"timezone":"{tz}","length_minutes":{len},"slot_step_minutes":{step},
            "window":{{"days":["mon","tue","wed","thu","fri","sat","sun"],"start":"{start}","end":"{end}"}},
            "min_notice_minutes":{notice},"look_ahead_days":{look}}}"#
    ))
    .unwrap()
}

/// Free starts on one local date.
fn starts_on(
    r: &BookingRules,
    busy: Vec<Interval>,
    now: DateTime<Utc>,
    date: &str,
) -> Vec<DateTime<Utc>> {
    let day: NaiveDate = date.parse().unwrap();
    SlotFinder::new(r, busy, now)
        .free()
        .filter(|s| s.start.with_timezone(&r.timezone).date_naive() == day)
        .map(|s| s.start)
        .collect()
}

#[test]
fn full_next_day_hourly_hour_long_gives_24() {
    let r = rules("UTC", "00:00", "24:00", 60, 60, 0, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 24);
}

#[test]
fn full_next_day_hourly_half_hour_long_gives_24() {
    let r = rules("UTC", "00:00", "24:00", 30, 60, 0, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 24);
}

#[test]
fn same_day_without_notice_gives_noon_to_eleven() {
    let r = rules("UTC", "00:00", "24:00", 60, 60, 0, 0);
    let got = starts_on(&r, vec![], now(), "2021-06-20");
    assert_eq!(got.len(), 12);
    assert_eq!(got[0], utc("2021-06-20T12:00:00Z"));
    assert_eq!(got[11], utc("2021-06-20T23:00:00Z"));
}

#[test]
fn next_day_with_1500_minutes_notice_gives_11() {
    let r = rules("UTC", "00:00", "24:00", 60, 60, 1500, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 11);
}

#[test]
fn full_day_of_20_minute_events_gives_72() {
    let r = rules("UTC", "00:00", "24:00", 20, 20, 0, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 72);
}

#[test]
fn range_ending_2345_with_20_minute_events_gives_71() {
    let r = rules("UTC", "00:00", "23:45", 20, 20, 0, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 71);
}

#[test]
fn two_ranges_11_to_12_and_14_to_15_give_6() {
    // Adapted: one window 11–15 with the 12–14 gap as busy time.
    let r = rules("UTC", "11:00", "15:00", 20, 20, 0, 2);
    let gap = vec![Interval::new(
        utc("2021-06-21T12:00:00Z"),
        utc("2021-06-21T14:00:00Z"),
    )];
    assert_eq!(starts_on(&r, gap, now(), "2021-06-21").len(), 6);
}

#[test]
fn overlapping_ranges_merge_to_5() {
    // 11–12 and 11:20–12:40 are one window 11:00–12:40.
    let r = rules("UTC", "11:00", "12:40", 20, 20, 0, 2);
    assert_eq!(starts_on(&r, vec![], now(), "2021-06-21").len(), 5);
}

#[test]
fn overlapping_ranges_with_45_minute_events_give_2() {
    // 11:00–13:00 and 11:15–13:00 are one window. Same count as Cal.com, but
    // on callbook's midnight grid the starts are 11:15 and 12:00 (Cal.com:
    // 11:00 and 11:45).
    let r = rules("UTC", "11:00", "13:00", 45, 45, 0, 2);
    let got = starts_on(&r, vec![], now(), "2021-06-21");
    assert_eq!(
        got,
        vec![utc("2021-06-21T11:15:00Z"), utc("2021-06-21T12:00:00Z")]
    );
}

#[test]
fn kolkata_0730_to_0930_hour_long_gives_exactly_0800() {
    let r = rules("Asia/Kolkata", "07:30", "09:30", 60, 60, 0, 2);
    let got = starts_on(&r, vec![], now(), "2021-06-21");
    assert_eq!(got, vec![utc("2021-06-21T08:00:00+05:30")]);
}

#[test]
fn brussels_evening_range_ends_with_2245() {
    // Cal.com's second range 18:30–20:59:59Z is 20:30–22:59:59 in Brussels
    // (CEST); callbook's window is whole minutes, so it ends at 23:00 and the
    // last 15-minute meeting still starts at 22:45+02:00.
    let r = rules("Europe/Brussels", "20:30", "23:00", 15, 15, 120, 2);
    let got = starts_on(&r, vec![], now(), "2021-06-20");
    assert_eq!(*got.last().unwrap(), utc("2021-06-20T22:45:00+02:00"));
}

#[test]
fn eight_minute_events_sit_on_the_midnight_grid() {
    // Deliberately different: Cal.com gives 07:22, 07:30, 07:38, 07:46 from
    // the range start; callbook's grid is multiples of 8 from midnight.
    let r = rules("UTC", "07:22", "08:00", 8, 8, 0, 2);
    let got = starts_on(&r, vec![], now(), "2021-06-21");
    let expected: Vec<_> = ["07:28", "07:36", "07:44", "07:52"]
        .iter()
        .map(|t| utc(&format!("2021-06-21T{t}:00Z")))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn los_angeles_hour_slots_match_unoptimized_slots() {
    // Ranges 08:00–10:00 and 10:10–12:30 → one window, busy 10:00–10:10.
    // callbook never moves starts off the grid, so it matches Cal.com with
    // showOptimizedSlots off: 08:00, 09:00, 11:00.
    let r = rules("America/Los_Angeles", "08:00", "12:30", 60, 60, 0, 2);
    let busy = vec![Interval::new(
        utc("2021-06-21T10:00:00-07:00"),
        utc("2021-06-21T10:10:00-07:00"),
    )];
    let got = starts_on(&r, busy, now(), "2021-06-21");
    assert_eq!(
        got,
        vec![
            utc("2021-06-21T08:00:00-07:00"),
            utc("2021-06-21T09:00:00-07:00"),
            utc("2021-06-21T11:00:00-07:00")
        ]
    );
}

#[test]
fn new_york_window_across_fall_back_is_14_to_22_utc_from_nov_6() {
    // date-ranges.test.ts: 9–17 New York across 2023-11-05.
    let r = rules("America/New_York", "09:00", "17:00", 60, 60, 0, 5);
    let f = SlotFinder::new(&r, vec![], utc("2023-11-03T00:00:00Z"));
    let before: Vec<_> = f
        .free()
        .filter(|s| s.start < utc("2023-11-04T23:00:00Z"))
        .collect();
    let after: Vec<_> = f
        .free()
        .filter(|s| s.start > utc("2023-11-06T00:00:00Z"))
        .collect();
    assert_eq!(before.first().unwrap().start, utc("2023-11-03T13:00:00Z"));
    assert_eq!(after.first().unwrap().start, utc("2023-11-06T14:00:00Z"));
    assert_eq!(
        after
            .iter()
            .rfind(|s| s.start.date_naive() == after[0].start.date_naive())
            .unwrap()
            .end,
        utc("2023-11-06T22:00:00Z")
    );
}

#[test]
fn ist_legacy_case_gives_11_slots_and_touching_busy_removes_none() {
    // getSchedule.test.ts: IST 09:30–18:00, 30 long, every 45, notice 1440.
    // Same count (11); callbook's grid starts at 09:45 (04:15Z), not 09:30.
    // A booking 04:00–04:15Z (09:30–09:45 local) only touches 09:45, and
    // busy time is half-open, so nothing is removed.
    // The notice pushes the first bookable day to the 22nd here.
    let r = rules("Asia/Kolkata", "09:30", "18:00", 30, 45, 1440, 3);
    let busy = vec![Interval::new(
        utc("2021-06-22T04:00:00Z"),
        utc("2021-06-22T04:15:00Z"),
    )];
    let got = starts_on(&r, busy, now(), "2021-06-22");
    assert_eq!(got.len(), 11);
    assert_eq!(got[0], utc("2021-06-22T04:15:00Z"));
    assert_eq!(got[10], utc("2021-06-22T11:45:00Z"));
}

#[test]
fn buffers_close_a_90_minute_gap_between_callbook_bookings() {
    // buffers.integration-test.ts: 30-minute event, before 15, after 30,
    // bookings 12:30–13:00 and 14:30–15:00Z leave no slot in between.
    // callbook keeps its own bookings as padded claims, which gives the
    // same answer; a foreign busy block is not padded by its own buffers.
    let r = BookingRules::parse(
        r#"{"timezone":"UTC","length_minutes":30,"slot_step_minutes":30,
            "window":{"days":["mon"],"start":"09:00","end":"17:00"},
            "buffer_before_minutes":15,"buffer_after_minutes":30,"look_ahead_days":2}"#,
    )
    .unwrap();
    let own = |a: &str, b: &str| r.padded(Interval::new(utc(a), utc(b)));
    let claims = vec![
        own("2021-06-21T12:30:00Z", "2021-06-21T13:00:00Z"),
        own("2021-06-21T14:30:00Z", "2021-06-21T15:00:00Z"),
    ];
    let gap = Interval::new(utc("2021-06-21T13:00:00Z"), utc("2021-06-21T14:30:00Z"));
    let f = SlotFinder::new(&r, claims, now());
    assert!(f.free().all(|s| !gap.contains(s.start)));
    // Against the same blocks as foreign busy time, 13:30 fits: its padded
    // interval 13:15–14:30 ends where the second block begins.
    let foreign = vec![
        Interval::new(utc("2021-06-21T12:30:00Z"), utc("2021-06-21T13:00:00Z")),
        Interval::new(utc("2021-06-21T14:30:00Z"), utc("2021-06-21T15:00:00Z")),
    ];
    let f = SlotFinder::new(&r, foreign, now());
    let in_gap: Vec<_> = f
        .free()
        .filter(|s| gap.contains(s.start))
        .map(|s| s.start)
        .collect();
    assert_eq!(in_gap, vec![utc("2021-06-21T13:30:00Z")]);
}
