//! `cargo xtask db …`: a throwaway local PostgreSQL cluster for development and tests or, when
//! `DATABASE_URL` is set, the server that names.
//!
//! `db start` writes `target/lockstep-db/database-url`, which `lockstep-test-db` reads when
//! `DATABASE_URL` is unset, so a plain `cargo test` finds the cluster too.

mod binaries;
mod cluster;
mod location;
mod run_as;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, anyhow};
use clap::Subcommand;

use self::binaries::PgBinaries;
use self::cluster::Cluster;
use self::location::{Placement, StateDir};
use self::run_as::RunAs;
use crate::process;

/// The dev database `db start` creates and `db url` names.
const DEV_DATABASE: &str = "lockstep";

const NO_CLUSTER: &str = "no local database yet: run `cargo xtask db start` (or set DATABASE_URL)";

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create the cluster on first use, start it, create the `lockstep` database, print its URL.
    Start,
    /// Stop the cluster (fast shutdown: open sessions are disconnected).
    Stop,
    /// Say whether the cluster runs, where its data lives and its URL.
    Status,
    /// Stop and delete the cluster, then start a fresh one.
    Reset,
    /// Print the URL of the `lockstep` database (starts nothing).
    Url,
    /// Run psql on the `lockstep` database, passing ARGS on.
    Psql {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub(crate) fn run(root: &Path, command: DbCommand) -> anyhow::Result<ExitCode> {
    if let Some(url) = external_url() {
        return run_external(command, &url);
    }
    let state = StateDir::new(root);
    match command {
        DbCommand::Start => println!("{}", start(root, &state)?),
        DbCommand::Stop => stop(root, &state)?,
        DbCommand::Status => status(root, &state)?,
        DbCommand::Reset => println!("{}", reset(root, &state)?),
        DbCommand::Url => println!("{}", recorded_url(&state)?),
        DbCommand::Psql { args } => return psql(&recorded_url(&state)?, &args),
    }
    Ok(ExitCode::SUCCESS)
}

/// The URL of a running dev database: `DATABASE_URL`, or the local cluster, started if need be.
pub(crate) fn ensure_started(root: &Path) -> anyhow::Result<String> {
    match external_url() {
        Some(url) => Ok(url),
        None => start(root, &StateDir::new(root)),
    }
}

/// `DATABASE_URL`, when set to something: it replaces the local cluster everywhere.
fn external_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

fn run_external(command: DbCommand, url: &str) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Start | DbCommand::Status => {
            check_reachable(url)?;
            eprintln!("DATABASE_URL is set: using that server, no local cluster");
            println!("{url}");
        }
        DbCommand::Stop | DbCommand::Reset => {
            eprintln!("DATABASE_URL is set: using that server; the local cluster is left alone");
        }
        DbCommand::Url => println!("{url}"),
        DbCommand::Psql { args } => return psql(url, &args),
    }
    Ok(ExitCode::SUCCESS)
}

/// The server's version (`SHOW server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`), for
/// reports that say what they were measured on.
pub(crate) fn server_version(url: &str) -> anyhow::Result<String> {
    let psql = binaries::find_psql().context("psql not found")?;
    let mut show = Command::new(psql);
    show.args(["--no-psqlrc", "--quiet", "--tuples-only", "--no-align"])
        .args(["--dbname", url, "--command", "SHOW server_version"]);
    Ok(process::output(&mut show)?.trim().to_owned())
}

/// Asks the server for `SELECT 1` when psql is at hand; without psql the first real use will say.
fn check_reachable(url: &str) -> anyhow::Result<()> {
    let Some(psql) = binaries::find_psql() else {
        return Ok(());
    };
    let mut select = Command::new(psql);
    select
        .args(["--no-psqlrc", "--quiet", "--tuples-only", "--dbname", url])
        .args(["--command", "SELECT 1"]);
    process::output(&mut select).context("DATABASE_URL is set but its server does not answer")?;
    Ok(())
}

/// The dev database for a task that runs until it is stopped (`dev`, `demo`). It remembers
/// whether it started the local cluster, so the task stops only what it started: another
/// checkout's tests or a contributor's psql may be using a cluster that was already up.
#[derive(Debug)]
pub(crate) struct Session {
    url: String,
    /// The cluster, when this session started it.
    started: Option<Cluster>,
}

impl Session {
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn started_here(&self) -> bool {
        self.started.is_some()
    }

    /// Stops the cluster if this session started it; leaves it alone otherwise.
    pub(crate) fn stop_if_started(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.started {
            cluster.stop()?;
            eprintln!("stopped PostgreSQL");
        }
        Ok(())
    }
}

/// Like `ensure_started`, for a task that will stop the cluster again if it started it.
pub(crate) fn start_session(root: &Path) -> anyhow::Result<Session> {
    if let Some(url) = external_url() {
        return Ok(Session { url, started: None });
    }
    let (url, started) = start_tracked(root, &StateDir::new(root))?;
    Ok(Session { url, started })
}

fn start(root: &Path, state: &StateDir) -> anyhow::Result<String> {
    start_tracked(root, state).map(|(url, _)| url)
}

