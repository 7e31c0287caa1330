//! The pipeline contract (protocol 1.2): turns, playback, offer variants,
//! resume, tolerant starts and clean endings, over real sockets.

use crate::helpers::{of_kind, spawn_app, start_call, to_proposal, tuesday_morning};
use callbook::call::resume::{CallStates, RedisCallStates};
use callbook::clock::Clock;
use callbook::harness::{frames, CallClient, Emulators, Harness, RedisServer};
use callbook::ledger::{Ledger, RedisLedger};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use serde_json::{json, Value};
use std::sync::Arc;

const OWNER: &str = "alex@callbook.example";

fn said(frames: &[Value]) -> Vec<String> {
    of_kind(frames, "say")
        .iter()
        .map(|f| f["say"]["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn last_say_id(frames: &[Value]) -> String {
    of_kind(frames, "say")
        .last()
        .map(|f| f["say"]["id"].as_str().unwrap().to_string())
        .expect("a say")
}

fn transcript(id: &str, text: &str) -> Value {
    json!({"event": "transcript", "transcript": {"id": id, "text": text, "final": true}})
}

async fn tell(c: &mut CallClient, text: &str) -> Vec<Value> {
    c.send(&frames::transcript(text)).await.unwrap();
    c.settle().await.unwrap()
}

fn booked_events(app: &Harness) -> usize {
    app.google
        .events(OWNER)
        .iter()
        .filter(|e| e.booking_id.is_some() && e.status == "confirmed")
        .count()
}

#[tokio::test]
async fn every_final_transcript_gets_one_turn_answer_before_any_say() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000turns001").await;

    // Small talk is the agent's.
    c.send(&transcript("t1", "what's the weather like over there?"))
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(
        got,
        vec![
            json!({"event": "turn", "streamSid": "MZ000000000000000000000000turns001",
                    "turn": {"id": "t1", "owner": "agent", "floor": false}})
        ]
    );

    // An interim transcript never claims a turn.
    c.send(&json!({"event": "transcript", "transcript": {"id": "t2", "text": "can we set up a", "final": false}}))
        .await
        .unwrap();
    assert!(c.settle().await.unwrap().is_empty());

    // Asking for a meeting is callbook's turn, answered before its say.
    c.send(&transcript("t3", "can we set up a meeting?"))
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["event"], "turn");
    assert_eq!(
        got[0]["turn"],
        json!({"id": "t3", "owner": "callbook", "floor": true})
    );
    assert_eq!(got[1]["booking"]["status"], "offered");
    assert_eq!(got[2]["event"], "say");

    // Every answer while callbook holds the floor is callbook's, also a
    // number sent as the id.
    for (i, text) in ["jane at example dot com", "yes"].iter().enumerate() {
        c.send(&json!({"event": "transcript", "transcript": {"id": 10 + i, "text": text, "final": true}}))
            .await
            .unwrap();
        let got = c.settle().await.unwrap();
        assert_eq!(
            got[0]["turn"],
            json!({"id": (10 + i).to_string(), "owner": "callbook", "floor": true})
        );
        assert_eq!(of_kind(&got, "turn").len(), 1);
    }
    // The yes that books: callbook's turn; the floor ends with `booked`.
    let got = tell(&mut c, "yes that works").await;
    assert_eq!(
        got[0]["turn"],
        json!({"id": null, "owner": "callbook", "floor": true})
    );
    assert!(got.iter().any(|f| f["booking"]["status"] == "booked"));

    // After the booking, small talk is the agent's again.
    let got = tell(&mut c, "great, thanks a lot").await;
    assert_eq!(
        got,
        vec![
            json!({"event": "turn", "streamSid": "MZ000000000000000000000000turns001",
                                 "turn": {"id": null, "owner": "agent", "floor": false}})
        ]
    );
    // Moving the meeting is callbook's turn again.
    let got = tell(&mut c, "actually can we move it to thursday?").await;
    assert_eq!(got[0]["turn"]["owner"], "callbook");
    assert_eq!(got[0]["turn"]["floor"], true);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_agent_takes_the_floor_back_with_cancel() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000turns002").await;
    c.send(&frames::offer()).await.unwrap();
    c.settle().await.unwrap();
    c.send(&json!({"event": "booking", "booking": {"action": "cancel"}}))
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(
        got[0]["booking"],
        json!({"status": "done", "booked": false, "reason": "handed_back"})
    );
    let got = tell(&mut c, "yes").await;
    assert_eq!(got[0]["turn"]["owner"], "agent");
    assert_eq!(got.len(), 1);
    app.stop().await.unwrap();
}

