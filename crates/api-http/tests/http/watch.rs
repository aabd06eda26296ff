//! `POST /jobs/watch`: a runner told the moment one of its builds is asked to stop, by a NOTIFY
//! from the cancel, whichever process ran it.

use crate::support::{ADMIN, TestApp};
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::{Transitions, TxStats};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn post(url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the server answers");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    (
        status,
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

/// A running build and the token of the runner holding it.
async fn running(app: &TestApp) -> (i64, String) {
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(project, json!([{ "name": "a", "script": ["sleep 60"] }]))
        .await;
    let job = app.acquire(&token).await.expect("a build");
    (job["id"].as_i64().expect("an id"), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_is_answered_the_moment_another_process_cancels_the_build() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/watch");
    let watching = tokio::spawn(async move {
        let started = Instant::now();
        let answer = post(&url, &token, &json!({ "ids": [build], "wait_seconds": 30 })).await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another replica: a storage transaction on a connection of its own.
    let mut conn = app.db.connect();
    tokio::task::spawn_blocking(move || {
        Transitions::new(&mut conn, &TxStats::default())
            .cancel_build(BuildId(build), Utc::now())
            .expect("cancel");
    })
    .await
    .expect("the cancel runs");
    let ((status, answer), waited) = watching.await.expect("the watch completes");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({ "builds": [{ "id": build, "status": "canceling", "held": true }] })
    );
    assert!(waited < Duration::from_secs(30), "woken: {waited:?}");
    served.shut_down().await;
}

#[tokio::test]
async fn a_watch_answers_at_once_when_a_build_already_needs_the_runner() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    app.post(&format!("/api/v1/builds/{build}/cancel"), &json!({}))
        .await
        .expect(StatusCode::OK);
    let (_, other) = app.runner("r2", &[]).await;
    let answer = app
        .runner_post(
            "/api/v1/jobs/watch",
            &token,
            &json!({ "ids": [build, 999_999], "wait_seconds": 30 }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        answer["builds"],
        json!([
            { "id": build, "status": "canceling", "held": true },
            { "id": 999_999, "status": null, "held": false },
        ])
    );
    // Another runner's build is not held by the one asking.
    let answer = app
        .runner_post("/api/v1/jobs/watch", &other, &json!({ "ids": [build] }))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(answer["builds"][0]["held"], false);
}

#[tokio::test]
async fn a_watch_with_nothing_to_say_answers_after_its_wait() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    let started = Instant::now();
    let answer = app
        .runner_post(
            "/api/v1/jobs/watch",
            &token,
            &json!({ "ids": [build], "wait_seconds": 1 }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        answer["builds"],
        json!([{ "id": build, "status": "running", "held": true }])
    );
}

#[tokio::test]
async fn a_watch_names_one_to_256_builds() {
    let app = TestApp::new();
    let (_, token) = app.runner("r1", &[]).await;
    for ids in [json!([]), json!((1..=257).collect::<Vec<i64>>())] {
        let answer = app
            .runner_post("/api/v1/jobs/watch", &token, &json!({ "ids": ids }))
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .json();
        assert_eq!(answer["error"]["field"], "ids", "{answer}");
    }
    app.call(
        axum::http::Method::POST,
        "/api/v1/jobs/watch",
        crate::support::As::Token(ADMIN),
        json!({ "ids": [1] }).to_string(),
    )
    .await
    .expect(StatusCode::UNAUTHORIZED);
}
