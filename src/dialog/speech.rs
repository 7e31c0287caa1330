//! Meaning → words: what the agent says. Pure text building.

use crate::dialog::understand::email::Email;
use crate::schedule::Interval;
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// The spelling alphabet as spoken (US forms, which TTS voices say well).
const NATO: [&str; 26] = [
    "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet",
    "Kilo", "Lima", "Mike", "November", "Oscar", "Papa", "Quebec", "Romeo", "Sierra", "Tango",
    "Uniform", "Victor", "Whiskey", "X-ray", "Yankee", "Zulu",
];

const DIGIT_WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Domain labels read as words rather than spelled: providers, top-level
/// domains, and common English words companies build names from. Anything
/// else is spelled, since a misheard company name is the costly mistake.
const WORD_LABELS: &[&str] = &[
    // Providers.
    "gmail",
    "googlemail",
    "yahoo",
    "hotmail",
    "outlook",
    "icloud",
    "protonmail",
    "proton",
    "live",
    "msn",
    "comcast",
    "verizon",
    "att",
    "mac",
    "me",
    "fastmail",
    "zoho",
    // Top-level and second-level domains.
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "io",
    "co",
    "uk",
    "us",
    "ca",
    "au",
    "de",
    "fr",
    "info",
    "biz",
    "ai",
    "app",
    "dev",
    "tech",
    "online",
    "email",
    // Common words.
    "example",
    "mail",
    "company",
    "group",
    "labs",
    "lab",
    "cloud",
    "data",
    "home",
    "work",
    "shop",
    "store",
    "media",
    "design",
    "studio",
    "law",
    "health",
    "bank",
    "energy",
    "solutions",
    "systems",
    "services",
    "consulting",
    "digital",
    "global",
    "world",
    "web",
    "one",
    "first",
    "smart",
    "blue",
    "green",
    "red",
    "sun",
    "star",
    "city",
    "school",
    "university",
    "college",
    "family",
    "farm",
    "garden",
    "house",
    "real",
    "estate",
    "travel",
    "auto",
    "care",
    "dental",
    "medical",
    "capital",
    "partners",
    "ventures",
    "holdings",
    "foods",
    "coffee",
    "music",
    "sports",
    "news",
    "art",
    "books",
    "marketing",
    "sales",
    "software",
    "network",
    "mobile",
    "power",
    "north",
    "south",
    "east",
    "west",
    "river",
    "lake",
    "mountain",
    "ocean",
    "bay",
    "park",
    "hill",
    "valley",
    "united",
    "american",
    "national",
    "international",
    "community",
    "church",
    "clinic",
    "hospital",
    "insurance",
    "finance",
    "logistics",
    "construction",
    "engineering",
    "build",
    "builders",
    "homes",
    "realty",
    "legal",
    "agency",
];

/// One character of an address, as said when spelling.
fn spell_char(c: char) -> String {
    match c {
        'a'..='z' => format!(
            "{} as in {}",
            c.to_ascii_uppercase(),
            NATO[(c as u8 - b'a') as usize]
        ),
        '0'..='9' => DIGIT_WORDS[(c as u8 - b'0') as usize].to_string(),
        '.' => "dot".into(),
        '_' => "underscore".into(),
        '-' => "dash".into(),
        '+' => "plus".into(),
        '\'' => "apostrophe".into(),
        other => other.to_string(),
    }
}

