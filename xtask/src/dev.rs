//! `cargo xtask dev` and `cargo xtask demo`: the whole system on this machine (the database, a
//! `lockstep-server` and one `lockstep-worker`) until Ctrl-C, or for one run of the example
//! pipeline file, followed by the `lockstep` CLI.
//!
//! Shutdown runs in dependency order: the worker first, so it can still report to the server,
//! then the server, then the database, and that only if we started it.

mod api;
mod children;

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use self::api::Api;
use self::children::{Child, StopRequest};
use crate::{db, process};

/// The example JSON body of the curl walkthrough, relative to the workspace root.
pub(crate) const EXAMPLE: &str = "examples/pipeline.json";

/// The example pipeline file `demo` runs and `dev` offers, relative to the workspace root.
pub(crate) const EXAMPLE_FILE: &str = "examples/.lockstep.yml";

/// The project the example is submitted to (the README's walkthrough uses it too).
const PROJECT: &str = "demo";

/// The name the worker is registered under.
const RUNNER: &str = "dev-worker";

/// The worker's tags: the examples ask for a Linux runner, as GitLab files often do.
const RUNNER_TAGS: [&str; 1] = ["linux"];

/// How long the server may take to answer `/readyz` (its first start migrates the database).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `demo` waits for the example pipeline to finish.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// How often we look at the children, the stop request and, in `demo`, the pipeline.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// The port the server listens on, on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

/// Runs the stack until Ctrl-C (or SIGTERM), printing how to use it.
pub(crate) fn dev(root: &Path, options: &Options) -> anyhow::Result<ExitCode> {
    with_stack(root, options, |stack, stop| {
        println!("{}", stack.banner(root));
        stack.supervise(stop)?;
        eprintln!("stop requested (Ctrl-C or SIGTERM): stopping what dev started");
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs the stack for one run of the example pipeline file, followed live by `lockstep run`;
/// succeeds if the pipeline does.
pub(crate) fn demo(root: &Path, options: &Options) -> anyhow::Result<ExitCode> {
    with_stack(root, options, |stack, stop| run_example(root, stack, stop))
}

/// Starts everything, runs `task`, then stops everything it started, whatever `task` returned.
fn with_stack(
    root: &Path,
    options: &Options,
    task: impl FnOnce(&mut Stack, &mut StopRequest) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    // First, so that a Ctrl-C from here on stops what we started rather than us alone.
    let mut stop = StopRequest::install()?;
    // Before the build, so a clash fails fast.
    check_port_free(options.port)?;
    build_binaries(root)?;
    stop.check()?;
    let database = db::start_session(root)?;
    let outcome = Stack::start(root, options.port, &database, &mut stop).and_then(|mut stack| {
        let outcome = task(&mut stack, &mut stop);
        let stopped = stack.shutdown();
        let code = outcome?;
        stopped?;
        Ok(code)
    });
    let stopped = database.stop_if_started();
    let code = outcome?;
    stopped?;
    Ok(code)
}

fn check_port_free(port: u16) -> anyhow::Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::AddrInUse => bail!(
            "port {port} on 127.0.0.1 is taken (another `cargo xtask dev`?): pick a free one \
             with --port"
        ),
        Err(err) => Err(err).with_context(|| format!("cannot listen on 127.0.0.1:{port}")),
    }
}

/// Builds both binaries, which we then run directly: through `cargo run`, a Ctrl-C would reach
/// cargo rather than them.
fn build_binaries(root: &Path) -> anyhow::Result<()> {
    let mut build = process::cargo();
    build.current_dir(root).args([
        "build",
        "-p",
        "lockstep-api-http",
        "-p",
        "lockstep-worker",
        "-p",
        "lockstep-cli",
        "--bins",
    ]);
    process::run(&mut build).context("building the server, the worker and the CLI failed")
}

fn binary(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    Ok(process::target_dir(root)?.join("debug").join(name))
}

/// 32 hex characters from the system's random source: a fresh admin token per run.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| anyhow!("cannot get random bytes: {err}"))?;
    Ok(bytes.iter().fold(String::new(), |mut hex, byte| {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
        hex
    }))
}

