//! Acquire and heartbeat: the two transitions that touch builds without locking their pipeline.

use crate::locking::{ClaimRequest, ClaimedRow, Locks};
use crate::rows::{count, parse};
use crate::{AcquiredBuild, AcquiredDeployment, Heartbeat, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use lockstep_domain::{
    BuildId, BuildStatus, DeploymentId, EnvironmentAction, PipelineId, ProjectId, RunnerId,
    check_holder,
};

/// Claims builds and checks that each arrived whole; a build without its pipeline or deployment
/// rolls the claim back.
pub(crate) fn claim(
    conn: &mut PgConnection,
    request: &ClaimRequest<'_>,
) -> Result<Vec<AcquiredBuild>, StorageError> {
    let (rows, _locks) = Locks::begin(conn)?.claim(request)?;
    rows.into_iter().map(acquired).collect()
}

fn acquired(row: ClaimedRow) -> Result<AcquiredBuild, StorageError> {
    let missing = |what: &str| {
        StorageError::corrupt(format!(
            "claimed build {} arrived without its {what}",
            row.id
        ))
    };
    let (Some(project_id), Some(git_ref), Some(pipeline_status)) = (
        row.project_id,
        row.git_ref.clone(),
        row.pipeline_status.as_deref(),
    ) else {
        return Err(missing("pipeline"));
    };
    let details = crate::JobDetails::from_columns(crate::job_definitions::DetailColumns {
        before_script: row.before_script,
        after_script: row.after_script,
        variables: &row.variables,
        environment_action: &row.environment_action,
        artifacts: row.artifacts.as_deref(),
        caches: &row.caches,
        dependencies: row.dependencies,
    })?;
    let fetch = serde_json::from_str(&row.fetch_artifacts).map_err(|error| {
        StorageError::corrupt(format!("the claim's artifacts cannot be read: {error}"))
    })?;
    let deploys = details.environment_action == EnvironmentAction::Start;
    let deployment = match (
        &row.environment,
        row.deployment_id,
        row.deployment_status.as_deref(),
    ) {
        (None, None, _) => None,
        (Some(_), None, _) if !deploys => None,
        (Some(environment), Some(id), Some(status)) if deploys => Some(AcquiredDeployment {
            id: DeploymentId(id),
            environment: row
                .deployment_environment
                .clone()
                .unwrap_or_else(|| environment.clone()),
            status: parse("deployments.status", status)?,
        }),
        _ => return Err(missing("deployment")),
    };
    Ok(AcquiredBuild {
        id: BuildId(row.id),
        pipeline_id: PipelineId(row.pipeline_id),
        project_id: ProjectId(project_id),
        git_ref,
        sha: row.sha,
        pipeline_status: parse("pipelines.status", pipeline_status)?,
        name: row.name,
        stage: row.stage,
        script: row.script,
        environment: row.environment,
        details,
        fetch,
        timeout_seconds: count("ci_builds.timeout_seconds", row.timeout_seconds)?,
        attempt: count("ci_builds.attempt", row.attempt)?,
        started_at: row.started_at,
        lease_expires_at: row.lease_expires_at,
        deployment,
    })
}

/// Extends the lease of a build the runner still holds; the domain's `check_holder` decides
/// that (another runner's build is `NotHolder`, the runner's own build that has ended
/// `LeaseLost`).
pub(crate) fn heartbeat(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
    lease_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Heartbeat, StorageError> {
    let (held, mut locks) = Locks::begin(conn)?.lock_builds([build])?;
    let row = held.get(build).ok_or(StorageError::NotFound {
        entity: "build",
        id: build.0,
    })?;
    let status: BuildStatus = parse("ci_builds.status", &row.status)?;
    check_holder(build, row.runner_id.map(RunnerId), status, runner)?;
    crate::write::extend_lease(locks.conn(), &held, build, lease_expires_at, now)?;
    Ok(Heartbeat {
        status,
        lease_expires_at,
    })
}
