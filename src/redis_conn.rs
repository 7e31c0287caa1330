//! One way to reach Redis, for the ledger, the store, call resumes and
//! booking outcomes: a connection that reconnects on its own, with
//! timeouts that suit a caller waiting on the answer, to a single node or
//! to a Redis Cluster, chosen by the URL.
//!
//! - `redis://[user:password@]host:port[/db]`: one node (or whatever
//!   address follows the primary, such as a Sentinel-aware proxy).
//! - `redis+cluster://[user:password@]host:port,host:port,…`: a Redis
//!   Cluster, found from any of the listed nodes (one is enough; more
//!   survive one being down at start). The client learns the slot map,
//!   follows `MOVED`/`ASK` and a failover's new primary by itself.
//!
//! Every multi-key command and script callbook sends names keys of one
//! hash slot (the ledger's keys of one calendar share a `{…}` tag; the
//! store's and the outcomes' writes touch one key each), so each runs on
//! one node, atomically, in a Cluster as on a single node.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// How long one Redis call may take before it fails (a live caller is
/// waiting), and how long connecting may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// In a Cluster, how long one call may take in all, redirections and
/// retries included: long enough to ride out a failover's moved slot
/// (the client asks the new primary), short enough for a live caller.
pub const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Retries of one call in a Cluster (after a moved slot, a node that went
/// away or a primary that is being replaced), and the waits between them.
const CLUSTER_RETRIES: u32 = 5;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 50;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

/// The scheme that names a Redis Cluster.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A connection to Redis, a single node or a Cluster, that every Redis
/// user holds: cheap to clone (clones share the connection), reconnecting
/// by itself.
#[derive(Clone)]
pub enum RedisConn {
    /// One node.
    Single(ConnectionManager),
    /// A Redis Cluster: commands go to the primary owning their keys' slot.
    Cluster(ClusterConnection),
}

/// Commands that only read: sent again, once, when the connection dropped
/// under them (the reply was lost with it), since reading twice changes
/// nothing. Writes are never repeated here: the callers that may repeat
/// one (the ledger's scripts, idempotent by claim id) do so themselves.
const READS: [&[u8]; 14] = [
    b"GET",
    b"MGET",
    b"HGET",
    b"HMGET",
    b"HGETALL",
    b"EXISTS",
    b"SMEMBERS",
    b"SCARD",
    b"ZRANGE",
    b"ZRANGEBYSCORE",
    b"ZCARD",
    b"SCAN",
    b"TIME",
    b"PING",
];

fn reads_only(cmd: &Cmd) -> bool {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => READS.iter().any(|r| name.eq_ignore_ascii_case(r)),
        _ => false,
    }
}

impl RedisConn {
    fn send<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.send(cmd).await {
                // Not after a timeout: the caller would wait twice as long.
                Err(e) if e.is_connection_dropped() && !e.is_timeout() && reads_only(cmd) => {
                    tracing::debug!(error = %e, "a read lost its connection; reading again");
                    self.send(cmd).await
                }
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisConn {
    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob), walked `batch`
    /// keys per step so no call blocks the server. In a Cluster, every
    /// primary is walked: a plain `SCAN` would see one node's keys only.
    /// Sorted, without duplicates.
    pub async fn scan_match(&self, pattern: &str, batch: usize) -> RedisResult<Vec<String>> {
        let mut keys = Vec::new();
        match self {
            RedisConn::Single(_) => {
                scan_node(&mut self.clone(), None, pattern, batch, &mut keys).await?;
            }
            RedisConn::Cluster(c) => {
                let mut c = c.clone();
                for slot in primaries(&mut c).await? {
                    let route = Some(RoutingInfo::SingleNode(
                        SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master)),
                    ));
                    scan_node(&mut self.clone(), route, pattern, batch, &mut keys).await?;
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// One slot of each primary (the first of its ranges), from `CLUSTER
/// SLOTS`: routing a command by that slot reaches that primary.
async fn primaries(conn: &mut ClusterConnection) -> RedisResult<Vec<u16>> {
    let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut seen: Vec<Value> = Vec::new();
    let mut slots = Vec::new();
    for range in ranges {
        let (Some(start), Some(primary)) = (range.first(), range.get(2)) else {
            continue;
        };
        let start: u16 = redis::from_redis_value_ref(start)?;
        // The primary's address and id, so a primary serving several
        // ranges is walked once.
        if !seen.contains(primary) {
            seen.push(primary.clone());
            slots.push(start);
        }
    }
    Ok(slots)
}

/// Walks one node with `SCAN`, `route` naming it in a Cluster.
async fn scan_node(
    conn: &mut RedisConn,
    route: Option<RoutingInfo>,
    pattern: &str,
    batch: usize,
    keys: &mut Vec<String>,
) -> RedisResult<()> {
    let mut cursor: u64 = 0;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(batch);
        let reply = match (&mut *conn, &route) {
            (RedisConn::Cluster(c), Some(route)) => c.route_command(cmd, route.clone()).await?,
            _ => cmd.query_async(conn).await?,
        };
        let (next, found): (u64, Vec<String>) = redis::from_redis_value(reply)?;
        keys.extend(found);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Connects to `url`: `redis://host:port/db` for one node,
/// `redis+cluster://host:port,host:port` for a Cluster (see the module
/// docs).
pub async fn connect(url: &str) -> RedisResult<RedisConn> {
    if let Some(nodes) = cluster_nodes(url)? {
        let client = ClusterClientBuilder::new(nodes)
            .connection_timeout(RESPONSE_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT))
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
            .build()?;
        return Ok(RedisConn::Cluster(client.get_async_connection().await?));
    }
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(2);
    Ok(RedisConn::Single(
        ConnectionManager::new_with_config(client, config).await?,
    ))
}

fn invalid(detail: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, detail))
}

/// The nodes of a `redis+cluster://` URL as single-node URLs, each with
/// the URL's credentials; `None` for any other URL. A Cluster has only
/// database 0, so a path naming another is refused.
pub fn cluster_nodes(url: &str) -> RedisResult<Option<Vec<String>>> {
    let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
        return Ok(None);
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(path, "" | "0") {
        return Err(invalid(
            "a Redis Cluster has only database 0: leave the path out of a redis+cluster:// URL",
        ));
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((c, h)) => (format!("{c}@"), h),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{credentials}{h}/"))
        .collect();
    if nodes.is_empty() {
        return Err(invalid(
            "a redis+cluster:// URL names at least one node: redis+cluster://host:port,host:port",
        ));
    }
    Ok(Some(nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_each_node_with_the_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001").unwrap(),
            Some(vec![
                "redis://u:p@10.0.0.1:7000/".to_string(),
                "redis://u:p@10.0.0.2:7001/".to_string()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://h:7000/").unwrap(),
            Some(vec!["redis://h:7000/".to_string()])
        );
    }

    #[test]
    fn a_single_node_url_is_not_a_cluster() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/2").unwrap(), None);
    }

    #[test]
    fn a_cluster_url_without_nodes_or_with_a_database_is_refused() {
        assert!(cluster_nodes("redis+cluster://").is_err());
        assert!(cluster_nodes("redis+cluster://,/").is_err());
        assert!(cluster_nodes("redis+cluster://h:7000/3").is_err());
    }
}
