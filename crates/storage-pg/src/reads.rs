//! Read models: pipelines (one with its builds and deployments, or a page of summaries) and
//! builds, as clients see them.

use crate::StorageError;
use crate::rows::{count, parse, parse_failure_reason, parse_when};
use crate::schema::{ci_builds, deployments, environments, pipelines, projects, resource_groups};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{
    AllowFailure, BuildId, BuildStatus, DeploymentId, DeploymentStatus, FailureReason, PipelineId,
    PipelineStatus, ProjectId, RetryPolicy, RunnerId, When,
};
use std::collections::BTreeSet;

/// A pipeline with its builds and their deployments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineView {
    pub summary: PipelineSummary,
    /// Every attempt of every job, in id order.
    pub builds: Vec<BuildView>,
}

/// A pipeline without its builds, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSummary {
    pub id: PipelineId,
    pub project_id: ProjectId,
    pub git_ref: String,
    pub sha: Option<String>,
    pub status: PipelineStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The newer pipeline on the same ref that canceled this one, whole or in part.
    pub auto_canceled_by: Option<PipelineId>,
}

/// Which page of a project's pipelines to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineQuery {
    /// Only pipelines in this status.
    pub status: Option<PipelineStatus>,
    /// Only pipelines of this branch or tag.
    pub git_ref: Option<String>,
    /// Only pipelines older than this one (ids grow with time): the last id of the previous page.
    pub before: Option<PipelineId>,
    /// At most this many pipelines.
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildView {
    pub id: BuildId,
    pub pipeline_id: PipelineId,
    pub name: String,
    pub stage: String,
    pub status: BuildStatus,
    pub when: When,
    pub allow_failure: AllowFailure,
    pub retry: RetryPolicy,
    /// The attempt this one retries.
    pub retry_of: Option<BuildId>,
    /// The attempt that retries this one.
    pub retried_by: Option<BuildId>,
    /// Made by the job's retry rule after a failure, not by a person.
    pub automatic_retry: bool,
    /// The runner's account of the log, checked against the stored log when it reported.
    pub log_check: Option<crate::LogCheck>,
    pub needs: Option<Vec<String>>,
    pub tags: Vec<String>,
    pub script: Vec<String>,
    /// The environment the job starts, prepares or stops (`details.environment_action`).
    pub environment: Option<String>,
    pub details: crate::JobDetails,
    pub attempt: u32,
    pub runner_id: Option<RunnerId>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<FailureReason>,
    pub exit_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub deployment: Option<DeploymentView>,
    /// The resource group whose slot it must hold to run.
    pub resource_group: Option<String>,
    pub interruptible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: DeploymentId,
    pub environment: String,
    pub status: DeploymentStatus,
}

type PipelineRow = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<i64>,
);

const PIPELINE_COLUMNS: (
    pipelines::id,
    pipelines::project_id,
    pipelines::ref_,
    pipelines::sha,
    pipelines::status,
    pipelines::created_at,
    pipelines::finished_at,
    pipelines::auto_canceled_by,
) = (
    pipelines::id,
    pipelines::project_id,
    pipelines::ref_,
    pipelines::sha,
    pipelines::status,
    pipelines::created_at,
    pipelines::finished_at,
    pipelines::auto_canceled_by,
);

fn pipeline_summary(row: PipelineRow) -> Result<PipelineSummary, StorageError> {
    let (id, project_id, git_ref, sha, status, created_at, finished_at, auto_canceled_by) = row;
    Ok(PipelineSummary {
        id: PipelineId(id),
        project_id: ProjectId(project_id),
        git_ref,
        sha,
        status: parse("pipelines.status", &status)?,
        created_at,
        finished_at,
        auto_canceled_by: auto_canceled_by.map(PipelineId),
    })
}

/// Loads a pipeline and all its builds, in two statements of one read-only transaction so they
/// agree with each other.
pub fn load_pipeline(
    conn: &mut PgConnection,
    id: PipelineId,
) -> Result<PipelineView, StorageError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let row = pipelines::table
                .find(id.0)
                .select(PIPELINE_COLUMNS)
                .first::<PipelineRow>(conn)
                .optional()?
                .ok_or(StorageError::NotFound {
                    entity: "pipeline",
                    id: id.0,
                })?;
            Ok(PipelineView {
                summary: pipeline_summary(row)?,
                builds: select_builds(conn, Builds::Of(id))?,
            })
        })
}

