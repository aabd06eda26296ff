//! The lease reaper: expires builds whose runner stopped sending heartbeats, hands claims never
//! acknowledged back to the queue, and cancels builds whose runner did not confirm a cancel
//! within the grace, through the same lock-ordered transitions as everything else. Every replica
//! runs one; they may overlap.

use crate::app::AppState;
use crate::blocking::{TaskError, run_blocking};
use chrono::Utc;
use lockstep_storage_pg::Transitions;

/// Pipelines expired per transaction batch; the reaper loops until a batch comes back short.
const BATCH: u32 = 100;

/// Runs until shutdown.
pub(crate) async fn run(state: AppState) {
    let interval = state.reaper_interval;
    every(
        &state,
        interval,
        "lease reaper sweep failed",
        |state| async move { sweep(&state).await },
    )
    .await;
}

/// Runs `work` every `interval` until shutdown; a failure is logged as `failed` says and tried
/// again at the next tick. The reaper and the artifact sweeper share it.
pub(crate) async fn every<F, T>(
    state: &AppState,
    interval: std::time::Duration,
    failed: &'static str,
    work: impl Fn(AppState) -> F,
) where
    F: std::future::Future<Output = Result<T, TaskError>>,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.stopped() => return,
        }
        if let Err(error) = work(state.clone()).await {
            tracing::warn!(%error, "{failed}");
        }
    }
}

/// Expires every lease that has passed. Returns the number of pipelines changed.
pub(crate) async fn sweep(state: &AppState) -> Result<usize, TaskError> {
    let mut total = 0;
    loop {
        let grace = state.cancel_grace;
        let applied = run_blocking::<_, TaskError, _>(state, move |conn, stats| {
            Transitions::new(conn, stats).expire_leases(Utc::now(), grace, BATCH)
        })
        .await?;
        let (requeued, expired): (Vec<_>, Vec<_>) = applied
            .iter()
            .flat_map(|a| &a.changes)
            .filter(|change| change.from.holds_lease())
            .partition(|change| change.to.is_queued_again(change.from));
        if !expired.is_empty() {
            let builds = expired.len();
            tracing::info!(pipelines = applied.len(), builds, "expired leases");
            state.metrics.leases_expired(builds);
        }
        if !requeued.is_empty() {
            let builds = requeued.len();
            tracing::info!(builds, "claims never acknowledged went back to the queue");
            state.metrics.claims_requeued(builds);
        }
        total += applied.len();
        if applied.len() < BATCH as usize {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sweep;
    use crate::app::{AppState, Settings};
    use crate::blocking::TaskError;
    use diesel::pg::PgConnection;
    use diesel::r2d2::ConnectionManager;
    use lockstep_storage_pg::StorageError;
    use std::time::Duration;

    /// The reaper answers nobody: what it logs is the storage error itself, not the HTTP status
    /// a handler would have answered with.
    #[tokio::test]
    async fn a_failed_sweep_reports_the_storage_error() {
        let manager =
            ConnectionManager::<PgConnection>::new("postgres://nobody@/none?host=/nonexistent");
        let pool = r2d2::Pool::builder()
            .connection_timeout(Duration::from_millis(100))
            .build_unchecked(manager);
        let settings = Settings::new(
            "a-token-of-sixteen-chars".to_owned(),
            Duration::from_secs(30),
        );
        let error = sweep(&AppState::new(pool, &settings))
            .await
            .expect_err("no database");
        assert!(
            matches!(error, TaskError::Storage(StorageError::Pool(_))),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("no database connection available"),
            "{error}"
        );
    }
}
