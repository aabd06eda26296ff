//! Finding builds whose lease passed, or whose cancel outlived its grace unconfirmed. Expiring
//! them is an ordinary pipeline transition.

use crate::StorageError;
use crate::prepared::{Prepared, Statement};
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use lockstep_domain::PipelineId;

/// Statuses are literals so that the planner uses the partial indexes `ci_builds_leased` and
/// `ci_builds_canceling`, one for each side of the OR.
const EXPIRED: &str = "\
    SELECT DISTINCT pipeline_id FROM ci_builds \
    WHERE (status IN ('running', 'canceling') AND lease_expires_at < $1) \
       OR (status = 'canceling' AND canceling_since < $2) \
    ORDER BY pipeline_id LIMIT $3";

struct Expired;

impl Statement for Expired {
    const SQL: &'static str = EXPIRED;
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
}

/// Pipelines with at least one build whose lease passed before `now`, or asked to stop before
/// `unconfirmed_before`, oldest first.
pub(crate) fn pipelines_with_expired_leases(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    unconfirmed_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PipelineId>, StorageError> {
    let rows = Prepared::<Expired>::new()
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(unconfirmed_before)
        .bind::<BigInt, _>(limit)
        .load::<Row>(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| PipelineId(r.pipeline_id))
        .collect())
}

#[cfg(test)]
mod tests {
    use lockstep_domain::BuildStatus;

    #[test]
    fn expiry_looks_at_exactly_the_statuses_that_hold_a_lease() {
        let holding: Vec<String> = BuildStatus::ALL
            .iter()
            .filter(|s| s.holds_lease())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert!(super::EXPIRED.contains(&format!("status IN ({})", holding.join(", "))));
    }
}
