//! The rules restated naively (by recursion over names, no graph, no barriers), so that the
//! domain's single-pass processing can be compared with something written independently.

use lockstep_domain::{
    AutoCancel, BuildEvent, BuildId, BuildResult, BuildState, BuildStatus, FailureReason,
    IllegalTransition, PipelineEvent, PipelineState, PipelineStatus, TransitionError, When,
};
use std::collections::HashMap;

/// How a settled need turned out, as seen by the jobs that need it; worse is greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Passed,
    Canceled,
    Failed,
}

/// What a build event does to a build in a given status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    To(BuildStatus),
    /// The build is already where the event would take it.
    Stay,
    Refused,
}

/// The single-build rules, restated as a table per event rather than taken from the domain's
/// `next`, so that a wrong entry there shows up as a disagreement here.
fn build_move(from: BuildStatus, event: BuildEvent) -> Move {
    use BuildStatus::{
        Canceled, Canceling, Created, Failed, Manual, Pending, Running, Skipped, Success,
        WaitingForResource as Waiting,
    };
    let (moves, stays): (&[(BuildStatus, BuildStatus)], &[BuildStatus]) = match event {
        BuildEvent::Enqueue => (&[(Created, Pending)], &[]),
        BuildEvent::Queue => (
            &[(Created, Waiting), (Manual, Waiting)],
            &[Waiting, Pending],
        ),
        BuildEvent::Grant => (&[(Waiting, Pending)], &[]),
        BuildEvent::Park => (&[(Created, Manual)], &[]),
        BuildEvent::Play => (&[(Manual, Pending)], &[Pending, Waiting]),
        BuildEvent::Skip => (
            &[
                (Created, Skipped),
                (Waiting, Skipped),
                (Pending, Skipped),
                (Manual, Skipped),
            ],
            &[Skipped],
        ),
        BuildEvent::Acquire => (&[(Pending, Running)], &[]),
        BuildEvent::Succeed => (&[(Running, Success), (Canceling, Success)], &[Success]),
        BuildEvent::Fail => (&[(Running, Failed), (Canceling, Failed)], &[Failed]),
        BuildEvent::Abort => (&[(Running, Canceled), (Canceling, Canceled)], &[Canceled]),
        BuildEvent::LoseLease => (&[(Running, Failed), (Canceling, Canceled)], &[]),
        BuildEvent::Requeue => (&[(Running, Pending)], &[]),
        BuildEvent::Cancel => (
            &[
                (Created, Canceled),
                (Waiting, Canceled),
                (Pending, Canceled),
                (Manual, Canceled),
                (Running, Canceling),
            ],
            &[Canceling, Canceled],
        ),
        BuildEvent::Heartbeat => (&[], &[Running, Canceling]),
    };
    if let Some(&(_, to)) = moves.iter().find(|(f, _)| *f == from) {
        Move::To(to)
    } else if stays.contains(&from) {
        Move::Stay
    } else {
        Move::Refused
    }
}

