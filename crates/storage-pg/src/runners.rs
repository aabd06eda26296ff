//! Runners: registered under a hash of their token, authenticated on every request, retired
//! (never deleted, so that builds keep pointing at who ran them).

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use crate::schema::runners;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Text, Timestamptz};
use lockstep_domain::RunnerId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerView {
    pub id: RunnerId,
    pub name: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Queryable, QueryableByName)]
struct RunnerRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Array<Text>)]
    tags: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl From<RunnerRow> for RunnerView {
    fn from(row: RunnerRow) -> Self {
        Self {
            id: RunnerId(row.id),
            name: row.name,
            tags: row.tags,
            created_at: row.created_at,
        }
    }
}

/// Registers a runner under a hash of its token (the token itself is never stored).
pub fn register_runner(
    conn: &mut PgConnection,
    name: &str,
    tags: &[String],
    token_hash: &[u8],
) -> Result<RunnerView, StorageError> {
    let row = diesel::insert_into(runners::table)
        .values((
            runners::name.eq(name),
            runners::tags.eq(tags),
            runners::token_hash.eq(token_hash),
        ))
        .returning((
            runners::id,
            runners::name,
            runners::tags,
            runners::created_at,
        ))
        .get_result::<RunnerRow>(conn)?;
    Ok(row.into())
}

const AUTHENTICATE_SQL: &str = include_str!("runners/authenticate.sql");

struct Authenticate;

impl Statement for Authenticate {
    const SQL: &'static str = AUTHENTICATE_SQL;
}

/// The runner whose token hashes to `token_hash`, unless it is retired or unknown. Records the
/// contact in the same statement, at most once every 30 seconds per runner, so that a busy
/// runner costs no write per request. Runs as one statement: no transaction needed.
pub fn authenticate_runner(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<RunnerView>, StorageError> {
    let row = Prepared::<Authenticate>::new()
        .bind::<Binary, _>(token_hash)
        .bind::<Timestamptz, _>(now)
        .get_result::<RunnerRow>(conn)
        .optional()?;
    Ok(row.map(RunnerView::from))
}

/// Retires a runner: it no longer authenticates, and its builds keep pointing at it. Retiring
/// a retired runner is harmless and keeps the first retirement time.
pub fn retire_runner(
    conn: &mut PgConnection,
    id: RunnerId,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let retired = diesel::update(
        runners::table
            .find(id.0)
            .filter(runners::retired_at.is_null()),
    )
    .set(runners::retired_at.eq(now))
    .execute(conn)?;
    if retired == 1 {
        return Ok(());
    }
    // Nothing updated: already retired, or never registered. Runners are never deleted, so
    // this second read cannot disagree with the update.
    let exists = diesel::select(diesel::dsl::exists(runners::table.find(id.0))).get_result(conn)?;
    if exists {
        Ok(())
    } else {
        Err(StorageError::NotFound {
            entity: "runner",
            id: id.0,
        })
    }
}

/// A runner as the list shows it: whether it is online and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerListing {
    pub runner: RunnerView,
    /// Its last recorded contact (written at most every 30 seconds).
    pub contacted_at: Option<DateTime<Utc>>,
    /// In contact since the moment the caller asked about.
    pub online: bool,
    /// The builds it holds (running or asked to stop), in ascending id.
    pub builds: Vec<lockstep_domain::BuildId>,
}

/// A runner row as the list reads it: id, name, tags, registration and last contact.
type ListedRow = (
    i64,
    String,
    Vec<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// Every runner that is not retired, by id; online when in contact since `online_since`.
pub fn list_runners(
    conn: &mut PgConnection,
    online_since: DateTime<Utc>,
) -> Result<Vec<RunnerListing>, StorageError> {
    use crate::schema::ci_builds;
    let rows: Vec<ListedRow> = runners::table
        .filter(runners::retired_at.is_null())
        .order(runners::id.asc())
        .select((
            runners::id,
            runners::name,
            runners::tags,
            runners::created_at,
            runners::contacted_at,
        ))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
    let holding: Vec<&str> = lockstep_domain::BuildStatus::ALL
        .iter()
        .filter(|status| status.holds_lease())
        .map(|status| status.as_str())
        .collect();
    let held: Vec<(Option<i64>, i64)> = ci_builds::table
        .filter(ci_builds::runner_id.eq_any(&ids))
        .filter(ci_builds::status.eq_any(holding))
        .order(ci_builds::id.asc())
        .select((ci_builds::runner_id, ci_builds::id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, tags, created_at, contacted_at)| RunnerListing {
            runner: RunnerView {
                id: RunnerId(id),
                name,
                tags,
                created_at,
            },
            contacted_at,
            online: contacted_at.is_some_and(|at| at >= online_since),
            builds: held
                .iter()
                .filter(|(runner, _)| *runner == Some(id))
                .map(|(_, build)| lockstep_domain::BuildId(*build))
                .collect(),
        })
        .collect())
}
