use callbook::clock::Clock;
use callbook::harness::{frames, CallClient, Harness};
use callbook::store::provisioning::{Provisioning, DEFAULT};
use chrono::{DateTime, Utc};
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

/// A real `redis-server` on a free loopback port, with nothing on disk;
/// killed when dropped.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
    dir: std::path::PathBuf,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("callbook-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server)");
        // Owned from here on: dropped (killed and reaped) on every path.
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            dir,
        };
        let client = redis::Client::open(server.url.as_str()).unwrap();
        for _ in 0..250 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return server;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {port}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
