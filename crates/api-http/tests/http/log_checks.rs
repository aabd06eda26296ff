//! A runner's account of a log, checked against what the server stored when it reports.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

async fn running(app: &TestApp) -> (i64, String) {
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(project, json!([{ "name": "a", "script": ["make"] }]))
        .await;
    let job = app.acquire(&token).await.expect("a build");
    (job["id"].as_i64().expect("an id"), token)
}

async fn append(app: &TestApp, token: &str, build: i64, offset: usize, data: &[u8]) {
    app.call(
        Method::POST,
        &format!("/api/v1/jobs/{build}/log?offset={offset}"),
        crate::support::As::Runner(token),
        Body::from(data.to_vec()),
    )
    .await
    .expect(StatusCode::ACCEPTED);
}

async fn finish(app: &TestApp, token: &str, build: i64, log: Value) -> Value {
    app.runner_post(
        &format!("/api/v1/jobs/{build}/finish"),
        token,
        &json!({ "result": "success", "log": log }),
    )
    .await
    .expect(StatusCode::OK);
    app.get(&format!("/api/v1/builds/{build}")).await.json()["log"].clone()
}

#[tokio::test]
async fn a_log_that_matches_the_runners_account_is_complete() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    append(&app, &token, build, 0, b"hello ").await;
    append(&app, &token, build, 6, b"world\n").await;
    let sha = hex::encode(Sha256::digest(b"hello world\n"));
    let log = finish(&app, &token, build, json!({ "bytes": 12, "sha256": sha })).await;
    assert_eq!(
        log,
        json!({ "bytes": 12, "reported_bytes": 12, "checksum": format!("sha256:{sha}"), "complete": true })
    );
}

/// The runner meant to store more than arrived (a chunk lost on the way, an upload given up):
/// the build says so.
#[tokio::test]
async fn a_log_short_of_the_runners_account_is_marked_incomplete() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    append(&app, &token, build, 0, b"hello ").await;
    let sha = hex::encode(Sha256::digest(b"hello world\n"));
    let log = finish(&app, &token, build, json!({ "bytes": 12, "sha256": sha })).await;
    assert_eq!(
        (&log["bytes"], &log["reported_bytes"], &log["complete"]),
        (&json!(6), &json!(12), &json!(false))
    );
    // The same length with other bytes is caught by the checksum.
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    append(&app, &token, build, 0, b"hello").await;
    let other = hex::encode(Sha256::digest(b"jello"));
    let log = finish(&app, &token, build, json!({ "bytes": 5, "sha256": other })).await;
    assert_eq!(log["complete"], false);
}

#[tokio::test]
async fn a_report_without_an_account_leaves_log_null_and_a_bad_one_is_refused() {
    let app = TestApp::new();
    let (build, token) = running(&app).await;
    let refused = app
        .runner_post(
            &format!("/api/v1/jobs/{build}/finish"),
            &token,
            &json!({ "result": "success", "log": { "bytes": 0, "sha256": "not hex" } }),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(refused["error"]["field"], "log.sha256");
    let status = app.get(&format!("/api/v1/builds/{build}")).await.json()["status"].clone();
    assert_eq!(status, "running", "a refused report changes nothing");
    app.runner_post(
        &format!("/api/v1/jobs/{build}/finish"),
        &token,
        &json!({ "result": "success" }),
    )
    .await
    .expect(StatusCode::OK);
    let view = app.get(&format!("/api/v1/builds/{build}")).await.json();
    assert_eq!(view["log"], Value::Null);
}

/// Another runner cannot write a check on a build it does not hold.
#[tokio::test]
async fn only_the_holder_writes_the_check() {
    let app = TestApp::new();
    let (build, _) = running(&app).await;
    let (_, stranger) = app.runner("r2", &[]).await;
    app.runner_post(
        &format!("/api/v1/jobs/{build}/finish"),
        &stranger,
        &json!({ "result": "success", "log": { "bytes": 0, "sha256": hex::encode(Sha256::digest(b"")) } }),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let view = app.get(&format!("/api/v1/builds/{build}")).await.json();
    assert_eq!(view["log"], Value::Null);
}
