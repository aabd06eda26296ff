//! A transition whose plan is overtaken at every attempt: a runner claims one of its builds
//! while it waits for a busy resource group, between its plan and its build locks. The first
//! attempt plans from a plain read and is overtaken; the retry locks first, plans from the
//! locked rows, and commits although it is interfered with in the same way.
//!
//! Negative control, run by hand: with `retry::planned_transaction` never switching to
//! `Planning::LockFirst`, every attempt is overtaken and this test fails with
//! `gave up after 5 attempts: rows changed while planning`, as the storm once did.

use crate::support::{Fixture, JobExt, LEASE, job, now};
use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use lockstep_domain::{AutoCancel, BuildId, BuildStatus, PipelineDefinition, ResourceGroupId};
use lockstep_storage_pg::{
    CreatedPipeline, GroupSettings, NewPipeline, Transitions, TxStats, load_resource_group,
};
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

const GROUP: &str = "deploy";
/// More builds than attempts, so that an interference is possible at every attempt.
const BUILDS: usize = 6;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

fn pid(conn: &mut PgConnection) -> i32 {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .expect("backend pid")
        .pid
}

fn blocking_pids(monitor: &mut PgConnection, subject: i32) -> Vec<i32> {
    diesel::sql_query("SELECT unnest(pg_blocking_pids($1)) AS pid")
        .bind::<Integer, _>(subject)
        .load::<Pid>(monitor)
        .expect("pg_blocking_pids")
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

/// A connection holding the group's row, as another transition of the group would, from a
/// thread of its own: taking the row may wait, behind the transition under test.
struct Holder<'s> {
    pid: i32,
    release: mpsc::Sender<()>,
    done: ScopedJoinHandle<'s, ()>,
}

impl<'s> Holder<'s> {
    fn start(scope: &'s Scope<'s, '_>, mut conn: PgConnection, group: ResourceGroupId) -> Self {
        let pid = pid(&mut conn);
        let (release, released) = mpsc::channel();
        let done = scope.spawn(move || {
            conn.transaction(|conn| {
                diesel::sql_query("SELECT id FROM resource_groups WHERE id = $1 FOR NO KEY UPDATE")
                    .bind::<BigInt, _>(group.0)
                    .execute(conn)?;
                released.recv().expect("told to release");
                diesel::QueryResult::Ok(())
            })
            .expect("hold the group");
        });
        Self { pid, release, done }
    }

    fn release(self) {
        self.release.send(()).expect("the holder waits");
        self.done.join().expect("the holder released");
    }
}