/// A page of a project's pipelines, newest first; see [`PipelineQuery`].
pub fn list_pipelines(
    conn: &mut PgConnection,
    project: ProjectId,
    query: &PipelineQuery,
) -> Result<Vec<PipelineSummary>, StorageError> {
    conn.build_transaction().read_only().run(|conn| {
        // Reads the index pipelines_project_id_id backwards from `before`.
        let mut select = pipelines::table
            .filter(pipelines::project_id.eq(project.0))
            .order(pipelines::id.desc())
            .limit(i64::from(query.limit))
            .select(PIPELINE_COLUMNS)
            .into_boxed();
        if let Some(status) = query.status {
            select = select.filter(pipelines::status.eq(status.as_str()));
        }
        if let Some(before) = query.before {
            select = select.filter(pipelines::id.lt(before.0));
        }
        if let Some(git_ref) = &query.git_ref {
            select = select.filter(pipelines::ref_.eq(git_ref));
        }
        let rows = select.load::<PipelineRow>(conn)?;
        // A pipeline proves its project exists; only an empty page needs to ask. Projects are
        // never deleted, so the answer cannot change between the two statements.
        if rows.is_empty() {
            check_project(conn, project)?;
        }
        rows.into_iter().map(pipeline_summary).collect()
    })
}

/// `NotFound` unless the project exists.
pub(crate) fn check_project(
    conn: &mut PgConnection,
    project: ProjectId,
) -> Result<(), StorageError> {
    let exists = diesel::select(diesel::dsl::exists(projects::table.find(project.0)))
        .get_result::<bool>(conn)?;
    if exists {
        Ok(())
    } else {
        Err(StorageError::NotFound {
            entity: "project",
            id: project.0,
        })
    }
}

/// One build, as [`load_pipeline`] shows it.
pub fn load_build(conn: &mut PgConnection, id: BuildId) -> Result<BuildView, StorageError> {
    select_builds(conn, Builds::One(id))?
        .pop()
        .ok_or(StorageError::NotFound {
            entity: "build",
            id: id.0,
        })
}

type BuildRow = (
    (
        i64,
        String,
        String,
        String,
        String,
        bool,
        Option<Vec<String>>,
        Vec<String>,
        Vec<String>,
        i32,
    ),
    (
        i64,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<i32>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    ),
    (Option<i64>, Option<String>, Option<String>),
    (Option<String>, bool, Option<String>),
    (
        Option<Vec<i32>>,
        i32,
        Vec<String>,
        Vec<i32>,
        Option<i64>,
        bool,
    ),
);

/// Which builds to select.
#[derive(Debug, Clone, Copy)]
enum Builds {
    /// Every build of a pipeline.
    Of(PipelineId),
    One(BuildId),
}

/// Builds with their deployments, in id order: the one query behind every build read model.
fn select_builds(conn: &mut PgConnection, which: Builds) -> Result<Vec<BuildView>, StorageError> {
    let query = ci_builds::table
        .left_join(deployments::table.left_join(environments::table))
        .left_join(resource_groups::table)
        .order(ci_builds::id.asc())
        .select((
            (
                ci_builds::id,
                ci_builds::name,
                ci_builds::stage,
                ci_builds::status,
                ci_builds::run_when,
                ci_builds::allow_failure,
                ci_builds::needs,
                ci_builds::tags,
                ci_builds::script,
                ci_builds::attempt,
            ),
            (
                ci_builds::pipeline_id,
                ci_builds::runner_id,
                ci_builds::lease_expires_at,
                ci_builds::failure_reason,
                ci_builds::exit_code,
                ci_builds::created_at,
                ci_builds::started_at,
                ci_builds::finished_at,
            ),
            (
                deployments::id.nullable(),
                deployments::status.nullable(),
                environments::name.nullable(),
            ),
            (
                resource_groups::name.nullable(),
                ci_builds::interruptible,
                ci_builds::environment,
            ),
            (
                ci_builds::allow_failure_exit_codes,
                ci_builds::retry_limit,
                ci_builds::retry_when,
                ci_builds::retry_exit_codes,
                ci_builds::retry_of,
                ci_builds::automatic_retry,
            ),
        ))
        .into_boxed();
    let query = match which {
        Builds::Of(pipeline) => query.filter(ci_builds::pipeline_id.eq(pipeline.0)),
        Builds::One(build) => query.filter(ci_builds::id.eq(build.0)),
    };
    let rows = query.load::<BuildRow>(conn)?;
    let mut views = rows
        .into_iter()
        .map(build_view)
        .collect::<Result<Vec<_>, _>>()?;
    add_retried_by(conn, &mut views)?;
    add_details(conn, &mut views)?;
    let ids: Vec<i64> = views.iter().map(|v| v.id.0).collect();
    for (build, check) in crate::logs::log_checks(conn, &ids)? {
        if let Some(view) = views.iter_mut().find(|v| v.id == build) {
            view.log_check = Some(check);
        }
    }
    Ok(views)
}

