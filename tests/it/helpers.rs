use callbook::clock::Clock;
use callbook::harness::{frames, own_redis_answers, spare_port, CallClient, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Tuesday 2026-12-01 10:00 New York.
pub fn tuesday_morning() -> DateTime<Utc> {
    "2026-12-01T15:00:00Z".parse().unwrap()
}

/// The embedded default config on a virtual clock.
pub async fn spawn_app() -> Harness {
    let prov = Provisioning::parse(DEFAULT).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), |_| {})
        .await
        .unwrap()
}

/// Starts a call on the default campaign and returns after the start settled.
pub async fn start_call(app: &Harness, sid: &str) -> CallClient {
    let mut c = app.connect().await.unwrap();
    c.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": "demo", "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    c.send(&frames::start(sid, params)).await.unwrap();
    c.settle().await.unwrap();
    c
}

/// Drives a call up to the first proposal; returns every frame on the way.
pub async fn to_proposal(c: &mut CallClient) -> Vec<Value> {
    c.send(&frames::offer()).await.unwrap();
    let mut seen = c.settle().await.unwrap();
    for text in ["yes", "jane at example dot com", "yes"] {
        c.send(&frames::transcript(text)).await.unwrap();
        seen.extend(c.settle().await.unwrap());
    }
    seen
}

pub fn of_kind<'a>(frames: &'a [Value], event: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["event"] == event).collect()
}

pub fn http() -> reqwest::Client {
    callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT).unwrap()
}

