//! The long-running processes `dev` starts: each one's output goes to a log file, and stopping
//! one is SIGTERM, a grace period, then SIGKILL. Also the stop request (Ctrl-C, SIGTERM, SIGHUP).

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process;

/// How long a child may take to stop after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(15);

/// How many lines of a child's log to show when it stops on its own.
const LOG_TAIL_LINES: usize = 25;

/// Set when the user asks us to stop: Ctrl-C (SIGINT), SIGTERM or SIGHUP.
#[derive(Debug)]
pub(crate) struct StopRequest {
    received: Receiver<()>,
    requested: bool,
}

impl StopRequest {
    /// Installs the handler; call it once, before starting anything that must be stopped.
    pub(crate) fn install() -> anyhow::Result<Self> {
        // One slot is enough: a second Ctrl-C while the first is handled changes nothing.
        let (sender, received) = sync_channel(1);
        ctrlc::set_handler(move || {
            let _ = sender.try_send(());
        })
        .context("cannot install the Ctrl-C handler")?;
        Ok(Self {
            received,
            requested: false,
        })
    }

    /// Waits up to `timeout` for a stop request; true once one has come (and ever after).
    pub(crate) fn wait(&mut self, timeout: Duration) -> bool {
        if !self.requested {
            self.requested = match self.received.recv_timeout(timeout) {
                Ok(()) => true,
                Err(RecvTimeoutError::Timeout) => false,
                // The handler lives as long as the process, so its sender never goes away.
                Err(RecvTimeoutError::Disconnected) => unreachable!("the Ctrl-C handler is gone"),
            };
        }
        self.requested
    }

    /// Whether a stop has been requested, without waiting.
    pub(crate) fn requested(&mut self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Fails with a short message if a stop has been requested: for checks between start steps.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        if self.requested() {
            bail!("interrupted");
        }
        Ok(())
    }
}

/// A child process whose stdout and stderr go to `log`. Dropping it stops it.
#[derive(Debug)]
pub(crate) struct Child {
    name: &'static str,
    log: PathBuf,
    process: std::process::Child,
    exited: Option<ExitStatus>,
}

impl Child {
    /// Starts `command`, its output appended to `log` (created afresh).
    pub(crate) fn spawn(
        name: &'static str,
        command: &mut Command,
        log: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err_file = file
            .try_clone()
            .with_context(|| format!("opening {} twice", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            // A process group of its own, so the terminal's Ctrl-C reaches only us and we stop
            // the children one by one in order: the worker first, while the server can still
            // take its last reports, then the server.
            .process_group(0);
        let process = command
            .spawn()
            .with_context(|| format!("could not start `{}`", process::display(command)))?;
        Ok(Self {
            name,
            log: log.to_path_buf(),
            process,
            exited: None,
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// How the child exited, if it has.
    pub(crate) fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .process
                .try_wait()
                .with_context(|| format!("cannot check on {}", self.name))?;
        }
        Ok(self.exited)
    }

    /// Sends SIGTERM, waits up to the grace period, then sends SIGKILL. Returns how it exited.
    pub(crate) fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.exited()? {
            return Ok(status);
        }
        eprintln!("stopping {}", self.name);
        self.signal(Signal::SIGTERM)?;
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "{} did not stop within {} s of SIGTERM: killing it",
            self.name,
            GRACE.as_secs()
        );
        self.signal(Signal::SIGKILL)?;
        let status = self
            .process
            .wait()
            .with_context(|| format!("cannot wait for {}", self.name))?;
        self.exited = Some(status);
        Ok(status)
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.process.id()).context("process id out of range")?;
        match kill(Pid::from_raw(pid), signal) {
            // Already gone (a zombie until we wait for it still counts as present): fine.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(err) => Err(err).with_context(|| format!("cannot send {signal} to {}", self.name)),
        }
    }

    /// Prints the end of the child's log to stderr, for when it stopped on its own.
    pub(crate) fn print_log_tail(&self) {
        let Ok(text) = fs::read_to_string(&self.log) else {
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        eprintln!("--- {} (last {} lines)", self.log.display(), tail.len());
        for line in tail {
            eprintln!("{line}");
        }
        eprintln!("---");
    }
}

impl Drop for Child {
    /// The safety net for error paths: no child outlives us if we can help it.
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("error: {err:#}");
        }
    }
}
