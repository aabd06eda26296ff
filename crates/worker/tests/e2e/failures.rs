//! Builds that fail, time out, are canceled, or lose their worker.

use crate::support::{Stack, build, numbers_after, wait_gone};
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deploy_fails_its_deployment_and_skips_what_follows() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([
            { "name": "build", "stage": "build", "script": ["echo built"] },
            { "name": "deploy", "stage": "deploy", "environment": "staging",
              "script": ["echo starting", "exit 3", "echo never"] },
            { "name": "smoke", "stage": "verify", "script": ["echo smoke"] },
        ]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    assert_eq!(pipeline["status"], "failed", "{pipeline:#}");
    let deploy = build(&pipeline, "deploy");
    assert_eq!(deploy["status"], "failed");
    assert_eq!(deploy["exit_code"], 3);
    assert_eq!(deploy["failure_reason"], "script_failure");
    assert_eq!(deploy["deployment"]["status"], "failed");
    assert_eq!(build(&pipeline, "smoke")["status"], "skipped");
    let (log, _) = stack.log(deploy["id"].as_i64().expect("id")).await;
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("starting\n$ exit 3\n") && !log.contains("never"),
        "{log}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_timeout_is_stopped_and_failed() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([{ "name": "hang", "timeout_seconds": 1, "script": ["echo pid $$", "sleep 300"] }]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(30)).await;
    let hang = build(&pipeline, "hang");
    assert_eq!(hang["status"], "failed");
    assert_eq!(hang["failure_reason"], "job_timeout");
    let (log, _) = stack.log(hang["id"].as_i64().expect("id")).await;
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("timeout"), "{log}");
    wait_gone(&numbers_after(&log, "pid"), Duration::from_secs(5)).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_whole_process_group() {
    let stack = Stack::new(Duration::from_secs(3)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([{
            "name": "deploy", "environment": "prod",
            "script": ["echo pid $$", "sleep 300 & echo child $!", "wait"],
        }]))
        .await;
    let (_, log) = stack.running_log(id, "deploy", "child ").await;
    let mut pids = numbers_after(&log, "pid");
    pids.extend(numbers_after(&log, "child"));
    assert_eq!(pids.len(), 2, "{log}");
    assert!(pids.iter().all(|pid| crate::support::running(*pid)));

    stack
        .admin_post(&format!("/pipelines/{id}/cancel"), &json!({}))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(15)).await;
    let deploy = build(&pipeline, "deploy");
    assert_eq!(deploy["status"], "canceled", "{pipeline:#}");
    assert_eq!(deploy["deployment"]["status"], "canceled");
    assert_eq!(pipeline["status"], "canceled");
    wait_gone(&pids, Duration::from_secs(5)).await;
    stack.stop().await;
}

/// With a 60 s lease the next heartbeat is 20 s away: only the watch can stop the script in
/// time for this test's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_the_script_long_before_the_next_heartbeat() {
    let stack = Stack::new(Duration::from_secs(60)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([{ "name": "long", "script": ["echo started", "sleep 300"] }]))
        .await;
    let (build_id, _) = stack.running_log(id, "long", "started").await;
    stack
        .admin_post(&format!("/builds/{build_id}/cancel"), &json!({}))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(8)).await;
    assert_eq!(
        build(&pipeline, "long")["status"],
        "canceled",
        "{pipeline:#}"
    );
    let (log, _) = stack.log(build_id).await;
    assert!(
        String::from_utf8_lossy(&log).contains("the build was canceled"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_build_after_the_lease_and_leaves_nothing_running() {
    let stack = Stack::new(Duration::from_secs(4)).await;
    let worker = stack.worker(&[]);
    let id = stack
        .submit(json!([{
            "name": "deploy", "environment": "prod", "retry": 1,
            "script": ["echo pid $$", "sleep 300 & echo child $!", "wait"],
        }]))
        .await;
    let (first, log) = stack.running_log(id, "deploy", "child ").await;
    let mut pids = numbers_after(&log, "pid");
    pids.extend(numbers_after(&log, "child"));

    worker.signal(Signal::SIGKILL);
    // The lease (4 s) passes, the reaper fails the attempt as runner_lost and, as `retry`
    // allows, makes a second attempt.
    let pipeline = stack
        .wait_for(id, Duration::from_secs(20), |p| {
            build(p, "deploy")["attempt"] == 2
        })
        .await;
    let attempts: Vec<_> = pipeline["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .collect();
    let lost = attempts
        .iter()
        .find(|b| b["id"] == first)
        .expect("the first attempt");
    assert_eq!(lost["status"], "failed");
    assert_eq!(lost["failure_reason"], "runner_lost");
    assert_eq!(lost["deployment"]["status"], "failed");
    assert_eq!(build(&pipeline, "deploy")["status"], "pending");
    // The script's processes noticed their worker was gone and ended themselves.
    wait_gone(&pids, Duration::from_secs(5)).await;
    stack.stop().await;
}
