//! `GET /v1/calls`: one WebSocket per call, Twilio frames in, callbook frames
//! out. One task per socket parses frames and feeds the call actor, writes
//! what the actor queues for the socket, and closes the socket with a code
//! and reason that say why (see `protocol/README.md`, "Endings").
//!
//! A socket holds a file descriptor and a call's memory, so none is kept
//! for nothing: `start` must come within the start timeout, a started call
//! must send some frame (a ping will do) within the idle timeout, and a
//! client that does not read its frames is closed as too slow rather than
//! have frames dropped ([`Outlet`]).

use super::limits::Peer;
use super::{authorized, unauthorized, AppState};
use crate::call::{self, line_number, CallHandle, Frames, Outlet};
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
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Frames queued for one socket's writer.
const OUTBOUND_QUEUE: usize = 256;

/// tungstenite's default read buffer is 128 KiB per connection and is zeroed
/// on every read; Twilio frames are ~330 bytes. Every connected call keeps
/// it, idle or not: 2 KiB holds five or six media frames, so a frame that
/// arrives split across the buffer's end (one more read) is one in five
/// or six. The buffer grows to fit a larger frame.
pub(crate) const READ_BUFFER: usize = 2048;

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

/// What woke the socket's task.
enum Event {
    /// A frame from the pipeline, or the end of its stream.
    Read(Option<Result<Message, axum::Error>>),
    /// The start or idle timeout, or a write's deadline, may be due.
    Timer,
    /// The drain period after a shutdown signal ended.
    Shutdown,
    /// The outbound queue filled: the client does not take its frames.
    Stalled,
    /// A write failed.
    WriteFailed,
}

/// How a round of writing went.
enum Wrote {
    /// Everything queued is written; more may come.
    Idle,
    /// The socket takes no more for now ([`Writer::blocked_since`]).
    Blocked,
    /// The queue is closed and everything in it written.
    Ended,
    /// The queue was stalled (full): the socket is to close as too slow.
    Stalled,
    Failed,
}

/// The socket's writing side, driven from the socket's one task: the
/// frame being written and whether the socket holds unflushed bytes.
#[derive(Default)]
struct Writer {
    pending: Option<Message>,
    unflushed: bool,
    /// Since when the socket has not taken what is being written.
    blocked_since: Option<Instant>,
}

impl Writer {
    /// Writes what is queued as far as the socket takes it, and arranges
    /// to be woken when it takes more or more is queued.
    fn poll(&mut self, cx: &mut Context<'_>, socket: &mut WebSocket, frames: &mut Frames) -> Wrote {
        let mut ended = false;
        loop {
            if frames.closed_by_sender() {
                return Wrote::Stalled;
            }
            if let Some(message) = self.pending.take() {
                match socket.poll_ready_unpin(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Wrote::Failed,
                    Poll::Pending => {
                        self.pending = Some(message);
                        return self.blocked();
                    }
                }
                if socket.start_send_unpin(message).is_err() {
                    return Wrote::Failed;
                }
                self.unflushed = true;
            }
            match frames.poll_recv(cx) {
                Poll::Ready(Some(frame)) => {
                    metrics::frame_sent(frame.event);
                    self.pending = Some(Message::Text(String::from(frame.text).into()));
                }
                Poll::Ready(None) => {
                    ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            match socket.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Wrote::Failed,
                Poll::Pending => return self.blocked(),
            }
        }
        self.blocked_since = None;
        if ended {
            Wrote::Ended
        } else {
            Wrote::Idle
        }
    }

    fn blocked(&mut self) -> Wrote {
        self.blocked_since.get_or_insert_with(Instant::now);
        Wrote::Blocked
    }

    /// When the frame being written counts as too slow, if one is stuck.
    fn deadline(&self) -> Option<Instant> {
        self.blocked_since.map(|since| since + WRITE_TIMEOUT)
    }
}

/// Moves `timer` earlier when the writer's deadline comes first.
fn arm_for_write(timer: &mut Pin<&mut Sleep>, writer: &Writer) {
    if let Some(due) = writer.deadline() {
        if due < timer.deadline() {
            timer.as_mut().reset(due);
        }
    }
}

/// Writes the call's last frames once the socket stops reading: until
/// the queue closes (the call has said all it will) or a frame waits
/// [`WRITE_TIMEOUT`] to go out.
async fn drain(
    socket: &mut WebSocket,
    frames: &mut Frames,
    writer: &mut Writer,
    mut timer: Pin<&mut Sleep>,
) -> Ending {
    std::future::poll_fn(|cx| match writer.poll(cx, socket, frames) {
        Wrote::Ended => Poll::Ready(Ending::Normal),
        Wrote::Failed => Poll::Ready(Ending::Broken),
        Wrote::Stalled => Poll::Ready(Ending::TooSlow),
        Wrote::Idle => Poll::Pending,
        Wrote::Blocked => {
            let due = writer.deadline().unwrap_or_else(Instant::now);
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Ending::TooSlow),
                Poll::Pending => Poll::Pending,
            }
        }
    })
    .await
}

