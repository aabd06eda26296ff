//! The dependency graph of a pipeline's jobs and pipeline processing over it: which created
//! jobs may run, which are skipped, and what the pipeline's status is.
//!
//! A job either lists its `needs` explicitly or, when it lists none, needs every job of earlier
//! stages. The second kind would cost O(n²) edges, so each stage gets a barrier node that waits
//! for the previous barrier and the previous stage's jobs; a job without explicit needs waits for
//! its stage's barrier. A topological order over jobs and barriers then lets processing decide
//! every job in a single pass.

use crate::definition::When;
use crate::status::{BuildStatus, PipelineStatus};
use std::collections::VecDeque;

/// What a job waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Exactly these jobs (indices into the job set).
    Explicit(Vec<usize>),
    /// Every job of every earlier stage.
    EarlierStages,
}

/// The jobs of one pipeline (one attempt per job) and a topological order over them.
#[derive(Debug, Clone)]
pub(crate) struct JobSet {
    stage: Vec<u32>,
    needs: Vec<Needs>,
    when: Vec<When>,
    allow_failure: Vec<bool>,
    /// Whether each job belongs to a resource group (and so waits for a slot before it runs).
    grouped: Vec<bool>,
    stage_count: usize,
    order: Vec<usize>,
}

/// How the jobs a job needs turned out, seen by the job that needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Passed,
    Canceled,
    Failed,
}

/// The needs of one job: whether all of them have settled, and the worst outcome among those
/// that have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NeedsState {
    settled: bool,
    outcome: Outcome,
}

impl NeedsState {
    const NONE: Self = Self {
        settled: true,
        outcome: Outcome::Passed,
    };

    fn add(&mut self, other: Option<Outcome>) {
        match other {
            Some(outcome) => self.outcome = self.outcome.max(outcome),
            None => self.settled = false,
        }
    }

    fn merge(&mut self, other: Self) {
        self.settled &= other.settled;
        self.outcome = self.outcome.max(other.outcome);
    }
}

impl JobSet {
    /// Builds the graph. Stages must be numbered densely from 0. On a cycle, returns the jobs
    /// that form it, in order.
    pub(crate) fn new(
        stage: Vec<u32>,
        needs: Vec<Needs>,
        when: Vec<When>,
        allow_failure: Vec<bool>,
    ) -> Result<Self, Vec<usize>> {
        let stage_count = stage.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
        let grouped = vec![false; stage.len()];
        let mut jobs = Self {
            stage,
            needs,
            when,
            allow_failure,
            grouped,
            stage_count,
            order: Vec::new(),
        };
        jobs.order = jobs.topological_order()?;
        Ok(jobs)
    }

    /// Marks the jobs that belong to a resource group: once their needs let them run they wait
    /// for a slot (`waiting_for_resource`) instead of becoming pending.
    pub(crate) fn with_groups(mut self, grouped: Vec<bool>) -> Self {
        debug_assert_eq!(grouped.len(), self.len());
        self.grouped = grouped;
        self
    }

    /// Whether job `job`'s failure, as it stands, lets what needs it (and the pipeline) pass:
    /// with `allow_failure: {exit_codes}` that depends on the exit code, known once it failed.
    pub(crate) fn set_allow_failure(&mut self, job: usize, allowed: bool) {
        self.allow_failure[job] = allowed;
    }

    pub(crate) fn len(&self) -> usize {
        self.stage.len()
    }

    /// Node ids: jobs are `0..n`, the barrier of stage `s` is `n + s`.
    fn predecessors(&self, node: usize) -> Vec<usize> {
        let n = self.len();
        if node < n {
            match &self.needs[node] {
                Needs::Explicit(list) => list.clone(),
                Needs::EarlierStages => vec![n + self.stage[node] as usize],
            }
        } else {
            let stage = node - n;
            if stage == 0 {
                return Vec::new();
            }
            let mut preds: Vec<usize> = (0..n)
                .filter(|&j| self.stage[j] as usize == stage - 1)
                .collect();
            preds.push(n + stage - 1);
            preds
        }
    }

    fn topological_order(&self) -> Result<Vec<usize>, Vec<usize>> {
        let n = self.len();
        let total = n + self.stage_count;
        let mut successors = vec![Vec::new(); total];
        let mut missing = vec![0usize; total];
        for (node, missing) in missing.iter_mut().enumerate() {
            for pred in self.predecessors(node) {
                successors[pred].push(node);
                *missing += 1;
            }
        }
        let mut ready: VecDeque<usize> = (0..total).filter(|&v| missing[v] == 0).collect();
        let mut order = Vec::with_capacity(n);
        let mut seen = 0;
        while let Some(node) = ready.pop_front() {
            seen += 1;
            if node < n {
                order.push(node);
            }
            for &succ in &successors[node] {
                missing[succ] -= 1;
                if missing[succ] == 0 {
                    ready.push_back(succ);
                }
            }
        }
        if seen == total {
            Ok(order)
        } else {
            Err(self.cycle_among(&missing))
        }
    }

