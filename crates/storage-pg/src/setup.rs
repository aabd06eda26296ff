//! Projects and runners: rows that transitions reference but never lock.

use crate::StorageError;
use crate::schema::{projects, runners};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use lockstep_domain::{ProjectId, RunnerId};

/// Creates a project; its name must be new.
pub fn create_project(conn: &mut PgConnection, name: &str) -> Result<ProjectId, StorageError> {
    diesel::insert_into(projects::table)
        .values(projects::name.eq(name))
        .returning(projects::id)
        .get_result::<i64>(conn)
        .map(ProjectId)
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

/// Registers a runner under a hash of its token (the token itself is never stored).
pub fn register_runner(
    conn: &mut PgConnection,
    name: &str,
    tags: &[String],
    token_hash: &[u8],
) -> Result<RunnerId, StorageError> {
    let id = diesel::insert_into(runners::table)
        .values((
            runners::name.eq(name),
            runners::tags.eq(tags),
            runners::token_hash.eq(token_hash),
        ))
        .returning(runners::id)
        .get_result::<i64>(conn)?;
    Ok(RunnerId(id))
}
