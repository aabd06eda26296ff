//! Creating a pipeline: the pipeline, its builds and their deployments in one transaction.
//!
//! Whatever the number of jobs, the rows go in with two statements of fixed text: one for the
//! pipeline and its builds, one for the deployments (with the environments ensured between them,
//! in the lock order), each taking one array per column. A pipeline of 1,000 builds used to be a
//! 16,000-parameter VALUES list that PostgreSQL parsed and planned every time.

use super::allocate;
use crate::locking::{AtBuilds, LockedGroups, Locks};
use crate::prepared::{Prepared, Statement};
use crate::rows::to_int;
use crate::write;
use crate::{CreatedPipeline, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use lockstep_domain::{
    BuildId, BuildStatus, DeploymentStatus, PipelineId, PipelineStatus, ProjectId, ValidJob,
    ValidPipeline, plan_new_pipeline,
};
use std::collections::HashMap;

/// What a new pipeline is made of: its project, ref and validated jobs.
#[derive(Debug, Clone, Copy)]
pub struct NewPipeline<'a> {
    pub project: ProjectId,
    pub git_ref: &'a str,
    pub sha: Option<&'a str>,
    pub definition: &'a ValidPipeline,
}

/// Locks, in the canonical order: the pipeline's resource groups (ensured first, by name), the
/// waiting builds they grant a slot to, the environments (ensured, by name). The pipeline, its
/// builds and deployments are new rows, which no other transaction can wait for.
pub(crate) fn create(
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    now: DateTime<Utc>,
) -> Result<CreatedPipeline, StorageError> {
    let (statuses, status) = plan_new_pipeline(new.definition);
    let group_names: Vec<&str> = new
        .definition
        .jobs()
        .iter()
        .filter_map(ValidJob::resource_group)
        .collect();
    let (groups, mut locks) = Locks::begin(conn)?.ensure_groups(new.project, &group_names)?;
    let (pipeline_id, builds) =
        insert_pipeline(locks.conn(), new, status, &statuses, &groups, now)?;
    // Its builds of a group that may run start waiting; the groups grant what they can at once.
    let (_, locks) = allocate::grant_free_slots(locks, &groups, now)?;
    let deployments = insert_deployments(locks, new, &builds, &statuses, now)?;
    Ok(CreatedPipeline {
        id: pipeline_id,
        status,
        builds,
        deployments,
    })
}

