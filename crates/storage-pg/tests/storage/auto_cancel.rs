//! Auto-cancel against PostgreSQL: a new pipeline cancels what its rule allows of the older,
//! unfinished pipelines of its ref, in the transaction that creates it, and two pipelines
//! created on one ref at the same moment never both survive as the newest.

use crate::support::{Fixture, JobExt, job, latest, now};
use lockstep_domain::{
    AutoCancel, BuildResult, BuildStatus, JobDefinition, PipelineDefinition, PipelineId,
    PipelineStatus,
};
use lockstep_storage_pg::{CreatedPipeline, NewPipeline, Transitions, TxStats};
use std::sync::Barrier;

fn interruptible(mut job: JobDefinition) -> JobDefinition {
    job.interruptible = true;
    job
}

/// test (interruptible) -> deploy (not interruptible).
fn release() -> Vec<JobDefinition> {
    vec![
        interruptible(job("test").stage("test")),
        job("deploy").stage("deploy").env("production"),
    ]
}

fn create_on(
    f: &mut Fixture,
    git_ref: &str,
    jobs: Vec<JobDefinition>,
    rule: AutoCancel,
) -> CreatedPipeline {
    let definition = PipelineDefinition { jobs }.validate().unwrap();
    let project = f.project;
    f.tx()
        .create_pipeline(
            &NewPipeline {
                project,
                git_ref,
                sha: None,
                definition: &definition,
                auto_cancel: rule,
            },
            now(),
        )
        .unwrap()
}

fn status(f: &mut Fixture, id: PipelineId) -> (PipelineStatus, Option<PipelineId>) {
    let view = f.pipeline(id);
    (view.summary.status, view.summary.auto_canceled_by)
}

#[test]
fn conservative_cancels_an_older_pipeline_that_has_not_started() {
    let mut f = Fixture::new();
    let older = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    let other_ref = create_on(&mut f, "feature", release(), AutoCancel::Conservative);
    let newer = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    assert_eq!(newer.superseded, [older.id]);
    assert_eq!(
        status(&mut f, older.id),
        (PipelineStatus::Canceled, Some(newer.id))
    );
    let view = f.pipeline(older.id);
    assert_eq!(
        latest(&view, "deploy").deployment.as_ref().unwrap().status,
        lockstep_domain::DeploymentStatus::Canceled,
        "the deployment follows"
    );
    assert_eq!(
        status(&mut f, other_ref.id),
        (PipelineStatus::Pending, None)
    );
    assert_eq!(status(&mut f, newer.id), (PipelineStatus::Pending, None));
    f.assert_invariants();
}

#[test]
fn conservative_stops_an_older_pipeline_whose_started_builds_are_all_interruptible() {
    let mut f = Fixture::new();
    let older = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    let test = f.acquire_named("test");
    let newer = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    assert_eq!(newer.superseded, [older.id]);
    let view = f.pipeline(older.id);
    assert_eq!(latest(&view, "test").status, BuildStatus::Canceling);
    assert_eq!(latest(&view, "deploy").status, BuildStatus::Canceled);
    let runner = f.runner;
    f.tx()
        .finish(test.id, runner, BuildResult::Canceled, now())
        .unwrap();
    assert_eq!(
        status(&mut f, older.id),
        (PipelineStatus::Canceled, Some(newer.id))
    );
    f.assert_invariants();
}

#[test]
fn a_started_deploy_that_is_not_interruptible_is_never_interrupted() {
    let mut f = Fixture::new();
    let older = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    let test = f.acquire_named("test");
    let runner = f.runner;
    f.tx()
        .finish(test.id, runner, BuildResult::Success, now())
        .unwrap();
    f.acquire_named("deploy");
    let newer = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    assert!(newer.superseded.is_empty());
    assert_eq!(status(&mut f, older.id), (PipelineStatus::Running, None));
    assert_eq!(
        latest(&f.pipeline(older.id), "deploy").status,
        BuildStatus::Running
    );
    // Nor by the interruptible rule: only interruptible builds go.
    let newest = create_on(&mut f, "main", release(), AutoCancel::Interruptible);
    assert_eq!(
        latest(&f.pipeline(older.id), "deploy").status,
        BuildStatus::Running,
        "{:?} superseded",
        newest.superseded
    );
    f.assert_invariants();
}

