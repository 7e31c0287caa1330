//! The `callbook` binary as a user runs it.

use std::process::Command;

fn callbook(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callbook"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("callbook-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const RULES: &str = r#"{"timezone":"America/Chicago","length_minutes":60,"slot_step_minutes":60,
  "window":{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"12:00"},
  "min_notice_minutes":0,"look_ahead_days":1}"#;

#[test]
fn slots_prints_one_json_object() {
    let rules = write("ok.json", RULES);
    let busy = write(
        "busy.json",
        r#"[{"start":"2026-12-01T16:00:00Z","end":"2026-12-01T17:00:00Z"}]"#,
    );
    let (code, out, _) = callbook(&[
        "slots",
        "--rules",
        &rules,
        "--busy",
        &busy,
        "--now",
        "2026-12-01T06:00:00Z",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let starts: Vec<&str> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-12-01T15:00:00Z",
            "2026-12-01T17:00:00Z",
            "2026-12-02T15:00:00Z",
            "2026-12-02T16:00:00Z",
            "2026-12-02T17:00:00Z"
        ]
    );
    let (_, out, _) = callbook(&[
        "slots",
        "--rules",
        &rules,
        "--now",
        "2026-12-01T06:00:00Z",
        "--limit",
        "1",
    ]);
    assert_eq!(
        out.trim(),
        r#"{"slots":[{"end":"2026-12-01T16:00:00Z","start":"2026-12-01T15:00:00Z"}]}"#
    );
}

#[test]
fn explain_names_the_rule() {
    let rules = write("explain.json", RULES);
    let busy = write(
        "busy2.json",
        r#"[{"start":"2026-12-01T16:00:00Z","end":"2026-12-01T17:00:00Z"}]"#,
    );
    let (code, out, _) = callbook(&[
        "slots",
        "--rules",
        &rules,
        "--busy",
        &busy,
        "--now",
        "2026-12-01T06:00:00Z",
        "--explain",
        "2026-12-01T16:00:00Z",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["offered"], false);
    assert_eq!(v["because"]["rule"], "busy");
}

#[test]
fn bad_input_exits_2_naming_the_field() {
    let bad = write(
        "bad.json",
        &RULES.replace("\"slot_step_minutes\":60", "\"slot_step_minutes\":7"),
    );
    let (code, _, err) = callbook(&["slots", "--rules", &bad, "--now", "2026-12-01T06:00:00Z"]);
    assert_eq!(code, 2);
    assert!(err.contains("slot_step_minutes"), "{err}");
    let rules = write("ok2.json", RULES);
    let busy = write("badbusy.json", r#"[{"start":"2026-12-01T16:00:00Z"}]"#);
    let (code, _, err) = callbook(&[
        "slots",
        "--rules",
        &rules,
        "--busy",
        &busy,
        "--now",
        "2026-12-01T06:00:00Z",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("busy[0]") && err.contains("end"), "{err}");
    let (code, _, _) = callbook(&["slots", "--rules", &rules, "--now", "yesterday"]);
    assert_eq!(code, 2);
}

#[test]
fn seal_reads_the_token_from_stdin_and_binds_it_to_its_owner() {
    use base64::Engine;
    use callbook::store::secrets::TokenCipher;
    use secrecy::{ExposeSecret, SecretString};
    use std::io::Write;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbook"))
        .args(["seal", "--user", "alex", "--provider", "google"])
        .env("CALLBOOK_TOKEN_KEY", &key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"1//secret-refresh\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let sealed = String::from_utf8(out.stdout).unwrap();
    let cipher = TokenCipher::from_base64(&SecretString::from(key)).unwrap();
    assert!(
        sealed.starts_with(&format!("v2:{}:", cipher.sealing_key_id()))
            && !sealed.contains("secret-refresh"),
        "{sealed}"
    );
    assert_eq!(
        cipher.open(&sealed, "alex|google").unwrap().expose_secret(),
        "1//secret-refresh"
    );
    assert!(cipher.open(&sealed, "alex|microsoft").is_err());
}

#[test]
fn serve_refuses_shared_or_saved_connections_it_cannot_seal() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_callbook"))
            .arg("serve")
            .args([
                "--auth-token",
                "pipeline-token-0123456789",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("CALLBOOK_TOKEN_KEY")
            .env_remove("CALLBOOK_REDIS_URL")
            .env_remove("CALLBOOK_STATE_FILE")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--redis-url", "redis://127.0.0.1:1/"]);
    assert!(!ok && err.contains("CALLBOOK_TOKEN_KEY"), "{err}");
    let state = write("state.json", "");
    let (ok, err) = run(&["--state-file", &state]);
    assert!(!ok && err.contains("CALLBOOK_TOKEN_KEY"), "{err}");
    let (ok, err) = run(&[
        "--redis-url",
        "redis://127.0.0.1:1/",
        "--state-file",
        &state,
    ]);
    assert!(!ok && err.contains("give one"), "{err}");
}

#[test]
fn serve_refuses_a_hold_shorter_than_a_write_can_take() {
    let out = Command::new(env!("CARGO_BIN_EXE_callbook"))
        .arg("serve")
        .args(["--auth-token", "pipeline-token-0123456789"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            "redis://127.0.0.1:1/",
        ])
        .args(["--hold-ttl-seconds", "3"])
        .env(
            "CALLBOOK_TOKEN_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env_remove("CALLBOOK_STATE_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--hold-ttl-seconds must be at least 6"),
        "{err}"
    );
}

/// The load mode a user runs to reproduce the speed figures works end to
/// end, with the emulator in its own process: every transcript answered,
/// and every burst call's offer said.
#[test]
fn the_twilio_rate_load_mode_measures_both_servers_against_an_emulator_process() {
    let (code, out, err) = callbook(&[
        "load",
        "--twilio-rate",
        "--calls",
        "4",
        "--idle-calls",
        "6",
        "--seconds",
        "3",
        "--rounds",
        "1",
        "--burst",
        "5",
        "--burst-rate",
        "50",
        "--emulator-process",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["emulator_process"], true);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{report}");
    for run in runs {
        assert_eq!(run["unanswered"], 0, "{run}");
        assert!(run["transcripts"].as_u64().unwrap() >= 4, "{run}");
        assert_eq!(run["replies"], run["transcripts"], "{run}");
    }
    assert_eq!(report["burst"][0]["calls"], 5, "{report}");
    // The report's own figures exist; their size is this machine's.
    assert!(
        report["burst"][0]["first_say_max_ms"].is_number(),
        "{report}"
    );
}
