//! The r2d2 connection pool, and the check that a connection answers.

use crate::StorageError;
use diesel::RunQueryDsl;
use diesel::pg::PgConnection;
use diesel::r2d2::ConnectionManager;
use std::time::Duration;

/// A pool of PostgreSQL connections. `get()` blocks: call it off the async runtime.
pub type PgPool = r2d2::Pool<ConnectionManager<PgConnection>>;

/// Builds a pool of at most `max_size` connections to `url`, failing fast if the server is
/// unreachable.
pub fn connection_pool(url: &str, max_size: u32) -> Result<PgPool, StorageError> {
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(Duration::from_secs(10))
        .build(ConnectionManager::<PgConnection>::new(url))?;
    Ok(pool)
}

/// Asks the database for the cheapest answer it can give: it is reachable and serving queries.
pub fn ping(conn: &mut PgConnection) -> Result<(), StorageError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}
