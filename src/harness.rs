//! The whole service in-process: the Google emulator and callbook's server,
//! each on a loopback port, driven over a real WebSocket.
//!
//! Replays, the demo and the integration tests all use this, so what they
//! exercise is exactly what a pipeline talks to. (Tooling: errors are
//! `anyhow`, as in `main`.)

use crate::calendar::emulator::{
    serve_local, AccountSpec, GoogleEmulator, MicrosoftEmulator, MsAccountSpec,
};
use crate::calendar::google::GoogleEndpoints;
use crate::calendar::microsoft::MicrosoftEndpoints;
use crate::calendar::oauth::OAuthClient;
use crate::clock::Clock;
use crate::ledger::{Ledger, MemoryLedger};
use crate::outcomes::{MemoryOutcomes, OutcomeStore, WebhookConfig};
use crate::store::provisioning::Provisioning;
use crate::store::{Provider, Store};
use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// OAuth client credentials the emulator accepts.
pub const EMULATOR_CLIENT_ID: &str = "callbook-local.apps.googleusercontent.com";
pub const EMULATOR_CLIENT_SECRET: &str = "callbook-local-secret";

/// How long a client waits for the server to settle before giving up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Both provider emulators. Clones share state, so two harnesses given
/// clones of one `Emulators` see the same calendars.
#[derive(Clone)]
pub struct Emulators {
    pub google: GoogleEmulator,
    pub microsoft: MicrosoftEmulator,
}

/// A running callbook plus its provider emulators.
pub struct Harness {
    pub addr: SocketAddr,
    pub token: String,
    /// Bearer token for the admin API.
    pub admin_token: String,
    pub google: GoogleEmulator,
    pub microsoft: MicrosoftEmulator,
    pub clock: Clock,
    pub ledger: Arc<dyn Ledger>,
    pub store: Arc<dyn Store>,
    /// Where this server keeps booking outcomes.
    pub outcomes: Arc<dyn OutcomeStore>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), crate::app::ServeError>>,
}

/// What a harness may have beyond the defaults: a webhook to send outcomes
/// to (with a short backoff, in tests), and an outcome store shared with
/// other instances (Redis). By default outcomes stay in process and no
/// webhook is sent.
#[derive(Default)]
pub struct Options {
    pub webhook: Option<WebhookConfig>,
    pub outcomes: Option<Arc<dyn OutcomeStore>>,
    /// Where dropped calls wait for a resume; shared, a reconnect may land
    /// on another instance. In process when `None`.
    pub states: Option<Arc<dyn crate::call::resume::CallStates>>,
    /// How long a resume waits for a dropped call's work to settle.
    pub settle_wait: Option<Duration>,
    /// How often the reconciler runs (60 s when `None`).
    pub reconcile_period: Option<Duration>,
    /// `/metrics` asks for the admin token.
    pub metrics_auth: bool,
    /// Connection caps and timeouts; the defaults when `None`.
    pub limits: Option<crate::server::limits::Limits>,
    /// The admin token; a fresh one when `None`. Instances behind one load
    /// balancer share it (it keys the settings links they all accept).
    pub admin_token: Option<String>,
    /// How long one provider request may take; the server's default
    /// when `None`.
    pub provider_timeout: Option<Duration>,
}

/// Endpoints for a Google emulator listening at `addr`.
pub fn emulator_endpoints(addr: SocketAddr) -> GoogleEndpoints {
    GoogleEndpoints {
        api_base: format!("http://{addr}/calendar/v3"),
        oauth: OAuthClient {
            token_url: format!("http://{addr}/token"),
            client_id: EMULATOR_CLIENT_ID.into(),
            client_secret: SecretString::from(EMULATOR_CLIENT_SECRET),
        },
        authorize_url: format!("http://{addr}/o/oauth2/v2/auth"),
        revoke_url: format!("http://{addr}/revoke"),
    }
}

