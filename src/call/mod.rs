//! One actor per call: a task that owns the call's [`Dialog`], and a
//! cloneable [`CallHandle`] the socket uses to feed it.
//!
//! The actor steps the dialog with each input and carries out the effects.
//! Provider work runs in tasks of its own, so the socket is never blocked;
//! their results come back through the actor's inbox as new inputs. A `sync`
//! is answered once nothing is in flight, which is what makes a replay
//! deterministic.

mod effects;
mod outlet;
mod queue;
pub mod reconcile;
pub mod resume;
mod saga;
mod setup;

pub use outlet::{Outlet, Queued};

/// The receiving end of a socket's outbound queue.
pub type Frames = queue::Receiver<Queued>;
pub use setup::Calendars;

use crate::clock::Clock;
use crate::dialog::{Dialog, Effect, Input};
use crate::domain::{EndReason, SkipReason};
use crate::ledger::Ledger;
use crate::observe::{CallProgress, Ending};
use crate::outcomes::{CallMeta, Recorder};
use crate::protocol::{Clear, Outbound, Owner, Resumed, Say, Start, SyncReply, TurnReply};
use crate::store::Store;
use effects::{BookingEnv, Done};
use resume::{CallStates, Saved};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Inputs queued per call before the socket waits. A caller produces a few
/// per second; this only fills if the actor is stuck.
const MAILBOX: usize = 64;

/// How many recent lines the actor remembers the length of, to tell
/// whether a `clear` that names one cut it short.
const RECENT_LINES: usize = 4;

/// What every call shares.
pub struct CallDeps {
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
    pub calendars: Calendars,
    pub clock: Clock,
    /// Tracks calls and their effect tasks, so shutdown can drain them.
    pub tracker: TaskTracker,
    /// Where calls wait for a resume after their socket drops.
    pub states: Arc<dyn CallStates>,
    /// How long after its last change a call can be resumed.
    pub resume_window: Duration,
    /// How long a resume waits for the previous socket's work to settle.
    pub settle_wait: Duration,
    /// Records the calls' booking outcomes, whatever becomes of the socket.
    pub outcomes: Arc<Recorder>,
    /// Where each call's ending (how far its booking got) is kept for the
    /// diagnostics.
    pub trail: Arc<crate::observe::CallTrail>,
    /// The calendars this instance loaded recently, reconciled
    /// periodically ([`reconcile`]).
    pub reconciler: Arc<reconcile::Reconciler>,
}

/// What the socket sends its call. The mailbox keeps room for a block of
/// these for the call's whole life, so the rare large one (an input) is
/// boxed and the common one (a transcript) is kept small.
enum Msg {
    Input(Box<Input>),
    /// A final transcript, with the id its `turn` answer echoes.
    Heard(Box<Heard>),
    Clear(Box<Clear>),
    Sync(Box<str>),
    /// The socket is gone without a `stop`: finish the work in flight,
    /// keep the state for a resume, and end.
    Detach,
}

/// A final transcript and its id.
struct Heard {
    id: Option<String>,
    text: String,
}

/// The socket's side of a call.
#[derive(Clone)]
pub struct CallHandle {
    tx: queue::Sender<Msg>,
}

impl CallHandle {
    /// Feeds an input; waits if the mailbox is full. Returns false once the
    /// call has ended.
    pub async fn send(&self, input: Input) -> bool {
        self.tx.send(Msg::Input(Box::new(input))).await.is_ok()
    }

    /// Feeds a final transcript; its `turn` answer echoes `id`.
    pub async fn heard(&self, id: Option<String>, text: String) -> bool {
        self.tx
            .send(Msg::Heard(Box::new(Heard { id, text })))
            .await
            .is_ok()
    }

    /// Reports a barge-in.
    pub async fn clear(&self, clear: Clear) -> bool {
        self.tx.send(Msg::Clear(Box::new(clear))).await.is_ok()
    }

