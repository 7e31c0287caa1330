//! Time phrases → what the caller prefers, in the caller's zone.
//!
//! Parsing ([`parse`]) only reads the words; resolving ([`TimePref::target`])
//! applies the rules against `now` and the slot on offer:
//!
//! - A bare or "this" weekday is the next one after today; "next <weekday>"
//!   is that weekday in the next calendar week (weeks start on Monday).
//! - A bare hour means business hours: 1–7 is afternoon, 8–11 morning, 12 noon.
//! - A time with no date keeps the date under discussion (the slot on offer);
//!   with nothing under discussion, a time already past today rolls to
//!   tomorrow.
//! - Parts of day: morning 08:00–12:00, lunch 12:00–14:00, afternoon
//!   12:00–17:00, evening 17:00–21:00. "Early" is the first two hours of a
//!   part, "late" the last two, "mid morning" from 10:00; "first thing" is
//!   08:00–10:00.
//! - Spans of days: "this week" is today to Saturday; "next week" is Monday
//!   to Saturday of the next calendar week, "early next week" Monday to
//!   Wednesday, "later next week" Wednesday to Friday; "end of the week" is
//!   Thursday and Friday of this week (from today, if that is later).
//! - "two weeks from monday", "a week from friday": that day, then the weeks.

use super::words;
use crate::schedule::{resolve_local, Interval};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

/// Earlier or later than what is on offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shift {
    Earlier,
    Later,
}

/// What a phrase says about when, before it is anchored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimePref {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
    /// A span of the day: a part of day, "after 2", "before 10".
    pub range: Option<(NaiveTime, NaiveTime)>,
    pub shift: Option<Shift>,
    /// "same time Friday": keep the time on offer.
    pub same_time: bool,
    /// A point in time from "in an hour" (already absolute).
    pub instant: Option<NaiveDateTime>,
    /// A span of days, first day inclusive, last exclusive ("next week").
    pub days: Option<(NaiveDate, NaiveDate)>,
}

