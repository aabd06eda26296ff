//! The worker: `concurrency` slots, one request at a time asking the server for as many builds
//! as slots are free, each build run in a slot of its own; and the shutdown: a first signal
//! stops asking and lets running builds finish within the grace period, then cancels them; a
//! second signal cancels them at once.

use crate::backoff::Backoff;
use crate::client::{CallError, Client};
use crate::job::{self, Runner};
use crate::watch::Watcher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one job request waits on the server for a build.
const WAIT_SECONDS: u32 = 30;
/// The most builds the server hands out in one answer.
const MAX_JOBS_PER_REQUEST: usize = 100;

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
    let client = Client::new(&config.url, &config.token)?;
    let watch_done = CancellationToken::new();
    let (watcher, watch_task) = Watcher::spawn(client.clone(), watch_done.clone());
    let runner = Runner {
        client,
        shell: config.shell.clone(),
        work_dir: config.work_dir.clone(),
        watcher,
    };
    tracing::info!(url = %config.url, concurrency = config.concurrency, shell = %config.shell.display(), "worker started");
    let mut running = JoinSet::new();
    let mut outcome = poll(&runner, config.concurrency, &mut running, &shutdown).await;
    while let Some(done) = running.join_next().await {
        if let Err(join) = done {
            outcome = Err(anyhow::anyhow!("a build's task panicked: {join}"));
        }
    }
    watch_done.cancel();
    let _ = watch_task.await;
    tracing::info!("worker stopped");
    outcome
}

/// Asks for builds while slots are free, until drained. One request at a time: a worker with
/// ten idle slots holds one long-poll, not ten.
async fn poll(
    runner: &Runner,
    concurrency: usize,
    running: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut backoff = Backoff::default();
    loop {
        while running.try_join_next().is_some() {}
        let free = tokio::select! {
            free = free_slots(&slots) => free,
            () = shutdown.drain.cancelled() => return Ok(()),
        };
        let request = tokio::select! {
            request = runner.client.request_jobs(free.num_permits(), WAIT_SECONDS) => request,
            // A claim racing this abort is not lost: nothing acknowledges it, so the server
            // hands the build to another runner once its acknowledgement lease passes.
            () = shutdown.drain.cancelled() => return Ok(()),
        };
        match request {
            Ok(jobs) => {
                backoff.reset();
                start(runner, jobs, free, running, shutdown);
            }
            Err(CallError::Unauthorized) => {
                anyhow::bail!(
                    "the server refused the runner token: register a runner (POST /api/v1/runners) and pass its token as LOCKSTEP_RUNNER_TOKEN"
                );
            }
            Err(error) => {
                drop(free);
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

/// Waits for at least one free slot, then takes every slot free at that moment (as many as one
/// request may ask for).
async fn free_slots(slots: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    let mut free = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the slot semaphore is never closed");
    let more = slots
        .available_permits()
        .min(MAX_JOBS_PER_REQUEST - 1)
        .try_into()
        .unwrap_or(0);
    if more > 0
        && let Ok(extra) = Arc::clone(slots).try_acquire_many_owned(more)
    {
        free.merge(extra);
    }
    free
}

/// Runs each build in a slot of its own; slots no build came for are free again.
fn start(
    runner: &Runner,
    jobs: Vec<crate::client::Job>,
    mut free: OwnedSemaphorePermit,
    running: &mut JoinSet<()>,
    shutdown: &Shutdown,
) {
    for job in jobs {
        // The server never sends more than asked; a build beyond that would still run, without
        // a slot, rather than be stranded until its lease ran out.
        let slot = free.split(1);
        let (runner, abort) = (runner.clone(), shutdown.abort.clone());
        running.spawn(async move {
            job::run(&runner, job, abort).await;
            drop(slot);
        });
    }
}