    /// Walks back from a node Kahn's algorithm could not reach until a node repeats; the
    /// repeated stretch is a cycle. Returns its jobs, barriers left out.
    fn cycle_among(&self, missing: &[usize]) -> Vec<usize> {
        let n = self.len();
        let stuck = |v: usize| missing[v] > 0;
        let Some(mut node) = (0..missing.len()).find(|&v| stuck(v)) else {
            return Vec::new();
        };
        let mut path = Vec::new();
        loop {
            if let Some(pos) = path.iter().position(|&v| v == node) {
                let mut cycle: Vec<usize> =
                    path[pos..].iter().copied().filter(|&v| v < n).collect();
                cycle.reverse();
                return cycle;
            }
            path.push(node);
            match self.predecessors(node).into_iter().find(|&p| stuck(p)) {
                Some(pred) => node = pred,
                None => return Vec::new(),
            }
        }
    }

    fn settled_outcome(
        &self,
        job: usize,
        status: BuildStatus,
        needs: NeedsState,
    ) -> Option<Outcome> {
        match status {
            BuildStatus::Success | BuildStatus::Manual => Some(Outcome::Passed),
            BuildStatus::Failed if self.allow_failure[job] => Some(Outcome::Passed),
            BuildStatus::Failed => Some(Outcome::Failed),
            BuildStatus::Canceled => Some(Outcome::Canceled),
            // A skipped job passes on what made it skip, so that a failure two jobs up still
            // skips the jobs after it, while a skipped `on_failure` job blocks nothing. One
            // skipped by hand before its own needs finished counts once they have: the jobs
            // after it must not start ahead of the work upstream.
            BuildStatus::Skipped => needs.settled.then_some(needs.outcome),
            BuildStatus::Created
            | BuildStatus::WaitingForResource
            | BuildStatus::Pending
            | BuildStatus::Running
            | BuildStatus::Canceling => None,
        }
    }

    /// Walks the jobs in topological order, calling `visit` with each job's needs state; the
    /// visitor may change that job's status before its outcome is recorded.
    fn walk(
        &self,
        status: &mut [BuildStatus],
        mut visit: impl FnMut(usize, NeedsState, &mut BuildStatus),
    ) {
        let mut outcome: Vec<Option<Outcome>> = vec![None; self.len()];
        let mut per_stage = vec![NeedsState::NONE; self.stage_count];
        for &job in &self.order {
            let needs = match &self.needs[job] {
                Needs::Explicit(list) => {
                    let mut state = NeedsState::NONE;
                    for &need in list {
                        state.add(outcome[need]);
                    }
                    state
                }
                Needs::EarlierStages => {
                    let mut state = NeedsState::NONE;
                    for stage_state in &per_stage[..self.stage[job] as usize] {
                        state.merge(*stage_state);
                    }
                    state
                }
            };
            visit(job, needs, &mut status[job]);
            outcome[job] = self.settled_outcome(job, status[job], needs);
            per_stage[self.stage[job] as usize].add(outcome[job]);
        }
    }

    /// Decides every created job whose needs have all settled: it becomes pending, manual or
    /// skipped according to its `when`. Returns nothing; the caller diffs statuses.
    pub(crate) fn settle(&self, status: &mut [BuildStatus]) {
        self.walk(status, |job, needs, status| {
            if *status == BuildStatus::Created && needs.settled {
                *status = match decide(self.when[job], needs.outcome) {
                    BuildStatus::Pending if self.grouped[job] => BuildStatus::WaitingForResource,
                    decided => decided,
                };
            }
        });
    }

    /// Created jobs whose needs have all settled: processing should already have decided them.
    /// Empty after every committed transition; the invariant checks rely on that.
    pub(crate) fn undecided(&self, status: &[BuildStatus]) -> Vec<usize> {
        let mut status = status.to_vec();
        let mut undecided = Vec::new();
        self.walk(&mut status, |job, needs, status| {
            if *status == BuildStatus::Created && needs.settled {
                undecided.push(job);
            }
        });
        undecided
    }

