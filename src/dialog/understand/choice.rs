//! Which of several offered slots the caller picked.
//!
//! Offered "Wednesday at 10 or 2:30, or Thursday at 9", a caller answers
//! by position ("the second one", "the last one"), by order in time ("the
//! later one"), by the time or day as it was said ("the 2:30", "Wednesday
//! at 10", "Thursday"), or with none of them. Anything else (a new time, a
//! plain yes) is left to the rest of the dialog.

use super::when;
use super::{has_phrase, words};
use crate::schedule::Interval;
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

/// What the caller said about the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The option at this index.
    Pick(usize),
    /// None of them.
    NoneOfThese,
    /// Several fit what was said ("Wednesday" with two Wednesday options).
    Ambiguous,
    /// Nothing about the options.
    Unrelated,
}

const NONE_OF_THESE: &[&str] = &[
    "none of those",
    "none of them",
    "none of these",
    "neither",
    "none work",
    "none of those work",
    "not any of those",
];

/// Position words and the index they name (`usize::MAX` is the last).
const POSITIONS: &[(&str, usize)] = &[
    ("first", 0),
    ("1st", 0),
    ("former", 0),
    ("number one", 0),
    ("option one", 0),
    ("second", 1),
    ("2nd", 1),
    ("middle", 1),
    ("number two", 1),
    ("option two", 1),
    ("third", 2),
    ("3rd", 2),
    ("number three", 2),
    ("option three", 2),
    ("last", usize::MAX),
    ("latter", usize::MAX),
];

/// Reads the caller's pick among `options` (in the order they were said),
/// which were said in `owner`'s zone; the caller may also name a time in
/// their own zone `caller`.
pub fn pick(text: &str, options: &[Interval], now: DateTime<Utc>, owner: Tz, caller: Tz) -> Choice {
    if options.is_empty() {
        return Choice::Unrelated;
    }
    let w = words(text);
    if NONE_OF_THESE.iter().any(|p| has_phrase(&w, p)) {
        return Choice::NoneOfThese;
    }
    let last = options.len() - 1;
    for (word, index) in POSITIONS {
        if has_phrase(&w, word) {
            let i = (*index).min(last);
            // "the first" of two is clear; "the third" of two is not.
            if *index != usize::MAX && *index > last {
                return Choice::Ambiguous;
            }
            return Choice::Pick(i);
        }
    }
    let by_start = |latest: bool| {
        let it = options.iter().enumerate();
        let found = if latest {
            it.max_by_key(|(_, s)| s.start)
        } else {
            it.min_by_key(|(_, s)| s.start)
        };
        found.map(|(i, _)| Choice::Pick(i))
    };
    if [
        "the earlier",
        "earlier one",
        "earliest",
        "sooner one",
        "the sooner",
    ]
    .iter()
    .any(|p| has_phrase(&w, p))
    {
        return by_start(false).unwrap_or(Choice::Unrelated);
    }
    if ["the later", "later one", "latest"]
        .iter()
        .any(|p| has_phrase(&w, p))
    {
        return by_start(true).unwrap_or(Choice::Unrelated);
    }
    by_time(text, options, now, owner, caller)
}

/// Matches a day or time the caller named against the options, first as
/// the owner's clock (how they were said), then the caller's.
fn by_time(text: &str, options: &[Interval], now: DateTime<Utc>, owner: Tz, caller: Tz) -> Choice {
    let mut best = Choice::Unrelated;
    for (n, tz) in [owner, caller].into_iter().enumerate() {
        let Some(pref) = when::parse(text, now.with_timezone(&tz).naive_local()) else {
            continue;
        };
        // On the caller's own clock only an exact time counts ("the eleven
        // thirty"); "Friday morning" means the morning as the list said it.
        if n > 0 && pref.time.is_none() {
            continue;
        }
        let matching: Vec<usize> = options
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let local = s.start.with_timezone(&tz);
                let date_ok = match (pref.date, pref.days) {
                    (Some(d), _) => local.date_naive() == d,
                    (None, Some((first, last))) => {
                        local.date_naive() >= first && local.date_naive() < last
                    }
                    (None, None) => true,
                };
                let time_ok = match (pref.time, pref.range) {
                    (Some(t), _) => local.hour() == t.hour() && local.minute() == t.minute(),
                    (None, Some((from, to))) => local.time() >= from && local.time() < to,
                    (None, None) => true,
                };
                let said_something = pref.date.is_some()
                    || pref.days.is_some()
                    || pref.time.is_some()
                    || pref.range.is_some();
                said_something && date_ok && time_ok
            })
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [one] => return Choice::Pick(*one),
            // A time that names no option is a new request: the dialog's.
            [] => {}
            _ => best = Choice::Ambiguous,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Los_Angeles, New_York};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Wednesday 10 AM and 2:30 PM, Thursday 9 AM, New York.
    fn options() -> Vec<Interval> {
        let slot = |s: &str| Interval::new(utc(s), utc(s) + chrono::Duration::minutes(30));
        vec![
            slot("2026-12-02T15:00:00Z"),
            slot("2026-12-02T19:30:00Z"),
            slot("2026-12-03T14:00:00Z"),
        ]
    }

    fn said(text: &str) -> Choice {
        pick(
            text,
            &options(),
            utc("2026-12-01T15:00:00Z"),
            New_York,
            New_York,
        )
    }

    #[test]
    fn by_position() {
        assert_eq!(said("the second one"), Choice::Pick(1));
        assert_eq!(said("um the first"), Choice::Pick(0));
        assert_eq!(said("let's do the last one"), Choice::Pick(2));
        assert_eq!(said("number three please"), Choice::Pick(2));
    }

    #[test]
    fn by_order_in_time() {
        assert_eq!(said("the later one"), Choice::Pick(2));
        assert_eq!(said("the earlier one works"), Choice::Pick(0));
    }

    #[test]
    fn by_the_time_or_day_said() {
        assert_eq!(said("the 2:30"), Choice::Pick(1));
        assert_eq!(said("two thirty works"), Choice::Pick(1));
        assert_eq!(said("Wednesday at 10"), Choice::Pick(0));
        assert_eq!(said("thursday"), Choice::Pick(2));
        assert_eq!(said("wednesday"), Choice::Ambiguous);
    }

    #[test]
    fn none_and_unrelated() {
        assert_eq!(said("none of those work for me"), Choice::NoneOfThese);
        assert_eq!(said("neither really"), Choice::NoneOfThese);
        assert_eq!(said("how about friday at 4"), Choice::Unrelated);
        assert_eq!(said("yes"), Choice::Unrelated);
    }

    #[test]
    fn the_callers_own_clock_counts_too() {
        // 2:30 PM New York is 11:30 AM Los Angeles.
        let c = pick(
            "the eleven thirty",
            &options(),
            utc("2026-12-01T15:00:00Z"),
            New_York,
            Los_Angeles,
        );
        assert_eq!(c, Choice::Pick(1));
    }
}
