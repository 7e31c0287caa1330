use super::*;
use crate::clock::Clock;
use crate::domain::Email;
use crate::domain::{EndReason, FailReason};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn meta() -> CallMeta {
    CallMeta::new("CA1", Some(" demo "), Some(Provider::Google))
}

fn booked(event: &str, start: &str, end: &str) -> Status {
    Status::Booked {
        start: t(start),
        end: t(end),
        event_id: event.into(),
        join_link: Some("https://meet.example/abc".into()),
    }
}

fn record(call: &str, campaign: Option<&str>, at: DateTime<Utc>) -> BookingRecord {
    CallMeta::new(call, campaign, None)
        .record_for(
            &Status::Failed {
                reason: FailReason::NoAvailability,
            },
            at,
        )
        .unwrap()
}

#[test]
fn only_outcomes_make_records_and_each_has_its_own_id() {
    let mut m = meta();
    let now = t("2026-12-01T15:00:00Z");
    for s in [
        Status::Offered,
        Status::Declined,
        Status::EmailConfirmed {
            email: Email::parse("jane@example.com").unwrap(),
        },
        Status::Proposed {
            start: now,
            end: now,
            reschedule: false,
            options: Vec::new(),
        },
        Status::Taken {
            start: now,
            end: now,
        },
        Status::Done {
            booked: false,
            reason: EndReason::Hangup,
        },
    ] {
        assert!(m.record_for(&s, now).is_none(), "{s:?}");
    }
    let a = m
        .record_for(
            &Status::Failed {
                reason: FailReason::CalendarUnavailable,
            },
            now,
        )
        .unwrap();
    let b = m
        .record_for(
            &Status::Failed {
                reason: FailReason::CalendarUnavailable,
            },
            now,
        )
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.reason.as_deref(), Some("calendar_unavailable"));
    assert_eq!(a.campaign_id.as_deref(), Some("demo"));
}

#[test]
fn a_booking_carries_the_confirmed_email_and_a_cancel_carries_the_booked_end_and_link() {
    let mut m = meta();
    let now = t("2026-12-01T15:00:00Z");
    m.record_for(
        &Status::EmailConfirmed {
            email: Email::parse("Jane@Example.com").unwrap(),
        },
        now,
    );
    let b = m
        .record_for(
            &booked("ev1", "2026-12-02T15:00:00Z", "2026-12-02T15:30:00Z"),
            now,
        )
        .unwrap();
    assert_eq!(b.status, OutcomeStatus::Booked);
    assert_eq!(b.invitee.as_deref(), Some("jane@example.com"));
    assert_eq!(b.event_id.as_deref(), Some("ev1"));
    assert_eq!(b.provider, Some(Provider::Google));

    let moved = m
        .record_for(
            &Status::Rescheduled {
                start: t("2026-12-03T15:00:00Z"),
                end: t("2026-12-03T15:30:00Z"),
                event_id: "ev1".into(),
                previous_start: t("2026-12-02T15:00:00Z"),
            },
            now,
        )
        .unwrap();
    assert_eq!(moved.status, OutcomeStatus::Moved);
    assert_eq!(moved.previous_start, Some(t("2026-12-02T15:00:00Z")));
    assert_eq!(moved.join_link.as_deref(), Some("https://meet.example/abc"));

    let cancelled = m
        .record_for(
            &Status::Cancelled {
                event_id: "ev1".into(),
                start: t("2026-12-03T15:00:00Z"),
            },
            now,
        )
        .unwrap();
    assert_eq!(cancelled.status, OutcomeStatus::Cancelled);
    assert_eq!(cancelled.end, Some(t("2026-12-03T15:30:00Z")));
    assert_eq!(cancelled.invitee.as_deref(), Some("jane@example.com"));
}

#[test]
fn a_skip_repeated_at_every_offer_is_one_outcome() {
    let mut m = CallMeta::new("CA2", Some("nope"), None);
    let now = t("2026-12-01T15:00:00Z");
    let skip = Status::Skipped {
        reason: SkipReason::CampaignUnknown,
    };
    let first = m.record_for(&skip, now).unwrap();
    assert_eq!(first.reason.as_deref(), Some("campaign_unknown"));
    assert!(m.record_for(&skip, now).is_none());
}

