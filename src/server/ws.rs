//! `GET /v1/calls`: one WebSocket per call, Twilio frames in, callbook frames
//! out. The socket task parses frames and feeds the call actor; a separate
//! writer task drains the actor's outbound queue.

use super::{authorized, unauthorized, AppState};
use crate::call::{self, CallHandle};
use crate::dialog::Input;
use crate::protocol::{
    self, BookingAction, Inbound, Outbound, ProtocolError, SyncReply, MAX_FRAME_BYTES,
};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// Frames queued for one socket's writer.
const OUTBOUND_QUEUE: usize = 256;

/// tungstenite's default read buffer is 128 KiB per connection and is zeroed
/// on every read; Twilio frames are ~330 bytes.
const READ_BUFFER: usize = 4096;

pub(super) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !authorized(&headers, &state.auth_token) {
        return unauthorized();
    }
    let tracker = state.deps.tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| tracker.track_future(serve_socket(socket, state)))
}

async fn serve_socket(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Outbound>(OUTBOUND_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if sink
                .send(Message::Text(frame.to_json().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let _ = out.send(Outbound::hello()).await;
    let mut session = Session {
        state: &state,
        out: out.clone(),
        call: None,
        stream_sid: None,
        media_frames: 0,
        hung_up: false,
    };
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = state.calls_cancel.cancelled() => break,
        };
        match msg {
            Some(Ok(Message::Text(text))) => {
                session.frame(&text).await;
                // After `stop` the call only finishes its work; the socket
                // closes once the last frame is written.
                if session.hung_up {
                    break;
                }
            }
            Some(Ok(Message::Binary(_))) => session.reject(&ProtocolError::Binary).await,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "socket read failed");
                break;
            }
        }
    }
    session.hang_up().await;
    tracing::debug!(media_frames = session.media_frames, "socket closed");
    drop(session);
    drop(out);
    let _ = writer.await;
}

/// One socket's state between frames.
struct Session<'a> {
    state: &'a AppState,
    out: mpsc::Sender<Outbound>,
    call: Option<CallHandle>,
    stream_sid: Option<String>,
    media_frames: u64,
    hung_up: bool,
}

impl Session<'_> {
    async fn reject(&self, e: &ProtocolError) {
        let _ = self
            .out
            .send(Outbound::error(self.stream_sid.clone(), e))
            .await;
    }

    async fn feed(&self, what: &'static str, input: Input) {
        match &self.call {
            Some(call) if !self.hung_up => {
                call.send(input).await;
            }
            Some(_) => {}
            None => self.reject(&ProtocolError::NotStarted(what)).await,
        }
    }

    async fn hang_up(&mut self) {
        if !self.hung_up {
            if let Some(call) = &self.call {
                call.send(Input::Hangup).await;
            }
            self.hung_up = true;
        }
    }

    async fn frame(&mut self, text: &str) {
        let frame = match protocol::parse(text) {
            Ok(f) => f,
            Err(e) => return self.reject(&e).await,
        };
        match frame {
            Inbound::Media => self.media_frames += 1,
            Inbound::Connected | Inbound::Mark { .. } | Inbound::Dtmf { .. } => {}
            Inbound::Start(start) => {
                if self.call.is_some() {
                    return self.reject(&ProtocolError::AlreadyStarted).await;
                }
                self.stream_sid = Some(start.stream_sid.clone());
                let cancel = self.state.calls_cancel.child_token();
                self.call = Some(call::spawn(
                    self.state.deps.clone(),
                    start,
                    self.out.clone(),
                    cancel,
                ));
            }
            Inbound::Stop => self.hang_up().await,
            Inbound::Transcript(t) => {
                if t.is_final {
                    self.feed("transcript", Input::Heard(t.text)).await;
                }
            }
            Inbound::Booking(BookingAction::Offer) => self.feed("booking", Input::Offer).await,
            Inbound::Booking(BookingAction::Cancel) => self.feed("booking", Input::Cancel).await,
            Inbound::Sync { id } => match &self.call {
                Some(call) if !self.hung_up && call.sync(id.clone()).await => {}
                _ => {
                    let _ = self
                        .out
                        .send(Outbound::Sync {
                            sync: SyncReply { id },
                        })
                        .await;
                }
            },
        }
    }
}
