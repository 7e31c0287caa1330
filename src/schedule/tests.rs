use super::*;
use chrono::{NaiveDate, NaiveTime};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(utc(a), utc(b))
}

fn rules(json: &str) -> BookingRules {
    BookingRules::parse(json).unwrap()
}

fn ny_rules() -> BookingRules {
    rules(
        r#"{"timezone":"America/New_York","length_minutes":30,"slot_step_minutes":30,
            "window":{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00"},
            "buffer_before_minutes":0,"buffer_after_minutes":10,"min_notice_minutes":120,
            "look_ahead_days":14}"#,
    )
}

#[test]
fn first_slot_respects_notice_and_window() {
    let r = ny_rules();
    // Tuesday 2026-12-01 08:00 New York = 13:00Z; notice pushes to 10:00 local.
    let f = SlotFinder::new(&r, vec![], utc("2026-12-01T13:00:00Z"));
    let first = f.first_free(utc("2026-12-01T00:00:00Z"), 2);
    assert_eq!(first[0], iv("2026-12-01T15:00:00Z", "2026-12-01T15:30:00Z"));
    assert_eq!(first[1], iv("2026-12-01T15:30:00Z", "2026-12-01T16:00:00Z"));
}

#[test]
fn last_slot_of_day_ends_at_window_end() {
    let r = ny_rules();
    let f = SlotFinder::new(&r, vec![], utc("2026-12-01T13:00:00Z"));
    let day: Vec<_> = f
        .free()
        .filter(|s| {
            s.start.with_timezone(&r.timezone).date_naive()
                == NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
        })
        .collect();
    assert_eq!(day.len(), 16);
    assert_eq!(day.last().unwrap().end, utc("2026-12-02T22:00:00Z"));
}

#[test]
fn buffer_after_keeps_slot_clear_of_following_busy() {
    let r = ny_rules();
    // Busy from 10:30 local; the 10:00 slot's padded end is 10:40, so it is out.
    let busy = vec![iv("2026-12-02T15:30:00Z", "2026-12-02T16:00:00Z")];
    let f = SlotFinder::new(&r, busy, utc("2026-12-01T13:00:00Z"));
    assert!(!f.is_free(iv("2026-12-02T15:00:00Z", "2026-12-02T15:30:00Z")));
    // 9:30 + 30 + 10 = 10:10 <= 10:30: free.
    assert!(f.is_free(iv("2026-12-02T14:30:00Z", "2026-12-02T15:00:00Z")));
    assert!(f.is_free(iv("2026-12-02T16:00:00Z", "2026-12-02T16:30:00Z")));
    assert_eq!(
        f.exclusion(utc("2026-12-02T15:00:00Z")),
        Some(Exclusion::Busy {
            start: utc("2026-12-02T15:30:00Z"),
            end: utc("2026-12-02T16:00:00Z")
        })
    );
}

#[test]
fn look_ahead_is_inclusive_of_the_last_day() {
    let r = rules(
        r#"{"timezone":"UTC","length_minutes":60,"slot_step_minutes":60,
            "window":{"days":["mon","tue","wed","thu","fri","sat","sun"],"start":"09:00","end":"10:00"},
            "look_ahead_days":2}"#,
    );
    let f = SlotFinder::new(&r, vec![], utc("2026-12-01T08:00:00Z"));
    let all: Vec<_> = f.free().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].start, utc("2026-12-03T09:00:00Z"));
}

#[test]
fn spring_forward_keeps_local_window_in_chicago() {
    let r = rules(
        r#"{"timezone":"America/Chicago","length_minutes":60,"slot_step_minutes":60,
            "window":{"days":["sun","mon"],"start":"09:00","end":"12:00"},"look_ahead_days":3}"#,
    );
    // DST starts Sunday 2027-03-14 at 02:00 local.
    let f = SlotFinder::new(&r, vec![], utc("2027-03-13T12:00:00Z"));
    let starts: Vec<_> = f.free().map(|s| s.start).collect();
    // Sunday (CDT, -5): 14:00Z..16:00Z; Monday the same.
    assert_eq!(starts[0], utc("2027-03-14T14:00:00Z"));
    assert_eq!(starts.len(), 6);
}

#[test]
fn gap_times_move_forward_and_deduplicate() {
    let r = rules(
        r#"{"timezone":"America/Chicago","length_minutes":30,"slot_step_minutes":30,
            "window":{"days":["sun"],"start":"01:00","end":"04:00"},"look_ahead_days":1}"#,
    );
    let f = SlotFinder::new(&r, vec![], utc("2027-03-13T12:00:00Z"));
    let starts: Vec<_> = f
        .free()
        .map(|s| s.start.with_timezone(&r.timezone).time())
        .collect();
    let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    // 02:00 and 02:30 do not exist and both move to 03:00.
    assert_eq!(starts, vec![t(1, 0), t(1, 30), t(3, 0), t(3, 30)]);
}

#[test]
fn kolkata_half_hour_offset() {
    let r = rules(
        r#"{"timezone":"Asia/Kolkata","length_minutes":60,"slot_step_minutes":60,
            "window":{"days":["mon","tue","wed","thu","fri","sat","sun"],"start":"07:30","end":"09:30"},
            "look_ahead_days":0}"#,
    );
    let f = SlotFinder::new(&r, vec![], utc("2021-06-20T00:00:00Z"));
    let starts: Vec<_> = f.free().map(|s| s.start).collect();
    assert_eq!(starts, vec![utc("2021-06-20T02:30:00Z")]);
}