#[test]
fn the_interruptible_rule_cancels_only_interruptible_builds_that_have_not_finished() {
    let mut f = Fixture::new();
    let older = create_on(
        &mut f,
        "main",
        vec![
            // No runner of the fixture has this tag: lint stays pending.
            interruptible(job("lint").stage("test").tags(&["windows"])),
            job("unit").stage("test"),
            job("deploy").stage("deploy"),
        ],
        AutoCancel::None,
    );
    f.acquire_named("unit");
    let newer = create_on(&mut f, "main", release(), AutoCancel::Interruptible);
    assert_eq!(newer.superseded, [older.id]);
    let view = f.pipeline(older.id);
    assert_eq!(latest(&view, "lint").status, BuildStatus::Canceled);
    assert_eq!(latest(&view, "unit").status, BuildStatus::Running);
    assert_eq!(
        (view.summary.status, view.summary.auto_canceled_by),
        (PipelineStatus::Running, Some(newer.id)),
        "the pipeline goes on, marked"
    );
    f.assert_invariants();
}

#[test]
fn none_and_finished_pipelines_are_left_alone() {
    let mut f = Fixture::new();
    let finished = create_on(&mut f, "main", vec![job("a")], AutoCancel::None);
    let a = f.acquire_named("a");
    let runner = f.runner;
    f.tx()
        .finish(a.id, runner, BuildResult::Success, now())
        .unwrap();
    let open = create_on(&mut f, "main", release(), AutoCancel::None);
    let newer = create_on(&mut f, "main", release(), AutoCancel::None);
    assert!(newer.superseded.is_empty());
    assert_eq!(status(&mut f, open.id), (PipelineStatus::Pending, None));
    let newest = create_on(&mut f, "main", release(), AutoCancel::Conservative);
    assert_eq!(newest.superseded, [open.id, newer.id]);
    assert_eq!(status(&mut f, finished.id), (PipelineStatus::Success, None));
    f.assert_invariants();
}

/// Two creations on one ref at once take turns at the ref's lock: the second sees the first
/// and cancels it, so exactly one survives as the newest, and neither deadlocks.
#[test]
fn two_pipelines_created_on_one_ref_at_once_never_both_survive() {
    let f = Fixture::new();
    let definition = PipelineDefinition { jobs: release() }.validate().unwrap();
    let stats = TxStats::default();
    for round in 0..10 {
        let barrier = Barrier::new(2);
        let git_ref = format!("race-{round}");
        // The ref's row exists already, as it does for every ref but a new one: the creations
        // take turns at its lock, not at the insert of a new row.
        Transitions::new(&mut f.db.connect(), &stats)
            .create_pipeline(
                &NewPipeline {
                    project: f.project,
                    git_ref: &git_ref,
                    sha: None,
                    definition: &definition,
                    auto_cancel: AutoCancel::None,
                },
                now(),
            )
            .expect("create the first pipeline of the ref");
        let created: Vec<CreatedPipeline> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut conn = f.db.connect();
                        barrier.wait();
                        Transitions::new(&mut conn, &stats)
                            .create_pipeline(
                                &NewPipeline {
                                    project: f.project,
                                    git_ref: &git_ref,
                                    sha: None,
                                    definition: &definition,
                                    auto_cancel: AutoCancel::Conservative,
                                },
                                now(),
                            )
                            .expect("create")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut conn = f.db.connect();
        let statuses: Vec<PipelineStatus> = created
            .iter()
            .map(|c| {
                lockstep_storage_pg::load_pipeline(&mut conn, c.id)
                    .unwrap()
                    .summary
                    .status
            })
            .collect();
        let survivors = statuses.iter().filter(|s| !s.is_terminal()).count();
        assert_eq!(survivors, 1, "round {round}: {statuses:?}");
        let newest = created.iter().map(|c| c.id).max().unwrap();
        let canceled_by: Vec<Vec<PipelineId>> =
            created.iter().map(|c| c.superseded.clone()).collect();
        assert!(
            canceled_by.iter().flatten().all(|p| *p < newest),
            "round {round}: the newest survives"
        );
    }
    assert_eq!(stats.snapshot().deadlocks, 0);
    let violations = lockstep_storage_pg::check_invariants(&mut f.db.connect()).unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}
