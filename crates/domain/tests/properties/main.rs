//! Property tests of pipeline processing: random valid pipelines driven by random events through
//! an in-memory store that applies each plan exactly as storage does, checked against a naive
//! restatement of the rules.

mod reference;
mod sim;
mod strategy;

use lockstep_domain::{
    BuildEvent, BuildId, BuildResult, BuildStatus, DeploymentStatus, FailureReason, PipelineEvent,
    PipelineState, Plan, RunnerId, plan, plan_all, undecided_builds,
};
use proptest::prelude::*;
use reference::Rules;
use sim::{Event, Outcome, Step, Trace, row, show, simulate};
use strategy::{Run, runs};

/// Cases per property: with up to 40 random events and the drive to the end, the whole file
/// runs in a few seconds in debug mode on a small machine.
const CASES: u32 = 256;

/// Fails the property with a message unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// Simulates `run` and checks `property` on every step, naming the step that broke it.
fn check(run: &Run, property: impl Fn(&Step) -> Result<(), String>) -> Result<(), TestCaseError> {
    let trace = simulate(run);
    for (i, step) in trace.steps.iter().enumerate() {
        if let Err(message) = property(step) {
            return Err(fail(&trace, i, &message));
        }
    }
    Ok(())
}

fn fail(trace: &Trace, i: usize, message: &str) -> TestCaseError {
    let step = &trace.steps[i];
    TestCaseError::fail(format!(
        "step {i}: {:?}\n{message}\noutcome: {:?}\nbefore: {}after: {}",
        step.event,
        step.outcome,
        show(&step.before),
        show(&step.after),
    ))
}

/// Storage's claim, as the simulator does it, touches only the claimed build.
/// A grant moves its build from waiting to pending and changes nothing else, the pipeline's
/// status included: that is what lets storage grant a slot without the pipeline's lock.
fn grant_changes_only_its_build(step: &Step, build: BuildId) -> Result<(), String> {
    ensure!(
        step.after.builds.len() == step.before.builds.len(),
        "a grant added a build"
    );
    for (before, after) in step.before.builds.iter().zip(&step.after.builds) {
        if before.id == build {
            ensure!(
                before.status == BuildStatus::WaitingForResource
                    && after.status == BuildStatus::Pending,
                "granted build {build} went from {} to {}",
                before.status,
                after.status
            );
        } else {
            ensure!(
                before == after,
                "granting {build} changed build {}",
                before.id
            );
        }
    }
    // The stored status may lag behind an acquire; compare what the builds imply.
    let implied = |state| {
        plan(state, &PipelineEvent::Refresh)
            .map(|p| p.pipeline_status())
            .map_err(|e| e.to_string())
    };
    let (before, after) = (implied(&step.before)?, implied(&step.after)?);
    ensure!(
        before == after,
        "a grant would move the pipeline from {before} to {after}"
    );
    Ok(())
}

