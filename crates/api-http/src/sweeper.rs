//! The artifact sweeper: deletes artifacts past their `expires_at` (object first, then row),
//! keeping each ref's latest successful pipeline's while its project says so. Every replica
//! runs one; two replicas handed the same archive both delete it, which is harmless.

use crate::app::AppState;
use crate::blocking::{TaskError, run_blocking};
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::{expired_artifacts, forget_artifact};

/// Archives looked at per batch; a sweep goes on until a batch comes back short.
const BATCH: u32 = 100;

/// Runs until shutdown.
pub(crate) async fn run(state: AppState) {
    let interval = state.sweep_interval;
    crate::reaper::every(
        &state,
        interval,
        "artifact sweep failed",
        |state| async move { sweep(&state).await },
    )
    .await;
}

/// Deletes what has expired now. Returns the number of archives this call deleted.
pub(crate) async fn sweep(state: &AppState) -> Result<usize, TaskError> {
    let mut deleted = 0;
    loop {
        let batch = run_blocking::<_, TaskError, _>(state, |conn, _| {
            expired_artifacts(conn, Utc::now(), BATCH)
        })
        .await?;
        let mut this_batch = 0;
        for expired in &batch {
            if let Err(error) = state.objects.delete(&expired.object_key).await {
                // The row stays, so the next sweep tries again.
                tracing::warn!(%error, build_id = expired.build_id, "cannot delete expired artifacts");
                continue;
            }
            let (build, key) = (BuildId(expired.build_id), expired.object_key.clone());
            if run_blocking::<_, TaskError, _>(state, move |conn, _| {
                forget_artifact(conn, build, &key)
            })
            .await?
            {
                this_batch += 1;
            }
        }
        state.metrics.swept(this_batch);
        deleted += this_batch;
        // A short batch is the last; a full one that deleted nothing (the store failing, or
        // another replica ahead) would only be read again.
        if batch.len() < BATCH as usize || this_batch == 0 {
            if deleted > 0 {
                tracing::info!(archives = deleted, "deleted expired artifacts");
            }
            return Ok(deleted);
        }
    }
}
