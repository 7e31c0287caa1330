//! `GET /v1/calls`: one WebSocket per call, Twilio frames in, callbook frames
//! out. The socket task parses frames and feeds the call actor; a separate
//! writer task drains the actor's outbound queue, and the socket closes with
//! a code and reason that say why (see `protocol/README.md`, "Endings").
//!
//! A socket holds a file descriptor and a call's memory, so none is kept
//! for nothing: `start` must come within the start timeout, a started call
//! must send some frame (a ping will do) within the idle timeout, and a
//! client that does not read its frames is closed as too slow rather than
//! have frames dropped ([`Outlet`]).

use super::limits::Peer;
use super::{authorized, unauthorized, AppState};
use crate::call::{self, line_number, CallHandle, Outlet};
use crate::dialog::{Input, Offer};
use crate::domain::EndReason;
use crate::observe::metrics;
use crate::protocol::{
    self, BookingAction, Inbound, Outbound, ProtocolError, SyncReply, TRANSPORT_MAX_BYTES,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Frames queued for one socket's writer.
const OUTBOUND_QUEUE: usize = 256;

/// tungstenite's default read buffer is 128 KiB per connection and is zeroed
/// on every read; Twilio frames are ~330 bytes.
const READ_BUFFER: usize = 4096;

/// Media frames are added to the frame counter a second's worth at a time
/// (and the rest when the socket closes): one shared counter touched by
/// every call 50 times a second would bounce between cores.
const MEDIA_COUNTED_EVERY: u64 = 50;

/// How long one frame may wait to go out before the client counts as too
/// slow: its receive window has stayed shut that long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the close frame may take to go out; a client that does not
/// take it is disconnected all the same.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a socket closes: the code and reason of its close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// After `stop`, or the pipeline closed first.
    Normal,
    /// The drain period after a shutdown signal ended.
    Shutdown,
    /// A frame over the transport's limit.
    TooLarge,
    /// No `start` within the start timeout.
    NoStart,
    /// A started call's socket sent nothing within the idle timeout.
    Idle,
    /// The client did not take its frames: the outbound queue filled, or
    /// a frame could not be written for [`WRITE_TIMEOUT`].
    TooSlow,
    /// The socket failed; nothing to say on it.
    Broken,
}

impl Ending {
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Ending::Normal => (1000, "call ended"),
            Ending::Shutdown => (1001, "server shutting down"),
            Ending::TooLarge => (1009, "frame too large"),
            Ending::NoStart => (1008, "no start"),
            Ending::Idle => (1008, "idle"),
            Ending::TooSlow => (1008, "too slow"),
            Ending::Broken => return None,
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

pub(super) async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !authorized(&headers, &state.auth_token) {
        return unauthorized();
    }
    if state.draining.is_cancelled() {
        tracing::info!("call refused: draining");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "draining", "message": "this instance is shutting down; connect to another"})),
        )
            .into_response();
    }
    // A call socket from here on: its client's cap no longer counts it.
    if let Some(Extension(peer)) = peer {
        peer.authenticated();
    }
    let tracker = state.deps.tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(TRANSPORT_MAX_BYTES)
        .max_frame_size(TRANSPORT_MAX_BYTES)
        .on_upgrade(move |socket| tracker.track_future(serve_socket(socket, state)))
}

/// Whether a read error is the transport refusing an oversized frame.
fn too_large(e: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(Error::Capacity(_)) = err.downcast_ref::<Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

type Sink = SplitSink<WebSocket, Message>;

/// Writes the queued frames to the socket. Gives the sink back once the
/// queue is closed, for the close frame; `None` when the socket broke or
/// was too slow (then it has sent the close itself, if the client took it).
///
/// The writer, not the socket's reading loop, watches the shutdown and the
/// too-slow signal: a cancellation token's future locks the token each
/// time it is polled, and the reading loop is polled for every frame the
/// pipeline sends (50 a second), the writer only for frames callbook
/// sends. The reading loop learns of a shutdown through `shutting_down`
/// (a one-shot, polled without a lock), and of a stall by the writer's end.
async fn write_frames(
    mut sink: Sink,
    mut frames: call::Frames,
    stalled: CancellationToken,
    shutdown: CancellationToken,
    shutting_down: oneshot::Sender<()>,
) -> Option<Sink> {
    let too_slow = stalled.cancelled();
    tokio::pin!(too_slow);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let mut shutting_down = Some(shutting_down);
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut too_slow => break,
            // The call's last frames still go out after a shutdown.
            _ = &mut cancelled, if shutting_down.is_some() => {
                if let Some(tell) = shutting_down.take() {
                    let _ = tell.send(());
                }
                continue;
            }
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => return Some(sink),
            },
        };
        metrics::frame_sent(frame.event);
        let message = Message::Text(String::from(frame.text).into());
        let sent = tokio::select! {
            biased;
            _ = &mut too_slow => break,
            sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)) => sent,
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return None,
            Err(_) => {
                stalled.cancel();
                break;
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink
            .send(Message::Close(Ending::TooSlow.close_frame()))
            .await;
        let _ = sink.close().await;
    })
    .await;
    None
}

