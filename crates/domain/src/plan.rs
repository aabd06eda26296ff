//! Transitions on a whole pipeline: from a snapshot of its builds and an event to a [`Plan`],
//! the data storage applies in one transaction.
//!
//! Only the latest attempt of each job takes part in processing; older attempts are history.

use crate::definition::{AutoCancel, ValidPipeline, When};
use crate::graph::{JobSet, Needs};
use crate::ids::{BuildId, ResourceGroupId, RunnerId};
use crate::lease::check_reporter;
use crate::retry::{AllowFailure, RetryPolicy};
use crate::status::{BuildStatus, DeploymentStatus, PipelineStatus};
use crate::transition::{BuildEvent, IllegalTransition, Step, next};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Why a build failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The script exited with a non-zero code.
    ScriptFailure,
    /// The runner stopped sending heartbeats and the lease passed. Also on a build the reaper
    /// canceled because its runner never confirmed the cancel.
    RunnerLost,
    /// The job ran longer than its `timeout_seconds`.
    JobTimeout,
    /// The runner could not run the job (for example it could not start a shell).
    RunnerSystemFailure,
}

impl FailureReason {
    pub const ALL: [Self; 4] = [
        Self::ScriptFailure,
        Self::RunnerLost,
        Self::JobTimeout,
        Self::RunnerSystemFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScriptFailure => "script_failure",
            Self::RunnerLost => "runner_lost",
            Self::JobTimeout => "job_timeout",
            Self::RunnerSystemFailure => "runner_system_failure",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// What a runner reports when a build ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildResult {
    Success,
    Failed {
        reason: FailureReason,
        exit_code: Option<i32>,
    },
    /// The runner stopped the job because it was canceled.
    Canceled,
}

impl BuildResult {
    /// The status a build ends in when its runner reports this, whether it was running or
    /// asked to stop.
    pub fn status(self) -> BuildStatus {
        match self {
            Self::Success => BuildStatus::Success,
            Self::Failed { .. } => BuildStatus::Failed,
            Self::Canceled => BuildStatus::Canceled,
        }
    }

    fn event(self) -> BuildEvent {
        match self {
            Self::Success => BuildEvent::Succeed,
            Self::Failed { .. } => BuildEvent::Fail,
            Self::Canceled => BuildEvent::Abort,
        }
    }
}

/// One build row as storage read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildState {
    pub id: BuildId,
    pub name: String,
    pub stage_idx: u32,
    pub needs: Option<Vec<String>>,
    pub when: When,
    pub allow_failure: AllowFailure,
    pub status: BuildStatus,
    pub attempt: u32,
    pub retry: RetryPolicy,
    pub runner_id: Option<RunnerId>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Its runner has shown it received the build (a heartbeat, a log append or a report).
    pub acknowledged: bool,
    /// When it was asked to stop, while `canceling`.
    pub canceling_since: Option<DateTime<Utc>>,
    /// Why it failed, once it has.
    pub failure_reason: Option<FailureReason>,
    /// The exit code it failed with, if the runner gave one.
    pub exit_code: Option<i32>,
    pub has_deployment: bool,
    /// The resource group whose slot it must hold to run, if any.
    pub resource_group: Option<ResourceGroupId>,
    /// Safe to stop when a newer pipeline on the same ref makes it redundant.
    pub interruptible: bool,
}

/// A pipeline and all its build rows, every attempt included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineState {
    pub status: PipelineStatus,
    pub builds: Vec<BuildState>,
}

/// Something that happens to a pipeline or one of its builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineEvent {
    /// The runner holding `build` reports how it ended.
    Finish {
        build: BuildId,
        runner: RunnerId,
        result: BuildResult,
    },
    CancelBuild(BuildId),
    SkipBuild(BuildId),
    /// Start a manual build; a finished pipeline opens again.
    PlayBuild(BuildId),
    CancelPipeline,
    /// Run a finished build again as a new attempt.
    RetryBuild(BuildId),
    /// Retry every failed or canceled build.
    RetryPipeline,
    /// Builds whose lease passed before `now` lost their runner (or, never acknowledged, wait
    /// for another); builds asked to stop before `unconfirmed_before` whose runner never
    /// confirmed are canceled without it.
    ExpireLeases {
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
    },
    /// Nothing happened; bring the pipeline's status up to date (after an acquire).
    Refresh,
    /// A newer pipeline on the same ref was created with this rule: cancel what it allows
    /// (nothing, when the rule leaves this pipeline alone).
    Supersede(AutoCancel),
}