    /// Marks the jobs that depend, directly or through others, on any of `roots`.
    pub(crate) fn downstream(&self, roots: &[usize]) -> Vec<bool> {
        let mut marked = vec![false; self.len()];
        for &root in roots {
            marked[root] = true;
        }
        let mut marked_stage = vec![false; self.stage_count];
        for &job in &self.order {
            let depends = match &self.needs[job] {
                Needs::Explicit(list) => list.iter().any(|&need| marked[need]),
                Needs::EarlierStages => marked_stage[..self.stage[job] as usize].iter().any(|&m| m),
            };
            if depends {
                marked[job] = true;
            }
            if marked[job] {
                marked_stage[self.stage[job] as usize] = true;
            }
        }
        for &root in roots {
            marked[root] = false;
        }
        marked
    }

    /// The pipeline status that these job statuses imply. `started` says whether any attempt of
    /// any job was ever picked up by a runner.
    pub(crate) fn pipeline_status(&self, status: &[BuildStatus], started: bool) -> PipelineStatus {
        let any = |wanted: BuildStatus| status.contains(&wanted);
        // A build waiting for a resource group's slot counts as pending: a slot granted to it
        // never changes its pipeline's status.
        let queued = any(BuildStatus::Pending) || any(BuildStatus::WaitingForResource);
        if status.iter().any(|s| s.is_active()) {
            return if any(BuildStatus::Canceling) {
                PipelineStatus::Canceling
            } else if any(BuildStatus::Running) || (started && queued) {
                PipelineStatus::Running
            } else if queued {
                PipelineStatus::Pending
            } else {
                PipelineStatus::Created
            };
        }
        let blocking_failure = status
            .iter()
            .zip(&self.allow_failure)
            .any(|(s, allowed)| *s == BuildStatus::Failed && !allowed);
        if blocking_failure {
            PipelineStatus::Failed
        } else if any(BuildStatus::Canceled) {
            PipelineStatus::Canceled
        } else if status.iter().all(|s| *s == BuildStatus::Skipped) {
            PipelineStatus::Skipped
        } else {
            PipelineStatus::Success
        }
    }
}

