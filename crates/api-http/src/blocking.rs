//! Runs diesel, which blocks, on tokio's blocking pool so that a slow query never stalls the
//! runtime threads that serve other requests.

use crate::app::AppState;
use crate::error::ApiError;
use diesel::pg::PgConnection;
use lockstep_storage_pg::{StorageError, TxStats};

/// Checks a connection out of the pool and runs `work` on it, both on the blocking pool, inside
/// the caller's tracing span.
pub(crate) async fn with_conn<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection, &TxStats) -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone();
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut conn = state.pool.get().map_err(StorageError::Pool)?;
        work(&mut conn, &state.stats)
    });
    match task.await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(ApiError::internal(&join)),
    }
}
