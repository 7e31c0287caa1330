//! Both clock changes in several zones, and the odd offsets.
//!
//! On a change day a 09:00–17:00 window stays 09:00–17:00 local, so its UTC
//! instants shift by the change; a window across the change hour loses the
//! wall-clock times that do not exist, and takes the earlier instant of the
//! ones that happen twice.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn daily(tz: &str, start: &str, end: &str, step: u32) -> BookingRules {
    BookingRules::parse(&format!(
        r#"{{"timezone":"{tz}","length_minutes":{step},"slot_step_minutes":{step},
            "window":{{"days":["mon","tue","wed","thu","fri","sat","sun"],"start":"{start}","end":"{end}"}},
            "look_ahead_days":3}}"#
    ))
    .unwrap()
}

/// Local wall-clock starts ("HH:MM") on a date, plus their UTC instants.
fn day(r: &BookingRules, now: &str, date: &str) -> Vec<(String, DateTime<Utc>)> {
    let d: NaiveDate = date.parse().unwrap();
    SlotFinder::new(r, vec![], utc(now))
        .free()
        .filter(|s| s.start.with_timezone(&r.timezone).date_naive() == d)
        .map(|s| {
            (
                s.start
                    .with_timezone(&r.timezone)
                    .format("%H:%M")
                    .to_string(),
                s.start,
            )
        })
        .collect()
}

fn locals(v: &[(String, DateTime<Utc>)]) -> Vec<&str> {
    v.iter().map(|(l, _)| l.as_str()).collect()
}

#[test]
fn chicago_spring_forward_business_day_keeps_local_hours() {
    let r = daily("America/Chicago", "09:00", "17:00", 60);
    let got = day(&r, "2027-03-13T00:00:00Z", "2027-03-14");
    assert_eq!(got.len(), 8);
    assert_eq!(got[0].1, utc("2027-03-14T14:00:00Z")); // CDT, −5
    let before = day(&r, "2027-03-12T00:00:00Z", "2027-03-13");
    assert_eq!(before[0].1, utc("2027-03-13T15:00:00Z")); // CST, −6
}

#[test]
fn chicago_spring_forward_night_skips_the_missing_hour() {
    let r = daily("America/Chicago", "00:00", "05:00", 60);
    let got = day(&r, "2027-03-13T00:00:00Z", "2027-03-14");
    // 02:00 does not exist; it moves to 03:00, which is already a start.
    assert_eq!(locals(&got), ["00:00", "01:00", "03:00", "04:00"]);
}

#[test]
fn chicago_fall_back_night_takes_the_earlier_one_am() {
    let r = daily("America/Chicago", "00:00", "04:00", 60);
    let got = day(&r, "2026-10-31T00:00:00Z", "2026-11-01");
    assert_eq!(locals(&got), ["00:00", "01:00", "02:00", "03:00"]);
    assert_eq!(got[1].1, utc("2026-11-01T06:00:00Z")); // the first 01:00, CDT
    assert_eq!(got[2].1, utc("2026-11-01T08:00:00Z")); // 02:00 CST
}

#[test]
fn london_spring_forward_and_fall_back() {
    let r = daily("Europe/London", "00:00", "04:00", 60);
    let spring = day(&r, "2027-03-27T00:00:00Z", "2027-03-28");
    assert_eq!(locals(&spring), ["00:00", "02:00", "03:00"]);
    let fall = day(&r, "2026-10-24T00:00:00Z", "2026-10-25");
    assert_eq!(locals(&fall), ["00:00", "01:00", "02:00", "03:00"]);
    assert_eq!(fall[1].1, utc("2026-10-25T00:00:00Z")); // first 01:00, BST
    let work = daily("Europe/London", "09:00", "17:00", 60);
    assert_eq!(
        day(&work, "2027-03-27T00:00:00Z", "2027-03-28")[0].1,
        utc("2027-03-28T08:00:00Z")
    );
    assert_eq!(
        day(&work, "2026-10-24T00:00:00Z", "2026-10-25")[0].1,
        utc("2026-10-25T09:00:00Z")
    );
}

#[test]
fn sydney_southern_hemisphere_changes() {
    // DST starts 2026-10-04 02:00 → 03:00; ends 2027-04-04 03:00 → 02:00.
    let r = daily("Australia/Sydney", "01:00", "05:00", 60);
    let start = day(&r, "2026-10-03T00:00:00Z", "2026-10-04");
    assert_eq!(locals(&start), ["01:00", "03:00", "04:00"]);
    let end = day(&r, "2027-04-03T00:00:00Z", "2027-04-04");
    assert_eq!(locals(&end), ["01:00", "02:00", "03:00", "04:00"]);
    assert_eq!(end[1].1, utc("2027-04-03T15:00:00Z")); // first 02:00, AEDT +11
    let work = daily("Australia/Sydney", "09:00", "17:00", 60);
    assert_eq!(
        day(&work, "2026-10-03T00:00:00Z", "2026-10-04")[0].1,
        utc("2026-10-03T22:00:00Z")
    ); // +11
    assert_eq!(
        day(&work, "2027-04-03T00:00:00Z", "2027-04-04")[0].1,
        utc("2027-04-03T23:00:00Z")
    ); // +10
}

#[test]
fn kolkata_half_hour_offset_keeps_the_local_grid() {
    let r = daily("Asia/Kolkata", "09:00", "11:00", 30);
    let got = day(&r, "2026-12-01T00:00:00Z", "2026-12-02");
    assert_eq!(locals(&got), ["09:00", "09:30", "10:00", "10:30"]);
    assert_eq!(got[0].1, utc("2026-12-02T03:30:00Z"));
}

#[test]
fn kathmandu_quarter_hour_offset_keeps_the_local_grid() {
    let r = daily("Asia/Kathmandu", "09:00", "10:00", 30);
    let got = day(&r, "2026-12-01T00:00:00Z", "2026-12-02");
    assert_eq!(locals(&got), ["09:00", "09:30"]);
    assert_eq!(got[0].1, utc("2026-12-02T03:15:00Z"));
}

#[test]
fn a_meeting_across_the_spring_gap_is_measured_in_real_time() {
    // 01:30 + 60 real minutes ends at 03:30 local on the change day, past a
    // 03:00 window end, although wall-clock arithmetic would say 02:30.
    let r = BookingRules::parse(
        r#"{"timezone":"America/Chicago","length_minutes":60,"slot_step_minutes":30,
            "window":{"days":["sun"],"start":"01:00","end":"03:00"},"look_ahead_days":3}"#,
    )
    .unwrap();
    let got = day(&r, "2027-03-13T00:00:00Z", "2027-03-14");
    assert_eq!(locals(&got), ["01:00"]);
}
