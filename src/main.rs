//! The `callbook` binary: a thin CLI over the library.

use anyhow::Context;
use callbook::calendar::google::GoogleEndpoints;
use callbook::calendar::microsoft::MicrosoftEndpoints;
use callbook::calendar::oauth::OAuthClient;
use callbook::call::resume::{CallStates, MemoryCallStates, RedisCallStates};
use callbook::clock::Clock;
#[cfg(feature = "testkit")]
use callbook::harness::{self, frames, Harness};
use callbook::ledger::{Ledger, MemoryLedger, RedisLedger};
use callbook::outcomes::{MemoryOutcomes, OutcomeStore, RedisOutcomes, WebhookConfig};
use callbook::server::limits;
use callbook::store::provisioning::{self, Provisioning};
use callbook::store::secrets::TokenCipher;
use callbook::store::state_file::StateFile;
use callbook::store::{MemoryStore, Provider, RedisStore, Store, StoreError, StoreErrorKind};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "callbook",
    version,
    about = "Meeting booking sidecar for phone-call voice agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the call WebSocket.
    Serve(Box<ServeArgs>),
    /// Run the service with embedded defaults and place a scripted call.
    #[cfg(feature = "testkit")]
    Demo,
    /// Replay fixture files; exit 0 only if every expectation holds.
    #[cfg(feature = "testkit")]
    Replay {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print every transcript, not only failing ones.
        #[arg(short, long)]
        verbose: bool,
        /// Print the frames and events each run produced, as JSON.
        #[arg(long)]
        record: bool,
    },
    /// Many concurrent booking calls on one calendar, in-process on the
    /// emulators; prints bookings, overlaps and reply times as JSON.
    #[cfg(feature = "testkit")]
    Load {
        #[arg(long, default_value_t = 100)]
        calls: usize,
        /// Servers sharing one Redis (needs --redis-url when above 1).
        #[arg(long, default_value_t = 1)]
        instances: usize,
        #[arg(long)]
        redis_url: Option<String>,
        /// Measure turn answers instead: every call streams Twilio media
        /// (a frame every 20 ms) and a final transcript every second for
        /// this many seconds; reports transcript → `turn` latency.
        #[arg(long)]
        turns_for: Option<u64>,
        /// Measure the per-call cost of a server process instead, next to
        /// a bare WebSocket server: idle memory per call, server CPU per
        /// message and reply times while --calls stream Twilio media every
        /// 20 ms and a transcript every 2 s, and a burst of call starts.
        #[arg(long, conflicts_with_all = ["turns_for", "instances", "redis_url"])]
        twilio_rate: bool,
        /// With --twilio-rate: calls connected (and started) for the
        /// memory figure; the streaming calls are among them.
        #[arg(long, default_value_t = 5000, requires = "twilio_rate")]
        idle_calls: usize,
        /// With --twilio-rate: seconds of streaming per run.
        #[arg(long, default_value_t = 20, requires = "twilio_rate")]
        seconds: u64,
        /// With --twilio-rate: bare-then-callbook rounds.
        #[arg(long, default_value_t = 2, requires = "twilio_rate")]
        rounds: usize,
        /// With --twilio-rate: calls started in the burst (0: none).
        #[arg(long, default_value_t = 1000, requires = "twilio_rate")]
        burst: usize,
        /// With --twilio-rate: call starts per second in the burst.
        #[arg(long, default_value_t = 1000, requires = "twilio_rate")]
        burst_rate: u32,
        /// With --twilio-rate: the callbook binary to measure (this one by
        /// default).
        #[arg(long, requires = "twilio_rate")]
        server_bin: Option<PathBuf>,
        /// With --twilio-rate: pin each server process to this core.
        #[arg(long, requires = "twilio_rate")]
        pin_cpu: Option<usize>,
        /// With --twilio-rate: serve callbook against a `callbook emulator`
        /// process of its own (pinned off the server's core), so the
        /// server's figures leave out the calendar's side of each call.
        #[arg(long, requires = "twilio_rate")]
        emulator_process: bool,
    },
    /// The bare WebSocket server `load --twilio-rate` compares callbook
    /// with: parses each frame as JSON and answers transcripts.
    #[cfg(feature = "testkit")]
    #[command(hide = true)]
    BareEcho {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
    },
    /// The Google Calendar and Microsoft Graph emulators as one process,
    /// seeded from a provisioning file, with a control API under
    /// `/_control/` (faults, stored events): a calendar several `serve`
    /// processes can share, for development and tests. Prints the flags
    /// to give `serve` as one JSON line.
    #[cfg(feature = "testkit")]
    Emulator(EmulatorArgs),
    /// Show what callbook understands in an utterance, as one JSON line.
    Parse {
        #[command(subcommand)]
        what: ParseWhat,
    },
    /// Re-seal everything a store holds (Redis, or a state file) under the
    /// first of the token keys, so the others can be dropped. Prints what
    /// it did as JSON.
    Rekey(RekeyArgs),
    /// Seal a refresh token (read from standard input) for the provisioning
    /// file's `refresh_token_sealed`, under `CALLBOOK_TOKEN_KEY`.
    Seal {
        /// The user id the token belongs to.
        #[arg(long)]
        user: String,
        /// google or microsoft.
        #[arg(long)]
        provider: String,
        #[command(flatten)]
        key: TokenKeyArgs,
    },
    /// Why a campaign does or does not offer booking: the diagnostics
    /// checklist of a running callbook, printed. Exit 0 when every check
    /// passes, 1 when one fails.
    Diagnose {
        /// The campaign id.
        campaign: String,
        /// Where callbook serves.
        #[arg(long, env = "CALLBOOK_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The admin API's bearer token.
        #[arg(long, env = "CALLBOOK_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
        /// Print the JSON answer instead.
        #[arg(long)]
        json: bool,
    },
    /// Try a user's active calendar connection against the provider, step
    /// by step: list the calendars, read the one in use (zone, video), read
    /// free/busy for a day. Read-only unless --write, which also creates a
    /// labelled test event and deletes it. Exit 0 when every step passes.
    CheckProvider(Box<CheckProviderArgs>),
    /// List free slots for booking rules and busy time.
    Slots {
        #[arg(long)]
        rules: PathBuf,
        #[arg(long)]
        busy: Option<PathBuf>,
        #[arg(long)]
        now: DateTime<Utc>,
        #[arg(long)]
        limit: Option<usize>,
        /// Say whether this start (RFC 3339) is offered, and which rule excludes it.
        #[arg(long)]
        explain: Option<DateTime<Utc>>,
    },
}

