//! Running one build: its directory and script, the process, heartbeats, the timeout, the log
//! stream, and the report, which is re-sent until the server takes it or the lease is gone.

use crate::backoff::Backoff;
use crate::client::{Beat, CallError, Client, Job, Report};
use crate::log::{DEFAULT_LOG_LIMIT, Streamed, stream};
use crate::process::{Exit, Script};
use crate::script;
use crate::watch::Watcher;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a stopped script gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How soon an acknowledgement that failed is tried again.
const UNACKNOWLEDGED_RETRY: Duration = Duration::from_millis(500);
/// How long a job's `after_script` may run, on its own clock (GitLab's limit).
const AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// What every build of this worker shares.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) client: Client,
    pub(crate) shell: PathBuf,
    pub(crate) work_dir: PathBuf,
    pub(crate) watcher: Watcher,
}

/// Why the script stopped, when it did not simply exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Canceled,
    Timeout,
    LeaseLost,
    ShuttingDown,
}

/// Runs `job` to the end and reports it. `abort` cancels it (the worker is shutting down).
pub(crate) async fn run(runner: &Runner, job: Job, abort: CancellationToken) {
    let started = Instant::now();
    tracing::info!(build_id = job.id, pipeline_id = job.pipeline_id, name = %job.name, "build started");
    if !acknowledge(&runner.client, job.id, &abort).await {
        tracing::warn!(
            build_id = job.id,
            "build dropped: the server no longer gives it to this runner"
        );
        return;
    }
    let dir = runner.work_dir.join(format!("build-{}", job.id));
    // Heartbeats go on until the report is delivered, so that a server that was away while
    // the build ended does not expire it while the report is retried.
    let beats = CancellationToken::new();
    // The heartbeats and the watch both say when to stop; the build acts on the first.
    let (stop, stopped) = mpsc::channel(2);
    let heartbeat = spawn_heartbeat(runner.client.clone(), &job, stop.clone(), beats.clone());
    let watching = runner.watcher.watch(job.id, stop);
    let report = match execute(runner, &job, &dir, &abort, stopped).await {
        Ok(report) => report,
        Err(error) => {
            tracing::error!(build_id = job.id, %error, "could not run the build");
            Some(Report {
                result: "failed",
                exit_code: None,
                failure_reason: Some("runner_system_failure"),
                log: None,
            })
        }
    };
    drop(watching);
    if let Err(error) = std::fs::remove_dir_all(&dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(build_id = job.id, %error, dir = %dir.display(), "cannot remove the build directory");
    }
    let Some(report) = report else {
        beats.cancel();
        tracing::warn!(
            build_id = job.id,
            duration_ms = millis(started),
            "build dropped: the lease was lost"
        );
        return;
    };
    let accepted = deliver(&runner.client, job.id, &report).await;
    beats.cancel();
    let _ = heartbeat.await;
    tracing::info!(
        build_id = job.id,
        result = report.result,
        exit_code = report.exit_code,
        reported = accepted,
        duration_ms = millis(started),
        "build finished"
    );
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the script; `None` when the lease was lost and nothing must be reported.
async fn execute(
    runner: &Runner,
    job: &Job,
    dir: &Path,
    abort: &CancellationToken,
    mut beat: mpsc::Receiver<Stop>,
) -> std::io::Result<Option<Report>> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let bash = runner.shell.file_name().is_some_and(|name| name == "bash");
    let script_path = dir.join(".lockstep-script.sh");
    std::fs::write(
        &script_path,
        script::render(
            job.before_script.iter().chain(&job.script),
            std::process::id(),
            bash,
        ),
    )?;
    // Output and the worker's own notes share one channel, so notes land in order.
    let (notes, merged) = mpsc::channel(16);
    let stop_streaming = CancellationToken::new();
    let upload = {
        let client = runner.client.clone();
        let token = stop_streaming.clone();
        let id = job.id;
        let limit = job.log_limit_bytes.unwrap_or(DEFAULT_LOG_LIMIT);
        tokio::spawn(async move { stream(&client, id, merged, limit, token).await })
    };
    if let Err(why) = crate::archives::fetch(&runner.client, job, dir, &notes).await {
        let _ = notes
            .send(format!("lockstep-worker: {why}; the script did not run\n").into_bytes())
            .await;
        drop(notes);
        return Ok(settled(
            upload.await.unwrap_or(Streamed::Abandoned),
            job,
            system_failure(),
        ));
    }
    let (mut script, output) = Script::spawn(&runner.shell, &script_path, dir, &job.variables)?;
    tracing::debug!(build_id = job.id, pid = script.pid(), "script started");
    let forward = tokio::spawn(forward(output, notes.clone()));

    let timeout = tokio::time::sleep(Duration::from_secs(job.timeout_seconds));
    tokio::pin!(timeout);
    let stopped = tokio::select! {
        exit = script.wait() => Err(exit?),
        () = &mut timeout => Ok(Stop::Timeout),
        () = abort.cancelled() => Ok(Stop::ShuttingDown),
        stop = beat.recv() => Ok(stop.unwrap_or(Stop::LeaseLost)),
    };
    let exit = match stopped {
        Err(exit) => exit,
        Ok(_) => script.stop(STOP_GRACE).await?,
    };
    // Background jobs and the watchdog may still hold the pipe: end them so the log closes.
    script.kill_group();
    let mut stop = stopped.ok();
    if let Some(note) = stop.and_then(note) {
        let _ = notes.send(note.as_bytes().to_vec()).await;
    }
    let mut report = report(stop, exit);
    if stop != Some(Stop::LeaseLost) && !job.after_script.is_empty() {
        let after = AfterScript {
            runner,
            job,
            dir,
            bash,
            status: report.result,
        };
        if after.run(&notes, &mut beat, abort).await? == Some(Stop::LeaseLost) {
            stop = Some(Stop::LeaseLost);
        }
    }
    let _ = forward.await;
    // A canceled build keeps nothing, as in GitLab; a build that ran to its end keeps its
    // artifacts (their failure to upload fails it) and its caches.
    if stop.is_none() || stop == Some(Stop::Timeout) {
        let succeeded = report.result == "success";
        if let Err(why) = crate::archives::keep(&runner.client, job, dir, succeeded, &notes).await {
            let _ = notes
                .send(format!("lockstep-worker: {why}; the build fails\n").into_bytes())
                .await;
            report = system_failure();
        }
    }
    drop(notes);
    if stop == Some(Stop::LeaseLost) {
        stop_streaming.cancel();
        let _ = upload.await;
        return Ok(None);
    }
    Ok(settled(
        upload.await.unwrap_or(Streamed::Abandoned),
        job,
        report,
    ))
}

