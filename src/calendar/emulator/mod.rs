//! Local stand-ins for the calendar providers, served over real HTTP on
//! loopback. Tests, replays and the demo run against them; they answer with
//! the providers' own paths, JSON and error shapes.

pub mod google;
pub mod microsoft;

pub use google::{AccountSpec, GoogleEmulator, StoredEvent};
pub use microsoft::{MicrosoftEmulator, MsAccountSpec};

use axum::Router;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Serves `router` on a free loopback port until `shutdown` fires.
pub async fn serve_local(
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(addr)
}
