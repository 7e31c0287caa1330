//! The time grammar: typed constituents and the rules that build them.
//!
//! [`lexicon::lex`](super::lexicon::lex) turns words into tokens; then
//! [`RULES`] are applied, in order of priority, anywhere in the utterance,
//! each replacing the nodes it matches by one constituent, until none
//! applies (as Duckling's rules do, but deterministic: the first rule that
//! matches wins). The constituents are:
//!
//! - [`Node::Clock`]: a time of day, am/pm known or not ("quarter past 4pm");
//! - [`Node::Date`]: a day ("tuesday after next", "the 14th");
//! - [`Node::Days`]: a span of days ("the week after next", "this weekend");
//! - [`Node::Part`]: a part of day ("late afternoon");
//! - [`Node::Range`]: a span of the day between two clocks ("2-3pm");
//! - [`Node::Open`]: a span open on one side ("until 3pm", "after lunch");
//! - [`Node::Instant`]: a point already absolute ("in an hour").
//!
//! [`combine`](super::combine) then intersects what is left (a date with a
//! time, a range or a part of day; days with a part of day) into a
//! [`TimePref`](super::TimePref).
//!
//! To add a phrasing: write a rule (a function from the nodes at a position
//! to how many it consumed and what replaces them), put it in [`RULES`]
//! before any rule that would consume its words, and add corpus lines.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

/// What the rules know besides the words.
pub struct Ctx {
    pub now: NaiveDateTime,
    pub today: NaiveDate,
}

/// A time of day as said: `h` is 0–23, `pm` whether am/pm is known
/// (said, or implied as by "noon"). Unknown am/pm is settled when the
/// utterance is combined: by a part of day said with it, else business
/// hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub h: u32,
    pub m: u32,
    pub pm: Option<bool>,
}

/// A part of day; `pm` is the hint a bare hour said with it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub pm: bool,
}

/// Tokens and constituents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Word(String),
    Num {
        n: u32,
        spoken: bool,
    },
    Ord {
        d: u32,
        spoken: bool,
    },
    Weekday(Weekday),
    Month(u32),
    Meridiem(bool),
    Clock(Clock),
    Part(Part),
    Date(NaiveDate),
    /// First day inclusive, last exclusive.
    Days(NaiveDate, NaiveDate),
    Range(Clock, Clock),
    /// `before` is true for "until 3", false for "after 3".
    Open {
        before: bool,
        at: Clock,
    },
    Instant(NaiveDateTime),
}

/// A rule: the context, the node before the position (if any) and the nodes
/// from the position on; how many nodes it consumed and what replaces them.
pub type Rule = fn(&Ctx, Option<&Node>, &[Node]) -> Option<(usize, Node)>;

/// The rules, highest priority first.
pub const RULES: &[(&str, Rule)] = &[
    ("minutes past/to an hour", minutes_past_to),
    ("hour am/pm", hour_meridiem),
    ("hour o'clock", hour_oclock),
    ("hour minutes", hour_minutes),
    ("day after <date>", day_after),
    ("<weekday> after next", weekday_after_next),
    ("next <weekday>", next_weekday_rule),
    ("<weekday> next week", weekday_next_week_rule),
    ("<weekday>", weekday),
    ("<month> <day>", month_day),
    ("<day> of <month>", day_of_month),
    ("<nth> week of <month>", week_of_month),
    ("beginning/middle/end of <month>", part_of_month),
    ("the <ordinal>", ordinal_day),
    ("the next <n> days/weeks", coming_days),
    ("in <n> <unit>", in_duration),
    ("<n> <unit> from <date>", duration_from),
    ("spans of weeks", week_spans),
    ("spans of months", month_spans),
    ("first thing", first_thing),
    ("early/late/mid <part>", part_modifier),
    ("between/from <time> and/to <time>", between),
    ("<time> to/- <time>", time_to_time),
    ("until/by/before/after <time>", open_range),
    ("<cue> <hour>", cued_hour),
    ("<hour> <date or part>", hour_before_day),
];

