//! One way to reach Redis, for the ledger and the store: a connection that
//! reconnects on its own, with timeouts that suit a caller waiting on the
//! answer.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long one Redis call may take before it fails (a live caller is
/// waiting), and how long connecting may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to `url` (`redis://host:port/db`).
pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, config).await
}
