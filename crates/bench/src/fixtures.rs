//! What the scenarios build on: databases of their own, pipelines of no-op builds, runners,
//! the server's commit counter, and a `lockstep-server` process.

use anyhow::Context as _;
use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lockstep_domain::{
    Environment, JobDefinition, PipelineDefinition, PipelineId, ProjectId, RunnerId, ValidPipeline,
};
use lockstep_storage_pg::{
    AcquiredBuild, NewPipeline, StorageError, Transitions, TxStats, create_project, register_runner,
};
use lockstep_test_db::TestDb;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh database with one project.
pub(crate) struct Db {
    pub(crate) db: TestDb,
    pub(crate) project: ProjectId,
}

impl Db {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let db = TestDb::new();
        let mut conn = db.connect();
        let project = create_project(&mut conn, "bench")?.id;
        Ok(Self { db, project })
    }

    pub(crate) fn connect(&self) -> PgConnection {
        self.db.connect()
    }
}

/// A runner with no tags; its "token hash" is its name (the storage scenarios never log in).
pub(crate) fn runner(conn: &mut PgConnection, name: &str) -> anyhow::Result<RunnerId> {
    Ok(register_runner(conn, name, &[], name.as_bytes())?.id)
}

/// A pipeline of `jobs` independent no-op jobs (all pending at once); every `deploy_every`th
/// job deploys to one of ten environments.
pub(crate) fn independent_jobs(jobs: usize, deploy_every: usize) -> anyhow::Result<ValidPipeline> {
    let jobs = (0..jobs)
        .map(|i| JobDefinition {
            name: format!("job-{i}"),
            script: vec!["true".to_owned()],
            needs: Some(Vec::new()),
            environment: (deploy_every > 0 && i % deploy_every == 0)
                .then(|| Environment::deploy(format!("env-{}", i % 10))),
            ..JobDefinition::default()
        })
        .collect();
    PipelineDefinition { jobs }
        .validate()
        .context("the benchmark's pipeline is valid")
}

pub(crate) fn create(
    conn: &mut PgConnection,
    stats: &TxStats,
    project: ProjectId,
    definition: &ValidPipeline,
) -> anyhow::Result<PipelineId> {
    let created = Transitions::new(conn, stats).create_pipeline(
        &NewPipeline {
            project,
            git_ref: "main",
            sha: None,
            definition,
            // The scenarios' pipelines share one ref and must all run.
            auto_cancel: lockstep_domain::AutoCancel::None,
        },
        Utc::now(),
    )?;
    Ok(created.id)
}

/// Acquires up to `limit` builds, leased for `lease`, and brings their pipelines' statuses up to
/// date at once, as a runner's request costs the server. A failed refresh is only reported, as
/// the server only logs it: the builds are acquired, and dropping them would strand them.
pub(crate) fn acquire(
    conn: &mut PgConnection,
    stats: &TxStats,
    runner: RunnerId,
    limit: u32,
    lease: Duration,
) -> Result<Vec<AcquiredBuild>, StorageError> {
    let mut transitions = Transitions::new(conn, stats);
    let acquired = transitions.acquire(runner, &[], limit, lease, Utc::now())?;
    if let Err(error) = transitions.refresh_pipelines(&acquired.stale_pipelines, Utc::now()) {
        crate::scenarios::progress(&format!("refreshing pipelines after an acquire: {error}"));
    }
    Ok(acquired.builds)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Transaction ids handed out so far on the server: every transaction that writes takes one
/// (and commits durably), read-only ones take none. Unlike `pg_stat_database.xact_commit`,
/// this is exact at once and counts no read-only or session-setup statements. The call itself
/// takes one id, which cancels out between two readings.
pub(crate) fn commits(conn: &mut PgConnection) -> anyhow::Result<i64> {
    // Fixture SQL: a counter read, not a use case, so it lives with the benchmark.
    Ok(diesel::sql_query("SELECT txid_current() AS n")
        .get_result::<Count>(conn)?
        .n)
}

/// Deadlocks PostgreSQL detected in the current database.
pub(crate) fn server_deadlocks(conn: &mut PgConnection) -> anyhow::Result<i64> {
    Ok(diesel::sql_query(
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result::<Count>(conn)?
    .n)
}

pub(crate) const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// A `lockstep-server` process on a free port; killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) fn start(binary: &Path, database_url: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(binary)
            .env("DATABASE_URL", database_url)
            .env("LOCKSTEP_API_TOKEN", ADMIN_TOKEN)
            .env("LOCKSTEP_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = self.base.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&address).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("lockstep-server did not start listening within 30 s")
    }

    /// The process's peak resident memory so far, in MiB (VmHWM).
    pub(crate) fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .context("no VmHWM in /proc status")?
            .parse()?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
