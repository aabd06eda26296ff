//! `cargo xtask s3 …`: a local S3-compatible server for the artifact store's end-to-end tests:
//! moto's `moto_server`, from PyPI, in a Python venv under `target/`, listening on 127.0.0.1.
//!
//! moto rather than a Rust server (`s3s-fs`): it installs in well under a minute, where
//! `cargo install s3s-fs` takes minutes of CI's two cores, and it speaks everything the store
//! uses: multipart uploads, range GETs, ListObjectsV2, DeleteObject and conditional puts. It keeps
//! objects in memory, so `s3 start` creates the bucket every time, and it does not check request
//! signatures, so any credentials work.
//!
//! `s3 start` writes `target/lockstep-s3/url` (and `port`, `pid`), which the tests read when
//! `LOCKSTEP_TEST_S3_URL` is unset, so a plain `cargo test` finds the server too. It prints the
//! bucket and credentials as `LOCKSTEP_TEST_S3_*` variables as well; the tests default to the
//! same values, so only the URL ever needs passing. `cargo xtask test` and `ci` start the server
//! first unless it runs, and stop it afterwards if they started it.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ureq::Agent;
use ureq::http::StatusCode;

use crate::process;

/// What `s3 install` puts in the venv. Pinned, so every machine tests against the same server;
/// Flask is what `moto_server` serves with (moto's `server` extra would add some 200 MB of
/// other services' dependencies).
const REQUIREMENTS: [&str; 3] = ["moto[s3]==5.2.5", "flask==3.1.3", "flask-cors==6.0.5"];

/// The bucket `s3 start` creates: object_store has no call to create one.
pub(crate) const BUCKET: &str = "lockstep-test";
/// moto accepts any credentials; the tests still sign with these.
const ACCESS_KEY_ID: &str = "lockstep";
const SECRET_ACCESS_KEY: &str = "lockstep-secret";
const REGION: &str = "us-east-1";

/// The variable naming the server; when set, `s3` and `test` use that server and start none.
const URL_VAR: &str = "LOCKSTEP_TEST_S3_URL";

/// What to do when the server is not installed (`cargo xtask test` stops with this, first).
const NOT_INSTALLED: &str = "The S3 test server (moto_server, from PyPI) is not installed: run `cargo xtask s3 install` (it makes a Python venv in target/s3-venv; .ci/run does this), then run the tests again.";

/// What the tests say when they find no server (neither `LOCKSTEP_TEST_S3_URL` nor the url file).
pub(crate) const NO_SERVER: &str =
    "no S3 server: run cargo xtask s3 install && cargo xtask s3 start";

/// How long moto may take to answer after it starts (it imports for a second or two).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to stop after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 25;

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum S3Command {
    /// Make the Python venv target/s3-venv and install the pinned moto server in it
    /// (does nothing when it is already there).
    Install,
    /// Start the server on a free port of 127.0.0.1, create the `lockstep-test` bucket and
    /// print the variables the tests read.
    Start,
    /// Stop the server.
    Stop,
    /// Say whether the server runs, where, and whether it is installed.
    Status,
}

pub(crate) fn run(root: &Path, command: S3Command) -> anyhow::Result<()> {
    let state = State::new(root);
    if let Some(url) = external_url() {
        match command {
            S3Command::Install => install(&state)?,
            S3Command::Start | S3Command::Status => {
                eprintln!("{URL_VAR} is set: using that server, no local one");
                println!("{URL_VAR}={url}");
            }
            S3Command::Stop => eprintln!("{URL_VAR} is set: the local server is left alone"),
        }
        return Ok(());
    }
    match command {
        S3Command::Install => install(&state)?,
        S3Command::Start => {
            require_installed(&state)?;
            let url = start(&state, Detach::Yes)?.url;
            for (name, value) in test_env(&url) {
                println!("{name}={value}");
            }
        }
        S3Command::Stop => match state.running_pid()? {
            Some(pid) => {
                stop_pid(pid)?;
                state.forget_pid()?;
                eprintln!("stopped the S3 server");
            }
            None => eprintln!("the S3 server is not running"),
        },
        S3Command::Status => status(&state)?,
    }
    Ok(())
}

