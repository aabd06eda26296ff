//! The application state every handler shares: the pool, the counters, the settings, the
//! wake-up signal for long-polling runners and the shutdown signal.

use crate::auth::TokenHash;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::wake::Wake;
use crate::watch::Watches;
use lockstep_storage_pg::{PgPool, TxStats};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the server is configured with, after parsing and checking.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The admin token; only its hash is kept.
    pub api_token: String,
    /// How long a claimed build stays leased without a heartbeat.
    pub lease: Duration,
    /// How long a freshly claimed build waits for its runner's first heartbeat, log append or
    /// report before it goes back to pending (its runner may never have got the answer).
    pub acknowledge_within: Duration,
    /// How long a build asked to stop may stay `canceling` before it is canceled without its
    /// runner's confirmation.
    pub cancel_grace: Duration,
    /// How often the lease reaper looks for expired leases.
    pub reaper_interval: Duration,
    /// A runner in contact within this long counts as online (for `GET /runners` and a
    /// build's `waiting`). Contact is recorded at most every 30 seconds.
    pub runner_online_within: Duration,
    /// Mark the dashboard's session cookie `Secure` even when a request does not say it came
    /// over TLS (`X-Forwarded-Proto: https`): for a server behind a TLS proxy that drops it.
    pub secure_cookies: bool,
    /// Where artifacts and caches are kept.
    pub objects: Objects,
    /// The largest archive an upload may send (`413` beyond it).
    pub max_artifact_bytes: u64,
    /// How long artifacts are kept when their job's `expire_in` says nothing; `None`: forever.
    pub artifacts_expire_in: Option<Duration>,
    /// How often each replica's sweeper deletes expired artifacts.
    pub sweep_interval: Duration,
}

impl Settings {
    /// Settings with the server's defaults for everything but the token and the lease.
    pub fn new(api_token: String, lease: Duration) -> Self {
        let acknowledge_within = DEFAULT_ACKNOWLEDGE_WITHIN.min(lease);
        let cancel_grace = DEFAULT_CANCEL_GRACE;
        Self {
            api_token,
            lease,
            acknowledge_within,
            cancel_grace,
            reaper_interval: reaper_interval(lease, acknowledge_within, cancel_grace),
            runner_online_within: DEFAULT_RUNNER_ONLINE_WITHIN,
            secure_cookies: false,
            objects: Objects::memory(),
            max_artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            artifacts_expire_in: Some(DEFAULT_ARTIFACTS_EXPIRE_IN),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

/// The largest archive an upload may send, unless configured (GitLab's default too).
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 100 * 1024 * 1024;
/// How long artifacts are kept when their job says nothing, unless configured (GitLab's too).
pub const DEFAULT_ARTIFACTS_EXPIRE_IN: Duration = Duration::from_secs(30 * 86_400);
/// How often the sweeper runs, unless configured.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A freshly claimed build's acknowledgement lease, unless configured.
pub const DEFAULT_ACKNOWLEDGE_WITHIN: Duration = Duration::from_secs(10);
/// How recent a runner's contact must be for it to count as online, unless configured: more
/// than a long-poll (30 s) plus the 30 s between recorded contacts.
pub const DEFAULT_RUNNER_ONLINE_WITHIN: Duration = Duration::from_secs(120);
/// How long a cancel waits for its runner's confirmation, unless configured.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(60);

/// How often the reaper sweeps: a quarter of the shortest deadline it enforces, so that it acts
/// within a quarter of that deadline after it passes, and never more often than twice a second.
pub fn reaper_interval(lease: Duration, acknowledge_within: Duration, grace: Duration) -> Duration {
    (lease.min(acknowledge_within).min(grace) / 4).max(Duration::from_millis(500))
}

/// The shared state. Concrete types only: tests run it against a real database.
#[derive(Debug)]
pub struct App {
    pub(crate) pool: PgPool,
    pub(crate) stats: TxStats,
    pub(crate) api_token: TokenHash,
    pub(crate) lease: Duration,
    pub(crate) acknowledge_within: Duration,
    pub(crate) cancel_grace: Duration,
    pub(crate) reaper_interval: Duration,
    pub(crate) runner_online_within: Duration,
    pub(crate) wake: Wake,
    pub(crate) watches: Watches,
    pub(crate) live: Live,
    pub(crate) secure_cookies: bool,
    pub(crate) objects: Objects,
    pub(crate) max_artifact_bytes: u64,
    pub(crate) artifacts_expire_in: Option<Duration>,
    pub(crate) sweep_interval: Duration,
    pub(crate) metrics: Metrics,
    shutdown: watch::Sender<bool>,
}

/// A cheap handle on [`App`] for axum.
#[derive(Debug, Clone)]
pub struct AppState(pub(crate) Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    pub fn new(pool: PgPool, settings: &Settings) -> Self {
        Self(Arc::new(App {
            pool,
            stats: TxStats::default(),
            api_token: TokenHash::of(&settings.api_token),
            lease: settings.lease,
            acknowledge_within: settings.acknowledge_within,
            cancel_grace: settings.cancel_grace,
            reaper_interval: settings.reaper_interval,
            runner_online_within: settings.runner_online_within,
            wake: Wake::default(),
            watches: Watches::default(),
            live: Live::default(),
            secure_cookies: settings.secure_cookies,
            objects: settings.objects.clone(),
            max_artifact_bytes: settings.max_artifact_bytes,
            artifacts_expire_in: settings.artifacts_expire_in,
            sweep_interval: settings.sweep_interval,
            metrics: Metrics::default(),
            shutdown: watch::Sender::new(false),
        }))
    }

    /// Asks long-polls, the reaper and the listener to stop.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`Self::shut_down`] was called.
    pub async fn stopped(&self) {
        let mut receiver = self.shutdown.subscribe();
        // The sender lives as long as the app, so `wait_for` only returns on shutdown.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }

    /// Runners in contact since this moment count as online.
    pub(crate) fn online_since(&self) -> chrono::DateTime<chrono::Utc> {
        let window = chrono::TimeDelta::from_std(self.runner_online_within)
            .unwrap_or(chrono::TimeDelta::MAX);
        chrono::Utc::now() - window
    }

    /// The transaction counters of this process.
    pub fn stats(&self) -> &TxStats {
        &self.stats
    }
}
