//! Granting resource group slots. Under the groups' locks, read who holds a slot and who stands
//! in line, let the domain decide who gets one ([`lockstep_domain::grants`]), and move those
//! builds from waiting to pending in the same transaction: a freed slot never waits for anyone
//! to notice it.
//!
//! A grant may move a build of another pipeline, whose pipeline this transaction has not
//! locked. That is safe for the same reason acquire is: waiting and pending both read as
//! pending to the pipeline's status, so the pipeline row does not change, and the build row
//! itself is locked in the canonical order (groups, then builds) before it is written.

use crate::locking::{AtBuilds, Before, LockedBuilds, LockedGroups, Locks};
use crate::prepared::{Prepared, Statement};
use crate::resource_groups::{ResourceGroupView, views};
use crate::rows::parse;
use crate::write;
use crate::{StorageError, write as writes};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use lockstep_domain::{
    BuildChange, BuildId, BuildStatus, Member, PipelineId, ProcessMode, ProjectId, ResourceGroupId,
    grants,
};
use std::collections::BTreeMap;

const MEMBERS_SQL: &str = include_str!("allocate/members.sql");

struct Members;

impl Statement for Members {
    const SQL: &'static str = MEMBERS_SQL;
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
    #[diesel(sql_type = BigInt)]
    resource_group_id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    queued_at: Option<DateTime<Utc>>,
}

/// The members of each locked group: the builds that hold a slot or stand in line.
pub(crate) type GroupMembers = BTreeMap<ResourceGroupId, Vec<Member>>;

/// Reads the members of the locked groups, as committed (plus this transaction's own writes).
pub(crate) fn members(
    conn: &mut PgConnection,
    groups: &LockedGroups,
) -> Result<GroupMembers, StorageError> {
    let ids: Vec<i64> = groups.iter().map(|g| g.id.0).collect();
    let mut members: GroupMembers = groups.iter().map(|g| (g.id, Vec::new())).collect();
    if ids.is_empty() {
        return Ok(members);
    }
    let rows = Prepared::<Members>::new()
        .bind::<Array<BigInt>, _>(ids)
        .load::<MemberRow>(conn)?;
    for row in rows {
        let member = Member {
            build: BuildId(row.id),
            pipeline: PipelineId(row.pipeline_id),
            status: parse("ci_builds.status", &row.status)?,
            queued_at: row.queued_at,
        };
        members
            .entry(ResourceGroupId(row.resource_group_id))
            .or_default()
            .push(member);
    }
    Ok(members)
}

/// The builds waiting in the locked groups: every build a grant could move (but new attempts,
/// which the granting transaction inserts itself).
pub(crate) fn waiting(
    conn: &mut PgConnection,
    groups: &LockedGroups,
) -> Result<Vec<BuildId>, StorageError> {
    Ok(members(conn, groups)?
        .into_values()
        .flatten()
        .filter(|m| m.status == BuildStatus::WaitingForResource)
        .map(|m| m.build)
        .collect())
}

/// The waiting builds the locked groups grant a slot to, given their members, in ascending id.
pub(crate) fn granted(groups: &LockedGroups, members: &GroupMembers) -> Vec<BuildId> {
    let mut granted: Vec<BuildId> = groups
        .iter()
        .flat_map(|group| {
            let members = members.get(&group.id).map_or(&[][..], Vec::as_slice);
            grants(group.limit, group.mode, members)
        })
        .collect();
    granted.sort_unstable();
    granted
}

/// The change a grant writes.
pub(crate) fn grant_change(build: BuildId) -> BuildChange {
    BuildChange {
        id: build,
        from: BuildStatus::WaitingForResource,
        to: BuildStatus::Pending,
        failure_reason: None,
        exit_code: None,
        // Waiting and pending both mirror as `created`.
        deployment: None,
    }
}

/// Checks that every build a grant is about to write is still waiting now that it is locked.
/// It must be: only transitions holding its group change it, and this one holds the group.
pub(crate) fn check_still_waiting(
    held: &LockedBuilds,
    granted: &[BuildId],
) -> Result<(), StorageError> {
    for build in granted {
        let status = held
            .get(*build)
            .map(|row| parse::<BuildStatus>("ci_builds.status", &row.status))
            .transpose()?;
        if status != Some(BuildStatus::WaitingForResource) {
            return Err(StorageError::PlanChanged);
        }
    }
    Ok(())
}

/// Grants every slot the locked groups can give now and writes the grants: for transitions that
/// change a group without planning a pipeline (creating one, configuring a group).
pub(crate) fn grant_free_slots<'c, S: Before<AtBuilds>>(
    locks: Locks<'c, S>,
    groups: &LockedGroups,
    now: DateTime<Utc>,
) -> Result<(Vec<BuildId>, Locks<'c, AtBuilds>), StorageError> {
    let mut locks = locks;
    let members = members(locks.conn(), groups)?;
    let granted = granted(groups, &members);
    let (held, mut locks) = locks.lock_builds(granted.iter().copied())?;
    check_still_waiting(&held, &granted)?;
    let changes: Vec<BuildChange> = granted.iter().copied().map(grant_change).collect();
    write::update_builds(locks.conn(), &held, &changes, now)?;
    Ok((granted, locks))
}

/// What to change of a group; `None` keeps the current value (the default, for a new group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupSettings {
    pub process_mode: Option<ProcessMode>,
    /// Slots, 1 to [`lockstep_domain::limits::MAX_GROUP_LIMIT`].
    pub limit: Option<u32>,
}

/// Sets a project's group up, creating it when absent, and grants the slots a new limit or
/// mode frees at once.
pub(crate) fn configure(
    conn: &mut PgConnection,
    project: ProjectId,
    name: &str,
    settings: GroupSettings,
    now: DateTime<Utc>,
) -> Result<ResourceGroupView, StorageError> {
    let (groups, mut locks) = Locks::begin(conn)?.ensure_groups(project, &[name])?;
    let group = groups
        .by_name(name)
        .cloned()
        .ok_or_else(|| StorageError::corrupt("a resource group vanished while it was ensured"))?;
    let mode = settings.process_mode.unwrap_or(group.mode);
    let limit = settings.limit.unwrap_or(group.limit);
    writes::configure_group(locks.conn(), &groups, group.id, mode, limit)?;
    let groups = groups.configured(group.id, mode, limit);
    let (_, mut locks) = grant_free_slots(locks, &groups, now)?;
    views(locks.conn(), &groups)?
        .pop()
        .ok_or_else(|| StorageError::corrupt("a configured resource group has no view"))
}

#[cfg(test)]
mod tests {
    use super::MEMBERS_SQL;
    use lockstep_domain::BuildStatus;

    /// The statement names the members' statuses as literals: those that hold a slot, and the
    /// two that stand in line (created, for the modes that keep a place for upcoming builds).
    #[test]
    fn member_statuses_are_the_domains() {
        let mut statuses: Vec<BuildStatus> = BuildStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.holds_slot())
            .collect();
        statuses.extend([BuildStatus::Created, BuildStatus::WaitingForResource]);
        for status in statuses {
            assert!(
                MEMBERS_SQL.contains(&format!("'{status}'")),
                "members.sql lacks `{status}`"
            );
        }
        assert_eq!(
            MEMBERS_SQL.matches("', '").count() + 1,
            5,
            "exactly five statuses"
        );
    }
}
