//! The one code path of every pipeline transition: lock the pipelines, read their builds, plan,
//! lock exactly the builds and deployments the plans change (in the canonical order), write.
//!
//! Several events, on one pipeline or several, can run as one transaction. Their locks are taken
//! together, one table at a time (all pipelines, then all builds, then all deployments), so the
//! batch as a whole keeps the canonical order; events of one pipeline are planned in sequence
//! (`plan_all`), each seeing what the ones before it did.
//!
//! When the plans change builds of resource groups, the groups are locked between the pipelines
//! and the builds, and the slots they can give are granted in the same transaction
//! (`pipeline/groups.rs`): a freed slot goes to the next build in line, in whichever pipeline.
//!
//! A first attempt plans before it locks the builds; a retry after its plan was overtaken locks
//! first and then plans (`pipeline/planning.rs`).

mod groups;
mod planning;

use super::allocate;
use super::create::Creation;
use super::snapshot::Snapshot;
use crate::locking::{AtPipelines, Before, Busy, LockedPipeline, Locks, PipelineOf};
use crate::retry::Planning;
use crate::write::{self, NewDeployment};
use crate::{Applied, StorageError};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use groups::Allocation;
use lockstep_domain::{
    BuildChange, BuildId, DeploymentId, DeploymentStatus, PipelineEvent, PipelineId, Plan,
    TransitionError, plan_all,
};
use std::collections::HashMap;

/// One event and the pipeline it happens to.
pub(crate) type Request = (PipelineOf, PipelineEvent);

/// The answer to one request of a batch.
#[derive(Debug)]
pub(crate) enum Answer {
    /// What its pipeline's transition changed, shared by every request of that pipeline.
    Applied(Applied),
    /// Refused, so it changed nothing: no such build or pipeline, or the domain said no.
    Refused(StorageError),
    /// Another transaction holds its pipeline, and the batch ran with [`Busy::Skip`]: nothing
    /// was decided, so run it again, waiting. (Under SKIP LOCKED a pipeline that does not exist
    /// looks the same; the waiting run tells them apart.)
    Busy,
}

/// Runs `requests` inside the caller's transaction and answers each, in order. A refused
/// request changes nothing; the others still apply. An `Err` of the whole call (a database
/// error, or rows that changed under the plan) means the transaction must not commit.
///
/// With [`Busy::Wait`], no answer is [`Answer::Busy`].
pub(crate) fn run_all(
    conn: &mut PgConnection,
    requests: &[Request],
    busy: Busy,
    planning: Planning,
    now: DateTime<Utc>,
) -> Result<Vec<Answer>, StorageError> {
    execute(Locks::begin(conn)?, requests, busy, None, planning, now)
}

/// [`run_all`] from a cursor that may already hold a ref (rank 0), with a pipeline to create in
/// the same transaction: its rows go in at their place in the order (see `create.rs`), and the
/// pipelines whose plans write are marked as superseded by it.
pub(crate) fn execute<S: Before<AtPipelines>>(
    locks: Locks<'_, S>,
    requests: &[Request],
    busy: Busy,
    mut creation: Option<&mut Creation<'_>>,
    planning: Planning,
    now: DateTime<Utc>,
) -> Result<Vec<Answer>, StorageError> {
    let targets = requests.iter().map(|r| r.0);
    let (locked, mut locks) = locks.lock_pipelines(targets, busy)?;
    let mut batch = Batch::read(locks.conn(), locked)?;
    let routes = batch.route(requests);
    // Both ways take the groups, then the builds, each once and in ascending id; they differ in
    // which builds, and in whether the plan comes before those locks or after them.
    let (allocation, builds, mut locks) = match planning {
        Planning::Optimistic => batch.plan_then_lock(locks, creation.as_deref_mut(), now)?,
        Planning::LockFirst => batch.lock_then_plan(locks, creation.as_deref_mut(), now)?,
    };
    allocate::check_still_waiting(&builds, allocation.unplanned_slice())?;
    write::update_builds(locks.conn(), &builds, &batch.changes(&allocation), now)?;
    let new_builds = batch.insert_attempts(locks.conn(), &allocation, now)?;
    let names = creation
        .as_ref()
        .map(|c| c.environment_names())
        .unwrap_or_default();
    let project = creation.as_ref().map(|c| c.project());
    let (environments, mut locks) = locks.ensure_environments(project, &names)?;
    if let Some(creation) = creation.as_deref_mut() {
        creation.insert_deployments(locks.conn(), &environments, now)?;
    }
    let deployment_changes = batch.deployment_changes()?;
    let (deployments, mut locks) =
        locks.lock_deployments(deployment_changes.iter().map(|(id, _)| *id))?;
    write::update_deployments(locks.conn(), &deployments, &deployment_changes, now)?;
    let new_deployments = batch.new_deployments(&new_builds);
    write::insert_deployments(locks.conn(), &new_deployments, now)?;
    write::update_pipelines(locks.conn(), &batch.pipeline_changes(), now)?;
    if let Some(by) = creation.and_then(|c| c.id()) {
        write::mark_superseded(locks.conn(), &batch.writing_pipelines(), by)?;
    }
    Ok(batch.answer(requests, routes, busy, &new_builds, &allocation))
}

