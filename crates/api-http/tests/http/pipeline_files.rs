//! Pipelines submitted as pipeline files (YAML, as they are), and `lint`, which checks JSON or
//! a file and changes nothing.

use crate::support::{TestApp, build_named};
use axum::http::StatusCode;
use serde_json::{Value, json};

const FILE: &str = r"
stages: [build, test, deploy]
variables:
  RUST_LOG: info
  OUT: target/$RUST_LOG/${CI_COMMIT_REF_NAME}
  LITERAL: $$HOME
default:
  retry: 1
  before_script: [echo setup]
.rust: &rust
  tags: [linux]
  timeout: 30 minutes
compile:
  <<: *rust
  stage: build
  script: cargo build
test:
  extends: .rust
  stage: test
  parallel:
    matrix:
      - TARGET: [x86_64, aarch64]
  script:
    - cargo test --target $TARGET
review:
  stage: deploy
  environment: { name: review, action: prepare }
  script: ./prepare
deploy:
  stage: deploy
  environment: { name: staging, action: start }
  resource_group: staging
  when: manual
  script: ./deploy
workflow:
  auto_cancel:
    on_new_commit: none
";

fn names(pipeline: &Value) -> Vec<&str> {
    pipeline["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| b["name"].as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn a_pipeline_file_creates_its_expanded_jobs() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let pipeline = app
        .post_file(
            &format!("/api/v1/projects/{project}/pipelines?ref=main&sha=abc123"),
            FILE,
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(pipeline["ref"], "main");
    assert_eq!(pipeline["sha"], "abc123");
    assert_eq!(
        names(&pipeline),
        [
            "compile",
            "test: [x86_64]",
            "test: [aarch64]",
            "review",
            "deploy"
        ]
    );
    let compile = build_named(&pipeline, "compile");
    assert_eq!(compile["stage"], "build");
    assert_eq!(compile["tags"], json!(["linux"]));
    assert_eq!(compile["retry"]["max"], 1, "{compile:#}");
    let deploy = build_named(&pipeline, "deploy");
    assert_eq!(deploy["when"], "manual");
    assert_eq!(deploy["resource_group"], "staging");
    assert_eq!(deploy["environment"]["action"], "start");
    // A build read alone carries its job's details too.
    let alone = app
        .get(&format!(
            "/api/v1/builds/{}",
            build_named(&pipeline, "review")["id"]
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(alone["environment"]["action"], "prepare", "{alone:#}");

    // The runner gets the file's variables beside the CI_* ones, and the default before_script.
    let (_, token) = app.runner("r", &["linux"]).await;
    let job = app.acquire(&token).await.expect("compile is pending");
    assert_eq!(job["name"], "compile");
    assert_eq!(job["variables"]["RUST_LOG"], "info");
    // A variable naming others is expanded, the server's CI_* included; `$$` is a `$`.
    assert_eq!(job["variables"]["OUT"], "target/info/main");
    assert_eq!(job["variables"]["LITERAL"], "$HOME");
    assert_eq!(job["variables"]["CI_COMMIT_SHA"], "abc123");
    assert_eq!(job["before_script"], json!(["echo setup"]));
    assert_eq!(job["script"], json!(["cargo build"]));
    assert_eq!(job["timeout_seconds"], 1800);
}

#[tokio::test]
async fn lint_answers_the_expanded_jobs_and_creates_nothing() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let before = app.fingerprint();
    let lint = app
        .post_file(&format!("/api/v1/projects/{project}/lint"), FILE)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(lint["valid"], true);
    assert_eq!(lint["auto_cancel"], "none");
    let test = &lint["jobs"][1];
    assert_eq!(test["name"], "test: [x86_64]");
    assert_eq!(test["variables"]["TARGET"], "x86_64");
    assert_eq!(test["variables"]["RUST_LOG"], "info");
    assert_eq!(test["timeout_seconds"], 1800);
    assert_eq!(app.fingerprint(), before, "lint changed rows");

    // The same check of a JSON body.
    let json_lint = app
        .post(
            &format!("/api/v1/projects/{project}/lint"),
            &json!({ "ref": "main", "jobs": [{ "name": "a", "script": ["true"] }] }),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(json_lint["jobs"][0]["name"], "a");
    assert_eq!(app.fingerprint(), before, "lint changed rows");
}

#[tokio::test]
async fn lint_lists_every_problem_with_its_line_and_column() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let file = "build:\n  scirpt: make\ntest:\n  script: make test\n  rules: []\n";
    let refused = app
        .post_file(&format!("/api/v1/projects/{project}/lint"), file)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    let errors = refused["error"]["errors"].as_array().expect("errors");
    let typo = errors
        .iter()
        .find(|e| e["field"] == "build.scirpt")
        .unwrap_or_else(|| panic!("no error for the typo: {refused:#}"));
    assert_eq!(
        (typo["line"].as_u64(), typo["column"].as_u64()),
        (Some(2), Some(3))
    );
    assert!(
        typo["message"]
            .as_str()
            .is_some_and(|m| m.contains("did you mean `script`")),
        "{typo}"
    );
    let rules = errors
        .iter()
        .find(|e| e["field"] == "test.rules")
        .unwrap_or_else(|| panic!("no error for rules: {refused:#}"));
    assert_eq!(rules["line"], 5);
    assert!(
        rules["message"]
            .as_str()
            .is_some_and(|m| m.contains("not supported yet")),
        "{rules}"
    );
}

#[tokio::test]
async fn the_pipeline_file_schema_is_served() {
    let app = TestApp::new();
    let schema = app
        .call(
            axum::http::Method::GET,
            "/api/v1/pipeline-file.schema.json",
            crate::support::As::Anonymous,
            axum::body::Body::empty(),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        schema.header("content-type"),
        Some("application/schema+json")
    );
    let checked_in: Value =
        serde_json::from_str(include_str!("../../../../docs/pipeline-file.schema.json"))
            .expect("the checked-in schema is JSON");
    assert_eq!(schema.json(), checked_in);
}