/// Runs `task` with the server up: started first unless it runs (or `LOCKSTEP_TEST_S3_URL`
/// names one), and stopped afterwards, whatever `task` returned, if this call started it (a
/// server someone started by hand stays up). Without the server installed it runs nothing: the
/// fix is better said once, first. The tests find the server through the url file.
pub(crate) fn with_server<T>(
    root: &Path,
    task: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if external_url().is_some() {
        return task();
    }
    let state = State::new(root);
    if !installed(&state) {
        let rule = "!".repeat(78);
        eprintln!("\n{rule}\n\n{NOT_INSTALLED}\n\n{rule}\n");
        bail!("the artifact store's tests need the S3 test server; no tests were run");
    }
    // Not detached: a Ctrl-C that stops the tests stops this server with them.
    let started = start(&state, Detach::No)?.started;
    let result = task();
    if let Some(mut started) = started {
        let stopped = stop_pid(started.pid).and_then(|()| state.forget_pid());
        // Ours, so reap it; it has exited by now.
        let _ = started.child.wait();
        match (&result, stopped) {
            (_, Ok(())) => eprintln!("stopped the S3 server"),
            // The task's own failure is the one to report; this one is only said.
            (Err(_), Err(err)) => eprintln!("error: stopping the S3 server: {err:#}"),
            (Ok(_), Err(err)) => return Err(err.context("stopping the S3 server failed")),
        }
    }
    result
}

/// The variables the tests read, for the server at `url`.
fn test_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        (URL_VAR, url.to_owned()),
        ("LOCKSTEP_TEST_S3_BUCKET", BUCKET.to_owned()),
        ("LOCKSTEP_TEST_S3_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        (
            "LOCKSTEP_TEST_S3_SECRET_ACCESS_KEY",
            SECRET_ACCESS_KEY.to_owned(),
        ),
        ("LOCKSTEP_TEST_S3_REGION", REGION.to_owned()),
    ]
}

