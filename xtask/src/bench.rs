//! `cargo xtask bench`: runs `lockstep-bench` against the dev database and, with `--compare`,
//! the peer benchmarks on the same server first; prints each figure (the median of its rounds,
//! with min and max) beside the peer's from the same run and writes `target/bench/report.json`.

mod machine;
mod peers;
mod report;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use self::peers::PeerRun;
use self::report::{Ours, Report};
use crate::{cargo, process};

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Fewer, shorter rounds (and 2,000 jobs per peer run): a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// First run ../shared/peers/run-peers on the same server, and give each figure as a ratio
    /// to the peer's.
    #[arg(long)]
    compare: bool,
    /// Report the figures in FILE (a previous `lockstep-bench --out`) instead of building and
    /// running the bench.
    #[arg(long, value_name = "FILE", conflicts_with = "compare")]
    ours: Option<PathBuf>,
}

/// What one run measured.
#[derive(Debug)]
struct Measured {
    ours: Ours,
    peers: Option<PeerRun>,
    database_url: Option<String>,
    /// Whether lockstep-bench exited successfully (it may still have written some figures).
    bench_succeeded: bool,
}

/// Runs the bench (and the peers), prints the table and writes the report. Fails if the bench
/// did, after reporting what it measured; a target missed is a finding, not a failure.
pub(crate) fn bench(root: &Path, options: &Options) -> anyhow::Result<ExitCode> {
    let out_dir = process::target_dir(root)?.join("bench");
    let measured = match &options.ours {
        Some(path) => Measured {
            ours: read_ours(path)?,
            peers: None,
            database_url: None,
            bench_succeeded: true,
        },
        None => measure(root, &out_dir, options)?,
    };
    let report = Report::merge(&measured.ours, measured.peers.as_ref());
    let machine = machine::describe(root, measured.database_url.as_deref(), options.quick);
    println!("{}", report.table());
    let path = out_dir.join("report.json");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    fs::write(&path, report.to_json(&machine))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    let missing = report.missing();
    if !missing.is_empty() {
        eprintln!("warning: the bench reported no {}", missing.join(", "));
    }
    if measured.bench_succeeded {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: lockstep-bench failed; the figures above are the ones it wrote");
        Ok(ExitCode::FAILURE)
    }
}

/// Builds, migrates, runs the peers if asked, then our bench: the peers first, so both measure
/// the same server in the same state of the machine.
fn measure(root: &Path, out_dir: &Path, options: &Options) -> anyhow::Result<Measured> {
    let script = root.join(peers::SCRIPT);
    if options.compare && !script.is_file() {
        bail!(
            "--compare needs ../shared/peers/run-peers next to the checkout (looked for {})",
            script.display()
        );
    }
    build(root)?;
    let database_url = cargo::migrated_database(root)?;
    let peers = if options.compare {
        let server = peers::server_url(&database_url)?;
        Some(peers::run(&script, &server, options.quick)?)
    } else {
        None
    };
    let ours_path = out_dir.join("ours.json");
    // A file left by an earlier run must not pass for this run's figures.
    match fs::remove_file(&ours_path) {
        Err(err) if err.kind() != ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("cannot remove {}", ours_path.display()));
        }
        _ => {}
    }
    let release = process::target_dir(root)?.join("release");
    let mut command = Command::new(release.join("lockstep-bench"));
    command
        .current_dir(root)
        .env("DATABASE_URL", &database_url)
        .arg("--out")
        .arg(&ours_path)
        .arg("--server-bin")
        .arg(release.join("lockstep-server"))
        .arg("--worker-bin")
        .arg(release.join("lockstep-worker"));
    if options.quick {
        command.arg("--quick");
    }
    let status = process::status(&mut command)?;
    if !status.success() && !ours_path.is_file() {
        bail!(
            "`{}` failed ({status}) and wrote no figures",
            process::display(&command)
        );
    }
    Ok(Measured {
        ours: read_ours(&ours_path)?,
        peers,
        database_url: Some(database_url),
        bench_succeeded: status.success(),
    })
}

/// The binaries in release mode: the bench starts the server and a worker itself.
fn build(root: &Path) -> anyhow::Result<()> {
    let mut build = process::cargo();
    build.current_dir(root).args([
        "build",
        "--release",
        "-p",
        "lockstep-bench",
        "-p",
        "lockstep-api-http",
        "-p",
        "lockstep-worker",
        "--bins",
    ]);
    process::run(&mut build).context("building the bench and the server failed")
}

fn read_ours(path: &Path) -> anyhow::Result<Ours> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ours::parse(&text).with_context(|| format!("cannot read the figures in {}", path.display()))
}