/// Endpoints for a Microsoft emulator listening at `addr`.
pub fn ms_emulator_endpoints(addr: SocketAddr) -> MicrosoftEndpoints {
    MicrosoftEndpoints {
        graph_base: format!("http://{addr}/v1.0"),
        oauth: OAuthClient {
            token_url: format!("http://{addr}/common/oauth2/v2.0/token"),
            client_id: EMULATOR_CLIENT_ID.into(),
            client_secret: SecretString::from(EMULATOR_CLIENT_SECRET),
        },
        authority: format!("http://{addr}"),
    }
}

/// `serve`'s provider flags pointing at a `callbook emulator`, from the
/// JSON line it prints first (`None` when a flag is missing).
pub fn serve_args_for_emulator(flags: &serde_json::Value) -> Option<Vec<String>> {
    const NAMES: [&str; 11] = [
        "google_api_base",
        "google_token_url",
        "google_authorize_url",
        "google_revoke_url",
        "google_client_id",
        "google_client_secret",
        "microsoft_graph_base",
        "microsoft_token_url",
        "microsoft_authority",
        "microsoft_client_id",
        "microsoft_client_secret",
    ];
    let mut args = Vec::with_capacity(NAMES.len() * 2);
    for name in NAMES {
        args.push(format!("--{}", name.replace('_', "-")));
        args.push(flags[name].as_str()?.to_string());
    }
    Some(args)
}

/// Creates an emulator account for every connection in the file, with the
/// calendar zone of the user's first booking campaign (Microsoft accounts
/// start as work or school accounts, with Teams).
pub fn seed_emulators(google: &GoogleEmulator, microsoft: &MicrosoftEmulator, p: &Provisioning) {
    for u in &p.users {
        let Some((conn, token)) = u
            .connection
            .as_ref()
            .and_then(|c| c.refresh_token.as_ref().map(|t| (c, t)))
        else {
            continue;
        };
        let zone: chrono_tz::Tz = p
            .campaigns
            .iter()
            .filter(|c| c.owner == u.id)
            .find_map(|c| c.booking.as_ref().map(|b| b.rules.timezone))
            .unwrap_or(chrono_tz::UTC);
        let refresh_token = token.expose_secret().to_string();
        match conn.provider {
            Provider::Google => google.add_account(AccountSpec {
                email: u.email.clone(),
                refresh_token,
                time_zone: zone.name().to_string(),
                meet: true,
            }),
            Provider::Microsoft => microsoft.add_account(MsAccountSpec {
                email: u.email.clone(),
                refresh_token,
                windows_zone: crate::calendar::windows_zones::from_iana(zone)
                    .unwrap_or("UTC")
                    .to_string(),
                work: true,
            }),
        }
    }
}

/// For `serve --emulator`: every provisioned user has a Google and a
/// Microsoft account to sign in as (an address's existing account is kept),
/// so a connect from the settings page or the admin API has someone to
/// finish it. The account's zone is that of a campaign the user owns, else
/// UTC, as in [`seed_emulators`].
pub fn seed_connectable(google: &GoogleEmulator, microsoft: &MicrosoftEmulator, p: &Provisioning) {
    for u in &p.users {
        let email = u.email.clone();
        let connected = u.connection.as_ref().map(|c| c.provider);
        let zone: chrono_tz::Tz = p
            .campaigns
            .iter()
            .filter(|c| c.owner == u.id)
            .find_map(|c| c.booking.as_ref().map(|b| b.rules.timezone))
            .unwrap_or(chrono_tz::UTC);
        if connected != Some(Provider::Google) {
            google.add_account(AccountSpec {
                email: email.clone(),
                refresh_token: format!("emulated-google-{}", u.id),
                time_zone: zone.name().to_string(),
                meet: true,
            });
        }
        if connected != Some(Provider::Microsoft) {
            microsoft.add_account(MsAccountSpec {
                email,
                refresh_token: format!("emulated-microsoft-{}", u.id),
                windows_zone: crate::calendar::windows_zones::from_iana(zone)
                    .unwrap_or("UTC")
                    .to_string(),
                work: true,
            });
        }
    }
}