/// What a created job becomes once all its needs have settled.
fn decide(when: When, needs: Outcome) -> BuildStatus {
    match (when, needs) {
        (When::OnSuccess, Outcome::Passed)
        | (When::OnFailure, Outcome::Failed)
        | (When::Always, _) => BuildStatus::Pending,
        (When::Manual, Outcome::Passed) => BuildStatus::Manual,
        _ => BuildStatus::Skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildStatus as S;

    fn chain(whens: &[When]) -> JobSet {
        let n = whens.len();
        let stage = (0..u32::try_from(n).unwrap()).collect();
        let needs = vec![Needs::EarlierStages; n];
        JobSet::new(stage, needs, whens.to_vec(), vec![false; n]).expect("acyclic")
    }

    fn check(whens: &[When], before: &[BuildStatus], after: &[BuildStatus]) {
        let jobs = chain(whens);
        let mut status = before.to_vec();
        jobs.settle(&mut status);
        assert_eq!(status, after, "whens {whens:?} from {before:?}");
        assert!(jobs.undecided(&status).is_empty());
    }

    #[test]
    fn processing_follows_when() {
        use When::{Always, Manual, OnFailure, OnSuccess};
        let c = S::Created;
        check(&[OnSuccess, OnSuccess], &[c, c], &[S::Pending, c]);
        check(
            &[OnSuccess, OnSuccess],
            &[S::Success, c],
            &[S::Success, S::Pending],
        );
        check(
            &[OnSuccess, OnSuccess, OnSuccess],
            &[S::Failed, c, c],
            &[S::Failed, S::Skipped, S::Skipped],
        );
        check(
            &[OnSuccess, OnFailure, OnSuccess],
            &[S::Success, c, c],
            &[S::Success, S::Skipped, S::Pending],
        );
        check(
            &[OnSuccess, OnFailure, OnSuccess],
            &[S::Failed, c, c],
            &[S::Failed, S::Pending, c],
        );
        check(
            &[OnSuccess, Always],
            &[S::Failed, c],
            &[S::Failed, S::Pending],
        );
        check(
            &[OnSuccess, Always],
            &[S::Canceled, c],
            &[S::Canceled, S::Pending],
        );
        check(
            &[OnSuccess, OnFailure],
            &[S::Canceled, c],
            &[S::Canceled, S::Skipped],
        );
        check(&[Manual, OnSuccess], &[c, c], &[S::Manual, S::Pending]);
        check(
            &[OnSuccess, Manual],
            &[S::Failed, c],
            &[S::Failed, S::Skipped],
        );
    }

    #[test]
    fn a_failure_skips_through_a_chain_of_explicit_needs() {
        let needs = vec![
            Needs::Explicit(vec![]),
            Needs::Explicit(vec![0]),
            Needs::Explicit(vec![1]),
            Needs::Explicit(vec![]),
        ];
        let jobs = JobSet::new(
            vec![0, 1, 2, 0],
            needs,
            vec![When::OnSuccess; 4],
            vec![false; 4],
        )
        .unwrap();
        let mut status = vec![S::Failed, S::Created, S::Created, S::Running];
        jobs.settle(&mut status);
        assert_eq!(status, [S::Failed, S::Skipped, S::Skipped, S::Running]);
    }

    #[test]
    fn a_build_skipped_by_hand_holds_back_its_dependents_until_its_own_needs_settle() {
        // a -> b -> (c on_success, d on_failure); b is skipped while a still runs.
        let needs = vec![
            Needs::Explicit(vec![]),
            Needs::Explicit(vec![0]),
            Needs::Explicit(vec![1]),
            Needs::Explicit(vec![1]),
        ];
        let when = vec![
            When::OnSuccess,
            When::OnSuccess,
            When::OnSuccess,
            When::OnFailure,
        ];
        let jobs = JobSet::new(vec![0, 1, 2, 2], needs, when, vec![false; 4]).unwrap();
        let mut status = vec![S::Running, S::Skipped, S::Created, S::Created];
        jobs.settle(&mut status);
        assert_eq!(
            status[2..],
            [S::Created, S::Created],
            "nothing is decided while a runs"
        );
        status[0] = S::Failed;
        jobs.settle(&mut status);
        assert_eq!(
            status[2..],
            [S::Skipped, S::Pending],
            "a's failure passes through the skip"
        );
    }

    #[test]
    fn allowed_failure_passes() {
        let jobs = JobSet::new(
            vec![0, 1],
            vec![Needs::EarlierStages; 2],
            vec![When::OnSuccess; 2],
            vec![true, false],
        )
        .unwrap();
        let mut status = vec![S::Failed, S::Created];
        jobs.settle(&mut status);
        assert_eq!(status[1], S::Pending);
        assert_eq!(
            jobs.pipeline_status(&[S::Failed, S::Success], true),
            PipelineStatus::Success
        );
    }

    #[test]
    fn cycles_are_reported_with_their_jobs() {
        let needs = vec![
            Needs::Explicit(vec![2]),
            Needs::Explicit(vec![0]),
            Needs::Explicit(vec![1]),
            Needs::Explicit(vec![]),
        ];
        let err =
            JobSet::new(vec![0; 4], needs, vec![When::OnSuccess; 4], vec![false; 4]).unwrap_err();
        let mut sorted = err.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2]);
    }

    #[test]
    fn a_cycle_through_a_stage_barrier_is_found() {
        // Job 0 (stage 0) needs job 1 (stage 1), which implicitly needs all of stage 0.
        let needs = vec![Needs::Explicit(vec![1]), Needs::EarlierStages];
        let err =
            JobSet::new(vec![0, 1], needs, vec![When::OnSuccess; 2], vec![false; 2]).unwrap_err();
        let mut sorted = err.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1]);
    }

    #[test]
    fn downstream_follows_explicit_and_stage_needs() {
        let needs = vec![
            Needs::Explicit(vec![]),
            Needs::Explicit(vec![]),
            Needs::Explicit(vec![0]),
            Needs::EarlierStages,
        ];
        let jobs = JobSet::new(
            vec![0, 0, 1, 2],
            needs,
            vec![When::OnSuccess; 4],
            vec![false; 4],
        )
        .unwrap();
        assert_eq!(jobs.downstream(&[1]), [false, false, false, true]);
        assert_eq!(jobs.downstream(&[0]), [false, false, true, true]);
    }

    #[test]
    fn pipeline_status_table() {
        let jobs = chain(&[When::OnSuccess, When::OnSuccess]);
        let table = [
            ([S::Pending, S::Created], false, PipelineStatus::Pending),
            ([S::Pending, S::Created], true, PipelineStatus::Running),
            ([S::Running, S::Created], true, PipelineStatus::Running),
            ([S::Canceling, S::Canceled], true, PipelineStatus::Canceling),
            ([S::Success, S::Success], true, PipelineStatus::Success),
            ([S::Success, S::Manual], true, PipelineStatus::Success),
            ([S::Failed, S::Skipped], true, PipelineStatus::Failed),
            ([S::Canceled, S::Skipped], true, PipelineStatus::Canceled),
            ([S::Failed, S::Canceled], true, PipelineStatus::Failed),
            ([S::Skipped, S::Skipped], false, PipelineStatus::Skipped),
        ];
        for (status, started, expected) in table {
            assert_eq!(
                jobs.pipeline_status(&status, started),
                expected,
                "{status:?}"
            );
        }
    }
}
