//! The lock-sequence proof: every transition, run against rows that are all held by other
//! connections, must wait for them in the canonical order, and exactly for the rows it changes.

use crate::lock_recorder::{RowLock, by_transaction, check_order, record_locks};
use crate::support::{Fixture, GRACE, JobExt, LEASE, job, latest, now, release_pipeline};
use chrono::TimeDelta;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lockstep_domain::{BuildResult, BuildStatus, FailureReason};
use lockstep_storage_pg::{Applied, Table, Transitions, TxStats};

fn hold_everything(_: Table, _: i64) -> bool {
    false
}

/// The rows a pipeline transition must lock: its pipeline, the builds it changed and their
/// deployments whose status changed, in canonical order.
fn expected(f: &mut Fixture, applied: &Applied) -> Vec<(Table, i64)> {
    let view = f.pipeline(applied.pipeline_id);
    let mut rows = vec![(Table::Pipelines, applied.pipeline_id.0)];
    rows.extend(applied.changes.iter().map(|c| (Table::CiBuilds, c.id.0)));
    for change in applied.changes.iter().filter(|c| c.deployment.is_some()) {
        let build = view
            .builds
            .iter()
            .find(|b| b.id == change.id)
            .expect("changed build");
        rows.push((
            Table::Deployments,
            build.deployment.as_ref().expect("deployment").id.0,
        ));
    }
    rows.sort();
    rows
}

/// Runs a pipeline transition under the recorder and checks its single transaction.
fn check_transition(
    f: &mut Fixture,
    run: impl FnOnce(&mut Transitions<'_>) -> Applied + Send,
) -> Vec<(Table, i64)> {
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let (applied, locks) = record_locks(&url, &hold_everything, |conn| {
        run(&mut Transitions::new(conn, &stats))
    });
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    let transactions = by_transaction(&locks);
    assert_eq!(transactions.len(), 1, "one transaction: {}", show(&locks));
    let expected = expected(f, &applied);
    assert_eq!(
        transactions[0], expected,
        "locked rows differ from changed rows"
    );
    f.assert_invariants();
    expected
}

fn show(locks: &[RowLock]) -> String {
    locks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn failed() -> BuildResult {
    BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    }
}

fn count(locks: &[(Table, i64)], table: Table) -> usize {
    locks.iter().filter(|(t, _)| *t == table).count()
}

#[test]
fn fail_locks_pipeline_then_builds_then_deployments() {
    let mut f = Fixture::new();
    f.create(release_pipeline());
    let build = f.acquire_named("build");
    let runner = f.runner;
    let locks = check_transition(&mut f, |tx| {
        tx.finish(build.id, runner, failed(), now()).unwrap()
    });
    assert_eq!(
        count(&locks, Table::CiBuilds),
        6,
        "the failed build and everything it skipped or enqueued"
    );
    assert_eq!(count(&locks, Table::Deployments), 2);
}

#[test]
fn succeed_locks_in_order() {
    let mut f = Fixture::new();
    f.create(vec![
        job("deploy").stage("a").env("staging"),
        job("smoke").stage("b"),
        job("docs").stage("b").env("docs"),
    ]);
    let build = f.acquire_named("deploy");
    let runner = f.runner;
    let locks = check_transition(&mut f, |tx| {
        tx.finish(build.id, runner, BuildResult::Success, now())
            .unwrap()
    });
    assert_eq!(
        (
            count(&locks, Table::CiBuilds),
            count(&locks, Table::Deployments)
        ),
        (3, 1)
    );
}

/// A report with the runner's account of its log locks what any report does, in order; the
/// check row it writes comes last (a new row here, so nothing to wait for).
#[test]
fn a_report_with_a_log_account_locks_in_order() {
    let mut f = Fixture::new();
    f.create(vec![
        job("deploy").stage("a").env("staging"),
        job("smoke").stage("b"),
    ]);
    let build = f.acquire_named("deploy");
    let runner = f.runner;
    let account = lockstep_storage_pg::LogAccount {
        bytes: 0,
        sha256: [0; 32],
    };
    let locks = check_transition(&mut f, |tx| {
        tx.finish_with_log(build.id, runner, BuildResult::Success, &account, now())
            .unwrap()
    });
    assert_eq!(
        (
            count(&locks, Table::CiBuilds),
            count(&locks, Table::Deployments)
        ),
        (2, 1)
    );
}

#[test]
fn finishing_builds_of_two_pipelines_at_once_locks_each_table_once_in_order() {
    let mut f = Fixture::new();
    let jobs = || {
        vec![
            job("deploy").stage("a").env("staging"),
            job("check").stage("a"),
            job("smoke").stage("b").env("docs"),
        ]
    };
    f.create(jobs());
    f.create(jobs());
    let mut held = Vec::new();
    while let Some(build) = f.acquire() {
        held.push(build);
    }
    assert_eq!(held.len(), 4);
    let runner = f.runner;
    // Reported from the highest id down, and across pipelines, on purpose.
    let reports: Vec<_> = held
        .iter()
        .rev()
        .map(|b| {
            (
                b.id,
                if b.name == "deploy" {
                    failed()
                } else {
                    BuildResult::Success
                },
            )
        })
        .collect();
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let (answers, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .finish_all(runner, &reports, now())
            .unwrap()
    });
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    let transactions = by_transaction(&locks);
    assert_eq!(transactions.len(), 1, "one transaction: {}", show(&locks));
    let mut expected_rows = Vec::new();
    for answer in &answers {
        expected_rows.extend(expected(&mut f, answer.as_ref().unwrap()));
    }
    expected_rows.sort();
    expected_rows.dedup();
    assert_eq!(transactions[0], expected_rows);
    assert_eq!(
        (
            count(&expected_rows, Table::Pipelines),
            count(&expected_rows, Table::CiBuilds),
            count(&expected_rows, Table::Deployments)
        ),
        (2, 6, 4),
        "both pipelines; their four builds and the skipped smokes; their deployments"
    );
    f.assert_invariants();
}

