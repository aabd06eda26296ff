//! The exit codes, in one place: what each means (for `--help`) and which error gives which.

use crate::client::ClientError;
use std::process::ExitCode;

/// How `lockstep` ends. Scripts branch on these, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The command did what it was asked; a followed pipeline succeeded.
    Success,
    /// The followed pipeline failed.
    Failed,
    /// The followed pipeline was canceled.
    Canceled,
    /// Bad arguments, a missing file or token, or a pipeline file that does not lint.
    Usage,
    /// No server answered at the URL.
    Unreachable,
    /// The server answered with an error not covered above, or a local failure.
    Other,
    /// Ctrl-C stopped the command and the pipeline goes on.
    Interrupted,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failed => 1,
            Self::Canceled => 2,
            Self::Usage => 3,
            Self::Unreachable => 4,
            Self::Other => 5,
            // 128 + SIGINT, what a shell reports for a command Ctrl-C stopped.
            Self::Interrupted => 130,
        }
    }

    /// The exit of a command that failed with `error`: the first cause that says which.
    pub(crate) fn of_error(error: &anyhow::Error) -> Self {
        for cause in error.chain() {
            if let Some(client) = cause.downcast_ref::<ClientError>() {
                return client.exit();
            }
            if cause.is::<UsageError>() {
                return Self::Usage;
            }
        }
        Self::Other
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// The text `lockstep --help` ends with.
pub(crate) const HELP: &str = "\
Exit codes:
  0    success (for `run`: the pipeline succeeded)
  1    the pipeline failed
  2    the pipeline was canceled
  3    usage error: bad arguments, no token, no pipeline file, or a file that does not lint
  4    the server is unreachable (connection refused or timed out)
  5    any other error: the server refused the call (a 4xx or 5xx not covered above)
  130  interrupted by Ctrl-C; the pipeline goes on (`lockstep cancel N` stops it)

Configuration: --url, else LOCKSTEP_URL, else `url` in the config file, else
http://127.0.0.1:8080; --token, else LOCKSTEP_TOKEN, else `token` in the config file, which
`lockstep login` writes to $XDG_CONFIG_HOME/lockstep/config.toml (~/.config/lockstep/config.toml).
Colour only on a terminal, and never when NO_COLOR is set.";

/// A mistake the user can fix by calling differently: exits 3. The message names the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// A [`UsageError`] as an `anyhow::Error`, for `return Err(usage(...))`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_3_even_under_context() {
        let error = usage("no token").context("while logging in");
        assert_eq!(Exit::of_error(&error), Exit::Usage);
    }

    #[test]
    fn unreachable_servers_exit_4() {
        let error = anyhow::Error::from(ClientError::Unreachable {
            url: "http://127.0.0.1:1".to_owned(),
            why: "connection refused",
        });
        assert_eq!(Exit::of_error(&error), Exit::Unreachable);
    }

    #[test]
    fn other_failures_exit_5() {
        let error = anyhow::anyhow!("the disk is full");
        assert_eq!(Exit::of_error(&error), Exit::Other);
    }

    #[test]
    fn every_code_is_documented_in_help() {
        let all = [
            Exit::Success,
            Exit::Failed,
            Exit::Canceled,
            Exit::Usage,
            Exit::Unreachable,
            Exit::Other,
            Exit::Interrupted,
        ];
        for exit in all {
            let line = format!("\n  {:<4} ", exit.code());
            assert!(HELP.contains(&line), "{exit:?} missing from HELP");
        }
    }
}
