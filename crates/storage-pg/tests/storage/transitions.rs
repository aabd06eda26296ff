//! Each transition, end to end: what it writes to builds, deployments and pipelines.

use crate::support::{
    Fixture, GRACE, JobExt, LEASE, job, latest, now, refusal, release_pipeline, statuses,
};
use chrono::TimeDelta;
use lockstep_domain::{
    BuildResult, BuildStatus, DeploymentStatus, FailureReason, PipelineStatus, RunnerId,
    TransitionError, When,
};
use lockstep_storage_pg::{StorageError, TransitionKind, register_runner};

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn creating_a_pipeline_enqueues_its_first_stage_and_creates_deployments() {
    let mut f = Fixture::new();
    let created = f.create(release_pipeline());
    assert_eq!(created.status, PipelineStatus::Pending);
    assert_eq!(created.builds.len(), 6);
    assert_eq!(created.deployments, 2);
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("build", "pending"),
            ("unit", "created"),
            ("lint", "created"),
            ("staging", "created"),
            ("production", "created"),
            ("notify", "created"),
        ])
    );
    let staging = latest(&view, "staging")
        .deployment
        .clone()
        .expect("staging deployment");
    assert_eq!(
        (staging.environment.as_str(), staging.status),
        ("staging", DeploymentStatus::Created)
    );
    f.assert_invariants();
}

#[test]
fn creating_a_pipeline_for_a_missing_project_writes_nothing() {
    let mut f = Fixture::new();
    let definition = lockstep_domain::PipelineDefinition {
        jobs: vec![job("a").env("x")],
    }
    .validate()
    .unwrap();
    let missing = lockstep_domain::ProjectId(9_999);
    let new = lockstep_storage_pg::NewPipeline {
        project: missing,
        git_ref: "main",
        sha: None,
        definition: &definition,
        auto_cancel: lockstep_domain::AutoCancel::None,
    };
    let err = f.tx().create_pipeline(&new, now()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "project",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.pipeline_count(), 0);
}

#[test]
fn acquiring_claims_in_id_order_and_marks_the_pipeline_running() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("deploy").env("staging"), job("other")]);
    let first = f.acquire().expect("a pending build");
    assert_eq!(first.name, "deploy");
    assert_eq!(first.script, ["echo deploy"]);
    assert_eq!(first.git_ref, "main");
    let deployment = first.deployment.expect("deployment arrives with the build");
    assert_eq!(
        (deployment.environment.as_str(), deployment.status),
        ("staging", DeploymentStatus::Running)
    );
    let view = f.pipeline(created.id);
    assert_eq!(view.summary.status, PipelineStatus::Running);
    let build = latest(&view, "deploy");
    assert_eq!(
        (build.status, build.runner_id),
        (BuildStatus::Running, Some(f.runner))
    );
    assert_eq!(f.acquire().map(|b| b.name), Some("other".to_owned()));
    assert!(f.acquire().is_none());
    f.assert_invariants();
}

#[test]
fn acquire_only_hands_out_builds_whose_tags_the_runner_has() {
    let mut f = Fixture::new();
    f.create(vec![
        job("gpu").tags(&["gpu"]),
        job("linux").tags(&["linux"]),
    ]);
    assert_eq!(f.acquire().map(|b| b.name), Some("linux".to_owned()));
    assert!(f.acquire().is_none(), "the runner has no gpu tag");
}

#[test]
fn success_enqueues_the_next_stage_and_succeeds_the_deployment() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("deploy").stage("a").env("staging"),
        job("smoke").stage("b"),
    ]);
    let build = f.acquire_named("deploy");
    let runner = f.runner;
    let applied = f
        .tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .unwrap();
    assert_eq!(applied.deployments_changed, 1);
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[("deploy", "success"), ("smoke", "pending")])
    );
    assert_eq!(
        latest(&view, "deploy").deployment.as_ref().unwrap().status,
        DeploymentStatus::Success
    );
    assert_eq!(view.summary.status, PipelineStatus::Running);
    f.assert_invariants();
}

#[test]
fn failure_skips_what_can_no_longer_run_and_fails_the_pipeline() {
    let mut f = Fixture::new();
    let created = f.create(release_pipeline());
    let build = f.acquire_named("build");
    let runner = f.runner;
    let failed = BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(2),
    };
    let applied = f.tx().finish(build.id, runner, failed, now()).unwrap();
    assert_eq!(
        applied.deployments_changed, 2,
        "both deployments are skipped in the same transaction"
    );
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("build", "failed"),
            ("unit", "skipped"),
            ("lint", "skipped"),
            ("staging", "skipped"),
            ("production", "skipped"),
            ("notify", "pending"),
        ])
    );
    let b = latest(&view, "build");
    assert_eq!(
        (b.failure_reason, b.exit_code),
        (Some(FailureReason::ScriptFailure), Some(2))
    );
    let notify = f.acquire_named("notify");
    f.tx()
        .finish(notify.id, runner, BuildResult::Success, now())
        .unwrap();
    let view = f.pipeline(created.id);
    assert_eq!(view.summary.status, PipelineStatus::Failed);
    assert!(view.summary.finished_at.is_some());
    f.assert_invariants();
}