async fn serve_socket(socket: WebSocket, state: AppState) {
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = Outlet::channel(OUTBOUND_QUEUE);
    let stalled = out.stalled();
    // The shutdown as this socket's own token, so no lock every call
    // shares is taken to watch it.
    let shutdown = state.calls_cancel.child_token();
    let (tell_shutdown, mut shutting_down) = oneshot::channel();
    let mut writer = tokio::spawn(write_frames(
        sink,
        out_rx,
        stalled.clone(),
        shutdown.clone(),
        tell_shutdown,
    ));
    let mut written = None;
    out.push(Outbound::hello());
    let mut session = Session {
        state: &state,
        out: out.clone(),
        call: None,
        stream_sid: None,
        media_frames: 0,
        hung_up: false,
        playback: false,
        span: tracing::Span::none(),
    };
    let mut listening = true;
    let (start_timeout, idle_timeout) = (state.limits.start_timeout, state.limits.idle_timeout);
    // One timer, moved on only when it fires: no timer work per frame.
    let timer = tokio::time::sleep(start_timeout);
    tokio::pin!(timer);
    let mut last_frame = Instant::now();
    let ending = loop {
        // Nothing here takes a lock when polled: the pipeline's frames,
        // the writer's end, the shutdown one-shot and one timer.
        let msg = tokio::select! {
            m = stream.next() => m,
            ended = &mut writer => {
                let ended = ended.ok().flatten();
                let ending = match &ended {
                    Some(_) => Ending::Normal,
                    None if stalled.is_cancelled() => Ending::TooSlow,
                    None => Ending::Broken,
                };
                written = Some(ended);
                break ending;
            }
            told = &mut shutting_down, if listening => match told {
                Ok(()) => break Ending::Shutdown,
                // The writer ended; its own branch says why.
                Err(_) => {
                    listening = false;
                    continue;
                }
            },
            () = &mut timer => {
                if session.call.is_none() {
                    session.reject(&ProtocolError::StartTimeout(start_timeout.as_secs())).await;
                    break Ending::NoStart;
                }
                let due = last_frame + idle_timeout;
                if due <= Instant::now() {
                    break Ending::Idle;
                }
                timer.as_mut().reset(due);
                continue;
            }
        };
        last_frame = Instant::now();
        let started = session.call.is_some();
        match msg {
            Some(Ok(Message::Text(text))) => {
                session.frame(&text, &shutdown).await;
                // After `stop` the call only finishes its work; the socket
                // closes once the last frame is written.
                if session.hung_up {
                    break Ending::Normal;
                }
            }
            Some(Ok(Message::Binary(_))) => session.reject(&ProtocolError::Binary).await,
            Some(Ok(Message::Close(_))) | None => break Ending::Broken,
            Some(Ok(_)) => {}
            Some(Err(e)) if too_large(&e) => {
                session.reject(&ProtocolError::TooLarge).await;
                break Ending::TooLarge;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "socket read failed");
                break Ending::Broken;
            }
        }
        if !started && session.call.is_some() {
            timer.as_mut().reset(last_frame + idle_timeout);
        }
    };
    let span = session.span.clone();
    match ending {
        Ending::NoStart => metrics::limit_rejected("start_timeout"),
        Ending::Idle => metrics::limit_rejected("idle_timeout"),
        Ending::TooSlow => metrics::limit_rejected("slow_socket"),
        Ending::TooLarge => metrics::limit_rejected("frame_too_large"),
        _ => {}
    }
    match ending {
        Ending::NoStart => tracing::info!(
            seconds = start_timeout.as_secs(),
            "no start in time: socket closed (1008)"
        ),
        Ending::Idle => tracing::info!(
            parent: &span,
            seconds = idle_timeout.as_secs(),
            "no frame in time: socket closed (1008); call kept for a resume"
        ),
        Ending::TooSlow => tracing::warn!(
            parent: &span,
            "client not taking its frames: socket closed as too slow (1008); call kept for a resume"
        ),
        _ => {}
    }
    // A socket that ends without `stop` (or a shutdown, which the call
    // handles itself) leaves its call waiting for a resume.
    if !session.hung_up && ending != Ending::Shutdown {
        if let Some(call) = &session.call {
            call.detach().await;
        }
    }
    metrics::frames_received("media", session.media_frames % MEDIA_COUNTED_EVERY);
    tracing::debug!(parent: &span, media_frames = session.media_frames, ?ending, "socket closed");
    drop(session);
    drop(out);
    // The writer takes at most WRITE_TIMEOUT a frame, and the call's last
    // frames come once its work is done.
    let written = match written {
        Some(w) => w,
        None => writer.await.ok().flatten(),
    };
    if let Some(mut sink) = written {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if let Some(frame) = ending.close_frame() {
                let _ = sink.send(Message::Close(Some(frame))).await;
            }
            let _ = sink.close().await;
        })
        .await;
    }
}

