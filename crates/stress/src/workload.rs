//! What the storm does: the pipelines it creates and the mix of operations it draws from.

use lockstep_domain::{
    AllowFailure, JobDefinition, PipelineDefinition, ProcessMode, Retry, RetryWhen, ValidPipeline,
    When,
};

/// One step a storm thread takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Create,
    Acquire,
    Succeed,
    Fail,
    /// Several held builds, of one pipeline or several, reported in one call in random order.
    FinishAll,
    Heartbeat,
    CancelBuild,
    SkipBuild,
    PlayBuild,
    CancelPipeline,
    RetryBuild,
    RetryPipeline,
    ExpireLeases,
    Refresh,
    /// Sets a resource group's limit to 1 or 2 again (its mode stays).
    ConfigureGroup,
    /// A held build records its artifacts and one of a few caches (rows only: the storm has
    /// no object store), racing other builds for the same cache key.
    StoreArchives,
}

/// The storm's resource groups: every mode, limits 1 and 2. Their modes never change, since
/// the grant-order invariant reads grant times under the mode the group has now.
pub(crate) const GROUPS: [(&str, ProcessMode, u32); 5] = [
    ("production", ProcessMode::OldestFirst, 1),
    ("staging", ProcessMode::NewestFirst, 2),
    ("region-a", ProcessMode::NewestReadyFirst, 1),
    ("region-b", ProcessMode::Unordered, 2),
    ("qa", ProcessMode::OldestFirst, 2),
];

/// Relative weights. Failures and cancels dominate on purpose: they are the transitions that
/// touch many builds and deployments at once, where the GitLab deadlocks came from.
const MIX: [(Op, u32); 16] = [
    (Op::Create, 9),
    (Op::Acquire, 22),
    (Op::Succeed, 9),
    (Op::Fail, 16),
    (Op::FinishAll, 8),
    (Op::Heartbeat, 4),
    (Op::CancelBuild, 6),
    (Op::SkipBuild, 3),
    (Op::PlayBuild, 3),
    (Op::CancelPipeline, 9),
    (Op::RetryBuild, 8),
    (Op::RetryPipeline, 3),
    (Op::ExpireLeases, 3),
    (Op::Refresh, 2),
    (Op::ConfigureGroup, 1),
    (Op::StoreArchives, 3),
];

/// Draws the next operation; one that needs a held build becomes an acquire when none is held.
pub(crate) fn pick(rng: &mut fastrand::Rng, holding: bool) -> Op {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut roll = rng.u32(0..total);
    let op = MIX
        .iter()
        .find(|(_, weight)| {
            if roll < *weight {
                true
            } else {
                roll -= weight;
                false
            }
        })
        .map_or(Op::Acquire, |(op, _)| *op);
    match op {
        Op::Succeed | Op::Fail | Op::FinishAll | Op::Heartbeat | Op::StoreArchives if !holding => {
            Op::Acquire
        }
        other => other,
    }
}

fn job(name: &str, stage: &str) -> JobDefinition {
    JobDefinition {
        name: name.to_owned(),
        stage: Some(stage.to_owned()),
        script: vec![format!("make {name}")],
        ..JobDefinition::default()
    }
}

fn with(mut job: JobDefinition, edit: impl FnOnce(&mut JobDefinition)) -> JobDefinition {
    edit(&mut job);
    job
}

fn env(job: JobDefinition, environment: &str) -> JobDefinition {
    with(job, |j| j.environment = Some(environment.into()))
}

fn interruptible(job: JobDefinition) -> JobDefinition {
    with(job, |j| j.interruptible = true)
}

fn group(job: JobDefinition, group: &str) -> JobDefinition {
    with(job, |j| j.resource_group = Some(group.to_owned()))
}

fn needs(job: JobDefinition, needs: &[&str]) -> JobDefinition {
    with(job, |j| {
        j.needs = Some(
            needs
                .iter()
                .map(|n| lockstep_domain::Need::from(*n))
                .collect(),
        );
    })
}

/// The pipeline shapes the storm creates, all with deployments, most of them in resource
/// groups.
pub(crate) fn pipelines() -> Vec<ValidPipeline> {
    let release = vec![
        interruptible(job("build", "build")),
        interruptible(job("unit", "test")),
        interruptible(job("lint", "test")),
        group(env(job("staging", "deploy"), "staging"), "staging"),
        group(
            env(needs(job("production", "deploy"), &["unit"]), "production"),
            "production",
        ),
        with(job("notify", "notify"), |j| j.when = When::Always),
    ];
    // A manual gate with no needs waits from the start, so plays find something to start.
    let gate = env(
        needs(
            with(job("approve", "prepare"), |j| j.when = When::Manual),
            &[],
        ),
        "approval",
    );
    let mut fan_out = vec![job("prepare", "prepare"), gate];
    fan_out.extend((1..=6).map(|i| interruptible(job(&format!("test-{i}"), "test"))));
    fan_out.extend((1..=3).map(|i| {
        group(
            env(job(&format!("qa-{i}"), "deploy"), &format!("qa/{i}")),
            "qa",
        )
    }));
    let dag = vec![
        // Retries in each of GitLab's shapes: any failure, lost runners only, exit codes only
        // (the storm's failures exit 1 to 255).
        with(job("compile", "build"), |j| j.retry = Some(Retry::times(1))),
        group(
            env(needs(job("deploy-a", "deploy"), &["compile"]), "region-a"),
            "region-a",
        ),
        group(
            env(needs(job("deploy-b", "deploy"), &["compile"]), "region-b"),
            "region-b",
        ),
        group(
            env(
                with(job("rollback", "after"), |j| j.when = When::OnFailure),
                "region-a",
            ),
            "region-a",
        ),
        group(
            env(
                with(job("promote", "after"), |j| j.when = When::Manual),
                "production",
            ),
            "production",
        ),
        with(job("cleanup", "after"), |j| {
            j.when = When::Always;
            j.allow_failure = AllowFailure::Yes;
        }),
        with(job("lint", "build"), |j| {
            j.allow_failure = AllowFailure::exit_codes((1..=50).collect());
            j.retry = Some(Retry {
                max: 2,
                when: Some(vec![RetryWhen::RunnerLost]),
                exit_codes: Some(vec![137, 143]),
            });
        }),
    ];
    [release, fan_out, dag]
        .into_iter()
        .map(|jobs| {
            PipelineDefinition { jobs }
                .validate()
                .expect("the storm's pipelines are valid")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_can_be_drawn_and_held_ones_need_a_build() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            seen.insert(pick(&mut rng, true));
            assert!(!matches!(
                pick(&mut rng, false),
                Op::Succeed | Op::Fail | Op::Heartbeat
            ));
        }
        assert_eq!(seen.len(), MIX.len());
    }

    #[test]
    fn the_pipelines_have_deployments() {
        for pipeline in pipelines() {
            assert!(pipeline.jobs().iter().any(|j| j.environment().is_some()));
        }
    }
}
