//! GitLab's `retry` and `allow_failure` shapes over HTTP: which failures retry by themselves,
//! how the chain of attempts reads, and which failures let the pipeline pass.

use crate::support::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Acquires the only pending build and reports it failed with `exit_code`.
async fn fail(app: &TestApp, token: &str, exit_code: i32) -> i64 {
    let job = app.acquire(token).await.expect("a pending build");
    let id = job["id"].as_i64().expect("an id");
    app.runner_post(
        &format!("/api/v1/jobs/{id}/finish"),
        token,
        &json!({ "result": "failed", "exit_code": exit_code }),
    )
    .await
    .expect(StatusCode::OK);
    id
}

async fn pipeline(app: &TestApp, id: &Value) -> Value {
    app.get(&format!("/api/v1/pipelines/{id}")).await.json()
}

#[tokio::test]
async fn a_listed_exit_code_retries_automatically_and_the_chain_says_so() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let created = app
        .pipeline(
            project,
            json!([{ "name": "flaky", "script": ["make"],
                     "retry": { "max": 2, "exit_codes": [137] } }]),
        )
        .await;
    let first = fail(&app, &token, 137).await;
    let view = pipeline(&app, &created["id"]).await;
    let builds = view["builds"].as_array().expect("builds");
    assert_eq!(builds.len(), 2, "{view:#}");
    let (old, new) = (&builds[0], &builds[1]);
    assert_eq!(old["id"], first);
    assert_eq!(old["retried_by"], new["id"]);
    assert_eq!(
        (
            &new["retry_of"],
            &new["automatic_retry"],
            &new["attempt"],
            &new["status"]
        ),
        (&json!(first), &json!(true), &json!(2), &json!("pending"))
    );
    assert_eq!(
        new["retry"],
        json!({ "max": 2, "when": [], "exit_codes": [137] })
    );
    // Another exit code is not listed: the second attempt fails for good.
    fail(&app, &token, 1).await;
    let view = pipeline(&app, &created["id"]).await;
    assert_eq!(view["builds"].as_array().expect("builds").len(), 2);
    assert_eq!(view["status"], "failed");
    let one = app.get(&format!("/api/v1/builds/{first}")).await.json();
    assert_eq!(
        one["retried_by"], new["id"],
        "the single-build read follows the chain too"
    );
}

#[tokio::test]
async fn retry_n_retries_any_failure_and_a_manual_retry_is_not_automatic() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let created = app
        .pipeline(
            project,
            json!([{ "name": "test", "script": ["make"], "retry": 1 }]),
        )
        .await;
    fail(&app, &token, 1).await;
    let second = fail(&app, &token, 1).await;
    let view = pipeline(&app, &created["id"]).await;
    assert_eq!(view["status"], "failed", "one retry only: {view:#}");
    assert_eq!(view["builds"][1]["automatic_retry"], true);
    assert_eq!(
        view["builds"][1]["retry"],
        json!({ "max": 1, "when": ["always"], "exit_codes": [] })
    );
    let manual = app
        .post(&format!("/api/v1/builds/{second}/retry"), &json!({}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(
        (
            &manual["retry_of"],
            &manual["automatic_retry"],
            &manual["attempt"]
        ),
        (&json!(second), &json!(false), &json!(3))
    );
}

#[tokio::test]
async fn allow_failure_exit_codes_let_only_those_failures_pass() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let job = json!([{ "name": "lint", "script": ["lint"],
                       "allow_failure": { "exit_codes": [42] } }]);
    let allowed = app.pipeline(project, job.clone()).await;
    fail(&app, &token, 42).await;
    assert_eq!(pipeline(&app, &allowed["id"]).await["status"], "success");
    let refused = app.pipeline(project, job).await;
    fail(&app, &token, 1).await;
    let view = pipeline(&app, &refused["id"]).await;
    assert_eq!(view["status"], "failed");
    assert_eq!(
        (
            &view["builds"][0]["allow_failure"],
            &view["builds"][0]["allow_failure_exit_codes"]
        ),
        (&json!(true), &json!([42]))
    );
}
