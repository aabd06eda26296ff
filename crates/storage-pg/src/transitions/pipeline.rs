//! The one code path of every pipeline transition: lock the pipelines, read their builds, plan,
//! lock exactly the builds and deployments the plans change (in the canonical order), write.
//!
//! Several events, on one pipeline or several, can run as one transaction. Their locks are taken
//! together, one table at a time (all pipelines, then all builds, then all deployments), so the
//! batch as a whole keeps the canonical order; events of one pipeline are planned in sequence
//! (`plan_all`), each seeing what the ones before it did.

use super::snapshot::Snapshot;
use crate::locking::{Busy, LockedBuilds, LockedPipeline, Locks, PipelineOf};
use crate::write::{self, NewDeployment};
use crate::{Applied, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use lockstep_domain::{
    BuildChange, BuildId, DeploymentId, DeploymentStatus, PipelineEvent, PipelineId, Plan,
    TransitionError, plan_all,
};
use std::collections::HashMap;

/// One event and the pipeline it happens to.
pub(crate) type Request = (PipelineOf, PipelineEvent);

/// The answer to one request: what its pipeline's transition changed (shared by every request
/// of that pipeline in the batch), or why the request was refused.
pub(crate) type Answer = Result<Applied, StorageError>;

/// Runs `requests` inside the caller's transaction and answers each, in order. A refused
/// request changes nothing; the others still apply. An `Err` of the whole call (a database
/// error, or rows that changed under the plan) means the transaction must not commit.
///
/// With [`Busy::Skip`], requests whose pipeline another transaction holds are not answered
/// (`None`): the caller runs them again, waiting. Without it, every request is answered.
pub(crate) fn run_all(
    conn: &mut PgConnection,
    requests: &[Request],
    busy: Busy,
    now: DateTime<Utc>,
) -> Result<Vec<Option<Answer>>, StorageError> {
    let targets = requests.iter().map(|r| r.0);
    let (locked, mut locks) = Locks::begin(conn)?.lock_pipelines(targets, busy)?;
    let mut batch = Batch::read(locks.conn(), locked)?;
    let routes = batch.route(requests);
    batch.plan();
    let (builds, mut locks) = locks.lock_builds(batch.changed_builds())?;
    batch.refresh(&builds)?;
    write::update_builds(locks.conn(), &builds, &batch.changes(), now)?;
    let new_builds = batch.insert_attempts(locks.conn(), now)?;
    let deployment_changes = batch.deployment_changes()?;
    let (deployments, mut locks) =
        locks.lock_deployments(deployment_changes.iter().map(|(id, _)| *id))?;
    write::update_deployments(locks.conn(), &deployments, &deployment_changes, now)?;
    let new_deployments = batch.new_deployments(&new_builds);
    write::insert_deployments(locks.conn(), &new_deployments, now)?;
    write::update_pipelines(locks.conn(), &batch.pipeline_changes(), now)?;
    let answers = batch.answer(routes, &new_builds);
    Ok(answers
        .into_iter()
        .map(|answer| match answer {
            // Not locked: busy (or missing, which the waiting pass tells apart).
            Err(StorageError::NotFound { .. }) if busy == Busy::Skip => None,
            answer => Some(answer),
        })
        .collect())
}

/// One locked pipeline of the batch: its builds, its events and, once planned, its plan.
struct Member {
    locked: LockedPipeline,
    snapshot: Snapshot,
    /// Events in request order.
    events: Vec<PipelineEvent>,
    /// `None` until planned.
    planned: Option<Planned>,
}

/// A member's plan with each event's outcome, or why its snapshot was refused (then every
/// event gets that error).
type Planned = Result<(Plan, Vec<Result<(), TransitionError>>), TransitionError>;

impl Member {
    fn plan(&self) -> Option<&Plan> {
        match &self.planned {
            Some(Ok((plan, _))) => Some(plan),
            _ => None,
        }
    }

    /// The plan, when it writes anything.
    fn writes(&self) -> Option<&Plan> {
        self.plan().filter(|plan| !plan.is_noop())
    }
}

/// Where a request went: the member and the index of its event there, or why it went nowhere.
type Route = Result<(usize, usize), StorageError>;

struct Batch {
    /// In ascending pipeline id, the order they were locked in.
    members: Vec<Member>,
}

impl Batch {
    fn read(conn: &mut PgConnection, locked: Vec<LockedPipeline>) -> Result<Self, StorageError> {
        let snapshots = Snapshot::read_all(conn, &locked)?;
        let members = locked
            .into_iter()
            .zip(snapshots)
            .map(|(locked, snapshot)| Member {
                locked,
                snapshot,
                events: Vec::new(),
                planned: None,
            })
            .collect();
        Ok(Self { members })
    }

    /// Hands each request to its pipeline's member.
    fn route(&mut self, requests: &[Request]) -> Vec<Route> {
        let by_pipeline: HashMap<i64, usize> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.locked.id, i))
            .collect();
        let by_build: HashMap<BuildId, usize> = self
            .members
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.snapshot.state().builds.iter().map(move |b| (b.id, i)))
            .collect();
        requests
            .iter()
            .map(|(target, event)| {
                let member = match *target {
                    PipelineOf::Id(id) => by_pipeline.get(&id.0).ok_or(StorageError::NotFound {
                        entity: "pipeline",
                        id: id.0,
                    }),
                    PipelineOf::Build(build) => {
                        by_build.get(&build).ok_or(StorageError::NotFound {
                            entity: "build",
                            id: build.0,
                        })
                    }
                }?;
                let events = &mut self.members[*member].events;
                events.push(*event);
                Ok((*member, events.len() - 1))
            })
            .collect()
    }

    fn plan(&mut self) {
        for member in &mut self.members {
            member.planned = Some(plan_all(member.snapshot.state(), &member.events));
        }
    }

    fn changed_builds(&self) -> Vec<BuildId> {
        self.members
            .iter()
            .filter_map(Member::writes)
            .flat_map(|plan| plan.changes().iter().map(|c| c.id))
            .collect()
    }

    /// Only acquire (pending -> running) and heartbeats (lease) change builds without the
    /// pipeline lock; a member whose locked rows differ from its plain read plans again. Needing
    /// a build we did not lock would mean going back up the order, so that restarts the whole
    /// transaction instead.
    fn refresh(&mut self, builds: &LockedBuilds) -> Result<(), StorageError> {
        for member in &mut self.members {
            if member.writes().is_none() || !member.snapshot.refresh(builds)? {
                continue;
            }
            let replanned = plan_all(member.snapshot.state(), &member.events);
            if let Ok((plan, _)) = &replanned
                && !plan.changes().iter().all(|c| builds.holds(c.id))
            {
                return Err(StorageError::PlanChanged);
            }
            member.planned = Some(replanned);
        }
        Ok(())
    }

    fn changes(&self) -> Vec<BuildChange> {
        self.members
            .iter()
            .filter_map(Member::writes)
            .flat_map(|plan| plan.changes().iter().cloned())
            .collect()
    }

    /// Inserts the plans' new attempts; returns, per member, each new id with the index of its
    /// attempt.
    fn insert_attempts(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<(BuildId, usize)>>, StorageError> {
        self.members
            .iter()
            .map(|member| match member.writes() {
                Some(plan) => insert_attempts(conn, &member.snapshot, plan, now),
                None => Ok(Vec::new()),
            })
            .collect()
    }

    fn deployment_changes(&self) -> Result<Vec<(DeploymentId, DeploymentStatus)>, StorageError> {
        let mut all = Vec::new();
        for member in &self.members {
            if let Some(plan) = member.writes() {
                all.extend(member.snapshot.deployment_changes(plan)?);
            }
        }
        Ok(all)
    }

    fn new_deployments(&self, new_builds: &[Vec<(BuildId, usize)>]) -> Vec<NewDeployment> {
        let mut all = Vec::new();
        for (member, new) in self.members.iter().zip(new_builds) {
            let Some(plan) = member.writes() else {
                continue;
            };
            all.extend(new.iter().filter_map(|(build, attempt_index)| {
                let attempt = &plan.new_attempts()[*attempt_index];
                let status = attempt.deployment?;
                let source = member.snapshot.deployment_of(attempt.copy_of)?;
                Some(NewDeployment {
                    build: *build,
                    environment_id: source.environment_id,
                    status,
                })
            }));
        }
        all
    }

    fn pipeline_changes(&self) -> Vec<(&LockedPipeline, lockstep_domain::PipelineStatus)> {
        self.members
            .iter()
            .filter_map(|m| {
                let plan = m.writes()?;
                plan.pipeline_changed()
                    .then_some((&m.locked, plan.pipeline_status()))
            })
            .collect()
    }

    fn answer(&self, routes: Vec<Route>, new_builds: &[Vec<(BuildId, usize)>]) -> Vec<Answer> {
        let applied: Vec<Option<Applied>> = self
            .members
            .iter()
            .zip(new_builds)
            .map(|(member, new)| applied(member, new))
            .collect();
        routes
            .into_iter()
            .map(|route| {
                let (member, event) = route?;
                match &self.members[member].planned {
                    Some(Ok((_, outcomes))) => match &outcomes[event] {
                        Ok(()) => applied[member]
                            .clone()
                            .ok_or_else(|| StorageError::corrupt("an accepted event has no plan")),
                        Err(refused) => Err(refused.clone().into()),
                    },
                    Some(Err(refused)) => Err(refused.clone().into()),
                    None => Err(StorageError::corrupt("a routed event was never planned")),
                }
            })
            .collect()
    }
}

fn applied(member: &Member, new: &[(BuildId, usize)]) -> Option<Applied> {
    let plan = member.plan()?;
    let pipeline_id = PipelineId(member.locked.id);
    if plan.is_noop() {
        return Some(Applied::unchanged(pipeline_id, plan.pipeline_status()));
    }
    let deployments_changed = plan
        .changes()
        .iter()
        .filter(|c| c.deployment.is_some())
        .count()
        + new
            .iter()
            .filter(|(_, i)| plan.new_attempts()[*i].deployment.is_some())
            .count();
    Some(Applied {
        pipeline_id,
        pipeline_status: plan.pipeline_status(),
        deployments_changed,
        new_builds: new
            .iter()
            .map(|(build, i)| (plan.new_attempts()[*i].copy_of, *build))
            .collect(),
        changes: plan.changes().to_vec(),
        pipeline_changed: plan.pipeline_changed(),
    })
}

/// Inserts a plan's new attempts; returns each new id with the index of its attempt.
fn insert_attempts(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<Vec<(BuildId, usize)>, StorageError> {
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
