//! `lockstep-worker`: takes builds from a Lockstep server and runs them.

use anyhow::Context as _;
use clap::Parser;
use lockstep_worker::{Config, Shutdown};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "lockstep-worker",
    version,
    about = "Runs builds for a Lockstep server"
)]
struct Args {
    /// The server's base URL.
    #[arg(long, env = "LOCKSTEP_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// This runner's token, as returned once by `POST /api/v1/runners`.
    #[arg(long, env = "LOCKSTEP_RUNNER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Builds to run at once.
    #[arg(long, env = "LOCKSTEP_CONCURRENCY", default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Where build directories go (default: a directory under the system's temp dir).
    #[arg(long, env = "LOCKSTEP_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// The shell that runs scripts (default: bash if installed, else sh).
    #[arg(long, env = "LOCKSTEP_SHELL")]
    shell: Option<PathBuf>,
    /// Seconds running builds may take to finish after SIGTERM/SIGINT before they are canceled.
    #[arg(long, env = "LOCKSTEP_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "the binary reports its fatal error")]
            {
                eprintln!("lockstep-worker: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    let config = config(args)?;
    let shutdown = Shutdown::default();
    tokio::spawn(signals(shutdown.clone(), config.shutdown_grace));
    lockstep_worker::run(config, shutdown).await
}

fn config(args: Args) -> anyhow::Result<Config> {
    let token = args.token.filter(|t| !t.trim().is_empty()).context(
        "no runner token: register a runner (POST /api/v1/runners with the API token) and set \
         LOCKSTEP_RUNNER_TOKEN (or pass --token) to the token it returns",
    )?;
    let shell = match args.shell {
        Some(shell) => shell,
        None => default_shell().context("neither bash nor sh is on PATH: pass --shell")?,
    };
    Ok(Config {
        url: args.url,
        token,
        concurrency: usize::from(args.concurrency),
        work_dir: args.work_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("lockstep-worker-{}", std::process::id()))
        }),
        shell,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    })
}

fn default_shell() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["bash", "sh"].into_iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

async fn signals(shutdown: Shutdown, grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals");
        return;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        shutdown.signal(grace);
    }
}
