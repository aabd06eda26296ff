//! `lockstep-stress`: runs the storm in a fresh database on the server `cargo xtask db start`
//! runs (or `DATABASE_URL`), prints a one-line JSON report, and fails if anything that must
//! never happen did.

use clap::Parser;
use lockstep_stress::{StormConfig, run};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Storm Lockstep's transitions and check for deadlocks and broken invariants")]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Worker threads, each with its own connection and runner.
    #[arg(long, default_value_t = 8)]
    threads: usize,
    /// Seed of the random mix (by default the clock's).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let config = StormConfig {
        duration: Duration::from_secs(args.seconds),
        threads: args.threads.max(1),
        seed,
    };
    // A database of its own, cloned from the migrated template and dropped at the end.
    let db = lockstep_test_db::TestDb::new();
    let report = run(db.url(), config)?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "storm: seed {seed}, {} threads, {:.1} s",
        config.threads, report.seconds
    )?;
    for violation in report.violations.iter().take(20) {
        writeln!(err, "invariant violated: {violation}")?;
    }
    for error in report.errors.iter().take(20) {
        writeln!(err, "unexpected error: {error}")?;
    }
    writeln!(std::io::stdout().lock(), "{}", report.to_json())?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