/// The running server and worker, and what the banner shows about them.
#[derive(Debug)]
struct Stack {
    // Fields drop in order: the worker goes before the server, as in `shutdown`.
    worker: Option<Child>,
    server: Child,
    api: Api,
    url: String,
    token: String,
    project_id: i64,
    runner_id: Option<i64>,
    database: String,
}

impl Stack {
    /// Starts the server, waits until it is ready, registers a runner and starts the worker.
    fn start(
        root: &Path,
        port: u16,
        database: &db::Session,
        stop: &mut StopRequest,
    ) -> anyhow::Result<Self> {
        let logs = root.join("target").join("lockstep-dev");
        let token = random_token()?;
        let url = format!("http://127.0.0.1:{port}");
        let mut server = Command::new(binary(root, "lockstep-server")?);
        server
            .current_dir(root)
            // Their logs go to files, where colour codes would only be noise.
            .env("NO_COLOR", "1")
            .env("DATABASE_URL", database.url())
            .env("LOCKSTEP_LISTEN", format!("127.0.0.1:{port}"))
            .env("LOCKSTEP_API_TOKEN", &token)
            // Artifacts and caches in a directory beside the logs: nothing more to install.
            .env("LOCKSTEP_OBJECTS_DIR", logs.join("objects"));
        // The server applies the migrations itself as it starts.
        let server = Child::spawn("lockstep-server", &mut server, &logs.join("server.log"))?;
        let mut stack = Self {
            worker: None,
            server,
            api: Api::new(&url, &token),
            url,
            token,
            project_id: 0,
            runner_id: None,
            database: database_note(database),
        };
        stack.wait_ready(stop)?;
        stack.project_id = stack.api.ensure_project(PROJECT)?;
        let runner = stack.api.register_runner(RUNNER, &RUNNER_TAGS)?;
        stack.runner_id = Some(runner.id);
        let mut worker = Command::new(binary(root, "lockstep-worker")?);
        worker
            .current_dir(root)
            .env("NO_COLOR", "1")
            .arg("--url")
            .arg(&stack.url)
            .arg("--work-dir")
            .arg(logs.join("work"))
            // Within our own grace period, so a running build is canceled and reported rather
            // than killed with the worker.
            .args(["--shutdown-grace", "10"])
            // In the environment, not the arguments, where `ps` would show it.
            .env("LOCKSTEP_RUNNER_TOKEN", &runner.token);
        stack.worker = Some(Child::spawn(
            "lockstep-worker",
            &mut worker,
            &logs.join("worker.log"),
        )?);
        Ok(stack)
    }

    fn wait_ready(&mut self, stop: &mut StopRequest) -> anyhow::Result<()> {
        let started = Instant::now();
        while !self.api.ready() {
            self.check_children()?;
            if started.elapsed() > READY_TIMEOUT {
                self.server.print_log_tail();
                bail!(
                    "lockstep-server was not ready within {} s; its log is above",
                    READY_TIMEOUT.as_secs()
                );
            }
            if stop.wait(POLL) {
                bail!("interrupted");
            }
        }
        Ok(())
    }

    /// Waits for a stop request; fails as soon as a child exits on its own.
    fn supervise(&mut self, stop: &mut StopRequest) -> anyhow::Result<()> {
        while !stop.wait(POLL) {
            self.check_children()?;
        }
        Ok(())
    }

    /// Fails, showing the end of its log, if the server or the worker has exited.
    fn check_children(&mut self) -> anyhow::Result<()> {
        for child in self.worker.iter_mut().chain([&mut self.server]) {
            if let Some(status) = child.exited()? {
                child.print_log_tail();
                bail!(
                    "{} exited unexpectedly ({status}); the end of its log, {}, is above",
                    child.name(),
                    child.log().display()
                );
            }
        }
        Ok(())
    }

    /// Stops the worker, retires its runner, stops the server. Reports the first failure.
    fn shutdown(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        if let Some(worker) = &mut self.worker {
            // A worker that exited on its own was reported already; only its stop counts here.
            let _ = worker.stop().map_err(|err| first_error.get_or_insert(err));
        }
        if let Some(runner_id) = self.runner_id.take()
            && self.server.exited().is_ok_and(|status| status.is_none())
        {
            // Only tidiness: a runner left registered does no harm, so a failure is a warning.
            if let Err(err) = self.api.retire_runner(runner_id) {
                eprintln!("warning: {err:#}");
            }
        }
        let _ = self
            .server
            .stop()
            .map_err(|err| first_error.get_or_insert(err));
        first_error.map_or(Ok(()), Err)
    }