/// Inserts the pipeline and its builds; returns the pipeline's id and the builds' ids in job
/// order.
fn insert_pipeline(
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    status: PipelineStatus,
    statuses: &[BuildStatus],
    groups: &LockedGroups,
    now: DateTime<Utc>,
) -> Result<(PipelineId, Vec<BuildId>), StorageError> {
    let jobs = new.definition.jobs();
    let group_ids: Vec<Option<i64>> = jobs
        .iter()
        .map(|j| match j.resource_group() {
            None => Some(None),
            Some(name) => groups.by_name(name).map(|g| Some(g.id.0)),
        })
        .collect::<Option<_>>()
        .ok_or_else(|| StorageError::corrupt("a resource group vanished while it was ensured"))?;
    // One array per column, element i for job i (see insert_pipeline.sql).
    let texts = |f: fn(&ValidJob) -> &str| jobs.iter().map(f).collect::<Vec<_>>();
    let ints = |f: fn(&ValidJob) -> u32| jobs.iter().map(|j| to_int(f(j))).collect::<Vec<_>>();
    let literals = |f: fn(&ValidJob) -> &[String]| {
        jobs.iter().map(|j| array_literal(f(j))).collect::<Vec<_>>()
    };
    let needs: Vec<Option<String>> = jobs.iter().map(|j| j.needs().map(array_literal)).collect();
    let environments: Vec<Option<&str>> = jobs.iter().map(ValidJob::environment).collect();
    let allow_failure: Vec<bool> = jobs.iter().map(ValidJob::allow_failure).collect();
    let build_statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let queued: Vec<bool> = statuses.iter().map(|s| write::is_queued(*s)).collect();
    let finished: Vec<bool> = statuses.iter().map(|s| s.is_terminal()).collect();
    let rows = Prepared::<InsertPipeline>::new()
        .bind::<BigInt, _>(new.project.0)
        .bind::<Text, _>(new.git_ref)
        .bind::<Nullable<Text>, _>(new.sha)
        .bind::<Text, _>(status.as_str())
        .bind::<Timestamptz, _>(now)
        .bind::<Bool, _>(status.is_terminal())
        .bind::<Array<Text>, _>(texts(ValidJob::name))
        .bind::<Array<Text>, _>(texts(ValidJob::stage))
        .bind::<Array<Integer>, _>(ints(ValidJob::stage_idx))
        .bind::<Array<Nullable<Text>>, _>(needs)
        .bind::<Array<Text>, _>(texts(|j| j.when().as_str()))
        .bind::<Array<Bool>, _>(allow_failure)
        .bind::<Array<Text>, _>(literals(ValidJob::script))
        .bind::<Array<Text>, _>(literals(ValidJob::tags))
        .bind::<Array<Nullable<Text>>, _>(environments)
        .bind::<Array<Integer>, _>(ints(ValidJob::timeout_seconds))
        .bind::<Array<Integer>, _>(ints(ValidJob::retry))
        .bind::<Array<Text>, _>(build_statuses)
        .bind::<Array<Bool>, _>(queued)
        .bind::<Array<Bool>, _>(finished)
        .bind::<Array<Nullable<BigInt>>, _>(group_ids)
        .load::<InsertedBuild>(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, ref info)
                if info.constraint_name() == Some("pipelines_project_id_fkey") =>
            {
                StorageError::NotFound {
                    entity: "project",
                    id: new.project.0,
                }
            }
            other => other.into(),
        })?;
    let mismatch =
        || StorageError::corrupt("the builds inserted for a new pipeline do not match its jobs");
    let pipeline_id = rows.first().ok_or_else(mismatch)?.pipeline_id;
    let by_name: HashMap<&str, i64> = rows.iter().map(|row| (row.name.as_str(), row.id)).collect();
    if by_name.len() != jobs.len() {
        return Err(mismatch());
    }
    let builds = jobs
        .iter()
        .map(|job| by_name.get(job.name()).map(|id| BuildId(*id)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(mismatch)?;
    Ok((PipelineId(pipeline_id), builds))
}

/// One inserted build, as insert_pipeline.sql returns it.
#[derive(QueryableByName)]
struct InsertedBuild {
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

const INSERT_PIPELINE_SQL: &str = include_str!("create/insert_pipeline.sql");

struct InsertPipeline;

impl Statement for InsertPipeline {
    const SQL: &'static str = INSERT_PIPELINE_SQL;
}
const INSERT_DEPLOYMENTS_SQL: &str = include_str!("create/insert_deployments.sql");

struct InsertDeployments;

impl Statement for InsertDeployments {
    const SQL: &'static str = INSERT_DEPLOYMENTS_SQL;
}

/// A PostgreSQL array literal of `items` (`{"a","b \"c\""}`) that `::text[]` parses back to
/// exactly `items`: every element is quoted, so no content (commas, braces, spaces, `NULL`) is
/// taken for syntax, and `"` and `\` are escaped with a backslash, the only two characters that
/// need it inside quotes.
fn array_literal(items: &[String]) -> String {
    let mut literal = String::with_capacity(2 + items.iter().map(|s| s.len() + 3).sum::<usize>());
    literal.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

fn insert_deployments(
    locks: Locks<'_, AtBuilds>,
    new: &NewPipeline<'_>,
    builds: &[BuildId],
    statuses: &[BuildStatus],
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let jobs = new.definition.jobs();
    let names: Vec<&str> = jobs.iter().filter_map(ValidJob::environment).collect();
    if names.is_empty() {
        return Ok(0);
    }
    let (environments, mut locks) = locks.ensure_environments(new.project, &names)?;
    let mut build_ids = Vec::with_capacity(names.len());
    let mut environment_ids = Vec::with_capacity(names.len());
    let mut deployment_statuses = Vec::with_capacity(names.len());
    let mut finished = Vec::with_capacity(names.len());
    for (job, (build, status)) in jobs.iter().zip(builds.iter().zip(statuses)) {
        let Some(name) = job.environment() else {
            continue;
        };
        let Some(environment_id) = environments.get(name) else {
            return Err(StorageError::corrupt(
                "an environment vanished while its pipeline was created",
            ));
        };
        let status = DeploymentStatus::for_build(*status);
        build_ids.push(build.0);
        environment_ids.push(*environment_id);
        deployment_statuses.push(status.as_str());
        finished.push(status.is_terminal());
    }
    Prepared::<InsertDeployments>::new()
        .bind::<Timestamptz, _>(now)
        .bind::<Array<BigInt>, _>(&build_ids)
        .bind::<Array<BigInt>, _>(&environment_ids)
        .bind::<Array<Text>, _>(&deployment_statuses)
        .bind::<Array<Bool>, _>(&finished)
        .execute(locks.conn())?;
    Ok(build_ids.len())
}

#[cfg(test)]
mod tests;