#[cfg(feature = "testkit")]
#[derive(clap::Args)]
struct EmulatorArgs {
    /// Where both emulators and the control API listen (port 0: any free
    /// port; the one taken is printed).
    #[arg(
        long,
        env = "CALLBOOK_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    listen: String,
    /// Provisioning file whose connections become emulator accounts
    /// (their refresh tokens are the ones the emulator accepts). The
    /// embedded demo configuration by default.
    #[arg(long, env = "CALLBOOK_PROVISIONING")]
    provisioning: Option<PathBuf>,
    /// Opens sealed refresh tokens in the provisioning file.
    #[command(flatten)]
    key: TokenKeyArgs,
}

#[derive(Subcommand)]
enum ParseWhat {
    /// A dictated email address.
    Email { utterance: String },
    /// An answer to a yes/no question.
    Yesno { utterance: String },
    /// A time phrase, resolved against `--now` in the caller's zone `--tz`.
    When {
        #[arg(long)]
        now: DateTime<Utc>,
        #[arg(long)]
        tz: chrono_tz::Tz,
        utterance: String,
    },
    /// A timezone statement ("I'm in Denver").
    Timezone { utterance: String },
    /// The zone an E.164 number suggests.
    Phone { number: String },
}

/// Connection caps and timeouts (see `callbook::server::limits`).
#[derive(clap::Args)]
struct LimitArgs {
    /// Seconds a client has to send a request's headers (and a new
    /// connection its first request); slower connections are closed.
    #[arg(long, env = "CALLBOOK_HEADER_TIMEOUT_SECONDS", default_value_t = limits::HEADER_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_seconds: u64,
    /// Seconds from a call socket's upgrade to its `start` frame.
    #[arg(long, env = "CALLBOOK_START_TIMEOUT_SECONDS", default_value_t = limits::START_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    start_timeout_seconds: u64,
    /// Seconds a started call's socket may send no frame at all (pings
    /// count); the call is then kept for a resume.
    #[arg(long, env = "CALLBOOK_IDLE_TIMEOUT_SECONDS", default_value_t = limits::IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_seconds: u64,
    /// Open connections at most, call sockets included; more get 503.
    #[arg(long, env = "CALLBOOK_MAX_CONNECTIONS", default_value_t = limits::MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Open connections at most from one client that are not an
    /// authenticated call socket; more get 429.
    #[arg(long, env = "CALLBOOK_MAX_CONNECTIONS_PER_CLIENT", default_value_t = limits::MAX_CONNECTIONS_PER_CLIENT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections_per_client: usize,
    /// Largest request body accepted (bytes); larger get 413.
    #[arg(long, env = "CALLBOOK_MAX_BODY_BYTES", default_value_t = limits::MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Seconds a client has to send a request's body; slower get 408.
    #[arg(long, env = "CALLBOOK_BODY_TIMEOUT_SECONDS", default_value_t = limits::BODY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_seconds: u64,
    /// Load balancers or proxies (addresses or blocks like 10.0.0.0/8)
    /// whose client header names the client; repeat or separate with
    /// commas. Without any, the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "CALLBOOK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<limits::Cidr>,
    /// The header a trusted proxy names the client in; its right-most
    /// address that is not a trusted proxy is the client.
    #[arg(long, env = "CALLBOOK_CLIENT_IP_HEADER", default_value = limits::CLIENT_IP_HEADER)]
    client_ip_header: axum::http::HeaderName,
}

impl LimitArgs {
    fn limits(&self) -> limits::Limits {
        limits::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            start_timeout: Duration::from_secs(self.start_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            max_body_bytes: self.max_body_bytes,
            body_timeout: Duration::from_secs(self.body_timeout_seconds),
            trusted_proxies: self.trusted_proxies.clone(),
            client_ip_header: self.client_ip_header.clone(),
        }
    }
}

/// The keys that seal refresh tokens at rest: 32 bytes each, base64. The
/// first seals; every one opens (for rotation: `new,old`).
#[derive(clap::Args)]
struct TokenKeyArgs {
    /// A token key; repeat the flag, or separate keys with commas in
    /// CALLBOOK_TOKEN_KEY. The first seals, every one opens.
    #[arg(
        long,
        env = "CALLBOOK_TOKEN_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    token_key: Vec<String>,
    /// Deprecated and ignored: a key's id is now its fingerprint.
    #[arg(long, env = "CALLBOOK_TOKEN_KEY_ID", hide = true)]
    token_key_id: Option<String>,
}

