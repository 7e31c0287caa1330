//! `callbook check-provider`'s steps against both emulators: read-only by
//! default, the test event only with `write` (and deleted again).

use callbook::calendar::check::{check_provider, TEST_EVENT_TITLE};
use callbook::schedule::Interval;

fn day() -> Interval {
    Interval::new(
        crate::microsoft::t("2026-12-01T00:00:00Z"),
        crate::microsoft::t("2026-12-02T00:00:00Z"),
    )
}

fn names(steps: &[callbook::calendar::check::Step]) -> Vec<&str> {
    steps.iter().map(|s| s.step).collect()
}

#[tokio::test]
async fn read_only_by_default_and_nothing_is_written() {
    let s = crate::microsoft::setup(true, "Australia/Sydney").await;
    s.emu.add_event(
        crate::microsoft::OWNER,
        "Standup",
        Interval::new(
            crate::microsoft::t("2026-12-01T01:00:00Z"),
            crate::microsoft::t("2026-12-01T01:30:00Z"),
        ),
        "busy",
    );
    let now = crate::microsoft::t("2026-11-30T12:00:00Z");
    let steps = check_provider(&s.client, crate::microsoft::OWNER, day(), false, now).await;
    assert_eq!(
        names(&steps),
        ["list_calendars", "calendar_info", "free_busy"]
    );
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    assert!(steps[1].detail.contains("Australia/Sydney"), "{steps:?}");
    assert!(steps[2].detail.contains("30 busy minutes"), "{steps:?}");
    assert_eq!(s.emu.events(crate::microsoft::OWNER).len(), 1);
}

#[tokio::test]
async fn an_unresolvable_mailbox_zone_is_named_in_the_check() {
    let s = crate::microsoft::setup(true, "Customized Time Zone").await;
    let now = crate::microsoft::t("2026-11-30T12:00:00Z");
    let steps = check_provider(&s.client, crate::microsoft::OWNER, day(), false, now).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    assert!(
        steps[1].detail.contains("Customized Time Zone"),
        "{steps:?}"
    );
}

#[tokio::test]
async fn write_creates_a_labelled_test_event_and_deletes_it() {
    let s = crate::microsoft::setup(true, "Eastern Standard Time").await;
    let now = crate::microsoft::t("2026-11-30T12:00:00Z");
    let steps = check_provider(&s.client, crate::microsoft::OWNER, day(), true, now).await;
    assert_eq!(
        names(&steps),
        [
            "list_calendars",
            "calendar_info",
            "free_busy",
            "create_test_event",
            "delete_test_event"
        ]
    );
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    let events = s.emu.events(crate::microsoft::OWNER);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].summary, TEST_EVENT_TITLE);
    assert_eq!(events[0].status, "cancelled");
}

#[tokio::test]
async fn a_revoked_grant_fails_the_steps_that_need_it() {
    let s = crate::microsoft::setup(true, "Eastern Standard Time").await;
    s.emu.revoke(crate::microsoft::OWNER);
    let now = crate::microsoft::t("2026-11-30T12:00:00Z");
    let steps = check_provider(&s.client, crate::microsoft::OWNER, day(), true, now).await;
    assert_eq!(names(&steps), ["list_calendars", "calendar_info"]);
    assert!(steps.iter().all(|s| !s.ok), "{steps:?}");
}

/// `callbook check-provider` against a Google emulator: read-only, JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_checks_a_connection_read_only() {
    use callbook::calendar::emulator::{serve_local, AccountSpec, GoogleEmulator};
    use callbook::harness::{EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET};
    let emu = GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET);
    emu.add_account(AccountSpec {
        email: "owner@acme.example".into(),
        refresh_token: "rt-cli".into(),
        time_zone: "America/Chicago".into(),
        meet: true,
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = serve_local(emu.router(), stop.clone()).await.unwrap();
    let _stop = stop.drop_guard();
    let dir = std::env::temp_dir().join(format!("callbook-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = dir.join("provisioning.json");
    std::fs::write(
        &prov,
        r#"{"users":[{"id":"owner","name":"Owner","email":"owner@acme.example",
            "connection":{"provider":"google","refresh_token":"rt-cli"}}],"campaigns":[]}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callbook"));
        cmd.args([
            "check-provider",
            "--user",
            "owner",
            "--day",
            "2026-12-01",
            "--json",
        ])
        .arg("--provisioning")
        .arg(&prov)
        .args(["--google-api-base", &format!("http://{addr}/calendar/v3")])
        .args(["--google-token-url", &format!("http://{addr}/token")])
        .args(["--google-client-id", EMULATOR_CLIENT_ID])
        .args(["--google-client-secret", EMULATOR_CLIENT_SECRET])
        .args(extra)
        .env_remove("CALLBOOK_TOKEN_KEY")
        .env_remove("CALLBOOK_REDIS_URL")
        .env_remove("CALLBOOK_STATE_FILE");
        tokio::task::spawn_blocking(move || cmd.output())
    };
    let out = run(&[]).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["list_calendars", "calendar_info", "free_busy"]);
    assert!(emu.events("owner@acme.example").is_empty(), "read-only");
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_callbook"))
        .args(["check-provider", "--user", "nobody"])
        .arg("--provisioning")
        .arg(&prov)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no active calendar connection"));
}
