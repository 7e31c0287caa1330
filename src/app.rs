//! Wiring: build the shared parts, serve, drain on shutdown.

use crate::calendar::google::GoogleEndpoints;
use crate::calendar::microsoft::MicrosoftEndpoints;
use crate::call::resume::CallStates;
use crate::call::{Calendars, CallDeps};
use crate::clock::Clock;
use crate::ledger::Ledger;
use crate::outcomes::{OutcomeStore, Recorder, WebhookConfig};
use crate::server::limits::Limits;
use crate::server::{router, AppState};
use crate::store::Store;
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Per-request timeout for provider calls; a live caller is waiting.
pub const PROVIDER_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Shortest bearer token accepted at start. Tokens guard the call socket
/// and the admin API from anyone who can reach the port; 16 random
/// characters are out of reach of guessing over the network.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why `run` could not start or go on serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{flag} ({env}) must be at least {min} characters; it has {len}")]
    TokenTooShort {
        flag: &'static str,
        env: &'static str,
        min: usize,
        len: usize,
    },
    #[error("--admin-token (CALLBOOK_ADMIN_TOKEN) must differ from --auth-token (CALLBOOK_AUTH_TOKEN): a pipeline must not be able to change calendars")]
    SharedToken,
    /// Without it, provider calls would run with no timeout at all.
    #[error("could not build the HTTP client for calendar providers: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Refuses tokens that are too short to guard anything, and an admin
/// token that is the pipeline's.
pub fn check_tokens(auth: &SecretString, admin: Option<&SecretString>) -> Result<(), ServeError> {
    let long_enough = |token: &SecretString, flag, env| {
        let len = token.expose_secret().chars().count();
        if len < MIN_TOKEN_CHARS {
            return Err(ServeError::TokenTooShort {
                flag,
                env,
                min: MIN_TOKEN_CHARS,
                len,
            });
        }
        Ok(())
    };
    long_enough(auth, "--auth-token", "CALLBOOK_AUTH_TOKEN")?;
    if let Some(admin) = admin {
        long_enough(admin, "--admin-token", "CALLBOOK_ADMIN_TOKEN")?;
        if admin.expose_secret() == auth.expose_secret() {
            return Err(ServeError::SharedToken);
        }
    }
    Ok(())
}

/// Everything `run` needs, built by `main` or by a test.
pub struct Settings {
    pub auth_token: SecretString,
    /// Bearer token for the admin API; `None` turns it off.
    pub admin_token: Option<SecretString>,
    /// Where owners' browsers reach callbook (the OAuth redirect's base).
    pub public_url: String,
    pub store: Arc<dyn Store>,
    pub ledger: Arc<dyn Ledger>,
    pub google: GoogleEndpoints,
    pub microsoft: MicrosoftEndpoints,
    pub clock: Clock,
    /// How long live calls may run on after shutdown starts (and then
    /// webhook deliveries still retrying).
    pub drain: Duration,
    /// Where calls wait for a resume after their socket drops.
    pub states: Arc<dyn CallStates>,
    /// How long a dropped call can be resumed.
    pub resume_window: Duration,
    /// How long a resume waits for a dropped socket's calendar work to
    /// report back ([`crate::call::resume::SETTLE_WAIT`]).
    pub settle_wait: Duration,
    /// How often the calendars loaded recently are reconciled
    /// ([`crate::call::reconcile::RECONCILE_PERIOD`] by default).
    pub reconcile_period: Duration,
    /// Where booking outcomes are kept for the admin API.
    pub outcomes: Arc<dyn OutcomeStore>,
    /// Where booking outcomes are POSTed, signed; `None` sends none.
    pub webhook: Option<WebhookConfig>,
    /// `/metrics` asks for the admin token (`--metrics-auth`); open when
    /// false.
    pub metrics_auth: bool,
    /// Connection caps and timeouts ([`Limits::default`] is safe).
    pub limits: Limits,
    /// How long one provider request may take
    /// ([`PROVIDER_REQUEST_TIMEOUT`] by default).
    pub provider_timeout: Duration,
}