#[test]
fn finishing_twice_is_harmless_and_a_stranger_cannot_finish() {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let stranger = register_runner(&mut f.conn, "other", &[], b"hash-2")
        .unwrap()
        .id;
    let err = f
        .tx()
        .finish(build.id, stranger, BuildResult::Success, now())
        .unwrap_err();
    assert!(matches!(refusal(err), TransitionError::NotHolder { .. }));
    assert!(
        !f.tx()
            .finish(build.id, runner, BuildResult::Success, now())
            .unwrap()
            .is_noop()
    );
    assert!(
        f.tx()
            .finish(build.id, runner, BuildResult::Success, now())
            .unwrap()
            .is_noop()
    );
    let err = f
        .tx()
        .finish(build.id, runner, BuildResult::Canceled, now())
        .unwrap_err();
    assert!(matches!(refusal(err), TransitionError::Illegal { .. }));
    assert_eq!(f.stats.snapshot().count(TransitionKind::Succeed), 1);
    f.assert_invariants();
}

#[test]
fn canceling_a_pipeline_cancels_waiting_builds_and_asks_running_ones_to_stop() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("deploy").env("staging").needs(&[]),
        job("test").needs(&[]),
        job("after").stage("later").env("production"),
    ]);
    let running = f.acquire_named("deploy");
    let applied = f.tx().cancel_pipeline(created.id, now()).unwrap();
    assert_eq!(applied.pipeline_status, PipelineStatus::Canceling);
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("deploy", "canceling"),
            ("test", "canceled"),
            ("after", "canceled")
        ])
    );
    assert_eq!(
        latest(&view, "deploy").deployment.as_ref().unwrap().status,
        DeploymentStatus::Running
    );
    assert_eq!(
        latest(&view, "after").deployment.as_ref().unwrap().status,
        DeploymentStatus::Canceled
    );
    let (runner, build) = (f.runner, running.id);
    let beat = f.tx().heartbeat(build, runner, LEASE, now()).unwrap();
    assert_eq!(
        beat.status,
        BuildStatus::Canceling,
        "the runner learns to stop"
    );
    f.tx()
        .finish(build, runner, BuildResult::Canceled, now())
        .unwrap();
    let view = f.pipeline(created.id);
    assert_eq!(view.summary.status, PipelineStatus::Canceled);
    assert_eq!(
        latest(&view, "deploy").deployment.as_ref().unwrap().status,
        DeploymentStatus::Canceled
    );
    assert!(
        f.tx().cancel_pipeline(created.id, now()).unwrap().is_noop(),
        "cancel is idempotent"
    );
    f.assert_invariants();
}

#[test]
fn a_finished_pipeline_cannot_be_canceled() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .unwrap();
    let err = f.tx().cancel_pipeline(created.id, now()).unwrap_err();
    assert!(matches!(
        refusal(err),
        TransitionError::PipelineFinished {
            status: PipelineStatus::Success
        }
    ));
}

#[test]
fn canceling_or_skipping_one_build_settles_what_depends_on_it() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("a"),
        job("b"),
        job("after_a").stage("2").needs(&["a"]),
        job("cleanup").stage("2").needs(&["a"]).when(When::Always),
        job("after_b").stage("2").needs(&["b"]),
    ]);
    let view = f.pipeline(created.id);
    let (a, b) = (latest(&view, "a").id, latest(&view, "b").id);
    f.tx().cancel_build(a, now()).unwrap();
    f.tx().skip_build(b, now()).unwrap();
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[
            ("a", "canceled"),
            ("b", "skipped"),
            ("after_a", "skipped"),
            ("cleanup", "pending"),
            ("after_b", "pending")
        ])
    );
    let err = f.tx().skip_build(a, now()).unwrap_err();
    assert!(matches!(refusal(err), TransitionError::Illegal { .. }));
    f.assert_invariants();
}

