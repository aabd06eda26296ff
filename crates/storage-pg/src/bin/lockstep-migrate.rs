//! Applies Lockstep's migrations to the database named by `DATABASE_URL`.

use anyhow::Context;
use diesel::Connection;
use diesel::pg::PgConnection;
use std::io::Write;

fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set; `cargo xtask migrate` sets it for the local cluster")?;
    let mut conn = PgConnection::establish(&url).with_context(|| format!("connecting to {url}"))?;
    let applied = lockstep_storage_pg::run_migrations(&mut conn)?;
    let mut out = std::io::stdout().lock();
    if applied.is_empty() {
        writeln!(out, "migrations: up to date")?;
    }
    for version in applied {
        writeln!(out, "migrations: applied {version}")?;
    }
    Ok(())
}