fn external_url() -> Option<String> {
    std::env::var(URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

fn install(state: &State) -> anyhow::Result<()> {
    if installed(state) {
        eprintln!(
            "the S3 test server is already installed in {}",
            state.venv.display()
        );
        return Ok(());
    }
    eprintln!("installing the S3 test server in {}", state.venv.display());
    // `--clear`: a venv left by other pins, or by a Python since removed, starts over.
    process::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&state.venv),
    )
    .context("cannot make the Python venv (Debian: `apt-get install -y python3-venv`)")?;
    process::run(
        Command::new(state.venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(REQUIREMENTS),
    )
    .context("installing moto from PyPI failed")?;
    let marker = state.requirements_marker();
    fs::write(&marker, requirements_text())
        .with_context(|| format!("writing {}", marker.display()))?;
    eprintln!("installed {}", REQUIREMENTS.join(" "));
    Ok(())
}

/// Whether `moto_server` is in the venv, installed with today's pins.
fn installed(state: &State) -> bool {
    is_executable(&state.moto_server())
        && fs::read_to_string(state.requirements_marker())
            .is_ok_and(|text| text == requirements_text())
}

fn require_installed(state: &State) -> anyhow::Result<()> {
    if installed(state) {
        return Ok(());
    }
    bail!("{NOT_INSTALLED}")
}

fn requirements_text() -> String {
    REQUIREMENTS.map(|line| format!("{line}\n")).concat()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detach {
    /// In a process group of its own, so it outlives the terminal's Ctrl-C (`s3 start`).
    Yes,
    /// In ours, so a Ctrl-C stops it too (`cargo xtask test`).
    No,
}

#[derive(Debug)]
struct Started {
    pid: i32,
    child: std::process::Child,
}

#[derive(Debug)]
struct Server {
    url: String,
    /// The process, when this call started it.
    started: Option<Started>,
}

/// Starts the server unless it runs, waits until it answers and creates the bucket.
fn start(state: &State, detach: Detach) -> anyhow::Result<Server> {
    let agent = agent();
    if let Some(pid) = state.running_pid()? {
        match state.url()? {
            Some(url) if answers(&agent, &url) => {
                eprintln!("the S3 server is already running (pid {pid})");
                create_bucket(&agent, &url)?;
                return Ok(Server { url, started: None });
            }
            _ => {
                eprintln!("the S3 server (pid {pid}) does not answer: restarting it");
                stop_pid(pid)?;
            }
        }
    }
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    fs::create_dir_all(&state.dir).with_context(|| format!("creating {}", state.dir.display()))?;
    let log = state.log();
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("opening the log twice")?;
    let mut command = Command::new(state.moto_server());
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(&state.dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if detach == Detach::Yes {
        command.process_group(0);
    }
    eprintln!("$ {}", process::display(&command));
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", process::display(&command)))?;
    let pid = i32::try_from(child.id()).context("process id out of range")?;
    state.write("pid", &pid.to_string())?;
    state.write("port", &port.to_string())?;
    state.write("url", &url)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while !answers(&agent, &url) {
        let exited = child.try_wait().context("cannot check on moto_server")?;
        if exited.is_some() || Instant::now() > deadline {
            let _ = stop_pid(pid);
            let _ = child.wait();
            print_log_tail(&log);
            bail!(
                "the S3 server did not answer at {url}; the end of its log, {}, is above",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    create_bucket(&agent, &url)?;
    eprintln!(
        "started the S3 server at {url} (pid {pid}, log: {})",
        log.display()
    );
    Ok(Server {
        url,
        started: Some(Started { pid, child }),
    })
}

fn status(state: &State) -> anyhow::Result<()> {
    match (state.running_pid()?, state.url()?) {
        (Some(pid), Some(url)) => {
            let answering = if answers(&agent(), &url) {
                "running"
            } else {
                "running but not answering"
            };
            println!("{answering}");
            println!("url:  {url}");
            println!("pid:  {pid}");
        }
        _ => println!("stopped ({NO_SERVER})"),
    }
    println!("log:  {}", state.log().display());
    let installed = if installed(state) {
        REQUIREMENTS.join(" ")
    } else {
        "not installed: run `cargo xtask s3 install`".to_owned()
    };
    println!("venv: {} ({installed})", state.venv.display());
    Ok(())
}

/// Local requests only, so a proxy from the environment must not come in between; every status
/// is an answer we read ourselves.
fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// Whether the server lists its buckets (an unsigned ListBuckets: moto checks no signature).
fn answers(agent: &Agent, url: &str) -> bool {
    agent
        .get(format!("{url}/"))
        .call()
        .is_ok_and(|response| response.status() == StatusCode::OK)
}

/// An unsigned CreateBucket; moto answers 200 for a bucket that is already ours.
fn create_bucket(agent: &Agent, url: &str) -> anyhow::Result<()> {
    let mut response = agent
        .put(format!("{url}/{BUCKET}"))
        .send_empty()
        .with_context(|| format!("cannot create the bucket {BUCKET} at {url}"))?;
    if response.status() != StatusCode::OK {
        let body = response.body_mut().read_to_string().unwrap_or_default();
        bail!(
            "creating the bucket {BUCKET}: the server answered {}: {body}",
            response.status()
        );
    }
    Ok(())
}

/// A port nobody listens on now. Another process may take it before moto does; then moto exits
/// and `start` says so.
fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free local port")?;
    Ok(listener.local_addr()?.port())
}

/// SIGTERM, a grace period, then SIGKILL.
fn stop_pid(pid: i32) -> anyhow::Result<()> {
    signal(pid, Signal::SIGTERM)?;
    let deadline = Instant::now() + GRACE;
    while is_moto(pid) {
        if Instant::now() > deadline {
            eprintln!("the S3 server did not stop within {GRACE:?} of SIGTERM: killing it");
            signal(pid, Signal::SIGKILL)?;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn signal(pid: i32, signal: Signal) -> anyhow::Result<()> {
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot send {signal} to pid {pid}")),
    }
}

/// Whether `pid` is a live `moto_server`. Its command line says so: a pid file outliving its
/// process must not make us signal whatever reuses the number. (An exited child not yet reaped
/// has an empty command line, so it counts as gone.) Without `/proc`, a live pid must do.
fn is_moto(pid: i32) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("moto_server"),
        Err(_) if !Path::new("/proc/self").exists() => kill(Pid::from_raw(pid), None).is_ok(),
        Err(_) => false,
    }
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn print_log_tail(log: &Path) {
    let Ok(text) = fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    eprintln!("--- {} (last {} lines)", log.display(), tail.len());
    for line in tail {
        eprintln!("{line}");
    }
    eprintln!("---");
}

/// `target/s3-venv/` (the installed server) and `target/lockstep-s3/` (what `s3 start` wrote),
/// under the workspace's own `target/` like the database's state, whatever `CARGO_TARGET_DIR`.
#[derive(Debug)]
struct State {
    venv: PathBuf,
    dir: PathBuf,
}

impl State {
    fn new(root: &Path) -> Self {
        let target = root.join("target");
        Self {
            venv: target.join("s3-venv"),
            dir: target.join("lockstep-s3"),
        }
    }

    fn moto_server(&self) -> PathBuf {
        self.venv.join("bin/moto_server")
    }

    fn requirements_marker(&self) -> PathBuf {
        self.venv.join("lockstep-requirements.txt")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("moto.log")
    }

    /// The recorded pid, if that process is still a moto server.
    fn running_pid(&self) -> anyhow::Result<Option<i32>> {
        let Some(text) = self.read("pid")? else {
            return Ok(None);
        };
        let pid: i32 = text
            .parse()
            .with_context(|| format!("{} holds no pid", self.dir.join("pid").display()))?;
        Ok(is_moto(pid).then_some(pid))
    }

    fn url(&self) -> anyhow::Result<Option<String>> {
        self.read("url")
    }

    /// Forgets the stopped server; the url file goes too, so the tests do not try it.
    fn forget_pid(&self) -> anyhow::Result<()> {
        for name in ["pid", "port", "url"] {
            let file = self.dir.join(name);
            match fs::remove_file(&file) {
                Err(err) if err.kind() != ErrorKind::NotFound => {
                    return Err(err).with_context(|| format!("removing {}", file.display()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn read(&self, name: &str) -> anyhow::Result<Option<String>> {
        let file = self.dir.join(name);
        match fs::read_to_string(&file) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", file.display())),
        }
    }

    fn write(&self, name: &str, contents: &str) -> anyhow::Result<()> {
        let file = self.dir.join(name);
        fs::write(&file, format!("{contents}\n"))
            .with_context(|| format!("writing {}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::{NO_SERVER, NOT_INSTALLED, REQUIREMENTS, State, installed, requirements_text};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root")
            .to_path_buf()
    }

    #[test]
    fn the_messages_name_the_install_and_start_commands() {
        assert!(NOT_INSTALLED.contains("`cargo xtask s3 install`"));
        assert!(NOT_INSTALLED.ends_with("then run the tests again."));
        assert_eq!(
            NO_SERVER,
            "no S3 server: run cargo xtask s3 install && cargo xtask s3 start"
        );
    }

    /// A fresh CI machine has no venv: `.ci/run` must install the server before the tests.
    #[test]
    fn ci_installs_the_server_before_the_tests() {
        let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
        // Commands, not the comments that mention them.
        let line = |command: &str| ci.lines().position(|line| line.trim() == command);
        let install = line("cargo xtask s3 install").expect(".ci/run installs moto");
        let test = line("cargo xtask test").expect(".ci/run runs the tests");
        assert!(install < test, ".ci/run installs moto after the tests");
    }

    #[test]
    fn the_server_counts_as_installed_only_with_todays_pins() {
        let dir = std::env::temp_dir().join(format!("xtask-s3-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = State::new(&dir);
        assert!(!installed(&state), "nothing there yet");
        let bin = state.venv.join("bin");
        fs::create_dir_all(&bin).expect("a fake venv");
        fs::write(state.moto_server(), "#!/bin/sh\n").expect("a fake moto_server");
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(state.moto_server(), fs::Permissions::from_mode(0o755))
                .expect("executable");
        }
        assert!(!installed(&state), "no marker: an unfinished install");
        fs::write(state.requirements_marker(), "moto[s3]==0.0.1\n").expect("an old marker");
        assert!(!installed(&state), "other pins");
        fs::write(state.requirements_marker(), requirements_text()).expect("a marker");
        assert!(installed(&state));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_requirement_is_pinned() {
        for requirement in REQUIREMENTS {
            assert!(requirement.contains("=="), "{requirement} is not pinned");
        }
    }
}