impl Emulators {
    pub fn new() -> Self {
        Self {
            google: GoogleEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET),
            microsoft: MicrosoftEmulator::new(EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET),
        }
    }

    /// Accounts for every connection in the provisioning file.
    pub fn seed(&self, provisioning: &Provisioning) {
        seed_emulators(&self.google, &self.microsoft, provisioning);
    }
}

impl Default for Emulators {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// Starts the emulator (seeded from `provisioning`, then by `seed`) and
    /// the server, both on free loopback ports.
    pub async fn start(
        provisioning: Provisioning,
        clock: Clock,
        seed: impl FnOnce(&Emulators),
    ) -> anyhow::Result<Harness> {
        let emulators = Emulators::new();
        seed_emulators(&emulators.google, &emulators.microsoft, &provisioning);
        seed(&emulators);
        let store = Arc::new(provisioning.into_store());
        let ledger = Arc::new(MemoryLedger::new());
        Self::start_with(clock, emulators, ledger, store).await
    }

    /// Starts a callbook on emulators, a ledger and a store it may share
    /// with other instances: what several callbooks behind one Redis look
    /// like.
    pub async fn start_with(
        clock: Clock,
        emulators: Emulators,
        ledger: Arc<dyn Ledger>,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Harness> {
        Self::start_with_options(clock, emulators, ledger, store, Options::default()).await
    }

    /// As [`Harness::start_with`], also sharing where dropped calls wait
    /// for a resume, so a reconnect may land on another instance.
    pub async fn start_shared(
        clock: Clock,
        emulators: Emulators,
        ledger: Arc<dyn Ledger>,
        store: Arc<dyn Store>,
        states: Arc<dyn crate::call::resume::CallStates>,
    ) -> anyhow::Result<Harness> {
        let options = Options {
            states: Some(states),
            ..Options::default()
        };
        Self::start_with_options(clock, emulators, ledger, store, options).await
    }

    /// [`Harness::start_shared`], with a webhook or a shared outcome store.
    pub async fn start_with_options(
        clock: Clock,
        emulators: Emulators,
        ledger: Arc<dyn Ledger>,
        store: Arc<dyn Store>,
        options: Options,
    ) -> anyhow::Result<Harness> {
        let states = options
            .states
            .unwrap_or_else(|| Arc::new(crate::call::resume::MemoryCallStates::new()));
        let outcomes = options
            .outcomes
            .unwrap_or_else(|| Arc::new(MemoryOutcomes::new(clock.clone())));
        let shutdown = CancellationToken::new();
        let Emulators { google, microsoft } = emulators;
        let ms_addr = serve_local(microsoft.router(), shutdown.clone()).await?;
        let google_addr = serve_local(google.router(), shutdown.clone()).await?;
        let token = format!("test-{}", uuid::Uuid::new_v4().simple());
        let admin_token = options
            .admin_token
            .unwrap_or_else(|| format!("admin-{}", uuid::Uuid::new_v4().simple()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let settings = crate::Settings {
            auth_token: SecretString::from(token.clone()),
            admin_token: Some(SecretString::from(admin_token.clone())),
            public_url: format!("http://{addr}"),
            store: store.clone(),
            ledger: ledger.clone(),
            google: emulator_endpoints(google_addr),
            microsoft: ms_emulator_endpoints(ms_addr),
            clock: clock.clone(),
            drain: Duration::from_millis(500),
            states,
            resume_window: crate::app::RESUME_WINDOW,
            settle_wait: options
                .settle_wait
                .unwrap_or(crate::call::resume::SETTLE_WAIT),
            reconcile_period: options
                .reconcile_period
                .unwrap_or(crate::call::reconcile::RECONCILE_PERIOD),
            outcomes: outcomes.clone(),
            webhook: options.webhook,
            metrics_auth: options.metrics_auth,
            limits: options.limits.unwrap_or_default(),
            provider_timeout: options
                .provider_timeout
                .unwrap_or(crate::app::PROVIDER_REQUEST_TIMEOUT),
        };
        let stop = shutdown.clone();
        let server = tokio::spawn(crate::run(settings, listener, async move {
            stop.cancelled().await
        }));
        Ok(Harness {
            addr,
            token,
            admin_token,
            google,
            microsoft,
            clock,
            ledger,
            store,
            outcomes,
            shutdown,
            server,
        })
    }

    /// Opens a call socket with the right bearer token.
    pub async fn connect(&self) -> anyhow::Result<CallClient> {
        CallClient::connect(self.addr, Some(&self.token)).await
    }

    /// Stops the server (draining calls) and the emulator.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await??;
        Ok(())
    }
}

type ClientSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// The writing half of a [`CallClient`].
pub type ClientSink = futures_util::stream::SplitSink<ClientSocket, Message>;
/// The reading half of a [`CallClient`].
pub type ClientStream = futures_util::stream::SplitStream<ClientSocket>;

/// A pipeline's end of one call socket.
pub struct CallClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    syncs: u64,
    /// The server's first frame (protocol and version).
    pub hello: Value,
}

impl CallClient {
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<CallClient> {
        let mut req = format!("ws://{addr}/v1/calls").into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        let mut client = CallClient {
            ws,
            syncs: 0,
            hello: Value::Null,
        };
        client.hello = client
            .recv()
            .await?
            .ok_or_else(|| anyhow!("socket closed before hello"))?;
        Ok(client)
    }

    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.send_raw(&frame.to_string()).await
    }

    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.ws.send(Message::Binary(bytes.into())).await?;
        Ok(())
    }

    /// The next text frame, parsed; `None` once the socket closed.
    pub async fn recv(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            let next = tokio::time::timeout(SETTLE_TIMEOUT, self.ws.next())
                .await
                .context("timed out waiting for the server")?;
            match next {
                Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Sends a `sync` and returns every frame the server sent before
    /// answering it: everything the call did in response to what came
    /// before, including finished calendar work.
    pub async fn settle(&mut self) -> anyhow::Result<Vec<Value>> {
        self.syncs += 1;
        let id = format!("sync-{}", self.syncs);
        self.send(&json!({"event": "sync", "sync": {"id": id}}))
            .await?;
        let mut frames = Vec::new();
        loop {
            let Some(frame) = self.recv().await? else {
                return Ok(frames);
            };
            if frame["event"] == "sync" && frame["sync"]["id"] == id.as_str() {
                return Ok(frames);
            }
            frames.push(frame);
        }
    }

    /// Reads until the server closes the socket.
    pub async fn drain(&mut self) -> anyhow::Result<Vec<Value>> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv().await? {
            frames.push(f);
        }
        Ok(frames)
    }

    /// Reads until the server closes the socket; returns the frames before
    /// and the close frame's code and reason (`None` if it sent none).
    pub async fn drain_close(&mut self) -> anyhow::Result<(Vec<Value>, Option<(u16, String)>)> {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(SETTLE_TIMEOUT, self.ws.next())
                .await
                .context("timed out waiting for the server")?;
            match next {
                Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t)?),
                Some(Ok(Message::Close(frame))) => {
                    let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    return Ok((frames, close));
                }
                None | Some(Err(_)) => return Ok((frames, None)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The socket's two halves, for a client that writes and reads at once.
    pub fn into_split(self) -> (ClientSink, ClientStream) {
        self.ws.split()
    }

    /// Drops the connection without a `stop` or a close handshake: what a
    /// pipeline's crash or a network cut looks like to the server.
    pub fn cut(self) {
        drop(self);
    }

    pub async fn close(mut self) -> anyhow::Result<()> {
        self.ws.close(None).await?;
        Ok(())
    }
}

/// Builders for the frames a pipeline sends, in Twilio's exact shapes.
pub mod frames {
    use serde_json::{json, Value};

    pub fn connected() -> Value {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    }

    /// A `start` frame; `params` become `customParameters`.
    pub fn start(call_sid: &str, params: Value) -> Value {
        let stream = format!("MZ{}", call_sid.trim_start_matches("CA"));
        json!({
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC00000000000000000000000000000000",
                "streamSid": stream,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
            "streamSid": stream,
        })
    }

    pub fn media(seq: u64) -> Value {
        json!({"event": "media", "sequenceNumber": seq.to_string(),
               "media": {"track": "inbound", "chunk": seq.to_string(), "timestamp": (seq * 20).to_string(),
                         "payload": "//////////////////////////8="}})
    }

    pub fn transcript(text: &str) -> Value {
        json!({"event": "transcript", "transcript": {"text": text, "final": true}})
    }

    pub fn offer() -> Value {
        json!({"event": "booking", "booking": {"action": "offer"}})
    }

    pub fn stop(call_sid: &str) -> Value {
        json!({"event": "stop", "sequenceNumber": "99",
               "stop": {"accountSid": "AC00000000000000000000000000000000", "callSid": call_sid}})
    }
}

/// A real `redis-server` on a free loopback port, with nothing on disk
/// (or an append-only file, [`RedisServer::start_with_aof`]); killed when
/// dropped. For tests and benchmarks.
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
    pub url: String,
    dir: std::path::PathBuf,
    /// Every write appended to a file and fsynced before it is answered,
    /// so a restart (even after a kill) loses nothing.
    aof: bool,
}

