//! The acquire statement's parameters and result rows.

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};

/// Who claims, how many, and until when.
#[derive(Debug)]
pub(crate) struct ClaimRequest<'a> {
    pub(crate) runner_id: i64,
    pub(crate) runner_tags: &'a [String],
    pub(crate) limit: i64,
    pub(crate) now: DateTime<Utc>,
    pub(crate) lease_expires_at: DateTime<Utc>,
}

/// One claimed build with its pipeline and deployment, all from the claiming statement.
#[derive(Debug, Clone, QueryableByName)]
pub(crate) struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) pipeline_id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) stage: String,
    #[diesel(sql_type = Array<Text>)]
    pub(crate) script: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) environment: Option<String>,
    #[diesel(sql_type = Integer)]
    pub(crate) timeout_seconds: i32,
    #[diesel(sql_type = Integer)]
    pub(crate) attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) started_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) lease_expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) project_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) git_ref: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) sha: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) pipeline_status: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub(crate) deployment_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) deployment_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) deployment_environment: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    pub(crate) before_script: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub(crate) after_script: Vec<String>,
    /// A JSON object of strings.
    #[diesel(sql_type = Text)]
    pub(crate) variables: String,
    #[diesel(sql_type = Text)]
    pub(crate) environment_action: String,
    /// A JSON object, or NULL when the job keeps no artifacts.
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) artifacts: Option<String>,
    /// A JSON array.
    #[diesel(sql_type = Text)]
    pub(crate) caches: String,
    #[diesel(sql_type = Array<Text>)]
    pub(crate) dependencies: Vec<String>,
    /// A JSON array of the archives to fetch (`FetchArtifact`).
    #[diesel(sql_type = Text)]
    pub(crate) fetch_artifacts: String,
}

impl ClaimRequest<'_> {
    pub(super) fn run(&self, conn: &mut PgConnection) -> Result<Vec<ClaimedRow>, StorageError> {
        let rows = Prepared::<Claim>::new()
            .bind::<Array<Text>, _>(self.runner_tags)
            .bind::<BigInt, _>(self.limit)
            .bind::<BigInt, _>(self.runner_id)
            .bind::<Timestamptz, _>(self.now)
            .bind::<Timestamptz, _>(self.lease_expires_at)
            .load::<ClaimedRow>(conn)?;
        Ok(rows)
    }
}

const CLAIM_SQL: &str = include_str!("claim.sql");

struct Claim;

impl Statement for Claim {
    const SQL: &'static str = CLAIM_SQL;
}

#[cfg(feature = "testing")]
#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// The plan PostgreSQL picks for the acquire statement (EXPLAIN without ANALYZE: nothing runs
/// and nothing is locked). The benchmark reports which index serves the claim.
#[cfg(feature = "testing")]
pub fn explain_claim(conn: &mut PgConnection) -> Result<String, StorageError> {
    let now = Utc::now();
    let lines = diesel::sql_query(format!("EXPLAIN (COSTS OFF) {CLAIM_SQL}"))
        .bind::<Array<Text>, _>(Vec::<String>::new())
        .bind::<BigInt, _>(1_i64)
        .bind::<BigInt, _>(0_i64)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now)
        .load::<PlanLine>(conn)?;
    Ok(lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_domain::{BuildStatus, DeploymentStatus};

    /// The statement spells statuses as literals (for the partial index); they must be the
    /// domain's names for a pending build, a running build and a running build's deployment.
    #[test]
    fn claim_statuses_are_the_domain_names() {
        let running = BuildStatus::Running;
        let pending = format!("status = '{}'", BuildStatus::Pending.as_str());
        let claimed = format!("SET status = '{}', runner_id", running.as_str());
        let deployment = format!(
            "SET status = '{}', updated_at",
            DeploymentStatus::for_build(running).as_str()
        );
        for needle in [&pending, &claimed, &deployment] {
            assert!(
                CLAIM_SQL.contains(needle.as_str()),
                "claim.sql lacks `{needle}`"
            );
        }
        assert_eq!(
            CLAIM_SQL.matches(&pending).count(),
            2,
            "the pending predicate appears twice"
        );
    }
}
