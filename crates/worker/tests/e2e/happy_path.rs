//! A pipeline build → test → deploy runs on a real worker, with byte-exact logs, also across a
//! server restart.

use crate::support::{Stack, build};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

/// Lines of `out N` on stdout and `err N` on stderr, alternating: about 100 KB, so the log
/// travels in several chunks and the merge order of the two streams shows.
const INTERLEAVED: &str =
    r#"i=1; while [ $i -le 6000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done"#;

fn interleaved_output() -> String {
    let mut text = String::new();
    for i in 1..=6000 {
        let _ = writeln!(text, "out {i}");
        let _ = writeln!(text, "err {i}");
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_test_deploy_succeeds_with_byte_exact_logs() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([
            { "name": "build", "stage": "build", "script": [INTERLEAVED, "printf 'no newline at the end'"] },
            { "name": "test", "stage": "test", "script": ["echo \"testing $CI_JOB_NAME of pipeline $CI_PIPELINE_ID\""] },
            { "name": "deploy", "stage": "deploy", "environment": "staging",
              "script": ["echo \"deploying to $CI_ENVIRONMENT_NAME\""] },
        ]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    assert_eq!(pipeline["status"], "success", "{pipeline:#}");

    let expected_build = format!(
        "$ {INTERLEAVED}\n{}$ printf 'no newline at the end'\nno newline at the end",
        interleaved_output()
    );
    let (log, complete) = stack
        .log(build(&pipeline, "build")["id"].as_i64().expect("id"))
        .await;
    assert!(complete);
    assert!(
        log.len() > 64 * 1024,
        "spans several chunks: {} bytes",
        log.len()
    );
    assert!(
        log == expected_build.as_bytes(),
        "the build log differs from the output"
    );
    // The worker's account of the log matches what the server stored.
    let account = &build(&pipeline, "build")["log"];
    assert_eq!(account["complete"], true, "{account}");
    assert_eq!(account["bytes"], log.len());

    let (log, _) = stack
        .log(build(&pipeline, "test")["id"].as_i64().expect("id"))
        .await;
    let expected = format!(
        "$ echo \"testing $CI_JOB_NAME of pipeline $CI_PIPELINE_ID\"\ntesting test of pipeline {id}\n"
    );
    assert_eq!(String::from_utf8_lossy(&log), expected);

    let deploy = build(&pipeline, "deploy");
    assert_eq!(deploy["deployment"]["status"], "success");
    let (log, _) = stack.log(deploy["id"].as_i64().expect("id")).await;
    assert!(String::from_utf8_lossy(&log).ends_with("deploying to staging\n"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_build_loses_no_log_bytes() {
    let mut stack = Stack::new(Duration::from_secs(10)).await;
    let worker = stack.worker(&[]);
    let script = r#"i=1; while [ $i -le 40 ]; do echo "line $i"; sleep 0.1; i=$((i+1)); done"#;
    let id = stack
        .submit(json!([{ "name": "slow", "script": [script] }]))
        .await;
    let (build_id, _) = stack.running_log(id, "slow", "line 3\n").await;

    stack.restart_server(Duration::from_millis(1500)).await;

    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    assert_eq!(
        pipeline["status"],
        "success",
        "{pipeline:#}\n{}",
        worker.output()
    );
    let mut expected = format!("$ {script}\n");
    for i in 1..=40 {
        let _ = writeln!(expected, "line {i}");
    }
    let (log, complete) = stack.log(build_id).await;
    assert!(complete);
    assert_eq!(
        String::from_utf8_lossy(&log),
        expected,
        "worker log:\n{}",
        worker.output()
    );
    stack.stop().await;
}

/// Four slots, four builds: the worker asks for them in one request and runs them side by
/// side. Each build waits until all four have started, so the pipeline only succeeds if they
/// really ran at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_slots_take_several_builds_at_once() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&["--concurrency", "4"]);
    let barrier = std::env::temp_dir().join(format!("lockstep-barrier-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&barrier).expect("a barrier dir");
    let script = format!(
        "touch {dir}/$CI_JOB_ID; while [ $(ls {dir} | wc -l) -lt 4 ]; do sleep 0.05; done",
        dir = barrier.display()
    );
    let jobs: Vec<_> = (0..4)
        .map(|i| json!({ "name": format!("job-{i}"), "script": [script], "timeout_seconds": 30 }))
        .collect();
    let id = stack.submit(serde_json::Value::Array(jobs)).await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
    let _ = std::fs::remove_dir_all(&barrier);
    assert_eq!(pipeline["status"], "success", "{pipeline:#}");
    stack.stop().await;
}
