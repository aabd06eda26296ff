//! Generators: valid pipeline definitions and the actions a run is made of.

use lockstep_domain::{
    AllowFailure, AutoCancel, Environment, JobDefinition, PipelineDefinition, Retry, RetryWhen,
    When, limits,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

const MAX_JOBS: usize = 10;
const MAX_STAGES: usize = 4;
const MAX_ACTIONS: usize = 40;
/// Runners are numbered `1..=RUNNERS`.
pub(crate) const RUNNERS: i64 = 3;

/// One generated run: a pipeline, the random events sent to it, the coin flips the fair driver
/// uses afterwards to decide whether each build it finishes succeeds, and whether the driver
/// plays the manual builds it finds once nothing else is left (otherwise it leaves them parked,
/// and the pipeline ends with them).
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) definition: PipelineDefinition,
    pub(crate) actions: Vec<Action>,
    pub(crate) verdicts: Vec<bool>,
    pub(crate) play_manual: bool,
}

/// How a runner says a build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Success,
    /// Exit code 1.
    Failed,
    /// Exit code 137, the one some rules list.
    Killed,
    Canceled,
}

/// Something that happens to the pipeline. An `Index` picks among the builds that fit at the
/// moment the action runs, so that actions stay meaningful while the pipeline changes.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// The pipeline's resource group gives a slot to a waiting build.
    Grant(Index),
    /// A runner claims a pending build.
    Acquire {
        pick: Index,
        runner: i64,
        lease_minutes: i64,
        /// Its runner acknowledges it at once; otherwise never (the answer was lost).
        acknowledged: bool,
    },
    /// A runner reports the end of a build: normally a build it holds; with `stale`, any build
    /// that ever had a runner (a repeated or late report); with `wrong_runner`, by another runner.
    Finish {
        pick: Index,
        ending: Ending,
        wrong_runner: bool,
        stale: bool,
    },
    CancelBuild(Index),
    SkipBuild(Index),
    /// Someone plays a build: with `manual`, one of the manual builds if there is any; otherwise
    /// any build, which the domain mostly refuses.
    PlayBuild {
        pick: Index,
        manual: bool,
    },
    RetryBuild(Index),
    /// A build event naming an id that is not part of the pipeline; the index picks the event.
    UnknownBuild(Index),
    CancelPipeline,
    /// A newer pipeline on the same ref supersedes this one, by this rule.
    Supersede(AutoCancel),
    RetryPipeline,
    /// Expires leases as of this many minutes after the run's clock, forcing the cancels asked
    /// for `grace_minutes` or more before that.
    ExpireLeases {
        minutes_ahead: i64,
        grace_minutes: i64,
    },
    Refresh,
}

pub(crate) fn runs() -> impl Strategy<Value = Run> {
    (
        pipelines(),
        vec(action(), 0..=MAX_ACTIONS),
        vec(any::<bool>(), 1..=8),
        any::<bool>(),
    )
        .prop_map(|(definition, actions, verdicts, play_manual)| Run {
            definition,
            actions,
            verdicts,
            play_manual,
        })
}

fn action() -> impl Strategy<Value = Action> {
    let ending = prop_oneof![
        3 => Just(Ending::Success),
        2 => Just(Ending::Failed),
        1 => Just(Ending::Killed),
        1 => Just(Ending::Canceled),
    ];
    prop_oneof![
        2 => any::<Index>().prop_map(Action::Grant),
        5 => (any::<Index>(), 1..=RUNNERS, 1..=5i64, prop::bool::weighted(0.8)).prop_map(
            |(pick, runner, lease_minutes, acknowledged)| Action::Acquire {
                pick,
                runner,
                lease_minutes,
                acknowledged,
            }
        ),
        5 => (
            any::<Index>(),
            ending,
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(pick, ending, wrong_runner, stale)| Action::Finish {
                pick,
                ending,
                wrong_runner,
                stale,
            }),
        1 => any::<Index>().prop_map(Action::CancelBuild),
        1 => any::<Index>().prop_map(Action::SkipBuild),
        2 => (any::<Index>(), prop::bool::weighted(0.8))
            .prop_map(|(pick, manual)| Action::PlayBuild { pick, manual }),
        2 => any::<Index>().prop_map(Action::RetryBuild),
        1 => any::<Index>().prop_map(Action::UnknownBuild),
        1 => Just(Action::CancelPipeline),
        1 => prop::sample::select(AutoCancel::ALL.to_vec()).prop_map(Action::Supersede),
        1 => Just(Action::RetryPipeline),
        2 => (0..=6i64, 0..=6i64).prop_map(|(minutes_ahead, grace_minutes)| {
            Action::ExpireLeases { minutes_ahead, grace_minutes }
        }),
        1 => Just(Action::Refresh),
    ]
}

