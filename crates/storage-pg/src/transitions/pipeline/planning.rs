//! When the executor plans relative to its locks on groups and builds: before them on a first
//! attempt, after them on a retry whose first plan was overtaken.
//!
//! The pipeline locks keep every other transition of the batch's pipelines out, but acquire
//! (pending to running) and heartbeats (the lease, the acknowledgement) change builds without
//! them, and a group's holder grants waiting builds without them. A plan made from a plain read
//! can therefore be overtaken before its builds are locked, most often while the transition
//! waits for a busy group. When the overtaken plan would need a build or a grant it has not
//! locked, the attempt fails with [`StorageError::PlanChanged`] and the retry loop starts again.
//! Planning optimistically again can be overtaken again (under the storm, five attempts in a
//! row), so every later attempt locks first: the cost is a few more rows held, and only then.

use super::groups::{self, Allocation};
use super::{Batch, Creation};
use crate::StorageError;
use crate::locking::{AtBuilds, AtPipelines, LockedBuilds, LockedGroups, Locks};
use crate::transitions::allocate;
use chrono::{DateTime, Utc};
use lockstep_domain::{BuildId, ResourceGroupId, plan_all};
use std::collections::BTreeSet;

/// What the locking steps hand to the writes: the grants decided, the builds held, and the
/// cursor positioned at the builds.
type Locked<'c> = (Allocation, LockedBuilds, Locks<'c, AtBuilds>);

impl Batch {
    /// The first attempt ([`crate::retry::Planning::Optimistic`]): plan from the plain read,
    /// lock the groups the plans touch, decide the grants, lock exactly the builds the plans
    /// change and the grants move, and check them against what the plans were made from.
    pub(super) fn plan_then_lock<'c>(
        &mut self,
        locks: Locks<'c, AtPipelines>,
        creation: Option<&mut Creation<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Locked<'c>, StorageError> {
        self.plan();
        let touched = self.touched_groups();
        let ensure = creation.as_deref().map(|c| (c.project(), c.group_names()));
        let (groups, mut locks) = locks.lock_groups(ensure, touched.iter().copied())?;
        check_groups_exist(&touched, &groups)?;
        if let Some(creation) = creation {
            creation.insert_pipeline(locks.conn(), &groups, now)?;
        }
        let allocation = self.allocate(locks.conn(), &groups)?;
        let to_lock = self
            .changed_builds()
            .into_iter()
            .chain(allocation.unplanned());
        let (builds, locks) = locks.lock_builds(to_lock)?;
        self.refresh(&builds, &allocation)?;
        Ok((allocation, builds, locks))
    }

    /// Every attempt after an overtaken plan ([`crate::retry::Planning::LockFirst`]): lock
    /// first, then plan once from the locked rows.
    ///
    /// It locks every group of the batch's builds (with a creation's own), then every build of
    /// the batch's pipelines and every build waiting in those groups, in one ascending
    /// statement: a superset of what any plan of these pipelines changes (a plan changes only
    /// its pipeline's builds, of its pipeline's groups) and of what the groups can grant (only
    /// waiting builds, and new attempts, which are this transaction's own rows). Nothing a plan
    /// reads can then change before commit: the locked builds are held, the other pipelines'
    /// members of the groups change only under the groups' locks (but for acquire, which changes
    /// neither a group's holders nor its line), and everything else only under the pipelines'.
    /// So this attempt cannot be overtaken, and the lock order is the first attempt's: groups,
    /// then builds, each once.
    pub(super) fn lock_then_plan<'c>(
        &mut self,
        locks: Locks<'c, AtPipelines>,
        creation: Option<&mut Creation<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Locked<'c>, StorageError> {
        let ensure = creation.as_deref().map(|c| (c.project(), c.group_names()));
        let (groups, mut locks) = locks.lock_groups(ensure, self.all_groups())?;
        if let Some(creation) = creation {
            // Before the waiting builds are read, so that its own waiting builds are among them.
            creation.insert_pipeline(locks.conn(), &groups, now)?;
        }
        let waiting = allocate::waiting(locks.conn(), &groups)?;
        let (builds, mut locks) = locks.lock_builds(self.all_builds().chain(waiting))?;
        for member in &mut self.members {
            member.snapshot.refresh(&builds)?;
        }
        self.plan();
        check_groups_exist(&self.touched_groups(), &groups)?;
        let allocation = self.allocate(locks.conn(), &groups)?;
        let held = self
            .changed_builds()
            .into_iter()
            .chain(allocation.unplanned())
            .all(|build| builds.holds(build));
        if !held {
            // Not expected, by the argument above. Should it happen, retrying whole is still
            // safe, and the retry loop bounds it.
            return Err(StorageError::PlanChanged);
        }
        Ok((allocation, builds, locks))
    }

    /// Only acquire (pending -> running) and heartbeats (lease) change builds without the
    /// pipeline lock; a member whose locked rows differ from its plain read plans again. Needing
    /// a build we did not lock would mean going back up the order, so that restarts the whole
    /// transaction instead; so does a new plan for the builds of a group, whose grants were
    /// decided on the old one.
    fn refresh(
        &mut self,
        builds: &LockedBuilds,
        allocation: &Allocation,
    ) -> Result<(), StorageError> {
        for member in &mut self.members {
            if member.writes().is_none() || !member.snapshot.refresh(builds)? {
                continue;
            }
            let replanned = plan_all(member.snapshot.state(), &member.events);
            if let Ok((plan, _)) = &replanned {
                let unlocked = !plan.changes().iter().all(|c| builds.holds(c.id));
                let regrouped = member.plan().is_some_and(|old| {
                    groups::grouped_changes(member, old) != groups::grouped_changes(member, plan)
                });
                if unlocked || (allocation.decided() && regrouped) {
                    return Err(StorageError::PlanChanged);
                }
            }
            member.planned = Some(replanned);
        }
        Ok(())
    }

    /// Every group a build of the batch belongs to, in ascending id.
    fn all_groups(&self) -> BTreeSet<ResourceGroupId> {
        self.members
            .iter()
            .flat_map(|m| m.snapshot.groups())
            .collect()
    }

    /// Every build of the batch's pipelines, every attempt.
    fn all_builds(&self) -> impl Iterator<Item = BuildId> + '_ {
        self.members
            .iter()
            .flat_map(|m| m.snapshot.state().builds.iter().map(|b| b.id))
    }
}

fn check_groups_exist(
    touched: &[ResourceGroupId],
    groups: &LockedGroups,
) -> Result<(), StorageError> {
    if touched.iter().all(|g| groups.by_id(*g).is_some()) {
        Ok(())
    } else {
        Err(StorageError::corrupt(
            "a build names a resource group that does not exist",
        ))
    }
}
