//! The JSON the API speaks: request and response bodies, with their OpenAPI schemas, and the
//! conversions from storage's read models. Field names here are the public contract.

mod artifacts;

pub(crate) use artifacts::{
    ArtifactsSpec, BuildArtifacts, CacheSpec, CachesSpec, Fetch, NeedSpec, StoredCache,
};

use crate::error::ErrorDetail;
use chrono::{DateTime, Utc};
use lockstep_domain::{AutoCancel, JobDefinition, ProcessMode, RetryPolicy};
use lockstep_storage_pg::{
    AcquiredBuild, AcquiredDeployment, BuildView, DeploymentSummary, DeploymentView,
    EnvironmentView, PipelineSummary, PipelineView, ProjectView, ResourceGroupView, RunnerListing,
    RunnerView, Waiting,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProject {
    /// Unique, 1 to 255 characters, no control characters, no leading or trailing
    /// whitespace.
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Project {
    id: i64,
    name: String,
    created_at: DateTime<Utc>,
    /// Whether the artifacts of each ref's latest successful pipeline outlive their
    /// `expire_in` (GitLab's "keep the latest artifacts"; default true).
    keep_latest_artifacts: bool,
}

impl From<ProjectView> for Project {
    fn from(view: ProjectView) -> Self {
        Self {
            id: view.id.0,
            name: view.name,
            created_at: view.created_at,
            keep_latest_artifacts: view.keep_latest_artifacts,
        }
    }
}

/// The settings of a project that may change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateProject {
    #[serde(default)]
    pub(crate) keep_latest_artifacts: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePipeline {
    /// The branch or tag, 1 to 255 characters, no control characters, no leading or trailing
    /// whitespace.
    #[schema(min_length = 1, max_length = 255)]
    #[serde(rename = "ref")]
    pub(crate) git_ref: String,
    /// The commit: 1 to 64 letters and digits.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9]+$")]
    #[serde(default)]
    pub(crate) sha: Option<String>,
    #[schema(value_type = Vec<JobSpec>)]
    #[serde(deserialize_with = "crate::extract::objects")]
    pub(crate) jobs: Vec<JobDefinition>,
    /// What the pipeline does to the older pipelines of its project and ref.
    #[serde(default)]
    pub(crate) workflow: Option<Workflow>,
}

/// GitLab's `workflow`, as far as Lockstep reads it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workflow {
    #[serde(default)]
    pub(crate) auto_cancel: Option<AutoCancelSpec>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoCancelSpec {
    /// What a new pipeline does to the older, unfinished pipelines of its ref (default
    /// `conservative`).
    #[serde(default)]
    pub(crate) on_new_commit: Option<OnNewCommit>,
}

/// GitLab's `workflow:auto_cancel:on_new_commit`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnNewCommit {
    /// Cancel an older pipeline whole while every build of it that started is interruptible
    /// (or none started); leave it alone otherwise.
    Conservative,
    /// Cancel the older pipelines' interruptible builds that have not finished.
    Interruptible,
    /// Leave older pipelines alone.
    None,
}

impl CreatePipeline {
    /// The auto-cancel rule the body asks for, `conservative` when it says nothing.
    pub(crate) fn auto_cancel(&self) -> AutoCancel {
        auto_cancel(self.workflow.as_ref())
    }
}

fn auto_cancel(workflow: Option<&Workflow>) -> AutoCancel {
    let rule = workflow
        .and_then(|w| w.auto_cancel.as_ref())
        .and_then(|a| a.on_new_commit);
    match rule {
        None | Some(OnNewCommit::Conservative) => AutoCancel::Conservative,
        Some(OnNewCommit::Interruptible) => AutoCancel::Interruptible,
        Some(OnNewCommit::None) => AutoCancel::None,
    }
}

/// A JSON pipeline to check: the body `POST /projects/{id}/pipelines` takes, `ref` optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LintPipeline {
    /// Ignored: a check does not depend on the ref.
    #[serde(rename = "ref", default)]
    #[expect(
        dead_code,
        reason = "accepted so that a body to submit checks as it is"
    )]
    git_ref: Option<String>,
    /// Ignored, as `ref` is.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted so that a body to submit checks as it is"
    )]
    sha: Option<String>,
    #[schema(value_type = Vec<JobSpec>)]
    #[serde(deserialize_with = "crate::extract::objects")]
    pub(crate) jobs: Vec<JobDefinition>,
    #[serde(default)]
    pub(crate) workflow: Option<Workflow>,
}

