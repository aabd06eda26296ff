//! A build's shell process: spawned as the leader of its own process group with stdout and
//! stderr merged into one pipe, and stopped by signalling the whole group.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How much output one read takes.
const READ_SIZE: usize = 64 * 1024;

/// A running script.
#[derive(Debug)]
pub(crate) struct Script {
    child: Child,
    group: Pid,
}

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    /// Killed by this signal, which it did not survive.
    Signal(i32),
}

impl Exit {
    fn of(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt as _;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Code(code),
            (None, Some(signal)) => Self::Signal(signal),
            // Neither: not a state a waited-for child is in; report it as a failure.
            (None, None) => Self::Code(-1),
        }
    }

    /// The exit code a shell would show: a signal's is 128 plus its number (137 for SIGKILL,
    /// an out-of-memory kill), as GitLab reports it, so `exit_codes` rules can name it.
    pub(crate) fn code(self) -> i32 {
        match self {
            Self::Code(code) => code,
            Self::Signal(signal) => 128 + signal,
        }
    }
}

impl Script {
    /// Starts `shell script_path` in `dir`, with `variables` added to the environment. Output
    /// (stdout and stderr, in the order written) arrives on the returned channel; the channel
    /// closes when every process holding the pipe is gone.
    pub(crate) fn spawn(
        shell: &Path,
        script_path: &Path,
        dir: &Path,
        variables: &BTreeMap<String, String>,
    ) -> std::io::Result<(Self, mpsc::Receiver<Vec<u8>>)> {
        let (reader, writer) = std::io::pipe()?;
        let child = Command::new(shell)
            .arg(script_path)
            .current_dir(dir)
            .envs(variables)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .process_group(0)
            .kill_on_drop(false)
            .spawn()?;
        // The Command held the only copies of the write end; they are closed now, so the
        // reader sees end-of-file once the script's processes are gone.
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the script exited at once"))?;
        let group = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
        let (sender, receiver) = mpsc::channel(16);
        std::thread::Builder::new()
            .name("build-output".to_owned())
            .spawn(move || pump(reader, &sender))?;
        Ok((Self { child, group }, receiver))
    }

    pub(crate) fn pid(&self) -> i32 {
        self.group.as_raw()
    }

    pub(crate) async fn wait(&mut self) -> std::io::Result<Exit> {
        let status = self.child.wait().await?;
        Ok(Exit::of(status))
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited within `grace`.
    pub(crate) async fn stop(&mut self, grace: Duration) -> std::io::Result<Exit> {
        self.signal(Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Exit::of(status?))
        } else {
            self.signal(Signal::SIGKILL);
            self.wait().await
        }
    }

    /// Kills whatever the script left behind in its group (background jobs, the watchdog).
    pub(crate) fn kill_group(&self) {
        self.signal(Signal::SIGKILL);
    }

    fn signal(&self, signal: Signal) {
        // ESRCH: the group is already gone, which is what we wanted.
        if let Err(error) = killpg(self.group, signal)
            && error != nix::errno::Errno::ESRCH
        {
            tracing::warn!(pgid = self.group.as_raw(), %error, "cannot signal the build's process group");
        }
    }
}

fn pump(mut reader: std::io::PipeReader, sender: &mpsc::Sender<Vec<u8>>) {
    let mut buffer = vec![0_u8; READ_SIZE];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "reading build output failed");
                return;
            }
        }
    }
}
