//! A stack for one test: its own database, a server on a socket that can be restarted on the
//! same address, and worker processes.

use lockstep_api_http::{AppState, Settings};
use lockstep_test_db::TestDb;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const ADMIN: &str = "e2e-admin-token-0123456789";

struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(crate) struct Stack {
    db: TestDb,
    settings: Settings,
    pub(crate) address: SocketAddr,
    server: Option<Server>,
    http: reqwest::Client,
    pub(crate) project: i64,
    pub(crate) runner_token: String,
    work: PathBuf,
}

impl Stack {
    /// A stack whose leases last `lease` (heartbeats come at a third of it).
    pub(crate) async fn new(lease: Duration) -> Self {
        Self::with(lease, |_, _| {}).await
    }

    /// [`Self::new`], with settings `edit` changes (given the test database's name, unique to
    /// the test).
    pub(crate) async fn with(lease: Duration, edit: impl FnOnce(&mut Settings, &str)) -> Self {
        let db = TestDb::new();
        let mut settings = Settings {
            reaper_interval: Duration::from_millis(200),
            ..Settings::new(ADMIN.to_owned(), lease)
        };
        edit(&mut settings, db.name());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("an address");
        let work = std::env::temp_dir().join(format!("lockstep-e2e-{}", db.name()));
        let mut stack = Self {
            db,
            settings,
            address,
            server: None,
            http: reqwest::Client::new(),
            project: 0,
            runner_token: String::new(),
            work,
        };
        stack.start_server(listener);
        stack.project = stack
            .admin_post("/projects", &json!({ "name": "app" }))
            .await["id"]
            .as_i64()
            .expect("a project id");
        let runner = stack
            .admin_post("/runners", &json!({ "name": "e2e", "tags": [] }))
            .await;
        runner["token"]
            .as_str()
            .expect("a token")
            .clone_into(&mut stack.runner_token);
        stack
    }

    fn start_server(&mut self, listener: tokio::net::TcpListener) {
        let pool = self.db.pool(8);
        let state = AppState::new(pool, &self.settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(lockstep_api_http::run(
            state,
            listener,
            self.db.url().to_owned(),
            async move {
                let _ = stopped.await;
            },
        ));
        self.server = Some(Server { stop, task });
    }

    /// Stops the server, keeps it down for `down`, and starts it again on the same address.
    pub(crate) async fn restart_server(&mut self, down: Duration) {
        let server = self.server.take().expect("a running server");
        let _ = server.stop.send(());
        server
            .task
            .await
            .expect("the server task")
            .expect("the server stops cleanly");
        tokio::time::sleep(down).await;
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .expect("the same address again");
        self.start_server(listener);
    }

    /// Stops the server gracefully (waiting job requests get 204) before the database goes.
    pub(crate) async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            let _ = server.task.await;
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) async fn admin_post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .expect("the server answers");
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON answer")
    }

    /// A GET as the admin, whatever it answers: its status and body.
    pub(crate) async fn admin_fetch(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.url()))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("a body").to_vec())
    }

    pub(crate) async fn admin_patch(&self, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .patch(format!("{}/api/v1{path}", self.url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .expect("the server answers");
        assert!(
            response.status().is_success(),
            "PATCH {path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON answer")
    }

    pub(crate) async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/api/v1{path}", self.url()))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Submits a pipeline and returns its id. Pipelines of one test share a ref and must all
    /// run, so it leaves older ones alone.
    pub(crate) async fn submit(&self, jobs: Value) -> i64 {
        let pipeline = self
            .admin_post(
                &format!("/projects/{}/pipelines", self.project),
                &json!({ "ref": "main", "jobs": jobs,
                         "workflow": { "auto_cancel": { "on_new_commit": "none" } } }),
            )
            .await;
        pipeline["id"].as_i64().expect("a pipeline id")
    }

    pub(crate) async fn pipeline(&self, id: i64) -> Value {
        self.admin_get(&format!("/pipelines/{id}")).await
    }

    /// Waits until `done` holds for the pipeline, or panics after `limit`.
    pub(crate) async fn wait_for(
        &self,
        id: i64,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let pipeline = self.pipeline(id).await;
            if done(&pipeline) {
                return pipeline;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting; pipeline: {pipeline:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn wait_finished(&self, id: i64, limit: Duration) -> Value {
        self.wait_for(id, limit, |p| !p["finished_at"].is_null())
            .await
    }

    /// The whole log of a build, read in pages as a client would.
    pub(crate) async fn log(&self, build: i64) -> (Vec<u8>, bool) {
        let mut log = Vec::new();
        loop {
            let response = self
                .http
                .get(format!(
                    "{}/api/v1/builds/{build}/log?offset={}",
                    self.url(),
                    log.len()
                ))
                .bearer_auth(ADMIN)
                .send()
                .await
                .expect("the server answers");
            let complete = response.headers()["x-log-complete"] == "true";
            let next: usize = response.headers()["x-log-offset"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("a number");
            let bytes = response.bytes().await.expect("a body");
            log.extend_from_slice(&bytes);
            assert_eq!(next, log.len());
            if complete || bytes.is_empty() {
                return (log, complete);
            }
        }
    }

    /// Waits until the build's log contains `needle`; returns the log.
    pub(crate) async fn wait_for_log(&self, build: i64, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (log, _) = self.log(build).await;
            let log = String::from_utf8_lossy(&log).into_owned();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` never appeared in the log: {log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the build `name` of pipeline `id` runs and its log shows `needle`; returns
    /// the build's id and its log so far.
    pub(crate) async fn running_log(&self, id: i64, name: &str, needle: &str) -> (i64, String) {
        let pipeline = self
            .wait_for(id, Duration::from_secs(20), |p| {
                build(p, name)["status"] == "running"
            })
            .await;
        let build_id = build(&pipeline, name)["id"].as_i64().expect("a build id");
        (build_id, self.wait_for_log(build_id, needle).await)
    }

    /// Starts a worker process with extra arguments.
    pub(crate) fn worker(&self, extra: &[&str]) -> Worker {
        let log = self
            .work
            .with_extension(format!("worker-{}.log", fastrand::u32(..)));
        std::fs::create_dir_all(&self.work).expect("a work dir");
        let file = std::fs::File::create(&log).expect("a worker log file");
        let child = Command::new(env!("CARGO_BIN_EXE_lockstep-worker"))
            .args(["--url", &self.url(), "--token", &self.runner_token])
            .arg("--work-dir")
            .arg(&self.work)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a file"))
            .stderr(file)
            .spawn()
            .expect("the worker starts");
        Worker { child, log }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// A worker process; killed when dropped.
pub(crate) struct Worker {
    child: Child,
    pub(crate) log: PathBuf,
}

impl Worker {
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, signal).expect("signal the worker");
    }

    /// Waits for the worker to exit; returns whether it exited successfully.
    pub(crate) async fn exited(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not exit; its log:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The build of `pipeline` named `name` (its latest attempt).
pub(crate) fn build<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .rev()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no build `{name}` in {pipeline:#}"))
}

/// Whether a process with this pid exists (a zombie counts as gone: it runs nothing).
pub(crate) fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split(' ').nth(2).is_none_or(|state| state != "Z"))
}

/// Waits until none of `pids` runs; panics after `limit`.
pub(crate) async fn wait_gone(pids: &[i32], limit: Duration) {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|pid| running(*pid)) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The numbers after `key ` in a log, e.g. `pid 123`.
pub(crate) fn numbers_after(log: &str, key: &str) -> Vec<i32> {
    log.lines()
        .filter_map(|line| line.strip_prefix(key)?.trim().parse().ok())
        .collect()
}