#[test]
fn cancel_pipeline_locks_in_order() {
    let mut f = Fixture::new();
    let created = f.create(release_pipeline());
    f.acquire_named("build");
    let locks = check_transition(&mut f, |tx| tx.cancel_pipeline(created.id, now()).unwrap());
    assert_eq!(
        (
            count(&locks, Table::CiBuilds),
            count(&locks, Table::Deployments)
        ),
        (6, 2)
    );
}

#[test]
fn cancel_and_skip_build_lock_in_order() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("deploy").env("staging"),
        job("other"),
        job("after").stage("2").env("prod"),
    ]);
    let view = f.pipeline(created.id);
    let (deploy, other) = (latest(&view, "deploy").id, latest(&view, "other").id);
    let locks = check_transition(&mut f, |tx| tx.cancel_build(deploy, now()).unwrap());
    assert_eq!(
        locks.len(),
        3,
        "the pipeline, the build and its deployment: `after` still waits for `other`"
    );
    check_transition(&mut f, |tx| tx.skip_build(other, now()).unwrap());
}

#[test]
fn play_locks_in_order() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("approve")
            .when(lockstep_domain::When::Manual)
            .env("production"),
    ]);
    let view = f.pipeline(created.id);
    let approve = latest(&view, "approve").id;
    let locks = check_transition(&mut f, |tx| tx.play_build(approve, now()).unwrap());
    assert_eq!(
        locks.len(),
        3,
        "pipeline, build, deployment (blocked -> created)"
    );
}

#[test]
fn retry_then_fail_of_a_newer_attempt_locks_lower_ids_first() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("compile").stage("1"),
        job("test").stage("2").env("qa"),
        job("package").stage("3").env("prod"),
    ]);
    let runner = f.runner;
    let compile = f.acquire_named("compile");
    f.tx().cancel_build(compile.id, now()).unwrap();
    f.tx()
        .finish(compile.id, runner, BuildResult::Canceled, now())
        .unwrap();
    let retried = check_transition(&mut f, |tx| tx.retry_build(compile.id, now()).unwrap());
    assert_eq!(
        retried,
        [(Table::Pipelines, created.id.0)],
        "a retry only inserts rows and moves the pipeline"
    );
    // The new attempt has the highest id; its failure skips the new (created) attempts after it.
    let again = f.acquire_named("compile");
    let locks = check_transition(&mut f, |tx| {
        tx.finish(again.id, runner, failed(), now()).unwrap()
    });
    assert_eq!(count(&locks, Table::CiBuilds), 3);
}

#[test]
fn expire_leases_locks_in_order() {
    let mut f = Fixture::new();
    f.create(vec![
        job("a").env("one").retry(1),
        job("b").env("two"),
        job("c").stage("2"),
    ]);
    f.acquire_named("a");
    f.acquire_named("b");
    let later = now() + TimeDelta::minutes(5);
    let locks = check_transition(&mut f, |tx| {
        tx.expire_leases(later, GRACE, 10)
            .unwrap()
            .pop()
            .expect("expired")
    });
    assert_eq!(
        (
            count(&locks, Table::CiBuilds),
            count(&locks, Table::Deployments)
        ),
        (2, 2)
    );
}

