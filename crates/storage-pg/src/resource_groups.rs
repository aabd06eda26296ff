//! Read models of resource groups: each with the builds that hold its slots and the line of
//! those waiting for one.

use crate::StorageError;
use crate::locking::{LockedGroup, LockedGroups};
use crate::schema::resource_groups;
use crate::transitions::allocate;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{BuildId, ProcessMode, ProjectId, ResourceGroupId, waiting_line};

/// A resource group as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroupView {
    pub id: ResourceGroupId,
    pub name: String,
    pub process_mode: ProcessMode,
    pub limit: u32,
    /// The builds that hold a slot, in ascending id.
    pub holders: Vec<BuildId>,
    /// The waiting builds, in the order they will get a slot.
    pub waiting: Vec<BuildId>,
}

/// Every resource group of a project, by name. `NotFound` if the project does not exist.
pub fn list_resource_groups(
    conn: &mut PgConnection,
    project: ProjectId,
) -> Result<Vec<ResourceGroupView>, StorageError> {
    read(conn, project, None)
}

/// One resource group of a project, by name.
pub fn load_resource_group(
    conn: &mut PgConnection,
    project: ProjectId,
    name: &str,
) -> Result<ResourceGroupView, StorageError> {
    read(conn, project, Some(name))?
        .pop()
        .ok_or_else(|| StorageError::NotFoundNamed {
            entity: "resource group",
            name: name.to_owned(),
        })
}

/// The groups and their members in one snapshot, so that holders and line agree.
fn read(
    conn: &mut PgConnection,
    project: ProjectId,
    name: Option<&str>,
) -> Result<Vec<ResourceGroupView>, StorageError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            crate::reads::check_project(conn, project)?;
            let mut query = resource_groups::table
                .filter(resource_groups::project_id.eq(project.0))
                .order(resource_groups::name.asc())
                .select((
                    resource_groups::id,
                    resource_groups::name,
                    resource_groups::slot_limit,
                    resource_groups::process_mode,
                ))
                .into_boxed();
            if let Some(name) = name {
                query = query.filter(resource_groups::name.eq(name));
            }
            let groups = crate::locking::group_rows(query.load(conn)?)?;
            views(conn, &groups)
        })
}

/// The views of `groups`, read now: under their locks inside a transition, or in a snapshot.
pub(crate) fn views(
    conn: &mut PgConnection,
    groups: &LockedGroups,
) -> Result<Vec<ResourceGroupView>, StorageError> {
    let members = allocate::members(conn, groups)?;
    Ok(groups
        .iter()
        .map(|group| {
            let members = members.get(&group.id).map_or(&[][..], Vec::as_slice);
            view(group, members)
        })
        .collect())
}

fn view(group: &LockedGroup, members: &[lockstep_domain::Member]) -> ResourceGroupView {
    ResourceGroupView {
        id: group.id,
        name: group.name.clone(),
        process_mode: group.mode,
        limit: group.limit,
        holders: members
            .iter()
            .filter(|m| m.status.holds_slot())
            .map(|m| m.build)
            .collect(),
        waiting: waiting_line(group.mode, members),
    }
}