/// Fills in each build's job details: one lookup per pipeline (the views are of one).
fn add_details(conn: &mut PgConnection, views: &mut [BuildView]) -> Result<(), StorageError> {
    let pipelines: BTreeSet<PipelineId> = views.iter().map(|v| v.pipeline_id).collect();
    for pipeline in pipelines {
        let jobs: Vec<&str> = views
            .iter()
            .filter(|v| v.pipeline_id == pipeline)
            .map(|v| v.name.as_str())
            .collect();
        let details = crate::job_definitions::load(conn, pipeline, &jobs)?;
        for view in views.iter_mut().filter(|v| v.pipeline_id == pipeline) {
            if let Some(found) = details.get(&view.name) {
                view.details = found.clone();
            }
        }
    }
    Ok(())
}

/// Fills in which attempt retried each build: one lookup on `ci_builds_retry_of`.
fn add_retried_by(conn: &mut PgConnection, views: &mut [BuildView]) -> Result<(), StorageError> {
    let ids: Vec<i64> = views.iter().map(|v| v.id.0).collect();
    let retries: Vec<(Option<i64>, i64)> = ci_builds::table
        .filter(ci_builds::retry_of.eq_any(&ids))
        .select((ci_builds::retry_of, ci_builds::id))
        .load(conn)?;
    for (retried, by) in retries {
        if let Some(view) = views.iter_mut().find(|v| Some(v.id.0) == retried) {
            view.retried_by = Some(BuildId(by));
        }
    }
    Ok(())
}

fn build_view(row: BuildRow) -> Result<BuildView, StorageError> {
    let (
        (id, name, stage, status, run_when, allow_failure, needs, tags, script, attempt),
        times,
        deployment,
        (resource_group, interruptible, environment),
        (allowed_codes, retry_max, retry_when, retry_codes, retry_of, automatic_retry),
    ) = row;
    let (
        pipeline_id,
        runner_id,
        lease_expires_at,
        failure_reason,
        exit_code,
        created_at,
        started_at,
        finished_at,
    ) = times;
    let deployment = match deployment {
        (Some(id), Some(status), Some(environment)) => Some(DeploymentView {
            id: DeploymentId(id),
            environment,
            status: parse("deployments.status", &status)?,
        }),
        _ => None,
    };
    let failure_reason = failure_reason
        .as_deref()
        .map(parse_failure_reason)
        .transpose()?;
    Ok(BuildView {
        id: BuildId(id),
        pipeline_id: PipelineId(pipeline_id),
        name,
        stage,
        status: parse("ci_builds.status", &status)?,
        when: parse_when(&run_when)?,
        allow_failure: crate::transitions::snapshot::allow_failure(allow_failure, allowed_codes),
        retry: crate::transitions::snapshot::retry_policy(retry_max, &retry_when, retry_codes)?,
        retry_of: retry_of.map(BuildId),
        retried_by: None,
        automatic_retry,
        log_check: None,
        needs,
        tags,
        script,
        environment,
        details: crate::JobDetails::default(),
        attempt: count("ci_builds.attempt", attempt)?,
        runner_id: runner_id.map(RunnerId),
        lease_expires_at,
        failure_reason,
        exit_code,
        created_at,
        started_at,
        finished_at,
        deployment,
        resource_group,
        interruptible,
    })
}

/// How many builds wait for a runner. Counts through the partial index of pending builds.
pub fn count_pending_builds(conn: &mut PgConnection) -> Result<i64, StorageError> {
    Ok(ci_builds::table
        .filter(ci_builds::status.eq("pending"))
        .count()
        .get_result(conn)?)
}
