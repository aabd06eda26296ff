//! Live-page presence: the row a server replica keeps in `live_viewers` while it has dashboard
//! pages open, without which the triggers send no dashboard notifications at all (see the
//! `live_presence` migration). Only its own replica writes a row; nothing locks one.

use crate::StorageError;
use crate::schema::live_viewers;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};

#[derive(QueryableByName)]
struct Xid {
    #[diesel(sql_type = BigInt)]
    xid: i64,
}

#[derive(QueryableByName)]
struct Done {
    #[diesel(sql_type = Bool)]
    done: bool,
}

/// Says that `replica` has live pages open for the next `lease_seconds` (by the database's
/// clock, which the triggers compare with), and returns the first transaction id not yet
/// assigned once that is committed: every transaction that may have run its trigger without
/// seeing the row has an id below it (pass it to [`older_transactions_done`]).
pub fn register_viewers(
    conn: &mut PgConnection,
    replica: &str,
    lease_seconds: i32,
) -> Result<i64, StorageError> {
    diesel::sql_query(
        "INSERT INTO live_viewers (replica, expires_at) \
         VALUES ($1, now() + make_interval(secs => $2)) \
         ON CONFLICT (replica) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind::<Text, _>(replica)
    .bind::<Integer, _>(lease_seconds)
    .execute(conn)?;
    // After the upsert's commit (it ran on its own), so the horizon covers every transaction
    // that began before anyone could see the row.
    let horizon =
        diesel::sql_query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid")
            .get_result::<Xid>(conn)?;
    Ok(horizon.xid)
}

/// Whether every transaction with an id below `horizon` has ended.
pub fn older_transactions_done(
    conn: &mut PgConnection,
    horizon: i64,
) -> Result<bool, StorageError> {
    let done = diesel::sql_query(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1 AS done",
    )
    .bind::<BigInt, _>(horizon)
    .get_result::<Done>(conn)?;
    Ok(done.done)
}

/// Says that `replica` has no live pages open any more.
pub fn unregister_viewers(conn: &mut PgConnection, replica: &str) -> Result<(), StorageError> {
    diesel::delete(live_viewers::table.filter(live_viewers::replica.eq(replica))).execute(conn)?;
    Ok(())
}
