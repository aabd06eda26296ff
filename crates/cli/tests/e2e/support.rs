//! A stack for one test: its own database, a lockstep-server and a lockstep-worker running in
//! this process on a runtime of the stack's own, a temporary HOME, and the `lockstep` binary
//! set up to talk to them. Tests themselves are plain blocking code, as the CLI is.

use lockstep_api_http::{AppState, Settings};
use lockstep_test_db::TestDb;
use lockstep_worker::{Config, Shutdown};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const ADMIN: &str = "cli-e2e-admin-token-0123456789";

/// How long any one `lockstep` run may take before the test fails rather than hangs.
pub(crate) const COMMAND_LIMIT: Duration = Duration::from_secs(90);

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

struct Worker {
    shutdown: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

pub(crate) struct Stack {
    runtime: Runtime,
    server: Option<Server>,
    worker: Option<Worker>,
    pub(crate) url: String,
    /// HOME and XDG_CONFIG_HOME of every `lockstep` run: no test sees a real config file.
    pub(crate) home: tempfile::TempDir,
    /// The working directory of every `lockstep` run, with the tests' pipeline files. It is no
    /// git checkout, so `run` defaults to ref `main` and no commit.
    pub(crate) dir: tempfile::TempDir,
    work: tempfile::TempDir,
    // Last, so it is dropped after the server and the worker have stopped.
    _db: TestDb,
}

impl Stack {
    /// A server and one worker (four slots, no tags).
    pub(crate) fn new() -> Self {
        let mut stack = Self::server_only();
        stack.start_worker();
        stack
    }

    /// A server without a worker: pipelines stay pending.
    pub(crate) fn server_only() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let db = TestDb::new();
        let settings = Settings {
            reaper_interval: Duration::from_millis(200),
            ..Settings::new(ADMIN.to_owned(), Duration::from_secs(30))
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let state = {
            let _entered = runtime.enter();
            AppState::new(db.pool(8), &settings)
        };
        let task = runtime.spawn(lockstep_api_http::run(
            state,
            listener,
            db.url().to_owned(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            runtime,
            server: Some(Server { stop, task }),
            worker: None,
            url,
            home: tempfile::tempdir().expect("a home"),
            dir: tempfile::tempdir().expect("a working directory"),
            work: tempfile::tempdir().expect("a work dir"),
            _db: db,
        }
    }

    fn start_worker(&mut self) {
        let runner = self.post("/runners", &json!({ "name": "cli-e2e", "tags": [] }));
        let config = Config {
            url: self.url.clone(),
            token: runner["token"].as_str().expect("a runner token").to_owned(),
            concurrency: 4,
            work_dir: self.work.path().to_owned(),
            shell: PathBuf::from("/bin/sh"),
            shutdown_grace: Duration::from_secs(1),
        };
        let shutdown = Shutdown::default();
        let task = self
            .runtime
            .spawn(lockstep_worker::run(config, shutdown.clone()));
        self.worker = Some(Worker { shutdown, task });
    }

    /// The `lockstep` binary, pointed at this stack with the admin token, in `dir`.
    pub(crate) fn lockstep(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::from_std(self.std_lockstep());
        command.timeout(COMMAND_LIMIT);
        command
    }

    /// The same as a plain `std::process::Command`, for pseudo-terminals and signals.
    pub(crate) fn std_lockstep(&self) -> std::process::Command {
        let bin = assert_cmd::cargo::cargo_bin("lockstep");
        let mut command = std::process::Command::new(bin);
        command
            .current_dir(self.dir.path())
            .env("LOCKSTEP_URL", &self.url)
            .env("LOCKSTEP_TOKEN", ADMIN)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env_remove("NO_COLOR");
        command
    }

    pub(crate) fn config_home(&self) -> PathBuf {
        self.home.path().join(".config")
    }

    /// Writes a pipeline file into `dir`; returns its name.
    pub(crate) fn file(&self, name: &str, contents: &str) -> String {
        std::fs::write(self.dir.path().join(name), contents).expect("a pipeline file");
        name.to_owned()
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.body_mut().read_json().expect("a JSON answer")
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Value {
        let mut response = ureq::post(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        response.body_mut().read_json().expect("a JSON answer")
    }

    /// Waits until `done` holds for pipeline `id`; panics after `limit`.
    pub(crate) fn wait_for(
        &self,
        id: i64,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let pipeline = self.get(&format!("/pipelines/{id}"));
            if done(&pipeline) {
                return pipeline;
            }
            assert!(Instant::now() < deadline, "timed out waiting: {pipeline:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The whole log of a build as the server has it, read in pages.
    pub(crate) fn log(&self, build: i64) -> Vec<u8> {
        let mut log = Vec::new();
        loop {
            let mut response = ureq::get(format!("{}/api/v1/builds/{build}/log", self.url))
                .query("offset", log.len().to_string())
                .header("Authorization", format!("Bearer {ADMIN}"))
                .call()
                .expect("the log");
            let complete = response
                .headers()
                .get("x-log-complete")
                .is_some_and(|v| v == "true");
            let page = response.body_mut().read_to_vec().expect("a page");
            log.extend_from_slice(&page);
            if complete || page.is_empty() {
                return log;
            }
        }
    }

    /// The id of pipeline `id`'s latest build named `name`.
    pub(crate) fn build_id(pipeline: &Value, name: &str) -> i64 {
        pipeline["builds"]
            .as_array()
            .expect("builds")
            .iter()
            .rev()
            .find(|b| b["name"] == name)
            .and_then(|b| b["id"].as_i64())
            .unwrap_or_else(|| panic!("no build {name} in {pipeline:#}"))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.shutdown.drain.cancel();
            worker.shutdown.abort.cancel();
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), worker.task).await
            });
        }
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), server.task).await
            });
        }
    }
}

/// The id a `lockstep run` printed first: `pipeline N of project …`.
pub(crate) fn pipeline_id(output: &str) -> i64 {
    output
        .lines()
        .find_map(|line| {
            line.strip_prefix("pipeline ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no pipeline id in:\n{output}"))
}

/// A URL where no server listens: a port the system gave us, then closed.
pub(crate) fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    format!("http://{address}")
}

/// The `lockstep` binary with no server at all, in `dir`: for what needs none.
pub(crate) fn bare_lockstep(dir: &std::path::Path) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("lockstep").expect("the binary");
    command
        .current_dir(dir)
        .env("LOCKSTEP_URL", nowhere())
        .env_remove("LOCKSTEP_TOKEN")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .timeout(COMMAND_LIMIT);
    command
}

/// Runs a `lockstep` command to its end: its exit code and its stdout.
pub(crate) fn outcome(command: &mut assert_cmd::Command) -> (Option<i32>, String) {
    let output = command.output().expect("lockstep runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    (output.status.code(), stdout)
}
