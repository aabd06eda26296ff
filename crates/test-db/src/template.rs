//! The template database: the migrated schema, built once per schema version and cloned for
//! every test, so no test pays for migrations.
//!
//! Several test processes may start at once (cargo runs one per test target, nextest one per
//! test), so building happens under a server-wide advisory lock, in a database named
//! `…_building` that is renamed only when complete: a template under its final name is ready.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::hash::Fnv1a;
use crate::url::with_database;

/// The migrations, compiled in; `build.rs` makes cargo rebuild when they change.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

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
    let name = format!("{PREFIX}{:016x}", schema_hash(&migrations_dir())?);
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

/// `<workspace root>/migrations`, where `embed_migrations!` read them from.
fn migrations_dir() -> PathBuf {
    crate::server::workspace_root().join("migrations")
}

/// A hash of every file under `dir` (relative paths and contents, in sorted order), so any
/// change to the migrations names a new template.
fn schema_hash(dir: &Path) -> Result<u64, SetupError> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)
        .map_err(|err| format!("reading migrations in {}: {err}", dir.display()))?;
    files.sort();
    let mut hash = Fnv1a::new();
    for (relative, contents) in files {
        // Lengths as separators: no two different file sets hash the same byte stream.
        hash.write(&(relative.len() as u64).to_le_bytes());
        hash.write(relative.as_bytes());
        hash.write(&(contents.len() as u64).to_le_bytes());
        hash.write(&contents);
    }
    Ok(hash.finish())
}

fn collect_files(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            // `/` on every platform, so the hash does not depend on the OS.
            let relative = relative.to_string_lossy().replace('\\', "/");
            files.push((relative, fs::read(&path)?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::{migrations_dir, schema_hash};

    /// A scratch migrations directory, unique to one test of one process.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lockstep-test-db-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("2026-01-01-000000_a")).unwrap();
        fs::write(dir.join("2026-01-01-000000_a/up.sql"), "CREATE TABLE a ();").unwrap();
        fs::write(dir.join("2026-01-01-000000_a/down.sql"), "DROP TABLE a;").unwrap();
        dir
    }

    #[test]
    fn schema_hash_is_stable_and_follows_every_change() {
        let dir = scratch("hash");
        let first = schema_hash(&dir).unwrap();
        assert_eq!(schema_hash(&dir).unwrap(), first);

        fs::write(dir.join("2026-01-01-000000_a/up.sql"), "CREATE TABLE b ();").unwrap();
        let edited = schema_hash(&dir).unwrap();
        assert_ne!(edited, first);

        fs::create_dir_all(dir.join("2026-01-02-000000_b")).unwrap();
        fs::write(dir.join("2026-01-02-000000_b/up.sql"), "").unwrap();
        assert_ne!(schema_hash(&dir).unwrap(), edited);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_real_migrations_directory_hashes() {
        assert!(schema_hash(&migrations_dir()).is_ok());
    }
}
