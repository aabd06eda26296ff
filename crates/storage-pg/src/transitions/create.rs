//! Creating a pipeline: the pipeline, its builds and their deployments, and the supersede of the
//! older pipelines of its ref, in one transaction.
//!
//! Whatever the number of jobs, the rows go in with two statements of fixed text: one for the
//! pipeline and its builds, one for the deployments (with the environments ensured between them,
//! in the lock order), each taking one array per column. A pipeline of 1,000 builds used to be a
//! 16,000-parameter VALUES list that PostgreSQL parsed and planned every time.

use super::pipeline::{Answer, Request, execute};
use crate::locking::{Busy, LockedGroups, Locks, PipelineOf};
use crate::prepared::{Prepared, Statement};
use crate::retry::Planning;
use crate::rows::to_int;
use crate::schema::pipelines;
use crate::write;
use crate::{CreatedPipeline, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use lockstep_domain::{
    AutoCancel, BuildId, BuildStatus, DeploymentStatus, PipelineEvent, PipelineId, PipelineStatus,
    ProjectId, ValidJob, ValidPipeline, plan_new_pipeline,
};
use std::collections::{BTreeMap, HashMap};

/// What a new pipeline is made of: its project, ref and validated jobs, and what it does to the
/// older pipelines of its ref.
#[derive(Debug, Clone, Copy)]
pub struct NewPipeline<'a> {
    pub project: ProjectId,
    pub git_ref: &'a str,
    pub sha: Option<&'a str>,
    pub definition: &'a ValidPipeline,
    pub auto_cancel: AutoCancel,
}

/// Creates a pipeline and supersedes the older, unfinished pipelines of its ref, in one
/// transaction. It locks the ref first (rank 0), so creations on one ref take turns, reads the
/// ref's unfinished pipelines, and runs their supersede events through the executor, which
/// inserts the new pipeline's rows at their place in the lock order (`Creation`).
pub(crate) fn create(
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    planning: Planning,
    now: DateTime<Utc>,
) -> Result<CreatedPipeline, StorageError> {
    let mut locks = Locks::begin(conn)?.lock_ref(new.project, new.git_ref)?;
    // A rule that leaves older pipelines alone need not even wait for them.
    let older = match new.auto_cancel {
        AutoCancel::None => Vec::new(),
        _ => unfinished_pipelines(locks.conn(), new.project, new.git_ref)?,
    };
    let requests: Vec<Request> = older
        .into_iter()
        .map(|id| {
            (
                PipelineOf::Id(id),
                PipelineEvent::Supersede(new.auto_cancel),
            )
        })
        .collect();
    let mut creation = Creation::new(new);
    let answers = execute(
        locks,
        &requests,
        Busy::Wait,
        Some(&mut creation),
        planning,
        now,
    )?;
    let superseded = answers
        .into_iter()
        .filter_map(|answer| match answer {
            Answer::Applied(applied) if !applied.is_noop() => Some(applied.pipeline_id),
            _ => None,
        })
        .collect();
    creation.created(superseded)
}

/// The ref's pipelines that have not finished, in ascending id. Read under the ref's lock, so
/// none is being created; one may finish meanwhile, and superseding it then changes nothing.
fn unfinished_pipelines(
    conn: &mut PgConnection,
    project: ProjectId,
    git_ref: &str,
) -> Result<Vec<PipelineId>, StorageError> {
    Ok(pipelines::table
        .filter(pipelines::project_id.eq(project.0))
        .filter(pipelines::ref_.eq(git_ref))
        .filter(pipelines::finished_at.is_null())
        .order(pipelines::id.asc())
        .select(pipelines::id)
        .load::<i64>(conn)?
        .into_iter()
        .map(PipelineId)
        .collect())
}

/// A pipeline being created inside the executor's transaction: its groups are ensured with
/// the groups the other plans touch (rank 2), its pipeline and builds inserted right after
/// (new rows, which nobody waits for, and which the groups' grants then see), its environments
/// ensured after the builds (rank 4), its deployments inserted after that.
#[derive(Debug)]
pub(crate) struct Creation<'a> {
    new: &'a NewPipeline<'a>,
    statuses: Vec<BuildStatus>,
    status: PipelineStatus,
    inserted: Option<(PipelineId, Vec<BuildId>)>,
    deployments: usize,
}

impl<'a> Creation<'a> {
    fn new(new: &'a NewPipeline<'a>) -> Self {
        let (statuses, status) = plan_new_pipeline(new.definition);
        Self {
            new,
            statuses,
            status,
            inserted: None,
            deployments: 0,
        }
    }

    pub(crate) fn project(&self) -> ProjectId {
        self.new.project
    }

    /// The id of the pipeline, once inserted.
    pub(crate) fn id(&self) -> Option<PipelineId> {
        self.inserted.as_ref().map(|(id, _)| *id)
    }