/// A change to an existing build row, with the deployment status that must go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildChange {
    pub id: BuildId,
    pub from: BuildStatus,
    pub to: BuildStatus,
    pub failure_reason: Option<FailureReason>,
    pub exit_code: Option<i32>,
    /// `Some` when the build has a deployment whose status must change: the status it takes.
    pub deployment: Option<DeploymentStatus>,
}

/// A new row for a job: a copy of `copy_of` with a higher attempt number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    pub copy_of: BuildId,
    pub attempt: u32,
    pub status: BuildStatus,
    /// Made by the job's `retry` rule after a failure, not by a person.
    pub automatic: bool,
    /// `Some` when the copied build had a deployment: the new one's status.
    pub deployment: Option<DeploymentStatus>,
}

/// Everything one transition changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    changes: Vec<BuildChange>,
    new_attempts: Vec<NewAttempt>,
    pipeline_from: PipelineStatus,
    pipeline_to: PipelineStatus,
}

impl Plan {
    fn unchanged(status: PipelineStatus) -> Self {
        Self {
            changes: Vec::new(),
            new_attempts: Vec::new(),
            pipeline_from: status,
            pipeline_to: status,
        }
    }

    /// Changes to existing builds, in ascending id order (the order storage locks them in).
    pub fn changes(&self) -> &[BuildChange] {
        &self.changes
    }

    pub fn new_attempts(&self) -> &[NewAttempt] {
        &self.new_attempts
    }

    /// The pipeline's status after the transition.
    pub fn pipeline_status(&self) -> PipelineStatus {
        self.pipeline_to
    }

    pub fn pipeline_changed(&self) -> bool {
        self.pipeline_from != self.pipeline_to
    }

    /// Nothing to write: the event was a repeat of one already applied.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty() && self.new_attempts.is_empty() && !self.pipeline_changed()
    }
}

/// Why a transition was refused. Nothing is written when a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("build {0} is not part of this pipeline")]
    UnknownBuild(BuildId),
    #[error("build {build}: {source}")]
    Illegal {
        build: BuildId,
        #[source]
        source: IllegalTransition,
    },
    #[error("build {build} is not held by runner {runner}")]
    NotHolder { build: BuildId, runner: RunnerId },
    /// The runner's own build ended without it (its lease passed, say): the runner should stop
    /// the job and drop it.
    #[error("build {build} is {status}: the runner no longer holds it")]
    LeaseLost { build: BuildId, status: BuildStatus },
    #[error("build {build} was already retried as build {newer}")]
    AlreadyRetried { build: BuildId, newer: BuildId },
    #[error("build {build} is {status}; only success, failed or canceled builds can be retried")]
    NotRetryable { build: BuildId, status: BuildStatus },
    #[error("the pipeline is {status} and cannot be canceled")]
    PipelineFinished { status: PipelineStatus },
    #[error("the pipeline's builds are inconsistent: {0}")]
    InvalidSnapshot(String),
}

/// The statuses a new pipeline's builds start in, in job order, and the pipeline's status.
pub fn plan_new_pipeline(pipeline: &ValidPipeline) -> (Vec<BuildStatus>, PipelineStatus) {
    let mut status = vec![BuildStatus::Created; pipeline.jobs().len()];
    pipeline.graph().settle(&mut status);
    let pipeline_status = pipeline.graph().pipeline_status(&status, false);
    (status, pipeline_status)
}

/// Decides what `event` does to the pipeline in `state`.
pub fn plan(state: &PipelineState, event: &PipelineEvent) -> Result<Plan, TransitionError> {
    let (plan, outcomes) = plan_all(state, std::slice::from_ref(event))?;
    match outcomes.into_iter().next() {
        Some(Err(refused)) => Err(refused),
        _ => Ok(plan),
    }
}