/// Sends the close frame (none for a broken socket) and closes, giving
/// the client [`CLOSE_TIMEOUT`] to take it.
async fn close(socket: &mut WebSocket, ending: Ending) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if let Some(frame) = ending.close_frame() {
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        let _ = socket.close().await;
    })
    .await;
}

/// One task per socket: it reads the pipeline's frames, writes the
/// call's, and watches the timeouts and the shutdown. Nothing it polls
/// per frame takes a lock another socket shares.
async fn serve_socket(mut socket: WebSocket, state: AppState) {
    let (out, mut frames) = Outlet::channel(OUTBOUND_QUEUE);
    // The shutdown as this socket's own token, so no lock every call
    // shares is taken to watch it; its future is made once.
    let shutdown = state.calls_cancel.child_token();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let mut writer = Writer::default();
    out.push(Outbound::hello());
    let mut session = Session {
        state: &state,
        out,
        call: None,
        stream_sid: None,
        media_frames: 0,
        hung_up: false,
        playback: false,
        span: tracing::Span::none(),
    };
    let (start_timeout, idle_timeout) = (state.limits.start_timeout, state.limits.idle_timeout);
    let opened = Instant::now();
    // One timer for the start, idle and write deadlines, moved only when
    // it fires or a write gets stuck: no timer work per frame.
    let timer = tokio::time::sleep(start_timeout);
    tokio::pin!(timer);
    let mut last_frame = opened;
    let mut write_failed = false;
    let ending = loop {
        let event = std::future::poll_fn(|cx| {
            if frames.closed_by_sender() {
                return Poll::Ready(Event::Stalled);
            }
            // The pipeline's frames first: a media frame wakes the task
            // 50 times a second, and is all there is to do then.
            if let Poll::Ready(msg) = socket.poll_next_unpin(cx) {
                return Poll::Ready(Event::Read(msg));
            }
            match writer.poll(cx, &mut socket, &mut frames) {
                Wrote::Failed => return Poll::Ready(Event::WriteFailed),
                Wrote::Stalled => return Poll::Ready(Event::Stalled),
                Wrote::Blocked => arm_for_write(&mut timer, &writer),
                // The queue stays open while the session holds its outlet.
                Wrote::Idle | Wrote::Ended => {}
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Shutdown);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Event::Timer),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let msg = match event {
            Event::Read(msg) => msg,
            Event::Shutdown => break Ending::Shutdown,
            Event::Stalled => break Ending::TooSlow,
            Event::WriteFailed => {
                write_failed = true;
                break Ending::Broken;
            }
            Event::Timer => {
                let now = Instant::now();
                if writer.deadline().is_some_and(|due| due <= now) {
                    // The client's receive window stayed shut.
                    session.out.stall();
                    break Ending::TooSlow;
                }
                let due = if session.call.is_none() {
                    if opened + start_timeout <= now {
                        session.reject(&ProtocolError::StartTimeout(start_timeout.as_secs()));
                        break Ending::NoStart;
                    }
                    opened + start_timeout
                } else {
                    if last_frame + idle_timeout <= now {
                        break Ending::Idle;
                    }
                    last_frame + idle_timeout
                };
                timer.as_mut().reset(due);
                arm_for_write(&mut timer, &writer);
                continue;
            }
        };
        last_frame = Instant::now();
        let started = session.call.is_some();
        match msg {
            Some(Ok(Message::Text(text))) => {
                let frame = session.read(&text);
                drop(text);
                if let Some(frame) = frame {
                    // Boxed: the state of a frame's handling would
                    // otherwise size the socket's task for its whole life.
                    let span = session.span.clone();
                    Box::pin(session.frame(frame, &shutdown).instrument(span)).await;
                }
                // After `stop` the call only finishes its work; the socket
                // closes once the last frame is written.
                if session.hung_up {
                    break Ending::Normal;
                }
            }
            Some(Ok(Message::Binary(_))) => session.reject(&ProtocolError::Binary),
            Some(Ok(Message::Close(_))) | None => break Ending::Broken,
            Some(Ok(_)) => {}
            Some(Err(e)) if too_large(&e) => {
                session.reject(&ProtocolError::TooLarge);
                break Ending::TooLarge;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "socket read failed");
                break Ending::Broken;
            }
        }
        if !started && session.call.is_some() {
            timer.as_mut().reset(last_frame + idle_timeout);
            arm_for_write(&mut timer, &writer);
        }
    };
    // Boxed: what a socket does once, at its end, does not size the task
    // every live socket keeps.
    let end = End {
        ending,
        write_failed,
        start_timeout,
        idle_timeout,
    };
    Box::pin(end.finish(session, &mut socket, &mut frames, &mut writer, timer)).await;
}

