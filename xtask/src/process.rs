//! Running child processes: echo what runs, and turn a failed exit into an error naming it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use anyhow::{Context, bail};

/// A `Command` for the cargo that runs us (`$CARGO`), so toolchain overrides carry through.
pub(crate) fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    Command::new(program)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to where we run, as cargo reads it)
/// or the workspace's `target/`.
pub(crate) fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => Ok(std::env::current_dir()
            .context("cannot read the current directory")?
            .join(dir)),
        None => Ok(root.join("target")),
    }
}

/// Runs `command` with inherited stdio and fails unless it exits successfully.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = status(command)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(command));
    }
    Ok(())
}

/// Runs `command` with inherited stdio and returns how it exited, success or not.
pub(crate) fn status(command: &mut Command) -> anyhow::Result<ExitStatus> {
    eprintln!("$ {}", display(command));
    command
        .status()
        .with_context(|| format!("could not run `{}`", display(command)))
}

/// Runs `command` quietly and returns its stdout; on failure the error carries its stderr.
pub(crate) fn output(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{}`", display(command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            display(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed invalid UTF-8", display(command)))
}

/// The command line as a person would type it, for messages (not for a shell: no quoting).
pub(crate) fn display(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

/// A child's exit status as our exit code, so callers see exactly what it reported; killed by a
/// signal (no code) or out of range counts as plain failure.
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code().map(u8::try_from) {
        Some(Ok(code)) => ExitCode::from(code),
        _ => ExitCode::FAILURE,
    }
}
