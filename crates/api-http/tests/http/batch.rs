//! The batch forms of the runner protocol: several builds per call, each answered as the
//! single-build call would answer it.

use crate::support::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};

fn two_stages() -> Value {
    json!([
        { "name": "build", "stage": "build", "script": ["make"], "environment": "staging" },
        { "name": "test", "stage": "test", "script": ["make test"] },
    ])
}

fn id(job: &Value) -> i64 {
    job["id"].as_i64().expect("id")
}

#[tokio::test]
async fn a_batch_of_reports_is_answered_report_by_report() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let (_, stranger) = app.runner("r2", &[]).await;
    let first = app.pipeline(project, two_stages()).await;
    let second = app.pipeline(project, two_stages()).await;
    let a = app.acquire(&token).await.expect("first build");
    let b = app.acquire(&token).await.expect("second build");
    assert_eq!(a["pipeline_id"], first["id"]);
    assert_eq!(b["pipeline_id"], second["id"]);

    let answer = app
        .runner_post(
            "/api/v1/jobs/batch/finish",
            &token,
            &json!({ "reports": [
                { "id": id(&b), "result": "success" },
                { "id": id(&a), "result": "failed", "exit_code": 3 },
                { "id": 99_999_999, "result": "success" },
                { "id": id(&a), "result": "failed", "exit_code": 3 },
                { "id": id(&a), "result": "success" },
            ] }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 5, "{answer}");
    assert_eq!(results[0], json!({ "id": id(&b), "status": "success" }));
    assert_eq!(results[1], json!({ "id": id(&a), "status": "failed" }));
    assert_eq!(results[2]["http_status"], 404);
    assert_eq!(results[2]["error"]["code"], "not_found");
    assert_eq!(
        results[3],
        json!({ "id": id(&a), "status": "failed" }),
        "the same report again changes nothing"
    );
    assert_eq!(results[4]["http_status"], 409);
    assert_eq!(results[4]["error"]["code"], "illegal_transition");
    assert_eq!(results[4]["error"]["status"], "failed");

    let refused = app
        .runner_post(
            "/api/v1/jobs/batch/finish",
            &stranger,
            &json!({ "reports": [{ "id": id(&b), "result": "failed" }] }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(refused["results"][0]["http_status"], 403);
    assert_eq!(refused["results"][0]["error"]["code"], "not_holder");

    let first = app
        .get(&format!("/api/v1/pipelines/{}", first["id"]))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(first["status"], "failed");
    assert_eq!(first["builds"][0]["deployment"]["status"], "failed");
    assert_eq!(first["builds"][1]["status"], "skipped");
    let second = app
        .get(&format!("/api/v1/pipelines/{}", second["id"]))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(second["status"], "running");
    assert_eq!(second["builds"][0]["deployment"]["status"], "success");
    assert_eq!(second["builds"][1]["status"], "pending");
}

#[tokio::test]
async fn a_runner_takes_up_to_max_jobs_builds_in_one_request() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &["linux"]).await;
    let jobs: Vec<Value> = (0..5)
        .map(|i| json!({ "name": format!("job-{i}"), "script": ["true"], "environment": if i == 0 { Some("staging") } else { None } }))
        .collect();
    app.pipeline(project, Value::Array(jobs)).await;
    let request = |max_jobs: u32| {
        let body = json!({ "max_jobs": max_jobs });
        let token = token.clone();
        let app = &app;
        async move {
            app.runner_post("/api/v1/jobs/batch/request", &token, &body)
                .await
        }
    };
    let first = request(3).await.expect(StatusCode::CREATED).json();
    let first = first["jobs"].as_array().expect("jobs").clone();
    assert_eq!(first.len(), 3);
    assert!(
        first.windows(2).all(|w| id(&w[0]) < id(&w[1])),
        "ascending ids"
    );
    assert_eq!(first[0]["deployment"]["status"], "running");
    assert_eq!(first[0]["variables"]["CI_ENVIRONMENT_NAME"], "staging");
    let second = request(10).await.expect(StatusCode::CREATED).json();
    assert_eq!(second["jobs"].as_array().map(Vec::len), Some(2));
    request(10).await.expect(StatusCode::NO_CONTENT);

    let reports: Vec<Value> = first
        .iter()
        .chain(second["jobs"].as_array().expect("jobs"))
        .map(|job| json!({ "id": id(job), "result": "success" }))
        .collect();
    let answer = app
        .runner_post(
            "/api/v1/jobs/batch/finish",
            &token,
            &json!({ "reports": reports }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["status"] == "success"),
        "{answer}"
    );
}