/// Said when CALLBOOK_TOKEN_KEY_ID is still set.
const KEY_ID_DEPRECATED: &str = "CALLBOOK_TOKEN_KEY_ID is ignored: a token key's id is now its fingerprint, and values sealed under the old label still open";

impl TokenKeyArgs {
    /// The configured keys, or `None` when none is.
    fn cipher(&self) -> anyhow::Result<Option<TokenCipher>> {
        let keys: Vec<SecretString> = self
            .token_key
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
            .map(|k| SecretString::from(k.to_string()))
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        TokenCipher::from_base64_list(&keys)
            .map(Some)
            .context("CALLBOOK_TOKEN_KEY")
    }

    /// The keys, required.
    fn required(&self, what: &str) -> anyhow::Result<TokenCipher> {
        self.cipher()?.ok_or_else(|| {
            anyhow::anyhow!(
                "{what} needs CALLBOOK_TOKEN_KEY (32 bytes, base64; new,old while rotating)"
            )
        })
    }
}

#[derive(clap::Args)]
struct CheckProviderArgs {
    /// The user whose active connection is checked.
    #[arg(long)]
    user: String,
    /// Also create a test event (titled as such, the owner its only
    /// attendee) and delete it at once.
    #[arg(long)]
    write: bool,
    /// The day (UTC) read for free/busy and, with --write, whose first half
    /// hour takes the test event; tomorrow by default.
    #[arg(long)]
    day: Option<chrono::NaiveDate>,
    /// Print the steps as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    key: TokenKeyArgs,
    /// The provisioning file `callbook serve` uses.
    #[arg(long, env = "CALLBOOK_PROVISIONING")]
    provisioning: Option<PathBuf>,
    /// The Redis `callbook serve --redis-url` uses (where connections made
    /// through the admin API are, and where a rotated Microsoft refresh
    /// token is written back).
    #[arg(long, env = "CALLBOOK_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The state file `callbook serve --state-file` uses (stop the service
    /// first: a running one writes its own state over it).
    #[arg(long, env = "CALLBOOK_STATE_FILE")]
    state_file: Option<PathBuf>,
    #[command(flatten)]
    providers: ProviderArgs,
}

#[derive(clap::Args)]
struct RekeyArgs {
    #[command(flatten)]
    key: TokenKeyArgs,
    /// The Redis `callbook serve --redis-url` uses.
    #[arg(long, env = "CALLBOOK_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The state file `callbook serve --state-file` uses (stop the service
    /// first: a running one writes its own state over it).
    #[arg(long, env = "CALLBOOK_STATE_FILE")]
    state_file: Option<PathBuf>,
}

/// Where the providers are, and callbook's OAuth client at each.
#[derive(clap::Args)]
struct ProviderArgs {
    #[arg(long, env = "CALLBOOK_GOOGLE_CLIENT_ID", default_value = "")]
    google_client_id: String,
    #[arg(
        long,
        env = "CALLBOOK_GOOGLE_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    google_client_secret: String,
    #[arg(long, env = "CALLBOOK_GOOGLE_API_BASE", default_value = GoogleEndpoints::API_BASE)]
    google_api_base: String,
    #[arg(long, env = "CALLBOOK_GOOGLE_TOKEN_URL", default_value = GoogleEndpoints::TOKEN_URL)]
    google_token_url: String,
    #[arg(long, env = "CALLBOOK_GOOGLE_AUTHORIZE_URL", default_value = GoogleEndpoints::AUTHORIZE_URL)]
    google_authorize_url: String,
    #[arg(long, env = "CALLBOOK_GOOGLE_REVOKE_URL", default_value = GoogleEndpoints::REVOKE_URL)]
    google_revoke_url: String,
    #[arg(long, env = "CALLBOOK_MICROSOFT_CLIENT_ID", default_value = "")]
    microsoft_client_id: String,
    #[arg(
        long,
        env = "CALLBOOK_MICROSOFT_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    microsoft_client_secret: String,
    #[arg(long, env = "CALLBOOK_MICROSOFT_GRAPH_BASE", default_value = MicrosoftEndpoints::GRAPH_BASE)]
    microsoft_graph_base: String,
    #[arg(long, env = "CALLBOOK_MICROSOFT_TOKEN_URL", default_value = MicrosoftEndpoints::TOKEN_URL)]
    microsoft_token_url: String,
    #[arg(long, env = "CALLBOOK_MICROSOFT_AUTHORITY", default_value = MicrosoftEndpoints::AUTHORITY)]
    microsoft_authority: String,
}

