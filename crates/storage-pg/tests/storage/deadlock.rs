//! The negative control: the harness must see a deadlock when two transactions lock a build and
//! its deployment in opposite orders on purpose, both from the client (SQLSTATE 40P01) and from
//! the server (`pg_stat_database.deadlocks`). Without this, "zero deadlocks" would prove nothing.

use crate::support::{Fixture, JobExt, job, latest};
use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lockstep_storage_pg::{SqlState, StorageError};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// This database's deadlock counter. Backends flush statistics when they go idle or exit, so
/// the reading clears its own cached snapshot first.
pub(crate) fn server_deadlocks(conn: &mut PgConnection) -> i64 {
    diesel::sql_query("SELECT pg_stat_clear_snapshot()")
        .execute(conn)
        .expect("clear stats snapshot");
    diesel::sql_query(
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result::<Count>(conn)
    .expect("read pg_stat_database")
    .n
}

fn lock(conn: &mut PgConnection, table: &str, id: i64) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "SELECT id FROM {table} WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind::<BigInt, _>(id)
    .execute(conn)
}

/// Locks `first`, waits for the other thread to lock its first row, then locks `second`.
fn opposite_order(
    url: &str,
    first: (&str, i64),
    second: (&str, i64),
    barrier: &Barrier,
) -> Result<(), StorageError> {
    let mut conn = PgConnection::establish(url).expect("connect");
    conn.transaction::<_, StorageError, _>(|conn| {
        lock(conn, first.0, first.1)?;
        barrier.wait();
        lock(conn, second.0, second.1)?;
        Ok(())
    })
}

#[test]
fn the_harness_sees_a_deadlock_caused_on_purpose() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("deploy").env("production")]);
    let view = f.pipeline(created.id);
    let build = latest(&view, "deploy");
    let (b, d) = (
        build.id.0,
        build.deployment.as_ref().expect("deployment").id.0,
    );
    let before = server_deadlocks(&mut f.conn);

    let barrier = Barrier::new(2);
    let url = f.db.url().to_owned();
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| opposite_order(&url, ("ci_builds", b), ("deployments", d), &barrier));
        let two = s.spawn(|| opposite_order(&url, ("deployments", d), ("ci_builds", b), &barrier));
        (one.join().unwrap(), two.join().unwrap())
    });

    let victims: Vec<&StorageError> = [&one, &two]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(
        victims.len(),
        1,
        "PostgreSQL kills exactly one of the two: {one:?} {two:?}"
    );
    assert_eq!(
        SqlState::of(victims[0]),
        Some(SqlState::Deadlock),
        "classified as 40P01: {}",
        victims[0]
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    while server_deadlocks(&mut f.conn) <= before {
        assert!(
            Instant::now() < deadline,
            "pg_stat_database.deadlocks never moved past {before}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
