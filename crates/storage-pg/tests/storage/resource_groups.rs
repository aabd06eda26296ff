//! Resource groups against PostgreSQL: one deploy at a time, a freed slot granted to the next
//! build in line in the same transaction whatever way the holder ended, the modes' lines, and
//! setting a group up.

use crate::support::{Fixture, GRACE, JobExt, job, latest, now};
use chrono::TimeDelta;
use lockstep_domain::{
    BuildId, BuildResult, BuildStatus, FailureReason, PipelineId, ProcessMode, ProjectId,
};
use lockstep_storage_pg::{
    GroupSettings, ResourceGroupView, StorageError, list_resource_groups, load_resource_group,
};

const GROUP: &str = "production";

fn deploy() -> lockstep_domain::JobDefinition {
    job("deploy").env("production").group(GROUP)
}

/// The status of the latest attempt of `name` in `pipeline`.
fn status(f: &mut Fixture, pipeline: PipelineId, name: &str) -> BuildStatus {
    latest(&f.pipeline(pipeline), name).status
}

fn group(f: &mut Fixture) -> ResourceGroupView {
    load_resource_group(&mut f.conn, f.project, GROUP).expect("the group exists")
}

fn configure(f: &mut Fixture, mode: Option<ProcessMode>, limit: Option<u32>) -> ResourceGroupView {
    let project = f.project;
    let settings = GroupSettings {
        process_mode: mode,
        limit,
    };
    f.tx()
        .configure_resource_group(project, GROUP, settings, now())
        .expect("configure the group")
}

fn failed() -> BuildResult {
    BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    }
}

#[test]
fn one_deploy_at_a_time_and_a_freed_slot_goes_on_in_the_same_transaction() {
    let mut f = Fixture::new();
    let first = f.create(vec![deploy()]);
    let second = f.create(vec![deploy()]);
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Pending);
    assert_eq!(
        status(&mut f, second.id, "deploy"),
        BuildStatus::WaitingForResource
    );
    let view = group(&mut f);
    assert_eq!(
        (view.limit, view.process_mode),
        (1, ProcessMode::OldestFirst)
    );
    assert_eq!(view.holders, [first.builds[0]]);
    assert_eq!(view.waiting, [second.builds[0]]);
    // The waiting deploy's deployment has not started.
    let waiting = latest(&f.pipeline(second.id), "deploy").clone();
    assert_eq!(
        waiting.deployment.expect("a deployment").status,
        lockstep_domain::DeploymentStatus::Created
    );
    f.assert_invariants();

    let build = f.acquire().expect("the first deploy is pending");
    assert_eq!(
        build.id, first.builds[0],
        "a waiting build is never acquired"
    );
    assert_eq!(f.acquire(), None, "nothing else may run");
    let runner = f.runner;
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .expect("finish");
    // No other transaction ran: the finish itself handed the slot on.
    assert_eq!(status(&mut f, second.id, "deploy"), BuildStatus::Pending);
    assert_eq!(group(&mut f).holders, [second.builds[0]]);
    f.assert_invariants();
}

/// A holder frees its slot whatever way it ends.
#[test]
fn every_way_out_frees_the_slot() {
    type Way = fn(&mut Fixture, BuildId);
    let ways: [(&str, Way); 7] = [
        ("success", |f, b| {
            let runner = f.runner;
            f.tx()
                .finish(b, runner, BuildResult::Success, now())
                .unwrap();
        }),
        ("failure", |f, b| {
            let runner = f.runner;
            f.tx().finish(b, runner, failed(), now()).unwrap();
        }),
        ("cancel, then the runner confirms", |f, b| {
            f.tx().cancel_build(b, now()).unwrap();
            let runner = f.runner;
            f.tx()
                .finish(b, runner, BuildResult::Canceled, now())
                .unwrap();
        }),
        ("cancel before it started", |f, b| {
            f.tx().cancel_build(b, now()).unwrap();
        }),
        ("skip before it started", |f, b| {
            f.tx().skip_build(b, now()).unwrap();
        }),
        ("lease lost", |f, _| {
            let later = now() + TimeDelta::minutes(10);
            f.tx().expire_leases(later, GRACE, 10).unwrap();
        }),
        ("pipeline cancel, then the runner confirms", |f, b| {
            let pipeline = f.pipeline_of(b);
            f.tx().cancel_pipeline(pipeline, now()).unwrap();
            let runner = f.runner;
            f.tx()
                .finish(b, runner, BuildResult::Canceled, now())
                .unwrap();
        }),
    ];
    for (way, end) in ways {
        let mut f = Fixture::new();
        let first = f.create(vec![deploy()]);
        let second = f.create(vec![deploy()]);
        let holder = first.builds[0];
        if !way.ends_with("before it started") {
            assert_eq!(f.acquire().map(|b| b.id), Some(holder), "{way}");
        }
        end(&mut f, holder);
        assert!(
            status(&mut f, first.id, "deploy").is_terminal(),
            "{way}: the holder ended"
        );
        assert_eq!(
            status(&mut f, second.id, "deploy"),
            BuildStatus::Pending,
            "{way}: the slot went on"
        );
        f.assert_invariants();
    }
}