impl ProviderArgs {
    fn endpoints(self) -> (GoogleEndpoints, MicrosoftEndpoints) {
        let google = GoogleEndpoints {
            api_base: self.google_api_base,
            oauth: OAuthClient {
                token_url: self.google_token_url,
                client_id: self.google_client_id,
                client_secret: SecretString::from(self.google_client_secret),
            },
            authorize_url: self.google_authorize_url,
            revoke_url: self.google_revoke_url,
        };
        let microsoft = MicrosoftEndpoints {
            graph_base: self.microsoft_graph_base,
            oauth: OAuthClient {
                token_url: self.microsoft_token_url,
                client_id: self.microsoft_client_id,
                client_secret: SecretString::from(self.microsoft_client_secret),
            },
            authority: self.microsoft_authority,
        };
        (google, microsoft)
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    key: TokenKeyArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[arg(long, env = "CALLBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Bearer token the pipeline must present on `/v1/calls` (at least 16
    /// characters).
    #[arg(long, env = "CALLBOOK_AUTH_TOKEN", hide_env_values = true)]
    auth_token: String,
    /// Bearer token for the admin API (connections); without it the admin
    /// API is off. At least 16 characters, and not the pipeline's.
    #[arg(long, env = "CALLBOOK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Where owners' browsers reach callbook; OAuth redirects go to
    /// `{public_url}/v1/oauth/callback`. Defaults to the listen address.
    #[arg(long, env = "CALLBOOK_PUBLIC_URL")]
    public_url: Option<String>,
    /// Share slot claims and calendar connections through this Redis
    /// (`redis://host:port/db`), so any number of instances agree on who
    /// confirmed first and see the same connections. Needs
    /// CALLBOOK_TOKEN_KEY. Without it both stay in process (one instance).
    #[arg(long, env = "CALLBOOK_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Keep connections made or changed while running (OAuth connects,
    /// rotated refresh tokens, expiry) in this file, tokens sealed with
    /// CALLBOOK_TOKEN_KEY. Without it they last until restart.
    #[arg(long, env = "CALLBOOK_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Provisioning file (users, connections, campaigns). Without it the
    /// embedded default is used, with the built-in Google emulator.
    #[arg(long, env = "CALLBOOK_PROVISIONING")]
    provisioning: Option<PathBuf>,
    /// Serve calendars from the built-in Google and Microsoft emulators,
    /// for development: bookings are not real. Without --provisioning it
    /// brings the demo's users and campaigns. Only in builds with the
    /// `testkit` feature.
    #[arg(long, env = "CALLBOOK_EMULATOR")]
    emulator: bool,
    #[command(flatten)]
    providers: ProviderArgs,
    /// Seconds live calls may continue after a shutdown signal (and then
    /// webhook deliveries still retrying).
    #[arg(long, env = "CALLBOOK_DRAIN_SECONDS", default_value_t = 30)]
    drain_seconds: u64,
    /// Minutes after its last change that a call whose socket dropped can
    /// be resumed by a `start` with the same callSid.
    #[arg(long, env = "CALLBOOK_RESUME_MINUTES", default_value_t = 10)]
    resume_minutes: u64,
    /// Seconds a hold in the shared ledger lives before its booking commits
    /// (with --redis-url; every instance sharing the Redis should use the
    /// same). The booking saga gives a calendar write a third of it. At
    /// least 6; shorter than the default only for test runs.
    #[arg(long, env = "CALLBOOK_HOLD_TTL_SECONDS", default_value_t = 60)]
    hold_ttl_seconds: u64,
    /// Seconds between two runs of the reconciler over the calendars this
    /// instance loaded recently: unknown outcomes settled, claims of
    /// deleted events removed, untracked events adopted. At least 1.
    #[arg(long, env = "CALLBOOK_RECONCILE_SECONDS", default_value_t = 60)]
    reconcile_seconds: u64,
    /// POST every booking outcome here, signed with CALLBOOK_WEBHOOK_SECRET.
    #[arg(long, env = "CALLBOOK_WEBHOOK_URL", hide_env_values = true)]
    webhook_url: Option<String>,
    /// The webhook signing secret (at least 16 bytes).
    #[arg(long, env = "CALLBOOK_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Ask for the admin token on `/metrics` (open by default: no metric
    /// carries a caller's data).
    #[arg(long, env = "CALLBOOK_METRICS_AUTH")]
    metrics_auth: bool,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "callbook=info,warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_tracing();
            serve(*args).await.map(|_| true)
        }
        #[cfg(feature = "testkit")]
        Command::Demo => demo().await.map(|_| true),
        #[cfg(feature = "testkit")]
        Command::Emulator(args) => {
            init_tracing();
            emulator(args).await.map(|_| true)
        }
        #[cfg(feature = "testkit")]
        Command::Replay {
            files,
            verbose,
            record,
        } => callbook::replay::replay_files(&files, verbose, record).await,
        #[cfg(feature = "testkit")]
        Command::BareEcho { listen } => bare_echo(&listen).await.map(|_| true),
        #[cfg(feature = "testkit")]
        Command::Load {
            calls,
            twilio_rate: true,
            idle_calls,
            seconds,
            rounds,
            burst,
            burst_rate,
            server_bin,
            pin_cpu,
            emulator_process,
            ..
        } => callbook::load::twilio::run(callbook::load::twilio::Options {
            calls,
            idle: idle_calls.max(calls),
            seconds,
            rounds,
            burst,
            burst_rate,
            server_bin,
            pin_cpu,
            emulator_process,
        })
        .await
        .map(|report| {
            println!("{report}");
            true
        }),
        #[cfg(feature = "testkit")]
        Command::Load {
            calls,
            turns_for: Some(seconds),
            ..
        } => callbook::load::turns(calls, Duration::from_secs(seconds))
            .await
            .map(|report| {
                println!("{report}");
                report["unanswered"] == 0
            }),
        #[cfg(feature = "testkit")]
        Command::Load {
            calls,
            instances,
            redis_url,
            turns_for: None,
            ..
        } => callbook::load::run(calls, instances, redis_url.as_deref())
            .await
            .map(|report| {
                println!("{report}");
                report["overlapping_events"] == 0
            }),
        Command::Parse { what } => {
            use callbook::dialog::understand::cli;
            let v = match what {
                ParseWhat::Email { utterance } => cli::email(&utterance),
                ParseWhat::Yesno { utterance } => cli::yes_no(&utterance),
                ParseWhat::When { now, tz, utterance } => cli::when(&utterance, now, tz),
                ParseWhat::Timezone { utterance } => cli::timezone(&utterance),
                ParseWhat::Phone { number } => cli::phone(&number),
            };
            println!("{v}");
            return ExitCode::SUCCESS;
        }
        Command::Seal {
            user,
            provider,
            key,
        } => seal(&user, &provider, &key).map(|_| true),
        Command::Rekey(args) => rekey(args).await.map(|_| true),
        Command::Diagnose {
            campaign,
            url,
            admin_token,
            json,
        } => diagnose(&campaign, &url, &admin_token, json).await,
        Command::CheckProvider(args) => check_provider(*args).await,
        Command::Slots {
            rules,
            busy,
            now,
            limit,
            explain,
        } => return slots(rules, busy, now, limit, explain),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    let auth_token = SecretString::from(std::mem::take(&mut args.auth_token));
    let admin_token = args.admin_token.take().map(SecretString::from);
    callbook::app::check_tokens(&auth_token, admin_token.as_ref())?;
    let webhook = match (args.webhook_url.take(), args.webhook_secret.take()) {
        (Some(url), Some(secret)) => Some(
            WebhookConfig::new(&url, SecretString::from(secret))
                .context("--webhook-url and CALLBOOK_WEBHOOK_SECRET")?,
        ),
        (Some(_), None) => {
            anyhow::bail!("--webhook-url needs CALLBOOK_WEBHOOK_SECRET to sign with")
        }
        (None, Some(_)) => anyhow::bail!("CALLBOOK_WEBHOOK_SECRET is set but --webhook-url is not"),
        (None, None) => None,
    };
    let text = match (&args.provisioning, args.emulator) {
        (Some(p), _) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        // The emulators come with the demo's users and campaigns.
        (None, true) => provisioning::DEFAULT.to_string(),
        (None, false) => {
            tracing::info!(
                "no provisioning file: no users, campaigns or calendars yet; give --provisioning \
                 (see README) and connect calendars with POST /v1/users/{{user}}/connections/{{provider}}"
            );
            provisioning::EMPTY.to_string()
        }
    };
    if args.key.token_key_id.is_some() {
        tracing::warn!("{KEY_ID_DEPRECATED}");
    }
    let mut prov = Provisioning::parse(&text)?;
    prov.open_sealed(args.key.cipher()?.as_ref())?;
    let emulator_stop = CancellationToken::new();
    let (google, microsoft) = if args.emulator {
        start_emulators(&prov, emulator_stop.clone()).await?
    } else {
        args.providers.endpoints()
    };
    let store = prov.into_store();
    let need_key = |what: &str| args.key.required(what);
    let (store, ledger): (Arc<dyn Store>, Arc<dyn Ledger>) = match (&args.redis_url, &args.state_file) {
        (Some(_), Some(_)) => anyhow::bail!(
            "--redis-url keeps connections in Redis; --state-file is for a single instance: give one"
        ),
        (Some(url), None) => {
            let ttl = callbook::ledger::MIN_HOLD_TTL.num_seconds() as u64;
            anyhow::ensure!(
                args.hold_ttl_seconds >= ttl,
                "--hold-ttl-seconds must be at least {ttl}"
            );
            let store = RedisStore::connect(url, REDIS_PREFIX, need_key("--redis-url")?, store)
                .await
                .map_err(store_refused("connecting to Redis (CALLBOOK_REDIS_URL)"))?;
            let ledger = RedisLedger::connect(url, "callbook:ledger:")
                .await
                .context("connecting to Redis (CALLBOOK_REDIS_URL)")?
                .with_hold_ttl(chrono::Duration::seconds(
                    args.hold_ttl_seconds.min(86_400) as i64,
                ));
            (Arc::new(store), Arc::new(ledger))
        }
        (None, Some(path)) => {
            let cipher = need_key("--state-file")?;
            let store = store
                .with_state_file(StateFile::new(path.clone(), cipher))
                .await
                .map_err(store_refused("reading the state file (CALLBOOK_STATE_FILE)"))?;
            (Arc::new(store), Arc::new(MemoryLedger::new()))
        }
        (None, None) => (Arc::new(store), Arc::new(MemoryLedger::new())),
    };
    let states: Arc<dyn CallStates> = match &args.redis_url {
        Some(url) => Arc::new(
            RedisCallStates::connect(url, "callbook:call:")
                .await
                .context("connecting to Redis (CALLBOOK_REDIS_URL)")?,
        ),
        None => Arc::new(MemoryCallStates::new()),
    };
    let outcomes: Arc<dyn OutcomeStore> = match &args.redis_url {
        Some(url) => Arc::new(
            RedisOutcomes::connect(url, "callbook:", Clock::System)
                .await
                .context("connecting to Redis (CALLBOOK_REDIS_URL)")?,
        ),
        None => Arc::new(MemoryOutcomes::new(Clock::System)),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let local = listener.local_addr()?;
    let settings = callbook::Settings {
        auth_token,
        admin_token,
        public_url: args.public_url.unwrap_or_else(|| format!("http://{local}")),
        store,
        ledger,
        google,
        microsoft,
        clock: Clock::System,
        drain: Duration::from_secs(args.drain_seconds),
        states,
        resume_window: Duration::from_secs(args.resume_minutes.max(1) * 60),
        settle_wait: callbook::call::resume::SETTLE_WAIT,
        reconcile_period: Duration::from_secs(args.reconcile_seconds.max(1)),
        outcomes,
        webhook,
        metrics_auth: args.metrics_auth,
        limits: args.limits.limits(),
        provider_timeout: callbook::app::PROVIDER_REQUEST_TIMEOUT,
    };
    tracing::info!(addr = %local, "callbook serving /v1/calls");
    callbook::run(settings, listener, shutdown_signal()).await?;
    emulator_stop.cancel();
    Ok(())
}

/// The built-in provider emulators, seeded from the provisioning file, for
/// development (`serve --emulator`).
#[cfg(feature = "testkit")]
async fn start_emulators(
    prov: &Provisioning,
    stop: CancellationToken,
) -> anyhow::Result<(GoogleEndpoints, MicrosoftEndpoints)> {
    use callbook::calendar::emulator::{control, serve_local, GoogleEmulator, MicrosoftEmulator};
    let g = GoogleEmulator::new(harness::EMULATOR_CLIENT_ID, harness::EMULATOR_CLIENT_SECRET);
    let m = MicrosoftEmulator::new(harness::EMULATOR_CLIENT_ID, harness::EMULATOR_CLIENT_SECRET);
    harness::seed_emulators(&g, &m, prov);
    harness::seed_connectable(&g, &m, prov);
    // One port for both providers and the control API (events, faults),
    // as `callbook emulator` serves them.
    let addr = serve_local(control::combined(g, m), stop).await?;
    tracing::warn!(emulator = %format!("http://{addr}"), "built-in provider emulators serving calendars: bookings are not real");
    Ok((
        harness::emulator_endpoints(addr),
        harness::ms_emulator_endpoints(addr),
    ))
}

/// `callbook bare-echo`: the bare server `load --twilio-rate` measures.
#[cfg(feature = "testkit")]
async fn bare_echo(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    callbook::load::twilio::bare_echo(listener).await
}

/// `callbook emulator`: both emulators and their control API on one
/// port until a shutdown signal.
#[cfg(feature = "testkit")]
async fn emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    use callbook::calendar::emulator::{control, GoogleEmulator, MicrosoftEmulator};
    let text = match &args.provisioning {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => provisioning::DEFAULT.to_string(),
    };
    let mut prov = Provisioning::parse(&text)?;
    prov.open_sealed(args.key.cipher()?.as_ref())?;
    let g = GoogleEmulator::new(harness::EMULATOR_CLIENT_ID, harness::EMULATOR_CLIENT_SECRET);
    let m = MicrosoftEmulator::new(harness::EMULATOR_CLIENT_ID, harness::EMULATOR_CLIENT_SECRET);
    harness::seed_emulators(&g, &m, &prov);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let google = harness::emulator_endpoints(addr);
    let microsoft = harness::ms_emulator_endpoints(addr);
    let flags = serde_json::json!({
        "emulator": format!("http://{addr}"),
        "control": format!("http://{addr}/_control"),
        "google_api_base": google.api_base,
        "google_token_url": google.oauth.token_url,
        "google_authorize_url": google.authorize_url,
        "google_revoke_url": google.revoke_url,
        "google_client_id": harness::EMULATOR_CLIENT_ID,
        "google_client_secret": harness::EMULATOR_CLIENT_SECRET,
        "microsoft_graph_base": microsoft.graph_base,
        "microsoft_token_url": microsoft.oauth.token_url,
        "microsoft_authority": microsoft.authority,
        "microsoft_client_id": harness::EMULATOR_CLIENT_ID,
        "microsoft_client_secret": harness::EMULATOR_CLIENT_SECRET,
    });
    // The first line on stdout, for scripts and tests; the flags for a
    // person on stderr.
    println!("{flags}");
    eprintln!("callbook emulator on http://{addr} (bookings are not real). Serve against it with:");
    eprintln!(
        "  callbook serve --google-api-base {} --google-token-url {} \\",
        google.api_base, google.oauth.token_url
    );
    eprintln!(
        "    --google-authorize-url {} --google-revoke-url {} \\",
        google.authorize_url, google.revoke_url
    );
    eprintln!(
        "    --google-client-id {} --google-client-secret {} \\",
        harness::EMULATOR_CLIENT_ID,
        harness::EMULATOR_CLIENT_SECRET
    );
    eprintln!(
        "    --microsoft-graph-base {} --microsoft-token-url {} \\",
        microsoft.graph_base, microsoft.oauth.token_url
    );
    eprintln!(
        "    --microsoft-authority {} --microsoft-client-id {} --microsoft-client-secret {} \\",
        microsoft.authority,
        harness::EMULATOR_CLIENT_ID,
        harness::EMULATOR_CLIENT_SECRET
    );
    eprintln!("    --provisioning <the same file>");
    tracing::warn!(addr = %addr, "provider emulators serving calendars: bookings are not real");
    axum::serve(listener, control::combined(g, m))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

#[cfg(not(feature = "testkit"))]
async fn start_emulators(
    _prov: &Provisioning,
    _stop: CancellationToken,
) -> anyhow::Result<(GoogleEndpoints, MicrosoftEndpoints)> {
    anyhow::bail!("--emulator: this build has no provider emulators (it was built without the `testkit` feature)")
}

/// Where `serve` keeps connections in Redis.
const REDIS_PREFIX: &str = "callbook:";

/// A store that would not open, as the reason `serve` or `rekey` stops:
/// wrong keys say so plainly (naming CALLBOOK_TOKEN_KEY); anything else
/// says what was being done.
fn store_refused(doing: &'static str) -> impl Fn(StoreError) -> anyhow::Error {
    move |e| {
        match e.kind() {
        StoreErrorKind::WrongKey => anyhow::anyhow!(
            "{e}. Start with the key(s) this store was sealed under (CALLBOOK_TOKEN_KEY=new,old while rotating)"
        ),
        _ => anyhow::Error::new(e).context(doing),
    }
    }
}

async fn check_provider(args: CheckProviderArgs) -> anyhow::Result<bool> {
    let text = match &args.provisioning {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => provisioning::EMPTY.to_string(),
    };
    let mut prov = Provisioning::parse(&text)?;
    prov.open_sealed(args.key.cipher()?.as_ref())?;
    let store = prov.into_store();
    let store: Arc<dyn Store> = match (&args.redis_url, &args.state_file) {
        (Some(_), Some(_)) => anyhow::bail!("give one of --redis-url and --state-file"),
        (Some(url), None) => Arc::new(
            RedisStore::connect(url, REDIS_PREFIX, args.key.required("--redis-url")?, store)
                .await
                .map_err(store_refused("connecting to Redis (CALLBOOK_REDIS_URL)"))?,
        ),
        (None, Some(path)) => Arc::new(
            store
                .with_state_file(StateFile::new(
                    path.clone(),
                    args.key.required("--state-file")?,
                ))
                .await
                .map_err(store_refused(
                    "reading the state file (CALLBOOK_STATE_FILE)",
                ))?,
        ),
        (None, None) => Arc::new(store),
    };
    let Some(conn) = store
        .connection(&args.user)
        .await
        .map_err(store_refused("reading the user's connection"))?
    else {
        anyhow::bail!("user {:?} has no active calendar connection", args.user);
    };
    if conn.provider == Provider::Microsoft && args.redis_url.is_none() && args.state_file.is_none()
    {
        // Microsoft hands out a new refresh token on every use; with
        // nowhere to keep it the stored one would be spent.
        anyhow::bail!(
            "a Microsoft connection rotates its refresh token on use: give the --redis-url or --state-file the service uses"
        );
    }
    let email = store
        .user(&args.user)
        .await
        .map_err(store_refused("reading the user"))?
        .and_then(|u| u.email)
        .unwrap_or_default();
    let (google, microsoft) = args.providers.endpoints();
    let http = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT)?;
    let calendars = callbook::call::Calendars::new(http, google, microsoft, store);
    let provider = calendars.build(&args.user, &conn);
    let now = Clock::System.now();
    let day = args
        .day
        .unwrap_or_else(|| (now + chrono::Duration::days(1)).date_naive());
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    let window = callbook::schedule::Interval::new(start, start + chrono::Duration::days(1));
    let steps = callbook::calendar::check::check_provider(
        provider.as_ref(),
        &email,
        window,
        args.write,
        now,
    )
    .await;
    let ok = steps.iter().all(|s| s.ok);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"user": args.user, "provider": conn.provider.as_str(), "ok": ok, "steps": steps})
        );
    } else {
        println!("{} connection of {}:", conn.provider.as_str(), args.user);
        for s in &steps {
            println!(
                "  [{}] {}: {}",
                if s.ok { "ok" } else { "FAIL" },
                s.step,
                s.detail
            );
        }
        if !args.write {
            println!("  (read-only; --write also creates and deletes a test event)");
        }
    }
    Ok(ok)
}

