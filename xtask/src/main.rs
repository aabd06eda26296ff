//! Lockstep's development tasks, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! Everything a contributor or CI needs beyond plain cargo lives here, so that the only
//! prerequisites are a Rust toolchain, the PostgreSQL server binaries, Python 3 for the artifact
//! store's S3 test server (`cargo xtask s3 install`) and, for the dashboard's browser tests,
//! Chromium with ChromeDriver.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a command-line tool: stdout carries results, stderr progress"
)]

mod bench;
mod browser;
mod cargo;
mod ci;
mod db;
mod dev;
mod process;
mod s3;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lockstep's development tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the database, lockstep-server and one lockstep-worker until Ctrl-C; print how to use them.
    Dev(dev::Options),
    /// Like `dev`, but submit examples/pipeline.json, follow it to the end, then stop.
    Demo(dev::Options),
    /// Manage a throwaway local PostgreSQL cluster under target/lockstep-db.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
    /// Manage a local S3-compatible server (moto) for the artifact store's tests.
    S3 {
        #[command(subcommand)]
        command: s3::S3Command,
    },
    /// Apply the migrations to the dev database.
    Migrate,
    /// Start the database and the S3 server if needed, migrate, then
    /// `cargo test --workspace [ARGS]`.
    Test {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Everything CI checks: formatting, clippy, the server alone, architecture, docs, tests,
    /// a 30-second storm.
    Ci,
    /// Regenerate docs/openapi.json from the server's annotations.
    Openapi,
    /// Run the benchmarks on the dev database (with --compare, the peers' too) and write
    /// target/bench/report.json.
    Bench(bench::Options),
    /// Start the database if needed, migrate, then run the concurrency stress test.
    Stress {
        /// How long to run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// How many concurrent clients.
        #[arg(long, default_value_t = 8)]
        threads: u32,
    },
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let task = pass_through_verbatim(Cli::parse_from(&argv).task, &argv);
    match run(task) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    match task {
        Task::Dev(options) => dev::dev(&root, &options),
        Task::Demo(options) => dev::demo(&root, &options),
        Task::Db { command } => db::run(&root, command),
        Task::Migrate => cargo::migrate(&root).map(|()| ExitCode::SUCCESS),
        Task::S3 { command } => s3::run(&root, command).map(|()| ExitCode::SUCCESS),
        // The S3 server is started around the whole task (for `ci`, before its first check):
        // the tests find it through target/lockstep-s3/url, and it is stopped afterwards if
        // started here.
        Task::Test { args } => {
            s3::with_server(&root, || cargo::test(&root, &args)).map(|()| ExitCode::SUCCESS)
        }
        Task::Ci => s3::with_server(&root, || ci::run(&root)).map(|()| ExitCode::SUCCESS),
        Task::Openapi => cargo::openapi(&root).map(|()| ExitCode::SUCCESS),
        Task::Stress { seconds, threads } => cargo::stress(&root, seconds, threads),
        Task::Bench(options) => bench::bench(&root, &options),
    }
}

/// Restores the arguments `test` passes on to cargo exactly as typed: clap drops a leading
/// `--`, which would turn `cargo xtask test -- --nocapture` into `cargo test --nocapture`. With
/// no global options, the subcommand is always `argv[1]`. (`db psql` keeps clap's reading:
/// psql would take a `--` as the end of its options.)
fn pass_through_verbatim(task: Task, argv: &[String]) -> Task {
    match task {
        Task::Test { .. } => Task::Test {
            args: argv.get(2..).unwrap_or_default().to_vec(),
        },
        other => other,
    }
}

/// The workspace root: xtask always sits directly inside it.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("xtask's manifest directory has a parent")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Task, pass_through_verbatim};

    fn test_args(argv: &[&str]) -> Vec<String> {
        let argv: Vec<String> = argv.iter().map(|arg| (*arg).to_owned()).collect();
        let task = Cli::try_parse_from(&argv).unwrap().task;
        match pass_through_verbatim(task, &argv) {
            Task::Test { args } => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn test_passes_arguments_through_to_cargo_test() {
        assert_eq!(
            test_args(&[
                "xtask",
                "test",
                "-p",
                "lockstep-test-db",
                "--",
                "--nocapture"
            ]),
            ["-p", "lockstep-test-db", "--", "--nocapture"]
        );
        assert_eq!(
            test_args(&["xtask", "test", "--", "--nocapture"]),
            ["--", "--nocapture"]
        );
    }

    #[test]
    fn db_psql_passes_options_through_to_psql() {
        for argv in [
            ["xtask", "db", "psql", "-c", "select 1"].as_slice(),
            &["xtask", "db", "psql", "--", "-c", "select 1"],
        ] {
            let task = Cli::try_parse_from(argv).unwrap().task;
            let Task::Db {
                command: crate::db::DbCommand::Psql { args },
            } = task
            else {
                panic!("parsed as {task:?}");
            };
            assert_eq!(args, ["-c", "select 1"]);
        }
    }
}
