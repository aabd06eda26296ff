//! The embedded schema migrations (from the top-level `migrations/` directory).

use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// An arbitrary constant that names Lockstep's migration lock among advisory locks.
const MIGRATION_LOCK: i64 = 0x4c6f_636b_7374_6570; // "Lockstep"

/// Applies pending migrations and returns their versions. Several processes may call this at
/// once: a session-level advisory lock lets one migrate while the others wait, then find nothing
/// left to do.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| anyhow::anyhow!("applying migrations: {e}"));
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    applied
}