async fn rekey(args: RekeyArgs) -> anyhow::Result<()> {
    if args.key.token_key_id.is_some() {
        eprintln!("warning: {KEY_ID_DEPRECATED}");
    }
    let cipher = args.key.required("rekey")?;
    let sealing = cipher.sealing_key_id().to_string();
    let report = match (&args.redis_url, &args.state_file) {
        (Some(url), None) => {
            // Users and campaigns do not matter here: nothing is seeded.
            let store = RedisStore::connect(url, REDIS_PREFIX, cipher, MemoryStore::new())
                .await
                .map_err(store_refused("connecting to Redis (CALLBOOK_REDIS_URL)"))?;
            store
                .rekey()
                .await
                .map_err(store_refused("re-sealing in Redis"))?
        }
        (None, Some(path)) => StateFile::new(path.clone(), cipher)
            .rekey()
            .await
            .map_err(store_refused("re-sealing the state file"))?,
        _ => anyhow::bail!("rekey: give exactly one of --redis-url and --state-file"),
    };
    println!(
        "{}",
        serde_json::json!({"key_id": sealing, "resealed": report.resealed, "current": report.current})
    );
    Ok(())
}

fn seal(user: &str, provider: &str, key: &TokenKeyArgs) -> anyhow::Result<()> {
    if key.token_key_id.is_some() {
        eprintln!("warning: {KEY_ID_DEPRECATED}");
    }
    let cipher = key.required("seal")?;
    let provider = match provider {
        "google" => Provider::Google,
        "microsoft" => Provider::Microsoft,
        other => anyhow::bail!("--provider: {other:?} is not google or microsoft"),
    };
    let mut token = String::new();
    std::io::stdin().read_line(&mut token)?;
    let token = SecretString::from(token.trim().to_string());
    println!(
        "{}",
        cipher.seal(&token, &provisioning::sealed_owner(user, provider))
    );
    Ok(())
}