#[test]
fn retry_pipeline_and_refresh_lock_only_the_pipeline() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a"), job("b")]);
    let view = f.pipeline(created.id);
    let a = latest(&view, "a").id;
    f.tx().cancel_build(a, now()).unwrap();
    check_transition(&mut f, |tx| tx.retry_pipeline(created.id, now()).unwrap());
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let (_, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .refresh_pipeline(created.id, now())
            .unwrap()
    });
    assert_eq!(
        by_transaction(&locks),
        [vec![(Table::Pipelines, created.id.0)]]
    );
}

#[test]
fn heartbeat_locks_only_its_build() {
    let mut f = Fixture::new();
    f.create(vec![job("a").env("x")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let (beat, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .heartbeat(build.id, runner, LEASE, now())
            .unwrap()
    });
    assert_eq!(beat.status, BuildStatus::Running);
    assert_eq!(
        by_transaction(&locks),
        [vec![(Table::CiBuilds, build.id.0)]]
    );
}

/// Acquire takes builds with SKIP LOCKED, so the pending build is left unheld (a held one would be
/// skipped); everything else is held. It must wait only for the deployment, and the follow-up
/// that moves the pipeline to running must be a transaction of its own.
#[test]
fn acquire_never_locks_a_pipeline_after_a_build() {
    let mut f = Fixture::new();
    let created = f.create(vec![
        job("deploy").env("staging"),
        job("later").stage("2").env("prod"),
    ]);
    let view = f.pipeline(created.id);
    let pending = latest(&view, "deploy").id.0;
    let deployment = latest(&view, "deploy").deployment.as_ref().unwrap().id.0;
    let (runner, tags) = (f.runner, f.tags.clone());
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let spare = move |table: Table, id: i64| table == Table::CiBuilds && id == pending;
    let (acquired, locks) = record_locks(&url, &spare, |conn| {
        let mut transitions = Transitions::new(conn, &stats);
        let acquired = transitions.acquire(runner, &tags, 1, LEASE, now()).unwrap();
        transitions
            .refresh_pipelines(&acquired.stale_pipelines, now())
            .unwrap();
        acquired.builds
    });
    assert_eq!(
        acquired.iter().map(|b| b.id.0).collect::<Vec<_>>(),
        [pending]
    );
    assert_eq!(
        by_transaction(&locks),
        [
            vec![(Table::Deployments, deployment)],
            vec![(Table::Pipelines, created.id.0)]
        ],
        "claim, then a separate refresh of the pipeline"
    );
    f.assert_invariants();
}

/// Creates a pipeline of `jobs` on `main` under the lock recorder, with every existing row held.
fn create_recorded(
    f: &Fixture,
    jobs: Vec<lockstep_domain::JobDefinition>,
    auto_cancel: lockstep_domain::AutoCancel,
) -> (lockstep_storage_pg::CreatedPipeline, Vec<RowLock>) {
    let definition = lockstep_domain::PipelineDefinition { jobs }
        .validate()
        .unwrap();
    let stats = TxStats::default();
    let new = lockstep_storage_pg::NewPipeline {
        project: f.project,
        git_ref: "main",
        sha: None,
        definition: &definition,
        auto_cancel,
    };
    record_locks(f.db.url(), &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .create_pipeline(&new, now())
            .unwrap()
    })
}

/// The id of a project's ref row.
fn ref_row(f: &mut Fixture, git_ref: &str) -> i64 {
    diesel::sql_query("SELECT id FROM pipeline_refs WHERE project_id = $1 AND ref = $2")
        .bind::<BigInt, _>(f.project.0)
        .bind::<diesel::sql_types::Text, _>(git_ref)
        .get_result::<Id>(&mut f.conn)
        .expect("the ref has a row")
        .id
}

/// A creation that supersedes nothing locks its ref's row, and no other existing row: its own
/// rows are new (environments that exist are only read).
#[test]
fn creating_a_pipeline_locks_only_its_ref() {
    let mut f = Fixture::new();
    f.create(vec![job("deploy").env("staging")]);
    let (created, locks) = create_recorded(
        &f,
        vec![job("again").env("staging"), job("new").env("review/1")],
        lockstep_domain::AutoCancel::None,
    );
    assert_eq!(created.deployments, 2);
    assert_eq!(
        by_transaction(&locks),
        [vec![(Table::PipelineRefs, ref_row(&mut f, "main"))]],
        "create waited on other existing rows: {}",
        show(&locks)
    );
}

