//! A loopback TCP proxy in front of Redis that loses replies on demand:
//! the command reaches Redis and runs, its answer never comes back, and
//! the client's connection is closed, as when a network path dies after
//! the request went through. What a client must survive by retrying
//! idempotently.

use callbook::harness::RedisServer;
use callbook::ledger::{Ledger, LedgerError, RedisLedger};
use callbook::schedule::Interval;
use chrono::{DateTime, Duration, Utc};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct LossyProxy {
    pub url: String,
    /// Replies still to lose.
    armed: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    /// A proxy to the Redis at `upstream_url` (`redis://host:port`). Each
    /// client connection gets its own upstream connection, made when the
    /// client connects, so a restarted Redis is reached again.
    pub async fn start(upstream_url: &str) -> LossyProxy {
        let upstream: SocketAddr = upstream_url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .parse()
            .expect("a redis://host:port url");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicUsize::new(0));
        let lost = Arc::new(AtomicUsize::new(0));
        let task = {
            let (armed, lost) = (armed.clone(), lost.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (armed, lost) = (armed.clone(), lost.clone());
                    tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(upstream).await {
                            pipe(client, server, armed, lost).await;
                        }
                    });
                }
            })
        };
        LossyProxy {
            url,
            armed,
            lost,
            task,
        }
    }

    /// Loses the next `n` replies, whichever connections carry them.
    pub fn lose_replies(&self, n: usize) {
        self.armed.fetch_add(n, Ordering::SeqCst);
    }

    /// Replies lost so far.
    pub fn lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies requests up and replies down until either side closes or a
/// reply is lost (then both connections close).
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let lose = armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| a.checked_sub(1))
                .is_ok();
            if lose {
                lost.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Runs a ledger step again until the connection that lost its reply is
/// back (at most about a second).
async fn once_reconnected<F, Fut>(step: F) -> Result<(), LedgerError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), LedgerError>>,
{
    let mut result = step().await;
    for _ in 0..20 {
        if !matches!(result, Err(LedgerError::Unavailable(_))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        result = step().await;
    }
    result
}

fn t(min: i64) -> DateTime<Utc> {
    "2031-03-04T15:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(min)
}

/// Every ledger step whose reply is lost, tried again through a fresh
/// connection, ends as if it had been answered the first time: the hold is
/// the caller's own, a commit stays committed, and a rival still loses.
#[tokio::test]
async fn ledger_steps_whose_replies_are_lost_are_the_same_step_when_tried_again() {
    let server = RedisServer::start().await.unwrap();
    let proxy = LossyProxy::start(&server.url).await;
    let direct = RedisLedger::connect(&server.url, "callbook:lossy:")
        .await
        .unwrap();
    let lossy = RedisLedger::connect(&proxy.url, "callbook:lossy:")
        .await
        .unwrap();
    let cal = "google:lossy@callbook.example";
    let slot = Interval::new(t(0), t(30));
    let now = callbook::clock::Clock::System.now();
    direct.rebuild(cal, &[], now).await.unwrap();
    // Each script once through the proxy, so that the reply lost below is
    // the step's own and not a script load's.
    let warm = "google:warm@callbook.example";
    direct.rebuild(warm, &[], now).await.unwrap();
    lossy.hold(warm, "w", slot, None, now).await.unwrap();
    lossy.commit_event(warm, "w", None, now).await.unwrap();

    // A hold whose answer is lost: it ran on Redis.
    proxy.lose_replies(1);
    let first = lossy.hold(cal, "claim-a", slot, None, now).await;
    assert!(first.is_err(), "the reply was lost: {first:?}");
    assert_eq!(proxy.lost(), 1);
    let seen = direct.claims(cal, slot, now).await.unwrap();
    assert_eq!(seen.len(), 1, "the hold ran although its reply was lost");
    // Tried again (on a new connection), it is the same hold.
    let again = once_reconnected(|| lossy.hold(cal, "claim-a", slot, None, now)).await;
    assert_eq!(again, Ok(()));
    // A rival still loses to it.
    assert!(matches!(
        direct.hold(cal, "claim-b", slot, None, now).await,
        Err(LedgerError::Taken { .. })
    ));
    // A commit whose answer is lost, tried again, is committed once.
    proxy.lose_replies(1);
    assert!(lossy
        .commit_event(cal, "claim-a", Some("ev-1"), now)
        .await
        .is_err());
    let again = once_reconnected(|| lossy.commit_event(cal, "claim-a", Some("ev-1"), now)).await;
    assert_eq!(again, Ok(()));
    let seen = direct.claims(cal, slot, now).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].committed && seen[0].event_id.as_deref() == Some("ev-1"));
}

/// A read whose reply is lost is read again on a fresh connection, so a
/// call that resumes on another instance finds its saved state (before,
/// one lost reply made it start afresh).
#[tokio::test]
async fn a_read_whose_reply_is_lost_is_read_again() {
    use callbook::call::resume::{CallStates, RedisCallStates, Saved};
    let server = RedisServer::start().await.unwrap();
    let proxy = LossyProxy::start(&server.url).await;
    let states = RedisCallStates::connect(&proxy.url, "callbook:lossy:call:")
        .await
        .unwrap();
    let saved = Saved {
        generation: 3,
        settled: true,
        memo: callbook::dialog::Dialog::new().memo(),
    };
    let ttl = std::time::Duration::from_secs(60);
    states.save("CA-lossy", &saved, ttl).await.unwrap();
    proxy.lose_replies(1);
    let loaded = states.load("CA-lossy").await.unwrap();
    assert_eq!(proxy.lost(), 1, "the reply was lost");
    assert_eq!(loaded.map(|s| s.generation), Some(3));
}
