use super::*;
use crate::schedule::BookingRules;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2026-11-30, 14:00Z (9 AM New York).
fn now() -> DateTime<Utc> {
    utc("2026-11-30T14:00:00Z")
}

fn ctx(meeting: MeetingKind) -> BookingContext {
    BookingContext {
        rules: BookingRules::parse(
            r#"{"timezone":"America/New_York","length_minutes":30,"slot_step_minutes":30,
                "window":{"days":["mon","tue","wed","thu","fri"],"start":"09:00","end":"17:00"},
                "buffer_after_minutes":10,"min_notice_minutes":120,"look_ahead_days":14}"#,
        )
        .unwrap(),
        owner_name: "Alex".into(),
        meeting,
    }
}

fn started(phone: &str, video: Video) -> Dialog {
    started_at(phone, video, now())
}

fn started_at(phone: &str, video: Video, now: DateTime<Utc>) -> Dialog {
    let mut d = Dialog::new();
    let fx = d.step(
        Input::Start(Setup {
            recipient: Recipient {
                first_name: "Jane".into(),
                last_name: None,
                phone: crate::phone::E164::parse(phone).ok(),
            },
            booking: Ok(ctx(MeetingKind::Video)),
        }),
        now,
    );
    assert_eq!(fx, vec![Effect::LoadAvailability]);
    d.step(
        Input::AvailabilityLoaded(Ok(Availability {
            busy: vec![],
            video,
        })),
        now,
    );
    d
}

fn says(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Say(l) => Some(l.text.as_str()),
            _ => None,
        })
        .collect()
}

/// The effects that are work for the actor: no turn answer, no words.
fn work(fx: &[Effect]) -> Vec<Effect> {
    fx.iter()
        .filter(|e| !matches!(e, Effect::Turn { .. } | Effect::Say(_) | Effect::Status(_)))
        .cloned()
        .collect()
}

fn statuses(fx: &[Effect]) -> Vec<&Status> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Status(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn to_proposal(d: &mut Dialog) -> Vec<Effect> {
    to_proposal_at(d, now())
}

fn to_proposal_at(d: &mut Dialog, now: DateTime<Utc>) -> Vec<Effect> {
    d.step(Input::Offer(Offer::default()), now);
    d.step(Input::Heard("yes sure".into()), now);
    d.step(Input::Heard("j o h n at gmail dot com".into()), now);
    d.step(Input::Heard("yes".into()), now)
}

#[test]
fn whole_booking_flow_speaks_and_books() {
    let mut d = started("+12135550100", Video::Available("Google Meet".into()));
    let fx = d.step(Input::Offer(Offer::default()), now());
    assert_eq!(statuses(&fx), vec![&Status::Offered]);
    assert_eq!(
        says(&fx),
        vec!["Would you like to book a 30-minute meeting with Alex?"]
    );
    let fx = d.step(Input::Heard("yes sure".into()), now());
    assert!(says(&fx)[0].contains("email"));
    let fx = d.step(Input::Heard("j o h n at gmail dot com".into()), now());
    assert_eq!(
        says(&fx),
        vec!["Thanks. Let me read that back: J as in Juliet, O as in Oscar, H as in Hotel, N as in November, at gmail dot com. Is that right?"]
    );
    let fx = d.step(Input::Heard("yes".into()), now());
    // Notice is 2 h: the first slot is 11 AM New York, 8 AM for a 213 caller.
    assert_eq!(
        says(&fx),
        vec!["I have Monday, November 30th at 11 AM Eastern, that's 8 AM your time. Does that work for you?"]
    );
    let fx = d.step(Input::Heard("yes that works".into()), now());
    let slot = Interval::new(utc("2026-11-30T16:00:00Z"), utc("2026-11-30T16:30:00Z"));
    assert_eq!(
        work(&fx),
        vec![Effect::Book(BookRequest {
            slot,
            email: Email::parse("john@gmail.com").unwrap(),
            name: "Jane".into(),
            attempt: 1,
            recover: false,
        })]
    );
    let fx = d.step(
        Input::Booked(Outcome::Done {
            slot,
            event_id: "ev1".into(),
            join_link: Some("https://meet.google.com/x".into()),
            claim: "c1".into(),
        }),
        now(),
    );
    assert!(matches!(statuses(&fx)[0], Status::Booked { .. }));
    assert!(says(&fx)[0].contains("Google Meet link"));
}

#[test]
fn decline_ends_politely() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    let fx = d.step(Input::Heard("not right now, thanks".into()), now());
    assert_eq!(statuses(&fx), vec![&Status::Declined]);
    assert!(d.is_finished());
}