    /// Asks for a `sync` frame once everything before it has been handled.
    pub async fn sync(&self, id: String) -> bool {
        self.tx.send(Msg::Sync(id.into())).await.is_ok()
    }

    /// Tells the call its socket is gone (no `stop`).
    pub async fn detach(&self) {
        let _ = self.tx.send(Msg::Detach).await;
    }
}

/// Starts the actor for a call whose `start` frame just arrived, or takes
/// up the call's saved state when its SID was seen within the resume
/// window. `playback` says the pipeline already declared playback reports;
/// `span` is the call's (its socket's), which every log line of the call
/// carries.
pub fn spawn(
    deps: Arc<CallDeps>,
    start: Start,
    playback: bool,
    out: Outlet,
    cancel: CancellationToken,
    span: tracing::Span,
) -> CallHandle {
    let (tx, rx) = queue::bounded(MAILBOX);
    let tracker = deps.tracker.clone();
    // What the setup reads, boxed: what a task's future captures stays in
    // it for the task's whole life, and the `start` frame is needed once.
    let setup = Box::new(Begin {
        deps,
        start,
        playback,
        out,
        rx,
    });
    tracker.spawn(
        async move {
            let _live = crate::observe::metrics::LiveCall::start();
            // The setup runs once; boxed, its state does not size the
            // task every live call keeps for its whole life.
            let mut actor = Box::pin(begin(setup)).await;
            actor.run(cancel).await;
            let ending = if actor.hung_up {
                Ending::Hangup
            } else if actor.detached {
                Ending::SocketDropped
            } else {
                Ending::Shutdown
            };
            let end = actor.progress.finish(ending, actor.deps.clock.now());
            actor.deps.trail.record(end);
        }
        .instrument(span),
    );
    CallHandle { tx }
}

/// What a call's actor is made from.
struct Begin {
    deps: Arc<CallDeps>,
    start: Start,
    playback: bool,
    out: Outlet,
    rx: queue::Receiver<Msg>,
}

/// Takes up a saved state (if any), reads the call's setup, and makes the
/// actor, with the call's first frames said.
async fn begin(setup: Box<Begin>) -> CallActor {
    let Begin {
        deps,
        start,
        playback,
        out,
        rx,
    } = *setup;
    let saved = resume::take_up(deps.states.as_ref(), &start.call_sid, deps.settle_wait).await;
    let (setup, env) = setup::prepare(&deps, &start).await;
    let known = !matches!(setup.booking, Err(SkipReason::CampaignUnknown));
    let campaign = start.param("campaign_id").filter(|_| known);
    let mut actor = CallActor {
        dialog: Dialog::new(),
        outcome: CallMeta::from_start(&start, env.as_ref().map(|e| e.provider_kind)),
        progress: CallProgress::start(&start.call_sid, campaign),
        call_sid: start.call_sid.clone(),
        stream_sid: start.stream_sid.clone(),
        generation: saved.as_ref().map_or(1, |s| s.generation + 1),
        deps,
        env: env.map(Arc::new),
        out: Some(out),
        rx,
        done: None,
        in_flight: 0,
        syncs: Vec::new(),
        turn_id: None,
        recent: Vec::with_capacity(RECENT_LINES),
        dirty: true,
        hung_up: false,
        detached: false,
    };
    if playback {
        actor
            .dialog
            .step(Input::PlaybackReported, actor.deps.clock.now());
    }
    actor.apply(Input::Start(setup));
    if let Some(saved) = saved {
        tracing::info!(generation = actor.generation, "call resumed");
        let last = saved.memo.last_line();
        actor.apply(Input::Resume(Box::new(saved.memo)));
        actor.emit(Outbound::Resumed {
            stream_sid: Some(actor.stream_sid.clone()),
            resumed: Resumed {
                call_sid: actor.call_sid.clone(),
                floor: actor.dialog.holds_floor(),
                last_say: (last > 0).then(|| format!("s{last}")),
            },
        });
        // The `booked` frame may have died with the old socket (or
        // its instance): say it again. Sent as a frame only; the
        // outcome was recorded when it happened.
        if let Some(booked) = actor.dialog.booked_status() {
            actor.emit(Outbound::Booking {
                stream_sid: Some(actor.stream_sid.clone()),
                booking: booked,
            });
        }
    }
    // What the call needs of its `start` is in the actor now.
    drop(start);
    actor
}

