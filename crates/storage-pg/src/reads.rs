//! Read models: a pipeline with its builds and deployments as clients see them.

use crate::StorageError;
use crate::rows::{count, parse, parse_when};
use crate::schema::{ci_builds, deployments, environments, pipelines};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{
    BuildId, BuildStatus, DeploymentId, DeploymentStatus, FailureReason, PipelineId,
    PipelineStatus, ProjectId, RunnerId, When,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineView {
    pub id: PipelineId,
    pub project_id: ProjectId,
    pub git_ref: String,
    pub sha: Option<String>,
    pub status: PipelineStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Every attempt of every job, in id order.
    pub builds: Vec<BuildView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildView {
    pub id: BuildId,
    pub name: String,
    pub stage: String,
    pub status: BuildStatus,
    pub when: When,
    pub allow_failure: bool,
    pub needs: Option<Vec<String>>,
    pub tags: Vec<String>,
    pub script: Vec<String>,
    pub attempt: u32,
    pub runner_id: Option<RunnerId>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<FailureReason>,
    pub exit_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub deployment: Option<DeploymentView>,
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
);

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
                .select((
                    pipelines::id,
                    pipelines::project_id,
                    pipelines::ref_,
                    pipelines::sha,
                    pipelines::status,
                    pipelines::created_at,
                    pipelines::finished_at,
                ))
                .first::<PipelineRow>(conn)
                .optional()?
                .ok_or(StorageError::NotFound {
                    entity: "pipeline",
                    id: id.0,
                })?;
            let builds = load_builds(conn, id)?;
            Ok(PipelineView {
                id,
                project_id: ProjectId(row.1),
                git_ref: row.2,
                sha: row.3,
                status: parse("pipelines.status", &row.4)?,
                created_at: row.5,
                finished_at: row.6,
                builds,
            })
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
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<String>,
        Option<i32>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    ),
    (Option<i64>, Option<String>, Option<String>),
);

fn load_builds(
    conn: &mut PgConnection,
    pipeline: PipelineId,
) -> Result<Vec<BuildView>, StorageError> {
    let rows = ci_builds::table
        .left_join(deployments::table.left_join(environments::table))
        .filter(ci_builds::pipeline_id.eq(pipeline.0))
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
        ))
        .load::<BuildRow>(conn)?;
    rows.into_iter().map(build_view).collect()
}

fn build_view(row: BuildRow) -> Result<BuildView, StorageError> {
    let (
        (id, name, stage, status, run_when, allow_failure, needs, tags, script, attempt),
        times,
        deployment,
    ) = row;
    let (
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
        .map(|r| {
            FailureReason::parse(&r)
                .ok_or_else(|| StorageError::corrupt(format!("unknown failure reason `{r}`")))
        })
        .transpose()?;
    Ok(BuildView {
        id: BuildId(id),
        name,
        stage,
        status: parse("ci_builds.status", &status)?,
        when: parse_when(&run_when)?,
        allow_failure,
        needs,
        tags,
        script,
        attempt: count("ci_builds.attempt", attempt)?,
        runner_id: runner_id.map(RunnerId),
        lease_expires_at,
        failure_reason,
        exit_code,
        created_at,
        started_at,
        finished_at,
        deployment,
    })
}