/// The report once the log has been streamed: none when the lease was lost meanwhile, and with
/// the log's account when the server takes one (an older one, which names no log limit,
/// refuses a report with a field it does not know).
fn settled(streamed: Streamed, job: &Job, mut report: Report) -> Option<Report> {
    if streamed == Streamed::LeaseLost {
        return None;
    }
    if let Streamed::Ended(account) = streamed
        && job.log_limit_bytes.is_some()
    {
        report.log = Some(account);
    }
    Some(report)
}

fn system_failure() -> Report {
    Report {
        result: "failed",
        exit_code: None,
        failure_reason: Some("runner_system_failure"),
        log: None,
    }
}

/// A job's `after_script`: run after the script in a new shell, whatever its outcome, as GitLab
/// does; its failure or timeout only shows in the log.
struct AfterScript<'a> {
    runner: &'a Runner,
    job: &'a Job,
    dir: &'a Path,
    bash: bool,
    /// `success`, `failed` or `canceled`: what the build reports, for `CI_JOB_STATUS`.
    status: &'static str,
}

impl AfterScript<'_> {
    /// Runs it to its end, its timeout, a lost lease or the worker's shutdown, with its output
    /// in the log; returns the stop that ended it early, if any. A cancel does not stop it: it
    /// is how a canceled job cleans up.
    async fn run(
        &self,
        notes: &mpsc::Sender<Vec<u8>>,
        beat: &mut mpsc::Receiver<Stop>,
        abort: &CancellationToken,
    ) -> std::io::Result<Option<Stop>> {
        let path = self.dir.join(".lockstep-after-script.sh");
        std::fs::write(
            &path,
            script::render(&self.job.after_script, std::process::id(), self.bash),
        )?;
        let mut variables = self.job.variables.clone();
        variables.insert("CI_JOB_STATUS".to_owned(), self.status.to_owned());
        let _ = notes
            .send(b"\nlockstep-worker: running after_script\n".to_vec())
            .await;
        let (mut script, output) = Script::spawn(&self.runner.shell, &path, self.dir, &variables)?;
        let forward = tokio::spawn(forward(output, notes.clone()));
        let timeout = tokio::time::sleep(AFTER_SCRIPT_TIMEOUT);
        tokio::pin!(timeout);
        let mut listening = true;
        let stopped = loop {
            tokio::select! {
                exit = script.wait() => break Err(exit?),
                () = &mut timeout => break Ok(Stop::Timeout),
                () = abort.cancelled() => break Ok(Stop::ShuttingDown),
                stop = beat.recv(), if listening => match stop {
                    Some(Stop::Canceled) => {}
                    Some(other) => break Ok(other),
                    // Its senders are gone: nothing more will come.
                    None => listening = false,
                },
            }
        };
        if stopped.is_ok() {
            script.stop(STOP_GRACE).await?;
        }
        script.kill_group();
        let _ = forward.await;
        let note = match stopped {
            Ok(Stop::Timeout) => {
                "lockstep-worker: after_script ran past 5 minutes and was stopped\n".to_owned()
            }
            Ok(_) => "lockstep-worker: after_script was stopped\n".to_owned(),
            Err(Exit::Code(0)) => String::new(),
            Err(exit) => format!(
                "lockstep-worker: after_script failed with exit code {}; the build's result stands\n",
                exit.code()
            ),
        };
        if !note.is_empty() {
            let _ = notes.send(note.into_bytes()).await;
        }
        Ok(stopped.ok())
    }
}

