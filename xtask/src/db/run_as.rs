//! Which user runs the server programs: `initdb`, `pg_ctl` and `postgres` refuse to run as root,
//! so as root (CI containers) they run as the `postgres` system user through `runuser`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process;

/// The system user that owns and runs the cluster when we are root.
const SERVER_USER: &str = "postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// We are an ordinary user: run everything directly.
    CurrentUser,
    /// We are root: run server programs as `postgres`, and give it the cluster's files.
    ServerUser,
}

impl RunAs {
    pub(crate) fn detect() -> anyhow::Result<Self> {
        let uid = process::output(Command::new("id").arg("-u")).context("finding our user id")?;
        if uid.trim() != "0" {
            return Ok(Self::CurrentUser);
        }
        let has_server_user = Command::new("id")
            .args(["-u", SERVER_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !has_server_user {
            bail!(
                "running as root, but PostgreSQL refuses to run as root and there is no \
                 `{SERVER_USER}` user to run it as; create one (`useradd --system {SERVER_USER}`) \
                 or run as an ordinary user"
            );
        }
        Ok(Self::ServerUser)
    }

    /// A command running `program` as the user that owns the cluster.
    pub(crate) fn command(self, program: &Path) -> Command {
        match self {
            Self::CurrentUser => Command::new(program),
            Self::ServerUser => {
                let mut command = Command::new("runuser");
                command.args(["-u", SERVER_USER, "--"]).arg(program);
                command
            }
        }
    }

    /// Hands `dir` and everything in it to the user that runs the server.
    pub(crate) fn give(self, dir: &Path) -> anyhow::Result<()> {
        if self == Self::ServerUser {
            let owner = format!("{SERVER_USER}:{SERVER_USER}");
            process::output(Command::new("chown").arg("-R").arg(owner).arg(dir))?;
        }
        Ok(())
    }

    /// Whether the server user can enter `dir`: a checkout under `/root` (mode 700) is out of
    /// its reach even when the directory itself is its own.
    pub(crate) fn can_reach(self, dir: &Path) -> anyhow::Result<bool> {
        let mut test = self.command(Path::new("test"));
        test.arg("-x")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = test
            .status()
            .with_context(|| format!("could not run `{}`", process::display(&test)))?;
        Ok(status.success())
    }
}