/// Starts the cluster if need be; returns the dev database's URL and, if this call started the
/// cluster, the cluster.
fn start_tracked(root: &Path, state: &StateDir) -> anyhow::Result<(String, Option<Cluster>)> {
    let cluster = open_or_place(root, state)?;
    if !cluster.is_initialised() {
        eprintln!(
            "initialising a PostgreSQL cluster in {}",
            cluster.dir().display()
        );
        cluster.init()?;
    }
    let started_here = if cluster.is_running()? {
        eprintln!("PostgreSQL is already running");
        false
    } else {
        cluster.start()?;
        eprintln!("started PostgreSQL (log: {})", cluster.log_file().display());
        true
    };
    cluster.ensure_database(DEV_DATABASE)?;
    let url = cluster.url(DEV_DATABASE);
    state.write_database_url(&url)?;
    Ok((url, started_here.then_some(cluster)))
}

fn stop(root: &Path, state: &StateDir) -> anyhow::Result<()> {
    let Some(cluster) = existing_cluster(root, state)? else {
        eprintln!("there is no local cluster, so nothing to stop");
        return Ok(());
    };
    if cluster.is_running()? {
        cluster.stop()?;
        eprintln!("stopped PostgreSQL");
    } else {
        eprintln!("PostgreSQL is not running");
    }
    Ok(())
}

fn status(root: &Path, state: &StateDir) -> anyhow::Result<()> {
    let Some(cluster) = existing_cluster(root, state)? else {
        println!("stopped (no local cluster yet; `cargo xtask db start` creates one)");
        return Ok(());
    };
    let running = if cluster.is_running()? {
        "running"
    } else {
        "stopped"
    };
    println!("{running}");
    println!("data: {}", cluster.data_dir().display());
    println!("log:  {}", cluster.log_file().display());
    println!("url:  {}", cluster.url(DEV_DATABASE));
    Ok(())
}

fn reset(root: &Path, state: &StateDir) -> anyhow::Result<String> {
    stop(root, state)?;
    if let Some(dir) = recorded_cluster_dir(root, state)? {
        eprintln!("deleting {}", dir.display());
        match fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("deleting {}", dir.display()));
            }
            _ => {}
        }
    }
    state.forget()?;
    start(root, state)
}

fn recorded_url(state: &StateDir) -> anyhow::Result<String> {
    state.database_url()?.ok_or_else(|| anyhow!(NO_CLUSTER))
}

/// Runs psql on `url` with the caller's arguments and terminal; its exit code is ours.
fn psql(url: &str, args: &[String]) -> anyhow::Result<ExitCode> {
    let psql = binaries::find_psql().context(
        "psql not found on PATH nor beside the PostgreSQL server binaries; install the \
         PostgreSQL client (Debian/Ubuntu: `apt-get install postgresql-client`)",
    )?;
    let mut command = Command::new(psql);
    command.arg("--dbname").arg(url).args(args);
    // Not echoed like other commands: psql's output is the point, and may be piped.
    let status = command
        .status()
        .with_context(|| format!("could not run `{}`", process::display(&command)))?;
    Ok(process::exit_code(status))
}

/// The recorded cluster when it is set up; `None` when `db start` has yet to create one.
fn existing_cluster(root: &Path, state: &StateDir) -> anyhow::Result<Option<Cluster>> {
    let Some(dir) = recorded_cluster_dir(root, state)? else {
        return Ok(None);
    };
    let cluster = Cluster::new(dir, PgBinaries::find()?, RunAs::detect()?);
    Ok(cluster.is_initialised().then_some(cluster))
}

/// The recorded cluster directory, if it is one this checkout may use: a checkout copied along
/// with its `target/` must not take over the original's cluster.
fn recorded_cluster_dir(root: &Path, state: &StateDir) -> anyhow::Result<Option<PathBuf>> {
    let Some(recorded) = state.cluster_dir()? else {
        return Ok(None);
    };
    let ours = recorded == state.in_tree_cluster() || recorded == location::tmp_cluster_dir(root)?;
    Ok(ours.then_some(recorded))
}

/// The cluster to start: the recorded one if set up, else a new one placed and recorded.
fn open_or_place(root: &Path, state: &StateDir) -> anyhow::Result<Cluster> {
    let bins = PgBinaries::find()?;
    let run_as = RunAs::detect()?;
    if let Some(dir) = recorded_cluster_dir(root, state)? {
        let cluster = Cluster::new(dir, bins.clone(), run_as);
        if cluster.is_initialised() {
            return Ok(cluster);
        }
    }
    let dir = place(root, state, run_as)?;
    state.record_cluster_dir(&dir)?;
    Ok(Cluster::new(dir, bins, run_as))
}

fn place(root: &Path, state: &StateDir, run_as: RunAs) -> anyhow::Result<PathBuf> {
    let in_tree = state.in_tree_cluster();
    let as_root = run_as == RunAs::ServerUser;
    let reachable = || server_user_reaches(&in_tree, run_as);
    let why = match location::placement(&cluster::socket_dir(&in_tree), as_root, reachable)? {
        Placement::InTree => return Ok(in_tree),
        Placement::TmpForSocketPath => "the checkout is too deep for a Unix socket path",
        Placement::TmpForAccess => "the postgres user cannot enter the checkout",
    };
    let dir = location::tmp_cluster_dir(root)?;
    eprintln!("{why}, so the cluster goes in {}", dir.display());
    Ok(dir)
}

/// Creates `dir`, hands it to the server user and asks whether that user can get in.
fn server_user_reaches(dir: &Path, run_as: RunAs) -> anyhow::Result<bool> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    run_as.give(dir)?;
    let reachable = run_as.can_reach(dir)?;
    if !reachable {
        // Only tidiness: an empty directory left behind would do no harm.
        let _ = fs::remove_dir(dir);
    }
    Ok(reachable)
}
