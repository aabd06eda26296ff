//! The one error type of this crate, and how database errors map onto it.

use lockstep_domain::TransitionError;

/// Why a storage call failed. Nothing was written when a call fails.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The row does not exist.
    #[error("{entity} {id} does not exist")]
    NotFound { entity: &'static str, id: i64 },
    /// The row named so does not exist.
    #[error("{entity} `{name}` does not exist")]
    NotFoundNamed { entity: &'static str, name: String },
    /// A unique name is already taken.
    #[error("{entity} `{name}` already exists")]
    AlreadyExists { entity: &'static str, name: String },
    /// The domain refused the transition.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A log append did not start where the log ends, or a read started past it.
    #[error("the log ends at byte {end}")]
    LogOffset { end: u64 },
    /// A log append would make the log longer than allowed.
    #[error("a build log may hold at most {limit} bytes")]
    LogTooLarge { limit: u64 },
    /// Deadlocks or serialization failures persisted through every retry.
    #[error("gave up after {attempts} attempts: {last}")]
    Contention {
        attempts: u32,
        last: crate::SqlState,
    },
    /// No connection could be checked out of the pool in time.
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    /// Stored data broke a rule the schema cannot express (an unknown status, a missing row).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Rows changed between planning and locking in a way that needs other locks. Only seen
    /// inside the retry loop, which starts the transaction again.
    #[error("rows changed while the transition was planned")]
    PlanChanged,
    /// The connection to the database broke: the database is unavailable, not wrong.
    #[error("database connection lost: {0}")]
    Disconnected(#[source] diesel::result::Error),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Database(#[source] diesel::result::Error),
}

impl StorageError {
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt(message.into())
    }
}

impl From<diesel::result::Error> for StorageError {
    /// A broken connection is told apart here, once, so that callers never look into diesel's
    /// errors to decide between "unavailable" and "bug".
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => Self::Disconnected(error),
            other => Self::Database(other),
        }
    }
}