/// The negative control: a transaction that locks a deployment and then its build, the order of
/// the GitLab incident's failure path, is caught.
#[test]
fn the_recorder_catches_a_transaction_that_goes_back_up_the_order() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("deploy").env("staging")]);
    let view = f.pipeline(created.id);
    let build = latest(&view, "deploy");
    let (build_id, deployment_id) = (build.id.0, build.deployment.as_ref().unwrap().id.0);
    let url = f.db.url().to_owned();
    let ((), locks) = record_locks(&url, &hold_everything, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            lock(conn, "deployments", deployment_id);
            lock(conn, "ci_builds", build_id);
            Ok(())
        })
        .unwrap();
    });
    assert_eq!(
        locks.iter().map(|l| (l.table, l.id)).collect::<Vec<_>>(),
        [
            (Table::Deployments, deployment_id),
            (Table::CiBuilds, build_id)
        ]
    );
    let error = check_order(&locks).expect_err("a reversed order must be reported");
    assert!(error.contains("out of the canonical order"), "{error}");
}

/// The second control: descending ids within one table are caught too.
#[test]
fn the_recorder_catches_descending_ids_within_a_table() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a"), job("b")]);
    let view = f.pipeline(created.id);
    let (a, b) = (latest(&view, "a").id.0, latest(&view, "b").id.0);
    let url = f.db.url().to_owned();
    let ((), locks) = record_locks(&url, &hold_everything, |conn| {
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            lock(conn, "ci_builds", b.max(a));
            lock(conn, "ci_builds", b.min(a));
            Ok(())
        })
        .unwrap();
    });
    assert!(
        check_order(&locks).is_err(),
        "descending ids must be reported: {}",
        show(&locks)
    );
}

fn lock(conn: &mut PgConnection, table: &str, id: i64) {
    diesel::sql_query(format!(
        "SELECT id FROM {table} WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind::<BigInt, _>(id)
    .execute(conn)
    .expect("lock row");
}

fn grouped_deploy() -> lockstep_domain::JobDefinition {
    job("deploy").env("production").group("production")
}

/// Finishing a deploy hands its slot to another pipeline's waiting deploy in the same
/// transaction: its pipeline, then the group, then both builds in ascending id, then the
/// deployment; the other pipeline's row is not locked (a grant never changes its status).
#[test]
fn a_freed_slot_is_granted_under_the_group_lock_in_canonical_order() {
    let mut f = Fixture::new();
    let first = f.create(vec![grouped_deploy()]);
    let second = f.create(vec![grouped_deploy()]);
    let project = f.project;
    let group = lockstep_storage_pg::load_resource_group(&mut f.conn, project, "production")
        .unwrap()
        .id;
    let deployment = latest(&f.pipeline(first.id), "deploy")
        .deployment
        .as_ref()
        .unwrap()
        .id;
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let (_, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .finish(build.id, runner, BuildResult::Success, now())
            .unwrap()
    });
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::Pipelines, first.id.0),
            (Table::ResourceGroups, group.0),
            (Table::CiBuilds, first.builds[0].0),
            (Table::CiBuilds, second.builds[0].0),
            (Table::Deployments, deployment.0),
        ]]
    );
    assert_eq!(
        latest(&f.pipeline(second.id), "deploy").status,
        BuildStatus::Pending
    );
    f.assert_invariants();
}

/// Raising a group's limit locks the group, then the builds it grants a slot to.
#[test]
fn configuring_a_group_locks_it_then_the_builds_it_grants() {
    let mut f = Fixture::new();
    let pipelines: Vec<_> = (0..3).map(|_| f.create(vec![grouped_deploy()])).collect();
    let project = f.project;
    let group = lockstep_storage_pg::load_resource_group(&mut f.conn, project, "production")
        .unwrap()
        .id;
    let stats = TxStats::default();
    let url = f.db.url().to_owned();
    let settings = lockstep_storage_pg::GroupSettings {
        process_mode: None,
        limit: Some(3),
    };
    let (_, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .configure_resource_group(project, "production", settings, now())
            .unwrap()
    });
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::ResourceGroups, group.0),
            (Table::CiBuilds, pipelines[1].builds[0].0),
            (Table::CiBuilds, pipelines[2].builds[0].0),
        ]]
    );
    f.assert_invariants();
}

