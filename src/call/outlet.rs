//! A socket's outbound queue, as the call and the socket task see it.
//!
//! Nothing waits to put a frame on it: a call never stalls behind a slow
//! socket. And nothing is silently left out of it either: a pipeline that
//! missed one `booking` status would act on a story with a hole in it. So
//! when the queue is full, the socket is marked stalled, takes no frame
//! from then on, and is closed as too slow; its call is kept for a resume
//! like any dropped socket's, and the resume tells the pipeline where the
//! call stands.

use super::queue::{self, TrySendError};
use crate::observe::metrics;
use crate::protocol::Outbound;

/// A frame on its way out, already written as JSON. The queue of a live
/// call stays allocated for the call's life, room for a block of frames
/// at once, so what it holds is kept small: the text and the frame's
/// event name (for the metrics), not the frame's largest variant.
#[derive(Debug)]
pub struct Queued {
    pub event: &'static str,
    pub text: Box<str>,
}

/// The sending side of one socket's outbound queue. Stalling it closes
/// the queue from the sending side, which the socket sees at once
/// ([`queue::Receiver::closed_by_sender`]).
#[derive(Clone)]
pub struct Outlet {
    tx: queue::Sender<Queued>,
}

impl Outlet {
    /// A queue of `capacity` frames and its receiving end.
    pub fn channel(capacity: usize) -> (Outlet, queue::Receiver<Queued>) {
        let (tx, rx) = queue::bounded(capacity);
        (Outlet { tx }, rx)
    }

    /// Queues `frame` without waiting. False when it was not queued: the
    /// socket is gone, or too slow (the queue was full, now or before),
    /// and will be closed.
    pub fn push(&self, frame: Outbound) -> bool {
        if self.is_stalled() {
            return false;
        }
        let queued = Queued {
            event: metrics::outbound_event(&frame),
            text: frame.to_json().into_boxed_str(),
        };
        match self.tx.try_send(queued) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!("outbound queue full: the socket is closed as too slow");
                self.stall();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Marks the socket too slow: nothing more is queued, and the socket
    /// task, woken, closes it.
    pub fn stall(&self) {
        self.tx.close();
    }

    /// Whether the socket has been found too slow.
    pub fn is_stalled(&self) -> bool {
        self.tx.closed_by_sender()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_stalls_the_socket_and_nothing_after_is_queued() {
        let (out, mut rx) = Outlet::channel(2);
        assert!(out.push(Outbound::hello()));
        assert!(out.push(Outbound::hello()));
        assert!(!out.is_stalled());
        assert!(!out.push(Outbound::hello()));
        assert!(out.is_stalled() && rx.closed_by_sender());
        // Room again, but the story has a hole: no more frames.
        assert!(rx.try_recv().is_some());
        assert!(!out.push(Outbound::hello()));
    }

    #[test]
    fn a_closed_queue_refuses_frames_without_stalling() {
        let (out, rx) = Outlet::channel(2);
        drop(rx);
        assert!(!out.push(Outbound::hello()));
        assert!(!out.is_stalled());
    }
}
