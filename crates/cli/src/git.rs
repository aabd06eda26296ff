//! What the git checkout around the current directory says: its top-level directory, branch
//! and commit, the defaults of `lockstep run`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The checkout the current directory is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkout {
    pub(crate) top: PathBuf,
    /// `None` on a detached HEAD or an unborn branch.
    pub(crate) branch: Option<String>,
    /// `None` before the first commit.
    pub(crate) sha: Option<String>,
}

/// The checkout, or `None` outside one (or without git).
pub(crate) fn checkout() -> Option<Checkout> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    Some(Checkout {
        top: PathBuf::from(top),
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"]).and_then(branch),
        sha: git(&["rev-parse", "HEAD"]),
    })
}

/// `rev-parse --abbrev-ref HEAD` says `HEAD` when no branch is checked out.
fn branch(name: String) -> Option<String> {
    (name != "HEAD").then_some(name)
}

/// The trimmed output of a git command that succeeded.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_head_has_no_branch() {
        assert_eq!(branch("HEAD".to_owned()), None);
        assert_eq!(branch("main".to_owned()).as_deref(), Some("main"));
    }
}