    fn banner(&self, root: &Path) -> String {
        let example = display_path(root, &root.join(EXAMPLE));
        let auth = format!("-H \"Authorization: Bearer {}\"", self.token);
        let api = format!("{}/api/v1", self.url);
        let worker_log = self
            .worker
            .as_ref()
            .map_or_else(String::new, |worker| display_path(root, worker.log()));
        let runner = self
            .runner_id
            .map_or_else(|| "?".to_owned(), |id| id.to_string());
        format!(
            "\n\
             Lockstep is running. Ctrl-C stops it all.\n\
             \n\
             \x20 dashboard  {url}/   (sign in with the API token below)\n\
             \x20 server     {url}   (log: {server_log})\n\
             \x20 worker     runner {runner} \"{RUNNER}\", tags {tags}   (log: {worker_log})\n\
             \x20 database   {database}\n\
             \x20 API token  {token}\n\
             \x20 project    {project} \"{PROJECT}\"\n\
             \n\
             In another shell, run the example pipeline file and watch it live, there and in\n\
             the dashboard:\n\
             \n\
             \x20 export LOCKSTEP_URL={url} LOCKSTEP_TOKEN={token}\n\
             \x20 cargo run -q -p lockstep-cli -- run {example_file} --project {PROJECT}\n\
             \n\
             (`lockstep run …` once `cargo install --path crates/cli` put it on your PATH.)\n\
             Or with curl, the JSON example (build, test, then deploy to staging):\n\
             \n\
             \x20 curl -s {auth} --data-binary @{example} {api}/projects/{project}/pipelines\n\
             \x20 curl -s {auth} {api}/pipelines/<id>\n\
             \x20 curl -s {auth} {api}/builds/<build id>/log\n",
            url = self.url,
            server_log = display_path(root, self.server.log()),
            tags = RUNNER_TAGS.join(","),
            example_file = display_path(root, &root.join(EXAMPLE_FILE)),
            database = self.database,
            token = self.token,
            project = self.project_id,
        )
    }
}

/// Which database, and what happens to it when we stop.
fn database_note(database: &db::Session) -> String {
    if database.started_here() {
        "local cluster, started for this run (stopped again on exit)".to_owned()
    } else {
        "already running (left running on exit)".to_owned()
    }
}

/// `path` as the user can type it: relative when we run from the workspace root.
fn display_path(root: &Path, path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let base = if cwd == root { root } else { Path::new("") };
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `demo`: runs the example pipeline file with `lockstep run`, which submits it and follows it
/// live (the CLI's own view: jobs by stage, a failed job's log tail), and exits as it does.
fn run_example(root: &Path, stack: &mut Stack, stop: &mut StopRequest) -> anyhow::Result<ExitCode> {
    let mut cli = Command::new(binary(root, "lockstep")?);
    cli.current_dir(root)
        .args(["run", EXAMPLE_FILE, "--project", PROJECT, "--ref", "main"])
        // Ctrl-C reaches the CLI too: it cancels the pipeline rather than asking.
        .arg("--cancel-on-interrupt")
        .env("LOCKSTEP_URL", &stack.url)
        .env("LOCKSTEP_TOKEN", &stack.token);
    let mut child = cli.spawn().context("cannot start `lockstep run`")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for `lockstep run`")? {
            break status;
        }
        let interrupted = stop.wait(POLL);
        let failed = stack.check_children();
        if interrupted || failed.is_err() || started.elapsed() > DEMO_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            failed?;
            if interrupted {
                bail!("interrupted");
            }
            bail!(
                "the example did not finish within {} s; the worker's log is {}",
                DEMO_TIMEOUT.as_secs(),
                display_path(root, &root.join("target/lockstep-dev/worker.log"))
            );
        }
    };
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("`lockstep run` exited with {status}");
        Ok(ExitCode::FAILURE)
    }
}
