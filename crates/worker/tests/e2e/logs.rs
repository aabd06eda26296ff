//! A log never changes a build's result: output past the server's limit is read and dropped,
//! the log says so, and the script goes on to succeed.

use crate::support::{ADMIN, Stack, build};
use serde_json::json;
use std::time::Duration;

const LIMIT: u64 = 64 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_writing_past_the_log_limit_goes_on_and_succeeds() {
    let stack = Stack::new(Duration::from_secs(30)).await;
    let _worker = stack.worker(&[]);
    let id = stack
        .submit(json!([{
            "name": "chatty",
            "timeout_seconds": 300,
            "script": ["head -c 70000000 /dev/zero | tr '\\0' 'x'", "echo after"],
        }]))
        .await;
    let pipeline = stack.wait_finished(id, Duration::from_secs(240)).await;
    let chatty = build(&pipeline, "chatty");
    // Before, the worker stopped reading at the limit and the script died of SIGPIPE (141).
    assert_eq!(chatty["status"], "success", "{chatty:#}");
    assert_eq!(chatty["log"]["bytes"], LIMIT, "{chatty:#}");
    assert_eq!(chatty["log"]["complete"], true, "{chatty:#}");

    let build_id = chatty["id"].as_i64().expect("an id");
    let tail = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/builds/{build_id}/log?offset={}",
            stack.url(),
            LIMIT - 200
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("the server answers")
        .text()
        .await
        .expect("a body");
    assert!(
        tail.ends_with(
            "\n[lockstep] log truncated at 64 MiB: the rest of the output was read but not kept\n"
        ),
        "{tail:?}"
    );
    stack.stop().await;
}