/// Drives a call with playback reports to the proposal; returns the
/// proposal's say id.
async fn proposal_with_playback(c: &mut CallClient) -> String {
    c.send(&json!({"event": "capabilities", "capabilities": {"playback": "marks"}}))
        .await
        .unwrap();
    c.send(&frames::offer()).await.unwrap();
    let got = c.settle().await.unwrap();
    mark(c, &last_say_id(&got)).await;
    let got = tell(c, "yes").await;
    mark(c, &last_say_id(&got)).await;
    let got = tell(c, "jane at example dot com").await;
    mark(c, &last_say_id(&got)).await;
    let got = tell(c, "yes").await;
    assert!(got.iter().any(|f| f["booking"]["status"] == "proposed"));
    last_say_id(&got)
}

async fn mark(c: &mut CallClient, name: &str) {
    c.send(&json!({"event": "mark", "streamSid": "MZ", "mark": {"name": name}}))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_yes_over_a_proposal_cut_by_barge_in_does_not_book() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000bargein1").await;
    let proposal = proposal_with_playback(&mut c).await;
    // The caller talks over the proposal; the pipeline cuts the audio. As
    // Twilio does after a clear, the cut line's mark still comes back.
    c.send(&json!({"event": "clear", "streamSid": "MZ"}))
        .await
        .unwrap();
    mark(&mut c, &proposal).await;
    let got = tell(&mut c, "yes").await;
    assert_eq!(got[0]["turn"]["owner"], "callbook");
    assert!(!got.iter().any(|f| f["event"] == "booking"), "{got:?}");
    let again = said(&got);
    assert_eq!(again.len(), 1);
    assert!(
        again[0].starts_with("Sorry, I may have talked over you. That's Tuesday"),
        "{again:?}"
    );
    assert_eq!(booked_events(&app), 0);
    // Heard in full this time: the yes books.
    mark(&mut c, &last_say_id(&got)).await;
    let got = tell(&mut c, "yes").await;
    assert!(
        got.iter().any(|f| f["booking"]["status"] == "booked"),
        "{got:?}"
    );
    assert_eq!(booked_events(&app), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_yes_before_the_read_back_finished_playing_is_asked_again() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000bargein2").await;
    c.send(&json!({"event": "capabilities", "capabilities": {"playback": "marks"}}))
        .await
        .unwrap();
    c.send(&json!({"event": "booking", "booking": {"action": "offer", "agreed": true}}))
        .await
        .unwrap();
    c.settle().await.unwrap();
    let got = tell(&mut c, "jane at example dot com").await;
    let read_back = last_say_id(&got);
    // No mark yet: the read-back is still playing.
    let got = tell(&mut c, "yes").await;
    assert!(!got
        .iter()
        .any(|f| f["booking"]["status"] == "email_confirmed"));
    assert!(said(&got)[0].contains("Let me read it again"));
    // Still no mark: asked again, not confirmed.
    let got = tell(&mut c, "yes it is").await;
    assert!(!got
        .iter()
        .any(|f| f["booking"]["status"] == "email_confirmed"));
    // The first read-back's mark arrives late: the caller did hear the
    // address in full, so the next yes confirms it.
    mark(&mut c, &read_back).await;
    let got = tell(&mut c, "yes").await;
    assert!(
        got.iter()
            .any(|f| f["booking"]["status"] == "email_confirmed"),
        "{got:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_clear_that_says_the_whole_line_was_spoken_counts_it_heard() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000bargein3").await;
    let proposal = proposal_with_playback(&mut c).await;
    c.send(&json!({"event": "clear", "clear": {"say": proposal, "spoken_chars": 10_000}}))
        .await
        .unwrap();
    let got = tell(&mut c, "yes").await;
    assert!(
        got.iter().any(|f| f["booking"]["status"] == "booked"),
        "{got:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_playback_reports_every_line_counts_as_heard() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000noplay01").await;
    to_proposal(&mut c).await;
    c.send(&json!({"event": "clear"})).await.unwrap();
    let got = tell(&mut c, "yes").await;
    assert!(got.iter().any(|f| f["booking"]["status"] == "booked"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_offer_can_carry_the_yes_the_email_and_the_time_already_heard() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000offer001").await;
    c.send(&json!({"event": "booking", "booking": {
        "action": "offer", "agreed": true, "email": "jane.doe@gmail.com", "when": "tomorrow afternoon"}}))
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["booking"]["status"], "offered");
    let lines = said(&got);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("Thanks. Let me read that back: J as in Juliet"),
        "{lines:?}"
    );
    let got = tell(&mut c, "yes").await;
    let proposed = got
        .iter()
        .find(|f| f["booking"]["status"] == "proposed")
        .expect("a proposal");
    // Tomorrow (Wednesday) afternoon, New York.
    let start: chrono::DateTime<chrono::Utc> = proposed["booking"]["start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let local = start.with_timezone(&chrono_tz::America::New_York);
    assert_eq!(local.date_naive().to_string(), "2026-12-02");
    assert!(local.time() >= chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap());

    // Agreed without an email: straight to the email question.
    let mut c = start_call(&app, "CA000000000000000000000000offer002").await;
    c.send(&json!({"event": "booking", "booking": {"action": "offer", "agreed": true}}))
        .await
        .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(
        said(&got),
        vec!["Great. What's the best email address to send the invite to?"]
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn custom_parameters_may_be_any_scalar_and_a_national_number_is_read() {
    let app = spawn_app().await;
    let mut c = app.connect().await.unwrap();
    let sid = "CA000000000000000000000000loose001";
    c.send(&frames::start(
        sid,
        json!({"campaign_id": "demo", "recipient_phone": "(415) 555-0123", "recipient_first_name": "Jane",
               "recipient_last_name": null, "attempt": 3, "vip": true}),
    ))
    .await
    .unwrap();
    assert!(c.settle().await.unwrap().is_empty());
    let got = to_proposal(&mut c).await;
    let lines = said(&got);
    // 415 is San Francisco: the proposal is said in both zones.
    assert!(lines.last().unwrap().contains("your time"), "{lines:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_usable_number_the_caller_is_asked_their_zone() {
    let app = spawn_app().await;
    let mut c = app.connect().await.unwrap();
    c.send(&frames::start(
        "CA000000000000000000000000nophone1",
        json!({"campaign_id": "demo", "recipient_phone": "not a number", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    c.settle().await.unwrap();
    let got = to_proposal(&mut c).await;
    assert_eq!(
        said(&got).last().unwrap(),
        "And what time zone are you in, so I can offer times that suit you?"
    );
    let got = tell(&mut c, "I'm in Denver").await;
    let lines = said(&got);
    assert!(lines[0].contains("your time"), "{lines:?}");
    assert!(got.iter().any(|f| f["booking"]["status"] == "proposed"));
    app.stop().await.unwrap();
}

async fn resume_on(app: &Harness, sid: &str) -> (CallClient, Vec<Value>) {
    let mut c = app.connect().await.unwrap();
    c.send(&frames::start(
        sid,
        json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    let got = c.settle().await.unwrap();
    (c, got)
}

#[tokio::test]
async fn a_dropped_call_resumes_where_it_stood_and_never_books_twice() {
    let app = spawn_app().await;
    let sid = "CA000000000000000000000000resume01";
    let mut c = start_call(&app, sid).await;
    let before = to_proposal(&mut c).await;
    let proposal = last_say_id(&before);
    c.cut();

    let (mut c, got) = resume_on(&app, sid).await;
    let resumed = of_kind(&got, "resumed");
    assert_eq!(
        resumed[0]["resumed"],
        json!({"callSid": sid, "floor": true, "last_say": proposal})
    );
    // The open question is asked again; say ids go on.
    let again = of_kind(&got, "say");
    assert!(again[0]["say"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Sorry, we got cut off. That's Tuesday"));
    assert_ne!(again[0]["say"]["id"], proposal.as_str());
    // A yes, and the socket drops before the answer is read.
    c.send(&frames::transcript("yes")).await.unwrap();
    c.cut();

    // Back again while (or after) the booking runs: it reports the meeting.
    let (mut c, got) = resume_on(&app, sid).await;
    assert_eq!(of_kind(&got, "resumed")[0]["resumed"]["floor"], false);
    assert_eq!(booked_events(&app), 1);
    // Asking again books nothing more.
    let got = tell(&mut c, "can we set up a meeting?").await;
    assert!(
        !got.iter().any(|f| f["booking"]["status"] == "offered"),
        "{got:?}"
    );
    assert_eq!(booked_events(&app), 1);
    // A hang-up, then the same call SID again: the meeting is remembered.
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    let (mut c, _) = resume_on(&app, sid).await;
    tell(&mut c, "can we set up a meeting?").await;
    tell(&mut c, "yes").await;
    assert_eq!(booked_events(&app), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_resume_may_land_on_another_instance_through_redis() {
    let server = RedisServer::start().await.unwrap();
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let ledger: Arc<dyn Ledger> = Arc::new(
        RedisLedger::connect(&server.url, "test:ledger:")
            .await
            .unwrap(),
    );
    let store = Arc::new(prov.into_store());
    let start = |states: Arc<dyn CallStates>| {
        Harness::start_shared(
            Clock::manual(tuesday_morning()),
            emulators.clone(),
            ledger.clone(),
            store.clone(),
            states,
        )
    };
    let states_a: Arc<dyn CallStates> = Arc::new(
        RedisCallStates::connect(&server.url, "test:call:")
            .await
            .unwrap(),
    );
    let states_b: Arc<dyn CallStates> = Arc::new(
        RedisCallStates::connect(&server.url, "test:call:")
            .await
            .unwrap(),
    );
    let a = start(states_a).await.unwrap();
    let b = start(states_b).await.unwrap();
    let sid = "CA000000000000000000000000resume02";
    let mut c = start_call(&a, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    c.cut();
    let (mut c, got) = resume_on(&b, sid).await;
    assert_eq!(of_kind(&got, "resumed").len(), 1);
    tell(&mut c, "can we set up a meeting?").await;
    tell(&mut c, "yes").await;
    let events = emulators
        .google
        .events(OWNER)
        .into_iter()
        .filter(|e| e.booking_id.is_some())
        .count();
    assert_eq!(events, 1);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_frames_get_the_error_frame_and_the_call_goes_on() {
    let app = spawn_app().await;
    let mut c = start_call(&app, "CA000000000000000000000000oversiz1").await;
    let big = format!(
        r#"{{"event":"transcript","transcript":{{"text":"{}","final":true}}}}"#,
        "a".repeat(100 * 1024)
    );
    c.send_raw(&big).await.unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(got[0]["error"]["code"], "frame_too_large");
    // The call goes on.
    c.send(&frames::offer()).await.unwrap();
    assert_eq!(c.settle().await.unwrap()[0]["booking"]["status"], "offered");
    // Past the transport's limit the socket closes, saying why.
    c.send_raw(&"x".repeat(2 * 1024 * 1024)).await.unwrap();
    let (frames, close) = c.drain_close().await.unwrap();
    assert_eq!(frames.last().unwrap()["error"]["code"], "frame_too_large");
    assert_eq!(close, Some((1009, "frame too large".to_string())));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_stop_closes_with_1000() {
    let app = spawn_app().await;
    let sid = "CA000000000000000000000000closes01";
    let mut c = start_call(&app, sid).await;
    c.send(&frames::stop(sid)).await.unwrap();
    let (_, close) = c.drain_close().await.unwrap();
    assert_eq!(close, Some((1000, "call ended".to_string())));
    app.stop().await.unwrap();
}

// Multi-threaded, as in production: the call and its socket see the end
// at the same moment on different threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_live_call_with_done_and_1001_and_readiness_says_draining() {
    let app = spawn_app().await;
    let addr = app.addr;
    // Several silent calls and one mid-booking: each must hear how it
    // ended, whichever of its socket and its call notices the end first.
    let mut calls = Vec::new();
    for i in 0..12 {
        calls.push(start_call(&app, &format!("CA0000000000000000000000drain{i:04}")).await);
    }
    to_proposal(&mut calls[0]).await;
    let ready = crate::helpers::http()
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let stopping = tokio::spawn(app.stop());
    // While draining: not ready, new calls refused, health says so.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let ready = crate::helpers::http()
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health: Value = crate::helpers::http()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "draining");
    for c in &mut calls {
        let (frames, close) = c.drain_close().await.unwrap();
        let last = frames.last().expect("a done frame");
        assert_eq!(last["booking"]["status"], "done");
        assert_eq!(last["booking"]["reason"], "shutdown");
        assert_eq!(close, Some((1001, "server shutting down".to_string())));
    }
    stopping.await.unwrap().unwrap();
}

/// A real `callbook serve` on a free port, as an operator runs it.
struct Served {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Served {
    async fn start(extra: &[&str]) -> Served {
        Self::start_logging(extra, std::process::Stdio::null()).await
    }

    async fn start_logging(extra: &[&str], log: std::process::Stdio) -> Served {
        let listen = crate::helpers::free_listen_addr();
        let emulator = !extra.contains(&"--no-emulator");
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--no-emulator")
            .collect();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_callbook"))
            .args(["serve", "--listen", &listen])
            .args(emulator.then_some("--emulator"))
            .args(["--auth-token", "pipeline-token-0123456789"])
            .args(extra)
            .env("RUST_LOG", "callbook=debug")
            .stdout(log)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            addr: listen.parse().unwrap(),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(served.addr).await.is_ok() {
                return served;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("callbook serve did not start");
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_every_live_call_done_and_1001() {
    let mut served = Served::start(&["--drain-seconds", "0"]).await;
    let mut calls = Vec::new();
    for i in 0..16 {
        let mut c = CallClient::connect(served.addr, Some("pipeline-token-0123456789"))
            .await
            .unwrap();
        c.send(&frames::start(
            &format!("CA0000000000000000000000sigterm{i:03}"),
            json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
        ))
        .await
        .unwrap();
        if i % 2 == 0 {
            c.send(&frames::offer()).await.unwrap();
        }
        c.settle().await.unwrap();
        calls.push(c);
    }
    served.signal("-TERM");
    for c in &mut calls {
        let (frames, close) = c.drain_close().await.unwrap();
        let last = frames.last().expect("a done frame");
        assert_eq!(last["booking"]["status"], "done", "{frames:?}");
        assert_eq!(last["booking"]["reason"], "shutdown");
        assert_eq!(close, Some((1001, "server shutting down".to_string())));
    }
    let status = served.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turn_load_answers_every_transcript_once() {
    let report = callbook::load::turns(4, std::time::Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(report["unanswered"], 0, "{report}");
    assert_eq!(report["turns"], report["transcripts"]);
    assert!(report["callbook_turns"].as_u64().unwrap() >= 4, "{report}");
    assert!(report["media_frames"].as_u64().unwrap() > 100, "{report}");
}

#[tokio::test]
async fn every_log_line_of_a_call_carries_its_call_sid() {
    let path = std::env::temp_dir().join(format!("callbook-log-{}.jsonl", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    let served = Served::start_logging(&[], file.into()).await;
    let sid = "CA00000000000000000000000logsid01";
    let mut c = CallClient::connect(served.addr, Some("pipeline-token-0123456789"))
        .await
        .unwrap();
    c.send(&frames::start(
        sid,
        json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    c.settle().await.unwrap();
    to_proposal(&mut c).await;
    tell(&mut c, "yes").await;
    c.send(&frames::stop(sid)).await.unwrap();
    c.drain().await.unwrap();
    served.signal("-TERM");
    drop(served);
    let log = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let call_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            let target = l["target"].as_str().unwrap_or_default();
            target.starts_with("callbook::call") || target.starts_with("callbook::server::ws")
        })
        .collect();
    assert!(call_lines.len() >= 3, "{log}");
    for line in &call_lines {
        assert_eq!(line["span"]["call_sid"], sid, "{line}");
    }
    // Nothing of the caller in clear.
    assert!(
        !log.contains("example.com") && !log.contains("4155550123"),
        "{log}"
    );
}

/// An instance on a runtime of its own, so the test can end it the way
/// `kill -9` would: every task stops where it is, nothing is drained or
/// saved.
struct Doomed {
    addr: std::net::SocketAddr,
    token: String,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Doomed {
    fn start(
        redis: String,
        emulators: Emulators,
        store: Arc<dyn callbook::store::Store>,
    ) -> Doomed {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, kill_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let app = rt.block_on(async {
                let ledger: Arc<dyn Ledger> =
                    Arc::new(RedisLedger::connect(&redis, "test:ledger:").await.unwrap());
                let states: Arc<dyn CallStates> = Arc::new(
                    RedisCallStates::connect(&redis, "test:call:")
                        .await
                        .unwrap(),
                );
                Harness::start_shared(
                    Clock::manual(tuesday_morning()),
                    emulators,
                    ledger,
                    store,
                    states,
                )
                .await
                .unwrap()
            });
            addr_tx.send((app.addr, app.token.clone())).unwrap();
            let _ = kill_rx.recv();
            rt.shutdown_background();
            // Like a killed process: nothing of it runs its shutdown.
            std::mem::forget(app);
        });
        let (addr, token) = addr_rx.recv().unwrap();
        Doomed {
            addr,
            token,
            kill,
            thread,
        }
    }

    fn kill(self) {
        let _ = self.kill.send(());
        self.thread.join().unwrap();
    }
}

/// The instance a call resumes on after a [`Doomed`] one died: the same
/// Redis ledger and call states, the same emulators and store.
async fn survivor(
    server: &RedisServer,
    emulators: &Emulators,
    store: &Arc<dyn callbook::store::Store>,
) -> Harness {
    Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators.clone(),
        Arc::new(
            RedisLedger::connect(&server.url, "test:ledger:")
                .await
                .unwrap(),
        ),
        store.clone(),
        callbook::harness::Options {
            states: Some(Arc::new(
                RedisCallStates::connect(&server.url, "test:call:")
                    .await
                    .unwrap(),
            )),
            settle_wait: Some(std::time::Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_booking_leaves_one_booking_that_the_resume_finds_or_makes() {
    use callbook::calendar::emulator::{Endpoint, Fault};
    // The create either landed before the instance died (its answer lost)
    // or never did.
    let faults = [
        ("landed", Fault::CommitThenDrop),
        (
            "never made",
            Fault::Latency(std::time::Duration::from_secs(5)),
        ),
    ];
    for (i, (what, fault)) in faults.into_iter().enumerate() {
        let server = RedisServer::start().await.unwrap();
        let prov = Provisioning::parse(DEFAULT).unwrap();
        let emulators = Emulators::new();
        emulators.seed(&prov);
        let store: Arc<dyn callbook::store::Store> = Arc::new(prov.into_store());
        let a = Doomed::start(server.url.clone(), emulators.clone(), store.clone());
        let b = survivor(&server, &emulators, &store).await;
        let sid = format!("CA00000000000000000000000killed{i:02}");
        let params = json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
        let mut c = CallClient::connect(a.addr, Some(&a.token)).await.unwrap();
        c.send(&frames::start(&sid, params.clone())).await.unwrap();
        c.settle().await.unwrap();
        to_proposal(&mut c).await;
        emulators.google.inject(OWNER, Endpoint::Insert, fault, 1);
        c.send(&frames::transcript("yes")).await.unwrap();
        // The create is under way on the doomed instance when it dies.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        a.kill();
        c.cut();

        let mut c = b.connect().await.unwrap();
        c.send(&frames::start(&sid, params)).await.unwrap();
        let got = c.settle().await.unwrap();
        assert_eq!(of_kind(&got, "resumed").len(), 1, "{what}: {got:?}");
        let booked: Vec<_> = got
            .iter()
            .filter(|f| f["booking"]["status"] == "booked")
            .collect();
        assert_eq!(booked.len(), 1, "{what}: {got:?}");
        // Asking again books nothing more.
        tell(&mut c, "can we set up a meeting?").await;
        tell(&mut c, "yes").await;
        let events: Vec<_> = emulators
            .google
            .events(OWNER)
            .into_iter()
            .filter(|e| e.booking_id.is_some() && e.status == "confirmed")
            .collect();
        assert_eq!(events.len(), 1, "{what}: {events:?}");
        assert_eq!(
            booked[0]["booking"]["event_id"],
            json!(events[0].id),
            "{what}"
        );
        // The ledger covers the booking: the slot is not offered again.
        let claims = b
            .ledger
            .claims(
                "google:alex@callbook.example",
                callbook::schedule::Interval::new(events[0].start, events[0].end),
                b.clock.now(),
            )
            .await
            .unwrap();
        assert!(claims.iter().any(|c| c.committed), "{what}: {claims:?}");
        b.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_offer_is_said_while_the_calendar_is_still_loading() {
    use callbook::calendar::emulator::{Endpoint, Fault};
    let app = spawn_app().await;
    // Free/busy answers only after the client has long given up.
    app.google.inject(
        OWNER,
        Endpoint::FreeBusy,
        Fault::Latency(std::time::Duration::from_secs(60)),
        u32::MAX,
    );
    let mut c = app.connect().await.unwrap();
    c.send(&frames::start(
        "CA000000000000000000000000loading1",
        json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    c.send(&frames::offer()).await.unwrap();
    // The question needs no calendar: it comes while the load is pending
    // (the client's 15 s read limit is far below the load's minute).
    let mut seen = Vec::new();
    let say = loop {
        let f = c.recv().await.unwrap().expect("the socket stayed open");
        if f["event"] == "say" {
            break f;
        }
        seen.push(f);
    };
    assert_eq!(
        say["say"]["text"],
        "Would you like to book a 30-minute meeting with Alex Morgan?"
    );
    assert!(seen.iter().any(|f| f["booking"]["status"] == "offered"));
    // The email is taken and confirmed meanwhile; only the proposal waits,
    // and the caller hears why.
    for text in ["yes", "jane at example dot com", "yes"] {
        c.send(&frames::transcript(text)).await.unwrap();
    }
    let waiting = loop {
        let f = c.recv().await.unwrap().expect("the socket stayed open");
        if f["event"] == "say" && f["say"]["text"].as_str().unwrap().contains("calendar") {
            break f;
        }
    };
    assert_eq!(
        waiting["say"]["text"],
        "Great. One moment while I check the calendar."
    );
    c.cut();
    app.stop().await.unwrap();
}

/// A connection stored before its calendar's canonical id was known is
/// named by asking the provider. The caller's first lines do not wait for
/// that answer: here the provider holds the question for a minute, and the
/// client waits for each request longer still.
#[tokio::test]
async fn the_offer_is_said_while_the_provider_is_still_naming_the_calendar() {
    use callbook::calendar::emulator::{Endpoint, Fault};
    use callbook::store::Store;
    use std::time::Duration;
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    emulators.google.inject(
        OWNER,
        Endpoint::CalendarList,
        Fault::Latency(Duration::from_secs(60)),
        u32::MAX,
    );
    let store = Arc::new(prov.into_store());
    let before = store.connection("alex").await.unwrap().unwrap();
    assert_eq!(
        before.canonical_id(),
        None,
        "the demo's connection names only its alias"
    );
    let app = Harness::start_with_options(
        Clock::manual(tuesday_morning()),
        emulators,
        Arc::new(callbook::ledger::MemoryLedger::new()),
        store,
        callbook::harness::Options {
            provider_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut c = app.connect().await.unwrap();
    c.send(&frames::start(
        "CA000000000000000000000000naming01",
        json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    c.send(&frames::offer()).await.unwrap();
    // The client gives up on a frame after 15 s; the provider answers
    // after 60.
    let say = loop {
        let f = c.recv().await.unwrap().expect("the socket stayed open");
        if f["event"] == "say" {
            break f;
        }
    };
    assert_eq!(
        say["say"]["text"],
        "Would you like to book a 30-minute meeting with Alex Morgan?"
    );
    c.cut();
    app.stop().await.unwrap();
}

#[tokio::test]
async fn serve_without_configuration_books_nothing_anywhere() {
    // No provisioning file and no --emulator: no users, no campaigns, no
    // fake calendar. A call is told booking cannot run.
    let served = Served::start(&["--no-emulator"]).await;
    let mut c = CallClient::connect(served.addr, Some("pipeline-token-0123456789"))
        .await
        .unwrap();
    c.send(&frames::start(
        "CA00000000000000000000000noconfig1",
        json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"}),
    ))
    .await
    .unwrap();
    let got = c.settle().await.unwrap();
    assert_eq!(
        got[0]["booking"],
        json!({"status": "skipped", "reason": "campaign_unknown"})
    );
    let got = tell(&mut c, "can we set up a meeting?").await;
    assert!(
        !got.iter().any(|f| f["booking"]["status"] == "offered"),
        "{got:?}"
    );
}

/// The instance dies while its create is in flight (the create lands, its
/// answer is lost), and when the call resumes elsewhere the calendar
/// cannot be read: the caller is not told the booking failed, the slot
/// stays held as unknown, and once the calendar answers the reconciler
/// commits the booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_cannot_read_the_calendar_keeps_the_dead_instances_booking() {
    use callbook::calendar::emulator::{Endpoint, Fault};
    let server = RedisServer::start().await.unwrap();
    let prov = Provisioning::parse(DEFAULT).unwrap();
    let emulators = Emulators::new();
    emulators.seed(&prov);
    let store: Arc<dyn callbook::store::Store> = Arc::new(prov.into_store());
    let a = Doomed::start(server.url.clone(), emulators.clone(), store.clone());
    let b = survivor(&server, &emulators, &store).await;
    let sid = "CA0000000000000000000000killedrd1";
    let params = json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    let mut c = CallClient::connect(a.addr, Some(&a.token)).await.unwrap();
    c.send(&frames::start(sid, params.clone())).await.unwrap();
    c.settle().await.unwrap();
    to_proposal(&mut c).await;
    emulators
        .google
        .inject(OWNER, Endpoint::Insert, Fault::CommitThenDrop, 1);
    c.send(&frames::transcript("yes")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.kill();
    c.cut();

    // Every read of an event fails while the call resumes.
    let refused = Fault::Status {
        code: 400,
        reason: "badRequest",
        retry_after: None,
    };
    emulators
        .google
        .inject(OWNER, Endpoint::Get, refused, u32::MAX);
    let mut c = b.connect().await.unwrap();
    c.send(&frames::start(sid, params)).await.unwrap();
    let got = c.settle().await.unwrap();
    let failed: Vec<_> = got
        .iter()
        .filter(|f| f["booking"]["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{got:?}");
    assert_eq!(failed[0]["booking"]["reason"], "outcome_unknown");
    let calendar = "google:alex@callbook.example";
    let window = callbook::schedule::Interval::new(
        tuesday_morning() - chrono::Duration::days(1),
        tuesday_morning() + chrono::Duration::days(60),
    );
    let claims = b
        .ledger
        .claims(calendar, window, b.clock.now())
        .await
        .unwrap();
    assert!(
        claims.len() == 1 && claims[0].unknown,
        "the slot is kept: {claims:?}"
    );

    // The calendar answers again: the next load settles it.
    emulators.google.clear_faults();
    let mut d = b.connect().await.unwrap();
    d.send(&frames::start(
        "CA0000000000000000000000killedrd2",
        json!({"campaign_id": "demo"}),
    ))
    .await
    .unwrap();
    d.settle().await.unwrap();
    to_proposal(&mut d).await;
    let claims = b
        .ledger
        .claims(calendar, window, b.clock.now())
        .await
        .unwrap();
    let events: Vec<_> = emulators
        .google
        .events(OWNER)
        .into_iter()
        .filter(|e| e.booking_id.is_some() && e.status == "confirmed")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        claims.len() == 1 && claims[0].committed && !claims[0].unknown,
        "{claims:?}"
    );
    assert_eq!(claims[0].event_id.as_deref(), Some(events[0].id.as_str()));
    b.stop().await.unwrap();
}
