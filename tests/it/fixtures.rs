use callbook::replay::Fixture;
use std::path::{Path, PathBuf};

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_fixture_replays_green() {
    let files = fixture_files();
    assert!(files.len() >= 7, "the shipped fixtures are missing");
    let mut failed = Vec::new();
    for path in files {
        let report = Fixture::load(&path).unwrap().run().await.unwrap();
        if !report.passed() {
            failed.push(format!(
                "{}\n{}\n{}",
                path.display(),
                report.transcript,
                report.failures.join("\n")
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[tokio::test]
async fn deleting_an_expected_frame_fails_with_a_readable_diff() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/01-seed-booking.json");
    let mut fixture = Fixture::load(&path).unwrap();
    let step = fixture
        .script
        .iter_mut()
        .find(|s| s.expect.as_ref().is_some_and(|e| e.len() >= 2))
        .unwrap();
    step.expect
        .as_mut()
        .and_then(|e| e.frames_mut())
        .unwrap()
        .remove(0);
    let report = fixture.run().await.unwrap();
    assert!(!report.passed());
    let diff = &report.failures[0];
    assert!(diff.contains("expected 1 frames, got 2"), "{diff}");
    assert!(
        diff.contains("  expected:") && diff.contains("  actual:"),
        "{diff}"
    );
}

#[tokio::test]
async fn a_changed_word_fails_naming_the_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/04-decline.json");
    let mut fixture = Fixture::load(&path).unwrap();
    let frame = fixture
        .script
        .iter_mut()
        .filter_map(|s| s.expect.as_mut().and_then(|e| e.frames_mut()))
        .flatten()
        .find(|f| f["event"] == "say")
        .unwrap();
    frame["say"]["text"] = "Would you like a demo?".into();
    let report = fixture.run().await.unwrap();
    assert!(
        report.failures[0].contains("/say/text: expected \"Would you like a demo?\""),
        "{}",
        report.failures[0]
    );
}

#[tokio::test]
async fn a_step_without_expect_fails_the_replay_saying_so() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/04-decline.json");
    let mut fixture = Fixture::load(&path).unwrap();
    fixture.script[2].expect = None;
    let report = fixture.run().await.unwrap();
    assert!(!report.passed());
    assert!(
        report.failures.iter().any(|f| f.contains("step 3")
            && f.contains("no \"expect\": every call step must say what it expects")),
        "{:?}",
        report.failures
    );
}

#[tokio::test]
async fn a_broken_calendar_check_fails_the_replay() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/24-fault-mid-call-and-matchers.json");
    let mut fixture = Fixture::load(&path).unwrap();
    fixture.calendar_checks.as_mut().unwrap().events = Some(2);
    let report = fixture.run().await.unwrap();
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains("expected 2 live events, found 1")),
        "{:?}",
        report.failures
    );
}
