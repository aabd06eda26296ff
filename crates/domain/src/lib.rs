#![doc = include_str!("../README.md")]

mod artifacts;
mod definition;
mod duration;
mod environment;
mod graph;
mod ids;
mod lease;
mod names;
mod plan;
mod resource;
mod retry;
mod status;
mod transition;
mod variables;
mod waiting;

pub use artifacts::{
    Artifacts, Cache, CacheKey, CachePolicy, Caches, Expiry, Need, UploadWhen, ValidArtifacts,
    check_cache_key,
};
pub use definition::{
    AutoCancel, DefinitionError, JobDefinition, PipelineDefinition, Problem, ValidJob,
    ValidPipeline, When, limits,
};
pub use duration::seconds as duration_seconds;
pub use environment::{Environment, EnvironmentAction};
pub use ids::{BuildId, DeploymentId, PipelineId, ProjectId, ResourceGroupId, RunnerId};
pub use lease::check_holder;
pub use names::check_name;
pub use plan::{
    BuildChange, BuildResult, BuildState, FailureReason, NewAttempt, PipelineEvent, PipelineState,
    Plan, TransitionError, plan, plan_all, plan_new_pipeline, undecided_builds,
};
pub use resource::{Member, ProcessMode, grants, waiting_line};
pub use retry::{AllowFailure, Retry, RetryPolicy, RetryWhen};
pub use status::{BuildStatus, DeploymentStatus, PipelineStatus, UnknownStatus};
pub use transition::{BuildEvent, IllegalTransition, Step, next};
pub use variables::{expand_variables, is_variable_name};
pub use waiting::{Standing, unsettled_needs};