/// Decides what `events` do to the pipeline in `state`, one after another, as one transition:
/// each event sees the builds as the events before it left them (a finish that lets the next
/// stage start is settled before the next event). An event that is refused changes nothing and
/// does not stop the others; its error is in the outcome at its index.
///
/// The checks that concern the pipeline as a whole (canceling a finished pipeline) and the
/// runner holding a build see `state` as it was read, so a batch should not mix them with the
/// events that would change their answer.
pub fn plan_all(
    state: &PipelineState,
    events: &[PipelineEvent],
) -> Result<(Plan, Vec<Result<(), TransitionError>>), TransitionError> {
    let mut work = Work::new(state)?;
    let outcomes = events
        .iter()
        .map(|event| {
            let before = work.checkpoint();
            let outcome = work.apply(event);
            match outcome {
                Ok(()) => work.settle(),
                // Some events (cancel a pipeline) step several builds before one refuses.
                Err(_) => work.restore(before),
            }
            outcome
        })
        .collect::<Vec<_>>();
    if outcomes.iter().all(Result::is_err) {
        // Nothing was accepted, so nothing changes: not even a status that is out of date.
        return Ok((Plan::unchanged(state.status), outcomes));
    }
    Ok((work.into_plan(), outcomes))
}

/// Created builds that processing should already have decided. Used by invariant checks: after
/// every committed transition this is empty.
pub fn undecided_builds(state: &PipelineState) -> Result<Vec<BuildId>, TransitionError> {
    let work = Work::new(state)?;
    let status = work.slot_status_vec();
    Ok(work
        .jobs
        .undecided(&status)
        .into_iter()
        .filter_map(|slot| work.row_of(slot).map(|row| state.builds[row].id))
        .collect())
}

/// Where the latest attempt of a job lives during planning.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Row(usize),
    New(usize),
}

#[derive(Debug, Clone)]
struct NewRow {
    copy_of: usize,
    attempt: u32,
    status: BuildStatus,
    automatic: bool,
}

/// The parts of [`Work`] an event changes.
struct Checkpoint {
    status: Vec<BuildStatus>,
    failure: Vec<Option<(FailureReason, Option<i32>)>>,
    new: Vec<NewRow>,
    slots: Vec<Slot>,
}

/// Working state of one planning run.
struct Work<'a> {
    builds: &'a [BuildState],
    pipeline_from: PipelineStatus,
    status: Vec<BuildStatus>,
    failure: Vec<Option<(FailureReason, Option<i32>)>>,
    new: Vec<NewRow>,
    slots: Vec<Slot>,
    slot_of_row: HashMap<usize, usize>,
    jobs: JobSet,
}

impl<'a> Work<'a> {
    fn new(state: &'a PipelineState) -> Result<Self, TransitionError> {
        let builds = state.builds.as_slice();
        let mut latest: Vec<usize> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (row, build) in builds.iter().enumerate() {
            match by_name.get(build.name.as_str()) {
                Some(&slot) if builds[latest[slot]].attempt >= build.attempt => {}
                Some(&slot) => latest[slot] = row,
                None => {
                    by_name.insert(&build.name, latest.len());
                    latest.push(row);
                }
            }
        }
        let needs = latest
            .iter()
            .map(|&row| resolve_needs(&builds[row], &by_name))
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = JobSet::new(
            latest.iter().map(|&row| builds[row].stage_idx).collect(),
            needs,
            latest.iter().map(|&row| builds[row].when).collect(),
            latest
                .iter()
                .map(|&row| builds[row].allow_failure.allows(builds[row].exit_code))
                .collect(),
        )
        .map_err(|_| {
            TransitionError::InvalidSnapshot("the needs of the builds form a cycle".into())
        })?
        .with_groups(
            latest
                .iter()
                .map(|&row| builds[row].resource_group.is_some())
                .collect(),
        );
        Ok(Self {
            builds,
            pipeline_from: state.status,
            status: builds.iter().map(|b| b.status).collect(),
            failure: vec![None; builds.len()],
            new: Vec::new(),
            slot_of_row: latest
                .iter()
                .enumerate()
                .map(|(slot, &row)| (row, slot))
                .collect(),
            slots: latest.into_iter().map(Slot::Row).collect(),
            jobs,
        })
    }

