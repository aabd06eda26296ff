//! Runs the storm: worker threads over a shared set of pipelines, then the checks.

use crate::report::Report;
use crate::workload::{GROUPS, Op, pick, pipelines};
use chrono::Utc;
use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lockstep_domain::{
    AutoCancel, BuildId, BuildResult, BuildStatus, FailureReason, PipelineId, ProjectId, RunnerId,
    ValidPipeline,
};
use lockstep_storage_pg::{
    Applied, GroupSettings, LogAccount, NewArchive, NewPipeline, StorageError, TransitionKind,
    Transitions, TxStats, check_invariants, create_project, load_pipeline, register_runner,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long and how wide.
#[derive(Debug, Clone, Copy)]
pub struct StormConfig {
    pub duration: Duration,
    pub threads: usize,
    pub seed: u64,
}

/// Pipelines the threads share: the most recent ones, with the ids of their builds.
const WORKING_SET: usize = 24;

/// The refs pipelines are created on: few, so that new pipelines keep superseding older ones.
const REFS: [&str; 3] = ["main", "feature/a", "feature/b"];

struct Shared {
    deadline: Instant,
    project: ProjectId,
    pipelines: Vec<ValidPipeline>,
    working: Mutex<VecDeque<(PipelineId, Vec<BuildId>)>>,
    /// How often each build was claimed, and how often the reaper handed it back unacknowledged:
    /// a build claimed more often than it was handed back, plus once, was held twice.
    claims: Mutex<HashMap<BuildId, u64>>,
    requeues: Mutex<HashMap<BuildId, u64>>,
    rejected: AtomicU64,
    cancels_touching_deployments: AtomicU64,
    errors: Mutex<Vec<String>>,
    stats: TxStats,
}

/// A storm thread: its connection, runner, randomness and the builds it holds.
struct Worker<'s> {
    shared: &'s Shared,
    conn: PgConnection,
    runner: RunnerId,
    rng: fastrand::Rng,
    held: Vec<BuildId>,
}

/// Runs a storm against the migrated, otherwise empty database at `url`.
pub fn run(url: &str, config: StormConfig) -> anyhow::Result<Report> {
    let mut conn = PgConnection::establish(url)?;
    let project = create_project(&mut conn, "storm")?.id;
    let deadlocks_before = server_deadlocks(&mut conn)?;
    let shared = Shared {
        deadline: Instant::now() + config.duration,
        project,
        pipelines: pipelines(),
        working: Mutex::new(VecDeque::new()),
        claims: Mutex::new(HashMap::new()),
        requeues: Mutex::new(HashMap::new()),
        rejected: AtomicU64::new(0),
        cancels_touching_deployments: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        stats: TxStats::default(),
    };
    for (name, mode, limit) in GROUPS {
        let settings = GroupSettings {
            process_mode: Some(mode),
            limit: Some(limit),
        };
        Transitions::new(&mut conn, &shared.stats).configure_resource_group(
            project,
            name,
            settings,
            Utc::now(),
        )?;
    }
    let started = Instant::now();
    let mut during = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let monitor = scope.spawn(|| watch_groups(url, shared.deadline));
        let mut handles = Vec::new();
        for i in 0..config.threads {
            let runner = register_runner(
                &mut conn,
                &format!("storm-{i}"),
                &[],
                format!("storm-{i}").as_bytes(),
            )?
            .id;
            let worker = Worker {
                shared: &shared,
                conn: PgConnection::establish(url)?,
                runner,
                rng: fastrand::Rng::with_seed(config.seed.wrapping_add(i as u64)),
                held: Vec::new(),
            };
            handles.push(scope.spawn(move || worker.run()));
        }
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a storm thread panicked"))?;
        }
        during = monitor
            .join()
            .map_err(|_| anyhow::anyhow!("the group monitor panicked"))??;
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut violations = check_invariants(&mut conn)?;
    violations.extend(during);
    let deadlocks_server = settled_deadlocks(&mut conn)? - deadlocks_before;
    Ok(report(
        &shared,
        config,
        seconds,
        deadlocks_server,
        violations,
    ))
}

