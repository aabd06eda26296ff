//! Scenario 6: acquire with 1,000,000 finished builds in the tables, against an empty database.

use super::{Options, Outcome, progress};
use crate::figures::{Figure, percentile};
use crate::fixtures::{Db, acquire, create, independent_jobs, runner};
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lockstep_storage_pg::{TxStats, explain_claim};
use std::time::{Duration, Instant};

pub(super) fn acquire_history(options: &Options) -> Outcome {
    let history = options.size(1_000_000, 20_000);
    let samples = options.size(1_000, 60);
    let mut ratios = Vec::new();
    let mut notes = Vec::new();
    for round in 0..options.rounds.min(2) {
        let db = Db::new()?;
        let mut conn = db.connect();
        let empty = acquire_p50(&db, &mut conn, samples)?;
        let started = Instant::now();
        seed_history(&mut conn, db.project.0, history)?;
        progress(&format!(
            "seeded {history} finished builds in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        let full = acquire_p50(&db, &mut conn, samples)?;
        progress(&format!(
            "round {round}: acquire p50 {empty:.3} ms empty, {full:.3} ms with history"
        ));
        ratios.push(full / empty);
        if round == 0 {
            notes.push((
                "acquire_history_ratio".to_owned(),
                format!("acquire p50 {full:.3} ms with {history} finished builds vs {empty:.3} ms empty; the claim reads {}", index_of(&explain_claim(&mut conn)?)),
            ));
        }
    }
    Ok((
        vec![Figure::of("acquire_history_ratio", "×", &ratios)],
        notes,
    ))
}

/// Median latency of `samples` single-build claims, in ms.
fn acquire_p50(db: &Db, conn: &mut PgConnection, samples: usize) -> anyhow::Result<f64> {
    let stats = TxStats::default();
    let definition = independent_jobs(20, 10)?;
    for _ in 0..samples.div_ceil(20) {
        create(conn, &stats, db.project, &definition)?;
    }
    let runner = runner(conn, &format!("history-{}", Utc::now().timestamp_micros()))?;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let claimed = acquire(conn, &stats, runner, 1, Duration::from_secs(60))?;
        latencies.push(started.elapsed().as_secs_f64() * 1_000.0);
        anyhow::ensure!(claimed.len() == 1, "a pending build to claim");
    }
    latencies.sort_by(f64::total_cmp);
    Ok(percentile(&latencies, 50.0))
}

/// What the plan's index lines say, e.g. "Index Scan using ci_builds_pending on ci_builds".
fn index_of(plan: &str) -> String {
    let lines: Vec<&str> = plan
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("Index") && line.contains("ci_builds"))
        .map(|line| line.trim_start_matches("-> ").trim())
        .collect();
    if lines.is_empty() {
        format!("plan: {plan}")
    } else {
        lines.join("; ")
    }
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Inserts `builds` finished builds in pipelines of 100, then ANALYZEs. Fixture SQL: a bulk
/// load of history, not a use case, so it lives here rather than in storage-pg.
fn seed_history(conn: &mut PgConnection, project: i64, builds: usize) -> anyhow::Result<()> {
    let pipelines = i64::try_from(builds.div_ceil(100))?;
    diesel::sql_query(
        "INSERT INTO pipelines (project_id, ref, status, finished_at) \
         SELECT $1, 'history', 'success', now() FROM generate_series(1, $2)",
    )
    .bind::<BigInt, _>(project)
    .bind::<BigInt, _>(pipelines)
    .execute(conn)?;
    let inserted = diesel::sql_query(
        "WITH rows AS (INSERT INTO ci_builds (pipeline_id, name, stage, stage_idx, needs, run_when, \
             script, timeout_seconds, status, started_at, finished_at) \
         SELECT p.id, 'job-' || g, 'test', 0, '{}', 'on_success', '{true}', 3600, 'success', now(), now() \
         FROM pipelines AS p CROSS JOIN generate_series(1, 100) AS g \
         WHERE p.project_id = $1 AND p.ref = 'history' RETURNING 1) \
         SELECT count(*) AS n FROM rows",
    )
    .bind::<BigInt, _>(project)
    .get_result::<Inserted>(conn)?;
    anyhow::ensure!(
        inserted.n >= i64::try_from(builds)?,
        "seeded {} builds",
        inserted.n
    );
    diesel::sql_query("ANALYZE").execute(conn)?;
    Ok(())
}
