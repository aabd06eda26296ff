//! A pipeline's build rows as the domain sees them, read after the pipeline row is locked.

use crate::StorageError;
use crate::locking::{LockedBuilds, LockedPipeline};
use crate::prepared::{Prepared, Statement};
use crate::rows::{count, parse, parse_failure_reason, parse_when};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use lockstep_domain::{
    AllowFailure, BuildId, BuildState, DeploymentId, DeploymentStatus, PipelineState, Plan,
    ResourceGroupId, RetryPolicy, RetryWhen, RunnerId,
};
use std::collections::HashMap;

/// A build's deployment: its id and environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeploymentRef {
    pub(crate) id: DeploymentId,
    pub(crate) environment_id: i64,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    state: PipelineState,
    deployments: HashMap<BuildId, DeploymentRef>,
    /// The resource group of each build that has one.
    groups: HashMap<BuildId, ResourceGroupId>,
}

/// A build row with what planning and invariant checks need of its deployment.
#[derive(Debug)]
pub(crate) struct StoredBuild {
    pub(crate) pipeline_id: i64,
    pub(crate) state: BuildState,
    #[cfg_attr(
        not(feature = "testing"),
        expect(dead_code, reason = "only the invariant checks read it")
    )]
    pub(crate) environment: Option<String>,
    pub(crate) deployment: Option<DeploymentRef>,
    #[cfg_attr(
        not(feature = "testing"),
        expect(dead_code, reason = "only the invariant checks read it")
    )]
    pub(crate) deployment_status: Option<DeploymentStatus>,
}

/// Loads the build rows of some pipelines in id order (`load_builds.sql`).
pub(crate) fn load_builds(
    conn: &mut PgConnection,
    pipelines: &[i64],
) -> Result<Vec<StoredBuild>, StorageError> {
    Prepared::<LoadBuilds>::new()
        .bind::<Array<BigInt>, _>(pipelines)
        .load::<LoadedRow>(conn)?
        .into_iter()
        .map(stored_build)
        .collect()
}

struct LoadBuilds;

impl Statement for LoadBuilds {
    const SQL: &'static str = include_str!("snapshot/load_builds.sql");
}

/// A row of `load_builds.sql`.
#[derive(QueryableByName)]
struct LoadedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    stage_idx: i32,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    needs: Option<Vec<String>>,
    #[diesel(sql_type = Text)]
    run_when: String,
    #[diesel(sql_type = Bool)]
    allow_failure: bool,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Integer)]
    retry_limit: i32,
    #[diesel(sql_type = Array<Text>)]
    retry_when: Vec<String>,
    #[diesel(sql_type = Array<Integer>)]
    retry_exit_codes: Vec<i32>,
    #[diesel(sql_type = Nullable<Array<Integer>>)]
    allow_failure_exit_codes: Option<Vec<i32>>,
    #[diesel(sql_type = Nullable<Integer>)]
    exit_code: Option<i32>,
    #[diesel(sql_type = Nullable<BigInt>)]
    runner_id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    lease_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    failure_reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    environment: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    resource_group_id: Option<i64>,
    #[diesel(sql_type = Bool)]
    interruptible: bool,
    #[diesel(sql_type = Bool)]
    acknowledged: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    canceling_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    deployment_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    deployment_environment_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    deployment_status: Option<String>,
}