    pub(crate) fn group_names(&self) -> Vec<&'a str> {
        self.new
            .definition
            .jobs()
            .iter()
            .filter_map(ValidJob::resource_group)
            .collect()
    }

    pub(crate) fn environment_names(&self) -> Vec<&'a str> {
        self.new
            .definition
            .jobs()
            .iter()
            .filter_map(ValidJob::deploys_to)
            .collect()
    }

    /// Inserts the pipeline and its builds, once its groups are held. Its builds of a group
    /// that may run start waiting; the executor's grants then give them what slots there are.
    pub(crate) fn insert_pipeline(
        &mut self,
        conn: &mut PgConnection,
        groups: &LockedGroups,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let inserted = insert_pipeline(conn, self.new, self.status, &self.statuses, groups, now)?;
        self.inserted = Some(inserted);
        Ok(())
    }

    /// Inserts the deployments, once the environments are ensured.
    pub(crate) fn insert_deployments(
        &mut self,
        conn: &mut PgConnection,
        environments: &BTreeMap<String, i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let Some((_, builds)) = &self.inserted else {
            return Err(StorageError::corrupt("deployments before their pipeline"));
        };
        self.deployments =
            insert_deployments(conn, self.new, builds, &self.statuses, environments, now)?;
        Ok(())
    }

    fn created(self, superseded: Vec<PipelineId>) -> Result<CreatedPipeline, StorageError> {
        let (id, builds) = self
            .inserted
            .ok_or_else(|| StorageError::corrupt("a created pipeline was never inserted"))?;
        Ok(CreatedPipeline {
            id,
            status: self.status,
            builds,
            deployments: self.deployments,
            superseded,
        })
    }
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
    let allow_failure: Vec<bool> = jobs.iter().map(|j| j.allow_failure().may_allow()).collect();
    let retry_when: Vec<String> = jobs
        .iter()
        .map(|j| {
            let names: Vec<String> = j
                .retry()
                .when()
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect();
            array_literal(&names)
        })
        .collect();
    let retry_codes: Vec<String> = jobs
        .iter()
        .map(|j| int_literal(j.retry().exit_codes()))
        .collect();
    let allowed_codes: Vec<Option<String>> = jobs
        .iter()
        .map(|j| j.allow_failure().listed_codes().map(int_literal))
        .collect();
    let interruptible: Vec<bool> = jobs.iter().map(ValidJob::interruptible).collect();
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
        .bind::<Array<Integer>, _>(ints(|j| j.retry().max()))
        .bind::<Array<Text>, _>(build_statuses)
        .bind::<Array<Bool>, _>(queued)
        .bind::<Array<Bool>, _>(finished)
        .bind::<Array<Nullable<BigInt>>, _>(group_ids)
        .bind::<Array<Bool>, _>(interruptible)
        .bind::<Array<Text>, _>(retry_when)
        .bind::<Array<Text>, _>(retry_codes)
        .bind::<Array<Nullable<Text>>, _>(allowed_codes)
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
    crate::job_definitions::insert(conn, PipelineId(pipeline_id), jobs)?;
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

/// A PostgreSQL array literal of integers (`{1,137}`), which `::integer[]` parses back.
fn int_literal(items: &[i32]) -> String {
    let items: Vec<String> = items.iter().map(i32::to_string).collect();
    format!("{{{}}}", items.join(","))
}

/// A PostgreSQL array literal of `items` (`{"a","b \"c\""}`) that `::text[]` parses back to
/// exactly `items`: every element is quoted, so no content (commas, braces, spaces, `NULL`) is
/// taken for syntax, and `"` and `\` are escaped with a backslash, the only two characters that
/// need it inside quotes.
pub(crate) fn array_literal(items: &[String]) -> String {
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
    conn: &mut PgConnection,
    new: &NewPipeline<'_>,
    builds: &[BuildId],
    statuses: &[BuildStatus],
    environments: &BTreeMap<String, i64>,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let jobs = new.definition.jobs();
    let mut build_ids = Vec::new();
    let mut environment_ids = Vec::new();
    let mut deployment_statuses = Vec::new();
    let mut finished = Vec::new();
    for (job, (build, status)) in jobs.iter().zip(builds.iter().zip(statuses)) {
        let Some(name) = job.deploys_to() else {
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
    if build_ids.is_empty() {
        return Ok(0);
    }
    Prepared::<InsertDeployments>::new()
        .bind::<Timestamptz, _>(now)
        .bind::<Array<BigInt>, _>(&build_ids)
        .bind::<Array<BigInt>, _>(&environment_ids)
        .bind::<Array<Text>, _>(&deployment_statuses)
        .bind::<Array<Bool>, _>(&finished)
        .execute(conn)?;
    Ok(build_ids.len())
}

#[cfg(test)]
mod tests;