fn report(
    shared: &Shared,
    config: StormConfig,
    seconds: f64,
    deadlocks_server: i64,
    violations: Vec<lockstep_storage_pg::Violation>,
) -> Report {
    let stats = shared.stats.snapshot();
    let errors = shared.errors.lock().expect("errors lock").clone();
    // Every thread has finished: every claim and every hand-back is counted.
    let claims = shared.claims.lock().expect("claims lock");
    let requeues = shared.requeues.lock().expect("requeues lock");
    Report {
        seconds,
        threads: config.threads,
        transitions: Report::transitions(&stats),
        total_transitions: stats.total(),
        fails: Report::fails(&stats),
        pipeline_cancels_touching_deployments: shared
            .cancels_touching_deployments
            .load(Ordering::Relaxed),
        rejected: shared.rejected.load(Ordering::Relaxed),
        deadlocks_client: stats.deadlocks,
        deadlocks_server,
        serialization_retries: stats.serialization_failures,
        replans: stats.replans,
        gave_up: stats.gave_up,
        acquired: claims.len() as u64,
        requeued: requeues.values().sum(),
        duplicate_acquires: claims
            .iter()
            .map(|(build, claimed)| {
                claimed.saturating_sub(requeues.get(build).copied().unwrap_or(0) + 1)
            })
            .sum(),
        unexpected_errors: errors.len() as u64,
        invariant_violations: violations.len(),
        violations,
        errors,
    }
}

