//! Words → tokens: numbers (digits or words, "twenty five" is one number),
//! ordinals, weekdays, months, am/pm ("pm", "p m", "p.m."), clock times
//! ("4:15", "4:15pm"), dates written "12/22", and the words that are dates or
//! parts of day on their own ("today", "tonight", "noon", "afternoon").
//! Everything else stays a [`Node::Word`] for the rules to match by spelling.

use super::rules::{Clock, Ctx, Node, Part};
use chrono::{Duration, Weekday};

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

/// Months as written short ("Jan 5th", "first week of Jan").
const SHORT_MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

const UNITS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: &[(&str, u32)] = &[("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50)];

const ORDINALS: &[&str] = &[
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
];

fn t(h: u32, m: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// Parts of day and their spans; `pm` is the hint a bare hour inside takes.
pub(super) fn part_of_day(word: &str) -> Option<Part> {
    let (start, end, pm) = match word {
        "morning" | "mornings" => (t(8, 0), t(12, 0), false),
        "lunch" | "lunchtime" => (t(12, 0), t(14, 0), true),
        "afternoon" | "afternoons" => (t(12, 0), t(17, 0), true),
        "evening" | "evenings" | "night" => (t(17, 0), t(21, 0), true),
        _ => return None,
    };
    Some(Part { start, end, pm })
}

fn meridiem(word: &str) -> Option<bool> {
    match word {
        "am" | "a.m" | "a.m." => Some(false),
        "pm" | "p.m" | "p.m." => Some(true),
        _ => None,
    }
}

fn ordinal(word: &str) -> Option<(u32, bool)> {
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix = &word[digits.len()..];
    if !digits.is_empty() && matches!(suffix, "st" | "nd" | "rd" | "th") {
        return digits
            .parse()
            .ok()
            .filter(|d| (1..=31).contains(d))
            .map(|d| (d, false));
    }
    if let Some(i) = ORDINALS.iter().position(|x| *x == word) {
        return Some((i as u32 + 1, true));
    }
    match word {
        "thirtieth" => Some((30, true)),
        _ => None,
    }
}

/// A word as a number below 100 said as one word.
fn number_word(word: &str) -> Option<(u32, bool)> {
    if let Some(n) = UNITS.iter().position(|x| *x == word) {
        return Some((n as u32, true));
    }
    TENS.iter()
        .find(|(x, _)| *x == word)
        .map(|(_, n)| (*n, true))
}

/// Splits "2-3pm", "mid-morning", "4pm", "4:15pm", "3ish" into the pieces
/// the lexicon knows.
fn pieces<'a>(word: &'a str, out: &mut Vec<&'a str>) {
    if word.len() > 1 && word.contains('-') && !word.starts_with('-') && !word.ends_with('-') {
        for (i, part) in word.split('-').enumerate() {
            if i > 0 {
                out.push("-");
            }
            pieces(part, out);
        }
        return;
    }
    // "3ish", "noonish": about that time; a number so marked is an hour.
    if let Some(stem) = word.strip_suffix("ish").filter(|x| !x.is_empty()) {
        let hour = stem.parse::<u32>().is_ok() || number_word(stem).is_some();
        if hour || matches!(stem, "noon" | "midday") {
            out.push(stem);
            if hour {
                out.push("o'clock");
            }
            return;
        }
    }
    let digits = word
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .count();
    let (num, rest) = word.split_at(digits);
    if digits > 0 && meridiem(rest).is_some() {
        out.push(num);
        out.push(rest);
        return;
    }
    out.push(word);
}

/// The tokens of an utterance.
pub(super) fn lex(words: &[String], ctx: &Ctx) -> Vec<Node> {
    let mut split = Vec::with_capacity(words.len() + 2);
    for w in words {
        pieces(w, &mut split);
    }
    let w = split;
    let mut out = Vec::with_capacity(w.len());
    let mut i = 0;
    while i < w.len() {
        let word = w[i];
        let next = w.get(i + 1).copied();
        i += 1;
        // "p m", "a m" after a number.
        if matches!(word, "p" | "a") && next == Some("m") {
            let after_number = matches!(out.last(), Some(Node::Num { .. } | Node::Clock(_)));
            if word == "p" || after_number {
                out.push(Node::Meridiem(word == "p"));
                i += 1;
                continue;
            }
        }
        if let Some(pm) = meridiem(word) {
            out.push(Node::Meridiem(pm));
            continue;
        }
        if let Ok(n) = word.parse::<u32>() {
            out.push(Node::Num { n, spoken: false });
            continue;
        }
        if let Some((n, spoken)) = number_word(word) {
            // "twenty five": a tens word and a unit are one number.
            let unit = next.and_then(|x| UNITS[1..10].iter().position(|u| *u == x));
            match unit {
                Some(u) if n >= 20 => {
                    out.push(Node::Num {
                        n: n + u as u32 + 1,
                        spoken,
                    });
                    i += 1;
                }
                _ => out.push(Node::Num { n, spoken }),
            }
            continue;
        }
        if let Some((d, spoken)) = ordinal(word) {
            out.push(Node::Ord { d, spoken });
            continue;
        }
        // "4:15", "4:15pm"
        if let Some((hh, mm)) = word.split_once(':') {
            if let (Ok(h), Ok(m)) = (hh.parse::<u32>(), mm.parse::<u32>()) {
                if h <= 23 && m <= 59 {
                    out.push(Node::Clock(Clock { h, m, pm: None }));
                    continue;
                }
            }
        }
        // "12/22"
        if let Some((m, d)) = word.split_once('/') {
            if let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) {
                if let Some(date) = super::rules::next_date(ctx.today, m, d) {
                    out.push(Node::Date(date));
                    continue;
                }
            }
        }
        if let Some((_, day)) = WEEKDAYS.iter().find(|(n, _)| *n == word) {
            out.push(Node::Weekday(*day));
            continue;
        }
        if let Some(m) = MONTHS.iter().position(|x| *x == word) {
            out.push(Node::Month(m as u32 + 1));
            continue;
        }
        if let Some((_, m)) = SHORT_MONTHS.iter().find(|(n, _)| *n == word) {
            out.push(Node::Month(*m));
            continue;
        }
        if let Some(part) = part_of_day(word) {
            out.push(Node::Part(part));
            continue;
        }
        match word {
            "today" => out.push(Node::Date(ctx.today)),
            "tomorrow" => out.push(Node::Date(ctx.today + Duration::days(1))),
            "tonight" => {
                out.push(Node::Date(ctx.today));
                out.push(Node::Part(Part {
                    start: t(17, 0),
                    end: t(21, 0),
                    pm: true,
                }));
            }
            "noon" | "midday" => out.push(Node::Clock(Clock {
                h: 12,
                m: 0,
                pm: Some(true),
            })),
            "midnight" => out.push(Node::Clock(Clock {
                h: 12,
                m: 0,
                pm: Some(false),
            })),
            _ => out.push(Node::Word(word.to_string())),
        }
    }
    out
}