/// Runs one request, waiting for its pipeline, inside the caller's transaction. A refusal is an
/// `Err`, so that the transaction writes nothing.
pub(crate) fn run_one(
    conn: &mut PgConnection,
    request: Request,
    planning: Planning,
    now: DateTime<Utc>,
) -> Result<Applied, StorageError> {
    match run_all(conn, &[request], Busy::Wait, planning, now)?.pop() {
        Some(Answer::Applied(applied)) => Ok(applied),
        Some(Answer::Refused(refused)) => Err(refused),
        Some(Answer::Busy) | None => Err(StorageError::corrupt(
            "a transition that waited for its pipeline went unanswered",
        )),
    }
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
    /// The answer to its event at `event`, given what its transition changed.
    fn answer(&self, event: usize, applied: Option<&Applied>) -> Answer {
        let outcome = match &self.planned {
            Some(Ok((_, outcomes))) => outcomes[event].clone(),
            Some(Err(refused)) => Err(refused.clone()),
            None => return Answer::Refused(StorageError::corrupt("an event was never planned")),
        };
        match (outcome, applied) {
            (Ok(()), Some(applied)) => Answer::Applied(applied.clone()),
            (Ok(()), None) => {
                Answer::Refused(StorageError::corrupt("an accepted event has no plan"))
            }
            (Err(refused), _) => Answer::Refused(refused.into()),
        }
    }

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

/// Where a request went: the member and the index of its event there, or `None` when its
/// pipeline is not among the locked ones (busy, or missing).
type Route = Option<(usize, usize)>;

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
                    PipelineOf::Id(id) => by_pipeline.get(&id.0),
                    PipelineOf::Build(build) => by_build.get(&build),
                }?;
                let events = &mut self.members[*member].events;
                events.push(*event);
                Some((*member, events.len() - 1))
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

    /// Every build change to write: the plans' (with the grants folded in) and the grants of
    /// builds no plan changed.
    fn changes(&self, allocation: &Allocation) -> Vec<BuildChange> {
        let mut all: Vec<BuildChange> = (0..self.members.len())
            .flat_map(|i| self.member_changes(i, allocation))
            .collect();
        all.extend(
            allocation
                .granted_elsewhere(self)
                .map(allocate::grant_change),
        );
        all
    }

    /// What the transition writes to member `i`'s builds, in ascending id.
    fn member_changes(&self, i: usize, allocation: &Allocation) -> Vec<BuildChange> {
        let member = &self.members[i];
        let Some(plan) = member.writes() else {
            return Vec::new();
        };
        let mut changes: Vec<BuildChange> = plan
            .changes()
            .iter()
            .map(|change| allocation.fold_in(change))
            .collect();
        changes.extend(
            allocation
                .unplanned()
                .filter(|b| member.snapshot.has_build(*b))
                .map(allocate::grant_change),
        );
        changes.sort_by_key(|c| c.id);
        changes
    }

    /// Inserts the plans' new attempts; returns, per member, each new id with the index of its
    /// attempt.
    fn insert_attempts(
        &self,
        conn: &mut PgConnection,
        allocation: &Allocation,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<(BuildId, usize)>>, StorageError> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, member)| match member.writes() {
                Some(plan) => insert_attempts(conn, member, plan, allocation.attempts_of(i), now),
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

    /// The pipelines whose plans write anything.
    fn writing_pipelines(&self) -> Vec<&LockedPipeline> {
        self.members
            .iter()
            .filter(|m| m.writes().is_some())
            .map(|m| &m.locked)
            .collect()
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

    fn answer(
        &self,
        requests: &[Request],
        routes: Vec<Route>,
        busy: Busy,
        new_builds: &[Vec<(BuildId, usize)>],
        allocation: &Allocation,
    ) -> Vec<Answer> {
        let applied: Vec<Option<Applied>> = (0..self.members.len())
            .map(|i| {
                applied(
                    &self.members[i],
                    &new_builds[i],
                    self.member_changes(i, allocation),
                )
            })
            .collect();
        requests
            .iter()
            .zip(routes)
            .map(|(&(target, _), route)| match (route, busy) {
                (Some((member, event)), _) => {
                    self.members[member].answer(event, applied[member].as_ref())
                }
                (None, Busy::Skip) => Answer::Busy,
                (None, Busy::Wait) => Answer::Refused(not_found(target)),
            })
            .collect()
    }
}

/// A request whose pipeline was not there to lock, even waiting.
fn not_found(target: PipelineOf) -> StorageError {
    match target {
        PipelineOf::Id(id) => StorageError::NotFound {
            entity: "pipeline",
            id: id.0,
        },
        PipelineOf::Build(build) => StorageError::NotFound {
            entity: "build",
            id: build.0,
        },
    }
}

fn applied(
    member: &Member,
    new: &[(BuildId, usize)],
    changes: Vec<BuildChange>,
) -> Option<Applied> {
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
        changes,
        pipeline_changed: plan.pipeline_changed(),
    })
}

/// Inserts a plan's new attempts under the ids drawn for them (`attempts`: each id, and whether
/// its group granted it a slot); returns each new id with the index of its attempt.
fn insert_attempts(
    conn: &mut PgConnection,
    member: &Member,
    plan: &Plan,
    attempts: &[(BuildId, bool)],
    now: DateTime<Utc>,
) -> Result<Vec<(BuildId, usize)>, StorageError> {
    if attempts.len() != plan.new_attempts().len() {
        // Ids were drawn for another plan; the grants may not fit this one.
        return Err(StorageError::PlanChanged);
    }
    let mut ids = Vec::with_capacity(attempts.len());
    for (i, (attempt, &(id, granted))) in plan.new_attempts().iter().zip(attempts).enumerate() {
        if attempt.deployment.is_some() && member.snapshot.deployment_of(attempt.copy_of).is_none()
        {
            return Err(StorageError::corrupt(format!(
                "build {} has an environment but no deployment",
                attempt.copy_of
            )));
        }
        let mut attempt = attempt.clone();
        if granted {
            attempt.status = lockstep_domain::BuildStatus::Pending;
        }
        write::insert_attempt(conn, &attempt, id, now)?;
        ids.push((id, i));
    }
    Ok(ids)
}
