//! Tasks that run workspace binaries and tests against the database: migrate, test, stress.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;

use crate::{browser, db, process};

/// Starts the dev database if needed and applies the migrations to it.
pub(crate) fn migrate(root: &Path) -> anyhow::Result<()> {
    migrated_database(root).map(drop)
}

/// Starts the dev database if needed, migrates it and returns its URL.
pub(crate) fn migrated_database(root: &Path) -> anyhow::Result<String> {
    let url = db::ensure_started(root)?;
    apply_migrations(root, &url)?;
    Ok(url)
}

/// Starts the dev database if needed, migrates it, then runs the whole workspace's tests.
/// Without Chromium and ChromeDriver it runs nothing: the browser tests would fail, and the fix
/// is better said once, first.
pub(crate) fn test(root: &Path, args: &[String]) -> anyhow::Result<()> {
    browser::require()?;
    let mut command = migrated_cargo(root)?;
    command.args(["test", "--workspace"]).args(args);
    process::run(&mut command).context("tests failed")
}

/// Starts the dev database if needed, migrates it, then runs the stress binary; its exit code is
/// ours, so a CI step sees exactly what it reported.
pub(crate) fn stress(root: &Path, seconds: u64, threads: u32) -> anyhow::Result<ExitCode> {
    Ok(process::exit_code(stress_status(root, seconds, threads)?))
}

/// The storm's exit status: success when it found no deadlock, violation or double acquire.
pub(crate) fn stress_status(
    root: &Path,
    seconds: u64,
    threads: u32,
) -> anyhow::Result<std::process::ExitStatus> {
    let mut command = migrated_cargo(root)?;
    command
        .args([
            "run",
            "--quiet",
            "-p",
            "lockstep-stress",
            "--bin",
            "lockstep-stress",
        ])
        .args(["--", "--seconds", &seconds.to_string()])
        .args(["--threads", &threads.to_string()]);
    process::status(&mut command)
}

/// Writes the server's OpenAPI document to docs/openapi.json, where a test compares it.
pub(crate) fn openapi(root: &Path) -> anyhow::Result<()> {
    let output = process::cargo()
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "lockstep-api-http",
            "--bin",
            "lockstep-server",
        ])
        .arg("--")
        .arg("--print-openapi")
        .output()
        .context("cannot run lockstep-server")?;
    if !output.status.success() {
        anyhow::bail!(
            "lockstep-server --print-openapi failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = root.join("docs/openapi.json");
    std::fs::write(&path, &output.stdout)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A cargo command pointed at the dev database, started and migrated.
fn migrated_cargo(root: &Path) -> anyhow::Result<Command> {
    let url = migrated_database(root)?;
    let mut command = process::cargo();
    command.current_dir(root).env("DATABASE_URL", &url);
    Ok(command)
}

fn apply_migrations(root: &Path, url: &str) -> anyhow::Result<()> {
    let mut command = process::cargo();
    command.current_dir(root).env("DATABASE_URL", url).args([
        "run",
        "--quiet",
        "-p",
        "lockstep-storage-pg",
        "--bin",
        "lockstep-migrate",
    ]);
    process::run(&mut command).context("migrating the database failed")
}
