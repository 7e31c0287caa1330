//! Time phrases: never panic, deterministic, resolvable in odd zones.
#![no_main]

use callbook::dialog::understand::when;
use chrono::{NaiveDate, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = NaiveDate::from_ymd_opt(2026, 12, 1)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let first = when::parse(text, now);
    assert_eq!(first, when::parse(text, now));
    if let Some(p) = first {
        let utc = Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap();
        for tz in [
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Australia::Lord_Howe,
        ] {
            let _ = p.target(Some(utc), utc, tz);
        }
    }
});
