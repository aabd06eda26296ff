//! The use cases: every state transition of pipelines, builds and deployments, each one
//! transaction that commits whole or not at all.

pub(crate) mod acquire;
pub(crate) mod allocate;
mod create;
pub(crate) use create::array_literal;
mod expire;
mod pipeline;
pub(crate) mod snapshot;

use crate::locking::{Busy, ClaimRequest, PipelineOf};
use crate::retry::{planned_transaction, transaction};
use crate::{LogAccount, ResourceGroupView, StorageError, TransitionKind, TxStats};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use lockstep_domain::{
    BuildChange, BuildId, BuildResult, BuildStatus, DeploymentId, DeploymentStatus, PipelineEvent,
    PipelineId, PipelineStatus, ProjectId, RunnerId,
};
use pipeline::Answer;
use std::time::Duration;

pub use allocate::GroupSettings;
pub use create::NewPipeline;

/// What a pipeline transition changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub pipeline_id: PipelineId,
    /// The pipeline's status after the transition.
    pub pipeline_status: PipelineStatus,
    /// Changed builds in ascending id.
    pub changes: Vec<BuildChange>,
    /// New attempts: (the build copied, the new build).
    pub new_builds: Vec<(BuildId, BuildId)>,
    /// Deployments updated or inserted.
    pub deployments_changed: usize,
    /// Whether the pipeline's status changed.
    pub pipeline_changed: bool,
}

impl Applied {
    fn unchanged(pipeline_id: PipelineId, pipeline_status: PipelineStatus) -> Self {
        Self {
            pipeline_id,
            pipeline_status,
            changes: Vec::new(),
            new_builds: Vec::new(),
            deployments_changed: 0,
            pipeline_changed: false,
        }
    }

    /// Nothing was written: the call repeated one already applied, or found nothing to do.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && self.new_builds.is_empty() && !self.pipeline_changed
    }
}

/// A new pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPipeline {
    pub id: PipelineId,
    pub status: PipelineStatus,
    /// Build ids in job order.
    pub builds: Vec<BuildId>,
    pub deployments: usize,
    /// The older pipelines of its ref it canceled, whole or in part, in ascending id.
    pub superseded: Vec<PipelineId>,
}

/// An acquired build with everything a runner needs, read in the claim statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredBuild {
    pub id: BuildId,
    pub pipeline_id: PipelineId,
    pub project_id: ProjectId,
    pub git_ref: String,
    pub sha: Option<String>,
    /// The pipeline's status as the claim saw it.
    pub pipeline_status: PipelineStatus,
    pub name: String,
    pub stage: String,
    pub script: Vec<String>,
    /// The environment the job starts, prepares or stops (`details.environment_action`).
    pub environment: Option<String>,
    pub details: crate::JobDetails,
    /// The archives of the jobs it depends on, in the order of its dependencies.
    pub fetch: Vec<crate::FetchArtifact>,
    pub timeout_seconds: u32,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    /// Only a job that starts its environment has one.
    pub deployment: Option<AcquiredDeployment>,
}

/// Builds just acquired, and the pipelines whose status must catch up with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// In ascending id; empty when nothing was pending for the runner.
    pub builds: Vec<AcquiredBuild>,
    /// Pipelines the claim saw as not yet `running`, in ascending id; pass them to
    /// [`Transitions::refresh_pipelines`].
    pub stale_pipelines: Vec<PipelineId>,
}

/// The deployment of a claimed build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredDeployment {
    pub id: DeploymentId,
    pub environment: String,
    pub status: DeploymentStatus,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// `running`, or `canceling` when the runner should stop the job.
    pub status: BuildStatus,
    pub lease_expires_at: DateTime<Utc>,
}

/// The transitions, on one connection, counting into one [`TxStats`].
pub struct Transitions<'a> {
    conn: &'a mut PgConnection,
    stats: &'a TxStats,
}

impl std::fmt::Debug for Transitions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transitions").finish_non_exhaustive()
    }
}

impl<'a> Transitions<'a> {
    pub fn new(conn: &'a mut PgConnection, stats: &'a TxStats) -> Self {
        Self { conn, stats }
    }

    /// Creates a pipeline with its builds and deployments; builds whose needs allow start pending
    /// (or, in a resource group, waiting for a slot). In the same transaction the older,
    /// unfinished pipelines of its ref lose what its `auto_cancel` rule allows, and carry
    /// `auto_canceled_by` if they lost anything.
    pub fn create_pipeline(
        &mut self,
        new: &NewPipeline<'_>,
        now: DateTime<Utc>,
    ) -> Result<CreatedPipeline, StorageError> {
        let kind = TransitionKind::CreatePipeline;
        let created = planned_transaction(self.conn, self.stats, kind, |conn, planning| {
            create::create(conn, new, planning, now)
        })?;
        self.stats.committed(kind);
        for _ in &created.superseded {
            self.stats.committed(TransitionKind::AutoCancel);
        }
        Ok(created)
    }