/// Applies [`RULES`] until none matches.
pub fn reduce(ctx: &Ctx, mut nodes: Vec<Node>) -> Vec<Node> {
    'again: loop {
        for (_, rule) in RULES {
            for i in 0..nodes.len() {
                let prev = i.checked_sub(1).map(|j| &nodes[j]);
                if let Some((used, node)) = rule(ctx, prev, &nodes[i..]) {
                    nodes.splice(i..i + used.max(1), [node]);
                    continue 'again;
                }
            }
        }
        return nodes;
    }
}

// ---- helpers ----

fn word(n: Option<&Node>) -> Option<&str> {
    match n {
        Some(Node::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

fn is(n: Option<&Node>, words: &[&str]) -> bool {
    word(n).is_some_and(|w| words.contains(&w))
}

/// Whether one of `words` is among the first `within` nodes: a cheap test
/// before a rule tries its phrases.
fn mentions(n: &[Node], words: &[&str], within: usize) -> bool {
    n.iter().take(within).any(|x| is(Some(x), words))
}

fn num(n: Option<&Node>) -> Option<(u32, bool)> {
    match n {
        Some(Node::Num { n, spoken }) => Some((*n, *spoken)),
        _ => None,
    }
}

/// A clock, or a bare number that can be an hour, where the context says
/// it is a time ("between 2 and 4").
fn clockish(n: Option<&Node>) -> Option<Clock> {
    match n {
        Some(Node::Clock(c)) => Some(*c),
        Some(Node::Num { n, .. }) if (1..=23).contains(n) => Some(Clock {
            h: *n,
            m: 0,
            pm: None,
        }),
        _ => None,
    }
}

impl Clock {
    /// On the 24-hour clock: am/pm as known, else `hint`, else business
    /// hours (1–7 afternoon, 8–11 morning, 12 noon).
    pub fn resolve(self, hint: Option<bool>) -> Option<NaiveTime> {
        if self.h > 23 || self.m > 59 {
            return None;
        }
        let h = match self.pm.or(hint) {
            Some(true) if self.h < 12 => self.h + 12,
            Some(false) if self.h == 12 => 0,
            Some(_) => self.h,
            None if (1..=7).contains(&self.h) => self.h + 12,
            None => self.h,
        };
        NaiveTime::from_hms_opt(h, self.m, 0)
    }

    /// This clock moved by `minutes` (negative: earlier). Known am/pm is
    /// kept right across noon and midnight.
    fn shifted(self, minutes: i32) -> Clock {
        match self.pm {
            Some(_) => {
                let at = self.resolve(None).unwrap_or_default();
                let total = (at.hour() as i32 * 60 + at.minute() as i32 + minutes)
                    .rem_euclid(24 * 60) as u32;
                let (h24, m) = (total / 60, total % 60);
                let h = if h24 % 12 == 0 { 12 } else { h24 % 12 };
                Clock {
                    h,
                    m,
                    pm: Some(h24 >= 12),
                }
            }
            None => {
                let total = (self.h as i32 * 60 + self.m as i32 + minutes).rem_euclid(12 * 60);
                let (h, m) = ((total / 60) as u32, (total % 60) as u32);
                Clock {
                    h: if h == 0 { 12 } else { h },
                    m,
                    pm: None,
                }
            }
        }
    }

    pub fn from_time(at: NaiveTime) -> Clock {
        let h24 = at.hour();
        Clock {
            h: if h24 % 12 == 0 { 12 } else { h24 % 12 },
            m: at.minute(),
            pm: Some(h24 >= 12),
        }
    }
}

/// The next date after `today` that falls on `day` (1–7 days ahead).
pub fn next_weekday(today: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead =
        (7 + day.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64) % 7;
    today + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// Monday of the calendar week holding `today`.
fn monday_of(today: NaiveDate) -> NaiveDate {
    today - Duration::days(today.weekday().num_days_from_monday() as i64)
}

/// `day` in the calendar week after the one holding `today`.
pub fn weekday_next_week(today: NaiveDate, day: Weekday) -> NaiveDate {
    monday_of(today) + Duration::days(7 + day.num_days_from_monday() as i64)
}

/// The next occurrence of month/day on or after `today`.
pub fn next_date(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    match NaiveDate::from_ymd_opt(today.year(), month, day) {
        Some(d) if d >= today => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

fn first_of_next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

// ---- times of day ----

/// "quarter past 4pm", "twenty to five p m", "ten to noon", "half past
/// nine", "ten after four", "five minutes to three".
fn minutes_past_to(_: &Ctx, prev: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if matches!(prev, Some(Node::Num { .. })) {
        // "one thirty to three": the minutes of a clock, not "thirty to".
        return None;
    }
    let first = n.first();
    let (minutes, strong) = match (word(first), num(first)) {
        (Some("quarter"), _) => (15, true),
        (Some("half"), _) => (30, true),
        (_, Some((m, spoken))) if (1..60).contains(&m) => (m, spoken),
        _ => return None,
    };
    let mut i = 1;
    let said_minutes = is(n.get(i), &["minutes", "minute"]);
    if said_minutes {
        i += 1;
    }
    let rel = word(n.get(i))?;
    let before = match rel {
        "past" | "after" => false,
        "to" | "till" | "before" | "of" => true,
        _ => return None,
    };
    // "10 to 12" written with digits, or after "from", is a range.
    let from_range = is(prev, &["from", "between"]);
    let sure = strong || said_minutes || rel == "past";
    let round = minutes % 5 == 0 || said_minutes;
    if !sure || from_range || (before && (minutes > 30 || !round)) {
        return None;
    }
    let hour = match n.get(i + 1) {
        Some(Node::Clock(c)) if c.m == 0 => *c,
        Some(Node::Num { n, .. }) if (1..=12).contains(n) => Clock {
            h: *n,
            m: 0,
            pm: None,
        },
        _ => return None,
    };
    let (hour, used) = match n.get(i + 2) {
        Some(Node::Meridiem(pm)) if hour.pm.is_none() => (
            Clock {
                pm: Some(*pm),
                ..hour
            },
            i + 3,
        ),
        _ => (hour, i + 2),
    };
    let delta = if before {
        -(minutes as i32)
    } else {
        minutes as i32
    };
    Some((used, Node::Clock(hour.shifted(delta))))
}

/// "4pm", "4 p m", "4:15 pm".
fn hour_meridiem(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let Some(Node::Meridiem(pm)) = n.get(1) else {
        return None;
    };
    let clock = match n.first()? {
        Node::Num { n, .. } if (1..=12).contains(n) => Clock {
            h: *n,
            m: 0,
            pm: None,
        },
        Node::Clock(c) if c.pm.is_none() && c.h <= 12 => *c,
        _ => return None,
    };
    Some((
        2,
        Node::Clock(Clock {
            pm: Some(*pm),
            ..clock
        }),
    ))
}

/// "three o'clock".
fn hour_oclock(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let (h, _) = num(n.first()).filter(|(h, _)| (1..=12).contains(h))?;
    is(n.get(1), &["o'clock", "oclock"]).then_some((2, Node::Clock(Clock { h, m: 0, pm: None })))
}

/// "eleven fifteen", "4 30", "three twenty five".
fn hour_minutes(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let (h, _) = num(n.first()).filter(|(h, _)| (1..=12).contains(h))?;
    let (m, _) = num(n.get(1)).filter(|(m, _)| (10..60).contains(m))?;
    if is(
        n.get(2),
        &["minutes", "minute", "days", "day", "weeks", "week", "hours"],
    ) {
        return None;
    }
    Some((2, Node::Clock(Clock { h, m, pm: None })))
}

/// A bare number after a word that introduces a time: "at 3", "around 2",
/// "like 2".
fn cued_hour(_: &Ctx, prev: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    const CUES: &[&str] = &["at", "around", "about", "say", "maybe", "how", "like"];
    if !is(prev, CUES) {
        return None;
    }
    let (h, _) = num(n.first()).filter(|(h, _)| (1..=12).contains(h))?;
    if is(
        n.get(1),
        &[
            "minutes", "minute", "hours", "hour", "days", "day", "weeks", "week",
        ],
    ) {
        return None;
    }
    Some((1, Node::Clock(Clock { h, m: 0, pm: None })))
}

/// A bare hour said with a day or part of day: "7 tonight", "3 tomorrow".
fn hour_before_day(_: &Ctx, prev: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let (h, _) = num(n.first()).filter(|(h, _)| (1..=12).contains(h))?;
    if is(prev, &["the", "in", "on"]) || matches!(prev, Some(Node::Month(_))) {
        return None;
    }
    matches!(n.get(1), Some(Node::Date(_) | Node::Part(_)))
        .then_some((1, Node::Clock(Clock { h, m: 0, pm: None })))
}

// ---- dates ----

/// "the day after tomorrow".
fn day_after(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if !(is(n.first(), &["day"]) && is(n.get(1), &["after"])) {
        return None;
    }
    match n.get(2) {
        Some(Node::Date(d)) => Some((3, Node::Date(*d + Duration::days(1)))),
        _ => None,
    }
}

/// "tuesday after next": the "next" one, a week on.
fn weekday_after_next(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let Some(Node::Weekday(day)) = n.first() else {
        return None;
    };
    (is(n.get(1), &["after"]) && is(n.get(2), &["next"])).then(|| {
        let d = weekday_next_week(ctx.today, *day) + Duration::days(7);
        (3, Node::Date(d))
    })
}

/// "next wednesday": that weekday in the next calendar week.
fn next_weekday_rule(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if !is(n.first(), &["next"]) {
        return None;
    }
    match n.get(1) {
        Some(Node::Weekday(day)) => Some((2, Node::Date(weekday_next_week(ctx.today, *day)))),
        _ => None,
    }
}

/// "wednesday next week", "wednesday of next week".
fn weekday_next_week_rule(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let Some(Node::Weekday(day)) = n.first() else {
        return None;
    };
    let skip = usize::from(is(n.get(1), &["of"]));
    (is(n.get(1 + skip), &["next"]) && is(n.get(2 + skip), &["week"]))
        .then(|| (3 + skip, Node::Date(weekday_next_week(ctx.today, *day))))
}

/// A bare or "this" weekday: the next one after today.
fn weekday(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let skip = usize::from(is(n.first(), &["this", "coming"]));
    match n.get(skip) {
        Some(Node::Weekday(day)) => Some((skip + 1, Node::Date(next_weekday(ctx.today, *day)))),
        _ => None,
    }
}

/// "december 14th", "december 14".
fn month_day(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let Some(Node::Month(m)) = n.first() else {
        return None;
    };
    let skip = usize::from(is(n.get(1), &["the"]));
    let d = match n.get(1 + skip) {
        Some(Node::Ord { d, .. }) => *d,
        Some(Node::Num { n, .. }) if (1..=31).contains(n) => *n,
        _ => return None,
    };
    next_date(ctx.today, *m, d).map(|date| (2 + skip, Node::Date(date)))
}

/// "14th of december", "the fourteenth of december", "3rd january".
fn day_of_month(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let d = match n.first() {
        Some(Node::Ord { d, .. }) => *d,
        _ => return None,
    };
    let skip = usize::from(is(n.get(1), &["of"]));
    match n.get(1 + skip) {
        Some(Node::Month(m)) => next_date(ctx.today, *m, d).map(|x| (2 + skip, Node::Date(x))),
        _ => None,
    }
}

/// "the 14th", "on the fifteenth", "14th": this month, or the next if
/// that day has passed.
fn ordinal_day(ctx: &Ctx, prev: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let Some(Node::Ord { d, spoken }) = n.first() else {
        return None;
    };
    if *spoken && !is(prev, &["the", "on"]) {
        return None;
    }
    let today = ctx.today;
    let this_month =
        NaiveDate::from_ymd_opt(today.year(), today.month(), *d).filter(|x| *x >= today);
    let following = today
        .checked_add_months(chrono::Months::new(1))
        .and_then(|x| NaiveDate::from_ymd_opt(x.year(), x.month(), *d));
    this_month.or(following).map(|date| (1, Node::Date(date)))
}

// ---- durations ----

/// A count of units: "2", "two", "a", "an", "a couple of"; how many nodes.
fn count(n: &[Node]) -> Option<(i64, usize)> {
    if let Some((x, _)) = num(n.first()) {
        return Some((x as i64, 1));
    }
    if is(n.first(), &["a", "an"]) {
        if is(n.get(1), &["couple"]) {
            let of = usize::from(is(n.get(2), &["of"]));
            return Some((2, 2 + of));
        }
        return Some((1, 1));
    }
    if is(n.first(), &["couple"]) {
        let of = usize::from(is(n.get(1), &["of"]));
        return Some((2, 1 + of));
    }
    None
}

enum Unit {
    Minutes(i64),
    Days(i64),
}

fn unit(n: Option<&Node>, count: i64) -> Option<Unit> {
    Some(match word(n)? {
        "minute" | "minutes" => Unit::Minutes(count),
        "hour" | "hours" => Unit::Minutes(60 * count),
        "day" | "days" => Unit::Days(count),
        "week" | "weeks" => Unit::Days(7 * count),
        _ => return None,
    })
}

/// "in an hour", "in 30 minutes", "in three days", "in half an hour",
/// "two hours from now".
fn in_duration(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let (duration, used) = if is(n.first(), &["in"]) {
        if is(n.get(1), &["half"]) && is(n.get(2), &["an", "a"]) && is(n.get(3), &["hour"]) {
            (Unit::Minutes(30), 4)
        } else {
            let (c, k) = count(&n[1..])?;
            (unit(n.get(1 + k), c)?, 2 + k)
        }
    } else {
        let (c, k) = count(n)?;
        let u = unit(n.get(k), c)?;
        if !(is(n.get(k + 1), &["from"]) && is(n.get(k + 2), &["now"])) {
            return None;
        }
        (u, k + 3)
    };
    Some(match duration {
        Unit::Minutes(m) => (used, Node::Instant(ctx.now + Duration::minutes(m))),
        Unit::Days(d) => (used, Node::Date(ctx.today + Duration::days(d))),
    })
}

/// "two weeks from monday", "a week from friday", "3 days from the 14th".
fn duration_from(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let (c, k) = count(n)?;
    let Unit::Days(days) = unit(n.get(k), c)? else {
        return None;
    };
    if !is(n.get(k + 1), &["from"]) {
        return None;
    }
    match n.get(k + 2) {
        Some(Node::Date(d)) => Some((k + 3, Node::Date(*d + Duration::days(days)))),
        _ => None,
    }
}

// ---- spans of days ----

/// Matches `phrase` at the start of `n`: words separated by spaces,
/// alternatives by `|` ("late|later"), an optional word in parentheses
/// ("(the)").
fn phrase(n: &[Node], phrase: &str) -> Option<usize> {
    let mut i = 0;
    for p in phrase.split(' ') {
        if let Some(opt) = p.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            if is(n.get(i), &[opt]) {
                i += 1;
            }
            continue;
        }
        if !word(n.get(i)).is_some_and(|w| p.split('|').any(|a| a == w)) {
            return None;
        }
        i += 1;
    }
    Some(i)
}

/// Weeks: "this week" is today to Saturday; "next week" Monday to Saturday
/// of the next calendar week ("early" Monday–Wednesday, "later"
/// Wednesday–Friday, "end of next week" Thursday and Friday); "the week after next" the one after; "end of the
/// week" Thursday and Friday (from today if later); "rest of the week"
/// today to Friday; "this weekend" the coming Saturday and Sunday, "next
/// weekend" the one after.
fn week_spans(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    const FIRST: &[&str] = &[
        "late", "later", "early", "the", "week", "next", "end", "rest", "this", "weekend",
        "middle", "mid",
    ];
    if !is(n.first(), FIRST) || !mentions(n, &["week", "weekend"], 5) {
        return None;
    }
    let today = ctx.today;
    let monday = monday_of(today);
    let next_monday = monday + Duration::days(7);
    let saturday = (monday + Duration::days(5)).max(today + Duration::days(1));
    let span = |from: NaiveDate, days: i64| Node::Days(from, from + Duration::days(days));
    let weekend = if today.weekday() == Weekday::Sun {
        today
    } else {
        monday + Duration::days(5)
    };
    let tomorrow = today + Duration::days(1);
    let table: [(&str, Node); 14] = [
        ("end of next week", span(next_monday + Duration::days(3), 2)),
        (
            "middle|mid of next week",
            span(next_monday + Duration::days(1), 3),
        ),
        ("mid next week", span(next_monday + Duration::days(1), 3)),
        (
            "later (in) this|the week",
            Node::Days(tomorrow.min(saturday - Duration::days(1)), saturday),
        ),
        (
            "late|later next week",
            span(next_monday + Duration::days(2), 3),
        ),
        ("early next week", span(next_monday, 3)),
        (
            "(the) week after next",
            span(next_monday + Duration::days(7), 5),
        ),
        ("next week", span(next_monday, 5)),
        (
            "end of (the) (this) week",
            Node::Days((monday + Duration::days(3)).max(today), saturday),
        ),
        ("rest of (the) (this) week", Node::Days(today, saturday)),
        ("next weekend", span(weekend + Duration::days(7), 2)),
        (
            "this|the weekend",
            Node::Days(weekend, monday + Duration::days(7)),
        ),
        ("weekend", Node::Days(weekend, monday + Duration::days(7))),
        ("this week", Node::Days(today, saturday)),
    ];
    table
        .into_iter()
        .find_map(|(p, node)| phrase(n, p).map(|used| (used, node)))
}

/// A month named at the start of `n`: "january", "next month", "this
/// month", "the month". Its first day (this year's, or next year's once
/// past) and how many nodes it took.
fn month_at(today: NaiveDate, n: &[Node]) -> Option<(NaiveDate, usize)> {
    let this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)?;
    match n.first() {
        Some(Node::Month(m)) => {
            let year = if *m < today.month() {
                today.year() + 1
            } else {
                today.year()
            };
            Some((NaiveDate::from_ymd_opt(year, *m, 1)?, 1))
        }
        _ => {
            if let Some(used) = phrase(n, "next month") {
                Some((first_of_next_month(today), used))
            } else {
                phrase(n, "this|the month").map(|used| (this, used))
            }
        }
    }
}

/// "the first week of January" (its days 1–7), "the second week of next
/// month", "the last week of the month" (its last seven days); never
/// before today.
fn week_of_month(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let the = usize::from(is(n.first(), &["the"]));
    let nth = match n.get(the) {
        Some(Node::Ord { d, .. }) if (1..=4).contains(d) => Some(*d),
        Some(Node::Word(w)) if w == "last" => None,
        _ => return None,
    };
    let used = phrase(&n[the + 1..], "week of")?;
    let at = the + 1 + used;
    let (first, k) = month_at(ctx.today, &n[at..])?;
    let next = first_of_next_month(first);
    let start = match nth {
        Some(d) => first + Duration::days(7 * (d as i64 - 1)),
        None => next - Duration::days(7),
    };
    let end = (start + Duration::days(7)).min(next);
    let start = start.max(ctx.today);
    (start < end).then_some((at + k, Node::Days(start, end)))
}

/// "the beginning of next month" (its first seven days), "mid January"
/// (days 10–19), "the end of February" (its last seven days); never before
/// today.
fn part_of_month(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let the = usize::from(is(n.first(), &["the"]));
    let which = word(n.get(the))?;
    let part = match which {
        "beginning" | "start" | "early" => 0,
        "middle" | "mid" => 1,
        "end" | "late" => 2,
        _ => return None,
    };
    let of = usize::from(is(n.get(the + 1), &["of"]));
    let at = the + 1 + of;
    // "end of the month" and "end of this month" stay with the spans of
    // months, which know them from today on.
    if part == 2 && matches!(n.get(at), Some(Node::Word(_))) {
        return None;
    }
    let (first, k) = month_at(ctx.today, &n[at..])?;
    let next = first_of_next_month(first);
    let (start, end) = match part {
        0 => (first, first + Duration::days(7)),
        1 => (first + Duration::days(9), first + Duration::days(19)),
        _ => (next - Duration::days(7), next),
    };
    let start = start.max(ctx.today);
    (start < end).then_some((at + k, Node::Days(start, end)))
}

/// "the next two weeks", "the next few days", "the coming days": today on.
fn coming_days(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let the = usize::from(is(n.first(), &["the"]));
    if !is(n.get(the), &["next", "coming"]) {
        return None;
    }
    let at = the + 1;
    let (c, k) = if is(n.get(at), &["few"]) {
        (3, 1)
    } else {
        count(&n[at..]).unwrap_or((0, 0))
    };
    let days = match word(n.get(at + k))? {
        "days" if c == 0 => 3,
        "days" => c,
        "weeks" if c == 0 => 14,
        "weeks" => 7 * c,
        _ => return None,
    };
    if days > 60 {
        return None;
    }
    Some((
        at + k + 1,
        Node::Days(ctx.today, ctx.today + Duration::days(days)),
    ))
}

/// Months: "end of the month" is its last seven days (from today if
/// later); "rest of the month" and "this month" today to its end; "next
/// month" all of the next.
fn month_spans(ctx: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if !is(n.first(), &["end", "rest", "this", "next"]) || !mentions(n, &["month"], 5) {
        return None;
    }
    let today = ctx.today;
    let next = first_of_next_month(today);
    let table: [(&str, Node); 4] = [
        (
            "end of (the) (this) month",
            Node::Days((next - Duration::days(7)).max(today), next),
        ),
        ("rest of (the) (this) month", Node::Days(today, next)),
        ("this month", Node::Days(today, next)),
        ("next month", Node::Days(next, first_of_next_month(next))),
    ];
    table
        .into_iter()
        .find_map(|(p, node)| phrase(n, p).map(|used| (used, node)))
}

// ---- parts of day ----

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// "first thing": 08:00–10:00.
fn first_thing(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let first = matches!(n.first(), Some(Node::Ord { d: 1, .. }));
    (first && is(n.get(1), &["thing"])).then_some((
        2,
        Node::Part(Part {
            start: t(8, 0),
            end: t(10, 0),
            pm: false,
        }),
    ))
}

/// "early afternoon" (its first two hours), "late morning" (its last two),
/// "mid morning", "mid-morning" (from two hours in).
fn part_modifier(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let m = word(n.first())?;
    if !matches!(m, "early" | "late" | "mid") {
        return None;
    }
    let skip = usize::from(is(n.get(1), &["-"]));
    let Some(Node::Part(p)) = n.get(1 + skip) else {
        return None;
    };
    let two = Duration::hours(2);
    let (start, end) = match m {
        "early" => (p.start, (p.start + two).min(p.end)),
        "late" => ((p.end - two).max(p.start), p.end),
        _ => ((p.start + two).min(p.end), p.end),
    };
    Some((2 + skip, Node::Part(Part { start, end, ..*p })))
}

// ---- ranges ----

/// "between 10:30 and noon", "from 2 to 4", "from nine till five".
fn between(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if !is(n.first(), &["between", "from"]) {
        return None;
    }
    let a = clockish(n.get(1))?;
    if !is(n.get(2), &["and", "to", "till", "until", "-", "through"]) {
        return None;
    }
    let b = clockish(n.get(3))?;
    Some((4, Node::Range(a, b)))
}

/// "2-3pm", "1:30 to 3 p m", "2 to 4".
fn time_to_time(_: &Ctx, prev: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    if is(prev, &["in", "the"]) {
        return None;
    }
    let a = clockish(n.first())?;
    if !is(n.get(1), &["to", "till", "until", "-", "through"]) {
        return None;
    }
    let b = clockish(n.get(2))?;
    if is(n.get(3), &["minutes", "hours", "days", "weeks"]) {
        return None;
    }
    Some((3, Node::Range(a, b)))
}

/// "until 3pm", "by 11", "before 10", "after 2", "after lunch", "from 3
/// on".
fn open_range(_: &Ctx, _: Option<&Node>, n: &[Node]) -> Option<(usize, Node)> {
    let w = word(n.first())?;
    let before = match w {
        "until" | "till" | "by" | "before" => true,
        "after" => false,
        _ => return None,
    };
    let at = match n.get(1) {
        Some(Node::Part(p)) => Clock::from_time(if before { p.start } else { p.end }),
        other => clockish(other)?,
    };
    if is(n.get(2), &["minutes", "hours", "days", "weeks"]) {
        return None;
    }
    Some((2, Node::Open { before, at }))
}