/// Where to look for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The slot nearest this instant.
    Instant(DateTime<Utc>),
    /// Any slot starting inside, nicest first.
    Window(Interval),
    /// The same span on each day from a date on.
    Daily {
        from: NaiveDate,
        start: NaiveTime,
        end: NaiveTime,
    },
    /// The latest slot before this instant.
    Before(DateTime<Utc>),
    /// The first slot after this instant.
    After(DateTime<Utc>),
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default()
}

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("tues", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("thur", Weekday::Thu),
    ("thurs", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const SMALL_NUMBERS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

/// Parses a number said as digits or words up to 59 ("forty five" uses two
/// words); returns the value and how many words it took.
fn number_at(w: &[String], i: usize) -> Option<(u32, usize)> {
    let word = w.get(i)?.as_str();
    if let Ok(n) = word.parse::<u32>() {
        return Some((n, 1));
    }
    if let Some(n) = SMALL_NUMBERS.iter().position(|x| *x == word) {
        return Some((n as u32, 1));
    }
    let teens = [
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
    ];
    if let Some((_, n)) = teens.iter().find(|(x, _)| *x == word) {
        return Some((*n, 1));
    }
    let tens = [("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50)];
    if let Some((_, n)) = tens.iter().find(|(x, _)| *x == word) {
        if let Some(unit) = w
            .get(i + 1)
            .and_then(|u| SMALL_NUMBERS[1..10].iter().position(|x| x == u))
        {
            return Some((n + unit as u32 + 1, 2));
        }
        return Some((*n, 1));
    }
    None
}

fn ordinal_day(word: &str) -> Option<u32> {
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix = &word[digits.len()..];
    if !digits.is_empty() && matches!(suffix, "st" | "nd" | "rd" | "th") {
        return digits.parse().ok().filter(|d| (1..=31).contains(d));
    }
    let words = [
        ("first", 1),
        ("second", 2),
        ("third", 3),
        ("fourth", 4),
        ("fifth", 5),
        ("sixth", 6),
        ("seventh", 7),
        ("eighth", 8),
        ("ninth", 9),
        ("tenth", 10),
        ("eleventh", 11),
        ("twelfth", 12),
        ("thirteenth", 13),
        ("fourteenth", 14),
        ("fifteenth", 15),
        ("sixteenth", 16),
        ("seventeenth", 17),
        ("eighteenth", 18),
        ("nineteenth", 19),
        ("twentieth", 20),
        ("thirtieth", 30),
    ];
    words.iter().find(|(w, _)| *w == word).map(|(_, d)| *d)
}

fn is_meridiem(w: &str) -> Option<bool> {
    match w {
        "am" | "a.m" | "a.m." => Some(false),
        "pm" | "p.m" | "p.m." => Some(true),
        _ => None,
    }
}

/// Applies am/pm, or the business-hours rule when neither was said.
fn to_24h(hour: u32, minute: u32, pm: Option<bool>) -> Option<NaiveTime> {
    if hour > 23 || minute > 59 {
        return None;
    }
    let h = match pm {
        Some(true) if hour < 12 => hour + 12,
        Some(false) if hour == 12 => 0,
        Some(_) => hour,
        None if (1..=7).contains(&hour) => hour + 12,
        None => hour,
    };
    NaiveTime::from_hms_opt(h, minute, 0)
}

/// The next date after `today` that falls on `day` (1–7 days ahead).
fn next_weekday(today: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead =
        (7 + day.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64) % 7;
    today + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// `day` in the calendar week after the one holding `today`.
fn weekday_next_week(today: NaiveDate, day: Weekday) -> NaiveDate {
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    monday + Duration::days(7 + day.num_days_from_monday() as i64)
}

/// The next occurrence of month/day on or after `today`.
fn next_date(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this_year {
        Some(d) if d >= today => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

/// Reads a time phrase. `now` is the caller's local time. `None` means the
/// utterance says nothing about when.
pub fn parse(text: &str, now: NaiveDateTime) -> Option<TimePref> {
    let w = words(text);
    let today = now.date();
    let mut p = TimePref::default();
    let has = |x: &str| w.iter().any(|y| y == x);
    let mut pm_hint: Option<bool> = None;

    // Dates.
    if has("today") || has("tonight") {
        p.date = Some(today);
    }
    if has("tomorrow") {
        p.date = Some(today + Duration::days(1));
        if super::has_phrase(&w, "day after tomorrow") {
            p.date = Some(today + Duration::days(2));
        }
    }
    for (i, word) in w.iter().enumerate() {
        if let Some((_, day)) = WEEKDAYS.iter().find(|(n, _)| n == word) {
            let next = i > 0 && w[i - 1] == "next"
                || w.get(i + 1).is_some_and(|x| x == "next")
                    && w.get(i + 2).is_some_and(|x| x == "week");
            p.date = Some(if next {
                weekday_next_week(today, *day)
            } else {
                next_weekday(today, *day)
            });
        }
        if let Some(m) = MONTHS.iter().position(|x| x == word) {
            let month = m as u32 + 1;
            let day = w
                .get(i + 1)
                .and_then(|d| ordinal_day(d).or_else(|| d.parse().ok()))
                .or_else(|| i.checked_sub(1).and_then(|j| ordinal_day(&w[j])));
            if let Some(d) = day.and_then(|d| next_date(today, month, d)) {
                p.date = Some(d);
            }
        }
        if let Some((m, d)) = word.split_once('/') {
            if let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) {
                if let Some(date) = next_date(today, m, d) {
                    p.date = Some(date);
                }
            }
        }
        let prev = i.checked_sub(1).map(|j| w[j].as_str());
        let prev_is_month = prev.is_some_and(|x| MONTHS.contains(&x));
        let spelled_ordinal = matches!(prev, Some("the") | Some("on"));
        let numeric_ordinal = word.starts_with(|c: char| c.is_ascii_digit());
        if !prev_is_month && (spelled_ordinal || numeric_ordinal) {
            if let Some(d) = ordinal_day(word) {
                let this_month =
                    NaiveDate::from_ymd_opt(today.year(), today.month(), d).filter(|x| *x >= today);
                let following = today
                    .checked_add_months(chrono::Months::new(1))
                    .and_then(|n| NaiveDate::from_ymd_opt(n.year(), n.month(), d));
                if let Some(date) = this_month.or(following) {
                    p.date = Some(date);
                }
            }
        }
        // "in three days", "in an hour", "in 2 weeks"
        if word == "in" {
            let (n, used) = match w.get(i + 1).map(String::as_str) {
                Some("a") | Some("an") | Some("one") => (1, 1),
                _ => match number_at(&w, i + 1) {
                    Some(x) => x,
                    None => continue,
                },
            };
            match w.get(i + 1 + used).map(String::as_str) {
                Some("day") | Some("days") => p.date = Some(today + Duration::days(n as i64)),
                Some("week") | Some("weeks") => p.date = Some(today + Duration::days(7 * n as i64)),
                Some("hour") | Some("hours") => p.instant = Some(now + Duration::hours(n as i64)),
                Some("minute") | Some("minutes") => {
                    p.instant = Some(now + Duration::minutes(n as i64))
                }
                _ => {}
            }
        }
    }

    // Spans of days.
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let next_monday = monday + Duration::days(7);
    let span = |from: NaiveDate, days: i64| Some((from, from + Duration::days(days)));
    if p.date.is_none() {
        if super::has_phrase(&w, "later next week") || super::has_phrase(&w, "late next week") {
            p.days = span(next_monday + Duration::days(2), 3);
        } else if super::has_phrase(&w, "early next week") {
            p.days = span(next_monday, 3);
        } else if super::has_phrase(&w, "next week") {
            p.days = span(next_monday, 5);
        } else if super::has_phrase(&w, "end of the week")
            || super::has_phrase(&w, "end of this week")
        {
            let thursday = (monday + Duration::days(3)).max(today);
            p.days = Some((
                thursday,
                (monday + Duration::days(5)).max(today + Duration::days(1)),
            ));
        } else if super::has_phrase(&w, "this week") {
            p.days = Some((
                today,
                (monday + Duration::days(5)).max(today + Duration::days(1)),
            ));
        }
    }
    // "two weeks from monday", "a week from friday"
    if let Some(i) = super::find_phrase(&w, "from") {
        let weeks = match i.checked_sub(2).map(|j| (w[j].as_str(), w[j + 1].as_str())) {
            Some(("a" | "one", "week")) => Some(1),
            Some((n, "weeks")) => {
                number_at(&w, i - 2)
                    .map(|(n, _)| n)
                    .or(if n == "couple" { Some(2) } else { None })
            }
            _ => None,
        };
        if let (Some(weeks), Some(base)) = (weeks, p.date) {
            p.date = Some(base + Duration::days(7 * i64::from(weeks)));
        }
    }

    // Parts of day.
    let parts: [(&str, NaiveTime, NaiveTime, bool); 6] = [
        ("morning", t(8, 0), t(12, 0), false),
        ("mornings", t(8, 0), t(12, 0), false),
        ("lunch", t(12, 0), t(14, 0), true),
        ("afternoon", t(12, 0), t(17, 0), true),
        ("afternoons", t(12, 0), t(17, 0), true),
        ("evening", t(17, 0), t(21, 0), true),
    ];
    for (name, start, end, pm) in parts {
        if has(name) {
            p.range = Some((start, end));
            pm_hint = Some(pm);
        }
    }
    // "early afternoon", "late morning", "mid morning": the first or last
    // two hours of the part; "first thing" is the start of the morning.
    if let Some((start, end)) = p.range {
        let two_hours = Duration::hours(2);
        if has("early") {
            p.range = Some((start, (start + two_hours).min(end)));
        } else if has("late") && !super::has_phrase(&w, "late next week") {
            p.range = Some(((end - two_hours).max(start), end));
        } else if has("mid") {
            p.range = Some(((start + two_hours).min(end), end));
        }
    }
    if super::has_phrase(&w, "first thing") {
        p.range = Some((t(8, 0), t(10, 0)));
        pm_hint = Some(false);
    }
    if has("tonight") || has("evenings") {
        p.range = Some((t(17, 0), t(21, 0)));
        pm_hint = Some(true);
    }

    // Clock times.
    for i in 0..w.len() {
        let word = w[i].as_str();
        if matches!(word, "noon" | "midday") {
            p.time = Some(t(12, 0));
            continue;
        }
        if word == "midnight" {
            p.time = Some(t(0, 0));
            continue;
        }
        // "half past nine", "quarter past two", "quarter to three"
        if matches!(word, "half" | "quarter")
            && matches!(
                w.get(i + 1).map(String::as_str),
                Some("past") | Some("after") | Some("to")
            )
        {
            if let Some((h, _)) = number_at(&w, i + 2) {
                let mins = if word == "half" { 30 } else { 15 };
                let before = w[i + 1] == "to";
                let (h, m) = if before {
                    (h.saturating_sub(1), 60 - mins)
                } else {
                    (h, mins)
                };
                p.time = to_24h(h, m, pm_hint);
            }
            continue;
        }
        // "4:15", "4:15pm"
        if let Some((hh, rest)) = word.split_once(':') {
            let mm: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let suffix = &rest[mm.len()..];
            if let (Ok(h), Ok(m)) = (hh.parse::<u32>(), mm.parse::<u32>()) {
                let pm = is_meridiem(suffix)
                    .or_else(|| w.get(i + 1).and_then(|x| is_meridiem(x)))
                    .or(pm_hint);
                p.time = to_24h(h, m, pm);
            }
            continue;
        }
        // "4pm"
        if let Some(num) = word.strip_suffix("pm").or_else(|| word.strip_suffix("am")) {
            if let Ok(h) = num.parse::<u32>() {
                p.time = to_24h(h, 0, Some(word.ends_with("pm")));
                continue;
            }
        }
        let prev = i.checked_sub(1).map(|j| w[j].as_str());
        let cue = matches!(
            prev,
            Some("at")
                | Some("around")
                | Some("about")
                | Some("by")
                | Some("after")
                | Some("before")
                | Some("say")
                | Some("maybe")
                | Some("how")
                | Some("till")
                | Some("until")
                | Some("like")
        );
        let Some((h, used)) = number_at(&w, i) else {
            continue;
        };
        if used == 1
            && w[i].parse::<u32>().is_err()
            && SMALL_NUMBERS.iter().position(|x| *x == w[i]).is_none()
        {
            continue;
        }
        if !(1..=12).contains(&h) {
            continue;
        }
        let after = w.get(i + used).map(String::as_str);
        let meridiem = after.and_then(is_meridiem);
        let oclock = matches!(after, Some("o'clock") | Some("oclock"));
        // "eleven fifteen", "two thirty"
        let minutes = if meridiem.is_none() && !oclock {
            number_at(&w, i + used).filter(|(m, _)| (10..60).contains(m))
        } else {
            None
        };
        if !(cue || meridiem.is_some() || oclock || minutes.is_some()) {
            continue;
        }
        let (m, extra) = minutes.unwrap_or((0, 0));
        let pm = meridiem
            .or_else(|| w.get(i + used + extra).and_then(|x| is_meridiem(x)))
            .or(pm_hint);
        let time = to_24h(h, m, pm);
        match prev {
            Some("after") => p.range = time.map(|x| (x, end_of_day())),
            Some("before") | Some("till") | Some("until") => p.range = time.map(|x| (t(0, 0), x)),
            _ => p.time = time,
        }
    }

    if has("earlier") || has("sooner") || super::has_phrase(&w, "before that") {
        p.shift = Some(Shift::Earlier);
    }
    if has("later") || super::has_phrase(&w, "after that") {
        p.shift = Some(Shift::Later);
    }
    p.same_time = super::has_phrase(&w, "same time");

    (p != TimePref::default()).then_some(p)
}

impl TimePref {
    /// Resolves the preference against the slot on offer (`anchor`) or, with
    /// nothing on offer, against `now`.
    pub fn target(
        &self,
        anchor: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        tz: Tz,
    ) -> Option<Target> {
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
        if let Some(instant) = self.instant {
            return Some(Target::Instant(resolve_local(tz, instant)));
        }
        let anchor_local = anchor.map(local);
        let time = self.time.or(if self.same_time {
            anchor_local.map(|a| a.time())
        } else {
            None
        });
        let date = self.date.or_else(|| {
            if time.is_some() || self.range.is_some() && self.shift.is_some() {
                anchor_local.map(|a| a.date())
            } else {
                None
            }
        });
        let day_start = |d: NaiveDate, at: NaiveTime| resolve_local(tz, d.and_time(at));
        if let (None, Some((first, last))) = (date, self.days) {
            return Some(match self.range {
                Some((start, end)) => Target::Daily {
                    from: first,
                    start,
                    end,
                },
                None => Target::Window(Interval::new(
                    day_start(first, t(0, 0)),
                    day_start(last, t(0, 0)),
                )),
            });
        }
        match (date, time, self.range) {
            (Some(d), Some(at), _) => Some(Target::Instant(day_start(d, at))),
            (Some(d), None, Some((s, e))) => {
                // "after 2" runs to midnight.
                let end = if e == end_of_day() {
                    day_start(d + Duration::days(1), t(0, 0))
                } else {
                    day_start(d, e)
                };
                Some(Target::Window(Interval::new(day_start(d, s), end)))
            }
            (Some(d), None, None) => {
                let whole = Interval::new(
                    day_start(d, t(0, 0)),
                    day_start(d + Duration::days(1), t(0, 0)),
                );
                match (self.shift, anchor) {
                    (Some(Shift::Earlier), Some(a)) if whole.contains(a) => Some(Target::Before(a)),
                    (Some(Shift::Later), Some(a)) if whole.contains(a) => Some(Target::After(a)),
                    _ => Some(Target::Window(whole)),
                }
            }
            (None, Some(at), _) => {
                let nl = local(now);
                let d = if at > nl.time() {
                    nl.date()
                } else {
                    nl.date() + Duration::days(1)
                };
                Some(Target::Instant(day_start(d, at)))
            }
            (None, None, Some((s, e))) => Some(Target::Daily {
                from: anchor_local.map_or(local(now).date(), |a| a.date()),
                start: s,
                end: e,
            }),
            (None, None, None) => match self.shift? {
                Shift::Earlier => Some(Target::Before(anchor.unwrap_or(now))),
                Shift::Later => Some(Target::After(anchor.unwrap_or(now))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tuesday 2026-12-01 10:00 local.
    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
    }

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn weekdays_and_next() {
        assert_eq!(parse("wednesday", now()).unwrap().date, Some(d(12, 2)));
        assert_eq!(parse("tuesday", now()).unwrap().date, Some(d(12, 8)));
        assert_eq!(parse("next wednesday", now()).unwrap().date, Some(d(12, 9)));
        assert_eq!(parse("tomorrow", now()).unwrap().date, Some(d(12, 2)));
        assert_eq!(
            parse("the day after tomorrow", now()).unwrap().date,
            Some(d(12, 3))
        );
    }

    #[test]
    fn clock_times() {
        assert_eq!(parse("at 3", now()).unwrap().time, Some(t(15, 0)));
        assert_eq!(parse("4 pm", now()).unwrap().time, Some(t(16, 0)));
        assert_eq!(
            parse("how about 4:15", now()).unwrap().time,
            Some(t(16, 15))
        );
        assert_eq!(parse("half past nine", now()).unwrap().time, Some(t(9, 30)));
        assert_eq!(
            parse("a quarter past two", now()).unwrap().time,
            Some(t(14, 15))
        );
        assert_eq!(parse("midday", now()).unwrap().time, Some(t(12, 0)));
        assert_eq!(
            parse("eleven fifteen", now()).unwrap().time,
            Some(t(11, 15))
        );
        assert_eq!(
            parse("tomorrow at 10am", now()).unwrap().time,
            Some(t(10, 0))
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse("the 14th", now()).unwrap().date, Some(d(12, 14)));
        assert_eq!(
            parse("january 3rd", now()).unwrap().date,
            NaiveDate::from_ymd_opt(2027, 1, 3)
        );
        assert_eq!(parse("12/22", now()).unwrap().date, Some(d(12, 22)));
        assert_eq!(parse("in three days", now()).unwrap().date, Some(d(12, 4)));
    }

    #[test]
    fn ranges_and_shifts() {
        assert_eq!(
            parse("after 2", now()).unwrap().range,
            Some((t(14, 0), end_of_day()))
        );
        assert_eq!(
            parse("before 10", now()).unwrap().range,
            Some((t(0, 0), t(10, 0)))
        );
        assert_eq!(
            parse("thursday afternoon", now()).unwrap().range,
            Some((t(12, 0), t(17, 0)))
        );
        assert_eq!(
            parse("anything earlier?", now()).unwrap().shift,
            Some(Shift::Earlier)
        );
        assert_eq!(parse("yes that works", now()), None);
        assert_eq!(parse("my email is john at gmail dot com", now()), None);
    }

    #[test]
    fn a_past_time_rolls_to_tomorrow() {
        let tz = chrono_tz::UTC;
        let now_utc = Utc.from_utc_datetime(&now());
        let target = parse("at 9", now()).unwrap().target(None, now_utc, tz);
        let expected = Utc.from_utc_datetime(&d(12, 2).and_hms_opt(9, 0, 0).unwrap());
        assert_eq!(target, Some(Target::Instant(expected)));
    }

    use chrono::TimeZone;
}