#[test]
fn retry_runs_a_failed_build_again_with_the_builds_it_skipped() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("build").stage("1"),
        job("deploy").stage("2").env("staging"),
    ]);
    let runner = f.runner;
    let build = f.acquire().unwrap();
    let failed = BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    };
    f.tx().finish(build.id, runner, failed, now()).unwrap();
    assert_eq!(
        f.pipeline(created.id).summary.status,
        PipelineStatus::Failed
    );

    let applied = f.tx().retry_build(build.id, now()).unwrap();
    assert_eq!(
        applied.new_builds.len(),
        2,
        "the build and its skipped deploy"
    );
    assert_eq!(applied.pipeline_status, PipelineStatus::Running);
    let view = f.pipeline(created.id);
    assert_eq!(view.builds.len(), 4, "old attempts stay as they were");
    assert_eq!(
        statuses(&view),
        pairs(&[("build", "pending"), ("deploy", "created")])
    );
    assert_eq!(latest(&view, "build").attempt, 2);
    let deploy = latest(&view, "deploy");
    assert_eq!(
        deploy.deployment.as_ref().unwrap().status,
        DeploymentStatus::Created
    );
    assert!(
        view.summary.finished_at.is_none(),
        "the pipeline is open again"
    );

    let err = f.tx().retry_build(build.id, now()).unwrap_err();
    assert!(matches!(
        refusal(err),
        TransitionError::AlreadyRetried { .. }
    ));
    let again = f.acquire_named("build");
    f.tx()
        .finish(again.id, runner, BuildResult::Success, now())
        .unwrap();
    let deploy = f.acquire_named("deploy");
    f.tx()
        .finish(deploy.id, runner, BuildResult::Success, now())
        .unwrap();
    assert_eq!(
        f.pipeline(created.id).summary.status,
        PipelineStatus::Success
    );
    f.assert_invariants();
}

#[test]
fn retry_pipeline_retries_every_failed_and_canceled_build() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a"), job("b"), job("c")]);
    let view = f.pipeline(created.id);
    let (a, b) = (latest(&view, "a").id, latest(&view, "b").id);
    f.tx().cancel_build(a, now()).unwrap();
    f.tx().cancel_build(b, now()).unwrap();
    let applied = f.tx().retry_pipeline(created.id, now()).unwrap();
    assert_eq!(applied.new_builds.len(), 2);
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[("a", "pending"), ("b", "pending"), ("c", "pending")])
    );
    f.assert_invariants();
}

#[test]
fn an_expired_lease_fails_the_build_and_retries_it_when_allowed() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("flaky").env("staging").retry(1),
        job("next").stage("2"),
    ]);
    let first = f.acquire().unwrap();
    let later = now() + TimeDelta::seconds(60);
    let applied = f.tx().expire_leases(later, GRACE, 100).unwrap();
    assert_eq!(applied.len(), 1);
    let view = f.pipeline(created.id);
    let old = view.builds.iter().find(|b| b.id == first.id).unwrap();
    assert_eq!(
        (old.status, old.failure_reason),
        (BuildStatus::Failed, Some(FailureReason::RunnerLost))
    );
    assert_eq!(
        old.deployment.as_ref().unwrap().status,
        DeploymentStatus::Failed
    );
    let retry = latest(&view, "flaky");
    assert_eq!((retry.attempt, retry.status), (2, BuildStatus::Pending));
    assert_eq!(
        retry.deployment.as_ref().unwrap().status,
        DeploymentStatus::Created
    );
    assert_eq!(
        latest(&view, "next").status,
        BuildStatus::Created,
        "the retry keeps dependents waiting"
    );

    let second = f.acquire_named("flaky");
    f.tx()
        .expire_leases(now() + TimeDelta::seconds(60), GRACE, 100)
        .unwrap();
    let view = f.pipeline(created.id);
    assert_eq!(
        statuses(&view),
        pairs(&[("flaky", "failed"), ("next", "skipped")]),
        "no retries left"
    );
    assert_eq!(view.summary.status, PipelineStatus::Failed);
    assert!(
        view.builds
            .iter()
            .any(|b| b.id == second.id && b.status == BuildStatus::Failed)
    );
    f.assert_invariants();
}

#[test]
fn heartbeats_extend_the_lease_and_stop_after_the_build_ends() {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let beat = f
        .tx()
        .heartbeat(build.id, runner, LEASE * 2, now())
        .unwrap();
    assert_eq!(beat.status, BuildStatus::Running);
    assert!(beat.lease_expires_at > build.lease_expires_at);
    assert!(
        f.tx()
            .expire_leases(build.lease_expires_at + TimeDelta::seconds(1), GRACE, 10)
            .unwrap()
            .is_empty()
    );
    let err = f
        .tx()
        .heartbeat(build.id, RunnerId(runner.0 + 1), LEASE, now())
        .unwrap_err();
    assert!(matches!(refusal(err), TransitionError::NotHolder { .. }));
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .unwrap();
    let err = f
        .tx()
        .heartbeat(build.id, runner, LEASE, now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Transition(TransitionError::LeaseLost { build: b, status: BuildStatus::Success }) if b == build.id
        ),
        "{err}"
    );
}

