//! The executor's part in resource groups: which groups a batch's plans touch, ids for the new
//! attempts (drawn before any build is locked, so that a new attempt can stand in line), and
//! the slots the locked groups grant, folded into what the batch writes.

use super::{Batch, Member};
use crate::StorageError;
use crate::locking::LockedGroups;
use crate::transitions::allocate::{self, GroupMembers};
use crate::write;
use diesel::pg::PgConnection;
use lockstep_domain::{
    BuildChange, BuildId, BuildStatus, Member as Slot, PipelineId, Plan, ResourceGroupId,
};
use std::collections::BTreeSet;

/// What the locked groups decided for a batch.
#[derive(Debug, Default)]
pub(super) struct Allocation {
    /// Whether any group was locked, so that the grants below are decisions, not defaults.
    decided: bool,
    /// Every build granted a slot: existing rows and the ids drawn for new attempts.
    granted: BTreeSet<BuildId>,
    /// Granted existing builds that no plan changes, in ascending id: they are locked with the
    /// plans' builds and written as grants.
    unplanned: Vec<BuildId>,
    /// Per member, the id drawn for each new attempt of its plan and whether it was granted.
    attempts: Vec<Vec<(BuildId, bool)>>,
}

impl Allocation {
    pub(super) fn decided(&self) -> bool {
        self.decided
    }

    pub(super) fn unplanned(&self) -> impl Iterator<Item = BuildId> + '_ {
        self.unplanned.iter().copied()
    }

    pub(super) fn unplanned_slice(&self) -> &[BuildId] {
        &self.unplanned
    }

    pub(super) fn attempts_of(&self, member: usize) -> &[(BuildId, bool)] {
        self.attempts.get(member).map_or(&[], Vec::as_slice)
    }

    /// A plan's change with its grant folded in: a build the plan leaves waiting that its group
    /// gives a slot to becomes pending instead.
    pub(super) fn fold_in(&self, change: &BuildChange) -> BuildChange {
        let mut change = change.clone();
        if change.to == BuildStatus::WaitingForResource && self.granted.contains(&change.id) {
            change.to = BuildStatus::Pending;
        }
        change
    }

    /// The granted builds that belong to no pipeline of the batch that writes.
    pub(super) fn granted_elsewhere<'a>(
        &'a self,
        batch: &'a Batch,
    ) -> impl Iterator<Item = BuildId> + 'a {
        self.unplanned().filter(move |build| {
            !batch
                .members
                .iter()
                .any(|m| m.writes().is_some() && m.snapshot.has_build(*build))
        })
    }
}

/// Whether a build in `status` is a member of its group: holds a slot or stands in line.
fn is_member(status: BuildStatus) -> bool {
    status.holds_slot()
        || matches!(
            status,
            BuildStatus::Created | BuildStatus::WaitingForResource
        )
}

/// What a plan does to builds of groups, to tell whether a new plan would decide otherwise.
pub(super) fn grouped_changes(member: &Member, plan: &Plan) -> Vec<(BuildId, BuildStatus)> {
    let mut changes: Vec<(BuildId, BuildStatus)> = plan
        .changes()
        .iter()
        .filter(|c| member.snapshot.group_of(c.id).is_some())
        .map(|c| (c.id, c.to))
        .collect();
    changes.extend(
        plan.new_attempts()
            .iter()
            .filter(|a| member.snapshot.group_of(a.copy_of).is_some())
            .map(|a| (a.copy_of, a.status)),
    );
    changes
}

impl Batch {
    /// The groups of every build the plans change or copy, in ascending id.
    pub(super) fn touched_groups(&self) -> Vec<ResourceGroupId> {
        let mut groups: Vec<ResourceGroupId> = Vec::new();
        for member in &self.members {
            let Some(plan) = member.writes().filter(|_| member.snapshot.has_groups()) else {
                continue;
            };
            let changed = plan.changes().iter().map(|c| c.id);
            let copied = plan.new_attempts().iter().map(|a| a.copy_of);
            groups.extend(
                changed
                    .chain(copied)
                    .filter_map(|b| member.snapshot.group_of(b)),
            );
        }
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// Draws the new attempts' ids and, when groups are locked, decides their grants: the
    /// groups' members as committed, with every plan of the batch applied.
    pub(super) fn allocate(
        &self,
        conn: &mut PgConnection,
        groups: &LockedGroups,
    ) -> Result<Allocation, StorageError> {
        let counts: Vec<usize> = self
            .members
            .iter()
            .map(|m| m.writes().map_or(0, |plan| plan.new_attempts().len()))
            .collect();
        let mut drawn = write::draw_build_ids(conn, counts.iter().sum())?.into_iter();
        let ids: Vec<Vec<BuildId>> = counts
            .iter()
            .map(|&n| drawn.by_ref().take(n).collect())
            .collect();
        if groups.is_empty() {
            let attempts = ids
                .into_iter()
                .map(|ids| ids.into_iter().map(|id| (id, false)).collect())
                .collect();
            return Ok(Allocation {
                attempts,
                ..Allocation::default()
            });
        }
        let mut members = allocate::members(conn, groups)?;
        for (member, ids) in self.members.iter().zip(&ids) {
            if let Some(plan) = member.writes() {
                overlay(&mut members, member, plan, ids);
            }
        }
        let granted: BTreeSet<BuildId> = allocate::granted(groups, &members).into_iter().collect();
        let drawn: BTreeSet<BuildId> = ids.iter().flatten().copied().collect();
        let planned: BTreeSet<BuildId> = self.changed_builds().into_iter().collect();
        let unplanned = granted
            .iter()
            .copied()
            .filter(|b| !drawn.contains(b) && !planned.contains(b))
            .collect();
        let attempts = ids
            .into_iter()
            .map(|ids| {
                ids.into_iter()
                    .map(|id| (id, granted.contains(&id)))
                    .collect()
            })
            .collect();
        Ok(Allocation {
            decided: true,
            granted,
            unplanned,
            attempts,
        })
    }
}

/// Applies one plan to the groups' members: its changed builds take their new status (or
/// leave), its new attempts join under their drawn ids.
fn overlay(members: &mut GroupMembers, member: &Member, plan: &Plan, attempt_ids: &[BuildId]) {
    let pipeline = PipelineId(member.locked.id);
    let mut put = |group: ResourceGroupId, build: BuildId, status: BuildStatus| {
        let Some(list) = members.get_mut(&group) else {
            return;
        };
        list.retain(|m| m.build != build);
        if is_member(status) {
            list.push(Slot {
                build,
                pipeline,
                status,
                // Not written yet: it joins the line behind everyone already in it.
                queued_at: None,
            });
        }
    };
    for change in plan.changes() {
        if let Some(group) = member.snapshot.group_of(change.id) {
            put(group, change.id, change.to);
        }
    }
    for (attempt, id) in plan.new_attempts().iter().zip(attempt_ids) {
        if let Some(group) = member.snapshot.group_of(attempt.copy_of) {
            put(group, *id, attempt.status);
        }
    }
}