#[test]
fn wrong_read_back_recollects_the_local_part() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes".into()), now());
    d.step(Input::Heard("john at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("no, it's j o n".into()), now());
    assert!(says(&fx)[0].contains("J as in Juliet, O as in Oscar, N as in November, at gmail"));
}

#[test]
fn timezone_correction_rephrases_the_slot() {
    let mut d = started("+12125550100", Video::Unavailable);
    let fx = to_proposal(&mut d);
    assert_eq!(
        says(&fx),
        vec!["I have Monday, November 30th at 11 AM Eastern. Does that work for you?"]
    );
    let fx = d.step(Input::Heard("actually I'm in Salt Lake City".into()), now());
    assert_eq!(
        says(&fx),
        vec!["Got it. That's Monday, November 30th at 11 AM Eastern, that's 9 AM your time. Does that work for you?"]
    );
}

#[test]
fn another_day_is_offered_on_request() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    let fx = d.step(Input::Heard("no, wednesday would be better".into()), now());
    assert_eq!(
        says(&fx),
        vec!["I have Wednesday, December 2nd at 9 AM or 11 AM Eastern. Which works best?"]
    );
    // "the 11" picks the second.
    let fx = d.step(Input::Heard("the eleven o'clock please".into()), now());
    match &work(&fx)[0] {
        Effect::Book(req) => assert_eq!(req.slot.start, utc("2026-12-02T16:00:00Z")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn taken_slot_gives_alternatives() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    d.step(Input::Heard("yes".into()), now());
    let taken = Interval::new(utc("2026-11-30T16:00:00Z"), utc("2026-11-30T16:40:00Z"));
    let fx = d.step(Input::Booked(Outcome::Taken { conflict: taken }), now());
    assert!(matches!(statuses(&fx)[0], Status::Taken { .. }));
    // 10:30 and 11:30 would break the buffer around the taken claim; the
    // same day comes first, then the next day at the same time.
    assert_eq!(
        says(&fx),
        vec!["Sorry, that slot was just taken. I have Monday, November 30th at noon or 2 PM, or Tuesday, December 1st at 11 AM Eastern. Which works best?"]
    );
    // A plain yes to three options asks which.
    let fx = d.step(Input::Heard("yes".into()), now());
    assert!(work(&fx).is_empty());
    assert!(says(&fx)[0].starts_with("Great, which one works best"));
    // Each way of choosing picks the right one.
    for (said, start) in [
        ("the second one", "2026-11-30T19:00:00Z"),
        ("the later one", "2026-12-01T16:00:00Z"),
        ("Tuesday at 11", "2026-12-01T16:00:00Z"),
        ("the first", "2026-11-30T17:00:00Z"),
        ("the 2 o'clock", "2026-11-30T19:00:00Z"),
    ] {
        let mut d2 = d.clone();
        let fx = d2.step(Input::Heard(said.into()), now());
        match work(&fx).first() {
            Some(Effect::Book(req)) => assert_eq!(req.slot.start, utc(start), "{said}"),
            other => panic!("{said}: {other:?}"),
        }
    }
    // None of those: the next free slot after them, none of them again.
    let fx = d.step(Input::Heard("none of those work".into()), now());
    let s = statuses(&fx);
    match s.first() {
        Some(Status::Proposed { start, .. }) => {
            assert!(![
                utc("2026-11-30T17:00:00Z"),
                utc("2026-11-30T19:00:00Z"),
                utc("2026-12-01T16:00:00Z")
            ]
            .contains(start));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn personal_account_never_promises_video() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    d.step(Input::Heard("yes".into()), now());
    let slot = Interval::new(utc("2026-11-30T16:00:00Z"), utc("2026-11-30T16:30:00Z"));
    let fx = d.step(
        Input::Booked(Outcome::Done {
            slot,
            event_id: "e".into(),
            join_link: None,
            claim: "c1".into(),
        }),
        now(),
    );
    let line = says(&fx)[0];
    assert!(
        !line.to_lowercase().contains("video") && !line.contains("link"),
        "{line}"
    );
    assert!(line.contains("all the details"));
}

#[test]
fn missing_calendar_skips_silently() {
    let mut d = Dialog::new();
    let fx = d.step(
        Input::Start(Setup {
            recipient: Recipient {
                first_name: "Jane".into(),
                last_name: None,
                phone: None,
            },
            booking: Err(SkipReason::CalendarMissing),
        }),
        now(),
    );
    assert_eq!(
        fx,
        vec![Effect::Status(Status::Skipped {
            reason: SkipReason::CalendarMissing
        })]
    );
    let fx = d.step(Input::Offer(Offer::default()), now());
    assert!(says(&fx).is_empty());
}

#[test]
fn caller_asking_for_a_meeting_starts_the_flow() {
    let mut d = started("+12125550100", Video::Unavailable);
    let fx = d.step(
        Input::Heard("could we set up a call sometime?".into()),
        now(),
    );
    assert_eq!(statuses(&fx), vec![&Status::Offered]);
    assert!(says(&fx)[0].contains("email"));
}

#[test]
fn reschedule_moves_only_after_a_yes() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    d.step(Input::Heard("yes".into()), now());
    let slot = Interval::new(utc("2026-11-30T16:00:00Z"), utc("2026-11-30T16:30:00Z"));
    d.step(
        Input::Booked(Outcome::Done {
            slot,
            event_id: "e1".into(),
            join_link: None,
            claim: "c1".into(),
        }),
        now(),
    );
    let fx = d.step(
        Input::Heard("can we make it Wednesday instead?".into()),
        now(),
    );
    assert_eq!(
        says(&fx),
        vec!["I can move it to Wednesday, December 2nd at 9 AM Eastern. Shall I?"]
    );
    let fx = d.step(Input::Heard("yes please".into()), now());
    let to = Interval::new(utc("2026-12-02T14:00:00Z"), utc("2026-12-02T14:30:00Z"));
    assert_eq!(
        work(&fx),
        vec![Effect::Move {
            event_id: "e1".into(),
            from: slot,
            to,
            attempt: 2,
            claim: "c1".into(),
            recover: false,
        }]
    );
}

#[test]
fn two_failed_read_backs_ask_for_each_half_then_a_third_gives_up() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes".into()), now());
    d.step(Input::Heard("john at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("no".into()), now());
    assert_eq!(
        says(&fx),
        vec!["Sorry about that. Could you say the email address again, slowly?"]
    );
    d.step(Input::Heard("john at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("no that's wrong".into()), now());
    assert!(says(&fx)[0].starts_with("Let's take it in two parts. What comes before the at sign?"));
    let fx = d.step(Input::Heard("j o n".into()), now());
    assert_eq!(says(&fx), vec!["Thanks. And what comes after the at sign?"]);
    let fx = d.step(Input::Heard("g mail dot com".into()), now());
    assert!(
        says(&fx)[0].contains("J as in Juliet, O as in Oscar, N as in November, at gmail dot com")
    );
    let fx = d.step(Input::Heard("no".into()), now());
    assert_eq!(
        statuses(&fx),
        vec![&Status::Failed {
            reason: FailReason::EmailUnconfirmed
        }]
    );
    assert!(d.is_finished());
}

#[test]
fn scratch_that_starts_the_address_over() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes".into()), now());
    d.step(Input::Heard("john at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("scratch that".into()), now());
    assert_eq!(says(&fx), vec!["No problem. What's the email address?"]);
    let fx = d.step(Input::Heard("the last part is dot org".into()), now());
    assert!(
        says(&fx).is_empty() || !says(&fx)[0].contains("gmail"),
        "no address is pending: {fx:?}"
    );
}

#[test]
fn the_last_part_can_be_corrected_alone() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes".into()), now());
    d.step(Input::Heard("john at example dot com".into()), now());
    let fx = d.step(Input::Heard("no, the last part is dot org".into()), now());
    assert!(
        says(&fx)[0].ends_with("at example dot org. Is that right?"),
        "{:?}",
        says(&fx)
    );
}

#[test]
fn the_caller_can_cancel_the_meeting_booked_on_this_call() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    d.step(Input::Heard("yes".into()), now());
    let slot = Interval::new(utc("2026-11-30T16:00:00Z"), utc("2026-11-30T16:30:00Z"));
    d.step(
        Input::Booked(Outcome::Done {
            slot,
            event_id: "e1".into(),
            join_link: None,
            claim: "c1".into(),
        }),
        now(),
    );
    let fx = d.step(
        Input::Heard("actually, can you cancel that meeting?".into()),
        now(),
    );
    assert_eq!(
        says(&fx),
        vec!["Just to confirm, you'd like me to cancel your meeting on Monday, November 30th at 11 AM Eastern?"]
    );
    let fx = d.step(Input::Heard("yes please".into()), now());
    assert_eq!(
        work(&fx),
        vec![Effect::CancelMeeting {
            event_id: "e1".into(),
            claim: "c1".into(),
        }]
    );
    let fx = d.step(Input::Cancelled(Ok(())), now());
    assert_eq!(
        statuses(&fx),
        vec![&Status::Cancelled {
            event_id: "e1".into(),
            start: slot.start
        }]
    );
    assert!(d.is_finished());
}

#[test]
fn repeat_and_hold_on_keep_the_question_pending() {
    let mut d = started("+12125550100", Video::Unavailable);
    let fx = to_proposal(&mut d);
    let question = says(&fx)[0].to_string();
    let fx = d.step(Input::Heard("sorry, can you say that again?".into()), now());
    assert_eq!(says(&fx), vec![question.as_str()]);
    let fx = d.step(Input::Heard("hold on a second".into()), now());
    assert_eq!(says(&fx), vec!["Sure, take your time."]);
    // The proposal is still pending: a yes books it.
    let fx = d.step(Input::Heard("okay yes".into()), now());
    assert!(matches!(work(&fx)[0], Effect::Book(_)));
}

#[test]
fn an_unprompted_proposal_falls_in_the_callers_waking_day() {
    // Sunday: the first free slot is Monday 9 AM New York, which is 6 AM
    // in San Francisco and 4 AM in Honolulu.
    let sunday = utc("2026-11-29T14:00:00Z");
    let first_proposal = |phone: &str| {
        let mut d = started_at(phone, Video::Unavailable, sunday);
        let fx = to_proposal_at(&mut d, sunday);
        statuses(&fx)
            .into_iter()
            .find_map(|s| match s {
                Status::Proposed { start, .. } => Some(*start),
                _ => None,
            })
            .expect("a proposal")
    };
    // New York: 9 AM is fine.
    assert_eq!(first_proposal("+12125550123"), utc("2026-11-30T14:00:00Z"));
    // San Francisco: 11 AM New York is 8 AM there.
    assert_eq!(first_proposal("+14155550123"), utc("2026-11-30T16:00:00Z"));
    // Honolulu: 1 PM New York is 8 AM there.
    assert_eq!(first_proposal("+18085550123"), utc("2026-11-30T18:00:00Z"));
}

#[test]
fn a_zone_guessed_without_confidence_is_confirmed_once() {
    // 310 spans zones in the numbering plan: Pacific is a guess.
    let mut d = started("+13105550100", Video::Unavailable);
    let fx = to_proposal(&mut d);
    assert_eq!(says(&fx), vec!["And are you on Pacific time?"]);
    let fx = d.step(Input::Heard("yes I am".into()), now());
    assert!(
        says(&fx)[0].contains("that's 8 AM your time"),
        "{:?}",
        says(&fx)
    );

    // "No" asks which; the answer is used.
    let mut d = started("+13105550100", Video::Unavailable);
    to_proposal(&mut d);
    let fx = d.step(Input::Heard("no".into()), now());
    assert_eq!(says(&fx), vec!["Which time zone are you in, then?"]);
    let fx = d.step(Input::Heard("mountain".into()), now());
    assert!(
        says(&fx)[0].contains("that's 9 AM your time"),
        "{:?}",
        says(&fx)
    );

    // A confident guess adds no turn.
    let mut d = started("+12125550100", Video::Unavailable);
    let fx = to_proposal(&mut d);
    assert!(says(&fx)[0].starts_with("I have"));
}

#[test]
fn a_window_over_several_days_gets_choices_inside_it() {
    let mut d = started("+12125550100", Video::Unavailable);
    to_proposal(&mut d);
    let fx = d.step(
        Input::Heard("no, sometime next week in the afternoon".into()),
        now(),
    );
    let line = says(&fx)[0].to_string();
    assert!(line.ends_with("Which works best?"), "{line}");
    match statuses(&fx).first() {
        Some(Status::Proposed { options, .. }) => {
            assert!(options.len() >= 2, "{options:?}");
            for o in options {
                let local = o.start.with_timezone(&chrono_tz::America::New_York);
                assert!(
                    local.date_naive() >= chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
                );
                assert!(local.time() >= chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap());
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_span_of_days_ends_where_the_caller_said() {
    // Every afternoon of next week (Dec 7–11, New York) is busy: the week
    // after is not "next week", so it is not offered as if it matched.
    let mut d = Dialog::new();
    d.step(
        Input::Start(Setup {
            recipient: Recipient {
                first_name: "Jane".into(),
                last_name: None,
                phone: crate::phone::E164::parse("+12125550100").ok(),
            },
            booking: Ok(ctx(MeetingKind::Video)),
        }),
        now(),
    );
    let busy = (7..=11)
        .map(|day| {
            Interval::new(
                utc(&format!("2026-12-{day:02}T17:00:00Z")),
                utc(&format!("2026-12-{day:02}T22:00:00Z")),
            )
        })
        .collect();
    d.step(
        Input::AvailabilityLoaded(Ok(Availability {
            busy,
            video: Video::Unavailable,
        })),
        now(),
    );
    to_proposal(&mut d);
    let fx = d.step(
        Input::Heard("no, sometime next week in the afternoon".into()),
        now(),
    );
    let line = says(&fx)[0].to_string();
    assert!(
        line.starts_with("I don't have anything open then."),
        "{line}"
    );
    let week_after = chrono::NaiveDate::from_ymd_opt(2026, 12, 14).unwrap();
    match statuses(&fx).first() {
        Some(Status::Proposed { start, options, .. }) => {
            for s in std::iter::once(start).chain(options.iter().map(|o| &o.start)) {
                let local = s.with_timezone(&chrono_tz::America::New_York);
                assert!(local.date_naive() < week_after, "{line}");
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_time_asked_for_in_answer_to_the_offer_is_a_yes_with_that_time() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    let fx = d.step(Input::Heard("how about thursday afternoon".into()), now());
    assert!(says(&fx)[0].contains("email"), "{:?}", says(&fx));
    d.step(Input::Heard("j o h n at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("yes".into()), now());
    let line = says(&fx)[0];
    assert!(line.contains("Thursday"), "{line}");
    assert!(line.contains("PM"), "{line}");
}

#[test]
fn a_read_back_fixed_by_naming_the_letter_is_read_back_again_not_confirmed() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes sure".into()), now());
    d.step(Input::Heard("c h r i s at gmail dot com".into()), now());
    let fx = d.step(Input::Heard("yeah just change the c to a k".into()), now());
    assert!(
        !statuses(&fx)
            .iter()
            .any(|s| matches!(s, Status::EmailConfirmed { .. })),
        "{fx:?}"
    );
    let line = says(&fx)[0];
    assert!(
        line.starts_with("Thanks. Let me read that back: K as in Kilo"),
        "{line}"
    );
    let fx = d.step(
        Input::Heard("that's right apart from the domain".into()),
        now(),
    );
    assert!(
        !statuses(&fx)
            .iter()
            .any(|s| matches!(s, Status::EmailConfirmed { .. })),
        "{fx:?}"
    );
}

#[test]
fn a_yes_that_names_another_time_is_a_counter_proposal() {
    let mut d = started("+12125550100", Video::Unavailable);
    let fx = to_proposal(&mut d);
    let first = says(&fx)[0].to_string();
    assert!(first.contains("Monday, November 30th"), "{first}");
    let fx = d.step(Input::Heard("yeah thursday at 10 works".into()), now());
    assert!(
        !work(&fx).iter().any(|e| matches!(e, Effect::Book(_))),
        "booked the slot on offer: {fx:?}"
    );
    let line = says(&fx)[0];
    assert!(line.contains("Thursday, December 3rd at 10 AM"), "{line}");
    // A yes naming the slot on offer books it.
    let fx = d.step(Input::Heard("yes thursday at 10 is good".into()), now());
    assert!(
        work(&fx).iter().any(|e| matches!(e, Effect::Book(_))),
        "{fx:?}"
    );
}

#[test]
fn a_yes_that_carries_another_address_is_read_back_not_confirmed() {
    let mut d = started("+12125550100", Video::Unavailable);
    d.step(Input::Offer(Offer::default()), now());
    d.step(Input::Heard("yes sure".into()), now());
    d.step(Input::Heard("john at gmail dot com".into()), now());
    let fx = d.step(
        Input::Heard("yeah it's j o n at gmail dot com".into()),
        now(),
    );
    assert!(
        !statuses(&fx)
            .iter()
            .any(|s| matches!(s, Status::EmailConfirmed { .. })),
        "{fx:?}"
    );
    assert!(
        says(&fx)[0].contains("J as in Juliet, O as in Oscar, N as in November, at"),
        "{:?}",
        says(&fx)
    );
}
