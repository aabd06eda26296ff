//! Creating a pipeline: the pipeline, its builds and their deployments in one transaction.

use crate::locking::Locks;
use crate::rows::to_int;
use crate::schema::{ci_builds, pipelines};
use crate::write::{self, NewDeployment};
use crate::{CreatedPipeline, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use lockstep_domain::{
    BuildId, BuildStatus, DeploymentStatus, PipelineId, ProjectId, ValidPipeline, plan_new_pipeline,
};

/// Rows per INSERT, far below PostgreSQL's 65,535 bind parameters at 16 columns a row.
const INSERT_CHUNK: usize = 1_000;

#[derive(Insertable)]
#[diesel(table_name = ci_builds)]
struct NewBuild<'a> {
    pipeline_id: i64,
    name: &'a str,
    stage: &'a str,
    stage_idx: i32,
    needs: Option<&'a [String]>,
    run_when: &'a str,
    allow_failure: bool,
    script: &'a [String],
    tags: &'a [String],
    environment: Option<&'a str>,
    timeout_seconds: i32,
    retry_limit: i32,
    status: &'a str,
    created_at: DateTime<Utc>,
    queued_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// What a new pipeline is made of: its project, ref and validated jobs.
#[derive(Debug, Clone, Copy)]
pub struct NewPipeline<'a> {
    pub project: ProjectId,
    pub git_ref: &'a str,
    pub sha: Option<&'a str>,
    pub definition: &'a ValidPipeline,
}

pub(crate) fn create(
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    now: DateTime<Utc>,
) -> Result<CreatedPipeline, StorageError> {
    let (statuses, status) = plan_new_pipeline(new.definition);
    let pipeline_id = diesel::insert_into(pipelines::table)
        .values((
            pipelines::project_id.eq(new.project.0),
            pipelines::ref_.eq(new.git_ref),
            pipelines::sha.eq(new.sha),
            pipelines::status.eq(status.as_str()),
            pipelines::created_at.eq(now),
            pipelines::updated_at.eq(now),
            pipelines::finished_at.eq(status.is_terminal().then_some(now)),
        ))
        .returning(pipelines::id)
        .get_result::<i64>(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                StorageError::NotFound {
                    entity: "project",
                    id: new.project.0,
                }
            }
            other => other.into(),
        })?;
    let builds = insert_builds(conn, pipeline_id, new.definition, &statuses, now)?;
    let deployments = insert_deployments(conn, new, &builds, &statuses, now)?;
    Ok(CreatedPipeline {
        id: PipelineId(pipeline_id),
        status,
        builds,
        deployments,
    })
}

fn insert_builds(
    conn: &mut PgConnection,
    pipeline_id: i64,
    definition: &ValidPipeline,
    statuses: &[BuildStatus],
    now: DateTime<Utc>,
) -> Result<Vec<BuildId>, StorageError> {
    let rows: Vec<NewBuild<'_>> = definition
        .jobs()
        .iter()
        .zip(statuses)
        .map(|(job, status)| NewBuild {
            pipeline_id,
            name: job.name(),
            stage: job.stage(),
            stage_idx: to_int(job.stage_idx()),
            needs: job.needs(),
            run_when: job.when().as_str(),
            allow_failure: job.allow_failure(),
            script: job.script(),
            tags: job.tags(),
            environment: job.environment(),
            timeout_seconds: to_int(job.timeout_seconds()),
            retry_limit: to_int(job.retry()),
            status: status.as_str(),
            created_at: now,
            queued_at: (*status == BuildStatus::Pending).then_some(now),
            finished_at: status.is_terminal().then_some(now),
        })
        .collect();
    let mut ids = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_CHUNK) {
        // RETURNING follows the VALUES order, so ids line up with jobs.
        let chunk_ids = diesel::insert_into(ci_builds::table)
            .values(chunk)
            .returning(ci_builds::id)
            .get_results::<i64>(conn)?;
        ids.extend(chunk_ids.into_iter().map(BuildId));
    }
    Ok(ids)
}

fn insert_deployments(
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    builds: &[BuildId],
    statuses: &[BuildStatus],
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let jobs = new.definition.jobs();
    let names: Vec<&str> = jobs.iter().filter_map(|j| j.environment()).collect();
    if names.is_empty() {
        return Ok(0);
    }
    let (environments, mut locks) = Locks::begin(conn)?.ensure_environments(new.project, &names)?;
    let rows: Vec<NewDeployment> = jobs
        .iter()
        .zip(builds.iter().zip(statuses))
        .filter_map(|(job, (build, status))| {
            let environment_id = *environments.get(job.environment()?)?;
            Some(NewDeployment {
                build: *build,
                environment_id,
                status: DeploymentStatus::for_build(*status),
            })
        })
        .collect();
    if rows.len() != names.len() {
        return Err(StorageError::corrupt(
            "an environment vanished while its pipeline was created",
        ));
    }
    write::insert_deployments(locks.conn(), &rows, now)?;
    Ok(rows.len())
}
