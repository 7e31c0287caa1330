//! `callbook diagnose CAMPAIGN`: the diagnostics checklist
//! (`GET /v1/campaigns/{id}/diagnostics`) printed for a person.

use serde_json::Value;
use std::fmt::Write;

/// The checklist as text: one line per check (`ok` or `FAIL`, its name,
/// what it found), the links and slots and calls under it, then the
/// verdict.
pub fn render(d: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "campaign {} ({}), owner {}",
        s(&d["campaign"]),
        s(&d["name"]),
        s(&d["owner"])
    );
    let _ = writeln!(out);
    for c in d["checks"].as_array().into_iter().flatten() {
        let mark = if c["ok"].as_bool() == Some(true) {
            "ok  "
        } else {
            "FAIL"
        };
        let _ = writeln!(out, "  {mark}  {:<20} {}", s(&c["check"]), s(&c["detail"]));
        for link in c["connect"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "        connect: {} {}",
                s(&link["method"]),
                s(&link["path"])
            );
        }
        if let Some(url) = c["admin_consent_url"].as_str() {
            let _ = writeln!(out, "        administrator's consent link: {url}");
        }
        let next: Vec<String> = c["next"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|slot| s(&slot["local"]))
            .collect();
        if !next.is_empty() {
            let _ = writeln!(out, "        next: {}", next.join(", "));
        }
        for call in c["calls"].as_array().into_iter().flatten() {
            let stage = call["stage"]
                .as_str()
                .or(call["outcome"].as_str())
                .unwrap_or("-");
            let _ = writeln!(
                out,
                "        {}  {}  {:<15} {}",
                s(&call["at"]),
                s(&call["call_sid"]),
                stage,
                s(&call["why"])
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "verdict: {}", s(&d["verdict"]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_checklist_reads_as_lines_with_the_verdict_last() {
        let d = json!({
            "campaign": "demo", "name": "Acme", "owner": "alex", "ok": false,
            "verdict": "booking will not be offered: booking is turned off",
            "checks": [
                {"check": "booking_enabled", "ok": false, "detail": "booking is turned off"},
                {"check": "connection_status", "ok": false, "detail": "expired",
                 "connect": [{"method": "POST", "path": "/v1/users/alex/connections/google"}]},
                {"check": "free_slots", "ok": true, "detail": "3 free slots",
                 "next": [{"local": "Tue 2026-12-01 13:00 EST"}]},
                {"check": "recent_calls", "ok": true, "detail": "…",
                 "calls": [{"call_sid": "CA1", "at": "2026-12-01T15:00:00Z", "stage": "listening", "why": "ended before the offer"}]}
            ]
        });
        let text = render(&d);
        assert!(text.starts_with("campaign demo (Acme), owner alex\n"));
        assert!(text.contains("  FAIL  booking_enabled      booking is turned off\n"));
        assert!(text.contains("connect: POST /v1/users/alex/connections/google"));
        assert!(text.contains("next: Tue 2026-12-01 13:00 EST"));
        assert!(text.contains("CA1  listening"));
        assert!(text
            .trim_end()
            .ends_with("verdict: booking will not be offered: booking is turned off"));
    }
}