/// A scripted call against embedded defaults, printed as a conversation.
#[cfg(feature = "testkit")]
async fn demo() -> anyhow::Result<()> {
    use callbook::schedule::Interval;
    use serde_json::json;
    let prov = Provisioning::parse(provisioning::DEFAULT)?;
    let clock = Clock::System;
    let now = clock.now();
    let harness = Harness::start(prov, clock, |emu| {
        // Something already on the owner's calendar tomorrow morning.
        let start = (now + chrono::Duration::days(1))
            .date_naive()
            .and_hms_opt(15, 0, 0)
            .unwrap_or_default()
            .and_utc();
        emu.google.add_event(
            "alex@callbook.example",
            "Team standup",
            Interval::new(start, start + chrono::Duration::hours(1)),
        );
    })
    .await?;
    println!(
        "callbook demo: server on {}, Google emulator behind it\n",
        harness.addr
    );
    let mut call = harness.connect().await?;
    println!("connected: {}", call.hello);
    let call_sid = "CA0000000000000000000000000000demo";
    let params = json!({
        "campaign_id": "demo",
        "recipient_phone": "+13125550147",
        "recipient_first_name": "Jordan",
        "recipient_last_name": "Lee",
    });
    call.send(&frames::connected()).await?;
    call.send(&frames::start(call_sid, params)).await?;
    for seq in 2..10 {
        call.send(&frames::media(seq)).await?;
    }
    call.settle().await?;
    println!("call {call_sid} from +1 312 (Chicago) to Jordan Lee\n");
    let script: [(Option<&str>, &str); 5] = [
        (None, "pipeline: booking offer"),
        (Some("Sure, that sounds good."), ""),
        (Some("it's jordan dot lee at gmail dot com"), ""),
        (Some("yes that's right"), ""),
        (Some("yes, that works for me"), ""),
    ];
    for (words, label) in script {
        match words {
            Some(text) => {
                println!("caller: {text}");
                call.send(&frames::transcript(text)).await?;
            }
            None => {
                println!("{label}");
                call.send(&frames::offer()).await?;
            }
        }
        let started = tokio::time::Instant::now();
        let replies = call.settle().await?;
        let took = started.elapsed();
        for f in &replies {
            match f["event"].as_str() {
                Some("say") => println!(
                    "agent:  {}   ({:.1} ms)",
                    f["say"]["text"].as_str().unwrap_or_default(),
                    took.as_secs_f64() * 1000.0
                ),
                Some("booking") => println!("        [booking] {}", f["booking"]),
                Some("turn") => println!(
                    "        [turn] {}{}",
                    f["turn"]["owner"].as_str().unwrap_or("?"),
                    if f["turn"]["floor"] == true {
                        " answers; it holds the floor"
                    } else {
                        " answers"
                    }
                ),
                _ => println!("        {f}"),
            }
        }
        println!();
    }
    call.send(&frames::stop(call_sid)).await?;
    call.drain().await?;
    for e in harness
        .google
        .events("alex@callbook.example")
        .iter()
        .filter(|e| e.booking_id.is_some())
    {
        println!("booked on the owner's Google Calendar (emulator):");
        println!("  title:    {}", e.summary);
        println!(
            "  start:    {} (UTC)",
            e.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        println!(
            "  end:      {} (UTC)",
            e.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        println!("  invitee:  {}", e.attendees.join(", "));
        println!("  meet:     {}", e.join_link.as_deref().unwrap_or("none"));
        println!("  invites:  {} sent by the provider", e.invites_sent);
    }
    harness.stop().await?;
    Ok(())
}

/// Asks a running callbook for a campaign's diagnostics and prints them.
async fn diagnose(campaign: &str, url: &str, token: &str, json: bool) -> anyhow::Result<bool> {
    let mut endpoint = reqwest::Url::parse(url).context("--url")?;
    endpoint
        .path_segments_mut()
        .map_err(|_| anyhow::anyhow!("--url cannot take a path"))?
        .pop_if_empty()
        .extend(["v1", "campaigns", campaign, "diagnostics"]);
    let resp = callbook::app::http_client(callbook::app::PROVIDER_REQUEST_TIMEOUT)?
        .get(endpoint)
        .bearer_auth(token)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .with_context(|| format!("reaching callbook at {url}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .with_context(|| format!("callbook answered {status} without JSON"))?;
    if !status.is_success() {
        anyhow::bail!(
            "callbook answered {status}: {} ({})",
            body["message"].as_str().unwrap_or_default(),
            body["error"].as_str().unwrap_or_default()
        );
    }
    if json {
        println!("{body:#}");
    } else {
        print!("{}", callbook::observe::diagnose::render(&body));
    }
    Ok(body["ok"].as_bool() == Some(true))
}

fn slots(
    rules: PathBuf,
    busy: Option<PathBuf>,
    now: DateTime<Utc>,
    limit: Option<usize>,
    explain: Option<DateTime<Utc>>,
) -> ExitCode {
    let read = |flag: &str, p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("{flag} {}: {e}", p.display()))
    };
    let answer = read("--rules", &rules).and_then(|rules_text| {
        let busy_text = busy.as_ref().map(|b| read("--busy", b)).transpose()?;
        callbook::schedule::cli::answer(&rules_text, busy_text.as_deref(), now, limit, explain)
            .map_err(|e| e.to_string())
    });
    match answer {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
