//! The resource-group invariants: no more holders than slots, no slot left unused while a build
//! waits for it, and, for `oldest_first`, no build granted ahead of an older pipeline's build
//! that was already waiting.

use super::Violation;
use crate::StorageError;
use crate::locking::{GroupRow, group_rows};
use crate::schema::{ci_builds, resource_groups};
use crate::transitions::allocate;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{BuildStatus, ProcessMode, ResourceGroupId, grants};
use std::collections::HashMap;

/// Checks every group. Inside the caller's repeatable-read snapshot.
pub(super) fn check(conn: &mut PgConnection, out: &mut Vec<Violation>) -> Result<(), StorageError> {
    let rows = resource_groups::table
        .order(resource_groups::id.asc())
        .select((
            resource_groups::id,
            resource_groups::name,
            resource_groups::slot_limit,
            resource_groups::process_mode,
        ))
        .load::<GroupRow>(conn)?;
    let groups = group_rows(rows)?;
    let changed: HashMap<i64, DateTime<Utc>> = resource_groups::table
        .select((resource_groups::id, resource_groups::updated_at))
        .load(conn)?
        .into_iter()
        .collect();
    let members = allocate::members(conn, &groups)?;
    let granted = granted_builds(conn)?;
    for group in groups.iter() {
        let members = members.get(&group.id).map_or(&[][..], Vec::as_slice);
        let mut violation = |rule, detail: String| out.push(Violation { rule, detail });
        let holders: Vec<_> = members.iter().filter(|m| m.status.holds_slot()).collect();
        let since = changed.get(&group.id.0).copied();
        // A lower limit takes no slot back: holders granted before it keep theirs.
        let granted_since = holders
            .iter()
            .filter(|m| m.queued_at.zip(since).is_none_or(|(at, since)| at >= since))
            .count();
        if holders.len() > group.limit as usize && granted_since > 0 {
            let shown: Vec<String> = holders
                .iter()
                .map(|m| format!("{} ({}, since {:?})", m.build, m.status, m.queued_at))
                .collect();
            violation(
                "a group has no more holders than slots",
                format!(
                    "group `{}` has {} holders for {} slots, set at {since:?}: {}",
                    group.name,
                    holders.len(),
                    group.limit,
                    shown.join(", ")
                ),
            );
        }
        let unused = grants(group.limit, group.mode, members);
        if !unused.is_empty() {
            violation(
                "no slot is left unused while a build waits for it",
                format!("group `{}` could grant {unused:?}", group.name),
            );
        }
        if group.mode == ProcessMode::OldestFirst {
            let ran = granted.get(&group.id).map_or(&[][..], Vec::as_slice);
            for waiting in members
                .iter()
                .filter(|m| m.status == BuildStatus::WaitingForResource)
            {
                let Some(since) = waiting.queued_at else {
                    continue;
                };
                if let Some(jumped) = ran
                    .iter()
                    .find(|g| g.pipeline > waiting.pipeline.0 && g.at > since)
                {
                    violation(
                        "oldest_first grants slots in ascending pipeline order",
                        format!(
                            "group `{}` granted build {} (pipeline {}) while build {} of the \
                             older pipeline {} waited",
                            group.name,
                            jumped.build,
                            jumped.pipeline,
                            waiting.build,
                            waiting.pipeline
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

/// A build that got a slot, and when.
#[derive(Debug)]
struct Grant {
    build: i64,
    pipeline: i64,
    at: DateTime<Utc>,
}

/// Every build of a group that got a slot: those holding one, and those that ran. Their
/// `queued_at` is when their group granted it.
fn granted_builds(
    conn: &mut PgConnection,
) -> Result<HashMap<ResourceGroupId, Vec<Grant>>, StorageError> {
    let holding: Vec<&str> = BuildStatus::ALL
        .iter()
        .filter(|s| s.holds_slot())
        .map(|s| s.as_str())
        .collect();
    let rows = ci_builds::table
        .filter(ci_builds::resource_group_id.is_not_null())
        .filter(
            ci_builds::status
                .eq_any(holding)
                .or(ci_builds::started_at.is_not_null()),
        )
        .select((
            ci_builds::id,
            ci_builds::pipeline_id,
            ci_builds::resource_group_id,
            ci_builds::queued_at,
        ))
        .load::<(i64, i64, Option<i64>, Option<DateTime<Utc>>)>(conn)?;
    let mut by_group: HashMap<ResourceGroupId, Vec<Grant>> = HashMap::new();
    for (build, pipeline, group, queued_at) in rows {
        if let (Some(group), Some(at)) = (group, queued_at) {
            by_group
                .entry(ResourceGroupId(group))
                .or_default()
                .push(Grant {
                    build,
                    pipeline,
                    at,
                });
        }
    }
    Ok(by_group)
}
