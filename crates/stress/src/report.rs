//! What a storm did and found, printed as one line of JSON.

use lockstep_storage_pg::{TransitionKind, TxStatsSnapshot, Violation};
use serde::Serialize;
use std::collections::BTreeMap;

/// The outcome of a storm.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seconds: f64,
    pub threads: usize,
    /// Committed transitions that changed something, by kind.
    pub transitions: BTreeMap<&'static str, u64>,
    pub total_transitions: u64,
    pub fails: u64,
    /// Pipeline cancels that changed at least one deployment.
    pub pipeline_cancels_touching_deployments: u64,
    /// Calls the domain refused (finishing a build canceled meanwhile, and the like): expected.
    pub rejected: u64,
    pub deadlocks_client: u64,
    pub deadlocks_server: i64,
    pub serialization_retries: u64,
    pub replans: u64,
    /// Transactions that still failed after their last attempt: each is also an unexpected
    /// error, named with its transition in `errors`.
    pub gave_up: u64,
    /// Builds claimed at least once.
    pub acquired: u64,
    /// Claims the reaper handed back unacknowledged (their runner "never got the answer").
    pub requeued: u64,
    /// Claims beyond one per hand-back: a build held twice at once.
    pub duplicate_acquires: u64,
    pub unexpected_errors: u64,
    pub invariant_violations: usize,
    #[serde(skip)]
    pub violations: Vec<Violation>,
    #[serde(skip)]
    pub errors: Vec<String>,
}

impl Report {
    pub(crate) fn transitions(stats: &TxStatsSnapshot) -> BTreeMap<&'static str, u64> {
        stats
            .committed
            .iter()
            .map(|(kind, n)| (kind.as_str(), *n))
            .collect()
    }

    pub(crate) fn fails(stats: &TxStatsSnapshot) -> u64 {
        stats.count(TransitionKind::Fail)
    }

    /// Nothing that must never happen happened.
    pub fn is_clean(&self) -> bool {
        self.deadlocks_client == 0
            && self.deadlocks_server == 0
            && self.invariant_violations == 0
            && self.duplicate_acquires == 0
            && self.unexpected_errors == 0
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}
