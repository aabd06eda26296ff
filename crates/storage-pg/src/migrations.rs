//! The embedded schema migrations (from the top-level `migrations/` directory).

use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// An arbitrary constant that names Lockstep's migration lock among advisory locks.
const MIGRATION_LOCK: i64 = 0x4c6f_636b_7374_6570; // "Lockstep"

/// Why the migrations could not be applied. Each migration runs in its own transaction, so the
/// schema is left at the last one that applied whole.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// Taking or releasing the advisory lock that lets one process migrate at a time failed.
    #[error("the migration lock: {0}")]
    Lock(#[source] diesel::result::Error),
    /// A migration failed (or the list of applied ones could not be read).
    #[error("applying migrations: {0}")]
    Apply(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Applies pending migrations and returns their versions. Several processes may call this at
/// once: a session-level advisory lock lets one migrate while the others wait, then find nothing
/// left to do.
pub fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, MigrationError> {
    advisory("SELECT pg_advisory_lock($1)", conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(MigrationError::Apply);
    // Released whatever happened: the lock is the session's, and the connection may live on.
    advisory("SELECT pg_advisory_unlock($1)", conn)?;
    applied
}

fn advisory(statement: &str, conn: &mut PgConnection) -> Result<(), MigrationError> {
    diesel::sql_query(statement)
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)
        .map(drop)
        .map_err(MigrationError::Lock)
}
