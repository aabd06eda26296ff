//! Writes: updates of rows this transaction holds, and inserts of new rows.
//!
//! Updates on the hot path are fixed texts run as prepared statements (`prepared.rs`): diesel
//! never caches an UPDATE it builds, and re-planning them showed in profiles.
//!
//! Every update takes the `Locked*` proof from `locking.rs` and refuses an id it does not cover,
//! so an UPDATE here never locks a row by itself (which would bypass the lock order).

use crate::StorageError;
use crate::locking::{LockedBuilds, LockedDeployments, LockedPipeline};
use crate::prepared::{Prepared, Statement};
use crate::rows::to_int;
use crate::schema::{ci_builds, deployments};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use lockstep_domain::{
    BuildChange, BuildId, BuildStatus, DeploymentId, DeploymentStatus, NewAttempt, PipelineStatus,
};
use std::collections::BTreeMap;

/// When a status starts a clock: pending starts the queue wait, terminal ends the build.
fn queued_at(status: BuildStatus, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (status == BuildStatus::Pending).then_some(now)
}

fn finished_at(terminal: bool, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    terminal.then_some(now)
}

/// Applies build changes, one UPDATE per distinct outcome (a failure that skips fifty builds is
/// two statements).
pub(crate) fn update_builds(
    conn: &mut PgConnection,
    held: &LockedBuilds,
    changes: &[BuildChange],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // Builds that end the same way (status, reason, exit code) are written by one statement.
    type Outcome<'a> = (&'a str, Option<&'a str>, Option<i32>);
    let mut groups: BTreeMap<Outcome<'_>, Vec<i64>> = BTreeMap::new();
    for change in changes {
        if !held.holds(change.id) {
            return Err(StorageError::corrupt(format!(
                "refused to write build {} without its lock",
                change.id
            )));
        }
        let key = (
            change.to.as_str(),
            change
                .failure_reason
                .map(lockstep_domain::FailureReason::as_str),
            change.exit_code,
        );
        groups.entry(key).or_default().push(change.id.0);
    }
    for ((status, failure_reason, exit_code), ids) in groups {
        let to: BuildStatus = crate::rows::parse("ci_builds.status", status)?;
        Prepared::<SetBuildStatus>::new()
            .bind::<Text, _>(status)
            .bind::<Nullable<Text>, _>(failure_reason)
            .bind::<Nullable<Integer>, _>(exit_code)
            .bind::<Nullable<Timestamptz>, _>(queued_at(to, now))
            .bind::<Nullable<Timestamptz>, _>(finished_at(to.is_terminal(), now))
            .bind::<Array<BigInt>, _>(ids)
            .execute(conn)?;
    }
    Ok(())
}

/// A status change of builds; a clock or failure detail that is NULL here keeps its value.
struct SetBuildStatus;

impl Statement for SetBuildStatus {
    const SQL: &'static str = "UPDATE ci_builds SET status = $1, \
        failure_reason = COALESCE($2, failure_reason), exit_code = COALESCE($3, exit_code), \
        queued_at = COALESCE($4, queued_at), finished_at = COALESCE($5, finished_at) \
        WHERE id = ANY($6)";
}

