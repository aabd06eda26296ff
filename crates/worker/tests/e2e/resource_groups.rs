//! A resource group over real workers: deploys of six pipelines share one slot while four
//! worker slots are free, and their scripts never run at the same time.

use crate::support::{Stack, build};
use serde_json::json;
use std::time::Duration;

/// The script's own clock, in nanoseconds, at its start and at its end.
const DEPLOY: [&str; 3] = [
    "echo \"start $(date +%s%N)\"",
    "sleep 0.3",
    "echo \"end $(date +%s%N)\"",
];

fn stamp(log: &str, key: &str) -> u128 {
    log.lines()
        .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` stamp in the log:\n{log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_of_one_group_never_overlap_even_with_free_workers() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let _worker = stack.worker(&["--concurrency", "4"]);
    let mut pipelines = Vec::new();
    for _ in 0..6 {
        let id = stack
            .submit(json!([
                { "name": "deploy", "script": DEPLOY, "environment": "production",
                  "resource_group": "production" },
            ]))
            .await;
        pipelines.push(id);
    }
    let mut spans = Vec::new();
    for &id in &pipelines {
        let pipeline = stack.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(pipeline["status"], "success", "{pipeline:#}");
        let deploy = build(&pipeline, "deploy");
        let (log, _) = stack.log(deploy["id"].as_i64().expect("id")).await;
        let log = String::from_utf8_lossy(&log).into_owned();
        spans.push((stamp(&log, "start "), stamp(&log, "end "), id));
    }
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let ((_, end, first), (start, _, second)) = (pair[0], pair[1]);
        assert!(
            end <= start,
            "the deploys of pipelines {first} and {second} overlapped: {spans:?}"
        );
    }
    let started: Vec<i64> = spans.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(started, pipelines, "oldest pipeline first");
    let group = stack
        .admin_get(&format!(
            "/projects/{}/resource_groups/production",
            stack.project
        ))
        .await;
    assert_eq!(group["holders"], json!([]));
    assert_eq!(group["waiting"], json!([]));
    stack.stop().await;
}