impl Snapshot {
    /// Reads every build (all attempts) of each pipeline, with its deployment, in one query; one
    /// snapshot per pipeline, in the order given. A plain read: the pipeline locks keep every
    /// other transition of these pipelines out, and the builds a transition changes are locked
    /// (and re-checked) before they are written.
    pub(crate) fn read_all(
        conn: &mut PgConnection,
        pipelines: &[LockedPipeline],
    ) -> Result<Vec<Self>, StorageError> {
        if pipelines.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = pipelines.iter().map(|p| p.id).collect();
        let mut snapshots = pipelines
            .iter()
            .map(|pipeline| {
                Ok(Self {
                    state: PipelineState {
                        status: parse("pipelines.status", &pipeline.status)?,
                        builds: Vec::new(),
                    },
                    deployments: HashMap::new(),
                    groups: HashMap::new(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for row in load_builds(conn, &ids)? {
            let snapshot = index
                .get(&row.pipeline_id)
                .map(|i| &mut snapshots[*i])
                .ok_or_else(|| StorageError::corrupt("a build of a pipeline not asked for"))?;
            if let Some(deployment) = row.deployment {
                snapshot.deployments.insert(row.state.id, deployment);
            }
            if let Some(group) = row.state.resource_group {
                snapshot.groups.insert(row.state.id, group);
            }
            snapshot.state.builds.push(row.state);
        }
        Ok(snapshots)
    }

    pub(crate) fn state(&self) -> &PipelineState {
        &self.state
    }

    /// Replaces what the plain read saw of the locked builds with their fresh, locked state
    /// (`locked` may hold builds of other pipelines too).
    /// Returns whether anything differed (then the caller plans again).
    pub(crate) fn refresh(&mut self, locked: &LockedBuilds) -> Result<bool, StorageError> {
        let mut changed = false;
        for build in &mut self.state.builds {
            let Some(fresh) = locked.get(build.id) else {
                continue;
            };
            let status = parse("ci_builds.status", &fresh.status)?;
            let runner = fresh.runner_id.map(RunnerId);
            let acknowledged = fresh.acknowledged_at.is_some();
            // A heartbeat or a claim, which lock no pipeline, may have come in between.
            if build.status != status
                || build.runner_id != runner
                || build.lease_expires_at != fresh.lease_expires_at
                || build.acknowledged != acknowledged
            {
                build.status = status;
                build.runner_id = runner;
                build.lease_expires_at = fresh.lease_expires_at;
                build.acknowledged = acknowledged;
                changed = true;
            }
        }
        Ok(changed)
    }

    pub(crate) fn deployment_of(&self, build: BuildId) -> Option<DeploymentRef> {
        self.deployments.get(&build).copied()
    }

    pub(crate) fn group_of(&self, build: BuildId) -> Option<ResourceGroupId> {
        self.groups.get(&build).copied()
    }

    /// The groups its builds belong to, with repeats.
    pub(crate) fn groups(&self) -> impl Iterator<Item = ResourceGroupId> + '_ {
        self.groups.values().copied()
    }

    /// Whether any build of the snapshot belongs to a resource group.
    pub(crate) fn has_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    pub(crate) fn has_build(&self, build: BuildId) -> bool {
        self.state.builds.iter().any(|b| b.id == build)
    }

    /// The deployment status changes a plan implies for existing deployments.
    pub(crate) fn deployment_changes(
        &self,
        plan: &Plan,
    ) -> Result<Vec<(DeploymentId, DeploymentStatus)>, StorageError> {
        plan.changes()
            .iter()
            .filter_map(|change| change.deployment.map(|status| (change.id, status)))
            .map(|(build, status)| {
                let deployment = self.deployment_of(build).ok_or_else(|| {
                    StorageError::corrupt(format!(
                        "build {build} has an environment but no deployment"
                    ))
                })?;
                Ok((deployment.id, status))
            })
            .collect()
    }
}

fn stored_build(row: LoadedRow) -> Result<StoredBuild, StorageError> {
    let deployment = match (row.deployment_id, row.deployment_environment_id) {
        (Some(id), Some(environment_id)) => Some(DeploymentRef {
            id: DeploymentId(id),
            environment_id,
        }),
        _ => None,
    };
    let deployment_status = match (&deployment, &row.deployment_status) {
        (Some(_), Some(status)) => Some(parse("deployments.status", status)?),
        _ => None,
    };
    let state = BuildState {
        id: BuildId(row.id),
        name: row.name,
        stage_idx: count("ci_builds.stage_idx", row.stage_idx)?,
        needs: row.needs,
        when: parse_when(&row.run_when)?,
        allow_failure: allow_failure(row.allow_failure, row.allow_failure_exit_codes),
        status: parse("ci_builds.status", &row.status)?,
        attempt: count("ci_builds.attempt", row.attempt)?,
        retry: retry_policy(row.retry_limit, &row.retry_when, row.retry_exit_codes)?,
        exit_code: row.exit_code,
        runner_id: row.runner_id.map(RunnerId),
        lease_expires_at: row.lease_expires_at,
        acknowledged: row.acknowledged,
        canceling_since: row.canceling_since,
        failure_reason: row
            .failure_reason
            .as_deref()
            .map(parse_failure_reason)
            .transpose()?,
        has_deployment: deployment.is_some(),
        resource_group: row.resource_group_id.map(ResourceGroupId),
        interruptible: row.interruptible,
    };
    Ok(StoredBuild {
        pipeline_id: row.pipeline_id,
        state,
        environment: row.environment,
        deployment,
        deployment_status,
    })
}

/// A build's `allow_failure` from its two columns.
pub(crate) fn allow_failure(allowed: bool, exit_codes: Option<Vec<i32>>) -> AllowFailure {
    match (allowed, exit_codes) {
        (false, _) => AllowFailure::No,
        (true, None) => AllowFailure::Yes,
        (true, Some(codes)) => AllowFailure::exit_codes(codes),
    }
}

/// A build's `retry` rule from its three columns.
pub(crate) fn retry_policy(
    max: i32,
    when: &[String],
    exit_codes: Vec<i32>,
) -> Result<RetryPolicy, StorageError> {
    let when = when
        .iter()
        .map(|name| {
            RetryWhen::parse(name)
                .ok_or_else(|| StorageError::corrupt(format!("unknown retry_when `{name}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RetryPolicy::new(
        count("ci_builds.retry_limit", max)?,
        when,
        exit_codes,
    ))
}
