//! The lease reaper: expires builds whose runner stopped sending heartbeats, through the same
//! lock-ordered transitions as everything else. Every replica runs one; they may overlap.

use crate::app::AppState;
use crate::blocking::with_conn;
use chrono::Utc;
use lockstep_storage_pg::Transitions;

/// Pipelines expired per transaction batch; the reaper loops until a batch comes back short.
const BATCH: u32 = 100;

/// Runs until shutdown.
pub(crate) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(state.reaper_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.stopped() => return,
        }
        if let Err(error) = sweep(&state).await {
            // Logged by the error mapping when it matters; try again next tick.
            tracing::warn!(code = error.code(), "lease reaper sweep failed");
        }
    }
}

/// Expires every lease that has passed. Returns the number of pipelines changed.
pub(crate) async fn sweep(state: &AppState) -> Result<usize, crate::error::ApiError> {
    let mut total = 0;
    loop {
        let applied = with_conn(state, |conn, stats| {
            Transitions::new(conn, stats).expire_leases(Utc::now(), BATCH)
        })
        .await?;
        let builds = applied
            .iter()
            .flat_map(|a| &a.changes)
            .filter(|change| change.from.holds_lease())
            .count();
        if builds > 0 {
            tracing::info!(pipelines = applied.len(), builds, "expired leases");
            state.metrics.leases_expired(builds);
        }
        total += applied.len();
        if applied.len() < BATCH as usize {
            return Ok(total);
        }
    }
}
