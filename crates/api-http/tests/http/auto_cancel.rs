//! Auto-cancel over HTTP: by default a new pipeline cancels an older one of its ref that has
//! not started, says so in `auto_canceled_by`, and `workflow` picks another rule.

use crate::support::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};

async fn submit(app: &TestApp, project: i64, git_ref: &str, workflow: Option<Value>) -> Value {
    let mut body = json!({ "ref": git_ref, "jobs": [
        { "name": "test", "script": ["make test"], "interruptible": true },
        { "name": "deploy", "stage": "deploy", "script": ["./deploy.sh"] },
    ] });
    if let Some(workflow) = workflow {
        body["workflow"] = workflow;
    }
    app.post(&format!("/api/v1/projects/{project}/pipelines"), &body)
        .await
        .expect(StatusCode::CREATED)
        .json()
}

async fn pipeline(app: &TestApp, id: &Value) -> Value {
    app.get(&format!("/api/v1/pipelines/{id}"))
        .await
        .expect(StatusCode::OK)
        .json()
}

#[tokio::test]
async fn a_new_pipeline_cancels_the_older_one_of_its_ref_by_default() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let older = submit(&app, project, "main", None).await;
    assert_eq!(older["auto_canceled_by"], Value::Null);
    assert_eq!(older["builds"][0]["interruptible"], true);
    let elsewhere = submit(&app, project, "feature", None).await;
    let newer = submit(&app, project, "main", None).await;
    let older = pipeline(&app, &older["id"]).await;
    assert_eq!(older["status"], "canceled");
    assert_eq!(older["auto_canceled_by"], newer["id"]);
    assert_eq!(
        pipeline(&app, &elsewhere["id"]).await["status"],
        "pending",
        "another ref is left alone"
    );
    // `none` leaves the older pipeline be.
    let newest = submit(
        &app,
        project,
        "main",
        Some(json!({ "auto_cancel": { "on_new_commit": "none" } })),
    )
    .await;
    assert_eq!(pipeline(&app, &newer["id"]).await["status"], "pending");
    assert_eq!(newest["auto_canceled_by"], Value::Null);
}

#[tokio::test]
async fn the_interruptible_rule_cancels_only_interruptible_builds() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let older = submit(&app, project, "main", None).await;
    submit(
        &app,
        project,
        "main",
        Some(json!({ "auto_cancel": { "on_new_commit": "interruptible" } })),
    )
    .await;
    let older = pipeline(&app, &older["id"]).await;
    let statuses: Vec<&Value> = older["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| &b["status"])
        .collect();
    // The interruptible test is canceled; the deploy, which needed it, is skipped by
    // processing, not canceled by the rule.
    assert_eq!(statuses, [&json!("canceled"), &json!("skipped")]);
    assert!(older["auto_canceled_by"].is_i64());
}