fn note(stop: Stop) -> Option<&'static str> {
    match stop {
        Stop::Canceled => {
            Some("\nlockstep-worker: the build was canceled; its processes were stopped\n")
        }
        Stop::Timeout => {
            Some("\nlockstep-worker: the build ran past its timeout and was stopped\n")
        }
        Stop::ShuttingDown => {
            Some("\nlockstep-worker: the worker is shutting down; the build was stopped\n")
        }
        Stop::LeaseLost => None,
    }
}

fn report(stop: Option<Stop>, exit: Exit) -> Report {
    match (stop, exit) {
        (Some(Stop::Canceled | Stop::ShuttingDown), _) => Report {
            result: "canceled",
            exit_code: None,
            failure_reason: None,
            log: None,
        },
        (Some(Stop::Timeout), _) => Report {
            result: "failed",
            exit_code: None,
            failure_reason: Some("job_timeout"),
            log: None,
        },
        (_, Exit::Code(0)) => Report {
            result: "success",
            exit_code: None,
            failure_reason: None,
            log: None,
        },
        (_, exit) => Report {
            result: "failed",
            exit_code: Some(exit.code()),
            failure_reason: Some("script_failure"),
            log: None,
        },
    }
}

async fn forward(mut output: mpsc::Receiver<Vec<u8>>, to: mpsc::Sender<Vec<u8>>) {
    while let Some(chunk) = output.recv().await {
        if to.send(chunk).await.is_err() {
            return;
        }
    }
}

/// Acknowledges the claim with a first heartbeat, before anything runs: the server hands a
/// claim nobody acknowledges back to the queue after a few seconds (it cannot tell a slow
/// runner from a lost answer), and a script started before the acknowledgement got through
/// could then run twice. Tried every half second until the server answers; `false` when it
/// says the build is not this runner's any more (or the worker is shutting down).
async fn acknowledge(client: &Client, build: i64, abort: &CancellationToken) -> bool {
    loop {
        match client.heartbeat(build).await {
            Ok(_) => return true,
            Err(CallError::Gone | CallError::Refused { .. } | CallError::Unauthorized) => {
                return false;
            }
            Err(error) => {
                tracing::warn!(build_id = build, %error, "acknowledgement failed; trying again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(UNACKNOWLEDGED_RETRY) => {}
            () = abort.cancelled() => return false,
        }
    }
}

/// Heartbeats at a third of the lease until `done`; sends a [`Stop`] when the server says to.
fn spawn_heartbeat(
    client: Client,
    job: &Job,
    sender: mpsc::Sender<Stop>,
    done: CancellationToken,
) -> JoinHandle<()> {
    let every = Duration::from_secs(job.lease_seconds)
        .div_f64(3.0)
        .max(Duration::from_millis(200));
    let id = job.id;
    tokio::spawn(async move {
        let mut canceling_sent = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = done.cancelled() => return,
            }
            match client.heartbeat(id).await {
                Ok(Beat::Running) => {}
                Ok(Beat::Canceling) if !canceling_sent => {
                    canceling_sent = true;
                    // Never waits: the build acts on the first stop it hears, and a full
                    // channel already holds one.
                    let _ = sender.try_send(Stop::Canceled);
                }
                Ok(Beat::Canceling) => {}
                Err(CallError::Gone | CallError::Refused { .. }) => {
                    let _ = sender.try_send(Stop::LeaseLost);
                    return;
                }
                Err(error) => tracing::warn!(build_id = id, %error, "heartbeat failed"),
            }
        }
    })
}

/// Sends the report until the server takes it. Returns whether it did.
async fn deliver(client: &Client, build: i64, report: &Report) -> bool {
    let mut backoff = Backoff::default();
    loop {
        match client.finish(build, report).await {
            Ok(()) => return true,
            Err(CallError::Unavailable(error)) => {
                let delay = backoff.next_delay();
                tracing::warn!(build_id = build, %error, retry_in_ms = delay.as_millis(), "report not delivered");
                tokio::time::sleep(delay).await;
            }
            Err(CallError::Gone) => {
                tracing::warn!(build_id = build, "report refused: the lease was lost first");
                return false;
            }
            Err(error) => {
                tracing::error!(build_id = build, %error, "report refused");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Stop, report};
    use crate::process::Exit;

    #[test]
    fn exits_and_stops_map_onto_reports() {
        assert_eq!(report(None, Exit::Code(0)).result, "success");
        let failed = report(None, Exit::Code(3));
        assert_eq!((failed.result, failed.exit_code), ("failed", Some(3)));
        assert_eq!(
            report(Some(Stop::Canceled), Exit::Signal(15)).result,
            "canceled"
        );
        assert_eq!(
            report(Some(Stop::ShuttingDown), Exit::Code(0)).result,
            "canceled"
        );
        let timeout = report(Some(Stop::Timeout), Exit::Signal(9));
        assert_eq!(timeout.failure_reason, Some("job_timeout"));
        // Killed by a signal (an out-of-memory kill): 128 + 9, as GitLab shows it.
        let killed = report(None, Exit::Signal(9));
        assert_eq!((killed.result, killed.exit_code), ("failed", Some(137)));
    }
}
