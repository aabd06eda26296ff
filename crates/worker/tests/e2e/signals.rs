//! Stopping the worker: SIGTERM lets a running build finish within the grace period, cancels
//! it after, and a second signal cancels at once.

use crate::support::{Stack, build, numbers_after, wait_gone};
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_short_build_finish() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let mut worker = stack.worker(&["--shutdown-grace", "20"]);
    let id = stack
        .submit(json!([{ "name": "short", "script": ["echo started", "sleep 1", "echo done"] }]))
        .await;
    stack.running_log(id, "short", "started").await;
    worker.signal(Signal::SIGTERM);
    assert!(
        worker.exited(Duration::from_secs(15)).await,
        "{}",
        worker.output()
    );
    let pipeline = stack.pipeline(id).await;
    assert_eq!(
        build(&pipeline, "short")["status"],
        "success",
        "{}",
        worker.output()
    );
    // Stopped means stopped asking: a new build stays pending.
    let next = stack
        .submit(json!([{ "name": "later", "script": ["true"] }]))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        build(&stack.pipeline(next).await, "later")["status"],
        "pending"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_outliving_the_grace_period_is_canceled_and_reported() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let mut worker = stack.worker(&["--shutdown-grace", "1"]);
    let id = stack
        .submit(json!([{ "name": "long", "script": ["echo pid $$", "sleep 300"] }]))
        .await;
    let (_, log) = stack.running_log(id, "long", "pid ").await;
    worker.signal(Signal::SIGTERM);
    assert!(
        worker.exited(Duration::from_secs(15)).await,
        "{}",
        worker.output()
    );
    let pipeline = stack.pipeline(id).await;
    assert_eq!(
        build(&pipeline, "long")["status"],
        "canceled",
        "{}",
        worker.output()
    );
    wait_gone(&numbers_after(&log, "pid"), Duration::from_secs(5)).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cancels_at_once() {
    let stack = Stack::new(Duration::from_secs(10)).await;
    let mut worker = stack.worker(&["--shutdown-grace", "300"]);
    let id = stack
        .submit(json!([{ "name": "long", "script": ["echo pid $$", "sleep 300"] }]))
        .await;
    stack.running_log(id, "long", "pid ").await;
    worker.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.signal(Signal::SIGINT);
    assert!(
        worker.exited(Duration::from_secs(15)).await,
        "{}",
        worker.output()
    );
    assert_eq!(
        build(&stack.pipeline(id).await, "long")["status"],
        "canceled"
    );
    stack.stop().await;
}
