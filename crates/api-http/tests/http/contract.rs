//! The REST contract, end to end: a pipeline from submission to deployment.

use crate::support::{As, TestApp, build_named};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

fn release_jobs() -> Value {
    json!([
        { "name": "build", "stage": "build", "script": ["make"] },
        { "name": "test", "stage": "test", "script": ["make test"] },
        { "name": "deploy", "stage": "deploy", "script": ["make deploy"], "environment": "staging" },
    ])
}

#[tokio::test]
async fn projects_are_created_listed_and_unique() {
    let app = TestApp::new();
    let created = app
        .post("/api/v1/projects", &json!({ "name": "app" }))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(created["name"], "app");
    assert!(created["id"].as_i64().is_some());
    assert!(created["created_at"].as_str().is_some());
    let conflict = app
        .post("/api/v1/projects", &json!({ "name": "app" }))
        .await
        .expect(StatusCode::CONFLICT)
        .json();
    assert_eq!(conflict["error"]["code"], "already_exists");
    assert_eq!(conflict["error"]["field"], "name");
    let list = app
        .get("/api/v1/projects")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_pipeline_runs_from_submission_to_deployment() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (runner_id, token) = app.runner("r1", &["linux"]).await;
    let pipeline = app.pipeline(project, release_jobs()).await;
    assert_eq!(pipeline["status"], "pending");
    assert_eq!(pipeline["ref"], "main");
    assert_eq!(build_named(&pipeline, "build")["status"], "pending");
    assert_eq!(build_named(&pipeline, "deploy")["status"], "created");
    assert_eq!(
        build_named(&pipeline, "deploy")["deployment"]["environment"],
        "staging"
    );
    let pipeline_id = pipeline["id"].as_i64().expect("id");

    for name in ["build", "test", "deploy"] {
        let job = app.acquire(&token).await.expect("a build is pending");
        assert_eq!(job["name"], name);
        assert_eq!(job["pipeline_id"], pipeline_id);
        assert_eq!(job["variables"]["CI_JOB_NAME"], name);
        assert_eq!(job["variables"]["CI_PIPELINE_ID"], pipeline_id.to_string());
        assert_eq!(job["lease_seconds"], 30);
        if name == "deploy" {
            assert_eq!(job["variables"]["CI_ENVIRONMENT_NAME"], "staging");
            assert_eq!(job["deployment"]["status"], "running");
        } else {
            assert!(job["deployment"].is_null());
        }
        assert!(app.acquire(&token).await.is_none(), "the next stage waits");
        let id = job["id"].as_i64().expect("id");
        let beat = app
            .runner_post(&format!("/api/v1/jobs/{id}/heartbeat"), &token, &json!({}))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(beat["status"], "running");
        let done = app
            .runner_post(
                &format!("/api/v1/jobs/{id}/finish"),
                &token,
                &json!({ "result": "success" }),
            )
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(done["status"], "success");
    }

    let pipeline = app
        .get(&format!("/api/v1/pipelines/{pipeline_id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(pipeline["status"], "success");
    assert!(pipeline["finished_at"].as_str().is_some());
    let deploy = build_named(&pipeline, "deploy");
    assert_eq!(deploy["deployment"]["status"], "success");
    assert_eq!(deploy["runner_id"], runner_id);

    let environments = app
        .get(&format!("/api/v1/projects/{project}/environments"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(environments[0]["name"], "staging");
    assert_eq!(environments[0]["last_deployment"]["status"], "success");
    let environment = environments[0]["id"].as_i64().expect("id");
    let deployments = app
        .get(&format!("/api/v1/environments/{environment}/deployments"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(deployments.as_array().map(Vec::len), Some(1));
    assert_eq!(deployments[0]["build_id"], deploy["id"]);
}

#[tokio::test]
async fn a_failure_skips_dependents_and_fails_the_deployment() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let pipeline = app
        .pipeline(
            project,
            json!([
                { "name": "build", "stage": "build", "script": ["make"] },
                { "name": "deploy", "stage": "deploy", "script": ["deploy"], "environment": "prod" },
            ]),
        )
        .await;
    let job = app.acquire(&token).await.expect("build is pending");
    let id = job["id"].as_i64().expect("id");
    let body = json!({ "result": "failed", "exit_code": 2 });
    let done = app
        .runner_post(&format!("/api/v1/jobs/{id}/finish"), &token, &body)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(done["status"], "failed");
    // The same report again is accepted and changes nothing.
    app.runner_post(&format!("/api/v1/jobs/{id}/finish"), &token, &body)
        .await
        .expect(StatusCode::OK);
    // Another result for a finished build is refused, naming the status it has.
    let conflict = app
        .runner_post(
            &format!("/api/v1/jobs/{id}/finish"),
            &token,
            &json!({ "result": "success" }),
        )
        .await
        .expect(StatusCode::CONFLICT)
        .json();
    assert_eq!(conflict["error"]["status"], "failed");

    let pipeline = app
        .get(&format!("/api/v1/pipelines/{}", pipeline["id"]))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(pipeline["status"], "failed");
    let build = build_named(&pipeline, "build");
    assert_eq!(build["failure_reason"], "script_failure");
    assert_eq!(build["exit_code"], 2);
    let deploy = build_named(&pipeline, "deploy");
    assert_eq!(deploy["status"], "skipped");
    assert_eq!(deploy["deployment"]["status"], "skipped");
}

#[tokio::test]
async fn cancel_asks_the_runner_to_stop_and_retry_makes_a_new_attempt() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let pipeline = app.pipeline(project, release_jobs()).await;
    let pipeline_id = pipeline["id"].as_i64().expect("id");
    let job = app.acquire(&token).await.expect("build is pending");
    let id = job["id"].as_i64().expect("id");

    let canceled = app
        .post(
            &format!("/api/v1/pipelines/{pipeline_id}/cancel"),
            &json!({}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(canceled["status"], "canceling");
    assert_eq!(build_named(&canceled, "build")["status"], "canceling");
    assert_eq!(
        build_named(&canceled, "deploy")["deployment"]["status"],
        "canceled"
    );
    let beat = app
        .runner_post(&format!("/api/v1/jobs/{id}/heartbeat"), &token, &json!({}))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(beat["status"], "canceling");
    app.runner_post(
        &format!("/api/v1/jobs/{id}/finish"),
        &token,
        &json!({ "result": "canceled" }),
    )
    .await
    .expect(StatusCode::OK);
    // The lease is over: the build is gone for the runner.
    let gone = app
        .runner_post(&format!("/api/v1/jobs/{id}/heartbeat"), &token, &json!({}))
        .await
        .expect(StatusCode::GONE)
        .json();
    assert_eq!(gone["error"]["code"], "lease_lost");
    // Canceling again changes nothing.
    let again = app
        .post(
            &format!("/api/v1/pipelines/{pipeline_id}/cancel"),
            &json!({}),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(again["status"], "canceled");

    let retried = app
        .post(&format!("/api/v1/builds/{id}/retry"), &json!({}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(retried["name"], "build");
    assert_eq!(retried["attempt"], 2);
    assert_eq!(retried["status"], "pending");
    let twice = app
        .post(&format!("/api/v1/builds/{id}/retry"), &json!({}))
        .await
        .expect(StatusCode::CONFLICT)
        .json();
    assert_eq!(twice["error"]["code"], "already_retried");
}

#[tokio::test]
async fn logs_append_at_the_end_and_read_back_from_any_offset() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(project, release_jobs()).await;
    let job = app.acquire(&token).await.expect("build is pending");
    let id = job["id"].as_i64().expect("id");
    let append = |offset: u64, data: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.call(
                Method::POST,
                &format!("/api/v1/jobs/{id}/log?offset={offset}"),
                As::Runner(&token),
                data,
            )
            .await
        }
    };
    let first = append(0, "hello ")
        .await
        .expect(StatusCode::ACCEPTED)
        .json();
    assert_eq!(first["offset"], 6);
    // A resend of the same chunk is refused with the true end, so nothing is duplicated.
    let stale = append(0, "hello ")
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(stale.header("x-log-offset"), Some("6"));
    assert_eq!(stale.json()["error"]["offset"], 6);
    append(6, "world\n").await.expect(StatusCode::ACCEPTED);

    let read = app
        .get(&format!("/api/v1/builds/{id}/log?offset=3"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(read.body, b"lo world\n");
    assert_eq!(read.header("x-log-offset"), Some("12"));
    assert_eq!(read.header("x-log-complete"), Some("false"));
    app.get(&format!("/api/v1/builds/{id}/log?offset=13"))
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);

    app.runner_post(
        &format!("/api/v1/jobs/{id}/finish"),
        &token,
        &json!({ "result": "success" }),
    )
    .await
    .expect(StatusCode::OK);
    let done = app
        .get(&format!("/api/v1/builds/{id}/log"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(done.body, b"hello world\n");
    assert_eq!(done.header("x-log-complete"), Some("true"));
}

#[tokio::test]
async fn pipelines_list_newest_first_in_pages() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let pipeline = app
            .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
            .await;
        ids.push(pipeline["id"].as_i64().expect("id"));
    }
    let first = app
        .get(&format!("/api/v1/projects/{project}/pipelines?limit=2"))
        .await
        .expect(StatusCode::OK)
        .json();
    let first: Vec<i64> = first
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(first, vec![ids[4], ids[3]]);
    let next = app
        .get(&format!(
            "/api/v1/projects/{project}/pipelines?limit=10&before={}",
            ids[3]
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(next.as_array().map(Vec::len), Some(3));
    let none = app
        .get(&format!(
            "/api/v1/projects/{project}/pipelines?status=success"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(none.as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn retired_runners_cannot_authenticate() {
    let app = TestApp::new();
    let (id, token) = app.runner("r1", &[]).await;
    assert!(app.acquire(&token).await.is_none());
    app.call(
        Method::DELETE,
        &format!("/api/v1/runners/{id}"),
        As::Admin,
        "",
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let refused = app
        .runner_post("/api/v1/jobs/request", &token, &json!({}))
        .await
        .expect(StatusCode::UNAUTHORIZED)
        .json();
    assert_eq!(refused["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let app = TestApp::new();
    app.call(Method::GET, "/healthz", As::Anonymous, "")
        .await
        .expect(StatusCode::OK);
    app.call(Method::GET, "/readyz", As::Anonymous, "")
        .await
        .expect(StatusCode::OK);
    app.project("app").await;
    let metrics = app
        .call(Method::GET, "/metrics", As::Anonymous, "")
        .await
        .expect(StatusCode::OK);
    let text = String::from_utf8(metrics.body).expect("utf-8");
    assert!(
        text.contains(
            r#"lockstep_http_requests_total{method="POST",route="/api/v1/projects",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("lockstep_builds_pending 0"), "{text}");
    assert!(text.contains(r#"lockstep_transaction_retries_total{sqlstate="40P01"} 0"#));
}

#[tokio::test]
async fn a_wrong_admin_token_is_refused_and_changes_nothing() {
    let app = TestApp::new();
    let before = app.fingerprint();
    let refused = app
        .call(
            Method::POST,
            "/api/v1/projects",
            As::Token("not-the-admin-token"),
            json!({ "name": "app" }).to_string(),
        )
        .await
        .expect(StatusCode::UNAUTHORIZED)
        .json();
    assert_eq!(refused["error"]["code"], "unauthorized");
    assert_eq!(app.fingerprint(), before);
}

#[tokio::test]
async fn runners_get_only_builds_whose_tags_they_all_have() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, plain) = app.runner("plain", &["linux"]).await;
    let (_, gpu) = app.runner("gpu", &["linux", "gpu"]).await;
    app.pipeline(
        project,
        json!([{ "name": "train", "script": ["train"], "tags": ["gpu", "linux"] }]),
    )
    .await;
    assert!(app.acquire(&plain).await.is_none(), "lacks the gpu tag");
    let job = app.acquire(&gpu).await.expect("has every tag");
    assert_eq!(job["name"], "train");
}

#[tokio::test]
async fn the_served_openapi_document_is_the_checked_in_one() {
    let app = TestApp::new();
    let served = app
        .call(Method::GET, "/api/v1/openapi.json", As::Anonymous, "")
        .await
        .expect(StatusCode::OK);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let checked_in = std::fs::read(path).expect("docs/openapi.json exists");
    assert!(
        served.body == checked_in,
        "docs/openapi.json is stale: run `cargo xtask openapi`"
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::new();
    app.call(
        Method::GET,
        "/api/v1/projects",
        As::Header(&format!("bearer {}", crate::support::ADMIN)),
        "",
    )
    .await
    .expect(StatusCode::OK);
}