impl LintPipeline {
    pub(crate) fn auto_cancel(&self) -> AutoCancel {
        auto_cancel(self.workflow.as_ref())
    }
}

/// A pipeline that checked clean: its jobs as they would be created.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LintAnswer {
    /// Always true: an invalid pipeline is a 422.
    valid: bool,
    /// Every job, expanded (templates, `default`, `extends` and `parallel` applied), in the
    /// shape a JSON body takes, in stage order.
    #[schema(value_type = Vec<JobSpec>)]
    jobs: Vec<JobDefinition>,
    /// `conservative`, `interruptible` or `none`: what the pipeline does to the older ones of
    /// its ref.
    auto_cancel: String,
}

impl LintAnswer {
    pub(crate) fn new(jobs: Vec<JobDefinition>, auto_cancel: AutoCancel) -> Self {
        Self {
            valid: true,
            jobs,
            auto_cancel: auto_cancel.as_str().to_owned(),
        }
    }
}

/// One job of a pipeline definition (the schema of `lockstep_domain::JobDefinition`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobSpec {
    /// Unique within the pipeline; 1 to 255 characters, no control characters, no leading or
    /// trailing whitespace.
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    /// Defaults to `test`. Stages run in the order they first appear. A name, as `name` is.
    #[schema(min_length = 1, max_length = 255)]
    stage: Option<String>,
    /// Lines run first, in the same shell session as `script`: at most 1000 lines and 256 KiB.
    before_script: Option<Vec<String>>,
    /// Shell lines, run in one session that stops at the first failing line: 1 to 1000 lines
    /// (not all blank), at most 256 KiB, no NUL bytes.
    script: Vec<String>,
    /// Lines run after `script` in a new shell session, whatever its outcome (also after a
    /// cancel or a timeout), within 5 minutes of their own; their failure changes nothing. At
    /// most 1000 lines and 256 KiB.
    after_script: Option<Vec<String>>,
    /// Environment variables for the scripts, beside the `CI_*` ones (which win on a clash);
    /// `$NAME` or `${NAME}` naming another variable is expanded when a runner takes the job:
    /// at most 200; names a letter or `_` then letters, digits or `_` (at most 255); values at
    /// most 10,000 bytes without NUL; 64 KiB in all.
    variables: Option<BTreeMap<String, String>>,
    /// Jobs this one waits for (at most 50, no repeats). Absent: every job of earlier stages.
    /// Empty: none.
    needs: Option<Vec<NeedSpec>>,
    /// The jobs whose artifacts this one fetches before its script. Absent: every job it waits
    /// for, but the `needs` entries with `artifacts: false`. Each must be a job it waits for.
    dependencies: Option<Vec<String>>,
    artifacts: Option<ArtifactsSpec>,
    cache: Option<CachesSpec>,
    /// `on_success` (default), `on_failure`, `always` or `manual`.
    when: Option<String>,
    /// Whether a failure lets the pipeline (and the jobs that need this one) pass anyway:
    /// `true`, `false` (default), or `{"exit_codes": [...]}` for only failures with one of
    /// those exit codes (1 to 50 of them; one code alone may stand without the list).
    allow_failure: Option<AllowFailureSpec>,
    /// The job's environment: a name (the job deploys there: a deployment follows the build),
    /// or `{"name": …, "action": "start" | "prepare" | "stop"}` (only `start`, the default,
    /// deploys). A name, as `name` is, of letters, digits, spaces, `-`, `_`, `.` and `/` (not
    /// first or last).
    environment: Option<EnvironmentSpec>,
    /// A runner must have all of these tags: at most 50, each a name, as `name` is.
    #[schema(max_items = 50)]
    tags: Option<Vec<String>>,
    /// Defaults to 3600.
    timeout_seconds: Option<u32>,
    /// Automatic retries of a failed build, GitLab's shapes: `N` (0 to 5) retries any failure
    /// up to N times; `{"max": N, "when": [...], "exit_codes": [...]}` retries a failure whose
    /// reason is in `when` or whose exit code is in `exit_codes`. Without `when` and
    /// `exit_codes`, `when` is `[always]`; with `exit_codes` only, only those codes retry. A
    /// build someone asked to stop is never retried.
    retry: Option<RetrySpec>,
    /// The project's resource group whose slot the job must hold to run (created on first
    /// use, one slot): once its needs let it run, it waits as `waiting_for_resource` until a
    /// slot is free. A name, as `name` is.
    #[schema(min_length = 1, max_length = 255)]
    resource_group: Option<String>,
    /// Safe to stop when a newer pipeline on the same ref makes it redundant (default false).
    interruptible: Option<bool>,
}

