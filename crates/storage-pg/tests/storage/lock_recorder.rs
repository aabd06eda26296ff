//! Records the row locks a transaction really takes, in the order PostgreSQL grants them.
//!
//! Before the transaction starts, every row of the lockable tables is locked by a blocker
//! connection of its own. Any row lock or UPDATE the transaction then takes on an existing row
//! must wait for that blocker; the recorder watches `pg_blocking_pids`, notes which row the
//! transaction waits for (and in which of its transactions), and releases that one
//! blocker. The result is the exact sequence of existing rows the code under test locked,
//! whatever code path or SQL it used to do it.

use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use lockstep_storage_pg::Table;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// One row lock: which transaction locked which row. A transaction is told apart by its start
/// time, since it has no xid yet while it waits for its first lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowLock {
    pub(crate) xact: String,
    pub(crate) table: Table,
    pub(crate) id: i64,
}

impl fmt::Display for RowLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{} (transaction of {})",
            self.table.name(),
            self.id,
            self.xact
        )
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct XactStart {
    #[diesel(sql_type = Nullable<Text>)]
    xact_start: Option<String>,
}

struct Blocker {
    table: Table,
    id: i64,
    conn: PgConnection,
}

fn pid(conn: &mut PgConnection) -> i32 {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .expect("backend pid")
        .pid
}

/// Locks every row of the lockable tables except those `spare` returns true for, each from a
/// connection of its own.
fn hold_rows(url: &str, spare: &dyn Fn(Table, i64) -> bool) -> HashMap<i32, Blocker> {
    let mut setup = PgConnection::establish(url).expect("connect");
    let mut blockers = HashMap::new();
    for table in Table::ORDER {
        let key = table.key_column();
        let ids = diesel::sql_query(format!(
            "SELECT {key} AS id FROM {} ORDER BY {key}",
            table.name()
        ))
        .load::<Id>(&mut setup)
        .expect("list rows");
        for Id { id } in ids {
            if spare(table, id) {
                continue;
            }
            let mut conn = PgConnection::establish(url).expect("connect blocker");
            let blocker_pid = pid(&mut conn);
            diesel::sql_query("BEGIN")
                .execute(&mut conn)
                .expect("begin");
            diesel::sql_query(format!(
                "SELECT {key} FROM {} WHERE {key} = $1 FOR NO KEY UPDATE",
                table.name()
            ))
            .bind::<BigInt, _>(id)
            .execute(&mut conn)
            .expect("hold row");
            blockers.insert(blocker_pid, Blocker { table, id, conn });
        }
    }
    blockers
}

/// Runs `body` on a connection of its own while every existing row (but the spared ones) is
/// held, and returns the row locks it took, in order. Panics if `body` panics or waits on
/// anything but a held row.
pub(crate) fn record_locks<T: Send>(
    url: &str,
    spare: &dyn Fn(Table, i64) -> bool,
    body: impl FnOnce(&mut PgConnection) -> T + Send,
) -> (T, Vec<RowLock>) {
    let blockers = hold_rows(url, spare);
    let mut monitor = PgConnection::establish(url).expect("connect monitor");
    let mut conn = PgConnection::establish(url).expect("connect subject");
    let subject = pid(&mut conn);
    // Everything the watcher owns moves into the scope, so that if it panics the blockers are
    // dropped (releasing their rows) while unwinding, before the scope joins the subject;
    // otherwise a failing check would hang instead of failing.
    std::thread::scope(move |scope| {
        let mut blockers = blockers;
        let mut locks = Vec::new();
        let mut released = std::collections::HashSet::new();
        let handle = scope.spawn(move || body(&mut conn));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the transaction under test hung; locks so far: {locks:?}"
            );
            for blocker_pid in blocking_pids(&mut monitor, subject) {
                if released.contains(&blocker_pid) {
                    // The subject has not run since that blocker let go (seen on a loaded
                    // machine); its next wait, if any, shows on a later poll.
                    continue;
                }
                if !in_this_database(&mut monitor, blocker_pid) {
                    // Row locks are per database, so this wait is not one the code under test
                    // took on a row (seen once under load: a shared lock of another test's
                    // database work); the next poll shows the real one, if any.
                    continue;
                }
                let Some(blocker) = blockers.remove(&blocker_pid) else {
                    panic!(
                        "the transaction under test waits on pid {blocker_pid}, which holds no \
                         recorded row: {}",
                        describe(&mut monitor, blocker_pid)
                    );
                };
                locks.push(RowLock {
                    xact: transaction_of(&mut monitor, subject),
                    table: blocker.table,
                    id: blocker.id,
                });
                release(blocker);
                released.insert(blocker_pid);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(blockers);
        (
            handle.join().expect("the transaction under test panicked"),
            locks,
        )
    })
}