/// One socket's state between frames.
struct Session<'a> {
    state: &'a AppState,
    out: Outlet,
    call: Option<CallHandle>,
    stream_sid: Option<String>,
    media_frames: u64,
    hung_up: bool,
    /// The pipeline declared playback reports before `start`.
    playback: bool,
    /// The call's span, once started: every log line carries its SID.
    span: tracing::Span,
}

impl Session<'_> {
    async fn reject(&self, e: &ProtocolError) {
        metrics::protocol_error(e.code());
        self.out.push(Outbound::error(self.stream_sid.clone(), e));
    }

    /// The live call, or an error frame naming what came too early.
    async fn live(&self, what: &'static str) -> Option<&CallHandle> {
        match &self.call {
            Some(call) if !self.hung_up => Some(call),
            Some(_) => None,
            None => {
                self.reject(&ProtocolError::NotStarted(what)).await;
                None
            }
        }
    }

    async fn feed(&self, what: &'static str, input: Input) {
        if let Some(call) = self.live(what).await {
            call.send(input).await;
        }
    }

    /// Handles one text frame. Media, 50 a second per call, is counted
    /// and nothing more; other frames are handled in the call's span
    /// (entering a span consults the log filter's table of spans, which
    /// every call shares, so media frames do not).
    async fn frame(&mut self, text: &str, shutdown: &CancellationToken) {
        let frame = match protocol::parse(text) {
            Ok(f) => f,
            Err(e) => {
                metrics::frame_received("invalid");
                let span = self.span.clone();
                return Box::pin(self.reject(&e).instrument(span)).await;
            }
        };
        if let Inbound::Media = frame {
            self.media_frames += 1;
            if self.media_frames % MEDIA_COUNTED_EVERY == 0 {
                metrics::frames_received("media", MEDIA_COUNTED_EVERY);
            }
            return;
        }
        metrics::frame_received(metrics::inbound_event(&frame));
        // Boxed: the state of a frame's handling would otherwise size the
        // socket's task for the socket's whole life.
        let span = self.span.clone();
        Box::pin(self.handle(frame, shutdown).instrument(span)).await;
    }

    async fn handle(&mut self, frame: Inbound, shutdown: &CancellationToken) {
        match frame {
            Inbound::Media => self.media_frames += 1,
            Inbound::Connected | Inbound::Dtmf { .. } => {}
            Inbound::Start(start) => {
                if self.call.is_some() {
                    return self.reject(&ProtocolError::AlreadyStarted).await;
                }
                self.stream_sid = Some(start.stream_sid.clone());
                self.span = tracing::info_span!("call", call_sid = %start.call_sid);
                let playback = self.playback || start.declares_playback();
                let cancel = shutdown.clone();
                self.call = Some(call::spawn(
                    self.state.deps.clone(),
                    start,
                    playback,
                    self.out.clone(),
                    cancel,
                    self.span.clone(),
                ));
            }
            Inbound::Capabilities(caps) => {
                if caps.playback_marks() {
                    match &self.call {
                        Some(call) => {
                            call.send(Input::PlaybackReported).await;
                        }
                        None => self.playback = true,
                    }
                }
            }
            Inbound::Mark { name } => {
                // Marks for anything but callbook's own lines are the
                // pipeline's business.
                if let (Some(n), Some(call)) = (line_number(&name), &self.call) {
                    call.send(Input::Played(n)).await;
                }
            }
            Inbound::Clear(clear) => {
                if let Some(call) = &self.call {
                    call.clear(clear).await;
                }
            }
            Inbound::Stop => {
                if let Some(call) = &self.call {
                    if !self.hung_up {
                        call.send(Input::Hangup(EndReason::Hangup)).await;
                    }
                }
                self.hung_up = true;
            }
            Inbound::Transcript(t) => {
                if t.is_final {
                    if let Some(call) = self.live("transcript").await {
                        call.heard(t.id, t.text).await;
                    }
                }
            }
            Inbound::Booking(BookingAction::Offer(o)) => {
                let offer = Offer {
                    agreed: o.agreed,
                    email: o.email,
                    when: o.when,
                };
                self.feed("booking", Input::Offer(offer)).await;
            }
            Inbound::Booking(BookingAction::Cancel) => self.feed("booking", Input::Cancel).await,
            Inbound::Sync { id } => match &self.call {
                Some(call) if !self.hung_up && call.sync(id.clone()).await => {}
                _ => {
                    self.out.push(Outbound::Sync {
                        sync: SyncReply { id },
                    });
                }
            },
        }
    }
}