pub async fn admin(
    app: &Harness,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http()
        .request(method, format!("http://{}{path}", app.addr))
        .bearer_auth(&app.admin_token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Runs the whole consent dance like an owner's browser: starts it on
/// `app` with `start` as the connect's body (whom it is for), follows the
/// provider's consent screen, and lands on the callback of `callback_on`
/// (another instance behind the same load balancer, or `app` itself).
pub async fn connect_via(
    app: &Harness,
    provider: &str,
    callback_on: &Harness,
    start: Option<Value>,
) -> (StatusCode, String) {
    let (status, page, _) = connect_as(app, provider, callback_on, start, None).await;
    (status, page)
}

/// [`connect_via`], with the person at the browser picking `choose` on the
/// provider's account chooser instead of the account the connect
/// pre-selected. Also returns the connect's answer.
pub async fn connect_as(
    app: &Harness,
    provider: &str,
    callback_on: &Harness,
    start: Option<Value>,
    choose: Option<&str>,
) -> (StatusCode, String, Value) {
    let (status, started) = admin(
        app,
        reqwest::Method::POST,
        &format!("/v1/users/alex/connections/{provider}"),
        start,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut url = reqwest::Url::parse(started["authorize_url"].as_str().unwrap()).unwrap();
    if let Some(account) = choose {
        url.query_pairs_mut()
            .append_pair(callbook::calendar::emulator::CHOOSE_ACCOUNT, account);
    }
    let consent = http().get(url).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::FOUND);
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(&format!("http://{}/v1/oauth/callback?", app.addr)),
        "{back}"
    );
    let back = back.replace(&app.addr.to_string(), &callback_on.addr.to_string());
    let done = http().get(&back).send().await.unwrap();
    (done.status(), done.text().await.unwrap(), started)
}

/// Books a meeting on a fresh call and returns the booking frame.
pub async fn book(app: &Harness, sid: &str) -> Value {
    let mut c = start_call(app, sid).await;
    to_proposal(&mut c).await;
    c.send(&frames::transcript("yes")).await.unwrap();
    let got = c.settle().await.unwrap();
    got.into_iter()
        .find(|f| f["event"] == "booking")
        .expect("a booking frame")
}

/// The default config with its campaign renamed `campaign`, so a test's
/// metrics and diagnostics are its own even with other tests running in
/// the same process.
pub async fn spawn_campaign(campaign: &str) -> Harness {
    spawn_campaign_with(campaign, |_| {}).await
}

/// As [`spawn_campaign`], seeding the emulators first.
pub async fn spawn_campaign_with(
    campaign: &str,
    seed: impl FnOnce(&callbook::harness::Emulators),
) -> Harness {
    let prov = Provisioning::parse(&campaign_config(campaign)).unwrap();
    Harness::start(prov, Clock::manual(tuesday_morning()), seed)
        .await
        .unwrap()
}

/// The default provisioning file with its campaign renamed.
pub fn campaign_config(campaign: &str) -> String {
    DEFAULT.replace("\"id\": \"demo\"", &format!("\"id\": \"{campaign}\""))
}

/// Starts a call on `campaign`, from `phone`, and returns after the start
/// settled.
pub async fn start_call_on(app: &Harness, sid: &str, campaign: &str) -> CallClient {
    let mut c = app.connect().await.unwrap();
    c.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": campaign, "recipient_phone": "+14155550123", "recipient_first_name": "Jane"});
    c.send(&frames::start(sid, params)).await.unwrap();
    c.settle().await.unwrap();
    c
}

/// The server's `/metrics` page.
pub async fn scrape(app: &Harness) -> String {
    http()
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `name` whose labels include every pair of
/// `labels` (summed when several match; 0 when none does).
pub fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// A loopback address with a port nothing listens on now, for a process
/// the test starts.
pub fn free_listen_addr() -> String {
    format!("127.0.0.1:{}", spare_port())
}

/// A real Redis Cluster on free loopback ports: `masters` primaries, each
/// with `replicas` replicas, created with `redis-cli --cluster create`,
/// nothing on disk; every node killed when dropped.
pub struct RedisCluster {
    /// `redis+cluster://` naming every primary.
    pub url: String,
    nodes: Vec<(u16, std::process::Child)>,
    dir: std::path::PathBuf,
}

/// How long a cluster may take to form, or a failover to finish, before
/// the test gives up: generous, so a slow machine waits rather than fails.
const CLUSTER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl RedisCluster {
    pub async fn start(masters: usize, replicas: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("callbook-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            url: String::new(),
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..masters * (1 + replicas) {
            let node = cluster.spawn_node().await;
            cluster.nodes.push(node);
        }
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running redis-cli");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in cluster.ports() {
            cluster
                .until(port, "CLUSTER INFO", |r| r.contains("cluster_state:ok"))
                .await
                .unwrap_or_else(|| panic!("node {port} never saw the cluster ok"));
        }
        let primaries = cluster.primaries().await;
        cluster.url = format!(
            "redis+cluster://{}",
            primaries
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        cluster
    }

    /// Starts one node on spare ports and waits until it (not another
    /// test's server that took its port first) answers; on other ports
    /// when it could not bind its own.
    async fn spawn_node(&self) -> (u16, std::process::Child) {
        for _ in 0..8 {
            // The cluster bus gets a port of its own (not port + 10000,
            // which may not exist).
            let (port, bus) = (spare_port(), spare_port());
            let mut child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .args(["--logfile", &format!("node-{port}.log")])
                // Nodes share the directory: a replica loads the snapshot
                // of its full sync from this file, and a shared one could
                // be another replica's.
                .args(["--dbfilename", &format!("dump-{port}.rdb")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("starting redis-server (apt-get install -y redis-server)");
            match own_redis_answers(&mut child, port, CLUSTER_PATIENCE).await {
                Ok(()) => return (port, child),
                Err(e) => {
                    eprintln!("{e}; another port");
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("no free ports for a cluster node");
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(p, _)| *p).collect()
    }

    /// Sends `cmd` (space-separated words) to the node on `port`.
    pub async fn on(&self, port: u16, cmd: &str) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        // A loaded machine can take longer than the default half second.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(10)));
        let mut c = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut words = cmd.split(' ');
        let mut command = redis::cmd(words.next().unwrap_or_default());
        for w in words {
            command.arg(w);
        }
        command.query_async(&mut c).await
    }

    /// Asks `port` `cmd` until its answer, as text, passes `ok`.
    async fn until(&self, port: u16, cmd: &str, ok: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = tokio::time::Instant::now() + CLUSTER_PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Ok(v) = self.on(port, cmd).await {
                let text = text(&v);
                if ok(&text) {
                    return Some(text);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    /// The node table as one node sees it: port, flags, primary id (or
    /// `-`), id, slot ranges, per line of `CLUSTER NODES`.
    async fn table(&self, port: u16) -> Vec<(u16, String, String, String, Vec<String>)> {
        let v = self.on(port, "CLUSTER NODES").await.unwrap();
        text(&v)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let addr = f.get(1)?.split('@').next()?;
                let port: u16 = addr.rsplit(':').next()?.parse().ok()?;
                Some((
                    port,
                    f.get(2)?.to_string(),
                    f.get(3)?.to_string(),
                    f.first()?.to_string(),
                    f.iter().skip(8).map(|s| s.to_string()).collect(),
                ))
            })
            .collect()
    }

    /// The ports of the primaries that serve slots.
    pub async fn primaries(&self) -> Vec<u16> {
        let mut out: Vec<u16> = self
            .table(self.ports()[0])
            .await
            .into_iter()
            .filter(|(_, flags, _, _, slots)| flags.contains("master") && !slots.is_empty())
            .map(|(p, ..)| p)
            .collect();
        out.sort();
        out
    }

    /// The port of the primary that owns `key`'s slot.
    pub async fn owner_of(&self, key: &str) -> u16 {
        let any = self.ports()[0];
        let slot: i64 = redis::from_redis_value(
            self.on(any, &format!("CLUSTER KEYSLOT {key}"))
                .await
                .unwrap(),
        )
        .unwrap();
        for (port, flags, _, _, ranges) in self.table(any).await {
            if !flags.contains("master") {
                continue;
            }
            for r in ranges {
                let (a, b) = r.split_once('-').unwrap_or((&r, &r));
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    if (a..=b).contains(&slot) {
                        return port;
                    }
                }
            }
        }
        panic!("no primary owns slot {slot}");
    }

    /// Every key matching `pattern` on each primary, by port (a test's look
    /// at where keys landed; `KEYS` is fine on a test's few keys).
    pub async fn keys_by_primary(&self, pattern: &str) -> Vec<(u16, Vec<String>)> {
        let mut out = Vec::new();
        for port in self.primaries().await {
            let v = self.on(port, &format!("KEYS {pattern}")).await.unwrap();
            out.push((port, redis::from_redis_value(v).unwrap()));
        }
        out
    }

    /// Promotes a replica of the primary on `primary` with `CLUSTER
    /// FAILOVER`, writes to the primary paused until every node routes
    /// the slots to the replica (which first catches up, so nothing
    /// acknowledged is lost), and returns then. The new primary's port.
    pub async fn fail_over(&self, primary: u16) -> u16 {
        let table = self.table(primary).await;
        let id = table
            .iter()
            .find(|(p, ..)| *p == primary)
            .map(|(_, _, _, id, _)| id.clone())
            .unwrap();
        // Each node's own line says whose replica it is (the others learn
        // it by gossip, a moment later).
        let deadline = tokio::time::Instant::now() + CLUSTER_PATIENCE;
        let replica = 'found: loop {
            for port in self.ports() {
                let own = self.table(port).await;
                if own.iter().any(|(p, flags, of, ..)| {
                    *p == port && flags.contains("myself,slave") && *of == id
                }) {
                    break 'found port;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the primary has no replica"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        self.until(replica, "INFO replication", |r| {
            r.contains("master_link_status:up")
        })
        .await
        .expect("the replica caught up with its primary");
        // The server pauses the primary's writes for a manual failover,
        // but for 5 s at most: on a loaded machine the replica can win its
        // election after that, and the old primary takes writes the new
        // one never gets (a lossy failover, which the ledger's lost-writes
        // tests cover). Writes wait here until every node routes to the
        // new primary; then they are redirected to it.
        // Longer than every wait below together; unpaused at the end.
        let pause = CLUSTER_PATIENCE.as_millis() * 10;
        self.on(primary, &format!("CLIENT PAUSE {pause} WRITE"))
            .await
            .unwrap();
        // A manual failover that timed out is asked for again.
        let deadline = tokio::time::Instant::now() + CLUSTER_PATIENCE;
        loop {
            // Refused only if the replica was promoted just now.
            let _ = self.on(replica, "CLUSTER FAILOVER").await;
            let settle = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut promoted = false;
            while !promoted && tokio::time::Instant::now() < settle {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                promoted = self
                    .on(replica, "ROLE")
                    .await
                    .is_ok_and(|r| text(&r).starts_with("master"));
            }
            if promoted {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the replica never became primary"
            );
        }
        for port in self.ports() {
            let deadline = tokio::time::Instant::now() + CLUSTER_PATIENCE;
            loop {
                let t = self.table(port).await;
                let promoted = t
                    .iter()
                    .any(|(p, flags, ..)| *p == replica && flags.contains("master"));
                let demoted = t
                    .iter()
                    .any(|(p, flags, ..)| *p == primary && flags.contains("slave"));
                if promoted && demoted {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "node {port} never saw the failover"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        self.on(primary, "CLIENT UNPAUSE").await.unwrap();
        replica
    }
}

/// A reply as text: bulk and simple strings as they are, arrays joined by
/// spaces.
fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test shows what each node did (syncs, elections,
        // failovers), as the nodes logged it.
        if std::thread::panicking() {
            for port in self.ports() {
                let log = std::fs::read_to_string(self.dir.join(format!("node-{port}.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                eprintln!("--- redis node {port} ---\n{}", tail.join("\n"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