    /// What an event may change, to undo an event that is refused halfway.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            status: self.status.clone(),
            failure: self.failure.clone(),
            new: self.new.clone(),
            slots: self.slots.clone(),
        }
    }

    fn restore(&mut self, checkpoint: Checkpoint) {
        self.status = checkpoint.status;
        self.failure = checkpoint.failure;
        self.new = checkpoint.new;
        self.slots = checkpoint.slots;
    }

    /// Decides the builds the last event let start or made pointless.
    fn settle(&mut self) {
        let mut status = self.slot_status_vec();
        self.jobs.settle(&mut status);
        self.set_slot_status(&status);
    }

    fn row(&self, id: BuildId) -> Result<usize, TransitionError> {
        self.builds
            .iter()
            .position(|b| b.id == id)
            .ok_or(TransitionError::UnknownBuild(id))
    }

    fn row_of(&self, slot: usize) -> Option<usize> {
        match self.slots[slot] {
            Slot::Row(row) => Some(row),
            Slot::New(_) => None,
        }
    }

    fn slot_status_vec(&self) -> Vec<BuildStatus> {
        self.slots
            .iter()
            .map(|slot| match *slot {
                Slot::Row(row) => self.status[row],
                Slot::New(i) => self.new[i].status,
            })
            .collect()
    }

    fn set_slot_status(&mut self, status: &[BuildStatus]) {
        for (slot, &status) in status.iter().enumerate() {
            match self.slots[slot] {
                Slot::Row(row) => self.status[row] = status,
                Slot::New(i) => self.new[i].status = status,
            }
        }
    }

    /// Applies a single-build event to a row.
    fn step(&mut self, row: usize, event: BuildEvent) -> Result<bool, TransitionError> {
        let build = &self.builds[row];
        match next(self.status[row], event) {
            Ok(Step::To(to)) => {
                self.status[row] = to;
                Ok(true)
            }
            Ok(Step::Unchanged) => Ok(false),
            Err(source) => Err(TransitionError::Illegal {
                build: build.id,
                source,
            }),
        }
    }

    fn apply(&mut self, event: &PipelineEvent) -> Result<(), TransitionError> {
        match *event {
            PipelineEvent::Finish {
                build,
                runner,
                result,
            } => self.finish(build, runner, result),
            PipelineEvent::CancelBuild(build) => {
                self.step(self.row(build)?, BuildEvent::Cancel).map(drop)
            }
            PipelineEvent::PlayBuild(build) => {
                let row = self.row(build)?;
                // A played manual build of a resource group waits for a slot like any other;
                // playing anything else is what it is for a build of no group.
                let grouped = self.builds[row].resource_group.is_some();
                let event = if grouped && self.status[row] == BuildStatus::Manual {
                    BuildEvent::Queue
                } else {
                    BuildEvent::Play
                };
                self.step(row, event).map(drop)
            }
            PipelineEvent::SkipBuild(build) => {
                self.step(self.row(build)?, BuildEvent::Skip).map(drop)
            }
            PipelineEvent::CancelPipeline => self.cancel_pipeline(),
            PipelineEvent::RetryBuild(build) => self.retry_build(build),
            PipelineEvent::RetryPipeline => {
                self.retry_pipeline();
                Ok(())
            }
            PipelineEvent::ExpireLeases {
                now,
                unconfirmed_before,
            } => self.expire(now, unconfirmed_before),
            PipelineEvent::Refresh => Ok(()),
            PipelineEvent::Supersede(rule) => self.supersede(rule),
        }
    }

    fn supersede(&mut self, rule: AutoCancel) -> Result<(), TransitionError> {
        if self.pipeline_from.is_terminal() {
            return Ok(());
        }
        match rule {
            AutoCancel::None => Ok(()),
            AutoCancel::Conservative => {
                // Any attempt a runner picked up counts as started, finished ones included.
                let started_for_good = self
                    .builds
                    .iter()
                    .any(|b| b.runner_id.is_some() && !b.interruptible);
                if started_for_good {
                    Ok(())
                } else {
                    self.cancel_pipeline()
                }
            }
            AutoCancel::Interruptible => {
                for slot in 0..self.slots.len() {
                    if let Some(row) = self.row_of(slot)
                        && self.builds[row].interruptible
                        && !self.status[row].is_terminal()
                    {
                        self.step(row, BuildEvent::Cancel)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn finish(
        &mut self,
        id: BuildId,
        runner: RunnerId,
        result: BuildResult,
    ) -> Result<(), TransitionError> {
        let row = self.row(id)?;
        let build = &self.builds[row];
        // An earlier event of this batch may have ended the build already.
        let failure_reason = self.failure[row]
            .map(|(reason, _)| reason)
            .or(build.failure_reason);
        check_reporter(
            id,
            build.runner_id,
            self.status[row],
            failure_reason,
            runner,
        )?;
        let asked_to_stop = self.status[row] == BuildStatus::Canceling;
        if self.step(row, result.event())?
            && let BuildResult::Failed { reason, exit_code } = result
        {
            self.fail(row, reason, exit_code, asked_to_stop);
        }
        Ok(())
    }

    /// Records a failure of `row`, decides whether it is allowed, and retries it when its
    /// `retry` rule says so (never a build someone asked to stop).
    fn fail(
        &mut self,
        row: usize,
        reason: FailureReason,
        exit_code: Option<i32>,
        asked_to_stop: bool,
    ) {
        self.failure[row] = Some((reason, exit_code));
        let build = &self.builds[row];
        let Some(&slot) = self.slot_of_row.get(&row) else {
            return;
        };
        self.jobs
            .set_allow_failure(slot, build.allow_failure.allows(exit_code));
        if !asked_to_stop && build.retry.retries(build.attempt, reason, exit_code) {
            self.new_attempt(slot, true);
        }
    }

    fn cancel_pipeline(&mut self) -> Result<(), TransitionError> {
        if self.pipeline_from.is_terminal() {
            return match self.pipeline_from {
                PipelineStatus::Canceled => Ok(()),
                status => Err(TransitionError::PipelineFinished { status }),
            };
        }
        for slot in 0..self.slots.len() {
            if let Some(row) = self.row_of(slot)
                && !self.status[row].is_terminal()
            {
                self.step(row, BuildEvent::Cancel)?;
            }
        }
        Ok(())
    }

    fn retry_build(&mut self, id: BuildId) -> Result<(), TransitionError> {
        let row = self.row(id)?;
        let slot = self.latest_slot_of(row)?;
        let status = self.status[row];
        if !matches!(
            status,
            BuildStatus::Success | BuildStatus::Failed | BuildStatus::Canceled
        ) {
            return Err(TransitionError::NotRetryable { build: id, status });
        }
        self.retry_slots(&[slot]);
        Ok(())
    }

    fn latest_slot_of(&self, row: usize) -> Result<usize, TransitionError> {
        self.slot_of_row.get(&row).copied().ok_or_else(|| {
            let name = &self.builds[row].name;
            let newer = self
                .builds
                .iter()
                .filter(|b| b.name == *name)
                .max_by_key(|b| b.attempt)
                .map_or(self.builds[row].id, |b| b.id);
            TransitionError::AlreadyRetried {
                build: self.builds[row].id,
                newer,
            }
        })
    }

    fn retry_pipeline(&mut self) {
        let slots: Vec<usize> = (0..self.slots.len())
            .filter(|&slot| {
                self.row_of(slot).is_some_and(|row| {
                    matches!(
                        self.status[row],
                        BuildStatus::Failed | BuildStatus::Canceled
                    )
                })
            })
            .collect();
        self.retry_slots(&slots);
    }

    /// New attempts for `roots` and for every skipped job downstream of them, so that jobs
    /// skipped because of a failure get their chance when the retry passes.
    fn retry_slots(&mut self, roots: &[usize]) {
        if roots.is_empty() {
            return;
        }
        let downstream = self.jobs.downstream(roots);
        let skipped_below = (0..self.slots.len()).filter(|&slot| {
            downstream[slot]
                && self
                    .row_of(slot)
                    .is_some_and(|row| self.status[row] == BuildStatus::Skipped)
        });
        let targets: Vec<usize> = roots.iter().copied().chain(skipped_below).collect();
        for slot in targets {
            self.new_attempt(slot, false);
        }
    }

    fn new_attempt(&mut self, slot: usize, automatic: bool) {
        let Slot::Row(row) = self.slots[slot] else {
            return;
        };
        self.new.push(NewRow {
            copy_of: row,
            attempt: self.builds[row].attempt + 1,
            status: BuildStatus::Created,
            automatic,
        });
        self.slots[slot] = Slot::New(self.new.len() - 1);
    }

    fn expire(
        &mut self,
        now: DateTime<Utc>,
        unconfirmed_before: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        for slot in 0..self.slots.len() {
            let Some(row) = self.row_of(slot) else {
                continue;
            };
            let builds = self.builds;
            let build = &builds[row];
            let status = self.status[row];
            let lease_passed = build.lease_expires_at.is_none_or(|lease| lease < now);
            let unconfirmed = status == BuildStatus::Canceling
                && build
                    .canceling_since
                    .is_none_or(|since| since < unconfirmed_before);
            if !status.holds_lease() || !(lease_passed || unconfirmed) {
                continue;
            }
            if status == BuildStatus::Running && !build.acknowledged {
                self.step(row, BuildEvent::Requeue)?;
                continue;
            }
            self.step(row, BuildEvent::LoseLease)?;
            if self.status[row] == BuildStatus::Failed {
                self.fail(row, FailureReason::RunnerLost, None, false);
            } else {
                // Canceled without its runner: the reason says so, and makes a late report
                // from that runner a lost lease (`check_reporter`), as for a failed build.
                self.failure[row] = Some((FailureReason::RunnerLost, None));
            }
        }
        Ok(())
    }

    fn into_plan(self) -> Plan {
        let slot_status = self.slot_status_vec();
        // A build handed back unacknowledged never started as far as the pipeline goes.
        let started =
            self.builds.iter().enumerate().any(|(row, b)| {
                b.runner_id.is_some() && !self.status[row].is_queued_again(b.status)
            });
        let pipeline_to = self.jobs.pipeline_status(&slot_status, started);
        let mut changes: Vec<BuildChange> = self
            .builds
            .iter()
            .enumerate()
            .filter(|(row, build)| self.status[*row] != build.status)
            .map(|(row, build)| {
                let to = self.status[row];
                let failure = self.failure[row];
                BuildChange {
                    id: build.id,
                    from: build.status,
                    to,
                    failure_reason: failure.map(|(reason, _)| reason),
                    exit_code: failure.and_then(|(_, code)| code),
                    // A deployment mirrors its build: it changes only when the mapped status does.
                    deployment: (build.has_deployment
                        && DeploymentStatus::for_build(to)
                            != DeploymentStatus::for_build(build.status))
                    .then(|| DeploymentStatus::for_build(to)),
                }
            })
            .collect();
        changes.sort_by_key(|c| c.id);
        let new_attempts = self
            .new
            .iter()
            .map(|new| {
                let source = &self.builds[new.copy_of];
                NewAttempt {
                    copy_of: source.id,
                    attempt: new.attempt,
                    status: new.status,
                    automatic: new.automatic,
                    deployment: source
                        .has_deployment
                        .then(|| DeploymentStatus::for_build(new.status)),
                }
            })
            .collect();
        Plan {
            changes,
            new_attempts,
            pipeline_from: self.pipeline_from,
            pipeline_to,
        }
    }
}

fn resolve_needs(
    build: &BuildState,
    by_name: &HashMap<&str, usize>,
) -> Result<Needs, TransitionError> {
    let Some(needs) = &build.needs else {
        return Ok(Needs::EarlierStages);
    };
    needs
        .iter()
        .map(|name| {
            by_name.get(name.as_str()).copied().ok_or_else(|| {
                TransitionError::InvalidSnapshot(format!(
                    "build {} needs unknown job `{name}`",
                    build.id
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Needs::Explicit)
}

#[cfg(test)]
mod tests;
