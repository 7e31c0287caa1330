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
