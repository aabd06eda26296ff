//! What events do to pipelines, by example: one named row per rule of processing (the rules in
//! docs/architecture.md), so that whoever changes a rule has its case to edit. Each row gives
//! the jobs as they stand, one event, and the outcome written as
//! `job status, … => pipeline status`, where a new attempt reads `job#2` and a build whose
//! deployment or failure reason changes says so in brackets.

use super::*;
use crate::retry::{Retry, RetryWhen};
use crate::status::BuildStatus as S;
use When::{Always, Manual, OnFailure, OnSuccess};

const RUNNER: RunnerId = RunnerId(1);
const OTHER_RUNNER: RunnerId = RunnerId(2);

/// One job as it stands before the event: its latest (and only) attempt.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is one property of a job definition, set by its own builder method"
)]
struct Job {
    name: &'static str,
    stage: u32,
    status: BuildStatus,
    when: When,
    allow_failure: AllowFailure,
    environment: bool,
    retry: RetryPolicy,
    failure_reason: Option<FailureReason>,
    /// In resource group 1.
    group: bool,
    interruptible: bool,
    /// Its runner never acknowledged it (only for a build that ran).
    unacknowledged: bool,
}

fn job(name: &'static str, stage: u32, status: BuildStatus) -> Job {
    Job {
        name,
        stage,
        status,
        when: OnSuccess,
        allow_failure: AllowFailure::No,
        environment: false,
        retry: RetryPolicy::never(),
        failure_reason: None,
        group: false,
        interruptible: false,
        unacknowledged: false,
    }
}

impl Job {
    fn when(mut self, when: When) -> Self {
        self.when = when;
        self
    }

    fn allow_failure(mut self) -> Self {
        self.allow_failure = AllowFailure::Yes;
        self
    }

    fn allow_exit_codes(mut self, codes: &[i32]) -> Self {
        self.allow_failure = AllowFailure::exit_codes(codes.to_vec());
        self
    }

    fn deploys(mut self) -> Self {
        self.environment = true;
        self
    }

    /// `retry: N`.
    fn retry(mut self, retry: u32) -> Self {
        self.retry = Retry::times(retry).policy();
        self
    }

    /// `retry: {max, when, exit_codes}`.
    fn retry_on(mut self, max: u32, when: Option<&[RetryWhen]>, codes: Option<&[i32]>) -> Self {
        self.retry = Retry {
            max,
            when: when.map(<[RetryWhen]>::to_vec),
            exit_codes: codes.map(<[i32]>::to_vec),
        }
        .policy();
        self
    }

    fn interruptible(mut self) -> Self {
        self.interruptible = true;
        self
    }

    fn unacknowledged(mut self) -> Self {
        self.unacknowledged = true;
        self
    }

    fn grouped(mut self) -> Self {
        self.group = true;
        self
    }

    fn failed_by(mut self, reason: FailureReason) -> Self {
        self.failure_reason = Some(reason);
        self
    }
}

