//! Storage-level scenarios: claim and complete, bulk creation, and the cancel storm.

use super::{Options, Outcome, progress};
use crate::cost::{Cost, Meter};
use crate::figures::{Figure, percentile};
use crate::fixtures::{Db, acquire, commits, create, independent_jobs, runner, server_deadlocks};
use chrono::Utc;
use diesel::pg::PgConnection;
use lockstep_domain::{BuildResult, FailureReason, PipelineId};
use lockstep_storage_pg::{StorageError, Transitions, TxStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(60);
/// Claiming threads, like graphile-worker's concurrency of 10.
const THREADS: usize = 10;
/// Builds one claim takes and one report finishes. Ten threads of fifty hold up to 500 builds at
/// once, as graphile-worker's tuned run holds up to 500 jobs in its local queue.
const CLAIM_BATCH: u32 = 50;
/// Builds per pipeline in the claim scenarios; every tenth deploys.
const PIPELINE_JOBS: usize = 20;

/// Scenario 1: no-op builds claimed and completed by THREADS threads, each build with its full
/// semantics (lock order, its deployment in the same transaction, pipeline progression).
pub(super) fn claim_complete(options: &Options) -> Outcome {
    let builds = options.size(20_000, 600);
    let mut rates = Vec::new();
    let mut commits_per_build = Vec::new();
    let mut round_trips = Vec::new();
    let mut cpu = Vec::new();
    for round in 0..options.rounds {
        let measured = claim_complete_round(builds)?;
        progress(&format!(
            "round {round}: {:.0} builds/s, {:.2} commits/build, {:.2} round trips/build, {:.2} CPU s per 10,000 builds (client {:.2}, server {:.2})",
            measured.rate,
            measured.commits_per_build,
            measured.round_trips_per_build,
            measured.client_cpu_per_10k + measured.server_cpu_per_10k,
            measured.client_cpu_per_10k,
            measured.server_cpu_per_10k,
        ));
        rates.push(measured.rate);
        commits_per_build.push(measured.commits_per_build);
        round_trips.push(measured.round_trips_per_build);
        cpu.push(measured.client_cpu_per_10k + measured.server_cpu_per_10k);
    }
    Ok((
        vec![
            Figure::of("claim_complete_storage", "builds/s", &rates),
            Figure::of("commits_per_build", "commits", &commits_per_build),
            Figure::of("round_trips_per_build", "statements", &round_trips),
            Figure::of("cpu_seconds_per_10k_builds", "s", &cpu),
        ],
        vec![
            (
                "claim_complete_storage".to_owned(),
                format!(
                    "{builds} no-op builds in pipelines of {PIPELINE_JOBS} (every 10th deploys), {THREADS} threads, each claiming up to {CLAIM_BATCH} builds per transaction and reporting them in one (finish_all)"
                ),
            ),
            (
                "round_trips_per_build".to_owned(),
                "statements sent per build in claim_complete_storage, BEGIN and COMMIT included"
                    .to_owned(),
            ),
            (
                "cpu_seconds_per_10k_builds".to_owned(),
                "CPU of the claiming threads plus their PostgreSQL backends in claim_complete_storage, per 10,000 builds".to_owned(),
            ),
        ],
    ))
}

/// One round of the storage claim+complete scenario.
struct Measured {
    rate: f64,
    commits_per_build: f64,
    round_trips_per_build: f64,
    client_cpu_per_10k: f64,
    server_cpu_per_10k: f64,
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn claim_complete_round(builds: usize) -> anyhow::Result<Measured> {
    let db = Db::new()?;
    let stats = TxStats::default();
    let mut conn = db.connect();
    let definition = independent_jobs(PIPELINE_JOBS, 10)?;
    for _ in 0..builds.div_ceil(PIPELINE_JOBS) {
        create(&mut conn, &stats, db.project, &definition)?;
    }
    let runners: Vec<_> = (0..THREADS)
        .map(|i| runner(&mut conn, &format!("runner-{i}")))
        .collect::<anyhow::Result<_>>()?;
    drop(conn);
    let mut conn = db.connect();
    let cost = Arc::new(Cost::default());
    let before = commits(&mut conn)?;
    let started = Instant::now();
    let done = std::thread::scope(|scope| {
        let handles: Vec<_> = runners
            .iter()
            .map(|runner| {
                let (db, stats, cost) = (&db, &stats, &cost);
                scope.spawn(move || drain(db, stats, cost, *runner))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a claiming thread"))
            .sum::<anyhow::Result<usize>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let snapshot = stats.snapshot();
    progress(&format!(
        "transitions: {:?}; replans {}, deadlocks {}",
        snapshot
            .committed
            .iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        snapshot.replans,
        snapshot.deadlocks
    ));
    let after = commits(&mut conn)?;
    let per_10k = |cpu: Duration| cpu.as_secs_f64() / done as f64 * 10_000.0;
    Ok(Measured {
        rate: done as f64 / elapsed,
        commits_per_build: (after - before) as f64 / done as f64,
        round_trips_per_build: cost.statements() as f64 / done as f64,
        client_cpu_per_10k: per_10k(cost.client_cpu()),
        server_cpu_per_10k: per_10k(cost.server_cpu()),
    })
}

/// Claims (up to CLAIM_BATCH at a time) and reports them together until none is pending;
/// returns how many.
fn drain(
    db: &Db,
    stats: &TxStats,
    cost: &Arc<Cost>,
    runner: lockstep_domain::RunnerId,
) -> anyhow::Result<usize> {
    let mut conn = db.connect();
    let meter = Meter::start(cost, &mut conn);
    let done = drain_on(&mut conn, stats, runner);
    meter.stop();
    done
}

fn drain_on(
    conn: &mut PgConnection,
    stats: &TxStats,
    runner: lockstep_domain::RunnerId,
) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let claimed = acquire(conn, stats, runner, CLAIM_BATCH, LEASE)?;
        if claimed.is_empty() {
            return Ok(done);
        }
        let reports: Vec<_> = claimed
            .iter()
            .map(|build| (build.id, BuildResult::Success))
            .collect();
        let answers = Transitions::new(conn, stats).finish_all(runner, &reports, Utc::now())?;
        for answer in answers {
            answer?;
            done += 1;
        }
    }
}

/// Scenario 3: pipelines of 1,000 builds, half of them deploying, created one after another.
#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
pub(super) fn bulk_create(options: &Options) -> Outcome {
    let pipelines = options.size(10, 1);
    let definition = independent_jobs(1_000, 2)?;
    let mut rates = Vec::new();
    for round in 0..options.rounds {
        let db = Db::new()?;
        let stats = TxStats::default();
        let mut conn = db.connect();
        // Warm-up, untimed: each round has a fresh database and connection, whose first pipeline
        // also pays for loading catalogs, planning the foreign-key checks and compiling the
        // NOTIFY trigger (about 5 ms more server time). graphile-worker's bulk enqueue likewise
        // runs on a database migrated beforehand, with a query on its connection first.
        create(&mut conn, &stats, db.project, &definition)?;
        let started = Instant::now();
        for _ in 0..pipelines {
            create(&mut conn, &stats, db.project, &definition)?;
        }
        let rate = (pipelines * 1_000) as f64 / started.elapsed().as_secs_f64();
        progress(&format!("round {round}: {rate:.0} builds/s"));
        rates.push(rate);
    }
    Ok((
        vec![Figure::of("bulk_create", "builds/s", &rates)],
        vec![(
            "bulk_create".to_owned(),
            format!(
                "{pipelines} pipelines of 1,000 builds per round, half deploying, one connection, after one untimed warm-up pipeline per round"
            ),
        )],
    ))
}

/// Scenario 5: cancel a 1,000-build pipeline with deployments while 8 threads fail its builds.
pub(super) fn cancel_storm(options: &Options) -> Outcome {
    let samples = options.size(7, 1);
    let db = Db::new()?;
    let stats = TxStats::default();
    let mut conn = db.connect();
    let deadlocks_before = server_deadlocks(&mut conn)?;
    let definition = independent_jobs(1_000, 1)?;
    let runners: Vec<_> = (0..8)
        .map(|i| runner(&mut conn, &format!("failer-{i}")))
        .collect::<anyhow::Result<_>>()?;
    let mut latencies = Vec::new();
    for _ in 0..samples {
        let pipeline = create(&mut conn, &stats, db.project, &definition)?;
        latencies.push(storm_once(&db, &stats, &runners, pipeline)?);
    }
    let deadlocks = server_deadlocks(&mut conn)? - deadlocks_before;
    let client = stats.snapshot().deadlocks;
    anyhow::ensure!(
        deadlocks == 0 && client == 0,
        "deadlocks in the cancel storm: server {deadlocks}, client {client}"
    );
    latencies.sort_by(f64::total_cmp);
    progress(&format!(
        "cancel p50 {:.1} ms over {samples}",
        percentile(&latencies, 50.0)
    ));
    Ok((
        vec![Figure::of("cancel_storm_p50_ms", "ms", &latencies)],
        vec![(
            "cancel_storm_p50_ms".to_owned(),
            format!(
                "{samples} pipelines of 1,000 deploying builds; 8 threads acquire and fail builds while one cancels; deadlocks: 0 server, 0 client"
            ),
        )],
    ))
}

/// One cancel under fire; returns its latency in ms.
fn storm_once(
    db: &Db,
    stats: &TxStats,
    runners: &[lockstep_domain::RunnerId],
    pipeline: PipelineId,
) -> anyhow::Result<f64> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for runner in runners {
            let stop = &stop;
            scope.spawn(move || fail_builds(db, stats, *runner, stop));
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut conn = db.connect();
        let started = Instant::now();
        let canceled = Transitions::new(&mut conn, stats).cancel_pipeline(pipeline, Utc::now());
        let latency = started.elapsed().as_secs_f64() * 1_000.0;
        stop.store(true, Ordering::Relaxed);
        canceled?;
        Ok(latency)
    })
}

fn fail_builds(db: &Db, stats: &TxStats, runner: lockstep_domain::RunnerId, stop: &AtomicBool) {
    let mut conn = db.connect();
    let failed = BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    };
    while !stop.load(Ordering::Relaxed) {
        let claimed = acquire(&mut conn, stats, runner, 1, LEASE);
        let Ok(Some(build)) = claimed.map(|b| b.into_iter().next()) else {
            continue;
        };
        match Transitions::new(&mut conn, stats).finish(build.id, runner, failed, Utc::now()) {
            Ok(_) | Err(StorageError::Transition(_)) => {}
            Err(error) => progress(&format!("failing a build: {error}")),
        }
    }
}