impl RedisServer {
    pub async fn start() -> anyhow::Result<RedisServer> {
        Self::start_persistent(false).await
    }

    /// A server with an append-only file fsynced on every write: a
    /// [`RedisServer::restart`] reloads everything it had.
    pub async fn start_with_aof() -> anyhow::Result<RedisServer> {
        Self::start_persistent(true).await
    }

    async fn start_persistent(aof: bool) -> anyhow::Result<RedisServer> {
        // A port found free can be taken before the server binds it (by
        // another test's server): then another port.
        let mut tries = 0;
        loop {
            let port = spare_port();
            let dir = std::env::temp_dir().join(format!("callbook-redis-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            let child = Self::spawn(port, &dir, aof)?;
            // Owned from here on: dropped (killed and reaped) on every path.
            let mut server = RedisServer {
                child,
                port,
                url: format!("redis://127.0.0.1:{port}/"),
                dir,
                aof,
            };
            match server.ready().await {
                Ok(()) => return Ok(server),
                Err(e) if tries >= 8 => return Err(e),
                Err(_) => tries += 1,
            }
        }
    }

    /// Stops the server, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts a new one on the same port: empty, as
    /// a Redis restart without persistence looks to callbook; or, started
    /// [`RedisServer::start_with_aof`], with everything it had.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.child = Self::spawn(self.port, &self.dir, self.aof)?;
        self.ready().await
    }

    fn spawn(port: u16, dir: &std::path::Path, aof: bool) -> anyhow::Result<std::process::Child> {
        let persistence: &[&str] = if aof {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting redis-server (apt-get install -y redis-server)")
    }

    /// Waits until this server, not another process on its port, answers.
    async fn ready(&mut self) -> anyhow::Result<()> {
        own_redis_answers(&mut self.child, self.port, Duration::from_secs(5)).await
    }
}

/// Waits until the `redis-server` started as `child` answers on `port`:
/// an error once it exited (its port was likely taken), when another
/// server answers there, or after `patience`.
pub async fn own_redis_answers(
    child: &mut std::process::Child,
    port: u16,
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(anyhow!(
                "redis-server on port {port} exited ({status}); was the port taken?"
            ));
        }
        match answering_pid(port).await {
            Some(pid) if pid == child.id() => return Ok(()),
            Some(pid) => return Err(anyhow!("port {port} is another redis-server's (pid {pid})")),
            None if tokio::time::Instant::now() >= deadline => {
                return Err(anyhow!("redis-server did not start on port {port}"))
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The process id of the Redis server answering on a loopback `port`, if
/// one answers.
pub async fn answering_pid(port: u16) -> Option<u32> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut c)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// A loopback port for a server about to start: random, below Linux's
/// usual range for outgoing connections (so no client socket holds it),
/// and free when asked. Another process can still take it first, so the
/// caller checks that its own server answers there ([`answering_pid`]).
pub fn spare_port() -> u16 {
    loop {
        let port = fastrand::u16(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
