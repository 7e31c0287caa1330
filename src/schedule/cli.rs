//! `callbook slots`: the tool that answers "why wasn't Tuesday offered?".
//! Reads rules and busy time as JSON text, answers with one JSON object.

use super::{BookingRules, Exclusion, Interval, SlotFinder};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Bad input; the message names the field. The CLI exits 2 with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Parses `[{"start": RFC3339, "end": RFC3339}, …]`, naming the bad entry.
pub fn parse_busy(text: &str) -> Result<Vec<Interval>, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let busy: Vec<Interval> = serde_path_to_error::deserialize(de)
        .map_err(|e| InputError(format!("busy{}: {}", e.path(), e.inner())))?;
    if let Some(i) = busy.iter().position(|b| b.end < b.start) {
        return Err(InputError(format!("busy[{i}].end: before its start")));
    }
    Ok(busy)
}

/// Answers `callbook slots`: every free slot (or the first `limit`), or,
/// with `explain`, whether that start is offered and which rule excludes it.
pub fn answer(
    rules_text: &str,
    busy_text: Option<&str>,
    now: DateTime<Utc>,
    limit: Option<usize>,
    explain: Option<DateTime<Utc>>,
) -> Result<Value, InputError> {
    let rules = BookingRules::parse(rules_text).map_err(|e| InputError(format!("rules: {e}")))?;
    let busy = busy_text.map(parse_busy).transpose()?.unwrap_or_default();
    let finder = SlotFinder::new(&rules, busy, now);
    if let Some(start) = explain {
        return Ok(match finder.exclusion(start) {
            None => json!({"start": start, "offered": true}),
            Some(why) => {
                json!({"start": start, "offered": false, "because": why, "message": sentence(&rules, &why)})
            }
        });
    }
    let slots: Vec<Interval> = finder.free().take(limit.unwrap_or(usize::MAX)).collect();
    Ok(json!({ "slots": slots }))
}

/// The exclusion in words, with local times where they help.
fn sentence(rules: &BookingRules, why: &Exclusion) -> String {
    let local = |t: DateTime<Utc>| {
        t.with_timezone(&rules.timezone)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    };
    match why {
        Exclusion::OutsideLookAhead => format!(
            "the start's date is before today or more than {} days ahead in {}",
            rules.look_ahead_days,
            rules.timezone.name()
        ),
        Exclusion::MinimumNotice => format!(
            "the start is less than {} minutes from now",
            rules.min_notice_minutes
        ),
        Exclusion::DayNotInWindow => "the window does not include that weekday".into(),
        Exclusion::NotOnStepGrid => format!(
            "the start is not a multiple of {} minutes from local midnight",
            rules.slot_step_minutes
        ),
        Exclusion::OutsideWindow => {
            "the meeting would start before the window opens or end after it closes".into()
        }
        Exclusion::Busy { start, end } => format!(
            "with its buffers the meeting overlaps busy time {} to {}",
            local(*start),
            local(*end)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"{"timezone":"America/New_York","length_minutes":30,"slot_step_minutes":30,
        "window":{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00"},
        "buffer_after_minutes":10,"min_notice_minutes":120,"look_ahead_days":14}"#;

    fn now() -> DateTime<Utc> {
        "2026-12-01T13:00:00Z".parse().unwrap()
    }

    #[test]
    fn lists_and_limits() {
        let v = answer(RULES, None, now(), Some(2), None).unwrap();
        assert_eq!(
            v,
            json!({"slots": [{"start": "2026-12-01T15:00:00Z", "end": "2026-12-01T15:30:00Z"},
                             {"start": "2026-12-01T15:30:00Z", "end": "2026-12-01T16:00:00Z"}]})
        );
    }

    #[test]
    fn explains_each_rule() {
        let busy = r#"[{"start":"2026-12-02T15:30:00Z","end":"2026-12-02T16:00:00Z"}]"#;
        let why = |t: &str| {
            let v = answer(RULES, Some(busy), now(), None, Some(t.parse().unwrap())).unwrap();
            v["because"]["rule"]
                .as_str()
                .unwrap_or("offered")
                .to_string()
        };
        assert_eq!(why("2026-12-02T15:00:00Z"), "busy");
        assert_eq!(why("2026-12-01T14:00:00Z"), "minimum_notice");
        assert_eq!(why("2026-12-05T15:00:00Z"), "day_not_in_window");
        assert_eq!(why("2026-12-02T15:10:00Z"), "not_on_step_grid");
        assert_eq!(why("2026-12-02T22:00:00Z"), "outside_window");
        assert_eq!(why("2027-01-20T15:00:00Z"), "outside_look_ahead");
        assert_eq!(why("2026-12-02T16:00:00Z"), "offered");
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = answer(
            &RULES.replace("\"length_minutes\":30", "\"length_minutes\":\"x\""),
            None,
            now(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("rules: length_minutes:"), "{e}");
        let e = answer(
            RULES,
            Some(r#"[{"start":"2026-12-02T15:30:00Z","end":"nope"}]"#),
            now(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("busy[0].end:"), "{e}");
        let e = answer(
            &RULES.replace("\"timezone\":\"America/New_York\",", ""),
            None,
            now(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("timezone"), "{e}");
    }
}
