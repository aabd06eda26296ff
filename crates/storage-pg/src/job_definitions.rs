//! The parts of a job's definition that only its runner and its readers need: the lines around
//! its script, its variables, and what it does to its environment (`ci_job_definitions`, one row
//! per job that has any of them, shared by all of the job's attempts).

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use crate::schema::ci_job_definitions;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use lockstep_domain::{EnvironmentAction, PipelineId, ValidJob};
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
}

impl JobDetails {
    /// Reads a row's columns (the variables as JSON text).
    pub(crate) fn from_columns(
        before_script: Vec<String>,
        after_script: Vec<String>,
        variables: &str,
        environment_action: &str,
    ) -> Result<Self, StorageError> {
        let variables = serde_json::from_str(variables).map_err(|error| {
            StorageError::corrupt(format!(
                "ci_job_definitions.variables is not an object of strings: {error}"
            ))
        })?;
        let environment_action = EnvironmentAction::parse(environment_action).ok_or_else(|| {
            StorageError::corrupt(format!(
                "ci_job_definitions.environment_action holds unknown value `{environment_action}`"
            ))
        })?;
        Ok(Self {
            before_script,
            after_script,
            variables,
            environment_action,
        })
    }

    fn of(job: &ValidJob) -> Self {
        Self {
            before_script: job.before_script().to_vec(),
            after_script: job.after_script().to_vec(),
            variables: job.variables().clone(),
            environment_action: job.environment_action(),
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
    for job in jobs {
        let details = JobDetails::of(job);
        if details == JobDetails::default() {
            continue;
        }
        names.push(job.name());
        before.push(crate::transitions::array_literal(&details.before_script));
        after.push(crate::transitions::array_literal(&details.after_script));
        variables.push(serde_json::to_string(&details.variables).map_err(|error| {
            StorageError::corrupt(format!("variables that cannot be written: {error}"))
        })?);
        actions.push(details.environment_action.as_str());
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
        .execute(conn)?;
    Ok(())
}

/// A row of `ci_job_definitions` without its pipeline, the variables as JSON text.
type DefinitionRow = (String, Vec<String>, Vec<String>, String, String);

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
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(name, before, after, variables, action)| {
            JobDetails::from_columns(before, after, &variables, &action).map(|d| (name, d))
        })
        .collect()
}

const INSERT_SQL: &str = include_str!("job_definitions/insert.sql");

struct InsertJobDefinitions;

impl Statement for InsertJobDefinitions {
    const SQL: &'static str = INSERT_SQL;
}

#[cfg(test)]
mod tests {
    use super::JobDetails;

    #[test]
    fn unreadable_columns_are_corrupt_not_panics() {
        assert!(JobDetails::from_columns(vec![], vec![], "{\"A\": 1}", "start").is_err());
        assert!(JobDetails::from_columns(vec![], vec![], "[]", "start").is_err());
        assert!(JobDetails::from_columns(vec![], vec![], "{}", "deploy").is_err());
        let details =
            JobDetails::from_columns(vec!["a".into()], vec![], "{\"A\": \"1\"}", "stop").unwrap();
        assert_eq!(details.variables["A"], "1");
    }
}
