//! `lockstep-bench`: runs the benchmark scenarios and writes their figures as JSON.

use anyhow::Context as _;
use clap::Parser;
use lockstep_bench::{Options, run_all};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "lockstep-bench",
    about = "Lockstep's benchmark scenarios (run by `cargo xtask bench`)"
)]
struct Args {
    /// Where to write the figures (JSON).
    #[arg(long)]
    out: PathBuf,
    /// A few seconds in all: a smoke run, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Rounds per scenario (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// The lockstep-server binary for the HTTP scenarios.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The lockstep-worker binary for cancel to stop.
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Run only the scenarios whose name contains this (repeatable), e.g. `--only "bulk"`.
    #[arg(long)]
    only: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = Options {
        quick: args.quick,
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
        server_bin: args.server_bin,
        worker_bin: args.worker_bin,
        only: args.only,
    };
    let report = run_all(&options);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(())
}
