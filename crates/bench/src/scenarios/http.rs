//! Scenarios over the runner protocol against a `lockstep-server` process: claim and complete
//! (2), enqueue→acquired latency with idle runners long-polling (4), and the server's memory.

use super::{Options, Outcome, progress};
use crate::figures::{Figure, percentile};
use crate::fixtures::{ADMIN_TOKEN, Db, Server, create, independent_jobs};
use lockstep_storage_pg::TxStats;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Simulated runners, like graphile-worker's concurrency of 10.
const RUNNERS: usize = 10;

pub(super) fn scenarios(options: &Options) -> Outcome {
    let binary = options.server_bin.as_deref().ok_or_else(|| {
        anyhow::anyhow!("no --server-bin: the HTTP scenarios need lockstep-server")
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let builds = options.size(20_000, 300);
    let mut rates = Vec::new();
    let mut peaks = Vec::new();
    for round in 0..options.rounds {
        let (rate, peak) = claim_complete_round(&runtime, binary, builds)?;
        progress(&format!(
            "round {round}: {rate:.0} builds/s over HTTP, server peak RSS {peak:.1} MiB"
        ));
        rates.push(rate);
        peaks.push(peak);
    }
    let samples = options.size(1_000, 100);
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for round in 0..options.rounds {
        let mut latencies = latency_round(&runtime, binary, samples)?;
        latencies.sort_by(f64::total_cmp);
        let (a, b) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        progress(&format!(
            "round {round}: enqueue→acquired p50 {a:.2} ms, p99 {b:.2} ms"
        ));
        p50.push(a);
        p99.push(b);
    }
    Ok((
        vec![
            Figure::of("claim_complete_http", "builds/s", &rates),
            Figure::of("latency_p50_ms", "ms", &p50),
            Figure::of("latency_p99_ms", "ms", &p99),
            Figure::of("server_rss_mib", "MiB", &peaks),
        ],
        vec![
            (
                "claim_complete_http".to_owned(),
                format!(
                    "{builds} no-op builds in pipelines of 20, {RUNNERS} simulated runners on loopback, each asking for up to {HTTP_BATCH} builds per request (batch/request, no wait) and reporting them in one batch/finish"
                ),
            ),
            (
                "latency".to_owned(),
                format!(
                    "{samples} single-build pipelines at 100/s, {RUNNERS} runners long-polling; from the creating commit to the runner holding the job"
                ),
            ),
            (
                "server_rss_mib".to_owned(),
                "peak RSS (VmHWM) of lockstep-server during the HTTP claim scenario".to_owned(),
            ),
        ],
    ))
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = if status == 204 {
            Value::Null
        } else {
            response.json().await?
        };
        anyhow::ensure!(status < 300, "POST {path} answered {status}: {body}");
        Ok((status, body))
    }

    async fn runners(&self) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::new();
        for i in 0..RUNNERS {
            let (_, runner) = self
                .post(
                    "/runners",
                    ADMIN_TOKEN,
                    &json!({ "name": format!("sim-{i}") }),
                )
                .await?;
            tokens.push(runner["token"].as_str().unwrap_or_default().to_owned());
        }
        Ok(tokens)
    }
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn claim_complete_round(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    builds: usize,
) -> anyhow::Result<(f64, f64)> {
    let db = Db::new()?;
    let mut conn = db.connect();
    let stats = TxStats::default();
    let definition = independent_jobs(20, 10)?;
    for _ in 0..builds.div_ceil(20) {
        create(&mut conn, &stats, db.project, &definition)?;
    }
    let server = Server::start(binary, db.db.url())?;
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    });
    let (done, elapsed) = runtime.block_on(async {
        let tokens = api.runners().await?;
        let started = Instant::now();
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let api = api.clone();
                tokio::spawn(async move { run_until_empty(&api, &token).await })
            })
            .collect();
        let mut done = 0;
        for task in tasks {
            done += task.await??;
        }
        anyhow::Ok((done, started.elapsed().as_secs_f64()))
    })?;
    Ok((done as f64 / elapsed, server.peak_rss_mib()?))
}

/// Builds one runner asks for and reports per call, as a runner with that many free slots
/// would (graphile-worker's tuned run holds up to 500 jobs; ten runners of fifty hold as many).
const HTTP_BATCH: u32 = 50;

/// Asks for up to HTTP_BATCH builds and reports them in one call, until none is pending.
async fn run_until_empty(api: &Api, token: &str) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let (status, answer) = api
            .post(
                "/jobs/batch/request",
                token,
                &json!({ "max_jobs": HTTP_BATCH, "wait_seconds": 0 }),
            )
            .await?;
        if status == 204 {
            return Ok(done);
        }
        anyhow::ensure!(status == 201, "batch request answered {status}: {answer}");
        let reports: Vec<_> = answer["jobs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|job| json!({ "id": job["id"], "result": "success" }))
            .collect();
        let (status, answer) = api
            .post("/jobs/batch/finish", token, &json!({ "reports": reports }))
            .await?;
        anyhow::ensure!(status == 200, "batch finish answered {status}: {answer}");
        let accepted = answer["results"].as_array().map_or(0, |results| {
            results.iter().filter(|r| r["status"] == "success").count()
        });
        anyhow::ensure!(accepted == reports.len(), "reports refused: {answer}");
        done += accepted;
    }
}

/// Pipelines of one build created at 100/s while runners wait; latencies in ms.
fn latency_round(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let db = Db::new()?;
    let server = Server::start(binary, db.db.url())?;
    let api = Arc::new(Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    });
    let created: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let acquired: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let tokens = runtime.block_on(api.runners())?;
    let waiting: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (api, acquired) = (api.clone(), acquired.clone());
            runtime.spawn(async move { wait_and_take(&api, &token, &acquired).await })
        })
        .collect();
    // Let every runner's first long-poll reach the server before the first build appears.
    std::thread::sleep(Duration::from_millis(500));
    let definition = independent_jobs(1, 0)?;
    let stats = TxStats::default();
    let mut conn = db.connect();
    let start = Instant::now();
    for i in 0..samples {
        let due = start + Duration::from_millis(10 * u64::try_from(i)?);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let pipeline = create(&mut conn, &stats, db.project, &definition)?;
        created
            .lock()
            .expect("lock")
            .insert(pipeline.0, Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acquired.lock().expect("lock").len() < samples && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for task in waiting {
        task.abort();
    }
    let created = created.lock().expect("lock");
    let latencies: Vec<f64> = acquired
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|(pipeline, at)| {
            let made = created.get(pipeline)?;
            Some(at.saturating_duration_since(*made).as_secs_f64() * 1_000.0)
        })
        .collect();
    anyhow::ensure!(
        latencies.len() == samples,
        "{} of {samples} builds were acquired",
        latencies.len()
    );
    Ok(latencies)
}

async fn wait_and_take(
    api: &Api,
    token: &str,
    acquired: &Mutex<Vec<(i64, Instant)>>,
) -> anyhow::Result<()> {
    loop {
        let (status, job) = api
            .post("/jobs/request", token, &json!({ "wait_seconds": 30 }))
            .await?;
        if status == 204 {
            continue;
        }
        let at = Instant::now();
        acquired
            .lock()
            .expect("lock")
            .push((job["pipeline_id"].as_i64().unwrap_or_default(), at));
        let id = job["id"].as_i64().unwrap_or_default();
        api.post(
            &format!("/jobs/{id}/finish"),
            token,
            &json!({ "result": "success" }),
        )
        .await?;
    }
}