/// `environment`: a name, or the name and what the job does to it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum EnvironmentSpec {
    Name(EnvironmentName),
    Action {
        #[schema(min_length = 1, max_length = 255)]
        name: String,
        /// `start` (default), `prepare` or `stop`.
        action: Option<String>,
    },
}

/// An environment's name: a name, as a job's is (utoipa's derive cannot bound a newtype's
/// string, hence the hand-written schema).
#[derive(Debug, Serialize)]
pub(crate) struct EnvironmentName(String);

impl utoipa::PartialSchema for EnvironmentName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(lockstep_domain::limits::MAX_NAME_CHARS))
            .into()
    }
}

impl ToSchema for EnvironmentName {}

/// `allow_failure`: a flag, or the exit codes whose failures are allowed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum AllowFailureSpec {
    Flag(bool),
    ExitCodes {
        #[schema(min_items = 1, max_items = 50)]
        exit_codes: Vec<i32>,
    },
}

/// `retry`: a count, or the rule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum RetrySpec {
    /// 0 to 5.
    Times(u32),
    Rule(RetryRule),
}

/// Which failures of a job retry, and how often.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RetryRule {
    /// 0 to 5 automatic retries.
    #[schema(minimum = 0, maximum = 5)]
    max: u32,
    /// Any of `always`, `unknown_failure`, `script_failure`, `runner_system_failure`,
    /// `runner_lost`, `job_timeout` (one name alone may stand without the list; `[]` retries
    /// by exit code only).
    when: Option<Vec<String>>,
    /// 1 to 50 exit codes that retry whatever the reason.
    #[schema(min_items = 1, max_items = 50)]
    exit_codes: Option<Vec<i32>>,
}

impl From<&RetryPolicy> for RetryRule {
    fn from(policy: &RetryPolicy) -> Self {
        Self {
            max: policy.max(),
            when: Some(
                policy
                    .when()
                    .iter()
                    .map(|w| w.as_str().to_owned())
                    .collect(),
            ),
            exit_codes: Some(policy.exit_codes().to_vec()),
        }
    }
}

/// A pipeline with all its builds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pipeline {
    #[serde(flatten)]
    pipeline: PipelineListItem,
    /// Every attempt of every job, in id order.
    builds: Vec<Build>,
}

impl From<PipelineView> for Pipeline {
    fn from(view: PipelineView) -> Self {
        Self {
            pipeline: view.summary.into(),
            builds: view.builds.into_iter().map(Build::from).collect(),
        }
    }
}

impl Pipeline {
    /// The pipeline as `GET /pipelines/{id}` shows it: each build with why it waits.
    pub(crate) fn read(
        view: PipelineView,
        mut waiting: std::collections::HashMap<lockstep_domain::BuildId, Waiting>,
    ) -> Self {
        Self {
            pipeline: view.summary.into(),
            builds: view
                .builds
                .into_iter()
                .map(|build| {
                    let reason = waiting.remove(&build.id);
                    Build::read(build, reason)
                })
                .collect(),
        }
    }
}

/// A pipeline without its builds, as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PipelineListItem {
    id: i64,
    project_id: i64,
    #[serde(rename = "ref")]
    git_ref: String,
    sha: Option<String>,
    /// `created`, `pending`, `running`, `success`, `failed`, `canceling`, `canceled` or `skipped`.
    status: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// The newer pipeline on the same ref that canceled this one (whole, or some of its
    /// interruptible builds); null otherwise.
    auto_canceled_by: Option<i64>,
}