#[test]
fn nearest_prefers_earlier_on_tie_and_skips_declined() {
    let r = ny_rules();
    let f = SlotFinder::new(&r, vec![], utc("2026-12-01T13:00:00Z"));
    let target = utc("2026-12-02T15:15:00Z");
    let near = f.nearest(target, 2, &[]);
    assert_eq!(near[0].start, utc("2026-12-02T15:00:00Z"));
    assert_eq!(near[1].start, utc("2026-12-02T15:30:00Z"));
    let near = f.nearest(target, 1, &[near[0]]);
    assert_eq!(near[0].start, utc("2026-12-02T15:30:00Z"));
}

#[test]
fn free_within_puts_hours_first() {
    let r = ny_rules();
    let f = SlotFinder::new(&r, vec![], utc("2026-12-01T13:00:00Z"));
    let got = f.free_within(
        iv("2026-12-02T17:00:00Z", "2026-12-02T19:00:00Z"),
        r.timezone,
        &[],
    );
    let starts: Vec<_> = got.iter().map(|s| s.start).collect();
    assert_eq!(
        starts,
        vec![
            utc("2026-12-02T17:00:00Z"),
            utc("2026-12-02T18:00:00Z"),
            utc("2026-12-02T17:30:00Z"),
            utc("2026-12-02T18:30:00Z"),
        ]
    );
}

#[test]
fn merge_busy_handles_unsorted_overlapping_and_touching() {
    let merged = merge_busy(vec![
        iv("2026-12-01T12:00:00Z", "2026-12-01T13:00:00Z"),
        iv("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"),
        iv("2026-12-01T10:30:00Z", "2026-12-01T12:00:00Z"),
        iv("2026-12-01T15:00:00Z", "2026-12-01T15:00:00Z"),
    ]);
    assert_eq!(
        merged,
        vec![iv("2026-12-01T10:00:00Z", "2026-12-01T13:00:00Z")]
    );
}

#[test]
fn validation_names_the_field() {
    let bad = |patch: &str| {
        let base = r#"{"timezone":"UTC","length_minutes":30,"slot_step_minutes":30,
            "window":{"days":["mon"],"start":"09:00","end":"17:00"},"look_ahead_days":14}"#;
        let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
        let p: serde_json::Value = serde_json::from_str(patch).unwrap();
        for (k, val) in p.as_object().unwrap() {
            v[k] = val.clone();
        }
        BookingRules::parse(&v.to_string()).unwrap_err().to_string()
    };
    assert!(bad(r#"{"timezone":"Mars/Olympus"}"#).starts_with("timezone"));
    assert!(bad(r#"{"length_minutes":0}"#).starts_with("length_minutes"));
    assert!(bad(r#"{"length_minutes":-5}"#).starts_with("length_minutes"));
    assert!(bad(r#"{"slot_step_minutes":7}"#).starts_with("slot_step_minutes"));
    assert!(
        bad(r#"{"window":{"days":["funday"],"start":"09:00","end":"17:00"}}"#)
            .starts_with("window.days")
    );
    assert!(
        bad(r#"{"window":{"days":["mon"],"start":"17:00","end":"09:00"}}"#)
            .starts_with("window.end")
    );
    assert!(
        bad(r#"{"window":{"days":["mon"],"start":"9am","end":"17:00"}}"#)
            .starts_with("window.start")
    );
}

#[test]
fn subtract_opens_a_hole() {
    let busy = vec![iv("2026-12-01T10:00:00Z", "2026-12-01T12:00:00Z")];
    let out = subtract(&busy, iv("2026-12-01T10:30:00Z", "2026-12-01T11:00:00Z"));
    assert_eq!(
        out,
        vec![
            iv("2026-12-01T10:00:00Z", "2026-12-01T10:30:00Z"),
            iv("2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z"),
        ]
    );
}

#[test]
fn earlier_and_later_than_the_slot_on_offer() {
    let r = ny_rules();
    // Busy 10:00–11:00 local on Wednesday.
    let busy = vec![iv("2026-12-02T15:00:00Z", "2026-12-02T16:00:00Z")];
    let f = SlotFinder::new(&r, busy, utc("2026-12-01T13:00:00Z"));
    let offered = iv("2026-12-02T16:00:00Z", "2026-12-02T16:30:00Z");
    // Earlier: latest first, skipping 9:30 (its buffer runs into the busy hour).
    let earlier = f.earlier(offered, 2, &[]);
    assert_eq!(earlier[0].start, utc("2026-12-02T14:00:00Z"));
    assert_eq!(earlier[1].start, utc("2026-12-01T21:30:00Z"));
    let later = f.later(
        offered,
        2,
        &[iv("2026-12-02T16:30:00Z", "2026-12-02T17:00:00Z")],
    );
    assert_eq!(later[0].start, utc("2026-12-02T17:00:00Z"));
    assert_eq!(later[1].start, utc("2026-12-02T17:30:00Z"));
    // Nothing before the notice.
    assert!(f
        .earlier(iv("2026-12-01T15:00:00Z", "2026-12-01T15:30:00Z"), 3, &[])
        .is_empty());
}

#[test]
fn alternatives_offer_the_day_asked_twice_well_apart_then_the_next_day() {
    let r = ny_rules();
    let f = SlotFinder::new(&r, vec![], utc("2026-11-30T14:00:00Z"));
    let noon_monday = utc("2026-12-07T17:00:00Z");
    let got = f.alternatives(noon_monday, chrono_tz::America::New_York, None, &[], 3);
    let starts: Vec<DateTime<Utc>> = got.iter().map(|s| s.start).collect();
    assert_eq!(
        starts,
        vec![
            utc("2026-12-07T17:00:00Z"),
            utc("2026-12-07T19:00:00Z"),
            utc("2026-12-08T17:00:00Z")
        ]
    );
}
