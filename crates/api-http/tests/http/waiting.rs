//! "Why is my build pending?": every build that has not started says why, and `GET /runners`
//! says who is online and what each holds.

use crate::support::{TestApp, build_named};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// A runner call that claims nothing, so that the runner counts as in contact.
async fn contact(app: &TestApp, token: &str) {
    app.runner_post("/api/v1/jobs/watch", token, &json!({ "ids": [1] }))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn each_build_that_has_not_started_says_why() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let created = app
        .pipeline(
            project,
            json!([
                { "name": "build", "stage": "build", "script": ["make"] },
                { "name": "cuda", "stage": "build", "script": ["make"], "tags": ["gpu"] },
                { "name": "test", "stage": "test", "script": ["make test"] },
                { "name": "approve", "stage": "build", "script": ["true"], "when": "manual" },
            ]),
        )
        .await;
    let path = format!("/api/v1/pipelines/{}", created["id"]);
    // Nobody is online yet.
    let view = app.get(&path).await.json();
    assert_eq!(
        build_named(&view, "build")["waiting"],
        json!({ "reason": "no_runner", "tags": [] })
    );
    assert_eq!(
        build_named(&view, "test")["waiting"],
        json!({ "reason": "needs", "jobs": ["build", "cuda"] })
    );
    assert_eq!(
        build_named(&view, "approve")["waiting"],
        json!({ "reason": "manual" })
    );

    let (_, token) = app.runner("r1", &[]).await;
    contact(&app, &token).await;
    let view = app.get(&path).await.json();
    assert_eq!(
        build_named(&view, "build")["waiting"],
        json!({ "reason": "queued", "position": 1 })
    );
    assert_eq!(
        build_named(&view, "cuda")["waiting"],
        json!({ "reason": "no_runner", "tags": ["gpu"] }),
        "r1 lacks the gpu tag"
    );

    // A second pipeline's pending build stands behind the first's.
    let second = app
        .pipeline(project, json!([{ "name": "lint", "script": ["lint"] }]))
        .await;
    let lint = build_named(&second, "lint")["id"].as_i64().expect("an id");
    let one = app.get(&format!("/api/v1/builds/{lint}")).await.json();
    assert_eq!(one["waiting"], json!({ "reason": "queued", "position": 2 }));

    // Running or finished: null. POST answers leave the field out.
    let job = app.acquire(&token).await.expect("build is pending");
    let running = app
        .get(&format!("/api/v1/builds/{}", job["id"]))
        .await
        .json();
    assert_eq!(running["status"], "running");
    assert_eq!(running["waiting"], Value::Null);
    assert!(
        running
            .as_object()
            .expect("an object")
            .contains_key("waiting")
    );
    assert!(
        !build_named(&second, "lint")
            .as_object()
            .expect("an object")
            .contains_key("waiting")
    );
}

#[tokio::test]
async fn a_build_waiting_for_a_slot_says_where_it_stands_in_line() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let deploy = json!([{ "name": "deploy", "script": ["ship"], "resource_group": "prod" }]);
    app.pipeline(project, deploy.clone()).await;
    let second = app.pipeline(project, deploy.clone()).await;
    let third = app.pipeline(project, deploy).await;
    for (pipeline, position) in [(&second, 1), (&third, 2)] {
        let view = app
            .get(&format!("/api/v1/pipelines/{}", pipeline["id"]))
            .await
            .json();
        assert_eq!(
            build_named(&view, "deploy")["waiting"],
            json!({ "reason": "resource_group", "resource_group": "prod", "position": position })
        );
    }
}

#[tokio::test]
async fn runners_are_listed_with_whether_they_are_online_and_what_they_hold() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (busy_id, busy) = app.runner("busy", &["linux"]).await;
    let (idle_id, _) = app.runner("idle", &[]).await;
    app.pipeline(project, json!([{ "name": "a", "script": ["make"] }]))
        .await;
    let job = app.acquire(&busy).await.expect("a is pending");
    let runners = app
        .get("/api/v1/runners")
        .await
        .expect(StatusCode::OK)
        .json();
    let find = |id: i64| {
        runners
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect("listed")
    };
    let listed = find(busy_id);
    assert_eq!(
        (&listed["online"], &listed["tags"], &listed["builds"]),
        (&json!(true), &json!(["linux"]), &json!([job["id"]]))
    );
    assert!(listed["contacted_at"].is_string());
    let never = find(idle_id);
    assert_eq!(
        (&never["online"], &never["contacted_at"]),
        (&json!(false), &Value::Null)
    );
}

#[tokio::test]
async fn metrics_count_pending_builds_by_reason() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    contact(&app, &token).await;
    app.pipeline(
        project,
        json!([
            { "name": "a", "script": ["make"] },
            { "name": "b", "script": ["make"], "tags": ["arm"] },
        ]),
    )
    .await;
    let text =
        String::from_utf8(app.get("/metrics").await.expect(StatusCode::OK).body).expect("text");
    assert!(
        text.contains("lockstep_builds_pending_by_reason{reason=\"queued\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lockstep_builds_pending_by_reason{reason=\"no_runner\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lockstep_oldest_pending_build_age_seconds "),
        "{text}"
    );
}
