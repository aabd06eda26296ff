//! What a runner holds: the statuses of the builds it watches, read without locking anything.

use crate::StorageError;
use crate::rows::parse;
use crate::schema::ci_builds;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use lockstep_domain::{BuildId, BuildStatus, RunnerId, check_holder};

/// One build a runner watches, as it stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedBuild {
    pub id: BuildId,
    /// `None` when no such build exists.
    pub status: Option<BuildStatus>,
    /// Whether the runner still holds it (the domain's `check_holder`): `false` once it ended or
    /// when it is another runner's.
    pub held: bool,
}

impl WatchedBuild {
    /// The runner has something to do about it: stop it (`canceling`) or drop it (not held).
    pub fn needs_action(&self) -> bool {
        !self.held || self.status != Some(BuildStatus::Running)
    }
}

/// The builds `ids` as `runner` sees them, in the order given. One indexed read, no lock: a watch
/// repeats it after every notification, and a stale answer only makes it look once more.
pub fn watch_builds(
    conn: &mut PgConnection,
    runner: RunnerId,
    ids: &[BuildId],
) -> Result<Vec<WatchedBuild>, StorageError> {
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let rows: Vec<(i64, String, Option<i64>)> = ci_builds::table
        .filter(ci_builds::id.eq_any(&raw))
        .select((ci_builds::id, ci_builds::status, ci_builds::runner_id))
        .load(conn)?;
    ids.iter()
        .map(|&id| {
            let Some((_, status, holder)) = rows.iter().find(|row| row.0 == id.0) else {
                return Ok(WatchedBuild {
                    id,
                    status: None,
                    held: false,
                });
            };
            let status: BuildStatus = parse("ci_builds.status", status)?;
            let held = check_holder(id, holder.map(RunnerId), status, runner).is_ok();
            Ok(WatchedBuild {
                id,
                status: Some(status),
                held,
            })
        })
        .collect()
}
