//! Cancel to stop: how long a real `lockstep-worker` takes to SIGTERM a build's script after the
//! cancel call returns, with the server's default lease (the next heartbeat up to 10 s away), so
//! that only the watch (`POST /jobs/watch`) can make it quick.
//!
//! Each sample is one build whose script traps SIGTERM and writes the wall clock (`date +%s%N`,
//! the same clock as `SystemTime`) to a file the moment it arrives; the figure is that time
//! minus the moment the cancel call was sent (so it also counts the call's round trip: the
//! cancel commits, and the NOTIFY fires, before the answer is back). The trap's own `date`
//! adds about a millisecond.

use super::{Options, Outcome, progress};
use crate::figures::{Figure, percentile};
use crate::fixtures::{ADMIN_TOKEN, Db, Server, create};
use anyhow::Context as _;
use lockstep_domain::{JobDefinition, PipelineDefinition};
use lockstep_storage_pg::{TxStats, load_pipeline};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) fn cancel_to_stop(options: &Options) -> Outcome {
    let server_bin = options
        .server_bin
        .as_deref()
        .context("no --server-bin: cancel to stop needs lockstep-server")?;
    let worker_bin = options
        .worker_bin
        .as_deref()
        .context("no --worker-bin: cancel to stop needs lockstep-worker")?;
    let samples = options.size(60, 5);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for round in 0..options.rounds {
        let mut latencies = runtime.block_on(round_of(server_bin, worker_bin, samples))?;
        latencies.sort_by(f64::total_cmp);
        let (a, b) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        progress(&format!(
            "round {round}: cancel→SIGTERM p50 {a:.1} ms, p99 {b:.1} ms over {samples}"
        ));
        p50.push(a);
        p99.push(b);
    }
    Ok((
        vec![
            Figure::of("cancel_to_stop_p50_ms", "ms", &p50),
            Figure::of("cancel_to_stop_p99_ms", "ms", &p99),
        ],
        vec![(
            "cancel_to_stop".to_owned(),
            format!(
                "{samples} builds per round, one lockstep-worker (concurrency 1), default 30 s lease; from `POST /builds/{{id}}/cancel` being sent (its whole round trip included) to SIGTERM reaching the script (its trap's `date +%s%N`)"
            ),
        )],
    ))
}

/// The worker process, killed with the round.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn round_of(
    server_bin: &Path,
    worker_bin: &Path,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let db = Db::new()?;
    let server = Server::start(server_bin, db.db.url())?;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.base);
    let runner: Value = http
        .post(api("/runners"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "bench-worker" }))
        .send()
        .await?
        .json()
        .await?;
    let token = runner["token"].as_str().context("a runner token")?;
    let marks = std::env::temp_dir().join(format!("lockstep-cancel-{}", db.db.name()));
    std::fs::create_dir_all(&marks)?;
    let _worker = Worker(
        Command::new(worker_bin)
            .env("LOCKSTEP_URL", &server.base)
            .env("LOCKSTEP_RUNNER_TOKEN", token)
            .env("LOCKSTEP_WORK_DIR", marks.join("work"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", worker_bin.display()))?,
    );
    let definition = PipelineDefinition {
        jobs: vec![JobDefinition {
            name: "sleeper".to_owned(),
            script: script(&marks),
            ..JobDefinition::default()
        }],
    }
    .validate()?;
    let stats = TxStats::default();
    let mut conn = db.connect();
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let pipeline = create(&mut conn, &stats, db.project, &definition)?;
        let build = load_pipeline(&mut conn, pipeline)?.builds[0].id.0;
        let ready = marks.join(format!("{build}.ready"));
        wait_for_file(&ready, Duration::from_secs(30), |_| true).await?;
        // Taken as the call goes out, not when its answer is back: the NOTIFY fires at the
        // commit, so the script may hear SIGTERM before the answer arrives, and a later
        // reading would give negative samples. The figure includes the call's own round trip.
        let canceled_at = unix_nanos(SystemTime::now())?;
        let answer = http
            .post(api(&format!("/builds/{build}/cancel")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "cancel answered {}",
            answer.status()
        );
        let term = marks.join(format!("{build}.term"));
        wait_for_file(&term, Duration::from_secs(30), |text| text.ends_with('\n')).await?;
        let stopped_at: i128 = std::fs::read_to_string(&term)?.trim().parse()?;
        #[expect(clippy::cast_precision_loss, reason = "nanoseconds of a short wait")]
        latencies.push((stopped_at - canceled_at) as f64 / 1e6);
        wait_finished(&mut conn, pipeline).await?;
    }
    let _ = std::fs::remove_dir_all(&marks);
    Ok(latencies)
}

/// Marks itself ready once its trap is set, then sleeps until SIGTERM, when it writes the clock.
fn script(marks: &Path) -> Vec<String> {
    let mark = |suffix: &str| format!("{}/$CI_JOB_ID.{suffix}", marks.display());
    vec![
        format!("trap 'date +%s%N > {}; exit 0' TERM", mark("term")),
        format!("touch {}", mark("ready")),
        "sleep 1000 & wait".to_owned(),
    ]
}

/// Waits until `path` exists and `complete` says its text is whole (a file written by
/// `date >` may be seen empty for an instant).
async fn wait_for_file(
    path: &PathBuf,
    limit: Duration,
    complete: fn(&str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !std::fs::read_to_string(path).is_ok_and(|text| complete(&text)) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn wait_finished(
    conn: &mut diesel::pg::PgConnection,
    pipeline: lockstep_domain::PipelineId,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !load_pipeline(conn, pipeline)?.summary.status.is_terminal() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the canceled pipeline never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn unix_nanos(time: SystemTime) -> anyhow::Result<i128> {
    Ok(i128::try_from(time.duration_since(UNIX_EPOCH)?.as_nanos())?)
}
