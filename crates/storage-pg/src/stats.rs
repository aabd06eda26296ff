//! Counters of committed transitions and of transaction retries, kept per storage handle and read
//! by metrics and the stress harness.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of transition, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    CreatePipeline,
    Acquire,
    Heartbeat,
    Succeed,
    Fail,
    Abort,
    CancelBuild,
    SkipBuild,
    PlayBuild,
    CancelPipeline,
    RetryBuild,
    RetryPipeline,
    ExpireLeases,
    Refresh,
    ConfigureResourceGroup,
    /// An older pipeline that a new one on its ref canceled, whole or in part.
    AutoCancel,
    /// A build's artifacts recorded (or replaced).
    StoreArtifacts,
    /// A project's cache recorded (or replaced).
    StoreCache,
}

impl TransitionKind {
    pub const ALL: [Self; 18] = [
        Self::CreatePipeline,
        Self::Acquire,
        Self::Heartbeat,
        Self::Succeed,
        Self::Fail,
        Self::Abort,
        Self::CancelBuild,
        Self::SkipBuild,
        Self::PlayBuild,
        Self::CancelPipeline,
        Self::RetryBuild,
        Self::RetryPipeline,
        Self::ExpireLeases,
        Self::Refresh,
        Self::ConfigureResourceGroup,
        Self::AutoCancel,
        Self::StoreArtifacts,
        Self::StoreCache,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatePipeline => "create_pipeline",
            Self::Acquire => "acquire",
            Self::Heartbeat => "heartbeat",
            Self::Succeed => "succeed",
            Self::Fail => "fail",
            Self::Abort => "abort",
            Self::CancelBuild => "cancel_build",
            Self::SkipBuild => "skip_build",
            Self::PlayBuild => "play_build",
            Self::CancelPipeline => "cancel_pipeline",
            Self::RetryBuild => "retry_build",
            Self::RetryPipeline => "retry_pipeline",
            Self::ExpireLeases => "expire_leases",
            Self::Refresh => "refresh",
            Self::ConfigureResourceGroup => "configure_resource_group",
            Self::AutoCancel => "auto_cancel",
            Self::StoreArtifacts => "store_artifacts",
            Self::StoreCache => "store_cache",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .expect("listed in ALL")
    }
}

/// Thread-safe counters; share one per process (or per test) behind an `Arc`.
#[derive(Debug, Default)]
pub struct TxStats {
    committed: [AtomicU64; TransitionKind::ALL.len()],
    deadlocks: AtomicU64,
    serialization_failures: AtomicU64,
    replans: AtomicU64,
    gave_up: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxStatsSnapshot {
    /// Committed transitions by kind, in [`TransitionKind::ALL`] order.
    pub committed: Vec<(TransitionKind, u64)>,
    /// Transactions that failed with SQLSTATE 40P01 (each was retried or gave up). By design
    /// this stays zero.
    pub deadlocks: u64,
    /// Transactions that failed with SQLSTATE 40001.
    pub serialization_failures: u64,
    /// Transactions restarted because rows changed between planning and locking.
    pub replans: u64,
    /// Transactions that still failed after the last attempt.
    pub gave_up: u64,
}

impl TxStats {
    pub(crate) fn committed(&self, kind: TransitionKind) {
        self.committed[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observed(&self, state: crate::SqlState) {
        let counter = match state {
            crate::SqlState::Deadlock => &self.deadlocks,
            crate::SqlState::SerializationFailure => &self.serialization_failures,
            crate::SqlState::PlanChanged => &self.replans,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn gave_up(&self) {
        self.gave_up.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TxStatsSnapshot {
        TxStatsSnapshot {
            committed: TransitionKind::ALL
                .iter()
                .map(|k| (*k, self.committed[k.index()].load(Ordering::Relaxed)))
                .collect(),
            deadlocks: self.deadlocks.load(Ordering::Relaxed),
            serialization_failures: self.serialization_failures.load(Ordering::Relaxed),
            replans: self.replans.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }
}

impl TxStatsSnapshot {
    pub fn count(&self, kind: TransitionKind) -> u64 {
        self.committed
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> u64 {
        self.committed.iter().map(|(_, n)| n).sum()
    }
}