fn acquire_changes_only_its_build(
    step: &Step,
    build: BuildId,
    runner: RunnerId,
) -> Result<(), String> {
    ensure!(
        step.after.status == step.before.status,
        "acquire changed the pipeline's status"
    );
    ensure!(
        step.after.builds.len() == step.before.builds.len(),
        "acquire added a build"
    );
    for (before, after) in step.before.builds.iter().zip(&step.after.builds) {
        if before.id == build {
            ensure!(
                before.status == BuildStatus::Pending
                    && after.status == BuildStatus::Running
                    && after.runner_id == Some(runner)
                    && after.lease_expires_at.is_some(),
                "acquired build {build} is {} with runner {:?}",
                after.status,
                after.runner_id,
            );
        } else {
            ensure!(
                before == after,
                "acquiring build {build} changed build {}",
                before.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_pipeline_run_reaches_a_terminal_state(run in runs()) {
        let trace = simulate(&run);
        let end = trace.end();
        prop_assert!(
            end.status.is_terminal() && end.builds.iter().all(|b| !b.status.is_active()),
            "after {} rounds of fair driving:\n{}",
            trace.round_limit,
            show(end),
        );
        // A driver that plays manual builds gets every one of them run.
        prop_assert!(
            !run.play_manual || end.builds.iter().all(|b| b.status != BuildStatus::Manual),
            "manual builds left after {} rounds of fair driving that plays them:\n{}",
            trace.round_limit,
            show(end),
        );
    }

    #[test]
    fn a_terminal_build_never_changes(run in runs()) {
        check(&run, terminal_builds_stay_terminal)?;
    }

    #[test]
    fn builds_start_park_or_skip_exactly_as_their_needs_decide(run in runs()) {
        check(&run, decisions_follow_needs)?;
    }

    #[test]
    fn a_deployment_mirrors_its_build(run in runs()) {
        check(&run, deployments_mirror_builds)?;
    }

    #[test]
    fn a_pipeline_is_terminal_exactly_when_no_build_is_active(run in runs()) {
        check(&run, pipeline_status_follows_builds)?;
    }

    #[test]
    fn plans_are_deterministic_and_refused_events_change_nothing(run in runs()) {
        check(&run, plans_are_repeatable_and_refusals_inert)?;
    }

    #[test]
    fn changes_come_in_ascending_id_order_whatever_the_row_order(run in runs()) {
        check(&run, changes_are_in_id_order)?;
    }

    #[test]
    fn a_plan_changes_only_what_its_event_touches(run in runs()) {
        check(&run, changes_are_caused_by_the_event)?;
    }

    #[test]
    fn retries_copy_exactly_the_right_builds(run in runs()) {
        check(&run, retries_are_exact)?;
    }

    #[test]
    fn finishes_planned_together_end_where_one_at_a_time_ends(run in runs()) {
        check(&run, batch_matches_sequence)?;
    }
}

/// Finishing every running build of the state in one batch (with a few refusals mixed in) ends
/// exactly where planning and applying the same events one by one does, with the same answers.
fn batch_matches_sequence(step: &Step) -> Result<(), String> {
    // Automatic retries add rows, which replaying statuses does not model; the reference model
    // checks them (`retries_copy_exactly_the_right_builds`). Here no build retries by itself.
    let mut without_retries = step.before.clone();
    for build in &mut without_retries.builds {
        build.retry = lockstep_domain::RetryPolicy::never();
    }
    let state = &without_retries;
    let endings = [
        BuildResult::Success,
        BuildResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(2),
        },
        BuildResult::Canceled,
    ];
    let mut events = vec![PipelineEvent::Finish {
        build: sim::UNKNOWN,
        runner: RunnerId(1),
        result: BuildResult::Success,
    }];
    for (i, build) in state.builds.iter().enumerate() {
        let Some(runner) = build.runner_id else {
            continue;
        };
        let result = endings[i % endings.len()];
        // A stranger's report first: refused, and it must not disturb the holder's.
        events.push(PipelineEvent::Finish {
            build: build.id,
            runner: RunnerId(runner.0 + 1_000),
            result,
        });
        events.push(PipelineEvent::Finish {
            build: build.id,
            runner,
            result,
        });
    }
    let mut sequential = state.clone();
    let mut expected = Vec::new();
    for event in &events {
        match plan(&sequential, event) {
            Ok(planned) => {
                apply_statuses(&mut sequential, &planned);
                expected.push(Ok(()));
            }
            Err(error) => expected.push(Err(error)),
        }
    }
    let (together, outcomes) =
        plan_all(state, &events).map_err(|e| format!("the batch was refused: {e}"))?;
    ensure!(
        outcomes == expected,
        "answers {outcomes:?}, one by one {expected:?}"
    );
    ensure!(
        together.new_attempts().is_empty(),
        "finishes made new attempts"
    );
    let mut batched = state.clone();
    apply_statuses(&mut batched, &together);
    ensure!(
        batched == sequential,
        "batched:\n{}one by one:\n{}",
        show(&batched),
        show(&sequential)
    );
    Ok(())
}

fn apply_statuses(state: &mut PipelineState, planned: &Plan) {
    for change in planned.changes() {
        if let Some(build) = state.builds.iter_mut().find(|b| b.id == change.id) {
            build.status = change.to;
        }
    }
    state.status = planned.pipeline_status();
}

/// No change starts from a terminal status, and a terminal row keeps its status.
fn terminal_builds_stay_terminal(step: &Step) -> Result<(), String> {
    for change in step.plan().map_or(&[][..], |p| p.changes()) {
        let before = row(&step.before, change.id).ok_or("change of an unknown build")?;
        ensure!(
            change.from == before.status,
            "change {change:?} of a {} build",
            before.status
        );
        ensure!(
            change.from != change.to,
            "change {change:?} changes nothing"
        );
        ensure!(
            !change.from.is_terminal(),
            "change {change:?} moves a terminal build"
        );
    }
    for before in step.before.builds.iter().filter(|b| b.status.is_terminal()) {
        let after = row(&step.after, before.id).ok_or("a build row disappeared")?;
        ensure!(
            after.status == before.status,
            "build {} left {}",
            before.id,
            before.status
        );
    }
    Ok(())
}

/// Every build processing moved out of `created` went where its `when` and its needs send it, and
/// no created build whose needs have settled is left behind.
fn decisions_follow_needs(step: &Step) -> Result<(), String> {
    let rules = Rules::new(&step.after);
    let explicit_skip = match step.event {
        Event::Pipeline(PipelineEvent::SkipBuild(id)) => Some(id),
        _ => None,
    };
    // Every build that processing moved out of `created` in this step.
    let decided: Vec<usize> = (0..step.after.builds.len())
        .filter(|&r| {
            let after = &step.after.builds[r];
            let was = row(&step.before, after.id).map_or(BuildStatus::Created, |b| b.status);
            was == BuildStatus::Created
                && after.status != BuildStatus::Created
                && after.status != BuildStatus::Canceled
                && Some(after.id) != explicit_skip
        })
        .collect();
    for r in decided {
        let after = &step.after.builds[r];
        ensure!(
            rules.is_latest(r),
            "build {} is not the latest attempt",
            after.id
        );
        ensure!(
            rules.decision(r) == Some(after.status),
            "build {} became {}, its needs say {:?}",
            after.id,
            after.status,
            rules.decision(r),
        );
    }
    ensure!(
        rules.undecided().is_empty(),
        "builds {:?} were left undecided",
        rules.undecided()
    );
    let undecided = undecided_builds(&step.after).map_err(|e| e.to_string())?;
    ensure!(
        undecided.is_empty(),
        "the domain says {undecided:?} were left undecided"
    );
    if step.plan().is_some() {
        let refresh = plan(&step.after, &PipelineEvent::Refresh).map_err(|e| e.to_string())?;
        ensure!(
            refresh.is_noop(),
            "processing left work for a refresh: {refresh:?}"
        );
    }
    Ok(())
}

/// A deployment changes exactly when the deployment status mapped from its build does.
fn deployments_mirror_builds(step: &Step) -> Result<(), String> {
    let Some(plan) = step.plan() else {
        return Ok(());
    };
    for change in plan.changes() {
        let build = row(&step.before, change.id).ok_or("change of an unknown build")?;
        let (from, to) = (
            DeploymentStatus::for_build(change.from),
            DeploymentStatus::for_build(change.to),
        );
        let expected = (build.has_deployment && from != to).then_some(to);
        ensure!(
            change.deployment == expected,
            "change {change:?} should carry {expected:?}"
        );
    }
    for new in plan.new_attempts() {
        let source = row(&step.before, new.copy_of).ok_or("copy of an unknown build")?;
        let expected = source
            .has_deployment
            .then(|| DeploymentStatus::for_build(new.status));
        ensure!(
            new.deployment == expected,
            "new attempt {new:?} should carry {expected:?}"
        );
    }
    Ok(())
}

/// The pipeline is terminal exactly when no latest build is active (manual builds are not), and
/// then says how they ended; every transition leaves exactly the status its builds imply, so a
/// finished pipeline opens again when one of its manual builds is played.
fn pipeline_status_follows_builds(step: &Step) -> Result<(), String> {
    let state = &step.after;
    let rules = Rules::new(state);
    ensure!(
        state.status.is_terminal() == rules.terminal_status().is_some(),
        "pipeline is {} while its latest builds say {:?}",
        state.status,
        rules.terminal_status(),
    );
    if let Some(expected) = rules.terminal_status() {
        ensure!(
            state.status == expected,
            "pipeline is {}, expected {expected}",
            state.status
        );
    }
    let active = state.builds.iter().any(|b| b.status.is_active());
    ensure!(
        !(active && state.status.is_terminal()),
        "terminal pipeline with an active build"
    );
    // Storage's claim leaves the pipeline's status for the next transition to bring up to date,
    // and a refused event writes nothing, so only created and planned states are exact.
    if matches!(step.outcome, Outcome::Created | Outcome::Planned(_)) {
        ensure!(
            state.status == rules.status(),
            "pipeline is {}, its builds say {}",
            state.status,
            rules.status()
        );
    }
    Ok(())
}

/// Planning twice gives the same answer; an event is refused exactly when the rules say so, with
/// their reason, and then nothing changes.
fn plans_are_repeatable_and_refusals_inert(step: &Step) -> Result<(), String> {
    let Some(event) = step.pipeline_event() else {
        return Ok(());
    };
    let again = plan(&step.before, event);
    let expected_rejection = Rules::new(&step.before).rejection(event);
    match &step.outcome {
        Outcome::Planned(first) => {
            ensure!(again.as_ref() == Ok(first), "planned again: {again:?}");
            ensure!(
                expected_rejection.is_none(),
                "accepted, expected {expected_rejection:?}"
            );
        }
        Outcome::Rejected(error) => {
            ensure!(again.as_ref() == Err(error), "planned again: {again:?}");
            ensure!(
                step.after == step.before,
                "a refused event changed the pipeline"
            );
            ensure!(
                expected_rejection.as_ref() == Some(error),
                "refused with {error}, expected {expected_rejection:?}",
            );
        }
        Outcome::Created | Outcome::Acquired | Outcome::Granted => {}
    }
    Ok(())
}

/// Changes come in ascending id order (storage locks in that order), whatever order rows come in.
fn changes_are_in_id_order(step: &Step) -> Result<(), String> {
    let (Some(planned), Some(event)) = (step.plan(), step.pipeline_event()) else {
        return Ok(());
    };
    let ids: Vec<_> = planned.changes().iter().map(|c| c.id).collect();
    ensure!(ids.is_sorted_by(|a, b| a < b), "changes in order {ids:?}");
    // Storage reads rows in id order; the plan must not rely on it.
    let mut reversed = step.before.clone();
    reversed.builds.reverse();
    let other = plan(&reversed, event).map_err(|e| e.to_string())?;
    ensure!(
        other.changes() == planned.changes(),
        "rows reversed, changes {:?}",
        other.changes()
    );
    ensure!(
        other.pipeline_status() == planned.pipeline_status(),
        "rows reversed, pipeline {}",
        other.pipeline_status()
    );
    let (mut mine, mut theirs) = (
        planned.new_attempts().to_vec(),
        other.new_attempts().to_vec(),
    );
    mine.sort_by_key(|n| n.copy_of);
    theirs.sort_by_key(|n| n.copy_of);
    ensure!(mine == theirs, "rows reversed, new attempts {theirs:?}");
    Ok(())
}

/// Every change is either the event's own move of a build or a decision of processing about a
/// build the event does not name, and every move the event names happens.
fn changes_are_caused_by_the_event(step: &Step) -> Result<(), String> {
    if let Event::Acquire { build, runner } = step.event {
        return acquire_changes_only_its_build(step, build, runner);
    }
    if let Event::Grant { build } = step.event {
        return grant_changes_only_its_build(step, build);
    }
    let (Some(plan), Some(event)) = (step.plan(), step.pipeline_event()) else {
        return Ok(());
    };
    let rules = Rules::new(&step.before);
    for r in 0..step.before.builds.len() {
        let id = step.before.builds[r].id;
        let change = plan.changes().iter().find(|c| c.id == id);
        let direct = rules.direct_move(event, r);
        let decision = change.is_some_and(|c| {
            c.from == BuildStatus::Created
                && matches!(
                    c.to,
                    BuildStatus::Pending
                        | BuildStatus::WaitingForResource
                        | BuildStatus::Manual
                        | BuildStatus::Skipped
                )
        });
        match (direct.and_then(|moved| rules.moved_to(r, moved)), change) {
            (Some(to), Some(c)) => ensure!(
                c.to == to,
                "{direct:?} took build {id} to {}, not {to}",
                c.to
            ),
            (Some(to), None) => {
                return Err(format!("{direct:?} should have moved build {id} to {to}"));
            }
            // A build the event names but leaves where it is (a repeat) is never `created`, so
            // processing has nothing to decide about it either.
            (None, Some(c)) => ensure!(
                decision && direct.is_none(),
                "build {id} moved {} -> {} though {direct:?} leaves it",
                c.from,
                c.to
            ),
            (None, None) => {}
        }
        if let Some(c) = change {
            let expected = match (c.to, direct) {
                // Failed, or canceled without its runner's confirmation: the reaper's reason.
                (BuildStatus::Failed | BuildStatus::Canceled, Some(BuildEvent::LoseLease)) => {
                    Some(FailureReason::RunnerLost)
                }
                (BuildStatus::Failed, Some(BuildEvent::Fail)) => Some(FailureReason::ScriptFailure),
                _ => None,
            };
            ensure!(
                c.failure_reason == expected,
                "build {id} failed with {:?}, expected {expected:?}",
                c.failure_reason
            );
        }
    }
    Ok(())
}

/// New attempts copy exactly the builds the event retries: the target and the skipped builds below
/// it, every failed or canceled build, or a build whose runner was lost with retries left.
fn retries_are_exact(step: &Step) -> Result<(), String> {
    let (Some(plan), Some(event)) = (step.plan(), step.pipeline_event()) else {
        return Ok(());
    };
    let rules = Rules::new(&step.before);
    let mut copied: Vec<_> = plan.new_attempts().iter().map(|n| n.copy_of).collect();
    copied.sort_unstable();
    let expected = rules.retries(event);
    ensure!(
        copied == expected,
        "copied {copied:?}, expected {expected:?}"
    );
    for new in plan.new_attempts() {
        let source = row(&step.before, new.copy_of).ok_or("copy of an unknown build")?;
        ensure!(
            new.attempt == source.attempt + 1,
            "attempt {} after {}",
            new.attempt,
            source.attempt
        );
    }
    Ok(())
}