    /// Acquires up to `limit` pending builds whose tags the runner has, leased for
    /// `acknowledge_within` (the acknowledgement lease: the runner's first heartbeat, log
    /// append or report must come before it passes, or the build goes back to pending): one
    /// transaction around the claim statement (`locking/claim.sql`), which never locks a
    /// pipeline. A pipeline the claim saw as not yet `running` comes back in
    /// [`Acquired::stale_pipelines`]; pass them to [`Self::refresh_pipelines`] when it suits
    /// (the server does it beside its answer to the runner, off the latency path).
    pub fn acquire(
        &mut self,
        runner: RunnerId,
        runner_tags: &[String],
        limit: u32,
        acknowledge_within: Duration,
        now: DateTime<Utc>,
    ) -> Result<Acquired, StorageError> {
        let request = ClaimRequest {
            runner_id: runner.0,
            runner_tags,
            limit: i64::from(limit),
            now,
            lease_expires_at: now + acknowledge_within,
        };
        let kind = TransitionKind::Acquire;
        let builds = transaction(self.conn, self.stats, kind, |conn| {
            acquire::claim(conn, &request)
        })?;
        for _ in &builds {
            self.stats.committed(kind);
        }
        let mut stale_pipelines: Vec<PipelineId> = builds
            .iter()
            .filter(|b| b.pipeline_status != PipelineStatus::Running)
            .map(|b| b.pipeline_id)
            .collect();
        stale_pipelines.sort_unstable();
        stale_pipelines.dedup();
        Ok(Acquired {
            builds,
            stale_pipelines,
        })
    }