impl Worker<'_> {
    fn run(mut self) {
        while Instant::now() < self.shared.deadline {
            let op = pick(&mut self.rng, !self.held.is_empty());
            self.step(op);
        }
    }

    fn tx(&mut self) -> Transitions<'_> {
        Transitions::new(&mut self.conn, &self.shared.stats)
    }

    fn step(&mut self, op: Op) {
        let now = Utc::now();
        match op {
            Op::Create => self.create(),
            Op::Acquire => self.acquire(),
            Op::Succeed => self.finish(BuildResult::Success),
            Op::Fail => {
                let exit_code = Some(self.rng.i32(1..=255));
                self.finish(BuildResult::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code,
                });
            }
            Op::FinishAll => self.finish_all(),
            Op::Heartbeat => self.heartbeat(),
            Op::StoreArchives => self.store_archives(),
            Op::CancelPipeline => {
                if let Some(pipeline) = self.some_pipeline() {
                    let result = self.tx().cancel_pipeline(pipeline, now);
                    if let Some(applied) =
                        self.check(TransitionKind::CancelPipeline.as_str(), result)
                        && applied.deployments_changed > 0
                    {
                        self.shared
                            .cancels_touching_deployments
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Op::RetryPipeline => {
                self.on_pipeline(TransitionKind::RetryPipeline, |tx, p| {
                    tx.retry_pipeline(p, now)
                });
            }
            Op::ConfigureGroup => {
                let (name, _, _) = GROUPS[self.rng.usize(..GROUPS.len())];
                let settings = GroupSettings {
                    process_mode: None,
                    limit: Some(self.rng.u32(1..=2)),
                };
                let project = self.shared.project;
                let result = self
                    .tx()
                    .configure_resource_group(project, name, settings, now);
                self.check(TransitionKind::ConfigureResourceGroup.as_str(), result);
            }
            Op::Refresh => {
                self.on_pipeline(TransitionKind::Refresh, |tx, p| tx.refresh_pipeline(p, now));
            }
            Op::CancelBuild => {
                self.on_build(TransitionKind::CancelBuild, |tx, b| tx.cancel_build(b, now));
            }
            Op::SkipBuild => {
                self.on_build(TransitionKind::SkipBuild, |tx, b| tx.skip_build(b, now));
            }
            Op::PlayBuild => self.play(),
            Op::RetryBuild => {
                self.on_build(TransitionKind::RetryBuild, |tx, b| tx.retry_build(b, now));
            }
            Op::ExpireLeases => {
                // A reaper whose clock runs up to two seconds ahead, as a replica's might: it
                // expires leases that other threads' runners still think they hold. Its cancel
                // grace is short, so that cancels its runners are slow to confirm are forced.
                let skew = chrono::TimeDelta::milliseconds(self.rng.i64(0..2_000));
                let grace = Duration::from_millis(self.rng.u64(0..3_000));
                let result = self.tx().expire_leases(now + skew, grace, 8);
                let expired = self.check(TransitionKind::ExpireLeases.as_str(), result);
                for applied in expired.unwrap_or_default() {
                    self.count_requeues(&applied);
                    self.remember(&applied);
                }
            }
        }
    }

    fn create(&mut self) {
        let definition = &self.shared.pipelines[self.rng.usize(..self.shared.pipelines.len())];
        let git_ref = REFS[self.rng.usize(..REFS.len())];
        // Half the pipelines leave their ref's older ones alone, so that deploys still happen.
        let auto_cancel = match self.rng.u32(0..10) {
            0..=4 => AutoCancel::None,
            5..=7 => AutoCancel::Conservative,
            _ => AutoCancel::Interruptible,
        };
        let new = NewPipeline {
            project: self.shared.project,
            git_ref,
            sha: None,
            definition,
            auto_cancel,
        };
        let mut transitions = Transitions::new(&mut self.conn, &self.shared.stats);
        let result = transitions.create_pipeline(&new, Utc::now());
        if let Some(created) = self.check(TransitionKind::CreatePipeline.as_str(), result) {
            let mut working = self.shared.working.lock().expect("working lock");
            working.push_back((created.id, created.builds));
            if working.len() > WORKING_SET {
                working.pop_front();
            }
        }
    }

    fn acquire(&mut self) {
        let limit = self.rng.u32(1..=3);
        // Short leases, so that some expire while their builds are still held.
        let lease = Duration::from_millis(self.rng.u64(200..3_000));
        let runner = self.runner;
        let result = self.tx().acquire(runner, &[], limit, lease, Utc::now());
        let Some(acquired) = self.check(TransitionKind::Acquire.as_str(), result) else {
            return;
        };
        // As the server does, once the builds are acquired.
        let refreshed = self
            .tx()
            .refresh_pipelines(&acquired.stale_pipelines, Utc::now());
        self.check(TransitionKind::Refresh.as_str(), refreshed);
        for build in acquired.builds {
            *self
                .shared
                .claims
                .lock()
                .expect("claims lock")
                .entry(build.id)
                .or_default() += 1;
            if self.rng.u32(0..5) == 0 {
                // The answer was lost on its way: this runner never heard of the build, and the
                // reaper hands it back once its acknowledgement lease passes.
                continue;
            }
            // A runner acknowledges a build first thing, as lockstep-worker does.
            let beat = self
                .tx()
                .heartbeat(build.id, runner, Duration::from_secs(2), Utc::now());
            if self
                .check(TransitionKind::Heartbeat.as_str(), beat)
                .is_some()
            {
                self.held.push(build.id);
            }
        }
    }

    /// Records the claims the reaper handed back, so that their next claim is no double hold.
    fn count_requeues(&self, applied: &Applied) {
        let mut requeues = self.shared.requeues.lock().expect("requeues lock");
        for change in &applied.changes {
            if change.to.is_queued_again(change.from) {
                *requeues.entry(change.id).or_default() += 1;
            }
        }
    }

    fn take_held(&mut self) -> Option<BuildId> {
        if self.held.is_empty() {
            return None;
        }
        let i = self.rng.usize(..self.held.len());
        Some(self.held.swap_remove(i))
    }

    fn finish(&mut self, result: BuildResult) {
        let Some(build) = self.take_held() else {
            return;
        };
        let runner = self.runner;
        // Half the reports carry an account of the log, as lockstep-worker's do: the check row
        // is written last in the finish transaction.
        let outcome = if self.rng.bool() {
            let account = LogAccount {
                bytes: 0,
                sha256: [0; 32],
            };
            self.tx()
                .finish_with_log(build, runner, result, &account, Utc::now())
        } else {
            self.tx().finish(build, runner, result, Utc::now())
        };
        self.check(finish_kind(result).as_str(), outcome);
    }

    /// Reports several held builds at once, in random order, with mixed results.
    fn finish_all(&mut self) {
        let count = self.rng.usize(1..=self.held.len().min(6));
        let mut reports: Vec<(BuildId, BuildResult)> = Vec::with_capacity(count);
        while reports.len() < count
            && let Some(build) = self.take_held()
        {
            let result = if self.rng.bool() {
                BuildResult::Success
            } else {
                BuildResult::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code: Some(1),
                }
            };
            reports.push((build, result));
        }
        let runner = self.runner;
        let answers = self.tx().finish_all(runner, &reports, Utc::now());
        // Not a transition kind of its own: one call reporting builds of several kinds.
        for answer in self.check("finish_all", answers).unwrap_or_default() {
            self.check("finish_all", answer);
        }
    }

    fn heartbeat(&mut self) {
        let Some(build) = self.take_held() else {
            return;
        };
        let runner = self.runner;
        let lease = Duration::from_secs(2);
        let beat = self.tx().heartbeat(build, runner, lease, Utc::now());
        match self.check(TransitionKind::Heartbeat.as_str(), beat) {
            Some(beat) if beat.status == BuildStatus::Canceling => {
                let outcome = self
                    .tx()
                    .finish(build, runner, BuildResult::Canceled, Utc::now());
                self.check(TransitionKind::Abort.as_str(), outcome);
            }
            Some(_) => self.held.push(build),
            None => {}
        }
    }

    /// Records artifacts and a cache for a held build, as an upload would after the script.
    fn store_archives(&mut self) {
        let Some(build) = self.take_held() else {
            return;
        };
        let runner = self.runner;
        let unique = format!("storm/{}/{}", build.0, self.rng.u64(..));
        let sha256 = [7u8; 32];
        let archive = NewArchive {
            name: None,
            object_key: &unique,
            size: 1,
            sha256: &sha256,
            entries: &[],
        };
        let stored = self
            .tx()
            .store_artifact(build, runner, &archive, None, Utc::now());
        if self
            .check(TransitionKind::StoreArtifacts.as_str(), stored)
            .is_none()
        {
            return;
        }
        let cache_key = format!("storm-{}", self.rng.u32(0..3));
        let cache_object = format!("{unique}/cache");
        let archive = NewArchive {
            object_key: &cache_object,
            ..archive
        };
        let stored = self
            .tx()
            .store_cache(build, runner, &cache_key, &archive, Utc::now());
        if self
            .check(TransitionKind::StoreCache.as_str(), stored)
            .is_some()
        {
            self.held.push(build);
        }
    }

    /// Plays a manual build of a random pipeline, if it has one waiting.
    fn play(&mut self) {
        let Some(pipeline) = self.some_pipeline() else {
            return;
        };
        let view = load_pipeline(&mut self.conn, pipeline);
        let Some(view) = self.check("load_pipeline", view) else {
            return;
        };
        let manual = view
            .builds
            .iter()
            .find(|b| b.status == BuildStatus::Manual)
            .map(|b| b.id);
        if let Some(build) = manual {
            let result = self.tx().play_build(build, Utc::now());
            self.check(TransitionKind::PlayBuild.as_str(), result);
        }
    }

    fn some_pipeline(&mut self) -> Option<PipelineId> {
        let working = self.shared.working.lock().expect("working lock");
        (!working.is_empty()).then(|| working[self.rng.usize(..working.len())].0)
    }

    fn some_build(&mut self) -> Option<BuildId> {
        let working = self.shared.working.lock().expect("working lock");
        if working.is_empty() {
            return None;
        }
        let builds = &working[self.rng.usize(..working.len())].1;
        Some(builds[self.rng.usize(..builds.len())])
    }

    fn on_pipeline(
        &mut self,
        kind: TransitionKind,
        run: impl FnOnce(&mut Transitions<'_>, PipelineId) -> Result<Applied, StorageError>,
    ) {
        if let Some(pipeline) = self.some_pipeline() {
            let result = run(&mut self.tx(), pipeline);
            if let Some(applied) = self.check(kind.as_str(), result) {
                self.remember(&applied);
            }
        }
    }

    fn on_build(
        &mut self,
        kind: TransitionKind,
        run: impl FnOnce(&mut Transitions<'_>, BuildId) -> Result<Applied, StorageError>,
    ) {
        if let Some(build) = self.some_build() {
            let result = run(&mut self.tx(), build);
            if let Some(applied) = self.check(kind.as_str(), result) {
                self.remember(&applied);
            }
        }
    }

    /// New attempts join their pipeline's list, so later operations can pick them.
    fn remember(&self, applied: &Applied) {
        if applied.new_builds.is_empty() {
            return;
        }
        let mut working = self.shared.working.lock().expect("working lock");
        if let Some((_, builds)) = working
            .iter_mut()
            .find(|(id, _)| *id == applied.pipeline_id)
        {
            builds.extend(applied.new_builds.iter().map(|(_, new)| *new));
        }
    }

    /// Counts a refusal by the domain (a heartbeat or report finding its lease lost to the
    /// reaper among them) as expected and anything else as an error, recorded with the call
    /// that failed, so that a failure names its transition: `call` is the transition kind's
    /// name as the storage's counters spell it (`retry_pipeline`), or what else the storm
    /// called (`finish_all`, `load_pipeline`).
    fn check<T>(&self, call: &str, result: Result<T, StorageError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(StorageError::Transition(_)) => {
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(other) => {
                self.shared
                    .errors
                    .lock()
                    .expect("errors lock")
                    .push(unexpected(call, &other));
                None
            }
        }
    }
}

/// An unexpected error as the report prints it: the call, then what went wrong.
fn unexpected(call: &str, error: &StorageError) -> String {
    format!("{call}: {error}")
}

/// The kind a report counts as, as `Transitions::finish` counts it.
fn finish_kind(result: BuildResult) -> TransitionKind {
    match result {
        BuildResult::Success => TransitionKind::Succeed,
        BuildResult::Failed { .. } => TransitionKind::Fail,
        BuildResult::Canceled => TransitionKind::Abort,
    }
}

/// Checks the resource-group invariants, which hold in every committed state, every half
/// second while the storm runs; returns what broke, each marked as seen during the storm.
fn watch_groups(
    url: &str,
    deadline: Instant,
) -> anyhow::Result<Vec<lockstep_storage_pg::Violation>> {
    let mut conn = PgConnection::establish(url)?;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        for mut violation in lockstep_storage_pg::check_group_invariants(&mut conn)? {
            violation.detail = format!("during the storm: {}", violation.detail);
            seen.push(violation);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(seen)
}

#[derive(QueryableByName)]
struct Deadlocks {
    #[diesel(sql_type = BigInt)]
    deadlocks: i64,
}

/// `pg_stat_database.deadlocks` of this database, read past this session's stats cache.
fn server_deadlocks(conn: &mut PgConnection) -> anyhow::Result<i64> {
    diesel::sql_query("SELECT pg_stat_clear_snapshot()").execute(conn)?;
    let row = diesel::sql_query(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result::<Deadlocks>(conn)?;
    Ok(row.deadlocks)
}

/// Backends report their counters when they go idle or exit; the workers have exited, so wait
/// until the counter stops moving (it normally does not move at all) before reading it.
fn settled_deadlocks(conn: &mut PgConnection) -> anyhow::Result<i64> {
    let mut last = server_deadlocks(conn)?;
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        let now = server_deadlocks(conn)?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_storage_pg::SqlState;

    /// The one intermittent failure the storm ever showed said only "gave up after 5 attempts:
    /// rows changed while planning"; the report now says which transition gave up.
    #[test]
    fn an_unexpected_error_names_its_transition() {
        let gave_up = StorageError::Contention {
            attempts: 5,
            last: SqlState::PlanChanged,
        };
        assert_eq!(
            unexpected(TransitionKind::RetryPipeline.as_str(), &gave_up),
            "retry_pipeline: gave up after 5 attempts: rows changed while planning"
        );
    }
}
