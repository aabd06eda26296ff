//! Dashboard sign-in sessions: inserted at sign-in, read on every page, deleted at sign-out or
//! once expired. Never locked, so they take no place in the lock order.

use crate::StorageError;
use crate::schema::web_sessions;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// A live session, as a page needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The token every state-changing form of this session must send back.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session whose cookie token hashes to `token_hash`, and deletes every session that
/// expired before `now`, so that the table holds only live ones without a sweeper of its own.
pub fn create_session(
    conn: &mut PgConnection,
    token_hash: &[u8],
    csrf_token: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    delete_expired(conn, now)?;
    diesel::insert_into(web_sessions::table)
        .values((
            web_sessions::token_hash.eq(token_hash),
            web_sessions::csrf_token.eq(csrf_token),
            web_sessions::created_at.eq(now),
            web_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session whose token hashes to `token_hash`, unless there is none or it has expired.
pub fn load_session(
    conn: &mut PgConnection,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<SessionView>, StorageError> {
    let row = web_sessions::table
        .filter(web_sessions::token_hash.eq(token_hash))
        .filter(web_sessions::expires_at.gt(now))
        .select((web_sessions::csrf_token, web_sessions::expires_at))
        .first::<(String, DateTime<Utc>)>(conn)
        .optional()?;
    Ok(row.map(|(csrf_token, expires_at)| SessionView {
        csrf_token,
        expires_at,
    }))
}

/// Ends the session whose token hashes to `token_hash`; ending one that is gone is no error.
pub fn delete_session(conn: &mut PgConnection, token_hash: &[u8]) -> Result<(), StorageError> {
    diesel::delete(web_sessions::table.filter(web_sessions::token_hash.eq(token_hash)))
        .execute(conn)?;
    Ok(())
}

fn delete_expired(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::delete(web_sessions::table.filter(web_sessions::expires_at.le(now))).execute(conn)?;
    Ok(())
}