impl From<PipelineSummary> for PipelineListItem {
    fn from(view: PipelineSummary) -> Self {
        Self {
            id: view.id.0,
            project_id: view.project_id.0,
            git_ref: view.git_ref,
            sha: view.sha,
            status: view.status.to_string(),
            created_at: view.created_at,
            finished_at: view.finished_at,
            auto_canceled_by: view.auto_canceled_by.map(|p| p.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Build {
    pub(crate) id: i64,
    pipeline_id: i64,
    name: String,
    stage: String,
    /// `created`, `waiting_for_resource`, `pending`, `running`, `success`, `failed`,
    /// `canceling`, `canceled`, `skipped` or `manual`.
    pub(crate) status: String,
    when: String,
    /// Whether a failure may be allowed (see `allow_failure_exit_codes`).
    allow_failure: bool,
    /// With `allow_failure`, only failures with one of these exit codes are allowed.
    allow_failure_exit_codes: Option<Vec<i32>>,
    needs: Option<Vec<String>>,
    tags: Vec<String>,
    attempt: u32,
    /// The job's retry rule, defaults filled in (`when` and `exit_codes` always listed).
    retry: RetryRule,
    /// The attempt this one retries; null for a first attempt.
    retry_of: Option<i64>,
    /// The attempt that retries this one; null while none does.
    retried_by: Option<i64>,
    /// Whether the job's retry rule made this attempt after the one before failed (false for
    /// a first attempt and for a retry someone asked for).
    automatic_retry: bool,
    /// Set once the runner's report carried its account of the log (`lockstep-worker`'s does):
    /// the stored log against it. Null otherwise.
    log: Option<LogIntegrity>,
    /// Why it has not started: `{"reason": "needs" | "manual" | "resource_group" |
    /// "no_runner" | "queued", …}`; null once it runs or has ended. Present in the answers of
    /// `GET /builds/{id}` and `GET /pipelines/{id}`, left out of others.
    #[serde(skip_serializing_if = "BuildWaiting::is_unread")]
    #[schema(value_type = Option<WaitingReason>)]
    waiting: BuildWaiting,
    runner_id: Option<i64>,
    /// For a `failed` build: `script_failure`, `runner_lost`, `job_timeout` or
    /// `runner_system_failure`. A `canceled` build says `runner_lost` when the server canceled
    /// it without its runner (the cancel outlived its grace unconfirmed, or the lease passed).
    failure_reason: Option<String>,
    exit_code: Option<i32>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// The environment the job starts (`deployment` follows it), prepares or stops.
    environment: Option<EnvironmentOfJob>,
    deployment: Option<Deployment>,
    /// The resource group whose slot it holds from `pending` until it ends.
    resource_group: Option<String>,
    interruptible: bool,
}

/// A build's environment and what the job does to it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentOfJob {
    name: String,
    /// `start` (a deployment follows the build), `prepare` or `stop`.
    action: String,
}

impl Build {
    /// The build as the GET reads show it, with why it waits.
    pub(crate) fn read(view: BuildView, waiting: Option<Waiting>) -> Self {
        Self {
            waiting: BuildWaiting::Read(waiting.map(WaitingReason::from)),
            ..Self::from(view)
        }
    }
}

impl From<BuildView> for Build {
    fn from(view: BuildView) -> Self {
        Self {
            id: view.id.0,
            pipeline_id: view.pipeline_id.0,
            name: view.name,
            stage: view.stage,
            status: view.status.to_string(),
            when: view.when.as_str().to_owned(),
            allow_failure: view.allow_failure.may_allow(),
            allow_failure_exit_codes: view.allow_failure.listed_codes().map(<[i32]>::to_vec),
            needs: view.needs,
            tags: view.tags,
            attempt: view.attempt,
            retry: RetryRule::from(&view.retry),
            retry_of: view.retry_of.map(|b| b.0),
            retried_by: view.retried_by.map(|b| b.0),
            automatic_retry: view.automatic_retry,
            log: view.log_check.map(LogIntegrity::from),
            waiting: BuildWaiting::Unread,
            runner_id: view.runner_id.map(|r| r.0),
            failure_reason: view.failure_reason.map(|r| r.as_str().to_owned()),
            exit_code: view.exit_code,
            created_at: view.created_at,
            started_at: view.started_at,
            finished_at: view.finished_at,
            environment: view.environment.map(|name| EnvironmentOfJob {
                name,
                action: view.details.environment_action.as_str().to_owned(),
            }),
            deployment: view.deployment.map(Deployment::from),
            resource_group: view.resource_group,
            interruptible: view.interruptible,
        }
    }
}

/// The order in which a resource group's waiting builds get its slots.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProcessModeName {
    /// The oldest pipeline's build first; one not ready yet keeps its place (the default).
    OldestFirst,
    /// The newest pipeline's build first, also while it is not ready yet.
    NewestFirst,
    /// The newest pipeline's build among those ready now.
    NewestReadyFirst,
    /// Whichever started waiting first.
    Unordered,
}

impl From<ProcessModeName> for ProcessMode {
    fn from(mode: ProcessModeName) -> Self {
        match mode {
            ProcessModeName::OldestFirst => Self::OldestFirst,
            ProcessModeName::NewestFirst => Self::NewestFirst,
            ProcessModeName::NewestReadyFirst => Self::NewestReadyFirst,
            ProcessModeName::Unordered => Self::Unordered,
        }
    }
}

impl From<ProcessMode> for ProcessModeName {
    fn from(mode: ProcessMode) -> Self {
        match mode {
            ProcessMode::OldestFirst => Self::OldestFirst,
            ProcessMode::NewestFirst => Self::NewestFirst,
            ProcessMode::NewestReadyFirst => Self::NewestReadyFirst,
            ProcessMode::Unordered => Self::Unordered,
        }
    }
}

/// What `PUT /projects/{id}/resource_groups/{name}` changes; an absent field keeps its value
/// (for a new group: `oldest_first`, one slot).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigureResourceGroup {
    #[serde(default)]
    pub(crate) process_mode: Option<ProcessModeName>,
    /// How many builds may hold a slot at once, 1 to 100.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
}

/// A resource group, with who holds its slots and who waits for one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResourceGroup {
    name: String,
    process_mode: ProcessModeName,
    /// Slots, 1 to 100.
    limit: u32,
    /// Builds holding a slot (pending, running or canceling), in ascending id.
    holders: Vec<i64>,
    /// Builds in `waiting_for_resource`, in the order they will get a slot.
    waiting: Vec<i64>,
}

