//! Writes: updates of rows this transaction holds, and inserts of new rows.
//!
//! Updates on the hot path are fixed texts run as prepared statements (`prepared.rs`): diesel
//! never caches an UPDATE it builds, and re-planning them showed in profiles.
//!
//! Every update takes the `Locked*` proof from `locking.rs` and refuses an id it does not cover,
//! so an UPDATE here never locks a row by itself (which would bypass the lock order).

use crate::StorageError;
use crate::locking::{LockedBuilds, LockedDeployments, LockedGroups, LockedPipeline};
use crate::prepared::{Prepared, Statement};
use crate::rows::to_int;
use crate::schema::{ci_builds, deployments, pipelines, resource_groups};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use lockstep_domain::{
    BuildChange, BuildId, BuildStatus, DeploymentId, DeploymentStatus, NewAttempt, PipelineId,
    PipelineStatus, ProcessMode, ResourceGroupId,
};
use std::collections::BTreeMap;

/// When a status starts a clock: pending starts the queue wait, terminal ends the build.
///
/// A build of a resource group is different: waiting for a slot starts a wait of its own, and
/// getting the slot starts the queue wait; both are stamped with the database's clock at the
/// statement (`clock_timestamp()`), not with `now`. Those statements run under the group's
/// lock, so their readings follow the order in which the group decided; a `now` read before
/// waiting for that lock need not. The `unordered` line and the grant-order invariant go by it.
fn queued_at(status: BuildStatus, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    is_queued(status).then_some(now)
}

