//! The reaper's other two duties: a claim its runner never acknowledged goes back to the queue
//! with its attempt, and a cancel its runner never confirms is forced after the grace.

use crate::support::{Fixture, GRACE, JobExt, LEASE, job, now, refusal};
use chrono::TimeDelta;
use lockstep_domain::{BuildStatus, DeploymentStatus, PipelineStatus, TransitionError};
use lockstep_storage_pg::load_build;
use std::time::Duration;

#[test]
fn a_claim_never_acknowledged_goes_back_to_pending_without_spending_its_attempt() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("deploy").env("staging").group("staging")]);
    let lost = f.acquire_unacknowledged().expect("deploy is pending");
    let later = lost.lease_expires_at + TimeDelta::seconds(1);
    let applied = f.tx().expire_leases(later, GRACE, 10).unwrap();
    assert_eq!(applied.len(), 1);

    let build = load_build(&mut f.conn, lost.id).unwrap();
    assert_eq!(
        (
            build.status,
            build.attempt,
            build.runner_id,
            build.started_at
        ),
        (BuildStatus::Pending, 1, None, None)
    );
    assert_eq!(build.failure_reason, None);
    assert_eq!(
        build.deployment.expect("a deployment").status,
        DeploymentStatus::Created
    );
    assert_eq!(
        f.pipeline(created.id).summary.status,
        PipelineStatus::Pending
    );
    f.assert_invariants();

    // The runner that lost the answer no longer holds it; the next claim gets the same build.
    let runner = f.runner;
    let late = f.tx().heartbeat(lost.id, runner, LEASE, now()).unwrap_err();
    assert!(matches!(refusal(late), TransitionError::NotHolder { .. }));
    let again = f.acquire().expect("pending again");
    assert_eq!((again.id, again.attempt), (lost.id, 1));
    f.assert_invariants();
}

#[test]
fn a_first_log_append_acknowledges_the_claim_as_a_heartbeat_does() {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire_unacknowledged().unwrap();
    let runner = f.runner;
    f.tx()
        .append_log(build.id, runner, 0, b"started\n", LEASE, now())
        .unwrap();
    // The short lease no longer applies: the log extended it to the full one.
    let after_short = build.lease_expires_at + TimeDelta::seconds(1);
    assert!(
        f.tx()
            .expire_leases(after_short, GRACE, 10)
            .unwrap()
            .is_empty()
    );
    // And once the full lease passes the build is lost, not handed back.
    let after_full = now() + TimeDelta::seconds(31);
    f.tx().expire_leases(after_full, GRACE, 10).unwrap();
    assert_eq!(
        load_build(&mut f.conn, build.id).unwrap().status,
        BuildStatus::Failed
    );
}

#[test]
fn a_cancel_its_runner_never_confirms_is_forced_after_the_grace_and_frees_the_slot() {
    let mut f = Fixture::new();
    let first = f.create(vec![job("deploy").env("prod").group("prod")]);
    let second = f.create(vec![job("deploy").env("prod").group("prod")]);
    let held = f.acquire().expect("the first deploy holds the slot");
    f.tx().cancel_build(held.id, now()).unwrap();
    let runner = f.runner;
    // The runner keeps heartbeating but never confirms.
    let beat = f.tx().heartbeat(held.id, runner, LEASE, now()).unwrap();
    assert_eq!(beat.status, BuildStatus::Canceling);

    let soon = now() + TimeDelta::seconds(5);
    assert!(
        f.tx().expire_leases(soon, GRACE, 10).unwrap().is_empty(),
        "within the grace the runner may still confirm"
    );
    let grace = Duration::from_secs(2);
    let applied = f.tx().expire_leases(soon, grace, 10).unwrap();
    assert_eq!(applied.len(), 1);
    let build = load_build(&mut f.conn, held.id).unwrap();
    assert_eq!(build.status, BuildStatus::Canceled);
    assert_eq!(
        build.deployment.expect("a deployment").status,
        DeploymentStatus::Canceled
    );
    assert_eq!(
        f.pipeline(first.id).summary.status,
        PipelineStatus::Canceled
    );
    let next = f.pipeline(second.id);
    assert_eq!(
        next.builds[0].status,
        BuildStatus::Pending,
        "the slot passed on in the same transaction"
    );
    f.assert_invariants();
}

/// The reaper canceled it without its runner: the build says so, and a late report of another
/// result is a lost lease, not a conflict.
#[test]
fn a_late_report_after_a_forced_cancel_is_a_lost_lease() {
    let mut f = Fixture::new();
    f.create(vec![job("deploy")]);
    let held = f.acquire().expect("pending");
    f.tx().cancel_build(held.id, now()).unwrap();
    let soon = now() + TimeDelta::seconds(5);
    f.tx()
        .expire_leases(soon, Duration::from_secs(1), 10)
        .unwrap();
    let build = load_build(&mut f.conn, held.id).unwrap();
    assert_eq!(
        (build.status, build.failure_reason),
        (
            BuildStatus::Canceled,
            Some(lockstep_domain::FailureReason::RunnerLost)
        )
    );
    let runner = f.runner;
    let late = f
        .tx()
        .finish(
            held.id,
            runner,
            lockstep_domain::BuildResult::Success,
            now(),
        )
        .unwrap_err();
    assert!(
        matches!(refusal(late), TransitionError::LeaseLost { .. }),
        "a late report after the reaper"
    );
    f.assert_invariants();
}