#[test]
fn a_build_asked_to_stop_keeps_its_slot_until_it_ends() {
    let mut f = Fixture::new();
    let first = f.create(vec![deploy()]);
    let second = f.create(vec![deploy()]);
    let build = f.acquire().expect("pending");
    f.tx().cancel_build(build.id, now()).unwrap();
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Canceling);
    assert_eq!(
        status(&mut f, second.id, "deploy"),
        BuildStatus::WaitingForResource,
        "the script may still be deploying"
    );
}

#[test]
fn oldest_first_keeps_a_place_for_an_older_pipelines_deploy_not_yet_ready() {
    let mut f = Fixture::new();
    let first = f.create(vec![job("build").stage("build"), deploy().stage("deploy")]);
    let second = f.create(vec![deploy()]);
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Created);
    assert_eq!(
        status(&mut f, second.id, "deploy"),
        BuildStatus::WaitingForResource,
        "the free slot is kept for the older pipeline"
    );
    let build = f.acquire_named("build");
    let runner = f.runner;
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .unwrap();
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Pending);
    assert_eq!(
        status(&mut f, second.id, "deploy"),
        BuildStatus::WaitingForResource
    );
    f.assert_invariants();
}

#[test]
fn an_older_pipeline_that_will_not_deploy_gives_its_place_up() {
    let mut f = Fixture::new();
    let first = f.create(vec![job("build").stage("build"), deploy().stage("deploy")]);
    let second = f.create(vec![deploy()]);
    let build = f.acquire_named("build");
    let runner = f.runner;
    f.tx().finish(build.id, runner, failed(), now()).unwrap();
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Skipped);
    assert_eq!(status(&mut f, second.id, "deploy"), BuildStatus::Pending);
}

#[test]
fn newest_first_and_unordered_order_the_line() {
    for (mode, head) in [
        (ProcessMode::OldestFirst, 1),
        (ProcessMode::NewestFirst, 3),
        (ProcessMode::NewestReadyFirst, 3),
        (ProcessMode::Unordered, 1),
    ] {
        let mut f = Fixture::new();
        configure(&mut f, Some(mode), None);
        let pipelines: Vec<_> = (0..4).map(|_| f.create(vec![deploy()])).collect();
        let deploys: Vec<BuildId> = pipelines.iter().map(|p| p.builds[0]).collect();
        let view = group(&mut f);
        assert_eq!(view.holders, [deploys[0]], "{mode:?}");
        let expected_line = match mode {
            ProcessMode::OldestFirst | ProcessMode::Unordered => deploys[1..].to_vec(),
            _ => deploys[1..].iter().rev().copied().collect(),
        };
        assert_eq!(view.waiting, expected_line, "{mode:?}");
        let build = f.acquire().expect("the holder is pending");
        let runner = f.runner;
        f.tx()
            .finish(build.id, runner, BuildResult::Success, now())
            .unwrap();
        assert_eq!(group(&mut f).holders, [deploys[head]], "{mode:?}");
        f.assert_invariants();
    }
}

#[test]
fn a_higher_limit_hands_out_its_slots_at_once() {
    let mut f = Fixture::new();
    let pipelines: Vec<_> = (0..4).map(|_| f.create(vec![deploy()])).collect();
    assert_eq!(group(&mut f).waiting.len(), 3);
    let view = configure(&mut f, None, Some(3));
    assert_eq!(view.limit, 3);
    assert_eq!(
        view.holders,
        pipelines[..3]
            .iter()
            .map(|p| p.builds[0])
            .collect::<Vec<_>>()
    );
    assert_eq!(view.waiting, [pipelines[3].builds[0]]);
    // A lower limit takes nothing back: the holders finish, and only then does the line move.
    let view = configure(&mut f, Some(ProcessMode::Unordered), Some(1));
    assert_eq!(
        (view.limit, view.process_mode, view.holders.len()),
        (1, ProcessMode::Unordered, 3)
    );
    f.assert_invariants();
}

#[test]
fn a_group_can_be_set_up_before_its_first_pipeline() {
    let mut f = Fixture::new();
    let view = configure(&mut f, Some(ProcessMode::NewestReadyFirst), Some(2));
    assert_eq!(
        (view.name.as_str(), view.process_mode, view.limit),
        (GROUP, ProcessMode::NewestReadyFirst, 2)
    );
    assert!(view.holders.is_empty() && view.waiting.is_empty());
    let first = f.create(vec![deploy()]);
    let second = f.create(vec![deploy()]);
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Pending);
    assert_eq!(status(&mut f, second.id, "deploy"), BuildStatus::Pending);
    let project = f.project;
    let all = list_resource_groups(&mut f.conn, project).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].holders.len(), 2);
}

