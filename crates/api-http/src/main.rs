//! `lockstep-server`: the REST API, the runner protocol and the lease reaper in one process.

use anyhow::{Context as _, bail};
use clap::Parser;
use lockstep_api_http::{Objects, ObjectsConfig, ServerConfig, Settings};
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// The shortest admin token accepted: shorter ones are guessable.
const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Parser)]
#[command(
    name = "lockstep-server",
    version,
    about = "Lockstep's CI build coordinator server"
)]
struct Args {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", required_unless_present = "print_openapi")]
    database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "LOCKSTEP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The token admin calls must present as `Authorization: Bearer <token>` (16+ characters).
    #[arg(long, env = "LOCKSTEP_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Seconds a claimed build stays leased without a heartbeat.
    #[arg(long, env = "LOCKSTEP_LEASE_SECONDS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(2..=3600))]
    lease_seconds: u64,
    /// Seconds a freshly claimed build waits for its runner's first heartbeat, log append or
    /// report before it goes back to pending, its attempt not spent (at most the lease;
    /// default 10, or the lease if shorter).
    #[arg(long, env = "LOCKSTEP_ACKNOWLEDGE_SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    acknowledge_seconds: Option<u64>,
    /// Seconds a build asked to stop may stay canceling before it is canceled without its
    /// runner's confirmation.
    #[arg(long, env = "LOCKSTEP_CANCEL_GRACE_SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86400))]
    cancel_grace_seconds: u64,
    /// Seconds since its last contact within which a runner counts as online.
    #[arg(long, env = "LOCKSTEP_RUNNER_ONLINE_SECONDS", default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(60..=86400))]
    runner_online_seconds: u64,
    /// Always mark the dashboard's session cookie `Secure` (it is whenever a request arrives with
    /// `X-Forwarded-Proto: https`): set it when a TLS proxy in front does not send that header.
    #[arg(long, env = "LOCKSTEP_SECURE_COOKIES")]
    secure_cookies: bool,
    /// The directory that keeps artifacts and caches (created when missing), unless
    /// LOCKSTEP_OBJECTS_URL names a store.
    #[arg(long, env = "LOCKSTEP_OBJECTS_DIR", default_value = "lockstep-objects")]
    objects_dir: std::path::PathBuf,
    /// An S3-compatible store for artifacts and caches, `s3://bucket/prefix`; credentials,
    /// region and endpoint come from the usual AWS_* variables (AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP).
    #[arg(long, env = "LOCKSTEP_OBJECTS_URL")]
    objects_url: Option<String>,
    /// The largest artifacts or cache archive one upload may send, in bytes.
    #[arg(long, env = "LOCKSTEP_MAX_ARTIFACT_BYTES", default_value_t = lockstep_api_http::DEFAULT_MAX_ARTIFACT_BYTES,
        value_parser = clap::value_parser!(u64).range(1..))]
    max_artifact_bytes: u64,
    /// How long artifacts are kept when their job's `expire_in` says nothing: a duration such
    /// as `30 days`, or `never`.
    #[arg(long, env = "LOCKSTEP_ARTIFACTS_EXPIRE_IN", default_value = "30 days")]
    artifacts_expire_in: String,
    /// Seconds between two sweeps for expired artifacts.
    #[arg(long, env = "LOCKSTEP_SWEEP_SECONDS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86400))]
    sweep_seconds: u64,
    /// Database connections in the pool.
    #[arg(long, env = "LOCKSTEP_POOL_SIZE", default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pool_size: u32,
    /// Do not apply migrations at start (another process does it).
    #[arg(long, env = "LOCKSTEP_SKIP_MIGRATIONS")]
    skip_migrations: bool,
    /// Print the OpenAPI document and exit.
    #[arg(long, exclusive = true)]
    print_openapi: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line that names the fix, not a backtrace.
            #[expect(clippy::print_stderr, reason = "the binary reports its fatal error")]
            {
                eprintln!("lockstep-server: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    if args.print_openapi {
        std::io::stdout()
            .write_all(lockstep_api_http::openapi_json().as_bytes())
            .context("cannot write to stdout")?;
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = config(args)?;
    lockstep_api_http::serve(config).await
}

fn config(args: Args) -> anyhow::Result<ServerConfig> {
    let Some(api_token) = args.api_token.filter(|t| !t.trim().is_empty()) else {
        bail!(
            "no API token: set LOCKSTEP_API_TOKEN (or pass --api-token) to a secret of at least \
             {MIN_TOKEN_CHARS} characters, e.g. `export LOCKSTEP_API_TOKEN=$(openssl rand -hex 32)`"
        );
    };
    if api_token.chars().count() < MIN_TOKEN_CHARS {
        bail!("LOCKSTEP_API_TOKEN is too short: use at least {MIN_TOKEN_CHARS} characters");
    }
    let lease = Duration::from_secs(args.lease_seconds);
    let acknowledge_seconds = match args.acknowledge_seconds {
        Some(seconds) if seconds > args.lease_seconds => bail!(
            "LOCKSTEP_ACKNOWLEDGE_SECONDS ({seconds}) must not be longer than LOCKSTEP_LEASE_SECONDS ({})",
            args.lease_seconds
        ),
        Some(seconds) => seconds,
        None => lockstep_api_http::DEFAULT_ACKNOWLEDGE_WITHIN
            .as_secs()
            .min(args.lease_seconds),
    };
    let acknowledge_within = Duration::from_secs(acknowledge_seconds);
    let cancel_grace = Duration::from_secs(args.cancel_grace_seconds);
    let artifacts_expire_in = match lockstep_domain::Expiry::parse(&args.artifacts_expire_in) {
        Ok(lockstep_domain::Expiry::Seconds(seconds)) => Some(Duration::from_secs(seconds)),
        Ok(_) => None,
        Err(why) => bail!("LOCKSTEP_ARTIFACTS_EXPIRE_IN {why}"),
    };
    let objects = Objects::open(&objects_config(args.objects_dir, args.objects_url))?;
    Ok(ServerConfig {
        database_url: args.database_url.context("set DATABASE_URL")?,
        listen: args.listen,
        pool_size: args.pool_size,
        migrate: !args.skip_migrations,
        settings: Settings {
            api_token,
            lease,
            acknowledge_within,
            cancel_grace,
            reaper_interval: lockstep_api_http::reaper_interval(
                lease,
                acknowledge_within,
                cancel_grace,
            ),
            runner_online_within: Duration::from_secs(args.runner_online_seconds),
            secure_cookies: args.secure_cookies,
            objects,
            max_artifact_bytes: args.max_artifact_bytes,
            artifacts_expire_in,
            sweep_interval: Duration::from_secs(args.sweep_seconds),
        },
    })
}

/// The store LOCKSTEP_OBJECTS_URL names (with the AWS_* variables as its options), or else
/// the directory.
fn objects_config(dir: std::path::PathBuf, url: Option<String>) -> ObjectsConfig {
    match url.filter(|u| !u.trim().is_empty()) {
        Some(url) => ObjectsConfig::Url {
            url,
            options: std::env::vars()
                .filter(|(name, _)| name.starts_with("AWS_"))
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        },
        None => ObjectsConfig::Dir(dir),
    }
}
