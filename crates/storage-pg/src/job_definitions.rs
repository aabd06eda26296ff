//! The parts of a job's definition that only its runner and its readers need: the lines around
//! its script, its variables, what it does to its environment, and the files it keeps, fetches
//! and caches (`ci_job_definitions`, one row per job that has any of them, shared by all of the
//! job's attempts).

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use crate::schema::ci_job_definitions;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use lockstep_domain::{Artifacts, Cache, EnvironmentAction, PipelineId, ValidJob};
use std::collections::BTreeMap;

/// A job's lines around its script, its variables and its environment action; the defaults
/// (nothing, and `start`) for a job that has no row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobDetails {
    pub before_script: Vec<String>,
    pub after_script: Vec<String>,
    /// The job's own variables, as written (the server adds the `CI_*` ones for the runner).
    pub variables: BTreeMap<String, String>,
    pub environment_action: EnvironmentAction,
    /// The files the runner keeps after the script, as the job declared them.
    pub artifacts: Option<Artifacts>,
    pub caches: Vec<Cache>,
    /// The jobs whose artifacts the runner fetches before the script.
    pub dependencies: Vec<String>,
}

/// A `ci_job_definitions` row's columns as read: arrays as they are, JSON as text.
#[derive(Debug)]
pub(crate) struct DetailColumns<'a> {
    pub(crate) before_script: Vec<String>,
    pub(crate) after_script: Vec<String>,
    pub(crate) variables: &'a str,
    pub(crate) environment_action: &'a str,
    pub(crate) artifacts: Option<&'a str>,
    pub(crate) caches: &'a str,
    pub(crate) dependencies: Vec<String>,
}

fn json_column<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(text).map_err(|error| {
        StorageError::corrupt(format!(
            "ci_job_definitions.{column} cannot be read: {error}"
        ))
    })
}

impl JobDetails {
    /// Reads a row's columns.
    pub(crate) fn from_columns(columns: DetailColumns<'_>) -> Result<Self, StorageError> {
        let action = columns.environment_action;
        let environment_action = EnvironmentAction::parse(action).ok_or_else(|| {
            StorageError::corrupt(format!(
                "ci_job_definitions.environment_action holds unknown value `{action}`"
            ))
        })?;
        Ok(Self {
            before_script: columns.before_script,
            after_script: columns.after_script,
            variables: json_column("variables", columns.variables)?,
            environment_action,
            artifacts: columns
                .artifacts
                .map(|text| json_column("artifacts", text))
                .transpose()?,
            caches: json_column("caches", columns.caches)?,
            dependencies: columns.dependencies,
        })
    }

    fn of(job: &ValidJob) -> Self {
        Self {
            before_script: job.before_script().to_vec(),
            after_script: job.after_script().to_vec(),
            variables: job.variables().clone(),
            environment_action: job.environment_action(),
            artifacts: job.artifacts().map(|a| a.declared().clone()),
            caches: job.caches().to_vec(),
            dependencies: job.dependencies().to_vec(),
        }
    }
}

/// Inserts the rows of the jobs that have details, in the transaction that creates their
/// pipeline. Jobs without any get no row, so a pipeline that uses none of this costs nothing.
pub(crate) fn insert(
    conn: &mut PgConnection,
    pipeline: PipelineId,
    jobs: &[ValidJob],
) -> Result<(), StorageError> {
    let mut names = Vec::new();
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut variables = Vec::new();
    let mut actions = Vec::new();
    let mut artifacts = Vec::new();
    let mut caches = Vec::new();
    let mut dependencies = Vec::new();
    for job in jobs {
        let details = JobDetails::of(job);
        if details == JobDetails::default() {
            continue;
        }
        names.push(job.name());
        before.push(crate::transitions::array_literal(&details.before_script));
        after.push(crate::transitions::array_literal(&details.after_script));
        variables.push(json(&details.variables)?);
        actions.push(details.environment_action.as_str());
        artifacts.push(details.artifacts.as_ref().map(json).transpose()?);
        caches.push(json(&details.caches)?);
        dependencies.push(crate::transitions::array_literal(&details.dependencies));
    }
    if names.is_empty() {
        return Ok(());
    }
    Prepared::<InsertJobDefinitions>::new()
        .bind::<BigInt, _>(pipeline.0)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Text>, _>(&before)
        .bind::<Array<Text>, _>(&after)
        .bind::<Array<Text>, _>(&variables)
        .bind::<Array<Text>, _>(&actions)
        .bind::<Array<Nullable<Text>>, _>(&artifacts)
        .bind::<Array<Text>, _>(&caches)
        .bind::<Array<Text>, _>(&dependencies)
        .execute(conn)?;
    Ok(())
}

fn json(value: &impl serde::Serialize) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|error| {
        StorageError::corrupt(format!("a definition that cannot be written: {error}"))
    })
}

/// A row of `ci_job_definitions` without its pipeline, JSON as text.
type DefinitionRow = (
    String,
    Vec<String>,
    Vec<String>,
    String,
    String,
    Option<String>,
    String,
    Vec<String>,
);

/// The details of these jobs of a pipeline, of those that have any, by job name.
pub(crate) fn load(
    conn: &mut PgConnection,
    pipeline: PipelineId,
    jobs: &[&str],
) -> Result<BTreeMap<String, JobDetails>, StorageError> {
    let rows: Vec<DefinitionRow> = ci_job_definitions::table
        .filter(ci_job_definitions::pipeline_id.eq(pipeline.0))
        .filter(ci_job_definitions::name.eq_any(jobs))
        .select((
            ci_job_definitions::name,
            ci_job_definitions::before_script,
            ci_job_definitions::after_script,
            diesel::dsl::sql::<Text>("variables::text"),
            ci_job_definitions::environment_action,
            diesel::dsl::sql::<Nullable<Text>>("artifacts::text"),
            diesel::dsl::sql::<Text>("caches::text"),
            ci_job_definitions::dependencies,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(
            |(name, before, after, variables, action, artifacts, caches, dependencies)| {
                JobDetails::from_columns(DetailColumns {
                    before_script: before,
                    after_script: after,
                    variables: &variables,
                    environment_action: &action,
                    artifacts: artifacts.as_deref(),
                    caches: &caches,
                    dependencies,
                })
                .map(|d| (name, d))
            },
        )
        .collect()
}

const INSERT_SQL: &str = include_str!("job_definitions/insert.sql");

struct InsertJobDefinitions;

impl Statement for InsertJobDefinitions {
    const SQL: &'static str = INSERT_SQL;
}

#[cfg(test)]
mod tests {
    use super::{DetailColumns, JobDetails};

    fn read(variables: &str, action: &str, artifacts: Option<&str>, caches: &str) -> bool {
        JobDetails::from_columns(DetailColumns {
            before_script: vec![],
            after_script: vec![],
            variables,
            environment_action: action,
            artifacts,
            caches,
            dependencies: vec![],
        })
        .is_ok()
    }

    #[test]
    fn unreadable_columns_are_corrupt_not_panics() {
        assert!(!read("{\"A\": 1}", "start", None, "[]"));
        assert!(!read("[]", "start", None, "[]"));
        assert!(!read("{}", "deploy", None, "[]"));
        assert!(!read("{}", "start", Some("1"), "[]"));
        assert!(!read("{}", "start", None, "{}"));
        assert!(read(
            "{\"A\": \"1\"}",
            "stop",
            Some("{\"paths\": [\"out\"]}"),
            "[]"
        ));
    }
}