/// How the socket's reading loop ended.
struct End {
    ending: Ending,
    write_failed: bool,
    start_timeout: Duration,
    idle_timeout: Duration,
}

impl End {
    /// Counts and logs the ending, leaves the call for a resume when the
    /// socket dropped, writes the call's last frames and closes.
    async fn finish(
        self,
        session: Session<'_>,
        socket: &mut WebSocket,
        frames: &mut Frames,
        writer: &mut Writer,
        timer: Pin<&mut Sleep>,
    ) {
        let End {
            ending,
            write_failed,
            start_timeout,
            idle_timeout,
        } = self;
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
        // The call's last frames come once its work is done; each takes at
        // most WRITE_TIMEOUT to go out. A socket that failed a write, or had
        // one stuck, is not written to again but for the close.
        let closing = match ending {
            _ if write_failed => return,
            Ending::TooSlow => Ending::TooSlow,
            _ => match drain(socket, frames, writer, timer).await {
                Ending::Normal => ending,
                Ending::Broken => return,
                other => other,
            },
        };
        close(socket, closing).await;
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
    fn reject(&self, e: &ProtocolError) {
        metrics::protocol_error(e.code());
        self.out.push(Outbound::error(self.stream_sid.clone(), e));
    }

    /// The live call, or an error frame naming what came too early.
    fn live(&self, what: &'static str) -> Option<&CallHandle> {
        match &self.call {
            Some(call) if !self.hung_up => Some(call),
            Some(_) => None,
            None => {
                self.reject(&ProtocolError::NotStarted(what));
                None
            }
        }
    }

    async fn feed(&self, what: &'static str, input: Input) {
        if let Some(call) = self.live(what) {
            call.send(input).await;
        }
    }

    /// Reads one text frame. Media, 50 a second per call, is counted
    /// and nothing more, with no await and outside the call's span
    /// (entering a span consults the log filter's table of spans, which
    /// every call shares); any other frame is returned to be handled
    /// ([`Session::frame`]).
    fn read(&mut self, text: &str) -> Option<Result<Inbound, ProtocolError>> {
        match protocol::parse(text) {
            Ok(Inbound::Media) => {
                self.media_frames += 1;
                if self.media_frames % MEDIA_COUNTED_EVERY == 0 {
                    metrics::frames_received("media", MEDIA_COUNTED_EVERY);
                }
                None
            }
            Ok(frame) => {
                metrics::frame_received(metrics::inbound_event(&frame));
                Some(Ok(frame))
            }
            Err(e) => {
                metrics::frame_received("invalid");
                Some(Err(e))
            }
        }
    }

    /// Handles a frame other than media (run in the call's span).
    async fn frame(&mut self, frame: Result<Inbound, ProtocolError>, shutdown: &CancellationToken) {
        match frame {
            Ok(frame) => self.handle(frame, shutdown).await,
            Err(e) => self.reject(&e),
        }
    }

    async fn handle(&mut self, frame: Inbound, shutdown: &CancellationToken) {
        match frame {
            Inbound::Media => self.media_frames += 1,
            Inbound::Connected | Inbound::Dtmf { .. } => {}
            Inbound::Start(start) => {
                if self.call.is_some() {
                    return self.reject(&ProtocolError::AlreadyStarted);
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
                    if let Some(call) = self.live("transcript") {
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
