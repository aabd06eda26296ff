//! `TestDb`: one test's own database, cloned from the template and dropped with the value.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::prelude::*;
use diesel::r2d2::ConnectionManager;

use crate::server::Server;
use crate::url::with_database;

/// Numbers this process's databases; with the process id it makes names unique on the server.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A database of its own for one test, with the migrated schema and no rows. Dropping it drops
/// the database, disconnecting whatever still uses it.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates a fresh database from the template, setting the template up on first use.
    ///
    /// # Panics
    ///
    /// When there is no server (the message says how to start one) or the server refuses.
    #[expect(
        clippy::new_without_default,
        reason = "a database on a server is not a default value: creating one can fail"
    )]
    pub fn new() -> Self {
        let server = Server::get();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("lockstep_test_{}_{id}", std::process::id());
        // A leftover of the same name is from a dead process whose id was reused.
        let drop_leftover = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
        let create = format!(
            r#"CREATE DATABASE "{name}" TEMPLATE "{}""#,
            server.template()
        );
        let mut created = server.execute(&[&drop_leftover, &create]);
        if created
            .as_ref()
            .is_err_and(|err| err.contains("does not exist"))
        {
            created = server
                .restore_template()
                .and_then(|()| server.execute(&[&create]));
        }
        if let Err(err) = created {
            panic!("creating test database {name} failed: {err}");
        }
        let url = with_database(server.url(), &name);
        Self { name, url }
    }

    /// The database's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL connecting to this database, for code that takes one (such as a binary under test).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to this database.
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url)
            .unwrap_or_else(|err| panic!("connecting to test database {}: {err}", self.name))
    }

    /// A new pool of up to `max_size` connections to this database, opened as they are needed.
    /// Checkouts give up after 3 s rather than r2d2's 30: a server's background task that
    /// outlives its test (and its database) must not hold the test's runtime open for long.
    pub fn pool(&self, max_size: u32) -> r2d2::Pool<ConnectionManager<PgConnection>> {
        r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(std::time::Duration::from_secs(3))
            .build(ConnectionManager::new(self.url.clone()))
            .unwrap_or_else(|err| panic!("building a pool for test database {}: {err}", self.name))
    }
}

impl Drop for TestDb {
    #[expect(
        clippy::print_stderr,
        reason = "Drop cannot return an error and must not panic; the test output shows this"
    )]
    fn drop(&mut self) {
        let Some(server) = Server::if_set_up() else {
            return;
        };
        let drop = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        if let Err(err) = server.execute(&[&drop]) {
            eprintln!("warning: could not drop test database {}: {err}", self.name);
        }
    }
}
