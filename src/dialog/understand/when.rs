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
//!   "the week after next" is Monday to Friday of the week after; "rest of
//!   the week" today to Friday; "this weekend" the coming Saturday and
//!   Sunday; "end of the month" its last seven days, "rest of the month"
//!   today to its end.
//! - "two weeks from monday", "a week from friday": that day, then the weeks.
//!   "tuesday after next" is "next tuesday" a week on.
//! - Ranges: "2-3pm", "between 10:30 and noon": the end's am/pm carries to
//!   the start when that keeps it first. "until 3pm", "by 11", "before 10"
//!   run from the start of the day (from now, today); "after 2", "after
//!   lunch" to its end.
//!
//! The grammar itself (tokens, constituents, rules) is in [`rules`].

use super::words;
use crate::schedule::{resolve_local, Interval};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
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
    /// The same span on each day from a date on, up to (not including)
    /// `until` when the phrase named a span of days ("afternoons next
    /// week"); open-ended otherwise ("after 2").
    Daily {
        from: NaiveDate,
        until: Option<NaiveDate>,
        start: NaiveTime,
        end: NaiveTime,
    },
    /// The latest slot before this instant.
    Before(DateTime<Utc>),
    /// The first slot after this instant.
    After(DateTime<Utc>),
}

mod lexicon;
pub mod rules;

use rules::{Clock, Ctx, Node};

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default()
}

/// Reads a time phrase. `now` is the caller's local time. `None` means the
/// utterance says nothing about when.
///
/// Words are lexed into tokens ([`lexicon`]), reduced by the grammar's
/// rules into constituents ([`rules::RULES`]), and the constituents are
/// intersected here into one preference.
pub fn parse(text: &str, now: NaiveDateTime) -> Option<TimePref> {
    let w = words(text);
    let ctx = Ctx {
        now,
        today: now.date(),
    };
    let nodes = rules::reduce(&ctx, lexicon::lex(&w, &ctx));
    let mut p = combine(&nodes);

    if w.iter().any(|x| x == "earlier" || x == "sooner") || super::has_phrase(&w, "before that") {
        p.shift = Some(Shift::Earlier);
    }
    if w.iter().any(|x| x == "later") || super::has_phrase(&w, "after that") {
        p.shift = Some(Shift::Later);
    }
    p.same_time = super::has_phrase(&w, "same time");

    (p != TimePref::default()).then_some(p)
}

/// Intersects the constituents: a date (or span of days) with a time, a
/// range, an open range or a part of day. A part of day also settles am/pm
/// of the hours said with it ("tonight at 8"); the last of each kind wins.
fn combine(nodes: &[Node]) -> TimePref {
    let mut p = TimePref::default();
    let mut clock = None;
    let mut part = None;
    let mut span: Option<(Clock, Clock)> = None;
    let mut open: Option<(bool, Clock)> = None;
    for node in nodes {
        match node {
            Node::Date(d) => p.date = Some(*d),
            Node::Days(a, b) => p.days = Some((*a, *b)),
            Node::Part(x) => part = Some(*x),
            Node::Clock(c) => clock = Some(*c),
            Node::Range(a, b) => span = Some((*a, *b)),
            Node::Open { before, at } => open = Some((*before, *at)),
            Node::Instant(x) => p.instant = Some(*x),
            _ => {}
        }
    }
    if p.date.is_some() {
        p.days = None;
    }
    let hint = part.map(|x| x.pm);
    p.time = clock.and_then(|c| c.resolve(hint));
    p.range = if let Some((a, b)) = span {
        range(a, b, hint)
    } else if let Some((before, at)) = open {
        at.resolve(hint).map(|x| {
            if before {
                (t(0, 0), x)
            } else {
                (x, end_of_day())
            }
        })
    } else {
        part.map(|x| (x.start, x.end))
    };
    // A range that ends before it starts ("twenty - two") says nothing.
    p.range = p.range.filter(|(s, e)| s < e);
    p
}

/// A range between two clocks: the end's am/pm carries to the start when
/// that keeps it first ("2-3pm", but "11 to 1 pm" is 11 am).
fn range(a: Clock, b: Clock, hint: Option<bool>) -> Option<(NaiveTime, NaiveTime)> {
    let end = b.resolve(hint)?;
    let start = match (a.pm, b.pm) {
        (None, Some(pm)) if hint.is_none() => a
            .resolve(Some(pm))
            .filter(|s| *s < end)
            .or_else(|| a.resolve(None))?,
        _ => a.resolve(hint)?,
    };
    Some((start, end))
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
                    until: Some(last),
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
                // "until 3pm today" runs from now.
                let start = day_start(d, s).max(now.min(end));
                Some(Target::Window(Interval::new(start, end)))
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
                until: None,
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

    /// What the rules leave of an utterance, words dropped.
    fn constituents(text: &str) -> Vec<Node> {
        let ctx = Ctx {
            now: now(),
            today: now().date(),
        };
        rules::reduce(&ctx, lexicon::lex(&words(text), &ctx))
            .into_iter()
            .filter(|n| !matches!(n, Node::Word(_)))
            .collect()
    }

    #[test]
    fn the_rules_build_typed_constituents() {
        let c = |h, m, pm| Clock { h, m, pm };
        let clock = |h, m, pm| Node::Clock(c(h, m, pm));
        assert_eq!(
            constituents("um can we do a quarter past 4 p m"),
            vec![clock(4, 15, Some(true))]
        );
        assert_eq!(
            constituents("ten to noon"),
            vec![clock(11, 50, Some(false))]
        );
        assert_eq!(
            constituents("between 10:30 and noon on wednesday"),
            vec![
                Node::Range(c(10, 30, None), c(12, 0, Some(true))),
                Node::Date(d(12, 2)),
            ]
        );
        assert_eq!(
            constituents("tuesday after next"),
            vec![Node::Date(d(12, 15))]
        );
        assert_eq!(
            constituents("until 3pm"),
            vec![Node::Open {
                before: true,
                at: c(3, 0, Some(true))
            }]
        );
        assert_eq!(constituents("I'm busy then"), vec![]);
    }

    #[test]
    fn rule_names_are_unique() {
        let mut names: Vec<&str> = rules::RULES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules::RULES.len());
    }

    #[test]
    fn ranges_carry_am_pm_and_drop_when_reversed() {
        assert_eq!(
            parse("2-3pm", now()).unwrap().range,
            Some((t(14, 0), t(15, 0)))
        );
        assert_eq!(
            parse("11 to 1 pm", now()).unwrap().range,
            Some((t(11, 0), t(13, 0)))
        );
        assert_eq!(parse("twenty - two", now()).and_then(|p| p.range), None);
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