/// Creating a pipeline in a group that exists locks its ref, then the group (ensured, then
/// locked), and nothing else that exists: its own rows are new.
#[test]
fn creating_a_pipeline_in_a_group_locks_only_the_group() {
    let mut f = Fixture::new();
    f.create(vec![grouped_deploy()]);
    let project = f.project;
    let group = lockstep_storage_pg::load_resource_group(&mut f.conn, project, "production")
        .unwrap()
        .id;
    let (created, locks) = create_recorded(
        &f,
        vec![grouped_deploy()],
        lockstep_domain::AutoCancel::None,
    );
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::PipelineRefs, ref_row(&mut f, "main")),
            (Table::ResourceGroups, group.0)
        ]]
    );
    assert_eq!(
        latest(&f.pipeline(created.id), "deploy").status,
        BuildStatus::WaitingForResource
    );
}

/// A new pipeline that supersedes an older one on its ref locks, in one transaction: the ref,
/// the older pipeline, the group of the build it cancels, the builds it cancels, then their
/// deployments; its own rows are new.
#[test]
fn superseding_locks_the_ref_then_the_older_pipeline_in_canonical_order() {
    let mut f = Fixture::new();
    let older = f.create(vec![
        job("test").stage("test"),
        grouped_deploy().stage("deploy"),
    ]);
    let view = f.pipeline(older.id);
    let (test, deploy) = (latest(&view, "test").id, latest(&view, "deploy"));
    let deployment = deploy.deployment.as_ref().unwrap().id;
    let deploy = deploy.id;
    let project = f.project;
    let group = lockstep_storage_pg::load_resource_group(&mut f.conn, project, "production")
        .unwrap()
        .id;
    let (created, locks) = create_recorded(
        &f,
        vec![job("test")],
        lockstep_domain::AutoCancel::Conservative,
    );
    assert_eq!(check_order(&locks), Ok(()), "locks: {}", show(&locks));
    assert_eq!(created.superseded, [older.id]);
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::PipelineRefs, ref_row(&mut f, "main")),
            (Table::Pipelines, older.id.0),
            (Table::ResourceGroups, group.0),
            (Table::CiBuilds, test.0),
            (Table::CiBuilds, deploy.0),
            (Table::Deployments, deployment.0),
        ]]
    );
    let older = f.pipeline(older.id);
    assert_eq!(
        older.summary.status,
        lockstep_domain::PipelineStatus::Canceled
    );
    assert_eq!(older.summary.auto_canceled_by, Some(created.id));
    f.assert_invariants();
}

/// Recording a build's archive locks its build, then the archive row it replaces (rank 6);
/// recording a cache locks the build, then the cache row it replaces (rank 7). The first
/// upload of each has no row to wait for yet, so both run twice, the second under the recorder.
#[test]
fn storing_artifacts_and_caches_locks_the_build_then_the_row_it_replaces() {
    let mut f = Fixture::new();
    f.create(vec![job("a").env("x")]);
    let build = f.acquire().unwrap();
    let runner = f.runner;
    let stats = TxStats::default();
    let sha256 = [1u8; 32];
    let archive = |key: &'static str| lockstep_storage_pg::NewArchive {
        name: None,
        object_key: key,
        size: 1,
        sha256: &sha256,
        entries: &[],
    };
    f.tx()
        .store_artifact(build.id, runner, &archive("first"), None, now())
        .unwrap();
    f.tx()
        .store_cache(build.id, runner, "deps", &archive("first-cache"), now())
        .unwrap();
    let cache_id: i64 = diesel::sql_query("SELECT id FROM ci_caches")
        .get_result::<Id>(&mut f.conn)
        .unwrap()
        .id;
    let url = f.db.url().to_owned();
    let (stored, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .store_artifact(build.id, runner, &archive("second"), None, now())
            .unwrap()
    });
    assert_eq!(stored.replaced.as_deref(), Some("first"));
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::CiBuilds, build.id.0),
            (Table::CiJobArtifacts, build.id.0)
        ]]
    );
    let (stored, locks) = record_locks(&url, &hold_everything, |conn| {
        Transitions::new(conn, &stats)
            .store_cache(build.id, runner, "deps", &archive("second-cache"), now())
            .unwrap()
    });
    assert_eq!(stored.replaced.as_deref(), Some("first-cache"));
    assert_eq!(
        by_transaction(&locks),
        [vec![
            (Table::CiBuilds, build.id.0),
            (Table::CiCaches, cache_id)
        ]]
    );
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}
