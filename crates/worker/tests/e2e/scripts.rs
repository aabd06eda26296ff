//! A job's `before_script`, `after_script` and variables on a real worker: `before_script` in
//! the script's shell, `after_script` in a new one whatever the outcome (a failure, a cancel, a
//! timeout), the job's variables beside the `CI_*` ones.

use crate::support::{Stack, build};
use serde_json::{Value, json};
use std::time::Duration;

async fn log_of(stack: &Stack, pipeline: &Value, name: &str) -> String {
    let (log, complete) = stack
        .log(build(pipeline, name)["id"].as_i64().expect("a build id"))
        .await;
    assert!(complete, "the log of {name} is complete");
    String::from_utf8_lossy(&log).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_script_shares_the_shell_and_after_script_runs_after_success_and_failure() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([
            { "name": "passes",
              "variables": { "GREETING": "hello", "CI_JOB_NAME": "not-this" },
              "before_script": ["SHARED=from-before"],
              "script": ["echo \"$GREETING $SHARED $CI_JOB_NAME\""],
              "after_script": ["echo \"after: $CI_JOB_STATUS shared=${SHARED:-unset}\""] },
            { "name": "fails", "needs": [],
              "script": ["exit 3"],
              "after_script": ["echo \"after: $CI_JOB_STATUS\"", "exit 9"] },
        ]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;

    let passes = build(&pipeline, "passes");
    assert_eq!(passes["status"], "success", "{pipeline:#}");
    let log = log_of(&stack, &pipeline, "passes").await;
    // The job's variable reaches the script; the server's CI_JOB_NAME wins over the job's.
    assert!(log.contains("hello from-before passes\n"), "{log}");
    // after_script runs in a shell of its own: what before_script set is gone.
    assert!(log.contains("after: success shared=unset\n"), "{log}");

    let fails = build(&pipeline, "fails");
    assert_eq!(fails["status"], "failed", "{pipeline:#}");
    // The script's exit code stands; the after_script's own failure changes nothing.
    assert_eq!(fails["exit_code"], 3);
    let log = log_of(&stack, &pipeline, "fails").await;
    assert!(log.contains("after: failed\n"), "{log}");
    assert!(
        log.contains("after_script failed with exit code 9"),
        "{log}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_script_runs_after_a_cancel_and_a_timeout() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([
            { "name": "canceled", "script": ["echo started", "sleep 60"],
              "after_script": ["echo \"cleanup after $CI_JOB_STATUS\""] },
            { "name": "slow", "timeout_seconds": 1, "script": ["sleep 60"],
              "after_script": ["echo \"cleanup after $CI_JOB_STATUS\""] },
        ]))
        .await;
    let (canceled, _) = stack.running_log(id, "canceled", "started").await;
    stack
        .admin_post(&format!("/builds/{canceled}/cancel"), &json!({}))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    assert_eq!(build(&pipeline, "canceled")["status"], "canceled");
    let log = log_of(&stack, &pipeline, "canceled").await;
    assert!(log.contains("cleanup after canceled\n"), "{log}");
    let slow = build(&pipeline, "slow");
    assert_eq!(slow["failure_reason"], "job_timeout", "{pipeline:#}");
    let log = log_of(&stack, &pipeline, "slow").await;
    assert!(log.contains("cleanup after failed\n"), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_job_that_starts_its_environment_deploys() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([
            { "name": "prepare", "stage": "build",
              "environment": { "name": "review", "action": "prepare" },
              "script": ["echo \"$CI_ENVIRONMENT_ACTION $CI_ENVIRONMENT_NAME\""] },
            { "name": "deploy", "stage": "deploy", "environment": "review",
              "script": ["echo \"$CI_ENVIRONMENT_ACTION $CI_ENVIRONMENT_NAME\""] },
            { "name": "stop", "stage": "cleanup",
              "environment": { "name": "review", "action": "stop" },
              "script": ["echo \"$CI_ENVIRONMENT_ACTION $CI_ENVIRONMENT_NAME\""] },
        ]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    assert_eq!(pipeline["status"], "success", "{pipeline:#}");
    for (name, action, deploys) in [
        ("prepare", "prepare", false),
        ("deploy", "start", true),
        ("stop", "stop", false),
    ] {
        let job = build(&pipeline, name);
        assert_eq!(job["environment"]["name"], "review", "{job:#}");
        assert_eq!(job["environment"]["action"], action, "{job:#}");
        assert_eq!(!job["deployment"].is_null(), deploys, "{job:#}");
        let log = log_of(&stack, &pipeline, name).await;
        assert!(log.ends_with(&format!("{action} review\n")), "{log}");
    }
    let environments = stack
        .admin_get(&format!("/projects/{}/environments", stack.project))
        .await;
    assert_eq!(
        environments.as_array().map(Vec::len),
        Some(1),
        "{environments:#}"
    );
    stack.stop().await;
}
