//! Concurrency over HTTP: many runners long-poll while pipelines are created and canceled.
//! Every build is acquired at most once per attempt, every pipeline ends terminal, no request
//! fails with a 5xx, and the database keeps its invariants with no deadlock.

use crate::support::{ADMIN, TestApp};
use lockstep_storage_pg::{TransitionKind, check_invariants};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const RUNNERS: usize = 8;
const PIPELINES: usize = 40;

#[derive(Default)]
struct Seen {
    acquired: Mutex<Vec<i64>>,
    server_errors: AtomicU64,
    done: AtomicBool,
}

fn jobs(index: usize) -> Value {
    json!([
        { "name": "build", "stage": "build", "script": ["make"] },
        { "name": "unit", "stage": "test", "script": ["make test"], "retry": 1 },
        { "name": "lint", "stage": "test", "script": ["make lint"], "allow_failure": true },
        { "name": "deploy", "stage": "deploy", "script": ["deploy"], "environment": format!("env-{}", index % 3) },
        { "name": "notify", "stage": "deploy", "script": ["notify"], "when": "always", "needs": [] },
    ])
}

async fn send(seen: &Seen, request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    if status >= 500 {
        seen.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn runner(base: String, token: String, seen: Arc<Seen>, rng_seed: u64) {
    let client = reqwest::Client::new();
    let mut rng = fastrand::Rng::with_seed(rng_seed);
    while !seen.done.load(Ordering::Relaxed) {
        let request = client
            .post(format!("{base}/api/v1/jobs/request"))
            .bearer_auth(&token)
            .json(&json!({ "wait_seconds": 1 }));
        let (status, job) = send(&seen, request).await;
        if status != 201 {
            continue;
        }
        let id = job["id"].as_i64().expect("a job id");
        seen.acquired.lock().await.push(id);
        let heartbeat = client
            .post(format!("{base}/api/v1/jobs/{id}/heartbeat"))
            .bearer_auth(&token);
        let (_, beat) = send(&seen, heartbeat).await;
        let result = if beat["status"] == "canceling" {
            "canceled"
        } else if rng.u8(..10) < 2 {
            "failed"
        } else {
            "success"
        };
        let finish = client
            .post(format!("{base}/api/v1/jobs/{id}/finish"))
            .bearer_auth(&token)
            .json(&json!({ "result": result, "exit_code": i32::from(result == "failed") }));
        send(&seen, finish).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_and_cancels_over_http_never_double_acquire_or_deadlock() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let mut tokens = Vec::new();
    for index in 0..RUNNERS {
        tokens.push(app.runner(&format!("r{index}"), &[]).await.1);
    }
    let served = app.serve().await;
    let base = served.url("");
    let seen = Arc::new(Seen::default());
    let runners: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(index, token)| tokio::spawn(runner(base.clone(), token, seen.clone(), index as u64)))
        .collect();

    let client = reqwest::Client::new();
    let mut pipelines = Vec::new();
    for index in 0..PIPELINES {
        let create = client
            .post(format!("{base}/api/v1/projects/{project}/pipelines"))
            .bearer_auth(ADMIN)
            .json(&json!({ "ref": "main", "jobs": jobs(index) }));
        let (status, pipeline) = send(&seen, create).await;
        assert_eq!(status, 201, "{pipeline}");
        let id = pipeline["id"].as_i64().expect("id");
        pipelines.push(id);
        if index % 3 == 1 {
            let victim = pipelines[index / 2];
            let cancel = client
                .post(format!("{base}/api/v1/pipelines/{victim}/cancel"))
                .bearer_auth(ADMIN);
            let (status, body) = send(&seen, cancel).await;
            assert!(
                status == 200 || status == 409,
                "cancel answered {status}: {body}"
            );
        }
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut unfinished = pipelines.clone();
    while !unfinished.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut still = Vec::new();
        for id in unfinished {
            let get = client
                .get(format!("{base}/api/v1/pipelines/{id}"))
                .bearer_auth(ADMIN);
            let (_, pipeline) = send(&seen, get).await;
            if pipeline["finished_at"].is_null() {
                still.push(id);
            }
        }
        unfinished = still;
    }
    seen.done.store(true, Ordering::Relaxed);
    for runner in runners {
        runner.await.expect("runner task");
    }
    assert!(
        unfinished.is_empty(),
        "pipelines never finished: {unfinished:?}"
    );

    let acquired = seen.acquired.lock().await.clone();
    let distinct: HashSet<i64> = acquired.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        acquired.len(),
        "a build was handed out twice"
    );
    assert!(
        acquired.len() >= PIPELINES,
        "runners did work: {}",
        acquired.len()
    );
    assert_eq!(seen.server_errors.load(Ordering::Relaxed), 0, "5xx answers");
    let stats = app.state.stats().snapshot();
    assert_eq!(stats.deadlocks, 0);
    assert!(stats.count(TransitionKind::CancelPipeline) > 0);
    let mut conn = app.db.connect();
    let violations = check_invariants(&mut conn).expect("invariants readable");
    assert!(violations.is_empty(), "{violations:?}");
    served.shut_down().await;
}
