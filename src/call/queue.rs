//! A bounded queue that keeps no room for entries it does not hold.
//!
//! tokio's channels allocate a block of 32 entries when made and keep it
//! for their life. A call has two queues for as long as it lives (its
//! mailbox and its socket's outbound frames) and both are empty almost
//! all of that time, so that block is most of what an idle call costs.
//! Here each entry is allocated as it is sent (futures' unbounded channel)
//! and the bound is a count of permits (tokio's semaphore): a sender waits,
//! or is refused, once `capacity` entries are queued, exactly as with a
//! bounded tokio channel.
//!
//! A sender may also close the queue for every sender ([`Sender::close`]):
//! nothing more is queued, and the receiver learns of it at once
//! ([`Receiver::closed_by_sender`]), before it has taken what is queued.

use futures_channel::mpsc;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{Semaphore, TryAcquireError};

/// Why [`Sender::try_send`] did not queue a value.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// `capacity` values are queued.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// What both sides share: the permits, and whether a sender closed it.
struct Shared {
    room: Semaphore,
    closed_by_sender: AtomicBool,
}

/// The sending side; cloned freely.
pub struct Sender<T> {
    tx: mpsc::UnboundedSender<T>,
    room: Arc<Shared>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            room: self.room.clone(),
        }
    }
}

/// The receiving side. Dropping it wakes any sender waiting for room.
pub struct Receiver<T> {
    rx: mpsc::UnboundedReceiver<T>,
    room: Arc<Shared>,
}

/// A queue of at most `capacity` values.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::unbounded();
    let room = Arc::new(Shared {
        room: Semaphore::new(capacity),
        closed_by_sender: AtomicBool::new(false),
    });
    (
        Sender {
            tx,
            room: room.clone(),
        },
        Receiver { rx, room },
    )
}

impl<T> Sender<T> {
    /// Queues `value`, waiting for room. Gives it back once the receiver
    /// is gone.
    pub async fn send(&self, value: T) -> Result<(), T> {
        match self.room.room.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(value),
        }
        self.tx.unbounded_send(value).map_err(|e| {
            self.room.room.add_permits(1);
            e.into_inner()
        })
    }

    /// Queues `value` if there is room now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.room.room.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return Err(TrySendError::Full(value)),
            Err(TryAcquireError::Closed) => return Err(TrySendError::Closed(value)),
        }
        self.tx.unbounded_send(value).map_err(|e| {
            self.room.room.add_permits(1);
            TrySendError::Closed(e.into_inner())
        })
    }

    /// Closes the queue for every sender: nothing more is queued, senders
    /// waiting for room are refused, and the receiver is woken. What was
    /// queued stays to be taken.
    pub fn close(&self) {
        self.room.closed_by_sender.store(true, Ordering::Release);
        self.room.room.close();
        self.tx.close_channel();
    }

    /// Whether a sender closed the queue.
    pub fn closed_by_sender(&self) -> bool {
        self.room.closed_by_sender.load(Ordering::Acquire)
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` once every sender is gone and the queue is
    /// empty.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next value, polled: `Ready(None)` once every sender is gone
    /// (or one closed the queue) and the queue is empty.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let value = std::task::ready!(Pin::new(&mut self.rx).poll_next(cx));
        if value.is_some() {
            self.room.room.add_permits(1);
        }
        Poll::Ready(value)
    }

    /// The next value if one is queued now.
    pub fn try_recv(&mut self) -> Option<T> {
        let value = self.rx.try_recv().ok()?;
        self.room.room.add_permits(1);
        Some(value)
    }

    /// Whether a sender closed the queue ([`Sender::close`]), whatever is
    /// still queued.
    pub fn closed_by_sender(&self) -> bool {
        self.room.closed_by_sender.load(Ordering::Acquire)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.room.room.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_or_waits_until_a_value_is_taken() {
        let (tx, mut rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.send(2).await.unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(rx.recv().await, Some(1));
        waiting.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn senders_learn_the_receiver_is_gone_even_while_waiting() {
        let (tx, rx) = bounded(1);
        tx.send(1).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(2));
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn a_sender_may_close_the_queue_for_all_and_what_was_queued_stays() {
        let (tx, mut rx) = bounded(4);
        let other = tx.clone();
        tx.send(1).await.unwrap();
        assert!(!rx.closed_by_sender());
        other.close();
        assert!(rx.closed_by_sender() && tx.closed_by_sender());
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        assert_eq!(tx.send(3).await, Err(3));
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn the_receiver_ends_when_every_sender_is_gone() {
        let (tx, mut rx) = bounded(4);
        tx.send("a").await.unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some("a"));
        assert_eq!(rx.recv().await, None);
    }
}