/// The event of a row, naming builds by their job.
#[derive(Debug, Clone, Copy)]
enum Event {
    Finish(&'static str, BuildResult),
    FinishBy(&'static str, RunnerId, BuildResult),
    Play(&'static str),
    Retry(&'static str),
    CancelPipeline,
    Supersede(AutoCancel),
    /// The reaper, once every lease has passed; no cancel has outlived its grace.
    ExpireLeases,
    /// The reaper, before any lease has passed, once every cancel has outlived its grace.
    ExpireUnconfirmed,
}

const FAILED: BuildResult = BuildResult::Failed {
    reason: FailureReason::ScriptFailure,
    exit_code: Some(1),
};

/// When every lease in these examples runs out.
fn lease_end() -> DateTime<Utc> {
    DateTime::from_timestamp(1_000_000, 0).expect("a valid time")
}

/// When every canceling build of these examples was asked to stop.
fn cancel_time() -> DateTime<Utc> {
    lease_end() - chrono::TimeDelta::minutes(5)
}

fn state(jobs: &[Job]) -> PipelineState {
    let builds = jobs
        .iter()
        .zip(1..)
        .map(|(job, id)| {
            // Only a build that ran has a runner and a lease.
            let ran = job.status.holds_lease()
                || matches!(job.status, S::Success | S::Failed)
                || job.failure_reason.is_some();
            BuildState {
                id: BuildId(id),
                name: job.name.to_owned(),
                stage_idx: job.stage,
                needs: None,
                when: job.when,
                allow_failure: job.allow_failure.clone(),
                status: job.status,
                attempt: 1,
                retry: job.retry.clone(),
                runner_id: ran.then_some(RUNNER),
                lease_expires_at: ran.then(lease_end),
                acknowledged: ran && !job.unacknowledged,
                canceling_since: (job.status == S::Canceling).then(cancel_time),
                failure_reason: job.failure_reason,
                exit_code: None,
                has_deployment: job.environment,
                resource_group: job.group.then_some(ResourceGroupId(1)),
                interruptible: job.interruptible,
            }
        })
        .collect();
    let mut state = PipelineState {
        status: PipelineStatus::Running,
        builds,
    };
    // The stored status is what the builds imply, as after every committed transition.
    state.status = plan(&state, &PipelineEvent::Refresh)
        .expect("a consistent example")
        .pipeline_status();
    state
}

fn event(state: &PipelineState, event: Event) -> PipelineEvent {
    let id = |name: &str| {
        state
            .builds
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.id)
            .expect("the event names a job of the example")
    };
    match event {
        Event::Finish(name, result) => PipelineEvent::Finish {
            build: id(name),
            runner: RUNNER,
            result,
        },
        Event::FinishBy(name, runner, result) => PipelineEvent::Finish {
            build: id(name),
            runner,
            result,
        },
        Event::Play(name) => PipelineEvent::PlayBuild(id(name)),
        Event::Retry(name) => PipelineEvent::RetryBuild(id(name)),
        Event::CancelPipeline => PipelineEvent::CancelPipeline,
        Event::Supersede(rule) => PipelineEvent::Supersede(rule),
        Event::ExpireLeases => PipelineEvent::ExpireLeases {
            now: lease_end() + chrono::TimeDelta::seconds(1),
            unconfirmed_before: cancel_time(),
        },
        Event::ExpireUnconfirmed => PipelineEvent::ExpireLeases {
            now: cancel_time(),
            unconfirmed_before: cancel_time() + chrono::TimeDelta::seconds(1),
        },
    }
}

/// The builds after `plan`, in id order, and the pipeline's status, as the rows spell them.
fn render(state: &PipelineState, plan: &Plan) -> String {
    let label = |b: &BuildState, attempt: u32| match attempt {
        1 => b.name.clone(),
        n => format!("{}#{n}", b.name),
    };
    let mut rows: Vec<String> = state
        .builds
        .iter()
        .map(|b| {
            let mut row = format!("{} {}", label(b, b.attempt), b.status);
            if let Some(change) = plan.changes().iter().find(|c| c.id == b.id) {
                row = format!("{} {}", label(b, b.attempt), change.to);
                let details: Vec<String> = change
                    .failure_reason
                    .map(|r| r.as_str().to_owned())
                    .into_iter()
                    .chain(change.deployment.map(|d| format!("deployment {d}")))
                    .collect();
                if !details.is_empty() {
                    row = format!("{row} ({})", details.join(", "));
                }
            }
            row
        })
        .collect();
    for new in plan.new_attempts() {
        let source = state
            .builds
            .iter()
            .find(|b| b.id == new.copy_of)
            .expect("a new attempt copies a build of the example");
        let mut row = format!("{} {}", label(source, new.attempt), new.status);
        let details: Vec<String> = new
            .automatic
            .then(|| "automatic".to_owned())
            .into_iter()
            .chain(new.deployment.map(|d| format!("deployment {d}")))
            .collect();
        if !details.is_empty() {
            row = format!("{row} ({})", details.join(", "));
        }
        rows.push(row);
    }
    format!("{} => {}", rows.join(", "), plan.pipeline_status())
}

fn check(rule: &str, jobs: &[Job], on: Event, expected: &str) {
    let state = state(jobs);
    let actual = match plan(&state, &event(&state, on)) {
        Ok(plan) => render(&state, &plan),
        Err(refused) => format!("refused: {refused}"),
    };
    assert_eq!(actual, expected, "{rule}");
}

#[test]
fn on_success_after_a_failure_is_skipped_with_everything_after_it() {
    check(
        "on_success after a failure",
        &[
            job("build", 0, S::Running),
            job("test", 1, S::Created),
            job("deploy", 2, S::Created).deploys(),
        ],
        Event::Finish("build", FAILED),
        "build failed (script_failure), test skipped, deploy skipped (deployment skipped) \
         => failed",
    );
}

#[test]
fn on_success_runs_once_everything_it_needs_passed() {
    check(
        "on_success after a success",
        &[
            job("build", 0, S::Running),
            job("lint", 0, S::Success),
            job("test", 1, S::Created),
        ],
        Event::Finish("build", BuildResult::Success),
        "build success, lint success, test pending => running",
    );
}

#[test]
fn on_failure_runs_only_when_a_job_it_needs_failed() {
    let jobs = [
        job("build", 0, S::Running),
        job("rollback", 1, S::Created).when(OnFailure),
    ];
    check(
        "on_failure after a failure",
        &jobs,
        Event::Finish("build", FAILED),
        "build failed (script_failure), rollback pending => running",
    );
    check(
        "on_failure after a success",
        &jobs,
        Event::Finish("build", BuildResult::Success),
        "build success, rollback skipped => success",
    );
}

#[test]
fn always_runs_whatever_happened_before_it() {
    check(
        "always after a failure",
        &[
            job("build", 0, S::Running),
            job("cleanup", 1, S::Created).when(Always),
        ],
        Event::Finish("build", FAILED),
        "build failed (script_failure), cleanup pending => running",
    );
}

#[test]
fn manual_parks_when_its_needs_passed_and_a_play_starts_it() {
    check(
        "manual after a success",
        &[
            job("build", 0, S::Running),
            job("release", 1, S::Created).when(Manual).deploys(),
        ],
        Event::Finish("build", BuildResult::Success),
        "build success, release manual (deployment blocked) => success",
    );
    check(
        "play of a manual build",
        &[
            job("build", 0, S::Success),
            job("release", 1, S::Manual).when(Manual).deploys(),
        ],
        Event::Play("release"),
        "build success, release pending (deployment created) => running",
    );
}

#[test]
fn a_failure_the_retry_rule_covers_makes_an_automatic_attempt() {
    check(
        "retry: 1, a script failure",
        &[
            job("test", 0, S::Running).retry(1).deploys(),
            job("next", 1, S::Created),
        ],
        Event::Finish("test", FAILED),
        "test failed (script_failure, deployment failed), next created, test#2 pending \
         (automatic, deployment created) => running",
    );
    check(
        "retry only on runner_lost, a script failure",
        &[job("test", 0, S::Running).retry_on(2, Some(&[RetryWhen::RunnerLost]), None)],
        Event::Finish("test", FAILED),
        "test failed (script_failure) => failed",
    );
    check(
        "retry only on exit code 137, exit 1",
        &[job("test", 0, S::Running).retry_on(2, None, Some(&[137]))],
        Event::Finish("test", FAILED),
        "test failed (script_failure) => failed",
    );
    check(
        "retry only on exit code 137, exit 137",
        &[job("test", 0, S::Running).retry_on(2, None, Some(&[137]))],
        Event::Finish(
            "test",
            BuildResult::Failed {
                reason: FailureReason::ScriptFailure,
                exit_code: Some(137),
            },
        ),
        "test failed (script_failure), test#2 pending (automatic) => running",
    );
    check(
        "a build asked to stop that reports a failure",
        &[job("test", 0, S::Canceling).retry(2)],
        Event::Finish("test", FAILED),
        "test failed (script_failure) => failed",
    );
}

#[test]
fn allow_failure_with_exit_codes_allows_only_those() {
    let exit = |code| BuildResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(code),
    };
    check(
        "a listed exit code",
        &[
            job("lint", 0, S::Running).allow_exit_codes(&[42]),
            job("test", 1, S::Created),
        ],
        Event::Finish("lint", exit(42)),
        "lint failed (script_failure), test pending => running",
    );
    check(
        "another exit code",
        &[
            job("lint", 0, S::Running).allow_exit_codes(&[42]),
            job("test", 1, S::Created),
        ],
        Event::Finish("lint", exit(1)),
        "lint failed (script_failure), test skipped => failed",
    );
}

#[test]
fn an_allowed_failure_counts_as_passed() {
    check(
        "allow_failure",
        &[
            job("lint", 0, S::Running).allow_failure(),
            job("test", 1, S::Created),
        ],
        Event::Finish("lint", FAILED),
        "lint failed (script_failure), test pending => running",
    );
}

#[test]
fn a_skipped_on_failure_job_blocks_nothing() {
    check(
        "a skipped on_failure job",
        &[
            job("build", 0, S::Running),
            job("rollback", 1, S::Created).when(OnFailure),
            job("deploy", 2, S::Created),
        ],
        Event::Finish("build", BuildResult::Success),
        "build success, rollback skipped, deploy pending => running",
    );
}

#[test]
fn retrying_a_failed_build_also_retries_the_builds_it_skipped() {
    check(
        "retry of a failed build with skipped dependents",
        &[
            job("build", 0, S::Failed).failed_by(FailureReason::ScriptFailure),
            job("lint", 0, S::Success),
            job("test", 1, S::Skipped),
            job("deploy", 2, S::Skipped).deploys(),
        ],
        Event::Retry("build"),
        "build failed, lint success, test skipped, deploy skipped, build#2 pending, test#2 \
         created, deploy#2 created (deployment created) => running",
    );
}

#[test]
fn canceling_a_running_pipeline_stops_its_runner_and_cancels_the_rest() {
    check(
        "cancel of a running pipeline",
        &[
            job("build", 0, S::Success),
            job("test", 1, S::Running),
            job("lint", 1, S::Pending),
            job("deploy", 2, S::Created).deploys(),
        ],
        Event::CancelPipeline,
        "build success, test canceling, lint canceled, deploy canceled (deployment canceled) \
         => canceling",
    );
}

#[test]
fn a_lost_runner_fails_the_build_and_retries_it_within_its_retry() {
    check(
        "lease lost, a retry left",
        &[job("test", 0, S::Running).retry(1)],
        Event::ExpireLeases,
        "test failed (runner_lost), test#2 pending (automatic) => running",
    );
    check(
        "lease lost, asked to stop",
        &[job("test", 0, S::Canceling).deploys()],
        Event::ExpireLeases,
        "test canceled (runner_lost, deployment canceled) => canceled",
    );
}

#[test]
fn a_claim_never_acknowledged_waits_for_a_runner_again_without_spending_its_attempt() {
    check(
        "short lease passed unacknowledged",
        &[job("test", 0, S::Running).unacknowledged().deploys()],
        Event::ExpireLeases,
        "test pending (deployment created) => pending",
    );
    check(
        "unacknowledged, asked to stop",
        &[job("test", 0, S::Canceling).unacknowledged()],
        Event::ExpireLeases,
        "test canceled (runner_lost) => canceled",
    );
    check(
        "unacknowledged, lease not passed",
        &[job("test", 0, S::Running).unacknowledged()],
        Event::ExpireUnconfirmed,
        "test running => running",
    );
}

#[test]
fn a_cancel_its_runner_never_confirms_is_forced_after_the_grace() {
    check(
        "asked to stop, heartbeating, never confirming",
        &[job("test", 0, S::Canceling).deploys().grouped()],
        Event::ExpireUnconfirmed,
        "test canceled (runner_lost, deployment canceled) => canceled",
    );
    check(
        "running builds have no grace to outlive",
        &[job("test", 0, S::Running)],
        Event::ExpireUnconfirmed,
        "test running => running",
    );
}

#[test]
fn a_report_is_accepted_from_the_holder_only_and_not_after_the_reaper() {
    check(
        "a repeated report changes nothing",
        &[job("test", 0, S::Success)],
        Event::Finish("test", BuildResult::Success),
        "test success => success",
    );
    check(
        "a different report after the end",
        &[job("test", 0, S::Success)],
        Event::Finish("test", FAILED),
        "refused: build 1: cannot fail a success build",
    );
    check(
        "another runner's report",
        &[job("test", 0, S::Running)],
        Event::FinishBy("test", OTHER_RUNNER, BuildResult::Success),
        "refused: build 1 is not held by runner 2",
    );
    check(
        "a report after the reaper failed the build",
        &[job("test", 0, S::Failed).failed_by(FailureReason::RunnerLost)],
        Event::Finish("test", BuildResult::Success),
        "refused: build 1 is failed: the runner no longer holds it",
    );
    check(
        "a report after the reaper canceled the build",
        &[job("test", 0, S::Canceled).failed_by(FailureReason::RunnerLost)],
        Event::Finish("test", BuildResult::Success),
        "refused: build 1 is canceled: the runner no longer holds it",
    );
}

#[test]
fn a_job_of_a_resource_group_waits_for_a_slot_before_it_runs() {
    check(
        "a grouped job whose needs passed",
        &[
            job("build", 0, S::Running),
            job("deploy", 1, S::Created).grouped().deploys(),
        ],
        Event::Finish("build", BuildResult::Success),
        "build success, deploy waiting_for_resource => running",
    );
    check(
        "play of a grouped manual build",
        &[
            job("build", 0, S::Success),
            job("release", 1, S::Manual)
                .when(Manual)
                .grouped()
                .deploys(),
        ],
        Event::Play("release"),
        "build success, release waiting_for_resource (deployment created) => running",
    );
    check(
        "cancel of a pipeline whose deploy waits for a slot",
        &[
            job("build", 0, S::Success),
            job("deploy", 1, S::WaitingForResource).grouped().deploys(),
        ],
        Event::CancelPipeline,
        "build success, deploy canceled (deployment canceled) => canceled",
    );
}

#[test]
fn a_newer_pipeline_cancels_what_its_rule_allows() {
    // Nothing started yet, or only interruptible builds: canceled whole.
    let untouched = [
        job("test", 0, S::Pending),
        job("deploy", 1, S::Created).deploys(),
    ];
    check(
        "conservative, nothing started",
        &untouched,
        Event::Supersede(AutoCancel::Conservative),
        "test canceled, deploy canceled (deployment canceled) => canceled",
    );
    let testing = [
        job("test", 0, S::Running).interruptible(),
        job("deploy", 1, S::Created).deploys(),
    ];
    check(
        "conservative, only interruptible builds started",
        &testing,
        Event::Supersede(AutoCancel::Conservative),
        "test canceling, deploy canceled (deployment canceled) => canceling",
    );
    // A deploy that started and is not interruptible is never interrupted.
    let deploying = [
        job("test", 0, S::Success).interruptible(),
        job("deploy", 1, S::Running).deploys(),
        job("notify", 2, S::Created).interruptible(),
    ];
    check(
        "conservative, a non-interruptible build started",
        &deploying,
        Event::Supersede(AutoCancel::Conservative),
        "test success, deploy running, notify created => running",
    );
    check(
        "interruptible: only the interruptible builds that have not finished",
        &deploying,
        Event::Supersede(AutoCancel::Interruptible),
        "test success, deploy running, notify canceled => running",
    );
    check(
        "none",
        &testing,
        Event::Supersede(AutoCancel::None),
        "test running, deploy created => running",
    );
}

/// A report ends the build in the status `BuildResult::status` names, from any status the state
/// machine lets it end from, and a report that changes nothing found the build there already.
#[test]
fn a_report_ends_the_build_in_its_status() {
    for result in [BuildResult::Success, FAILED, BuildResult::Canceled] {
        for &from in S::ALL {
            match next(from, result.event()) {
                Ok(Step::To(to)) => assert_eq!(to, result.status(), "{from} {result:?}"),
                Ok(Step::Unchanged) => assert_eq!(from, result.status(), "{from} {result:?}"),
                Err(_) => {}
            }
        }
    }
}