/// Default for [`Settings::resume_window`].
pub const RESUME_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The HTTP client for provider calls: rustls, no redirects (OAuth token
/// endpoints must not be redirected), bounded per request. An error here
/// stops the start: a default client would have neither bound.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ServeError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(ServeError::HttpClient)
}

/// Serves until `shutdown` resolves, then drains: readiness turns to
/// "draining" and new calls are refused while live calls run on for up to
/// `settings.drain`; then the remaining calls are told (`done`, close 1001)
/// and their effects awaited before the server stops.
///
/// Refuses to start with tokens [`check_tokens`] refuses, or without an
/// HTTP client for the providers.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_tokens(&settings.auth_token, settings.admin_token.as_ref())?;
    let http = http_client(settings.provider_timeout)?;
    let limits = Arc::new(settings.limits);
    let tracker = TaskTracker::new();
    let calls_cancel = CancellationToken::new();
    crate::observe::metrics::install();
    let calendars = Calendars::new(
        http,
        settings.google,
        settings.microsoft,
        settings.store.clone(),
    );
    let outcomes = Recorder::start(settings.outcomes, settings.webhook, settings.clock.clone());
    let deps = Arc::new(CallDeps {
        store: settings.store,
        ledger: crate::observe::MeteredLedger::wrap(settings.ledger),
        calendars,
        clock: settings.clock,
        tracker: tracker.clone(),
        states: settings.states,
        resume_window: settings.resume_window,
        settle_wait: settings.settle_wait,
        outcomes: outcomes.clone(),
        trail: Arc::new(crate::observe::CallTrail::new()),
        reconciler: Arc::new(crate::call::reconcile::Reconciler::new()),
    });
    let reconciling = {
        let deps = deps.clone();
        let period = settings.reconcile_period.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let now = deps.clock.now();
                let settled = deps.reconciler.run(&*deps.ledger, now).await;
                crate::call::reconcile::announce(&deps.outcomes, &settled, now).await;
            }
        })
    };
    let draining = CancellationToken::new();
    let stop_serving = CancellationToken::new();
    let state = AppState {
        auth_token: Arc::new(settings.auth_token),
        deps,
        admin: Arc::new(crate::server::admin::Admin::new(
            settings.admin_token,
            settings.public_url,
        )),
        calls_cancel: calls_cancel.clone(),
        draining: draining.clone(),
        metrics_auth: settings.metrics_auth,
        limits: limits.clone(),
    };
    let drain = settings.drain;
    let drainer = {
        let (tracker, calls_cancel, stop_serving) =
            (tracker.clone(), calls_cancel.clone(), stop_serving.clone());
        tokio::spawn(async move {
            shutdown.await;
            draining.cancel();
            tracing::info!(seconds = drain.as_secs(), "draining: new calls refused");
            tracker.close();
            if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
                tracing::warn!("drain period over; ending remaining calls");
                calls_cancel.cancel();
                tracker.wait().await;
            }
            stop_serving.cancel();
        })
    };
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(crate::observe::metrics::UPKEEP_EVERY);
        loop {
            every.tick().await;
            crate::observe::metrics::upkeep();
        }
    });
    // Before the first call, not during it.
    if let Err(e) = tokio::task::spawn_blocking(crate::phone::warm).await {
        tracing::warn!(error = %e, "loading the numbering plans failed; the first call loads them");
    }
    // On the runtime's workers, not the thread that waits for it: pinned to
    // one core, that thread and the worker would take turns at it, with a
    // switch between them for every connection accepted.
    let serving = tokio::spawn(crate::server::listen::serve(
        listener,
        router(state),
        limits,
        stop_serving,
    ));
    if let Err(e) = serving.await {
        tracing::error!(error = %e, "the accept loop ended abnormally");
    }
    drainer.abort();
    upkeep.abort();
    reconciling.abort();
    // Serving stops after the drain; end whatever is left.
    calls_cancel.cancel();
    tracker.close();
    tracker.wait().await;
    // Every call has ended: write their last outcomes and give webhooks
    // still retrying one more drain period.
    outcomes.shutdown(settings.drain).await;
    Ok(())
}
