//! A stack for one test: its own database, and a lockstep-server and a lockstep-worker running
//! in this process on a runtime of the stack's own. Tests themselves are plain blocking code;
//! the browser's async calls run on the same runtime through [`Stack::block_on`].

use lockstep_api_http::{AppState, Settings};
use lockstep_test_db::TestDb;
use lockstep_worker::{Config, Shutdown};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token the server is started with, for the API helpers and the login page.
pub(crate) const ADMIN: &str = "browser-tests-admin-token-0123456789";

/// How long a stopping server or worker may take before the test moves on.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// A task's outcome with its error as text: all a test could show of it, and it keeps `anyhow`
/// out of this crate's dependencies.
type Task = JoinHandle<Result<(), String>>;

struct Server {
    stop: oneshot::Sender<()>,
    task: Task,
}

struct Worker {
    shutdown: Shutdown,
    task: Task,
}

pub(crate) struct Stack {
    runtime: Runtime,
    server: Option<Server>,
    worker: Option<Worker>,
    /// The server's base URL, `http://127.0.0.1:<port>`, without a trailing slash.
    pub(crate) url: String,
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
        let serve = lockstep_api_http::run(state, listener, db.url().to_owned(), async move {
            let _ = stopped.await;
        });
        let task = runtime.spawn(async move { serve.await.map_err(|e| format!("{e:#}")) });
        Self {
            runtime,
            server: Some(Server { stop, task }),
            worker: None,
            url,
            work: tempfile::tempdir().expect("a work dir"),
            _db: db,
        }
    }

    fn start_worker(&mut self) {
        let runner = self.post("/runners", &json!({ "name": "browser-tests", "tags": [] }));
        let config = Config {
            url: self.url.clone(),
            token: runner["token"].as_str().expect("a runner token").to_owned(),
            concurrency: 4,
            work_dir: self.work.path().to_owned(),
            shell: PathBuf::from("/bin/sh"),
            shutdown_grace: Duration::from_secs(1),
        };
        let shutdown = Shutdown::default();
        let work = lockstep_worker::run(config, shutdown.clone());
        let task = self
            .runtime
            .spawn(async move { work.await.map_err(|e| format!("{e:#}")) });
        self.worker = Some(Worker { shutdown, task });
    }

    /// Registers a runner with no tags and returns its token, for tests that play the runner
    /// themselves.
    pub(crate) fn runner_token(&self, name: &str) -> String {
        let runner = self.post("/runners", &json!({ "name": name, "tags": [] }));
        runner["token"].as_str().expect("a runner token").to_owned()
    }

    /// POSTs `body` to `/api/v1{path}` as the runner with `token`; returns the status.
    pub(crate) fn runner_post(&self, path: &str, token: &str, body: &[u8], json: bool) -> u16 {
        let kind = if json {
            "application/json"
        } else {
            "application/octet-stream"
        };
        let answer = ureq::post(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", kind)
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        answer.status().as_u16()
    }

    /// Runs `future` to its end on the stack's runtime: how blocking tests call async code.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `GET /api/v1{path}` with the admin token; panics unless the answer is 2xx JSON.
    pub(crate) fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.body_mut().read_json().expect("a JSON answer")
    }

    /// `POST /api/v1{path}` with the admin token and a JSON body; panics unless the answer is
    /// 2xx JSON.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Value {
        let mut response = ureq::post(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        response.body_mut().read_json().expect("a JSON answer")
    }

    /// Waits until `done` holds for pipeline `id` as the API shows it; panics after `limit`.
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
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The tasks' own errors are dropped with them: a server or worker that failed has
        // already failed the test through the answers it did not give. (The timeouts are made
        // in async blocks: `timeout` needs the runtime where it is called.)
        if let Some(worker) = self.worker.take() {
            worker.shutdown.drain.cancel();
            worker.shutdown.abort.cancel();
            let _ = self.block_on(async { tokio::time::timeout(STOP_LIMIT, worker.task).await });
        }
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let _ = self.block_on(async { tokio::time::timeout(STOP_LIMIT, server.task).await });
        }
    }
}
