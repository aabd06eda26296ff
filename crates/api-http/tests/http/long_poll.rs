//! The runner protocol over a real socket: long-polls woken by NOTIFY (from this process or
//! another), graceful shutdown, and the lease reaper.

use crate::support::{ADMIN, TestApp};
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::{JobDefinition, PipelineDefinition, ProjectId};
use lockstep_storage_pg::{NewPipeline, Transitions, TxStats};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client")
}

async fn post(url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_runner_is_woken_by_a_new_pipeline() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = post(&url, &token, &json!({ "wait_seconds": 20 })).await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = post(
        &served.url(&format!("/api/v1/projects/{project}/pipelines")),
        ADMIN,
        &json!({ "ref": "main", "jobs": [{ "name": "a", "script": ["true"] }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let ((status, job), waited) = waiting.await.expect("the request completes");
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["name"], "a");
    assert!(
        waited < Duration::from_secs(20),
        "woken, not timed out: {waited:?}"
    );
    served.shut_down().await;
}

/// Another replica (here: a plain storage transaction on its own connection) makes a build
/// pending; the NOTIFY reaches this server's listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_made_pending_elsewhere_wakes_the_runner() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting =
        tokio::spawn(async move { post(&url, &token, &json!({ "wait_seconds": 20 })).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = app.db.connect();
    tokio::task::spawn_blocking(move || {
        let definition = PipelineDefinition {
            jobs: vec![JobDefinition {
                name: "elsewhere".to_owned(),
                script: vec!["true".to_owned()],
                ..JobDefinition::default()
            }],
        }
        .validate()
        .expect("valid");
        let stats = TxStats::default();
        Transitions::new(&mut conn, &stats)
            .create_pipeline(
                &NewPipeline {
                    project: ProjectId(project),
                    git_ref: "main",
                    sha: None,
                    definition: &definition,
                },
                Utc::now(),
            )
            .expect("created");
    })
    .await
    .expect("created on another connection");
    let (status, job) = waiting.await.expect("the request completes");
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["name"], "elsewhere");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_waiting_runners_with_no_content() {
    let app = TestApp::new();
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let response = client()
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "wait_seconds": 30 }))
            .send()
            .await
            .expect("answered before the server stops");
        (response.status().as_u16(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.shut_down().await;
    let (status, waited) = waiting.await.expect("the request completes");
    assert_eq!(status, 204);
    assert!(
        waited < Duration::from_secs(30),
        "answered at shutdown: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_fails_the_build_and_its_deployment() {
    let app = TestApp::with_lease(Duration::from_secs(1));
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(
        project,
        json!([{ "name": "deploy", "script": ["true"], "environment": "prod" }]),
    )
    .await;
    let job = app.claim(&token).await.expect("pending");
    let id = job["id"].as_i64().expect("id");
    let served = app.serve().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let build = loop {
        let build = app.get(&format!("/api/v1/builds/{id}")).await.json();
        if build["status"] != "running" || Instant::now() > deadline {
            break build;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(build["status"], "failed", "{build}");
    assert_eq!(build["failure_reason"], "runner_lost");
    assert_eq!(build["deployment"]["status"], "failed");
    let (status, body) = post(
        &served.url(&format!("/api/v1/jobs/{id}/heartbeat")),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, body) = post(
        &served.url(&format!("/api/v1/jobs/{id}/finish")),
        &token,
        &json!({ "result": "failed" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "a late report is not an echo: {body}"
    );
    served.shut_down().await;
}

/// Diesel blocks; it must do so off the runtime. On a single-threaded runtime, a request stuck
/// behind a row lock must not stop another request from being answered.
#[tokio::test(flavor = "current_thread")]
async fn a_blocked_query_does_not_stall_other_requests() {
    use diesel::connection::SimpleConnection as _;
    let app = TestApp::new();
    let project = app.project("app").await;
    let pipeline = app
        .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let id = pipeline["id"].as_i64().expect("id");
    let served = app.serve().await;
    // Another session holds the pipeline's row, so the cancel below waits in PostgreSQL. It
    // lets go when told, or after 10 s: were the runtime thread blocked, nobody could tell it,
    // and the timing assertion below would fail instead of the test hanging.
    let mut holder = app.db.connect();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM pipelines WHERE id = {id} FOR UPDATE"
        ))
        .expect("lock the pipeline row");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _ = released.recv_timeout(Duration::from_secs(10));
        holder.batch_execute("ROLLBACK").expect("release");
    });
    let url = served.url(&format!("/api/v1/pipelines/{id}/cancel"));
    let cancel = tokio::spawn(async move { post(&url, ADMIN, &json!({})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cancel.is_finished(), "the cancel waits for the row lock");
    let started = Instant::now();
    let health = client()
        .get(served.url("/healthz"))
        .send()
        .await
        .expect("answered while the cancel is blocked");
    let waited = started.elapsed();
    release.send(()).expect("the holder listens");
    holder.join().expect("the holder releases");
    assert_eq!(health.status().as_u16(), 200);
    assert!(waited < Duration::from_secs(5), "healthz waited {waited:?}");
    let (status, body) = cancel.await.expect("the cancel completes");
    assert_eq!(status, StatusCode::OK, "{body}");
    served.shut_down().await;
}