/// A job before its needs are resolved against the other jobs.
#[derive(Debug, Clone)]
struct JobSeed {
    stage: usize,
    /// `None`: implicit needs. `Some(mask)`: candidates for explicit needs.
    needs: Option<Vec<bool>>,
    /// Where a job with explicit needs sits in the order needs follow (see [`define`]).
    level: usize,
    when: When,
    allow_failure: AllowFailure,
    retry: Retry,
    environment: Option<&'static str>,
    /// In the pipeline's one resource group.
    grouped: bool,
    interruptible: bool,
}

fn pipelines() -> impl Strategy<Value = PipelineDefinition> {
    (1..=MAX_JOBS, 1..=MAX_STAGES)
        .prop_flat_map(|(jobs, stages)| vec(job_seed(jobs, stages), jobs))
        .prop_map(|seeds| define(&seeds))
}

/// `retry` in each of GitLab's shapes: a count, reasons only, exit codes only, both.
fn retry() -> impl Strategy<Value = Retry> {
    let rule = prop_oneof![
        Just((None, None)),
        Just((Some(vec![RetryWhen::RunnerLost]), None)),
        Just((None, Some(vec![137]))),
        Just((Some(vec![RetryWhen::ScriptFailure]), Some(vec![137]))),
    ];
    (0..=limits::MAX_RETRY, rule).prop_map(|(max, (when, exit_codes))| Retry {
        max,
        when,
        exit_codes,
    })
}

fn job_seed(jobs: usize, stages: usize) -> impl Strategy<Value = JobSeed> {
    let when = prop_oneof![
        4 => Just(When::OnSuccess),
        1 => Just(When::OnFailure),
        1 => Just(When::Always),
        1 => Just(When::Manual),
    ];
    (
        0..stages,
        prop::option::of(vec(prop::bool::weighted(0.4), jobs)),
        0..stages,
        when,
        prop_oneof![
            3 => Just(AllowFailure::No),
            1 => Just(AllowFailure::Yes),
            1 => Just(AllowFailure::exit_codes(vec![137])),
        ],
        retry(),
        prop::option::weighted(0.3, prop::sample::select(vec!["production", "staging"])),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(
                stage,
                needs,
                level,
                when,
                allow_failure,
                retry,
                environment,
                grouped,
                interruptible,
            )| JobSeed {
                stage,
                needs,
                level,
                when,
                allow_failure,
                retry,
                environment,
                grouped,
                interruptible,
            },
        )
}

fn job_name(i: usize) -> String {
    format!("job-{i}")
}

/// Stages are interleaved in job order, so validation numbers them by first appearance.
///
/// No cycle can form: every need points down the order of (level, position), where a job with
/// implicit needs sits at the level of its stage number and a job with explicit needs at a level
/// no higher than that. Implicit needs point to earlier stages, so to lower levels; explicit
/// needs may name any job lower in the order, even one of a later stage.
fn define(seeds: &[JobSeed]) -> PipelineDefinition {
    let mut seen: Vec<usize> = Vec::new();
    let stage_idx: Vec<usize> = seeds
        .iter()
        .map(|seed| {
            seen.iter()
                .position(|&s| s == seed.stage)
                .unwrap_or_else(|| {
                    seen.push(seed.stage);
                    seen.len() - 1
                })
        })
        .collect();
    let key = |i: usize| match seeds[i].needs {
        None => (stage_idx[i], i),
        Some(_) => (seeds[i].level % (stage_idx[i] + 1), i),
    };
    let jobs = seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| JobDefinition {
            name: job_name(i),
            stage: Some(format!("stage-{}", seed.stage)),
            script: vec!["true".to_owned()],
            needs: seed.needs.as_ref().map(|mask| {
                (0..seeds.len())
                    .filter(|&j| mask[j] && key(j) < key(i))
                    .map(|j| lockstep_domain::Need::from(job_name(j)))
                    .collect()
            }),
            when: seed.when,
            allow_failure: seed.allow_failure.clone(),
            environment: seed.environment.map(Environment::deploy),
            retry: Some(seed.retry.clone()),
            resource_group: seed.grouped.then(|| "deploys".to_owned()),
            interruptible: seed.interruptible,
            ..JobDefinition::default()
        })
        .collect();
    PipelineDefinition { jobs }
}
