//! The PostgreSQL server tests run against: found once per process, with its template database
//! prepared and a small pool of maintenance connections for creating and dropping databases.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ConnectionManager;

use crate::template;

/// Where `cargo xtask db start` writes the URL of its cluster, relative to the workspace root.
const DATABASE_URL_FILE: &str = "target/lockstep-db/database-url";

/// Enough for the test threads of one process to create and drop databases side by side.
const MAINTENANCE_CONNECTIONS: u32 = 4;

/// Dropping a database waits for its sessions to end; give slow machines time.
const MAINTENANCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Set up once per process. A failure is kept too, so every test reports it without retrying.
static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

#[derive(Debug)]
pub(crate) struct Server {
    url: String,
    template: String,
    maintenance: r2d2::Pool<ConnectionManager<PgConnection>>,
}

impl Server {
    /// The server, set up on first use; panics with how to fix it when there is none.
    pub(crate) fn get() -> &'static Self {
        match SERVER.get_or_init(Self::set_up) {
            Ok(server) => server,
            Err(message) => panic!("{message}"),
        }
    }

    /// The server if an earlier `get` succeeded; never blocks or panics, for use in `Drop`.
    pub(crate) fn if_set_up() -> Option<&'static Self> {
        SERVER.get().and_then(|server| server.as_ref().ok())
    }

    /// The URL of the server's own database, for deriving other databases' URLs.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn template(&self) -> &str {
        &self.template
    }

    /// Builds the template again if it is gone: a test run in another checkout, with other
    /// migrations, drops the templates it does not use.
    pub(crate) fn restore_template(&self) -> Result<(), String> {
        let mut conn = self.maintenance.get().map_err(|err| err.to_string())?;
        template::ensure(&mut conn, &self.url).map_err(|err| err.to_string())?;
        Ok(())
    }

    /// Runs maintenance statements one by one on a pooled connection to the server. One at a
    /// time: `CREATE DATABASE` and `DROP DATABASE` refuse to run in a multi-statement string.
    pub(crate) fn execute(&self, statements: &[&str]) -> Result<(), String> {
        let mut conn = self.maintenance.get().map_err(|err| err.to_string())?;
        for statement in statements {
            conn.batch_execute(statement)
                .map_err(|err| format!("{statement}: {err}"))?;
        }
        Ok(())
    }

    fn set_up() -> Result<Self, String> {
        let url = server_url().map_err(|reason| no_server(&reason))?;
        let mut conn = PgConnection::establish(&url)
            .map_err(|err| no_server(&format!("connecting to {url}: {err}")))?;
        let template = template::ensure(&mut conn, &url)
            .map_err(|err| one_line(&format!("preparing the template database failed: {err}")))?;
        drop(conn);
        let maintenance = r2d2::Pool::builder()
            .max_size(MAINTENANCE_CONNECTIONS)
            .min_idle(Some(0))
            .connection_timeout(MAINTENANCE_TIMEOUT)
            .build_unchecked(ConnectionManager::new(url.clone()));
        Ok(Self {
            url,
            template,
            maintenance,
        })
    }
}

/// `DATABASE_URL` if set, else the URL `cargo xtask db start` wrote.
fn server_url() -> Result<String, String> {
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Ok(url);
    }
    let file = workspace_root().join(DATABASE_URL_FILE);
    match std::fs::read_to_string(&file) {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Err(format!(
            "DATABASE_URL is unset and {} does not exist",
            file.display()
        )),
    }
}

/// The workspace root: this crate sits at `crates/test-db` in it.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives two levels below the workspace root")
}

fn no_server(reason: &str) -> String {
    format!(
        "no PostgreSQL server for tests: run `cargo xtask db start` (or use `cargo xtask test`), \
         or set DATABASE_URL ({})",
        one_line(reason)
    )
}

/// libpq's messages span lines; a panic message reads best on one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