#[test]
fn debug_output_never_shows_the_invitee() {
    let mut m = meta();
    let now = t("2026-12-01T15:00:00Z");
    m.record_for(
        &Status::EmailConfirmed {
            email: Email::parse("jane@example.com").unwrap(),
        },
        now,
    );
    let r = m
        .record_for(
            &booked("ev1", "2026-12-02T15:00:00Z", "2026-12-02T15:30:00Z"),
            now,
        )
        .unwrap();
    let shown = format!("{r:?}");
    assert!(!shown.contains("jane"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

#[test]
fn the_record_serializes_with_every_field_and_the_wire_status_names() {
    let r = record("CA3", None, t("2026-12-01T15:00:00Z"));
    let v = serde_json::to_value(&r).unwrap();
    for field in [
        "id",
        "call_sid",
        "campaign_id",
        "status",
        "event_id",
        "start",
        "end",
        "previous_start",
        "invitee",
        "reason",
        "join_link",
        "provider",
        "at",
    ] {
        assert!(v.get(field).is_some(), "{field} missing: {v}");
    }
    assert_eq!(v["status"], "failed");
    let back: BookingRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[tokio::test]
async fn the_memory_store_answers_newest_first_by_call_and_by_campaign() {
    let now = t("2026-12-01T15:00:00Z");
    let store = MemoryOutcomes::new(Clock::manual(now));
    let a = record("CA1", Some("c1"), now);
    let b = record("CA2", Some("c1"), now);
    let c = record("CA1", Some("c1"), now);
    let d = record("CA9", None, now);
    for r in [&a, &b, &c, &d] {
        store.put(r).await.unwrap();
    }
    let ids = |v: Vec<BookingRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.by_call("CA1", 10).await.unwrap()),
        [c.id.clone(), a.id.clone()]
    );
    assert_eq!(
        ids(store.by_campaign("c1", 10).await.unwrap()),
        [c.id.clone(), b.id.clone(), a.id.clone()]
    );
    assert_eq!(ids(store.by_campaign("c1", 1).await.unwrap()), [c.id]);
    assert_eq!(ids(store.by_call("CA9", 10).await.unwrap()), [d.id]);
    assert!(store.by_campaign("nope", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_memory_store_keeps_the_newest_per_campaign_and_forgets_old_records() {
    let now = t("2026-12-01T15:00:00Z");
    let clock = Clock::manual(now);
    let store = MemoryOutcomes::new(clock.clone());
    let old = record("CAold", Some("c2"), now);
    store.put(&old).await.unwrap();
    for i in 0..PER_CAMPAIGN {
        store
            .put(&record(&format!("CA{i}"), Some("c1"), now))
            .await
            .unwrap();
    }
    let first_c1 = store.by_call("CA0", 10).await.unwrap();
    assert_eq!(first_c1.len(), 1);
    store.put(&record("CAnew", Some("c1"), now)).await.unwrap();
    assert_eq!(
        store.by_campaign("c1", 10_000).await.unwrap().len(),
        PER_CAMPAIGN
    );
    assert!(
        store.by_call("CA0", 10).await.unwrap().is_empty(),
        "the oldest of the campaign is gone from its call too"
    );
    // Past retention the old campaign's record is not answered, and the
    // next write drops it.
    clock.advance(RETENTION + Duration::seconds(1));
    assert!(store.by_call("CAold", 10).await.unwrap().is_empty());
    store
        .put(&record("CAlater", Some("c3"), clock.now()))
        .await
        .unwrap();
    let (_, _, _, campaigns) = store.held();
    assert!(!campaigns.contains(&Some("c2".into())), "{campaigns:?}");
}

#[tokio::test]
async fn the_memory_store_holds_at_most_its_capacity() {
    let now = t("2026-12-01T15:00:00Z");
    let store = MemoryOutcomes::new(Clock::manual(now));
    for i in 0..memory::CAPACITY + 10 {
        store
            .put(&record(
                &format!("CA{i}"),
                Some(&format!("c{}", i / 100)),
                now,
            ))
            .await
            .unwrap();
    }
    let (total, kept, calls, _) = store.held();
    assert_eq!(total, memory::CAPACITY);
    assert_eq!(kept, memory::CAPACITY);
    assert_eq!(calls, memory::CAPACITY);
}

/// A store whose writes wait until released: a Redis that stopped
/// answering.
struct Stuck(tokio::sync::Semaphore);

#[async_trait]
impl OutcomeStore for Stuck {
    async fn put(&self, _: &BookingRecord) -> Result<(), OutcomeError> {
        let _permit = self.0.acquire().await;
        Ok(())
    }
    async fn by_call(&self, _: &str, _: usize) -> Result<Vec<BookingRecord>, OutcomeError> {
        Ok(Vec::new())
    }
    async fn by_campaign(&self, _: &str, _: usize) -> Result<Vec<BookingRecord>, OutcomeError> {
        Ok(Vec::new())
    }
    async fn pend(&self, _: &str, _: &BookingRecord) -> Result<(), OutcomeError> {
        Ok(())
    }
    async fn take_pending(&self, _: &str) -> Result<Option<BookingRecord>, OutcomeError> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_stuck_store_costs_the_call_nothing_and_overflow_is_counted() {
    let now = t("2026-12-01T15:00:00Z");
    let stuck = Arc::new(Stuck(tokio::sync::Semaphore::new(0)));
    let recorder = Recorder::start(stuck.clone(), None, Clock::manual(now));
    let mut m = meta();
    let failed = Status::Failed {
        reason: FailReason::CalendarUnavailable,
    };
    let extra = 25;
    let started = tokio::time::Instant::now();
    for _ in 0..RECORD_QUEUE + extra {
        recorder.observe(&mut m, &failed, now);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // One record is held by the worker, the queue holds the rest it can.
    let dropped = recorder.stats().dropped;
    assert!(
        (extra as u64 - 1..=extra as u64).contains(&dropped),
        "{dropped}"
    );
    stuck.0.add_permits(usize::MAX >> 4);
    recorder.shutdown(std::time::Duration::from_secs(5)).await;
    let stats = recorder.stats();
    assert_eq!(
        stats.recorded + stats.dropped,
        (RECORD_QUEUE + extra) as u64
    );
}

#[tokio::test]
async fn observed_outcomes_reach_the_store() {
    let now = t("2026-12-01T15:00:00Z");
    let store = Arc::new(MemoryOutcomes::new(Clock::manual(now)));
    let recorder = Recorder::start(store.clone(), None, Clock::manual(now));
    let mut m = meta();
    recorder.observe(
        &mut m,
        &booked("ev1", "2026-12-02T15:00:00Z", "2026-12-02T15:30:00Z"),
        now,
    );
    recorder.observe(
        &mut m,
        &Status::Done {
            booked: true,
            reason: EndReason::Hangup,
        },
        now,
    );
    recorder.shutdown(std::time::Duration::from_secs(5)).await;
    let got = store.by_call("CA1", 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id.as_deref(), Some("ev1"));
    assert_eq!(recorder.stats().recorded, 1);
}