/// The rules applied to one pipeline state. Rows are indices into `state.builds`.
pub(crate) struct Rules<'a> {
    state: &'a PipelineState,
    latest: Vec<bool>,
    /// The outcome of each row, `None` while it is unsettled. Only latest rows are consulted.
    outcome: Vec<Option<Outcome>>,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(state: &'a PipelineState) -> Self {
        let builds = &state.builds;
        let latest = builds
            .iter()
            .map(|b| {
                !builds
                    .iter()
                    .any(|other| other.name == b.name && other.attempt > b.attempt)
            })
            .collect();
        let mut rules = Self {
            state,
            latest,
            outcome: Vec::new(),
        };
        let mut memo = HashMap::new();
        rules.outcome = (0..builds.len())
            .map(|row| rules.outcome_of(row, &mut memo))
            .collect();
        rules
    }

    fn build(&self, row: usize) -> &BuildState {
        &self.state.builds[row]
    }

    pub(crate) fn is_latest(&self, row: usize) -> bool {
        self.latest[row]
    }

    pub(crate) fn latest_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.state.builds.len()).filter(|&row| self.latest[row])
    }

    pub(crate) fn row_of(&self, id: BuildId) -> Option<usize> {
        self.state.builds.iter().position(|b| b.id == id)
    }

    fn latest_of(&self, name: &str) -> usize {
        self.latest_rows()
            .find(|&row| self.build(row).name == name)
            .expect("every need names a job of the pipeline")
    }

    /// The latest rows `row` waits for: the named jobs, or every job of an earlier stage.
    fn needs(&self, row: usize) -> Vec<usize> {
        let build = self.build(row);
        match &build.needs {
            Some(names) => names.iter().map(|name| self.latest_of(name)).collect(),
            None => self
                .latest_rows()
                .filter(|&other| self.build(other).stage_idx < build.stage_idx)
                .collect(),
        }
    }

    fn outcome_of(
        &self,
        row: usize,
        memo: &mut HashMap<usize, Option<Outcome>>,
    ) -> Option<Outcome> {
        if let Some(&known) = memo.get(&row) {
            return known;
        }
        let build = self.build(row);
        let outcome = match build.status {
            BuildStatus::Success | BuildStatus::Manual => Some(Outcome::Passed),
            BuildStatus::Failed if build.allow_failure.allows(build.exit_code) => {
                Some(Outcome::Passed)
            }
            BuildStatus::Failed => Some(Outcome::Failed),
            BuildStatus::Canceled => Some(Outcome::Canceled),
            // A skipped job passes on the worst outcome of its own needs, but only once all of
            // them have settled: one skipped by hand ahead of its needs holds back the jobs
            // after it until the work upstream is done.
            BuildStatus::Skipped => self
                .needs(row)
                .into_iter()
                .map(|need| self.outcome_of(need, memo))
                .collect::<Option<Vec<Outcome>>>()
                .map(|outcomes| outcomes.into_iter().max().unwrap_or(Outcome::Passed)),
            BuildStatus::Created
            | BuildStatus::WaitingForResource
            | BuildStatus::Pending
            | BuildStatus::Running
            | BuildStatus::Canceling => None,
        };
        memo.insert(row, outcome);
        outcome
    }

    /// What processing must make of the job at `row` now, or `None` while a need is unsettled.
    pub(crate) fn decision(&self, row: usize) -> Option<BuildStatus> {
        let needs: Option<Vec<Outcome>> = self
            .needs(row)
            .into_iter()
            .map(|need| self.outcome[need])
            .collect();
        let worst = needs?.into_iter().max().unwrap_or(Outcome::Passed);
        // A job of a resource group that may run waits for a slot first.
        let ready = match self.build(row).resource_group {
            Some(_) => BuildStatus::WaitingForResource,
            None => BuildStatus::Pending,
        };
        let status = match (self.build(row).when, worst) {
            (When::OnSuccess, Outcome::Passed)
            | (When::OnFailure, Outcome::Failed)
            | (When::Always, _) => ready,
            (When::Manual, Outcome::Passed) => BuildStatus::Manual,
            _ => BuildStatus::Skipped,
        };
        Some(status)
    }

    /// Created latest builds whose needs have all settled: processing left them undecided.
    pub(crate) fn undecided(&self) -> Vec<BuildId> {
        self.latest_rows()
            .filter(|&row| self.build(row).status == BuildStatus::Created)
            .filter(|&row| self.decision(row).is_some())
            .map(|row| self.build(row).id)
            .collect()
    }

    /// Latest rows that depend on one of `roots`, directly or through other jobs.
    fn downstream(&self, roots: &[usize]) -> Vec<usize> {
        let mut marked: Vec<usize> = roots.to_vec();
        loop {
            let more: Vec<usize> = self
                .latest_rows()
                .filter(|row| !marked.contains(row))
                .filter(|&row| self.needs(row).iter().any(|need| marked.contains(need)))
                .collect();
            if more.is_empty() {
                break;
            }
            marked.extend(more);
        }
        marked.retain(|row| !roots.contains(row));
        marked
    }

    /// The pipeline's status once no latest build is active; `None` while one is.
    pub(crate) fn terminal_status(&self) -> Option<PipelineStatus> {
        let latest: Vec<&BuildState> = self.latest_rows().map(|row| self.build(row)).collect();
        if latest.iter().any(|b| b.status.is_active()) {
            return None;
        }
        let status = if latest
            .iter()
            .any(|b| b.status == BuildStatus::Failed && !b.allow_failure.allows(b.exit_code))
        {
            PipelineStatus::Failed
        } else if latest.iter().any(|b| b.status == BuildStatus::Canceled) {
            PipelineStatus::Canceled
        } else if latest.iter().all(|b| b.status == BuildStatus::Skipped) {
            PipelineStatus::Skipped
        } else {
            PipelineStatus::Success
        };
        Some(status)
    }

    /// The pipeline's status as a transition must leave it: how far the work has got while a
    /// latest build is active, how the builds ended once none is.
    pub(crate) fn status(&self) -> PipelineStatus {
        if let Some(status) = self.terminal_status() {
            return status;
        }
        let has = |wanted: BuildStatus| {
            self.latest_rows()
                .any(|row| self.build(row).status == wanted)
        };
        // Any attempt of any job, older ones included, that a runner ever picked up.
        let started = self.state.builds.iter().any(|b| b.runner_id.is_some());
        // Waiting for a resource group's slot reads as pending.
        let queued = has(BuildStatus::Pending) || has(BuildStatus::WaitingForResource);
        if has(BuildStatus::Canceling) {
            PipelineStatus::Canceling
        } else if has(BuildStatus::Running) || (started && queued) {
            PipelineStatus::Running
        } else if queued {
            PipelineStatus::Pending
        } else {
            PipelineStatus::Created
        }
    }

    /// The build event that `event` applies directly to the build at `row`, if any (processing
    /// that follows is not included).
    pub(crate) fn direct_move(&self, event: &PipelineEvent, row: usize) -> Option<BuildEvent> {
        let build = self.build(row);
        match *event {
            PipelineEvent::Finish {
                build: id, result, ..
            } if id == build.id => Some(match result {
                BuildResult::Success => BuildEvent::Succeed,
                BuildResult::Failed { .. } => BuildEvent::Fail,
                BuildResult::Canceled => BuildEvent::Abort,
            }),
            PipelineEvent::CancelBuild(id) if id == build.id => Some(BuildEvent::Cancel),
            PipelineEvent::SkipBuild(id) if id == build.id => Some(BuildEvent::Skip),
            PipelineEvent::PlayBuild(id) if id == build.id => {
                let grouped_manual =
                    build.resource_group.is_some() && build.status == BuildStatus::Manual;
                Some(if grouped_manual {
                    BuildEvent::Queue
                } else {
                    BuildEvent::Play
                })
            }
            PipelineEvent::CancelPipeline
                if self.latest[row]
                    && !build.status.is_terminal()
                    && !self.state.status.is_terminal() =>
            {
                Some(BuildEvent::Cancel)
            }
            // A newer pipeline cancels this one whole while no build that started (any
            // attempt) is non-interruptible.
            PipelineEvent::Supersede(AutoCancel::Conservative)
                if self.latest[row]
                    && !build.status.is_terminal()
                    && !self.state.status.is_terminal()
                    && !self
                        .state
                        .builds
                        .iter()
                        .any(|b| b.runner_id.is_some() && !b.interruptible) =>
            {
                Some(BuildEvent::Cancel)
            }
            // ... or cancels only its unfinished interruptible builds.
            PipelineEvent::Supersede(AutoCancel::Interruptible)
                if self.latest[row]
                    && build.interruptible
                    && !build.status.is_terminal()
                    && !self.state.status.is_terminal() =>
            {
                Some(BuildEvent::Cancel)
            }
            // A claim never acknowledged goes back to the queue when its short lease passes.
            PipelineEvent::ExpireLeases { now, .. }
                if self.latest[row]
                    && build.status == BuildStatus::Running
                    && !build.acknowledged
                    && build.lease_expires_at.is_none_or(|lease| lease < now) =>
            {
                Some(BuildEvent::Requeue)
            }
            // A lost runner, or a cancel its runner did not confirm within the grace.
            PipelineEvent::ExpireLeases {
                now,
                unconfirmed_before,
            } if self.latest[row]
                && build.status.holds_lease()
                && (build.lease_expires_at.is_none_or(|lease| lease < now)
                    || (build.status == BuildStatus::Canceling
                        && build
                            .canceling_since
                            .is_none_or(|since| since < unconfirmed_before))) =>
            {
                Some(BuildEvent::LoseLease)
            }
            _ => None,
        }
    }

    /// The error `event` must be refused with, or `None` if it must be accepted.
    pub(crate) fn rejection(&self, event: &PipelineEvent) -> Option<TransitionError> {
        let target = match *event {
            PipelineEvent::Finish { build, .. }
            | PipelineEvent::CancelBuild(build)
            | PipelineEvent::SkipBuild(build)
            | PipelineEvent::PlayBuild(build)
            | PipelineEvent::RetryBuild(build) => Some(build),
            _ => None,
        };
        let row = match target {
            Some(id) => match self.row_of(id) {
                Some(row) => Some(row),
                None => return Some(TransitionError::UnknownBuild(id)),
            },
            None => None,
        };
        match (*event, row) {
            (PipelineEvent::Finish { build, runner, .. }, Some(row))
                if self.build(row).runner_id != Some(runner) =>
            {
                Some(TransitionError::NotHolder { build, runner })
            }
            // The reaper failed it before the report came: the report is late.
            (PipelineEvent::Finish { build, .. }, Some(row))
                if self.build(row).failure_reason == Some(FailureReason::RunnerLost) =>
            {
                Some(TransitionError::LeaseLost {
                    build,
                    status: self.build(row).status,
                })
            }
            (PipelineEvent::RetryBuild(build), Some(row)) => {
                let status = self.build(row).status;
                if !self.latest[row] {
                    let newer = self.latest_of(&self.build(row).name);
                    Some(TransitionError::AlreadyRetried {
                        build,
                        newer: self.build(newer).id,
                    })
                } else if matches!(
                    status,
                    BuildStatus::Success | BuildStatus::Failed | BuildStatus::Canceled
                ) {
                    None
                } else {
                    Some(TransitionError::NotRetryable { build, status })
                }
            }
            (PipelineEvent::CancelPipeline, _)
                if self.state.status.is_terminal()
                    && self.state.status != PipelineStatus::Canceled =>
            {
                Some(TransitionError::PipelineFinished {
                    status: self.state.status,
                })
            }
            (event, _) => (0..self.state.builds.len()).find_map(|row| {
                let event = self.direct_move(&event, row)?;
                let from = self.build(row).status;
                (build_move(from, event) == Move::Refused).then_some(TransitionError::Illegal {
                    build: self.build(row).id,
                    source: IllegalTransition { from, event },
                })
            }),
        }
    }

    /// The builds an accepted `event` must copy as new attempts, in id order.
    pub(crate) fn retries(&self, event: &PipelineEvent) -> Vec<BuildId> {
        let roots: Vec<usize> = match *event {
            PipelineEvent::RetryBuild(id) => self.row_of(id).into_iter().collect(),
            PipelineEvent::RetryPipeline => self
                .latest_rows()
                .filter(|&row| {
                    matches!(
                        self.build(row).status,
                        BuildStatus::Failed | BuildStatus::Canceled
                    )
                })
                .collect(),
            PipelineEvent::ExpireLeases { .. } => {
                // A lost runner is retried automatically when its `retry` covers runner_lost.
                let lost = (0..self.state.builds.len()).filter(|&row| {
                    let build = self.build(row);
                    self.direct_move(event, row) == Some(BuildEvent::LoseLease)
                        && build.status == BuildStatus::Running
                        && build
                            .retry
                            .retries(build.attempt, FailureReason::RunnerLost, None)
                });
                return self.ids(lost);
            }
            PipelineEvent::Finish {
                build: id,
                result: BuildResult::Failed { reason, exit_code },
                ..
            } => {
                // A failure its `retry` covers is retried, unless someone asked it to stop.
                let failed = self.row_of(id).filter(|&row| {
                    let build = self.build(row);
                    self.latest[row]
                        && build.status == BuildStatus::Running
                        && build.retry.retries(build.attempt, reason, exit_code)
                });
                return self.ids(failed.into_iter());
            }
            _ => Vec::new(),
        };
        let skipped_below = self
            .downstream(&roots)
            .into_iter()
            .filter(|&row| self.build(row).status == BuildStatus::Skipped);
        self.ids(roots.iter().copied().chain(skipped_below))
    }

    fn ids(&self, rows: impl Iterator<Item = usize>) -> Vec<BuildId> {
        let mut ids: Vec<BuildId> = rows.map(|row| self.build(row).id).collect();
        ids.sort_unstable();
        ids
    }

    /// Where `event` takes the build at `row`, or `None` if it leaves it where it is.
    pub(crate) fn moved_to(&self, row: usize, event: BuildEvent) -> Option<BuildStatus> {
        match build_move(self.build(row).status, event) {
            Move::To(to) => Some(to),
            Move::Stay | Move::Refused => None,
        }
    }
}
