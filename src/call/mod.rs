//! One actor per call: a task that owns the call's [`Dialog`], and a
//! cloneable [`CallHandle`] the socket uses to feed it.
//!
//! The actor steps the dialog with each input and carries out the effects.
//! Provider work runs in tasks of its own, so the socket is never blocked;
//! their results come back through the actor's inbox as new inputs. A `sync`
//! is answered once nothing is in flight, which is what makes a replay
//! deterministic.

mod effects;
mod setup;

pub use setup::Calendars;

use crate::clock::Clock;
use crate::dialog::{Dialog, Effect, Input};
use crate::ledger::Ledger;
use crate::outcomes::{CallMeta, Recorder};
use crate::protocol::{Outbound, Say, Start, SyncReply};
use crate::store::Store;
use effects::{BookingEnv, Done};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Inputs queued per call before the socket waits. A caller produces a few
/// per second; this only fills if the actor is stuck.
const MAILBOX: usize = 64;

/// What every call shares.
pub struct CallDeps {
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
    pub calendars: Calendars,
    pub clock: Clock,
    /// Tracks calls and their effect tasks, so shutdown can drain them.
    pub tracker: TaskTracker,
    /// Records the calls' booking outcomes, whatever becomes of the socket.
    pub outcomes: Arc<Recorder>,
}

enum Msg {
    Input(Input),
    Sync(String),
}

/// The socket's side of a call.
#[derive(Clone)]
pub struct CallHandle {
    tx: mpsc::Sender<Msg>,
}

impl CallHandle {
    /// Feeds an input; waits if the mailbox is full. Returns false once the
    /// call has ended.
    pub async fn send(&self, input: Input) -> bool {
        self.tx.send(Msg::Input(input)).await.is_ok()
    }

    /// Asks for a `sync` frame once everything before it has been handled.
    pub async fn sync(&self, id: String) -> bool {
        self.tx.send(Msg::Sync(id)).await.is_ok()
    }
}

/// Starts the actor for a call whose `start` frame just arrived.
pub fn spawn(
    deps: Arc<CallDeps>,
    start: Start,
    out: mpsc::Sender<Outbound>,
    cancel: CancellationToken,
) -> CallHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let tracker = deps.tracker.clone();
    tracker.spawn(async move {
        let (setup, env) = setup::prepare(&deps, &start).await;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut actor = CallActor {
            dialog: Dialog::new(),
            outcome: CallMeta::from_start(&start, env.as_ref().map(|e| e.provider_kind)),
            stream_sid: start.stream_sid.clone(),
            deps,
            env: env.map(Arc::new),
            out,
            rx,
            done_tx,
            done_rx,
            in_flight: 0,
            syncs: Vec::new(),
            says: 0,
            claims: HashMap::new(),
            hung_up: false,
        };
        actor.apply(Input::Start(setup));
        actor.run(cancel).await;
    });
    CallHandle { tx }
}

struct CallActor {
    dialog: Dialog,
    /// What the call's booking outcomes need to know about the call.
    outcome: CallMeta,
    stream_sid: String,
    deps: Arc<CallDeps>,
    env: Option<Arc<BookingEnv>>,
    out: mpsc::Sender<Outbound>,
    rx: mpsc::Receiver<Msg>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    in_flight: usize,
    syncs: Vec<String>,
    says: u64,
    /// Event id → ledger claim id of the meetings booked on this call.
    claims: HashMap<String, String>,
    hung_up: bool,
}

impl CallActor {
    async fn run(&mut self, cancel: CancellationToken) {
        loop {
            if self.hung_up && self.in_flight == 0 {
                break;
            }
            tokio::select! {
                msg = self.rx.recv(), if !self.hung_up => match msg {
                    Some(Msg::Input(input)) => {
                        if matches!(input, Input::Hangup) {
                            self.hung_up = true;
                        }
                        self.apply(input);
                    }
                    Some(Msg::Sync(id)) => {
                        self.syncs.push(id);
                    }
                    None => {
                        self.hung_up = true;
                        self.apply(Input::Hangup);
                    }
                },
                Some(done) = self.done_rx.recv() => {
                    if done.finished {
                        self.in_flight -= 1;
                    }
                    if let Some((event_id, claim)) = done.claim {
                        self.claims.insert(event_id, claim);
                    }
                    self.apply(done.input);
                }
                _ = cancel.cancelled() => break,
            }
            if self.in_flight == 0 {
                for id in std::mem::take(&mut self.syncs) {
                    self.emit(Outbound::Sync {
                        sync: SyncReply { id },
                    });
                }
            }
        }
    }

    fn apply(&mut self, input: Input) {
        let now = self.deps.clock.now();
        for effect in self.dialog.step(input, now) {
            if let Effect::Status(status) = &effect {
                self.deps.outcomes.observe(&mut self.outcome, status, now);
            }
            match effect {
                Effect::Say(text) => {
                    self.says += 1;
                    let say = Say {
                        id: format!("s{}", self.says),
                        text,
                    };
                    self.emit(Outbound::Say {
                        stream_sid: Some(self.stream_sid.clone()),
                        say,
                    });
                }
                Effect::Status(status) => self.emit(Outbound::Booking {
                    stream_sid: Some(self.stream_sid.clone()),
                    booking: status,
                }),
                other => self.run_effect(other),
            }
        }
    }

    /// Sends a frame without waiting; a socket too slow to take it is a
    /// socket whose caller has gone.
    fn emit(&self, frame: Outbound) {
        if self.out.try_send(frame).is_err() {
            tracing::warn!(stream = %self.stream_sid, "outbound queue full or closed; frame dropped");
        }
    }

    fn run_effect(&mut self, effect: Effect) {
        let Some(env) = self.env.clone() else { return };
        self.in_flight += 1;
        let done = self.done_tx.clone();
        let deps = self.deps.clone();
        let old_claim = match &effect {
            Effect::Move { event_id, .. } | Effect::CancelMeeting { event_id } => {
                self.claims.get(event_id).cloned()
            }
            _ => None,
        };
        self.deps.tracker.spawn(async move {
            effects::run(effect, env, deps, old_claim, done).await;
        });
    }
}
