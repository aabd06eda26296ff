#![doc = include_str!("../README.md")]

mod artifacts;
mod environments;
mod error;
mod held;
#[cfg(feature = "testing")]
mod invariants;
mod job_definitions;
mod locking;
mod logs;
mod migrations;
mod notify;
mod pool;
mod prepared;
mod presence;
mod projects;
mod reads;
mod resource_groups;
mod retry;
mod rows;
mod runners;
#[rustfmt::skip]
mod schema;
mod sessions;
mod stats;
mod transitions;
mod waiting;
mod write;

pub use artifacts::{
    ArtifactEntry, ArtifactView, CacheView, Expired, FetchArtifact, Fetchable, NewArchive, Stored,
    StoredFigures, artifacts_of, check_runner_holds, expired_artifacts, fetchable_artifact,
    fetchable_cache, forget_artifact, load_artifact, load_cache, set_keep_latest_artifacts,
    stored_figures,
};
pub use environments::{DeploymentSummary, EnvironmentView, list_deployments, list_environments};
pub use error::StorageError;
pub use held::{WatchedBuild, watch_builds};
#[cfg(feature = "testing")]
pub use invariants::{Violation, check_group_invariants, check_invariants};
pub use job_definitions::JobDetails;
#[cfg(feature = "testing")]
pub use locking::{Table, explain_claim};
pub use logs::{LogAccount, LogCheck, LogSlice, MAX_LOG_BYTES, append_log, read_log};
pub use migrations::{MigrationError, run_migrations};
pub use notify::{
    CANCELING_CHANNEL, Canceling, Ids, LOGS_CHANNEL, ListenError, Listener, Notice,
    PENDING_CHANNEL, PIPELINES_CHANNEL, Pending,
};
pub use pool::{PgPool, connection_pool, ping};
pub use presence::{older_transactions_done, register_viewers, unregister_viewers};
pub use projects::{ProjectView, create_project, list_projects, load_project};
pub use reads::{
    BuildView, DeploymentView, PipelineQuery, PipelineSummary, PipelineView, count_pending_builds,
    list_pipelines, load_build, load_pipeline,
};
pub use resource_groups::{ResourceGroupView, list_resource_groups, load_resource_group};
pub use retry::SqlState;
pub use runners::{
    RunnerListing, RunnerView, authenticate_runner, list_runners, register_runner, retire_runner,
};
pub use sessions::{SessionView, create_session, delete_session, load_session};
pub use stats::{TransitionKind, TxStats, TxStatsSnapshot};
pub use transitions::{
    Acquired, AcquiredBuild, AcquiredDeployment, Applied, CreatedPipeline, GroupSettings,
    Heartbeat, NewPipeline, Transitions,
};
pub use waiting::{QueueFigures, Waiting, build_waiting, pipeline_waiting, queue_figures};
