//! A store in memory that applies plans the way storage does, and the record of one run through
//! it: every step with the state before and after.

use crate::strategy::{Action, Ending, RUNNERS, Run};
use chrono::{DateTime, Utc};
use lockstep_domain::{
    BuildEvent, BuildId, BuildResult, BuildState, BuildStatus, FailureReason, PipelineEvent,
    PipelineState, PipelineStatus, Plan, ResourceGroupId, RunnerId, Step as Move, TransitionError,
    ValidPipeline, next, plan, plan_new_pipeline,
};
use proptest::sample::Index;
use std::fmt::Write as _;

/// The run's clock starts here and moves a minute per action.
const START: i64 = 1_700_000_000;
const MINUTE: i64 = 60;
/// An id that no build of any run has (storage ids start at 1).
pub(crate) const UNKNOWN: BuildId = BuildId(-1);

/// What happened in one step.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The pipeline was created from its definition.
    Create,
    /// Storage handed a pending build to a runner (not a domain transition).
    Acquire { build: BuildId, runner: RunnerId },
    /// Storage gave a waiting build a slot of its resource group (not a pipeline transition:
    /// the group decides, across pipelines).
    Grant { build: BuildId },
    /// A domain transition.
    Pipeline(PipelineEvent),
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Created,
    Acquired,
    Granted,
    Planned(Plan),
    Rejected(TransitionError),
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) before: PipelineState,
    pub(crate) event: Event,
    pub(crate) outcome: Outcome,
    pub(crate) after: PipelineState,
}

impl Step {
    pub(crate) fn plan(&self) -> Option<&Plan> {
        match &self.outcome {
            Outcome::Planned(plan) => Some(plan),
            _ => None,
        }
    }