struct CallActor {
    dialog: Dialog,
    call_sid: String,
    /// What the call's booking outcomes need to know about the call.
    outcome: CallMeta,
    /// How far the call's booking got (metrics, diagnostics).
    progress: CallProgress,
    stream_sid: String,
    /// This socket's turn at the call (see [`resume`]).
    generation: u64,
    deps: Arc<CallDeps>,
    env: Option<Arc<BookingEnv>>,
    /// The socket's outbound queue; gone once the socket is (or was
    /// found too slow).
    out: Option<Outlet>,
    rx: queue::Receiver<Msg>,
    /// Where effects report back: made when one starts and dropped when
    /// none is left, so a call between effects (most of a call's life)
    /// holds no room for their results.
    done: Option<(mpsc::UnboundedSender<Done>, mpsc::UnboundedReceiver<Done>)>,
    in_flight: usize,
    syncs: Vec<String>,
    /// The id of the transcript being answered.
    turn_id: Option<String>,
    /// The latest lines' numbers and lengths in characters.
    recent: Vec<(u32, usize)>,
    /// The dialog changed since it was last saved.
    dirty: bool,
    hung_up: bool,
    detached: bool,
}

impl CallActor {
    async fn run(&mut self, cancel: CancellationToken) {
        loop {
            if self.dirty {
                // Boxed, as every await the loop makes only now and then:
                // the loop's state is what a live call keeps all its life.
                Box::pin(self.save()).await;
            }
            if (self.hung_up || self.detached) && self.in_flight == 0 {
                break;
            }
            let open = !self.hung_up && !self.detached;
            tokio::select! {
                // At shutdown the socket goes too; the call must see the
                // shutdown first, or it would take it for a dropped line.
                biased;
                _ = cancel.cancelled() => {
                    Box::pin(self.shut_down()).await;
                    break;
                }
                msg = self.rx.recv(), if open => match msg {
                    Some(Msg::Input(input)) => {
                        if matches!(*input, Input::Hangup(_)) {
                            self.hung_up = true;
                        }
                        self.apply(*input);
                    }
                    Some(Msg::Heard(heard)) => {
                        let Heard { id, text } = *heard;
                        self.turn_id = id;
                        self.apply(Input::Heard(text));
                    }
                    Some(Msg::Clear(clear)) => {
                        let fully_spoken = self.fully_spoken(&clear);
                        self.apply(Input::Cut { fully_spoken });
                    }
                    Some(Msg::Sync(id)) => {
                        self.syncs.push(id.into());
                    }
                    Some(Msg::Detach) | None if cancel.is_cancelled() => {
                        Box::pin(self.shut_down()).await;
                        break;
                    }
                    Some(Msg::Detach) | None => {
                        tracing::info!(in_flight = self.in_flight, "socket gone; call kept for a resume");
                        self.detached = true;
                        self.out = None;
                        self.dirty = true;
                    }
                },
                Some(done) = next_done(&mut self.done) => {
                    if done.finished {
                        self.in_flight -= 1;
                        if self.in_flight == 0 {
                            // Every effect has reported its end (its
                            // filler, if any, came before): nothing more
                            // can arrive.
                            self.done = None;
                        }
                    }
                    self.apply(done.input);
                }
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

    /// The server is stopping: the pipeline hears how the call ended (its
    /// socket then closes with 1001), and the state stays for a resume on
    /// another instance.
    async fn shut_down(&mut self) {
        self.save().await;
        if !self.hung_up && !self.detached {
            self.apply(Input::Hangup(EndReason::Shutdown));
        }
    }

    /// Saves the call's state for a resume; failures only cost the resume.
    async fn save(&mut self) {
        self.dirty = false;
        let saved = Saved {
            generation: self.generation,
            settled: self.in_flight == 0,
            memo: self.dialog.memo(),
        };
        if let Err(e) = self
            .deps
            .states
            .save(&self.call_sid, &saved, self.deps.resume_window)
            .await
        {
            tracing::warn!(error = %e, "could not save the call's state");
        }
    }

    /// The line a `clear` names, when it says all of it was spoken.
    fn fully_spoken(&self, clear: &Clear) -> Option<u32> {
        let n = clear.say.as_deref().and_then(line_number)?;
        let spoken = clear.spoken_chars?;
        self.recent
            .iter()
            .find(|(id, _)| *id == n)
            .filter(|(_, len)| spoken >= *len)
            .map(|(id, _)| *id)
    }

    fn apply(&mut self, input: Input) {
        let now = self.deps.clock.now();
        let playback = matches!(input, Input::Played(_) | Input::PlaybackReported);
        if !playback {
            self.dirty = true;
        }
        let resumed = matches!(input, Input::Resume(_));
        if matches!(input, Input::Offer(_)) {
            self.progress.offer_asked();
        }
        let effects = self.dialog.step(input, now);
        self.progress.stage(self.dialog.stage_name(), resumed);
        for effect in effects {
            if let Effect::Status(status) = &effect {
                self.deps.outcomes.observe(&mut self.outcome, status, now);
                self.progress.status(status);
            }
            match effect {
                Effect::Turn { callbook, floor } => {
                    let owner = if callbook {
                        Owner::Callbook
                    } else {
                        Owner::Agent
                    };
                    let id = self.turn_id.take();
                    self.emit(Outbound::Turn {
                        stream_sid: Some(self.stream_sid.clone()),
                        turn: TurnReply { id, owner, floor },
                    });
                }
                Effect::Say(line) => {
                    if self.recent.len() == RECENT_LINES {
                        self.recent.remove(0);
                    }
                    self.recent.push((line.id, line.text.chars().count()));
                    let say = Say {
                        id: line.wire_id(),
                        text: line.text,
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

    /// Sends a frame without waiting. A socket too slow to take it is
    /// closed rather than fed a story with a hole ([`Outlet`]); the call
    /// then goes on as for a dropped socket, kept for a resume.
    fn emit(&mut self, frame: Outbound) {
        let Some(out) = &self.out else { return };
        if !out.push(frame) {
            self.out = None;
        }
    }

    fn run_effect(&mut self, effect: Effect) {
        let Some(env) = self.env.clone() else { return };
        self.in_flight += 1;
        let done = self
            .done
            .get_or_insert_with(mpsc::unbounded_channel)
            .0
            .clone();
        let deps = self.deps.clone();
        let call_sid = self.call_sid.clone();
        self.deps.tracker.spawn(
            async move {
                effects::run(effect, env, deps, &call_sid, done).await;
            }
            .in_current_span(),
        );
    }
}

/// The next effect result, or never while no effect runs.
async fn next_done(
    done: &mut Option<(mpsc::UnboundedSender<Done>, mpsc::UnboundedReceiver<Done>)>,
) -> Option<Done> {
    match done {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The number of a line from its wire id (`s4` → 4).
pub fn line_number(wire_id: &str) -> Option<u32> {
    wire_id.strip_prefix('s')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call's mailbox and its socket's outbound queue each keep room for
    /// a block of 32 entries as long as the call lives, so their entries
    /// are what every idle call pays for 64 times over.
    #[test]
    fn what_a_live_call_keeps_room_for_is_small() {
        assert!(
            std::mem::size_of::<Msg>() <= 24,
            "{}",
            std::mem::size_of::<Msg>()
        );
        assert!(std::mem::size_of::<Queued>() <= 32);
    }
}