#[test]
fn a_retried_deploy_stands_in_line_again() {
    let mut f = Fixture::new();
    let first = f.create(vec![deploy()]);
    let second = f.create(vec![deploy()]);
    let build = f.acquire().expect("pending");
    let runner = f.runner;
    f.tx().finish(build.id, runner, failed(), now()).unwrap();
    assert_eq!(status(&mut f, second.id, "deploy"), BuildStatus::Pending);
    let retried = f.tx().retry_build(build.id, now()).unwrap();
    let (_, attempt) = retried.new_builds[0];
    assert_eq!(
        status(&mut f, first.id, "deploy"),
        BuildStatus::WaitingForResource
    );
    assert_eq!(group(&mut f).waiting, [attempt]);
    let other = f.acquire().expect("the second deploy is pending");
    f.tx()
        .finish(other.id, runner, BuildResult::Success, now())
        .unwrap();
    assert_eq!(status(&mut f, first.id, "deploy"), BuildStatus::Pending);
    f.assert_invariants();
}

#[test]
fn unknown_groups_and_projects_are_not_found() {
    let mut f = Fixture::new();
    let project = f.project;
    assert!(matches!(
        load_resource_group(&mut f.conn, project, "nope"),
        Err(StorageError::NotFoundNamed {
            entity: "resource group",
            ..
        })
    ));
    assert!(matches!(
        list_resource_groups(&mut f.conn, ProjectId(9_999)),
        Err(StorageError::NotFound {
            entity: "project",
            id: 9_999
        })
    ));
    let err = f
        .tx()
        .configure_resource_group(ProjectId(9_999), GROUP, GroupSettings::default(), now())
        .unwrap_err();
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
}

/// The negative controls of the group invariants: rows written behind the groups' backs are
/// caught.
#[test]
fn the_invariants_catch_a_group_over_its_limit_an_unused_slot_and_a_jump_in_line() {
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    let rule_broken = |f: &mut Fixture, rule: &str| {
        let violations = lockstep_storage_pg::check_invariants(&mut f.conn).unwrap();
        violations.iter().any(|v| v.rule == rule)
    };
    let set_status = |f: &mut Fixture, build: BuildId, status: &str| {
        diesel::sql_query(
            "UPDATE ci_builds SET status = $1, queued_at = clock_timestamp() WHERE id = $2",
        )
        .bind::<diesel::sql_types::Text, _>(status)
        .bind::<BigInt, _>(build.0)
        .execute(&mut f.conn)
        .unwrap();
    };

    let mut f = Fixture::new();
    f.create(vec![deploy()]);
    f.create(vec![deploy()]);
    let third = f.create(vec![deploy()]);
    f.assert_invariants();
    // The third pipeline's deploy jumps the line and takes a second slot.
    set_status(&mut f, third.builds[0], "pending");
    assert!(rule_broken(
        &mut f,
        "a group has no more holders than slots"
    ));
    assert!(rule_broken(
        &mut f,
        "oldest_first grants slots in ascending pipeline order"
    ));

    let mut f = Fixture::new();
    let first = f.create(vec![deploy()]);
    f.create(vec![deploy()]);
    // The holder ends without its slot going on.
    diesel::sql_query("UPDATE ci_builds SET status = 'skipped', finished_at = now() WHERE id = $1")
        .bind::<BigInt, _>(first.builds[0].0)
        .execute(&mut f.conn)
        .unwrap();
    assert!(rule_broken(
        &mut f,
        "no slot is left unused while a build waits for it"
    ));
}

/// A group's builds are stamped with the database's clock under the group's lock, not with the
/// transition's `now`: a reaper whose clock runs ahead must not stamp a grant in the future,
/// which would make it look granted after a later change of the group.
#[test]
fn a_grant_is_stamped_with_the_databases_clock_not_the_transitions() {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Bool};
    #[derive(QueryableByName)]
    struct Stamped {
        #[diesel(sql_type = Bool)]
        ok: bool,
    }
    let mut f = Fixture::new();
    let created = f.create(vec![job("build").stage("build"), deploy().stage("deploy")]);
    let build = f.acquire_named("build");
    let runner = f.runner;
    let ahead = now() + TimeDelta::days(1);
    f.tx()
        .finish(build.id, runner, BuildResult::Success, ahead)
        .unwrap();
    assert_eq!(status(&mut f, created.id, "deploy"), BuildStatus::Pending);
    let deploy = latest(&f.pipeline(created.id), "deploy").id;
    let stamped = diesel::sql_query(
        "SELECT queued_at BETWEEN now() - interval '1 minute' AND clock_timestamp() AS ok \
         FROM ci_builds WHERE id = $1",
    )
    .bind::<BigInt, _>(deploy.0)
    .get_result::<Stamped>(&mut f.conn)
    .unwrap();
    assert!(stamped.ok, "the grant took the transition's clock");
}
