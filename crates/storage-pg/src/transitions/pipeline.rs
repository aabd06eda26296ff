//! The one code path of every pipeline transition: lock the pipeline, read its builds, plan,
//! lock exactly the builds and deployments the plan changes (in the canonical order), write.

use super::snapshot::Snapshot;
use crate::locking::{Locks, PipelineOf};
use crate::write::{self, NewDeployment};
use crate::{Applied, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use lockstep_domain::{PipelineEvent, PipelineId, Plan, plan};

/// Runs `event` on one pipeline inside the caller's transaction.
pub(crate) fn run(
    conn: &mut PgConnection,
    target: PipelineOf,
    event: &PipelineEvent,
    now: DateTime<Utc>,
) -> Result<Applied, StorageError> {
    let (pipeline, mut locks) = Locks::begin(conn)?.lock_pipeline(target)?;
    let pipeline_id = PipelineId(pipeline.id);
    let mut snapshot = Snapshot::read(locks.conn(), &pipeline)?;
    let mut plan = plan(snapshot.state(), event)?;
    if plan.is_noop() {
        return Ok(Applied::unchanged(pipeline_id, plan.pipeline_status()));
    }
    let (builds, mut locks) = locks.lock_builds(plan.changes().iter().map(|c| c.id))?;
    if snapshot.refresh(&builds)? {
        // Only acquire (pending -> running) and heartbeats (lease) change builds without the
        // pipeline lock; plan again on the locked rows. Needing a build we did not lock would
        // mean going back up the order, so that restarts the whole transaction instead.
        plan = lockstep_domain::plan(snapshot.state(), event)?;
        if !plan.changes().iter().all(|c| builds.holds(c.id)) {
            return Err(StorageError::PlanChanged);
        }
    }
    write::update_builds(locks.conn(), &builds, plan.changes(), now)?;
    let new_builds = insert_attempts(locks.conn(), &snapshot, &plan, now)?;
    let deployment_changes = snapshot.deployment_changes(&plan)?;
    let (deployments, mut locks) =
        locks.lock_deployments(deployment_changes.iter().map(|(id, _)| *id))?;
    write::update_deployments(locks.conn(), &deployments, &deployment_changes, now)?;
    let new_deployments: Vec<NewDeployment> = new_builds
        .iter()
        .filter_map(|(new, attempt_index)| {
            let attempt = &plan.new_attempts()[*attempt_index];
            let status = attempt.deployment?;
            let source = snapshot.deployment_of(attempt.copy_of)?;
            Some(NewDeployment {
                build: *new,
                environment_id: source.environment_id,
                status,
            })
        })
        .collect();
    write::insert_deployments(locks.conn(), &new_deployments, now)?;
    if plan.pipeline_changed() {
        write::update_pipeline(locks.conn(), &pipeline, plan.pipeline_status(), now)?;
    }
    Ok(Applied {
        pipeline_id,
        pipeline_status: plan.pipeline_status(),
        deployments_changed: deployment_changes.len() + new_deployments.len(),
        new_builds: new_builds
            .iter()
            .map(|(new, i)| (plan.new_attempts()[*i].copy_of, *new))
            .collect(),
        changes: plan.changes().to_vec(),
        pipeline_changed: plan.pipeline_changed(),
    })
}

/// Inserts the plan's new attempts; returns each new id with the index of its attempt.
fn insert_attempts(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<(lockstep_domain::BuildId, usize)>, StorageError> {
    let mut ids = Vec::with_capacity(plan.new_attempts().len());
    for (i, attempt) in plan.new_attempts().iter().enumerate() {
        if attempt.deployment.is_some() && snapshot.deployment_of(attempt.copy_of).is_none() {
            return Err(StorageError::corrupt(format!(
                "build {} has an environment but no deployment",
                attempt.copy_of
            )));
        }
        ids.push((write::insert_attempt(conn, attempt, now)?, i));
    }
    Ok(ids)
}