impl From<ResourceGroupView> for ResourceGroup {
    fn from(view: ResourceGroupView) -> Self {
        Self {
            name: view.name,
            process_mode: view.process_mode.into(),
            limit: view.limit,
            holders: view.holders.into_iter().map(|b| b.0).collect(),
            waiting: view.waiting.into_iter().map(|b| b.0).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deployment {
    id: i64,
    environment: String,
    /// `created`, `running`, `success`, `failed`, `canceled`, `skipped` or `blocked`.
    status: String,
}

impl From<AcquiredDeployment> for Deployment {
    fn from(acquired: AcquiredDeployment) -> Self {
        Self {
            id: acquired.id.0,
            environment: acquired.environment,
            status: acquired.status.to_string(),
        }
    }
}

impl From<DeploymentView> for Deployment {
    fn from(view: DeploymentView) -> Self {
        Self {
            id: view.id.0,
            environment: view.environment,
            status: view.status.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Environment {
    id: i64,
    project_id: i64,
    name: String,
    created_at: DateTime<Utc>,
    last_deployment: Option<DeploymentRecord>,
}

impl From<EnvironmentView> for Environment {
    fn from(view: EnvironmentView) -> Self {
        Self {
            id: view.id,
            project_id: view.project_id.0,
            name: view.name,
            created_at: view.created_at,
            last_deployment: view.last_deployment.map(DeploymentRecord::from),
        }
    }
}

/// A deployment as an environment's history lists it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeploymentRecord {
    id: i64,
    build_id: i64,
    pipeline_id: i64,
    environment_id: i64,
    environment: String,
    status: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<DeploymentSummary> for DeploymentRecord {
    fn from(view: DeploymentSummary) -> Self {
        Self {
            id: view.id.0,
            build_id: view.build_id.0,
            pipeline_id: view.pipeline_id.0,
            environment_id: view.environment_id,
            environment: view.environment,
            status: view.status.to_string(),
            created_at: view.created_at,
            finished_at: view.finished_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRunner {
    /// 1 to 255 characters, no control characters, no leading or trailing whitespace.
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) name: String,
    /// The runner takes only builds whose tags are all among these: at most 50, each a name
    /// as `name` is.
    #[schema(max_items = 50)]
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// A registered runner. `token` appears only in the answer to registration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Runner {
    id: i64,
    name: String,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    /// The runner's bearer token. Shown once; only its hash is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl Runner {
    pub(crate) fn with_token(view: RunnerView, token: String) -> Self {
        Self {
            id: view.id.0,
            name: view.name,
            tags: view.tags,
            created_at: view.created_at,
            token: Some(token),
        }
    }
}

/// A runner as `GET /runners` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunnerItem {
    id: i64,
    name: String,
    tags: Vec<String>,
    created_at: DateTime<Utc>,
    /// Its last recorded contact (recorded at most every 30 seconds); null if it never called.
    contacted_at: Option<DateTime<Utc>>,
    /// In contact within the server's window (`LOCKSTEP_RUNNER_ONLINE_SECONDS`, 120 s).
    online: bool,
    /// The builds it holds (running, or asked to stop), ascending.
    builds: Vec<i64>,
}

impl From<RunnerListing> for RunnerItem {
    fn from(listing: RunnerListing) -> Self {
        Self {
            id: listing.runner.id.0,
            name: listing.runner.name,
            tags: listing.runner.tags,
            created_at: listing.runner.created_at,
            contacted_at: listing.contacted_at,
            online: listing.online,
            builds: listing.builds.into_iter().map(|b| b.0).collect(),
        }
    }
}

/// Whether an answer read why its build waits: the GET reads do (`null` once it runs or ended),
/// other answers leave the field out.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum BuildWaiting {
    Unread,
    Read(Option<WaitingReason>),
}

impl BuildWaiting {
    fn is_unread(&self) -> bool {
        matches!(self, Self::Unread)
    }
}

/// Why a build that has not started waits, by `reason`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub(crate) enum WaitingReason {
    /// Jobs it needs (or, without `needs`, of earlier stages) have not settled.
    Needs { jobs: Vec<String> },
    /// A manual job, waiting for someone to play it.
    Manual,
    /// Waiting (`waiting_for_resource`) for a slot of this group, at `position` in its line
    /// (1 is next).
    ResourceGroup {
        resource_group: String,
        position: u64,
    },
    /// No online runner has all of these tags.
    NoRunner { tags: Vec<String> },
    /// An online runner can take it; `position` is its place among the pending builds such a
    /// runner would take (1 is next).
    Queued { position: u64 },
}

impl From<Waiting> for WaitingReason {
    fn from(waiting: Waiting) -> Self {
        match waiting {
            Waiting::Needs(jobs) => Self::Needs { jobs },
            Waiting::Manual => Self::Manual,
            Waiting::ResourceGroup { name, position } => Self::ResourceGroup {
                resource_group: name,
                position,
            },
            Waiting::NoRunner { tags } => Self::NoRunner { tags },
            Waiting::Queued { ahead } => Self::Queued {
                position: ahead + 1,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobRequest {
    /// How long to wait for a build, 0 to 30 seconds; 0 answers at once.
    #[serde(default)]
    pub(crate) wait_seconds: Option<u32>,
}

/// A build handed to a runner, with everything it needs to run it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Job {
    /// The build id.
    id: i64,
    pipeline_id: i64,
    name: String,
    stage: String,
    attempt: u32,
    /// Lines to run first, in the same shell session as `script`.
    before_script: Vec<String>,
    /// Shell lines, run in one session that stops at the first failing line.
    script: Vec<String>,
    /// Lines to run after `script` in a new shell session whatever its outcome (also after a
    /// cancel or a timeout), with a limit of their own of 5 minutes; their failure changes
    /// nothing.
    after_script: Vec<String>,
    /// Environment variables for the scripts: the job's own (from its definition, with
    /// `$NAME` and `${NAME}` naming another variable expanded once, `$$` for a `$`), then
    /// `CI_JOB_ID`, `CI_PIPELINE_ID`, `CI_JOB_NAME`, … (a `CI_*` name the server sets wins over
    /// a job variable of the same name).
    variables: BTreeMap<String, String>,
    timeout_seconds: u32,
    /// How long each heartbeat extends the lease.
    lease_seconds: u64,
    /// The most log the server keeps for a build; appends past it are refused with 413. A
    /// runner should keep reading the script's output past it, end the log with a line saying
    /// it was truncated, and not fail the build over it.
    log_limit_bytes: u64,
    /// The acknowledgement deadline: unless a heartbeat, log append or report comes before it,
    /// the build goes back to the queue.
    lease_expires_at: DateTime<Utc>,
    deployment: Option<Deployment>,
    /// The archives to fetch and unpack into the build directory before the script, in order
    /// (later ones overwrite earlier ones' files): the artifacts of the latest attempts of the
    /// jobs it depends on. Fetching any other build's archive is refused with 403.
    fetch: Vec<Fetch>,
    /// What to keep after the script: `PUT /api/v1/jobs/{id}/artifacts`. Null: nothing.
    #[schema(value_type = Option<ArtifactsSpec>)]
    artifacts: Option<lockstep_domain::Artifacts>,
    /// The caches to fetch before the script and to upload after it, with keys still to expand
    /// (`GET`/`PUT /api/v1/jobs/{id}/cache?key=`).
    #[schema(value_type = Vec<CacheSpec>)]
    caches: Vec<lockstep_domain::Cache>,
    /// The largest archive the server takes (`413` beyond it).
    max_artifact_bytes: u64,
}

impl Job {
    pub(crate) fn new(build: AcquiredBuild, lease_seconds: u64, max_artifact_bytes: u64) -> Self {
        let variables = job_variables(&build);
        Self {
            id: build.id.0,
            pipeline_id: build.pipeline_id.0,
            name: build.name,
            stage: build.stage,
            attempt: build.attempt,
            before_script: build.details.before_script,
            script: build.script,
            after_script: build.details.after_script,
            variables,
            timeout_seconds: build.timeout_seconds,
            lease_seconds,
            log_limit_bytes: lockstep_storage_pg::MAX_LOG_BYTES,
            lease_expires_at: build.lease_expires_at,
            deployment: build.deployment.map(Deployment::from),
            fetch: build.fetch.into_iter().map(Fetch::from).collect(),
            artifacts: build.details.artifacts,
            caches: build.details.caches,
            max_artifact_bytes,
        }
    }
}

/// The job's own variables, with `$NAME` in them expanded (GitLab's rule), and the server's
/// `CI_*` ones, which win on a clash.
fn job_variables(build: &AcquiredBuild) -> BTreeMap<String, String> {
    let server = server_variables(build);
    let mut all = build.details.variables.clone();
    all.extend(server.clone());
    let mut variables = lockstep_domain::expand_variables(&build.details.variables, &all);
    variables.extend(server);
    variables
}

fn server_variables(build: &AcquiredBuild) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::from([
        ("CI".to_owned(), "true".to_owned()),
        ("CI_JOB_ID".to_owned(), build.id.0.to_string()),
        ("CI_JOB_NAME".to_owned(), build.name.clone()),
        ("CI_JOB_STAGE".to_owned(), build.stage.clone()),
        ("CI_JOB_ATTEMPT".to_owned(), build.attempt.to_string()),
        ("CI_PIPELINE_ID".to_owned(), build.pipeline_id.0.to_string()),
        ("CI_PROJECT_ID".to_owned(), build.project_id.0.to_string()),
        ("CI_COMMIT_REF_NAME".to_owned(), build.git_ref.clone()),
    ]);
    if let Some(sha) = &build.sha {
        variables.insert("CI_COMMIT_SHA".to_owned(), sha.clone());
    }
    if let Some(environment) = &build.environment {
        variables.insert("CI_ENVIRONMENT_NAME".to_owned(), environment.clone());
        variables.insert(
            "CI_ENVIRONMENT_ACTION".to_owned(),
            build.details.environment_action.as_str().to_owned(),
        );
    }
    variables
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeartbeatAnswer {
    /// `running`, or `canceling` when the runner should stop the job and finish it `canceled`.
    pub(crate) status: String,
    pub(crate) lease_expires_at: DateTime<Utc>,
}

/// Builds a runner holds, to be told the moment one of them is asked to stop.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchRequest {
    /// The builds to watch: 1 to 256 ids.
    pub(crate) ids: Vec<i64>,
    /// How long to wait for one of them to need the runner, 0 to 30 seconds; 0 answers at once.
    #[serde(default)]
    pub(crate) wait_seconds: Option<u32>,
}

/// The watched builds as they stand, in the order asked.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WatchAnswer {
    pub(crate) builds: Vec<WatchedBuild>,
}

/// One watched build.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WatchedBuild {
    pub(crate) id: i64,
    /// The build's status; `null` when there is no such build. `canceling`: stop the script
    /// and finish the build `canceled`.
    pub(crate) status: Option<String>,
    /// Whether this runner still holds the build; `false`: drop it (its lease was lost, it
    /// ended, or it is another runner's).
    pub(crate) held: bool,
}

impl From<lockstep_storage_pg::WatchedBuild> for WatchedBuild {
    fn from(build: lockstep_storage_pg::WatchedBuild) -> Self {
        Self {
            id: build.id.0,
            status: build.status.map(|status| status.to_string()),
            held: build.held,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobResult {
    Success,
    Failed,
    Canceled,
}

/// Why a runner failed a build (`runner_lost` is the server's to decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunnerFailure {
    ScriptFailure,
    JobTimeout,
    RunnerSystemFailure,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinishRequest {
    pub(crate) result: JobResult,
    #[serde(default)]
    pub(crate) exit_code: Option<i32>,
    /// For `failed` only; defaults to `script_failure`.
    #[serde(default)]
    pub(crate) failure_reason: Option<RunnerFailure>,
    /// What the runner produced for the log, to be checked against what the server stored.
    #[serde(default)]
    pub(crate) log: Option<LogReport>,
}

/// A runner's account of a build's log: every byte it meant to store, in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogReport {
    /// Its length.
    pub(crate) bytes: u64,
    /// Its SHA-256, 64 hex digits.
    #[schema(min_length = 64, max_length = 64, pattern = "^[0-9a-fA-F]{64}$")]
    pub(crate) sha256: String,
}

/// The runner's account of a build's log against what the server stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogIntegrity {
    /// The bytes the server stored.
    bytes: u64,
    /// The bytes the runner said it produced.
    reported_bytes: u64,
    /// `sha256:` and the SHA-256 of the stored bytes, in hex.
    checksum: String,
    /// Whether the runner's length and SHA-256 match the stored log's: `false` means the log
    /// lost bytes on the way.
    complete: bool,
}

impl From<lockstep_storage_pg::LogCheck> for LogIntegrity {
    fn from(check: lockstep_storage_pg::LogCheck) -> Self {
        Self {
            bytes: check.bytes,
            reported_bytes: check.reported_bytes,
            checksum: format!("sha256:{}", hex::encode(check.sha256)),
            complete: check.complete,
        }
    }
}

/// Up to `max_jobs` builds for one runner, in one answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchJobRequest {
    /// How many builds at most, 1 to 100.
    pub(crate) max_jobs: u32,
    /// How long to wait for at least one build, 0 to 30 seconds; 0 answers at once.
    #[serde(default)]
    pub(crate) wait_seconds: Option<u32>,
}

/// Builds handed to a runner, in ascending id.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Jobs {
    pub(crate) jobs: Vec<Job>,
}

/// Several results reported at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchFinishRequest {
    /// 1 to 100 reports; those of one pipeline apply in this order.
    pub(crate) reports: Vec<BatchReport>,
}

/// One result: the body of `POST /jobs/{id}/finish` with the build's id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchReport {
    /// The build id.
    pub(crate) id: i64,
    pub(crate) result: JobResult,
    #[serde(default)]
    pub(crate) exit_code: Option<i32>,
    /// For `failed` only; defaults to `script_failure`.
    #[serde(default)]
    pub(crate) failure_reason: Option<RunnerFailure>,
}

/// One answer per report, in the order of the reports.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchFinishAnswer {
    pub(crate) results: Vec<ReportAnswer>,
}

/// What `POST /jobs/{id}/finish` would have answered for this report alone: the build's status,
/// or the error with its HTTP status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReportAnswer {
    pub(crate) id: i64,
    /// The build's status after the report, when it was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
    /// The HTTP status the single-build call would have answered, when the report was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) http_status: Option<u16>,
    /// Why the report was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ErrorDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FinishAnswer {
    pub(crate) id: i64,
    /// The build's status after the report.
    pub(crate) status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogAppended {
    /// Where the log ends now: the offset of the next append.
    pub(crate) offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    pub(crate) status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::JobSpec;
    use lockstep_domain::JobDefinition;
    use utoipa::PartialSchema;

    #[test]
    fn job_spec_documents_exactly_the_fields_of_job_definition() {
        let definition = serde_json::to_value(JobDefinition::default()).expect("serializes");
        let mut fields: Vec<String> = definition
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        let schema = serde_json::to_value(JobSpec::schema()).expect("serializes");
        let mut documented: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        fields.sort();
        documented.sort();
        assert_eq!(fields, documented);
    }
}