#[test]
fn a_heartbeat_after_the_lease_expired_reports_the_lease_lost() {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let expired = f
        .tx()
        .expire_leases(build.lease_expires_at + TimeDelta::seconds(1), GRACE, 10)
        .unwrap();
    assert_eq!(expired.len(), 1);
    let err = f
        .tx()
        .heartbeat(build.id, runner, LEASE, now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Transition(TransitionError::LeaseLost { build: b, status: BuildStatus::Failed }) if b == build.id
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "build {} is failed: the runner no longer holds it",
            build.id
        )
    );
}

/// The report of a build the reaper already failed is late: the transition refuses it itself,
/// holding the pipeline's lock, alone or in a batch, and the reaper's verdict stands.
#[test]
fn a_report_after_the_reaper_failed_the_build_is_refused_as_lease_lost() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a"), job("b")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    f.tx()
        .expire_leases(build.lease_expires_at + TimeDelta::seconds(1), GRACE, 10)
        .unwrap();
    let before = f.pipeline(created.id);
    let lost = |err| {
        matches!(
            refusal(err),
            TransitionError::LeaseLost { build: b, status: BuildStatus::Failed } if b == build.id
        )
    };
    let script_failure = BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    };
    for result in [BuildResult::Success, script_failure, BuildResult::Canceled] {
        let err = f.tx().finish(build.id, runner, result, now()).unwrap_err();
        assert!(lost(err), "{result:?}");
        let mut answers = f
            .tx()
            .finish_all(runner, &[(build.id, result)], now())
            .unwrap();
        assert!(
            lost(answers.remove(0).unwrap_err()),
            "{result:?} in a batch"
        );
    }
    assert_eq!(
        f.pipeline(created.id),
        before,
        "a late report changes nothing"
    );
}

#[test]
fn a_manual_build_waits_for_play_and_reopens_a_finished_pipeline() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("build").stage("1"),
        job("promote")
            .stage("2")
            .when(When::Manual)
            .env("production"),
    ]);
    let runner = f.runner;
    let build = f.acquire().unwrap();
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .unwrap();
    let view = f.pipeline(created.id);
    let promote = latest(&view, "promote");
    assert_eq!(promote.status, BuildStatus::Manual);
    assert_eq!(
        promote.deployment.as_ref().unwrap().status,
        DeploymentStatus::Blocked
    );
    assert_eq!(
        view.summary.status,
        PipelineStatus::Success,
        "a manual job does not hold the pipeline open"
    );
    assert!(f.acquire().is_none(), "manual builds are not handed out");

    let promote = promote.id;
    let applied = f.tx().play_build(promote, now()).unwrap();
    assert_eq!(applied.pipeline_status, PipelineStatus::Running);
    assert!(
        f.tx().play_build(promote, now()).unwrap().is_noop(),
        "playing twice is harmless"
    );
    let played = f.acquire_named("promote");
    assert_eq!(played.deployment.unwrap().status, DeploymentStatus::Running);
    f.tx()
        .finish(played.id, runner, BuildResult::Success, now())
        .unwrap();
    let view = f.pipeline(created.id);
    let deployment = latest(&view, "promote").deployment.as_ref().unwrap().status;
    assert_eq!(
        (view.summary.status, deployment),
        (PipelineStatus::Success, DeploymentStatus::Success)
    );
    let err = f.tx().play_build(build.id, now()).unwrap_err();
    assert!(matches!(refusal(err), TransitionError::Illegal { .. }));
    f.assert_invariants();
}

#[test]
fn unknown_ids_are_not_found() {
    let mut f = Fixture::new();
    let missing = lockstep_domain::BuildId(424_242);
    let err = f.tx().cancel_build(missing, now()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "build",
                id: 424_242
            }
        ),
        "{err}"
    );
    let err = f
        .tx()
        .cancel_pipeline(lockstep_domain::PipelineId(7), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "pipeline",
                id: 7
            }
        ),
        "{err}"
    );
}

/// The claim is a fixed text: each connection prepares it once and reuses it, rather than
/// parsing and planning it on every acquire.
#[test]
fn the_claim_is_prepared_once_per_connection() {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut f = Fixture::new();
    f.create(vec![job("a"), job("b"), job("c")]);
    for _ in 0..3 {
        f.acquire();
    }
    let prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%candidates AS%'",
    )
    .get_result::<Count>(&mut f.conn)
    .unwrap();
    assert_eq!(prepared.n, 1);
}