/// Reads the part before the "at" letter by letter.
pub fn spell_local(email: &Email) -> String {
    email
        .local()
        .chars()
        .map(spell_char)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the domain: known words as words, anything else spelled.
pub fn say_domain(email: &Email) -> String {
    email
        .domain()
        .split('.')
        .map(|label| {
            if label == "aol" {
                "A O L".to_string()
            } else if WORD_LABELS.contains(&label) {
                label.to_string()
            } else {
                label.chars().map(spell_char).collect::<Vec<_>>().join(", ")
            }
        })
        .collect::<Vec<_>>()
        .join(" dot ")
}

/// The whole read-back: "J as in Juliet, O as in Oscar, at gmail dot com".
pub fn read_back(email: &Email) -> String {
    format!("{}, at {}", spell_local(email), say_domain(email))
}

/// How a zone is named aloud: "Eastern", "Pacific", "UK time", "Paris time".
pub fn zone_name(tz: Tz) -> String {
    let name = tz.name();
    let family = [
        (
            "Eastern",
            &[
                "America/New_York",
                "America/Toronto",
                "America/Detroit",
                "America/Indiana/Indianapolis",
                "US/Eastern",
            ][..],
        ),
        (
            "Central",
            &[
                "America/Chicago",
                "America/Winnipeg",
                "America/North_Dakota/Center",
                "US/Central",
            ][..],
        ),
        (
            "Mountain",
            &[
                "America/Denver",
                "America/Edmonton",
                "America/Boise",
                "US/Mountain",
            ][..],
        ),
        (
            "Pacific",
            &["America/Los_Angeles", "America/Vancouver", "US/Pacific"][..],
        ),
        ("Arizona time", &["America/Phoenix"][..]),
        ("Alaska time", &["America/Anchorage", "America/Juneau"][..]),
        ("Hawaii time", &["Pacific/Honolulu"][..]),
        (
            "Atlantic time",
            &["America/Halifax", "America/Puerto_Rico"][..],
        ),
        ("Newfoundland time", &["America/St_Johns"][..]),
        ("Saskatchewan time", &["America/Regina"][..]),
        ("UK time", &["Europe/London"][..]),
    ];
    for (spoken, zones) in family {
        if zones.contains(&name) {
            return spoken.to_string();
        }
    }
    if name == "UTC" || name == "Etc/UTC" {
        return "UTC".to_string();
    }
    let city = name.rsplit('/').next().unwrap_or(name).replace('_', " ");
    format!("{city} time")
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, x) if x != 11 => "st",
        (2, x) if x != 12 => "nd",
        (3, x) if x != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "2 PM", "2:30 PM", "noon".
pub fn clock(t: DateTime<Tz>) -> String {
    let (pm, h12) = t.hour12();
    let meridiem = if pm { "PM" } else { "AM" };
    match (t.hour(), t.minute()) {
        (12, 0) => "noon".to_string(),
        (_, 0) => format!("{h12} {meridiem}"),
        (_, m) => format!("{h12}:{m:02} {meridiem}"),
    }
}

/// "Tuesday, December 1st".
pub fn date(t: DateTime<Tz>) -> String {
    format!(
        "{}, {} {}",
        t.format("%A"),
        t.format("%B"),
        ordinal(t.day())
    )
}

/// The slot as the caller hears it: the full date and time in the owner's
/// zone, then the caller's own clock when their zone differs.
///
/// "Tuesday, December 1st at 2 PM Eastern, that's 11 AM your time"
pub fn slot(start: DateTime<Utc>, owner: Tz, caller: Tz) -> String {
    let at_owner = start.with_timezone(&owner);
    let at_caller = start.with_timezone(&caller);
    let mut text = format!(
        "{} at {} {}",
        date(at_owner),
        clock(at_owner),
        zone_name(owner)
    );
    if at_owner.naive_local() != at_caller.naive_local() {
        let day = if at_owner.date_naive() != at_caller.date_naive() {
            format!(" {}", at_caller.format("%A"))
        } else {
            String::new()
        };
        text.push_str(&format!(", that's {}{} your time", clock(at_caller), day));
    }
    text
}

/// Several slots, grouped by day in the owner's zone, then the caller's
/// clock for each when their zone differs.
///
/// "Wednesday, December 2nd at 10 AM or 2:30 PM, or Thursday, December 3rd
/// at 9 AM Eastern, that's 7 AM, 11:30 AM or 6 AM your time"
pub fn options(slots: &[Interval], owner: Tz, caller: Tz) -> String {
    let mut days: Vec<(String, Vec<String>)> = Vec::new();
    for s in slots {
        let t = s.start.with_timezone(&owner);
        let day = date(t);
        match days.last_mut() {
            Some((d, clocks)) if *d == day => clocks.push(clock(t)),
            _ => days.push((day, vec![clock(t)])),
        }
    }
    let said: Vec<String> = days
        .into_iter()
        .map(|(day, clocks)| format!("{day} at {}", or_list(&clocks)))
        .collect();
    let mut text = format!("{} {}", join_or(&said), zone_name(owner));
    let differs = slots.iter().any(|s| {
        s.start.with_timezone(&owner).naive_local() != s.start.with_timezone(&caller).naive_local()
    });
    if differs {
        let mut theirs: Vec<String> = slots
            .iter()
            .map(|s| clock(s.start.with_timezone(&caller)))
            .collect();
        if theirs.iter().all(|c| *c == theirs[0]) {
            theirs.truncate(1);
        }
        text.push_str(&format!(", that's {} your time", or_list(&theirs)));
    }
    text
}

/// "a", "a or b", "a, b or c".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Day groups: "a", "a, or b", "a, b, or c".
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

/// A slot said briefly, once its date has already been heard.
pub fn slot_short(meeting: Interval, owner: Tz) -> String {
    let t = meeting.start.with_timezone(&owner);
    format!("{} at {}", t.format("%A"), clock(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_an_address_back_in_nato() {
        let e = Email::parse("jo2.n@gmail.com").unwrap();
        assert_eq!(
            read_back(&e),
            "J as in Juliet, O as in Oscar, two, dot, N as in November, at gmail dot com"
        );
        let e = Email::parse("a@xyz.io").unwrap();
        assert_eq!(
            say_domain(&e),
            "X as in X-ray, Y as in Yankee, Z as in Zulu dot io"
        );
    }

    #[test]
    fn says_both_zones() {
        let s = slot(
            utc("2026-12-01T19:00:00Z"),
            chrono_tz::America::New_York,
            chrono_tz::America::Los_Angeles,
        );
        assert_eq!(
            s,
            "Tuesday, December 1st at 2 PM Eastern, that's 11 AM your time"
        );
        let s = slot(
            utc("2026-12-01T19:00:00Z"),
            chrono_tz::America::New_York,
            chrono_tz::America::New_York,
        );
        assert_eq!(s, "Tuesday, December 1st at 2 PM Eastern");
        let s = slot(
            utc("2026-12-01T23:30:00Z"),
            chrono_tz::America::Los_Angeles,
            chrono_tz::Europe::Paris,
        );
        assert_eq!(
            s,
            "Tuesday, December 1st at 3:30 PM Pacific, that's 12:30 AM Wednesday your time"
        );
    }
}