    pub(crate) fn pipeline_event(&self) -> Option<&PipelineEvent> {
        match &self.event {
            Event::Pipeline(event) => Some(event),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Trace {
    pub(crate) steps: Vec<Step>,
    /// The most rounds the fair driver was allowed.
    pub(crate) round_limit: usize,
}

impl Trace {
    pub(crate) fn end(&self) -> &PipelineState {
        &self.steps.last().expect("a run has its create step").after
    }
}

pub(crate) fn timestamp(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("the run's clock stays in range")
}

pub(crate) fn row(state: &PipelineState, id: BuildId) -> Option<&BuildState> {
    state.builds.iter().find(|b| b.id == id)
}

/// Runs the random actions, then drives the pipeline fairly until nothing is left to do.
pub(crate) fn simulate(run: &Run) -> Trace {
    let pipeline = run
        .definition
        .clone()
        .validate()
        .expect("generated pipelines are valid");
    let mut store = Store::create(&pipeline, run.play_manual);
    for action in &run.actions {
        store.act(action);
        store.clock += MINUTE;
    }
    let max_retry = pipeline
        .jobs()
        .iter()
        .map(|job| job.retry().max())
        .max()
        .unwrap_or(0);
    // Playing manual builds costs at most one extra round per job: the driver never retries,
    // so a build it plays never comes back to `manual`.
    let round_limit = 10 * pipeline.jobs().len() * (max_retry as usize + 1) + 10;
    let mut verdicts = run.verdicts.iter().copied().cycle();
    for _ in 0..round_limit {
        if !store.drive_round(&mut verdicts) {
            break;
        }
    }
    Trace {
        steps: store.steps,
        round_limit,
    }
}

struct Store {
    state: PipelineState,
    /// Whether the fair driver plays manual builds once nothing else is left to do.
    play_manual: bool,
    next_id: i64,
    clock: i64,
    steps: Vec<Step>,
}

impl Store {
    fn create(pipeline: &ValidPipeline, play_manual: bool) -> Self {
        let (statuses, status) = plan_new_pipeline(pipeline);
        let builds: Vec<BuildState> = pipeline
            .jobs()
            .iter()
            .zip(statuses)
            .zip(1..)
            .map(|((job, status), id)| BuildState {
                id: BuildId(id),
                name: job.name().to_owned(),
                stage_idx: job.stage_idx(),
                needs: job.needs().map(<[String]>::to_vec),
                when: job.when(),
                allow_failure: job.allow_failure().clone(),
                status,
                attempt: 1,
                retry: job.retry().clone(),
                runner_id: None,
                lease_expires_at: None,
                acknowledged: false,
                canceling_since: None,
                failure_reason: None,
                exit_code: None,
                has_deployment: job.deploys_to().is_some(),
                resource_group: job.resource_group().map(|_| ResourceGroupId(1)),
                interruptible: job.interruptible(),
            })
            .collect();
        let next_id = i64::try_from(builds.len()).expect("few jobs") + 1;
        let state = PipelineState { status, builds };
        let empty = PipelineState {
            status: PipelineStatus::Created,
            builds: Vec::new(),
        };
        Self {
            steps: vec![Step {
                before: empty,
                event: Event::Create,
                outcome: Outcome::Created,
                after: state.clone(),
            }],
            state,
            play_manual,
            next_id,
            clock: START,
        }
    }

    fn ids(&self, keep: impl Fn(&BuildState) -> bool) -> Vec<BuildId> {
        self.state
            .builds
            .iter()
            .filter(|b| keep(b))
            .map(|b| b.id)
            .collect()
    }

    fn act(&mut self, action: &Action) {
        let all = self.ids(|_| true);
        let any = |pick: &Index| all[pick.index(all.len())];
        match action {
            Action::Grant(pick) => {
                let waiting = self.ids(|b| b.status == BuildStatus::WaitingForResource);
                if !waiting.is_empty() {
                    self.grant(waiting[pick.index(waiting.len())]);
                }
            }
            Action::Acquire {
                pick,
                runner,
                lease_minutes,
                acknowledged,
            } => {
                let pending = self.ids(|b| b.status == BuildStatus::Pending);
                if !pending.is_empty() {
                    let lease = self.clock + lease_minutes * MINUTE;
                    let build = pending[pick.index(pending.len())];
                    self.acquire(build, RunnerId(*runner), lease, *acknowledged);
                }
            }
            Action::Finish {
                pick,
                ending,
                wrong_runner,
                stale,
            } => {
                let candidates = if *stale {
                    self.ids(|b| b.runner_id.is_some())
                } else {
                    self.ids(|b| b.status.holds_lease())
                };
                if candidates.is_empty() {
                    return;
                }
                let build = candidates[pick.index(candidates.len())];
                let holder = row(&self.state, build)
                    .and_then(|b| b.runner_id)
                    .expect("candidates have a runner");
                let runner = if *wrong_runner {
                    RunnerId(holder.0 % RUNNERS + 1)
                } else {
                    holder
                };
                self.send(finish(build, runner, *ending));
            }
            Action::CancelBuild(pick) => self.send(PipelineEvent::CancelBuild(any(pick))),
            Action::SkipBuild(pick) => self.send(PipelineEvent::SkipBuild(any(pick))),
            Action::PlayBuild { pick, manual } => {
                let manual_builds = self.ids(|b| b.status == BuildStatus::Manual);
                let build = if *manual && !manual_builds.is_empty() {
                    manual_builds[pick.index(manual_builds.len())]
                } else {
                    any(pick)
                };
                self.send(PipelineEvent::PlayBuild(build));
            }
            Action::RetryBuild(pick) => self.send(PipelineEvent::RetryBuild(any(pick))),
            Action::UnknownBuild(pick) => {
                let events = [
                    PipelineEvent::CancelBuild(UNKNOWN),
                    PipelineEvent::SkipBuild(UNKNOWN),
                    PipelineEvent::PlayBuild(UNKNOWN),
                    PipelineEvent::RetryBuild(UNKNOWN),
                    finish(UNKNOWN, RunnerId(1), Ending::Success),
                ];
                self.send(events[pick.index(events.len())]);
            }
            Action::CancelPipeline => self.send(PipelineEvent::CancelPipeline),
            Action::Supersede(rule) => self.send(PipelineEvent::Supersede(*rule)),
            Action::RetryPipeline => self.send(PipelineEvent::RetryPipeline),
            Action::ExpireLeases {
                minutes_ahead,
                grace_minutes,
            } => {
                let now = self.clock + minutes_ahead * MINUTE;
                self.send(PipelineEvent::ExpireLeases {
                    now: timestamp(now),
                    unconfirmed_before: timestamp(now - grace_minutes * MINUTE),
                });
            }
            Action::Refresh => self.send(PipelineEvent::Refresh),
        }
    }

    /// One round of the fair policy: acquire every pending build, bring the pipeline's status up
    /// to date, then finish every build a runner holds. When none was pending or held, only
    /// manual builds can be left to run; if the run says so, play every one of them, which opens
    /// the pipeline again if it had finished. Returns whether anything was left to
    /// do.
    fn drive_round(&mut self, verdicts: &mut impl Iterator<Item = bool>) -> bool {
        // The group has room for every waiting build: its order is tested on its own.
        for build in self.ids(|b| b.status == BuildStatus::WaitingForResource) {
            self.grant(build);
        }
        let pending = self.ids(|b| b.status == BuildStatus::Pending);
        for &build in &pending {
            self.acquire(build, RunnerId(1), self.clock + 60 * MINUTE, true);
        }
        if !pending.is_empty() {
            self.send(PipelineEvent::Refresh);
        }
        let held = self.ids(|b| b.status.holds_lease());
        for &build in &held {
            let runner = row(&self.state, build)
                .and_then(|b| b.runner_id)
                .expect("a held build has a runner");
            let ending = if verdicts.next().unwrap_or(true) {
                Ending::Success
            } else {
                Ending::Failed
            };
            self.send(finish(build, runner, ending));
        }
        let mut played = false;
        if pending.is_empty() && held.is_empty() && self.play_manual {
            for build in self.ids(|b| b.status == BuildStatus::Manual) {
                self.send(PipelineEvent::PlayBuild(build));
                played = true;
            }
        }
        self.clock += MINUTE;
        !pending.is_empty() || !held.is_empty() || played
    }

    /// What storage's grant does: waiting to pending, nothing else.
    fn grant(&mut self, build: BuildId) {
        let event = Event::Grant { build };
        let move_ = (BuildEvent::Grant, BuildStatus::Pending);
        self.storage_move(build, move_, event, Outcome::Granted, |_| {});
    }

    /// What storage's claim does: pending to running, with a runner and a lease; and, when
    /// `acknowledged`, what the runner's first heartbeat does right after.
    fn acquire(&mut self, build: BuildId, runner: RunnerId, lease_until: i64, acknowledged: bool) {
        let event = Event::Acquire { build, runner };
        let move_ = (BuildEvent::Acquire, BuildStatus::Running);
        self.storage_move(build, move_, event, Outcome::Acquired, |b| {
            b.runner_id = Some(runner);
            b.lease_expires_at = Some(timestamp(lease_until));
            b.acknowledged = acknowledged;
        });
    }

    /// A move storage makes on one build outside a pipeline transition (acquire, grant): the
    /// state machine must take it to the status `move_` names, `edit` sets what else the row
    /// gets, and it is recorded.
    fn storage_move(
        &mut self,
        build: BuildId,
        (move_, to): (BuildEvent, BuildStatus),
        event: Event,
        outcome: Outcome,
        edit: impl FnOnce(&mut BuildState),
    ) {
        let before = self.state.clone();
        let b = self
            .state
            .builds
            .iter_mut()
            .find(|b| b.id == build)
            .expect("storage moves an existing build");
        assert_eq!(
            next(b.status, move_),
            Ok(Move::To(to)),
            "storage may {move_} a {} build",
            b.status
        );
        b.status = to;
        edit(b);
        self.steps.push(Step {
            before,
            event,
            outcome,
            after: self.state.clone(),
        });
    }

    /// Plans `event` and applies the plan the way storage does; a refused event changes nothing.
    fn send(&mut self, event: PipelineEvent) {
        let before = self.state.clone();
        let outcome = match plan(&self.state, &event) {
            Ok(plan) => {
                self.apply(&plan);
                Outcome::Planned(plan)
            }
            Err(error) => Outcome::Rejected(error),
        };
        self.steps.push(Step {
            before,
            event: Event::Pipeline(event),
            outcome,
            after: self.state.clone(),
        });
    }

    fn apply(&mut self, plan: &Plan) {
        for change in plan.changes() {
            let b = self
                .state
                .builds
                .iter_mut()
                .find(|b| b.id == change.id)
                .expect("a plan changes only existing builds");
            // What storage writes beside the status: the cancel's clock, and a requeue handing
            // the build back without its runner.
            if change.to == BuildStatus::Canceling {
                b.canceling_since = Some(timestamp(self.clock));
            }
            if change.to.is_queued_again(change.from) {
                b.runner_id = None;
                b.lease_expires_at = None;
                b.acknowledged = false;
            }
            b.status = change.to;
            b.failure_reason = change.failure_reason.or(b.failure_reason);
            b.exit_code = change.exit_code.or(b.exit_code);
        }
        for new in plan.new_attempts() {
            let source =
                row(&self.state, new.copy_of).expect("a new attempt copies an existing build");
            let copy = BuildState {
                id: BuildId(self.next_id),
                attempt: new.attempt,
                status: new.status,
                runner_id: None,
                lease_expires_at: None,
                acknowledged: false,
                canceling_since: None,
                failure_reason: None,
                exit_code: None,
                ..source.clone()
            };
            self.next_id += 1;
            self.state.builds.push(copy);
        }
        self.state.status = plan.pipeline_status();
    }
}

pub(crate) fn finish(build: BuildId, runner: RunnerId, ending: Ending) -> PipelineEvent {
    let result = match ending {
        Ending::Success => BuildResult::Success,
        Ending::Failed => BuildResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(1),
        },
        Ending::Killed => BuildResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(137),
        },
        Ending::Canceled => BuildResult::Canceled,
    };
    PipelineEvent::Finish {
        build,
        runner,
        result,
    }
}

/// A pipeline state, one build a line, for failure messages.
pub(crate) fn show(state: &PipelineState) -> String {
    let mut out = format!("pipeline {}\n", state.status);
    for b in &state.builds {
        let needs = b
            .needs
            .as_ref()
            .map_or_else(|| "earlier stages".to_owned(), |n| format!("{n:?}"));
        writeln!(
            out,
            "  #{} {} attempt {} stage {} needs {needs} {} allow_failure={} retry={} {}{}{}",
            b.id,
            b.name,
            b.attempt,
            b.stage_idx,
            b.when.as_str(),
            b.allow_failure.may_allow(),
            b.retry.max(),
            b.status,
            b.runner_id
                .map(|r| format!(" runner {r}"))
                .unwrap_or_default(),
            if b.has_deployment { " deployment" } else { "" },
        )
        .expect("writing to a String cannot fail");
    }
    out
}
