//! Properties of every parser: no input panics (any Unicode up to 2 KB),
//! every email returned passes the validator, and parsing is deterministic.

use super::*;
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

/// Words the parsers react to, so random input reaches deep paths.
const VOCAB: &[&str] = &[
    "at",
    "dot",
    "j",
    "o",
    "as",
    "in",
    "juliet",
    "double",
    "triple",
    "underscore",
    "dash",
    "plus",
    "gmail",
    "com",
    "not",
    "no",
    "yes",
    "yeah",
    "actually",
    "but",
    "tomorrow",
    "next",
    "friday",
    "at",
    "3",
    "pm",
    "half",
    "past",
    "quarter",
    "to",
    "after",
    "before",
    "in",
    "two",
    "weeks",
    "from",
    "monday",
    "i'm",
    "eastern",
    "salt",
    "lake",
    "city",
    "is",
    "it's",
    "scratch",
    "that",
    "last",
    "part",
    "the",
    "14th",
    "4/22",
    ":",
    "/",
    "-",
    "@",
    ".",
    "é",
    "零",
    "🙂",
    "twenty",
    "three",
    "noon",
    "midnight",
    "morning",
    "earlier",
    "later",
    "same",
    "time",
];

fn arb_utterance() -> impl Strategy<Value = String> {
    prop_oneof![
        // Any Unicode at all, up to 2 KB.
        any::<String>().prop_map(|s| s
            .chars()
            .scan(0, |n, c| {
                *n += c.len_utf8();
                (*n <= 2048).then_some(c)
            })
            .collect()),
        // Plausible speech built from the words that matter.
        prop::collection::vec(prop::sample::select(VOCAB), 0..40).prop_map(|w| w.join(" ")),
    ]
}

fn now() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 1)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn email_never_panics_and_only_returns_valid_addresses(text in arb_utterance()) {
        let first = email::parse(&text);
        if let Some(e) = &first {
            prop_assert!(email::valid(e.as_str()), "{e:?}");
            // Its own written form parses back to itself.
            let again = email::parse(e.as_str());
            prop_assert_eq!(again.as_ref(), Some(e));
        }
        prop_assert_eq!(email::parse(&text), first);
        let current = email::Email::parse("john@gmail.com").unwrap();
        if let Some(email::Correction::Replace(e)) = email::correct(&current, &text) {
            prop_assert!(email::valid(e.as_str()));
        }
        if let Some(l) = email::parse_local_part(&text) {
            let addr = format!("{l}@example.com");
            prop_assert!(email::valid(&addr));
        }
    }

    #[test]
    fn time_phrases_never_panic_and_are_deterministic(text in arb_utterance()) {
        let first = when::parse(&text, now());
        prop_assert_eq!(&when::parse(&text, now()), &first);
        if let Some(p) = first {
            let utc = Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap();
            let anchor = Some(utc + chrono::Duration::hours(26));
            for tz in [chrono_tz::America::New_York, chrono_tz::Asia::Kathmandu, chrono_tz::Australia::Lord_Howe] {
                let _ = p.target(anchor, utc, tz);
                let _ = p.target(None, utc, tz);
            }
        }
    }

    #[test]
    fn other_parsers_never_panic_and_are_deterministic(text in arb_utterance()) {
        prop_assert_eq!(yes_no::classify(&text), yes_no::classify(&text));
        prop_assert_eq!(timezone::parse(&text), timezone::parse(&text));
        prop_assert_eq!(intent::detect(&text), intent::detect(&text));
    }
}
