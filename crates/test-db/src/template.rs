//! The template database: the migrated schema, built once per schema version and cloned for
//! every test, so no test pays for migrations.
//!
//! Several test processes may start at once (cargo runs one per test target, nextest one per
//! test), so building happens under a server-wide advisory lock, in a database named
//! `…_building` that is renamed only when complete: a template under its final name is ready.

use std::error::Error;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::url::with_database;

/// The migrations, compiled in; `build.rs` makes cargo rebuild when they change.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A hash of every migration file, computed by `build.rs` from the same files, at the same
/// moment, as `MIGRATIONS`. Read from disk at run time instead, it could name a template after
/// migrations a stale test binary does not have (a migration added while tests run) and poison
/// that name for every later run.
const SCHEMA_HASH: &str = env!("LOCKSTEP_SCHEMA_HASH");

/// The advisory lock key serialising template work across processes: "lockstep" in ASCII.
const LOCK_KEY: i64 = 0x6c6f_636b_7374_6570;

const PREFIX: &str = "lockstep_template_";

pub(crate) type SetupError = Box<dyn Error + Send + Sync>;

diesel::table! {
    /// The server's list of databases (a shared catalog: the same from every database).
    pg_database (datname) {
        datname -> Text,
    }
}

/// Makes sure the template for the current migrations exists and returns its name. `conn` is a
/// maintenance connection to the server; the advisory lock is released with the session, so
/// the caller should drop `conn` afterwards (a crash releases it too).
pub(crate) fn ensure(conn: &mut PgConnection, server_url: &str) -> Result<String, SetupError> {
    let name = format!("{PREFIX}{SCHEMA_HASH}");
    conn.batch_execute(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))?;
    drop_other_templates(conn, &name);
    if !exists(conn, &name)? {
        build(conn, server_url, &name)?;
    }
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"))?;
    Ok(name)
}

/// Creates `<name>_building`, migrates it, closes it to connections and renames it to `name`.
fn build(conn: &mut PgConnection, server_url: &str, name: &str) -> Result<(), SetupError> {
    let building = format!("{name}_building");
    // A leftover is a build that died half way: it cannot be trusted.
    conn.batch_execute(&format!(
        r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
    ))?;
    conn.batch_execute(&format!(r#"CREATE DATABASE "{building}""#))?;
    {
        let mut template = PgConnection::establish(&with_database(server_url, &building))?;
        template.run_pending_migrations(MIGRATIONS)?;
    }
    // CREATE DATABASE … TEMPLATE fails while anyone is connected to the template, so nobody may.
    conn.batch_execute(&format!(
        r#"ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false"#
    ))?;
    conn.batch_execute(&format!(
        r#"ALTER DATABASE "{building}" RENAME TO "{name}""#
    ))?;
    Ok(())
}

fn exists(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
    let query = pg_database::table.filter(pg_database::datname.eq(name));
    diesel::select(diesel::dsl::exists(query)).get_result(conn)
}

/// Drops templates of other schema versions and failed builds, best effort: one in use by a
/// concurrent run of another checkout stays, and is tried again next time.
fn drop_other_templates(conn: &mut PgConnection, keep: &str) {
    let others: Vec<String> = pg_database::table
        .select(pg_database::datname)
        .filter(pg_database::datname.like(format!("{}%", PREFIX.replace('_', r"\_"))))
        .filter(pg_database::datname.ne(keep))
        .load(conn)
        .unwrap_or_default();
    for other in others {
        let _ = conn.batch_execute(&format!(r#"DROP DATABASE IF EXISTS "{other}""#));
    }
}