/// Polls until `ready` or `finished`; true if ready.
fn wait_for(mut ready: impl FnMut() -> bool, finished: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready() {
            return true;
        }
        if finished() {
            return false;
        }
        assert!(Instant::now() < deadline, "the transition under test hung");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `subject` on a connection of its own while another connection holds the group. Each
/// time the subject waits for the group, a runner claims one build; then the next holder queues
/// behind the subject, so that once it lets go of the group, by commit or rollback, its next
/// attempt waits again. Returns what the subject returned and the builds claimed, one per wait.
fn overtaken<T: Send>(
    f: &Fixture,
    group: ResourceGroupId,
    subject: impl FnOnce(&mut PgConnection) -> T + Send,
) -> (T, Vec<BuildId>) {
    let (runner, tags) = (f.runner, f.tags.clone());
    let claims = TxStats::default();
    let mut monitor = f.db.connect();
    let mut runner_conn = f.db.connect();
    let mut conn = f.db.connect();
    let subject_pid = pid(&mut conn);
    let mut claimed = Vec::new();
    let result = std::thread::scope(|s| {
        let mut holder = Holder::start(s, f.db.connect(), group);
        let subject = s.spawn(move || subject(&mut conn));
        while wait_for(
            || blocking_pids(&mut monitor, subject_pid).contains(&holder.pid),
            || subject.is_finished(),
        ) {
            // What a runner does between the subject's plan and its build locks (acquire locks
            // no pipeline and skips locked builds, so it never waits for the subject).
            let acquired = Transitions::new(&mut runner_conn, &claims)
                .acquire(runner, &tags, 1, LEASE, now())
                .expect("acquire");
            claimed.extend(acquired.builds.iter().map(|b| b.id));
            let next = Holder::start(s, f.db.connect(), group);
            assert!(wait_for(
                || !blocking_pids(&mut monitor, next.pid).is_empty(),
                || false,
            ));
            holder.release();
            holder = next;
        }
        holder.release();
        subject.join().expect("the subject ran")
    });
    (result, claimed)
}

/// A group of `BUILDS` slots, and a pipeline of as many builds in it, all pending.
fn crowded_group(f: &mut Fixture, interruptible: bool) -> (ResourceGroupId, CreatedPipeline) {
    let project = f.project;
    let settings = GroupSettings {
        process_mode: None,
        limit: Some(u32::try_from(BUILDS).expect("a few builds")),
    };
    f.tx()
        .configure_resource_group(project, GROUP, settings, now())
        .expect("set the group up");
    let jobs = (0..BUILDS)
        .map(|i| {
            let mut job = job(&format!("deploy-{i}")).group(GROUP);
            job.interruptible = interruptible;
            job
        })
        .collect();
    let created = f.create(jobs);
    let group = load_resource_group(&mut f.conn, project, GROUP)
        .expect("the group exists")
        .id;
    (group, created)
}

/// Every build was canceled, but those claimed meanwhile, which were asked to stop.
fn assert_canceled_or_stopping(
    statuses: impl IntoIterator<Item = (BuildId, BuildStatus)>,
    claimed: &[BuildId],
) {
    let mut count = 0;
    for (build, status) in statuses {
        let expected = if claimed.contains(&build) {
            BuildStatus::Canceling
        } else {
            BuildStatus::Canceled
        };
        assert_eq!(status, expected, "build {build}");
        count += 1;
    }
    assert_eq!(count, BUILDS);
}

/// Exactly one attempt was overtaken, and the next, though interfered with as the first was,
/// committed.
fn assert_overtaken_once(stats: &TxStats, claimed: &[BuildId]) {
    let counts = stats.snapshot();
    assert_eq!(
        (counts.replans, counts.gave_up),
        (1, 0),
        "one attempt overtaken, then none"
    );
    assert_eq!(
        claimed.len(),
        2,
        "the attempt that locked first was interfered with too"
    );
}

#[test]
fn a_cancel_overtaken_while_it_waits_replans_under_its_locks_and_commits() {
    let mut f = Fixture::new();
    let (group, pipeline) = crowded_group(&mut f, false);
    let stats = TxStats::default();
    let (result, claimed) = overtaken(&f, group, |conn| {
        Transitions::new(conn, &stats).cancel_pipeline(pipeline.id, now())
    });
    let applied = result.expect("the cancel commits on the attempt that locked first");
    assert_overtaken_once(&stats, &claimed);
    let statuses = applied.changes.iter().map(|c| (c.id, c.to));
    assert_canceled_or_stopping(statuses, &claimed);
    f.assert_invariants();
}

/// The same for a creation that supersedes an older pipeline: its own build, inserted on every
/// attempt, stands in line in the group and gets a slot the supersede frees, so the attempt that
/// locks first must hold it too.
#[test]
fn a_creation_overtaken_while_it_waits_replans_under_its_locks_and_commits() {
    let mut f = Fixture::new();
    let (group, older) = crowded_group(&mut f, true);
    let definition = PipelineDefinition {
        jobs: vec![job("deploy").group(GROUP)],
    }
    .validate()
    .expect("a valid pipeline");
    let stats = TxStats::default();
    let project = f.project;
    let (result, claimed) = overtaken(&f, group, |conn| {
        let new = NewPipeline {
            project,
            git_ref: "main",
            sha: None,
            definition: &definition,
            auto_cancel: AutoCancel::Interruptible,
        };
        Transitions::new(conn, &stats).create_pipeline(&new, now())
    });
    let created = result.expect("the creation commits on the attempt that locked first");
    assert_overtaken_once(&stats, &claimed);
    assert_eq!(created.superseded, [older.id]);
    let view = f.pipeline(older.id);
    assert_canceled_or_stopping(view.builds.iter().map(|b| (b.id, b.status)), &claimed);
    assert_eq!(
        f.pipeline(created.id).builds[0].status,
        BuildStatus::Pending,
        "the new deploy got a slot the older pipeline freed"
    );
    f.assert_invariants();
}