/// Whether a status starts the queue clock (`queued_at`).
pub(crate) fn is_queued(status: BuildStatus) -> bool {
    matches!(
        status,
        BuildStatus::Pending | BuildStatus::WaitingForResource
    )
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
    let mut requeued = Vec::new();
    for change in changes {
        if !held.holds(change.id) {
            return Err(StorageError::corrupt(format!(
                "refused to write build {} without its lock",
                change.id
            )));
        }
        if change.to.is_queued_again(change.from) {
            requeued.push(change.id.0);
            continue;
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
            .bind::<Timestamptz, _>(now)
            .execute(conn)?;
    }
    if !requeued.is_empty() {
        Prepared::<Requeue>::new()
            .bind::<Array<BigInt>, _>(requeued)
            .execute(conn)?;
    }
    Ok(())
}

/// A status change of builds; a clock or failure detail that is NULL here keeps its value, and
/// a group's build that starts a queue clock takes the database's (see `queued_at`). A build
/// asked to stop starts the cancel's grace (`canceling_since`) at `$7`.
struct SetBuildStatus;

impl Statement for SetBuildStatus {
    const SQL: &'static str = "UPDATE ci_builds SET status = $1, \
        failure_reason = COALESCE($2, failure_reason), exit_code = COALESCE($3, exit_code), \
        queued_at = CASE WHEN $4::timestamptz IS NOT NULL AND resource_group_id IS NOT NULL \
            THEN clock_timestamp() ELSE COALESCE($4, queued_at) END, \
        finished_at = COALESCE($5, finished_at), \
        canceling_since = CASE WHEN $1 = 'canceling' THEN $7 ELSE canceling_since END \
        WHERE id = ANY($6)";
}

/// A claim its runner never acknowledged goes back to the queue as if never claimed: no runner,
/// no lease, its attempt and its place (`queued_at`, and a group's slot) kept.
struct Requeue;

impl Statement for Requeue {
    const SQL: &'static str = "UPDATE ci_builds SET status = 'pending', runner_id = NULL, \
        lease_expires_at = NULL, started_at = NULL, acknowledged_at = NULL WHERE id = ANY($1)";
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

/// Draws `count` build ids from the builds' sequence, for rows inserted later in the transaction
/// (new attempts, which a resource group must be able to put in line before they exist).
pub(crate) fn draw_build_ids(
    conn: &mut PgConnection,
    count: usize,
) -> Result<Vec<BuildId>, StorageError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    Ok(Prepared::<DrawBuildIds>::new()
        .bind::<BigInt, _>(i64::try_from(count).unwrap_or(i64::MAX))
        .load::<DrawnId>(conn)?
        .into_iter()
        .map(|row| BuildId(row.id))
        .collect())
}

struct DrawBuildIds;

impl Statement for DrawBuildIds {
    const SQL: &'static str = "SELECT nextval(pg_get_serial_sequence('ci_builds', 'id')) AS id \
        FROM generate_series(1, $1)";
}

#[derive(QueryableByName)]
struct DrawnId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Inserts a new attempt, under the id drawn for it, as a copy of an existing build row.
pub(crate) fn insert_attempt(
    conn: &mut PgConnection,
    attempt: &NewAttempt,
    id: BuildId,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    use ci_builds::dsl as b;
    let source = b::ci_builds.filter(b::id.eq(attempt.copy_of.0)).select((
        id.0.into_sql::<BigInt>(),
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
        b::retry_when,
        b::retry_exit_codes,
        b::allow_failure_exit_codes,
        b::resource_group_id,
        b::interruptible,
        Some(attempt.copy_of.0).into_sql::<Nullable<BigInt>>(),
        attempt.automatic.into_sql::<Bool>(),
        to_int(attempt.attempt).into_sql::<Integer>(),
        attempt.status.as_str().into_sql::<Text>(),
        // A new attempt of a group's build that waits, or got its slot, takes the group's clock.
        diesel::dsl::sql::<Nullable<Timestamptz>>("CASE WHEN ")
            .bind::<Bool, _>(is_queued(attempt.status))
            .sql(" AND resource_group_id IS NOT NULL THEN clock_timestamp() ELSE ")
            .bind::<Nullable<Timestamptz>, _>(queued_at(attempt.status, now))
            .sql(" END"),
        finished_at(attempt.status.is_terminal(), now).into_sql::<Nullable<Timestamptz>>(),
    ));
    diesel::insert_into(b::ci_builds)
        .values(source)
        .into_columns((
            b::id,
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
            b::retry_when,
            b::retry_exit_codes,
            b::allow_failure_exit_codes,
            b::resource_group_id,
            b::interruptible,
            b::retry_of,
            b::automatic_retry,
            b::attempt,
            b::status,
            b::queued_at,
            b::finished_at,
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks held pipelines as superseded by the newer pipeline `by`.
pub(crate) fn mark_superseded(
    conn: &mut PgConnection,
    held: &[&LockedPipeline],
    by: PipelineId,
) -> Result<(), StorageError> {
    if held.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = held.iter().map(|p| p.id).collect();
    diesel::update(pipelines::table.filter(pipelines::id.eq_any(ids)))
        .set(pipelines::auto_canceled_by.eq(by.0))
        .execute(conn)?;
    Ok(())
}

/// Sets a held resource group's mode and limit.
pub(crate) fn configure_group(
    conn: &mut PgConnection,
    held: &LockedGroups,
    id: ResourceGroupId,
    mode: ProcessMode,
    limit: u32,
) -> Result<(), StorageError> {
    if held.by_id(id).is_none() {
        return Err(StorageError::corrupt(format!(
            "refused to write resource group {id} without its lock"
        )));
    }
    diesel::update(resource_groups::table.find(id.0))
        .set((
            resource_groups::process_mode.eq(mode.as_str()),
            resource_groups::slot_limit.eq(to_int(limit)),
            // The database's clock under the group's lock, comparable with the grants' (see
            // queued_at): the invariant checks tell holders from before a lower limit by it.
            resource_groups::updated_at.eq(diesel::dsl::sql::<Timestamptz>("clock_timestamp()")),
        ))
        .execute(conn)?;
    Ok(())
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
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if !held.holds(build) {
        return Err(StorageError::corrupt(format!(
            "refused to write build {build} without its lock"
        )));
    }
    Prepared::<ExtendLease>::new()
        .bind::<Timestamptz, _>(until)
        .bind::<BigInt, _>(build.0)
        .bind::<Timestamptz, _>(now)
        .execute(conn)?;
    Ok(())
}

/// Extends a lease; the first extension acknowledges the claim.
struct ExtendLease;

impl Statement for ExtendLease {
    const SQL: &'static str = "UPDATE ci_builds SET lease_expires_at = $1, \
        acknowledged_at = COALESCE(acknowledged_at, $3) WHERE id = $2";
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
