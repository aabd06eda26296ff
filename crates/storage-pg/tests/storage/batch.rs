//! Several reports in one transaction (`finish_all`): each answered as it would be alone, all of
//! them written together, and batches that overlap in any order never deadlock.

use crate::deadlock::server_deadlocks;
use crate::support::{Fixture, JobExt, job, latest, now, refusal, statuses};
use lockstep_domain::{
    BuildId, BuildResult, DeploymentStatus, FailureReason, PipelineStatus, TransitionError,
};
use lockstep_storage_pg::{StorageError, TransitionKind, Transitions, TxStats, register_runner};
use std::sync::Barrier;

fn failed() -> BuildResult {
    BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(3),
    }
}

fn two_stages() -> Vec<lockstep_domain::JobDefinition> {
    vec![
        job("build").stage("a").env("staging"),
        job("test").stage("b"),
    ]
}

#[test]
fn finish_all_answers_each_report_as_finish_would_and_writes_them_together() {
    let mut f = Fixture::new();
    let first = f.create(two_stages());
    let second = f.create(two_stages());
    let a = f.acquire_named("build");
    let b = f.acquire_named("build");
    assert_ne!(a.pipeline_id, b.pipeline_id);
    let runner = f.runner;
    let stranger = register_runner(&mut f.conn, "other", &[], b"hash-2")
        .unwrap()
        .id;
    let mut answers = f
        .tx()
        .finish_all(
            runner,
            &[
                (b.id, BuildResult::Success),
                (BuildId(-7), BuildResult::Success),
                (a.id, failed()),
                (a.id, failed()),
            ],
            now(),
        )
        .unwrap()
        .into_iter();
    let applied = answers.next().unwrap().unwrap();
    assert_eq!(applied.pipeline_id, b.pipeline_id);
    assert!(matches!(
        answers.next().unwrap(),
        Err(StorageError::NotFound {
            entity: "build",
            id: -7
        })
    ));
    let applied = answers.next().unwrap().unwrap();
    assert_eq!(applied.pipeline_status, PipelineStatus::Failed);
    assert!(
        answers.next().unwrap().is_ok(),
        "a repeated report is harmless"
    );

    let view = f.pipeline(second.id);
    assert_eq!(
        statuses(&view),
        [("build", "success"), ("test", "pending")].map(|(n, s)| (n.to_owned(), s.to_owned()))
    );
    assert_eq!(
        latest(&view, "build").deployment.as_ref().unwrap().status,
        DeploymentStatus::Success
    );
    let view = f.pipeline(first.id);
    assert_eq!(view.summary.status, PipelineStatus::Failed);
    assert_eq!(
        latest(&view, "build").deployment.as_ref().unwrap().status,
        DeploymentStatus::Failed
    );
    assert_eq!(
        f.tx()
            .finish_all(stranger, &[(b.id, failed())], now())
            .unwrap()
            .pop()
            .map(|answer| refusal(answer.unwrap_err())),
        Some(TransitionError::NotHolder {
            build: b.id,
            runner: stranger
        })
    );
    let counts = f.stats.snapshot();
    assert_eq!(
        (
            counts.count(TransitionKind::Succeed),
            counts.count(TransitionKind::Fail)
        ),
        (1, 1)
    );
    f.assert_invariants();
}

#[test]
fn reports_of_one_pipeline_apply_in_sequence_within_the_batch() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("one"), job("two"), job("three").stage("next")]);
    let one = f.acquire_named("one");
    let two = f.acquire_named("two");
    let runner = f.runner;
    let answers = f
        .tx()
        .finish_all(
            runner,
            &[
                (two.id, BuildResult::Success),
                (one.id, BuildResult::Success),
            ],
            now(),
        )
        .unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(
        statuses(&f.pipeline(created.id)),
        [("one", "success"), ("two", "success"), ("three", "pending")]
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
    );
    f.assert_invariants();
}

/// Two clients report builds of the same pipelines in opposite orders, round after round. The
/// batch locks every table once, rows in ascending id, so neither ever waits on the other in a
/// cycle: no retry, and the server counts no deadlock (deadlock.rs shows it would see one).
#[test]
fn overlapping_batches_in_opposite_orders_never_deadlock() {
    const PIPELINES: usize = 6;
    const ROUNDS: usize = 15;
    let mut f = Fixture::new();
    let runner = f.runner;
    let before = server_deadlocks(&mut f.conn);
    let stats = TxStats::default();
    for _ in 0..ROUNDS {
        let jobs: Vec<_> = (0..4)
            .map(|i| job(&format!("job-{i}")).env(&format!("env-{i}")))
            .collect();
        let mut builds = Vec::new();
        for _ in 0..PIPELINES {
            f.create(jobs.clone());
        }
        while let Some(build) = f.acquire() {
            builds.push(build.id);
        }
        assert_eq!(builds.len(), PIPELINES * 4);
        // Each client gets half of every pipeline's builds: even and odd positions.
        let evens: Vec<BuildId> = builds.iter().step_by(2).copied().collect();
        let mut odds: Vec<BuildId> = builds.iter().skip(1).step_by(2).copied().collect();
        odds.reverse();
        let barrier = Barrier::new(2);
        let db = &f.db;
        std::thread::scope(|s| {
            for (mine, result) in [(&evens, BuildResult::Success), (&odds, failed())] {
                let (stats, barrier) = (&stats, &barrier);
                s.spawn(move || {
                    let mut conn = db.connect();
                    let reports: Vec<_> = mine.iter().map(|b| (*b, result)).collect();
                    barrier.wait();
                    let answers = Transitions::new(&mut conn, stats)
                        .finish_all(runner, &reports, now())
                        .expect("the batch commits");
                    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
                });
            }
        });
    }
    let counts = stats.snapshot();
    assert_eq!(
        (
            counts.deadlocks,
            counts.serialization_failures,
            counts.replans
        ),
        (0, 0, 0)
    );
    assert_eq!(server_deadlocks(&mut f.conn), before);
    f.assert_invariants();
}

/// A batch does not wait for a busy pipeline before applying the reports of free ones: those
/// commit first, and the busy pipeline's reports follow once it is free.
#[test]
fn a_batch_applies_free_pipelines_first_then_waits_for_a_busy_one() {
    use diesel::connection::SimpleConnection;
    let mut f = Fixture::new();
    let first = f.create(vec![job("a")]);
    let second = f.create(vec![job("b")]);
    let a = f.acquire_named("a");
    let b = f.acquire_named("b");
    let runner = f.runner;
    let mut holder = f.db.connect();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM pipelines WHERE id = {} FOR NO KEY UPDATE",
            second.id.0
        ))
        .unwrap();
    let db = &f.db;
    let stats = TxStats::default();
    std::thread::scope(|s| {
        let batch = s.spawn(|| {
            let mut conn = db.connect();
            Transitions::new(&mut conn, &stats)
                .finish_all(
                    runner,
                    &[(b.id, BuildResult::Success), (a.id, BuildResult::Success)],
                    now(),
                )
                .unwrap()
        });
        let mut observer = db.connect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lockstep_storage_pg::load_pipeline(&mut observer, first.id)
            .unwrap()
            .summary
            .status
            != PipelineStatus::Success
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the free pipeline's report waited for the busy one"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!batch.is_finished(), "the busy pipeline's report waits");
        holder.batch_execute("COMMIT").unwrap();
        let answers = batch.join().unwrap();
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    });
    assert_eq!(
        f.pipeline(second.id).summary.status,
        PipelineStatus::Success
    );
    f.assert_invariants();
}
