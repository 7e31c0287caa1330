//! Phone numbers: the validated `E164` type and the timezone it hints at.
//!
//! The hint is a guess (numbers port, people travel), so the dialog always says
//! the zone aloud and any timezone statement from the caller overrides it.

mod table;

use chrono_tz::Tz;
use serde::Serialize;
use std::fmt;

/// A phone number in E.164 form (`+` and digits), validated on parse.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164 {
    text: String,
    country_code: u16,
    national: String,
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an E.164 phone number")]
pub struct PhoneError;

impl E164 {
    /// Parses `+<country><national>`; spaces, dashes and dots are tolerated.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if !trimmed.starts_with('+') {
            return Err(PhoneError);
        }
        let number = phonenumber::parse(None, trimmed).map_err(|_| PhoneError)?;
        Ok(Self::from_number(&number))
    }

    fn from_number(number: &phonenumber::PhoneNumber) -> Self {
        let country_code = number.code().value();
        let national = number.national().to_string();
        Self {
            text: format!("+{country_code}{national}"),
            country_code,
            national,
        }
    }

    /// Parses a number as a TwiML author may have written it: E.164, or
    /// national and loosely punctuated (`(415) 555-0123`, `415.555.0123`)
    /// read in `country` (ISO 3166 alpha-2, e.g. `US`). Also accepts `00`
    /// and `011` international prefixes as the country's dialling plan does.
    pub fn parse_in(raw: &str, country: &str) -> Result<Self, PhoneError> {
        if let Ok(n) = Self::parse(raw) {
            return Ok(n);
        }
        let id: phonenumber::country::Id = country
            .trim()
            .to_uppercase()
            .parse()
            .map_err(|_| PhoneError)?;
        let number = phonenumber::parse(Some(id), raw.trim()).map_err(|_| PhoneError)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError);
        }
        Ok(Self::from_number(&number))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// For logs: `+1******0123`.
    pub fn redacted(&self) -> String {
        let digits = &self.text[1..];
        let keep = digits.len().min(4);
        let cc = self.country_code.to_string();
        let hidden = digits.len().saturating_sub(keep + cc.len());
        format!(
            "+{cc}{}{}",
            "*".repeat(hidden),
            &digits[digits.len() - keep..]
        )
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.redacted())
    }
}

/// Loads the numbering plans. The library reads its tables on the first
/// parse, which takes tens of milliseconds of CPU: done at a call's start,
/// it would hold up that call and every socket sharing its worker thread.
/// A server calls this once before it takes calls.
pub fn warm() {
    let _ = E164::parse_in("(415) 555-0123", DEFAULT_COUNTRY);
}

/// Where a national number is read when nothing says otherwise.
pub const DEFAULT_COUNTRY: &str = "US";

/// Whether `code` is an ISO 3166 alpha-2 country the numbering plans know
/// (`US`, `GB`), for reading national numbers.
pub fn is_country(code: &str) -> bool {
    code.len() == 2
        && code.chars().all(|c| c.is_ascii_uppercase())
        && code.parse::<phonenumber::country::Id>().is_ok()
}

/// The zone a phone number suggests, and whether that guess is worth trusting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZoneHint {
    #[serde(serialize_with = "ser_tz")]
    pub timezone: Option<Tz>,
    /// False for numbers that are not tied to a place (toll-free, 5XX) or
    /// whose area spans several zones (the zone is then a sensible default).
    pub confident: bool,
}

fn ser_tz<S: serde::Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
    match tz {
        Some(tz) => s.serialize_str(tz.name()),
        None => s.serialize_none(),
    }
}

impl ZoneHint {
    const UNKNOWN: ZoneHint = ZoneHint {
        timezone: None,
        confident: false,
    };
}

/// NANP area codes that belong to no place: toll-free, premium, and the
/// "easily recognizable" 5XX/6XX/7XX service codes.
fn non_geographic(area: u16) -> bool {
    matches!(
        area,
        800 | 833
            | 844
            | 855
            | 866
            | 877
            | 888
            | 900
            | 700
            | 600
            | 622
            | 633
            | 644
            | 655
            | 677
            | 688
    ) || ((500..600).contains(&area) && table::zone_of_area_code(area).is_none())
}

