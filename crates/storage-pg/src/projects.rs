//! Projects: created once, listed and looked up; transitions reference them but never lock them.

use crate::StorageError;
use crate::schema::projects;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use lockstep_domain::ProjectId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectView {
    pub id: ProjectId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Whether the artifacts of each ref's latest successful pipeline outlive their expiry.
    pub keep_latest_artifacts: bool,
}

type ProjectRow = (i64, String, DateTime<Utc>, bool);

const COLUMNS: (
    projects::id,
    projects::name,
    projects::created_at,
    projects::keep_latest_artifacts,
) = (
    projects::id,
    projects::name,
    projects::created_at,
    projects::keep_latest_artifacts,
);

fn project_view((id, name, created_at, keep_latest_artifacts): ProjectRow) -> ProjectView {
    ProjectView {
        id: ProjectId(id),
        name,
        created_at,
        keep_latest_artifacts,
    }
}

/// Creates a project; its name must be new.
pub fn create_project(conn: &mut PgConnection, name: &str) -> Result<ProjectView, StorageError> {
    diesel::insert_into(projects::table)
        .values(projects::name.eq(name))
        .returning(COLUMNS)
        .get_result::<ProjectRow>(conn)
        .map(project_view)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StorageError::AlreadyExists {
                    entity: "project",
                    name: name.to_owned(),
                }
            }
            other => other.into(),
        })
}

/// Every project, in id order (projects are few; no paging).
pub fn list_projects(conn: &mut PgConnection) -> Result<Vec<ProjectView>, StorageError> {
    let rows = projects::table
        .order(projects::id.asc())
        .select(COLUMNS)
        .load::<ProjectRow>(conn)?;
    Ok(rows.into_iter().map(project_view).collect())
}

pub fn load_project(conn: &mut PgConnection, id: ProjectId) -> Result<ProjectView, StorageError> {
    projects::table
        .find(id.0)
        .select(COLUMNS)
        .first::<ProjectRow>(conn)
        .optional()?
        .map(project_view)
        .ok_or(StorageError::NotFound {
            entity: "project",
            id: id.0,
        })
}