    /// Extends the lease of a build the runner holds (the first heartbeat acknowledges the
    /// claim); tells it whether to stop.
    pub fn heartbeat(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Heartbeat, StorageError> {
        let kind = TransitionKind::Heartbeat;
        let beat = transaction(self.conn, self.stats, kind, |conn| {
            acquire::heartbeat(conn, build, runner, now + lease, now)
        })?;
        self.stats.committed(kind);
        Ok(beat)
    }

    /// Appends to the log of a build the runner holds, as [`crate::append_log`] does; an append
    /// to a claim not yet acknowledged acknowledges it first, as a heartbeat would (extending
    /// the lease by `lease`), then appends. Returns where the log ends now.
    pub fn append_log(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        offset: u64,
        data: &[u8],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let appended = crate::logs::append(self.conn, build, runner, offset, data, true)?;
        if appended.acknowledged {
            return Ok(appended.end);
        }
        // Acknowledged first, then appended: a chunk never lands on a claim being handed back.
        self.heartbeat(build, runner, lease, now)?;
        Ok(crate::logs::append(self.conn, build, runner, offset, data, true)?.end)
    }

    /// Records the archive the runner holding `build` uploaded as the build's artifacts (its
    /// name and expiry from the job's `artifacts`, `default_expiry` when it gives none); a
    /// second upload replaces the first. Refused like a heartbeat once the runner no longer
    /// holds the build, so nothing is recorded for a build that has ended.
    pub fn store_artifact(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        archive: &crate::NewArchive<'_>,
        default_expiry: Option<chrono::Duration>,
        now: DateTime<Utc>,
    ) -> Result<crate::Stored<crate::ArtifactView>, StorageError> {
        let kind = TransitionKind::StoreArtifacts;
        let stored = transaction(self.conn, self.stats, kind, |conn| {
            crate::artifacts::store_artifact(conn, build, runner, archive, default_expiry, now)
        })?;
        self.stats.committed(kind);
        Ok(stored)
    }

    /// Records the archive the runner holding `build` uploaded as its project's cache `key`;
    /// the last writer wins.
    pub fn store_cache(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        key: &str,
        archive: &crate::NewArchive<'_>,
        now: DateTime<Utc>,
    ) -> Result<crate::Stored<crate::CacheView>, StorageError> {
        let kind = TransitionKind::StoreCache;
        let stored = transaction(self.conn, self.stats, kind, |conn| {
            crate::artifacts::store_cache(conn, build, runner, key, archive, now)
        })?;
        self.stats.committed(kind);
        Ok(stored)
    }

    /// The runner holding `build` reports its result. Repeating the same report is harmless.
    pub fn finish(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        result: BuildResult,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_build(
            build,
            finish_kind(result),
            PipelineEvent::Finish {
                build,
                runner,
                result,
            },
            now,
        )
    }

    /// [`Self::finish`], with the runner's account of the build's log. The stored log is hashed
    /// first, holding no lock; the check is then written in the finish transaction, so the build
    /// never shows finished without it and a refused report writes none.
    pub fn finish_with_log(
        &mut self,
        build: BuildId,
        runner: RunnerId,
        result: BuildResult,
        log: &LogAccount,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        let stored = crate::logs::stored_digest(self.conn, build)?;
        let kind = finish_kind(result);
        let event = PipelineEvent::Finish {
            build,
            runner,
            result,
        };
        let applied = planned_transaction(self.conn, self.stats, kind, |conn, planning| {
            let request = (PipelineOf::Build(build), event);
            let applied = pipeline::run_one(conn, request, planning, now)?;
            crate::logs::record_check(conn, build, log, &stored)?;
            Ok(applied)
        })?;
        if !applied.is_noop() {
            self.stats.committed(kind);
        }
        Ok(applied)
    }

    /// The runner reports several results at once. Each report is answered as [`Self::finish`]
    /// would answer it alone: reports of one pipeline are applied together, in the order given,
    /// and a refused report (another runner's build, say) changes nothing and does not stop the
    /// others. It takes at most two transactions: the pipelines free at once, then those another
    /// transaction held. On `Err` (the database failed) some reports may have been applied;
    /// sending them all again is safe, as a repeated report changes nothing.
    pub fn finish_all(
        &mut self,
        runner: RunnerId,
        reports: &[(BuildId, BuildResult)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Applied, StorageError>>, StorageError> {
        let requests: Vec<pipeline::Request> = reports
            .iter()
            .map(|&(build, result)| {
                let event = PipelineEvent::Finish {
                    build,
                    runner,
                    result,
                };
                (PipelineOf::Build(build), event)
            })
            .collect();
        let kind = reports
            .first()
            .map_or(TransitionKind::Succeed, |(_, result)| finish_kind(*result));
        let answers = self.run_batch(kind, &requests, now)?;
        // Answers of one pipeline share its changes: count each finished build once.
        let mut counted = std::collections::HashSet::new();
        for ((build, result), answer) in reports.iter().zip(&answers) {
            if answer
                .as_ref()
                .is_ok_and(|applied| applied.changes.iter().any(|c| c.id == *build))
                && counted.insert(*build)
            {
                self.stats.committed(finish_kind(*result));
            }
        }
        Ok(answers)
    }

    /// Cancels a build: not yet running, it is canceled; running, it is asked to stop.
    pub fn cancel_build(
        &mut self,
        build: BuildId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_build(
            build,
            TransitionKind::CancelBuild,
            PipelineEvent::CancelBuild(build),
            now,
        )
    }

    /// Skips a build that has not started.
    pub fn skip_build(
        &mut self,
        build: BuildId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_build(
            build,
            TransitionKind::SkipBuild,
            PipelineEvent::SkipBuild(build),
            now,
        )
    }

    /// Starts a manual build: it becomes pending, and a finished pipeline opens again.
    pub fn play_build(
        &mut self,
        build: BuildId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_build(
            build,
            TransitionKind::PlayBuild,
            PipelineEvent::PlayBuild(build),
            now,
        )
    }

    /// Runs a finished build again as a new attempt, with the skipped builds after it.
    pub fn retry_build(
        &mut self,
        build: BuildId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_build(
            build,
            TransitionKind::RetryBuild,
            PipelineEvent::RetryBuild(build),
            now,
        )
    }

    /// Cancels every build of the pipeline that has not finished.
    pub fn cancel_pipeline(
        &mut self,
        pipeline: PipelineId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_pipeline(
            pipeline,
            TransitionKind::CancelPipeline,
            PipelineEvent::CancelPipeline,
            now,
        )
    }

    /// Retries every failed or canceled build of the pipeline.
    pub fn retry_pipeline(
        &mut self,
        pipeline: PipelineId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_pipeline(
            pipeline,
            TransitionKind::RetryPipeline,
            PipelineEvent::RetryPipeline,
            now,
        )
    }

    /// Brings a pipeline's status up to date with its builds.
    pub fn refresh_pipeline(
        &mut self,
        pipeline: PipelineId,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.on_pipeline(
            pipeline,
            TransitionKind::Refresh,
            PipelineEvent::Refresh,
            now,
        )
    }

    /// Sets a project's resource group up (its mode, its number of slots), creating it when
    /// absent, so that a group can be set up before its first pipeline. Slots a higher limit
    /// (or another mode) frees go to the builds in line at once, in the same transaction.
    pub fn configure_resource_group(
        &mut self,
        project: ProjectId,
        name: &str,
        settings: GroupSettings,
        now: DateTime<Utc>,
    ) -> Result<ResourceGroupView, StorageError> {
        let kind = TransitionKind::ConfigureResourceGroup;
        let view = transaction(self.conn, self.stats, kind, |conn| {
            allocate::configure(conn, project, name, settings, now)
        })?;
        self.stats.committed(kind);
        Ok(view)
    }

    /// Brings several pipelines' statuses up to date, in at most two transactions (see
    /// [`Self::finish_all`]). A pipeline that does not exist is left out of the answer.
    pub fn refresh_pipelines(
        &mut self,
        pipelines: &[PipelineId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Applied>, StorageError> {
        if pipelines.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<pipeline::Request> = pipelines
            .iter()
            .map(|&id| (PipelineOf::Id(id), PipelineEvent::Refresh))
            .collect();
        let kind = TransitionKind::Refresh;
        let answers = self.run_batch(kind, &requests, now)?;
        let applied: Vec<Applied> = answers.into_iter().filter_map(Result::ok).collect();
        for _ in applied.iter().filter(|a| !a.is_noop()) {
            self.stats.committed(kind);
        }
        Ok(applied)
    }

    /// Fails (or, when asked to stop, cancels) builds whose lease passed before `now`, hands
    /// claims never acknowledged back to the queue, and cancels builds asked to stop before
    /// `now - cancel_grace` whose runner never confirmed; in at most `max_pipelines` pipelines,
    /// one transaction each. Automatic retries follow the job's `retry`. Safe to run from
    /// several processes at once.
    pub fn expire_leases(
        &mut self,
        now: DateTime<Utc>,
        cancel_grace: Duration,
        max_pipelines: u32,
    ) -> Result<Vec<Applied>, StorageError> {
        let unconfirmed_before = now - cancel_grace;
        let pipelines = expire::pipelines_with_expired_leases(
            self.conn,
            now,
            unconfirmed_before,
            i64::from(max_pipelines),
        )?;
        let mut applied = Vec::new();
        for pipeline in pipelines {
            let result = self.on_pipeline(
                pipeline,
                TransitionKind::ExpireLeases,
                PipelineEvent::ExpireLeases {
                    now,
                    unconfirmed_before,
                },
                now,
            )?;
            if !result.is_noop() {
                applied.push(result);
            }
        }
        Ok(applied)
    }

    fn on_build(
        &mut self,
        build: BuildId,
        kind: TransitionKind,
        event: PipelineEvent,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.run(PipelineOf::Build(build), kind, event, now)
    }

    fn on_pipeline(
        &mut self,
        pipeline: PipelineId,
        kind: TransitionKind,
        event: PipelineEvent,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        self.run(PipelineOf::Id(pipeline), kind, event, now)
    }

    /// Runs a batch in two passes: first, in one transaction, every request whose pipeline no
    /// other transaction holds, without waiting for any; then, in a second, the rest, waiting
    /// for their pipelines in the canonical order. Batches that share pipelines (runners
    /// reporting neighbouring builds) then pass each other instead of queueing up behind one
    /// another's commits. Each pipeline's requests still apply together, in one transaction.
    fn run_batch(
        &mut self,
        kind: TransitionKind,
        requests: &[pipeline::Request],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Applied, StorageError>>, StorageError> {
        let mut answers = planned_transaction(self.conn, self.stats, kind, |conn, planning| {
            pipeline::run_all(conn, requests, Busy::Skip, planning, now)
        })?;
        let busy: Vec<usize> = (0..answers.len())
            .filter(|&i| matches!(answers[i], Answer::Busy))
            .collect();
        if !busy.is_empty() {
            let rest: Vec<pipeline::Request> = busy.iter().map(|&i| requests[i]).collect();
            let waited = planned_transaction(self.conn, self.stats, kind, |conn, planning| {
                pipeline::run_all(conn, &rest, Busy::Wait, planning, now)
            })?;
            for (i, answer) in busy.into_iter().zip(waited) {
                answers[i] = answer;
            }
        }
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Applied(applied) => Ok(applied),
                Answer::Refused(refused) => Err(refused),
                Answer::Busy => Err(StorageError::corrupt(
                    "a transition that waited for its pipeline went unanswered",
                )),
            })
            .collect())
    }

    fn run(
        &mut self,
        target: PipelineOf,
        kind: TransitionKind,
        event: PipelineEvent,
        now: DateTime<Utc>,
    ) -> Result<Applied, StorageError> {
        let applied = planned_transaction(self.conn, self.stats, kind, |conn, planning| {
            pipeline::run_one(conn, (target, event), planning, now)
        })?;
        if !applied.is_noop() {
            self.stats.committed(kind);
        }
        Ok(applied)
    }
}

fn finish_kind(result: BuildResult) -> TransitionKind {
    match result {
        BuildResult::Success => TransitionKind::Succeed,
        BuildResult::Failed { .. } => TransitionKind::Fail,
        BuildResult::Canceled => TransitionKind::Abort,
    }
}