/// The zone a number suggests: the area code for NANP numbers (`+1`), the
/// country for single-zone countries, and nothing confident otherwise.
pub fn zone_hint(number: &E164) -> ZoneHint {
    if number.country_code == 1 {
        let Some(area) = number.national.get(..3).and_then(|a| a.parse::<u16>().ok()) else {
            return ZoneHint::UNKNOWN;
        };
        if non_geographic(area) {
            return ZoneHint::UNKNOWN;
        }
        return match table::zone_of_area_code(area) {
            Some(tz) => ZoneHint {
                timezone: Some(tz),
                confident: !table::is_split(area),
            },
            None => ZoneHint::UNKNOWN,
        };
    }
    match table::zone_of_country(number.country_code) {
        Some((tz, single)) => ZoneHint {
            timezone: Some(tz),
            confident: single,
        },
        None => ZoneHint::UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(n: &str) -> ZoneHint {
        zone_hint(&E164::parse(n).unwrap())
    }

    #[test]
    fn new_york_number_is_eastern() {
        let h = hint("+12125550123");
        assert_eq!(h.timezone, Some(chrono_tz::America::New_York));
        assert!(h.confident);
    }

    #[test]
    fn salt_lake_and_phoenix_and_saskatchewan() {
        assert_eq!(
            hint("+18015550123").timezone,
            Some(chrono_tz::America::Denver)
        );
        assert_eq!(
            hint("+16025550123").timezone,
            Some(chrono_tz::America::Phoenix)
        );
        // The overlay 474 is Saskatchewan, which keeps no DST.
        assert_eq!(
            hint("+14745550123").timezone,
            Some(chrono_tz::America::Regina)
        );
    }

    #[test]
    fn toll_free_is_not_confident() {
        let h = hint("+18005550123");
        assert_eq!(h.timezone, None);
        assert!(!h.confident);
    }

    #[test]
    fn split_area_code_has_default_without_confidence() {
        let h = hint("+19075550123");
        assert_eq!(h.timezone, Some(chrono_tz::America::Anchorage));
        assert!(!h.confident);
    }

    #[test]
    fn single_zone_country() {
        let h = hint("+33142685300");
        assert_eq!(h.timezone, Some(chrono_tz::Europe::Paris));
        assert!(h.confident);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(E164::parse("12125550123").is_err());
        assert!(E164::parse("+1").is_err());
        assert!(E164::parse("hello").is_err());
    }

    /// Cross-checks the project's table against libphonenumber's NANP data
    /// where that reference file is present beside the project.
    #[test]
    fn area_codes_agree_with_libphonenumber() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/nanp_tz.tsv");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("reference {} not present; skipped", path.display());
            return;
        };
        // Deliberate differences: Saskatchewan's overlay keeps no DST; South
        // and North Dakota default to Central, named by its main zone (the
        // same clock as America/North_Dakota/Center).
        let overrides = [
            ("474", "America/Regina"),
            ("605", "America/Chicago"),
            ("701", "America/Chicago"),
        ];
        let mut checked = 0;
        for line in text.lines().filter(|l| l.starts_with('1')) {
            let Some((prefix, zones)) = line.split_once('\t') else {
                continue;
            };
            if prefix.len() != 4 {
                continue;
            }
            let area = &prefix[1..];
            let ours = hint(&format!("+1{area}5550123"));
            let name = ours
                .timezone
                .map(|z| z.name().to_string())
                .unwrap_or_default();
            if let Some((_, zone)) = overrides.iter().find(|(a, _)| *a == area) {
                assert_eq!(name, *zone, "{area}");
                continue;
            }
            let listed: Vec<&str> = zones.split('&').collect();
            assert!(
                listed.contains(&name.as_str()),
                "{area}: ours {name}, reference {zones}"
            );
            assert_eq!(
                ours.confident,
                listed.len() == 1 && !table::is_split(area.parse().unwrap()),
                "{area}"
            );
            checked += 1;
        }
        assert!(checked > 400, "only {checked} area codes checked");
    }

    #[test]
    fn redaction_hides_the_middle() {
        let n = E164::parse("+12125550123").unwrap();
        assert_eq!(n.redacted(), "+1******0123");
        assert!(!format!("{n:?}").contains("555"));
    }

    #[test]
    fn national_numbers_are_read_in_the_campaigns_country() {
        for raw in [
            "(415) 555-0123",
            "415.555.0123",
            "4155550123",
            "+1 415 555 0123",
        ] {
            assert_eq!(
                E164::parse_in(raw, "US").unwrap().as_str(),
                "+14155550123",
                "{raw}"
            );
        }
        assert_eq!(
            E164::parse_in("020 7946 0018", "GB").unwrap().as_str(),
            "+442079460018"
        );
        assert!(E164::parse_in("not a number", "US").is_err());
        assert!(E164::parse_in("555", "US").is_err());
        assert!(is_country("US") && is_country("GB"));
        assert!(!is_country("us") && !is_country("XX") && !is_country("USA"));
    }
}