/// Rolls the blocker back. Unlike closing its connection, which the server finishes at its own
/// pace, a ROLLBACK has released the row by the time it returns, so the next poll cannot see
/// the old blocker again.
fn release(mut blocker: Blocker) {
    diesel::sql_query("ROLLBACK")
        .execute(&mut blocker.conn)
        .expect("release row");
}

fn blocking_pids(monitor: &mut PgConnection, subject: i32) -> Vec<i32> {
    diesel::sql_query("SELECT unnest(pg_blocking_pids($1)) AS pid")
        .bind::<Integer, _>(subject)
        .load::<Pid>(monitor)
        .expect("pg_blocking_pids")
        .into_iter()
        .map(|p| p.pid)
        .collect()
}

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Nullable<Text>)]
    activity: Option<String>,
}

#[derive(QueryableByName)]
struct Same {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    same: bool,
}

/// Whether a backend is connected to the monitor's database.
fn in_this_database(monitor: &mut PgConnection, pid: i32) -> bool {
    diesel::sql_query(
        "SELECT coalesce((SELECT datname = current_database() FROM pg_stat_activity \
         WHERE pid = $1), false) AS same",
    )
    .bind::<Integer, _>(pid)
    .get_result::<Same>(monitor)
    .is_ok_and(|s| s.same)
}

/// What a backend is, does and waits for, to tell an unexpected blocker apart.
fn describe(monitor: &mut PgConnection, pid: i32) -> String {
    diesel::sql_query(
        "SELECT concat_ws(' | ', backend_type, datname, state, wait_event_type, wait_event, \
         left(query, 200)) AS activity FROM pg_stat_activity WHERE pid = $1",
    )
    .bind::<Integer, _>(pid)
    .get_result::<Activity>(monitor)
    .ok()
    .and_then(|a| a.activity)
    .unwrap_or_else(|| "gone".to_owned())
}

fn transaction_of(monitor: &mut PgConnection, subject: i32) -> String {
    diesel::sql_query("SELECT xact_start::text AS xact_start FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(subject)
        .get_result::<XactStart>(monitor)
        .expect("transaction start")
        .xact_start
        .expect("a waiting backend is in a transaction")
}

/// Checks the canonical order within each transaction: tables in `Table::ORDER`, never going
/// back up, and ids ascending within a table.
pub(crate) fn check_order(locks: &[RowLock]) -> Result<(), String> {
    let mut last: HashMap<&str, (Table, i64)> = HashMap::new();
    for lock in locks {
        if let Some(&(table, id)) = last.get(lock.xact.as_str())
            && (lock.table, lock.id) <= (table, id)
        {
            return Err(format!(
                "{lock} was locked after {}#{id}: out of the canonical order",
                table.name()
            ));
        }
        last.insert(&lock.xact, (lock.table, lock.id));
    }
    Ok(())
}

/// The transactions of a recording, in order, each with its locks as (table, id).
pub(crate) fn by_transaction(locks: &[RowLock]) -> Vec<Vec<(Table, i64)>> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<(Table, i64)>> = HashMap::new();
    for lock in locks {
        if !groups.contains_key(lock.xact.as_str()) {
            order.push(&lock.xact);
        }
        groups
            .entry(&lock.xact)
            .or_default()
            .push((lock.table, lock.id));
    }
    order
        .into_iter()
        .map(|xact| groups.remove(xact).unwrap_or_default())
        .collect()
}
