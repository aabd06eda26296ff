//! A server on a fresh test database, driven through `router()` with `oneshot`, or over a real
//! socket when the protocol needs one (long-polls, shutdown).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use http_body_util::BodyExt;
use lockstep_api_http::{AppState, Settings, router};
use lockstep_test_db::TestDb;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

pub(crate) const ADMIN: &str = "test-admin-token-0123456789";

/// Who a request claims to be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum As<'a> {
    Admin,
    Runner(&'a str),
    Anonymous,
    Token(&'a str),
    /// A raw `Authorization` header.
    Header(&'a str),
}

pub(crate) struct TestApp {
    pub(crate) db: TestDb,
    pub(crate) state: AppState,
    router: Router,
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "{} answered with a body that is not JSON ({error}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status; on a mismatch shows the body.
    #[track_caller]
    pub(crate) fn expect(self, status: StatusCode) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn settings(lease: Duration) -> Settings {
    Settings {
        reaper_interval: Duration::from_millis(200),
        ..Settings::new(ADMIN.to_owned(), lease)
    }
}

impl TestApp {
    pub(crate) fn new() -> Self {
        Self::with_lease(Duration::from_secs(30))
    }

    pub(crate) fn with_lease(lease: Duration) -> Self {
        Self::with_settings(&settings(lease))
    }

    pub(crate) fn with_settings(settings: &Settings) -> Self {
        let db = TestDb::new();
        let pool = db.pool(8);
        let state = AppState::new(pool, settings);
        let router = router(state.clone());
        Self { db, state, router }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        body: impl Into<Body>,
    ) -> Answer {
        self.send(Request::builder().method(method).uri(path), who, body)
            .await
    }

    /// POSTs a pipeline file as it is (`Content-Type: application/yaml`), as the admin.
    pub(crate) async fn post_file(&self, path: &str, text: &str) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/yaml");
        self.send(request, As::Admin, text.to_owned()).await
    }

    async fn send(
        &self,
        mut request: axum::http::request::Builder,
        who: As<'_>,
        body: impl Into<Body>,
    ) -> Answer {
        match who {
            As::Admin => request = request.header("authorization", format!("Bearer {ADMIN}")),
            As::Runner(token) | As::Token(token) => {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            As::Header(value) => request = request.header("authorization", value),
            As::Anonymous => {}
        }
        self.request(request.body(body.into()).expect("a valid request"))
            .await
    }

    /// Sends a request made by the test, headers and all.
    pub(crate) async fn request(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("a readable body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.to_vec(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, As::Admin, Body::empty()).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, As::Admin, body.to_string())
            .await
    }

    pub(crate) async fn runner_post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, As::Runner(token), body.to_string())
            .await
    }

    /// Creates a project and returns its id.
    pub(crate) async fn project(&self, name: &str) -> i64 {
        let answer = self
            .post("/api/v1/projects", &json!({ "name": name }))
            .await
            .expect(StatusCode::CREATED);
        answer.json()["id"].as_i64().expect("an id")
    }

    /// Registers a runner and returns its id and token.
    pub(crate) async fn runner(&self, name: &str, tags: &[&str]) -> (i64, String) {
        let answer = self
            .post("/api/v1/runners", &json!({ "name": name, "tags": tags }))
            .await
            .expect(StatusCode::CREATED);
        let body = answer.json();
        (
            body["id"].as_i64().expect("an id"),
            body["token"].as_str().expect("a token").to_owned(),
        )
    }

    /// Submits a pipeline and returns its JSON. Tests of other things put pipelines side by
    /// side on one ref, so it leaves older ones alone; auto-cancel has tests of its own.
    pub(crate) async fn pipeline(&self, project: i64, jobs: Value) -> Value {
        self.post(
            &format!("/api/v1/projects/{project}/pipelines"),
            &json!({ "ref": "main", "sha": "abc123", "jobs": jobs,
                     "workflow": { "auto_cancel": { "on_new_commit": "none" } } }),
        )
        .await
        .expect(StatusCode::CREATED)
        .json()
    }

    /// Acquires a build without waiting and acknowledges it with a heartbeat, as a runner does
    /// first thing; `None` on 204.
    pub(crate) async fn acquire(&self, token: &str) -> Option<Value> {
        let answer = self
            .runner_post("/api/v1/jobs/request", token, &json!({}))
            .await;
        match answer.status {
            StatusCode::CREATED => {
                let job = answer.json();
                let id = job["id"].as_i64().expect("a job id");
                self.runner_post(&format!("/api/v1/jobs/{id}/heartbeat"), token, &json!({}))
                    .await
                    .expect(StatusCode::OK);
                Some(job)
            }
            StatusCode::NO_CONTENT => None,
            other => panic!(
                "job request answered {other}: {}",
                String::from_utf8_lossy(&answer.body)
            ),
        }
    }

    /// A digest of every row that a rejected call must leave alone. `runners.contacted_at` is
    /// left out: authenticating a runner may refresh it.
    pub(crate) fn fingerprint(&self) -> String {
        let mut conn = self.db.connect();
        fingerprint(&mut conn)
    }

    /// Serves the app on a real socket until the returned guard is dropped or shut down.
    pub(crate) async fn serve(&self) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(lockstep_api_http::run(
            self.state.clone(),
            listener,
            self.db.url().to_owned(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            address,
            stop: Some(stop),
            task,
        }
    }
}

/// The latest attempt of the job `name` in a pipeline's JSON.
pub(crate) fn build_named<'a>(pipeline: &'a Value, name: &str) -> &'a Value {
    pipeline["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .rev()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no build `{name}` in {pipeline}"))
}

/// A server running on a socket.
pub(crate) struct Served {
    pub(crate) address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Starts the graceful shutdown and waits for the server to stop.
    pub(crate) async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
    }
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = Text)]
    digest: String,
}

fn fingerprint(conn: &mut PgConnection) -> String {
    let query = "SELECT concat_ws(' ', \
        (SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY p.id), '')) FROM projects p), \
        (SELECT md5(coalesce(string_agg((r.id, r.name, r.tags, r.token_hash, r.retired_at)::text, '|' ORDER BY r.id), '')) FROM runners r), \
        (SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY p.id), '')) FROM pipelines p), \
        (SELECT md5(coalesce(string_agg(b::text, '|' ORDER BY b.id), '')) FROM ci_builds b), \
        (SELECT md5(coalesce(string_agg(e::text, '|' ORDER BY e.id), '')) FROM environments e), \
        (SELECT md5(coalesce(string_agg(d::text, '|' ORDER BY d.id), '')) FROM deployments d), \
        (SELECT md5(coalesce(string_agg(g::text, '|' ORDER BY g.id), '')) FROM resource_groups g), \
        (SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY l.build_id, l.byte_offset), '')) FROM build_log_chunks l) \
        ) AS digest";
    diesel::sql_query(query)
        .get_result::<Digest>(conn)
        .expect("fingerprint query")
        .digest
}
