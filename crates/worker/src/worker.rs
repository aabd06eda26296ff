//! The worker: `concurrency` slots, each asking for a build and running it, and the shutdown:
//! a first signal stops asking and lets running builds finish within the grace period, then
//! cancels them; a second signal cancels them at once.

use crate::backoff::Backoff;
use crate::client::{CallError, Client};
use crate::job::{self, Runner};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one job request waits on the server for a build.
const WAIT_SECONDS: u32 = 30;

/// How the worker is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub url: String,
    pub token: String,
    pub concurrency: usize,
    pub work_dir: PathBuf,
    pub shell: PathBuf,
    pub shutdown_grace: Duration,
}

/// The two stages of stopping.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop taking builds.
    pub drain: CancellationToken,
    /// Cancel running builds.
    pub abort: CancellationToken,
}

impl Shutdown {
    /// A signal arrived: the first drains (and aborts after `grace`), the second aborts.
    pub fn signal(&self, grace: Duration) {
        if self.drain.is_cancelled() {
            tracing::warn!("second signal: canceling running builds now");
            self.abort.cancel();
            return;
        }
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "stopping: no new builds; running ones may finish"
        );
        self.drain.cancel();
        let abort = self.abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if !abort.is_cancelled() {
                tracing::warn!("grace period over: canceling running builds");
                abort.cancel();
            }
        });
    }
}

/// Runs until drained. Fails only when the server refuses the token.
pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.work_dir)?;
    let runner = Runner {
        client: Client::new(&config.url, &config.token)?,
        shell: config.shell.clone(),
        work_dir: config.work_dir.clone(),
    };
    tracing::info!(url = %config.url, concurrency = config.concurrency, shell = %config.shell.display(), "worker started");
    let slots: Vec<_> = (0..config.concurrency)
        .map(|_| tokio::spawn(slot(runner.clone(), shutdown.clone())))
        .collect();
    let mut outcome = Ok(());
    for slot in slots {
        match slot.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => outcome = Err(error),
            Err(join) => outcome = Err(anyhow::anyhow!("a worker slot panicked: {join}")),
        }
    }
    tracing::info!("worker stopped");
    outcome
}

async fn slot(runner: Runner, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    loop {
        let request = tokio::select! {
            request = runner.client.request_job(WAIT_SECONDS) => request,
            // A claim racing this abort is not lost: its lease runs out and the server
            // expires it (and retries it when the job allows).
            () = shutdown.drain.cancelled() => return Ok(()),
        };
        match request {
            Ok(Some(job)) => {
                backoff.reset();
                job::run(&runner, job, shutdown.abort.clone()).await;
            }
            Ok(None) => backoff.reset(),
            Err(CallError::Unauthorized) => {
                // Every slot stops: the token will not start working by itself.
                shutdown.drain.cancel();
                anyhow::bail!(
                    "the server refused the runner token: register a runner (POST /api/v1/runners) and pass its token as LOCKSTEP_RUNNER_TOKEN"
                );
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "cannot get a build");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.drain.cancelled() => return Ok(()),
                }
            }
        }
        if shutdown.drain.is_cancelled() {
            return Ok(());
        }
    }
}