/// Sets deployment statuses.
pub(crate) fn update_deployments(
    conn: &mut PgConnection,
    held: &LockedDeployments,
    changes: &[(DeploymentId, DeploymentStatus)],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut groups: BTreeMap<&str, (DeploymentStatus, Vec<i64>)> = BTreeMap::new();
    for (id, status) in changes {
        if !held.holds(*id) {
            return Err(StorageError::corrupt(format!(
                "refused to write deployment {id} without its lock"
            )));
        }
        let group = groups
            .entry(status.as_str())
            .or_insert_with(|| (*status, Vec::new()));
        group.1.push(id.0);
    }
    for (status, ids) in groups.into_values() {
        Prepared::<SetDeploymentStatus>::new()
            .bind::<Text, _>(status.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<Timestamptz>, _>(finished_at(status.is_terminal(), now))
            .bind::<Array<BigInt>, _>(ids)
            .execute(conn)?;
    }
    Ok(())
}

struct SetDeploymentStatus;

impl Statement for SetDeploymentStatus {
    const SQL: &'static str = "UPDATE deployments \
        SET status = $1, updated_at = $2, finished_at = $3 WHERE id = ANY($4)";
}

/// Sets pipelines' statuses, one UPDATE per distinct status; `finished_at` follows the status (a
/// retry can reopen a pipeline).
pub(crate) fn update_pipelines(
    conn: &mut PgConnection,
    changes: &[(&LockedPipeline, PipelineStatus)],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut groups: BTreeMap<&str, (PipelineStatus, Vec<i64>)> = BTreeMap::new();
    for (held, status) in changes {
        let group = groups
            .entry(status.as_str())
            .or_insert_with(|| (*status, Vec::new()));
        group.1.push(held.id);
    }
    for (status, ids) in groups.into_values() {
        Prepared::<SetPipelineStatus>::new()
            .bind::<Text, _>(status.as_str())
            .bind::<Timestamptz, _>(now)
            .bind::<Nullable<Timestamptz>, _>(finished_at(status.is_terminal(), now))
            .bind::<Array<BigInt>, _>(ids)
            .execute(conn)?;
    }
    Ok(())
}

struct SetPipelineStatus;

impl Statement for SetPipelineStatus {
    const SQL: &'static str = "UPDATE pipelines \
        SET status = $1, updated_at = $2, finished_at = $3 WHERE id = ANY($4)";
}

/// Inserts a new attempt as a copy of an existing build row and returns its id.
pub(crate) fn insert_attempt(
    conn: &mut PgConnection,
    attempt: &NewAttempt,
    now: DateTime<Utc>,
) -> Result<BuildId, StorageError> {
    use ci_builds::dsl as b;
    let source = b::ci_builds.filter(b::id.eq(attempt.copy_of.0)).select((
        b::pipeline_id,
        b::name,
        b::stage,
        b::stage_idx,
        b::needs,
        b::run_when,
        b::allow_failure,
        b::script,
        b::tags,
        b::environment,
        b::timeout_seconds,
        b::retry_limit,
        to_int(attempt.attempt).into_sql::<Integer>(),
        attempt.status.as_str().into_sql::<Text>(),
        queued_at(attempt.status, now).into_sql::<Nullable<Timestamptz>>(),
        finished_at(attempt.status.is_terminal(), now).into_sql::<Nullable<Timestamptz>>(),
    ));
    let id = diesel::insert_into(b::ci_builds)
        .values(source)
        .into_columns((
            b::pipeline_id,
            b::name,
            b::stage,
            b::stage_idx,
            b::needs,
            b::run_when,
            b::allow_failure,
            b::script,
            b::tags,
            b::environment,
            b::timeout_seconds,
            b::retry_limit,
            b::attempt,
            b::status,
            b::queued_at,
            b::finished_at,
        ))
        .returning(b::id)
        .get_result::<i64>(conn)?;
    Ok(BuildId(id))
}

/// A deployment to insert: its build, environment and status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewDeployment {
    pub(crate) build: BuildId,
    pub(crate) environment_id: i64,
    pub(crate) status: DeploymentStatus,
}

pub(crate) fn insert_deployments(
    conn: &mut PgConnection,
    rows: &[NewDeployment],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<_> = rows
        .iter()
        .map(|row| {
            (
                deployments::build_id.eq(row.build.0),
                deployments::environment_id.eq(row.environment_id),
                deployments::status.eq(row.status.as_str()),
                deployments::created_at.eq(now),
                deployments::updated_at.eq(now),
                deployments::finished_at.eq(finished_at(row.status.is_terminal(), now)),
            )
        })
        .collect();
    diesel::insert_into(deployments::table)
        .values(&values)
        .execute(conn)?;
    Ok(())
}

/// Moves a held build's lease.
pub(crate) fn extend_lease(
    conn: &mut PgConnection,
    held: &LockedBuilds,
    build: BuildId,
    until: DateTime<Utc>,
) -> Result<(), StorageError> {
    if !held.holds(build) {
        return Err(StorageError::corrupt(format!(
            "refused to write build {build} without its lock"
        )));
    }
    Prepared::<ExtendLease>::new()
        .bind::<Timestamptz, _>(until)
        .bind::<BigInt, _>(build.0)
        .execute(conn)?;
    Ok(())
}

struct ExtendLease;

impl Statement for ExtendLease {
    const SQL: &'static str = "UPDATE ci_builds SET lease_expires_at = $1 WHERE id = $2";
}

#[cfg(test)]
mod tests {
    use lockstep_domain::{BuildStatus, DeploymentStatus, PipelineStatus};

    const SCHEMA: &str = include_str!("../../../migrations/2026-11-26-000000_initial/up.sql");

    /// The `finished_at` CHECK of a table, as the schema would spell it for `terminal`.
    fn finished_check(terminal: &[&str]) -> String {
        let names: Vec<String> = terminal.iter().map(|s| format!("'{s}'")).collect();
        format!(
            "CHECK ((finished_at IS NOT NULL) = (status IN ({})))",
            names.join(", ")
        )
    }

    /// Writes set `finished_at` by the domain's `is_terminal`; the schema's CHECKs insist on it
    /// with literals, so the two must name the same statuses, for all three tables.
    #[test]
    fn the_schema_ends_rows_in_the_domains_terminal_statuses() {
        let build: Vec<&str> = BuildStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        let deployment: Vec<&str> = DeploymentStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        let pipeline: Vec<&str> = PipelineStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(build, deployment);
        assert_eq!(build, pipeline);
        let check = finished_check(&deployment);
        assert_eq!(SCHEMA.matches(&check).count(), 3, "schema lacks `{check}`");
    }
}
