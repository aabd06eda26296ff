//! Resource groups over HTTP: set one up, see who holds its slots and who waits, and watch a
//! freed slot go to the next deploy in line through the runner protocol.

use crate::support::{As, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

fn deploy() -> Value {
    json!([{ "name": "deploy", "script": ["./deploy.sh"], "environment": "production",
              "resource_group": "production" }])
}

fn build_id(pipeline: &Value) -> i64 {
    pipeline["builds"][0]["id"].as_i64().expect("a build id")
}

async fn group(app: &TestApp, project: i64) -> Value {
    app.get(&format!(
        "/api/v1/projects/{project}/resource_groups/production"
    ))
    .await
    .expect(StatusCode::OK)
    .json()
}

async fn build_status(app: &TestApp, build: i64) -> Value {
    app.get(&format!("/api/v1/builds/{build}"))
        .await
        .expect(StatusCode::OK)
        .json()["status"]
        .clone()
}

#[tokio::test]
async fn a_group_runs_one_deploy_at_a_time_and_hands_its_slot_on() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let put = app
        .call(
            Method::PUT,
            &format!("/api/v1/projects/{project}/resource_groups/production"),
            As::Admin,
            "",
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        put,
        json!({ "name": "production", "process_mode": "oldest_first", "limit": 1,
                "holders": [], "waiting": [] })
    );
    let first = build_id(&app.pipeline(project, deploy()).await);
    let second_pipeline = app.pipeline(project, deploy()).await;
    let second = build_id(&second_pipeline);
    assert_eq!(
        second_pipeline["builds"][0]["status"],
        "waiting_for_resource"
    );
    assert_eq!(second_pipeline["builds"][0]["resource_group"], "production");
    assert_eq!(
        second_pipeline["status"], "pending",
        "a waiting deploy keeps its pipeline active"
    );
    let view = group(&app, project).await;
    assert_eq!(
        (view["holders"].clone(), view["waiting"].clone()),
        (json!([first]), json!([second]))
    );

    let (_, token) = app.runner("r1", &[]).await;
    let job = app
        .acquire(&token)
        .await
        .expect("the first deploy is pending");
    assert_eq!(job["id"], first);
    assert!(
        app.acquire(&token).await.is_none(),
        "the second deploy waits"
    );
    app.runner_post(
        &format!("/api/v1/jobs/{first}/finish"),
        &token,
        &json!({ "result": "success" }),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(build_status(&app, second).await, "pending");
    assert_eq!(group(&app, project).await["holders"], json!([second]));
    let list = app
        .get(&format!("/api/v1/projects/{project}/resource_groups"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_higher_limit_lets_the_waiting_deploys_go_at_once() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let builds: Vec<i64> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(build_id(&app.pipeline(project, deploy()).await));
        }
        ids
    };
    assert_eq!(
        group(&app, project).await["waiting"],
        json!([builds[1], builds[2]])
    );
    let view = app
        .call(
            Method::PUT,
            &format!("/api/v1/projects/{project}/resource_groups/production"),
            As::Admin,
            json!({ "limit": 3, "process_mode": "newest_first" }).to_string(),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(view["limit"], 3);
    assert_eq!(view["process_mode"], "newest_first");
    assert_eq!(view["holders"], json!(builds));
    assert_eq!(view["waiting"], json!([]));
    for build in builds {
        assert_eq!(build_status(&app, build).await, "pending");
    }
}
