//! `callbook parse …`: what callbook understands, as one JSON object, for
//! integrators and regression suites. Always an answer, never an error.

use super::{email, timezone, when, yes_no};
use crate::phone::{self, E164};
use crate::schedule::resolve_local;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

pub fn email(text: &str) -> Value {
    json!({"email": email::parse(text).map(|e| e.as_str().to_string())})
}

pub fn yes_no(text: &str) -> Value {
    json!({"answer": yes_no::classify(text)})
}

pub fn timezone(text: &str) -> Value {
    json!({"timezone": timezone::parse(text).map(|tz| tz.name().to_string())})
}

pub fn phone(text: &str) -> Value {
    match E164::parse(text) {
        Ok(n) => serde_json::to_value(phone::zone_hint(&n)).unwrap_or(Value::Null),
        Err(_) => json!({"timezone": null, "confident": false}),
    }
}

/// A time phrase resolved against `now` with nothing on offer: a point
/// (`start == end`), a window, or an open-ended span (`end: null`).
pub fn when(text: &str, now: DateTime<Utc>, tz: Tz) -> Value {
    let Some(pref) = when::parse(text, now.with_timezone(&tz).naive_local()) else {
        return json!({"start": null});
    };
    match pref.target(None, now, tz) {
        Some(when::Target::Instant(t)) => json!({"start": t, "end": t, "kind": "point"}),
        Some(when::Target::Window(w)) => json!({"start": w.start, "end": w.end, "kind": "window"}),
        Some(when::Target::Daily {
            from,
            until,
            start,
            end,
        }) => {
            // The first such span that has not ended yet; `until` (a named
            // span of days) is said too.
            let mut day = from;
            loop {
                if until.is_some_and(|u| day >= u) {
                    return json!({"start": null});
                }
                let s = resolve_local(tz, day.and_time(start));
                // "after 2" runs to the end of the day.
                let e = if end == chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(end) {
                    resolve_local(
                        tz,
                        (day + Duration::days(1)).and_time(chrono::NaiveTime::MIN),
                    )
                } else {
                    resolve_local(tz, day.and_time(end))
                };
                if e > now {
                    let mut out = json!({"start": s.max(now), "end": e, "kind": "window"});
                    if let Some(u) = until {
                        out["each_day_until"] = json!(u);
                    }
                    return out;
                }
                day += Duration::days(1);
            }
        }
        Some(when::Target::After(t)) => json!({"start": t, "end": null, "kind": "after"}),
        Some(when::Target::Before(t)) => json!({"start": now, "end": t, "kind": "before"}),
        None => json!({"start": null}),
    }
}
