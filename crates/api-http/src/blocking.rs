//! Runs diesel, which blocks, on tokio's blocking pool so that a slow query never stalls the
//! runtime threads that serve other requests.

use crate::app::AppState;
use crate::error::ApiError;
use diesel::pg::PgConnection;
use lockstep_storage_pg::{StorageError, TxStats};
use tokio::task::JoinError;

/// Checks a connection out of the pool and runs `work` on it, both on the blocking pool, inside
/// the caller's tracing span. The caller's error type `E` says what a failure means to it: an
/// [`ApiError`] for a handler ([`with_conn`]), a [`TaskError`] for a background task.
pub(crate) async fn run_blocking<T, E, F>(state: &AppState, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection, &TxStats) -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + From<JoinError>,
{
    let state = state.clone();
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut conn = state.pool.get().map_err(StorageError::Pool)?;
        work(&mut conn, &state.stats)
    });
    Ok(task.await??)
}

/// [`run_blocking`] for handlers: a failure is answered as the API error it maps to.
pub(crate) async fn with_conn<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection, &TxStats) -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    run_blocking(state, work).await
}

/// Why a background task's database work failed: the storage error itself, not the HTTP answer
/// it would map to, since nobody is answered and the log should say what went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TaskError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the database task did not finish: {0}")]
    Join(#[from] JoinError),
}
