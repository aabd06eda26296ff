//! Transactions with bounded, jittered retries of deadlocks and serialization failures.
//!
//! Every use case runs its body through [`transaction`]: the whole body is re-run from the start
//! in a fresh transaction, never resumed, so a retried transition commits whole or not at all.
//! A body that plans ([`planned_transaction`]) is also told whether an earlier attempt's plan
//! was overtaken, so that it can lock before it plans and not be overtaken again.

use crate::{StorageError, TransitionKind, TxStats};
use diesel::connection::Connection;
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::fmt;
use std::time::Duration;

/// Attempts per transaction, the first included.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// A reason to run a transaction again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlState {
    /// SQLSTATE 40P01. The lock order exists so that this never happens.
    Deadlock,
    /// SQLSTATE 40001.
    SerializationFailure,
    /// Not a server error: rows a transition planned around changed before it locked them, in a
    /// way that needs rows it had not planned to lock. Re-planning from scratch is always safe.
    PlanChanged,
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deadlock => "40P01 deadlock detected",
            Self::SerializationFailure => "40001 serialization failure",
            Self::PlanChanged => "rows changed while planning",
        })
    }
}

impl SqlState {
    /// Classifies an error. Diesel maps 40001 to a kind of its own but not 40P01, whose
    /// server message ("deadlock detected") we match instead; Lockstep's clusters run with
    /// `lc_messages=C` so the message is not translated.
    pub fn of(error: &StorageError) -> Option<Self> {
        match error {
            StorageError::Database(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _,
            )) => Some(Self::SerializationFailure),
            StorageError::Database(DieselError::DatabaseError(_, info))
                if info.message().starts_with("deadlock detected") =>
            {
                Some(Self::Deadlock)
            }
            StorageError::PlanChanged => Some(Self::PlanChanged),
            _ => None,
        }
    }
}

/// How an attempt of a transition plans, relative to its row locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Planning {
    /// Plan from a plain read, then lock exactly what the plan changes and check it is unchanged:
    /// the fewest locks, and the first attempt of every transaction.
    Optimistic,
    /// An earlier attempt's rows changed under its plan ([`SqlState::PlanChanged`]). Planning
    /// optimistically again can be overtaken again, and under load it was, five times in a row;
    /// so lock everything the plan could need first, in the canonical order, and plan from the
    /// rows as locked.
    LockFirst,
}

/// Runs `body` in a transaction, retrying it whole on a retryable error. Counts the retries;
/// the caller counts the transition, since only it knows whether anything changed.
pub(crate) fn transaction<T>(
    conn: &mut PgConnection,
    stats: &TxStats,
    kind: TransitionKind,
    mut body: impl FnMut(&mut PgConnection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    planned_transaction(conn, stats, kind, |conn, _| body(conn))
}

/// [`transaction`] for a body that plans: each attempt is told how to plan. Every attempt after
/// one that failed with [`SqlState::PlanChanged`] plans [`Planning::LockFirst`]; a deadlock or a
/// serialization failure alone does not change how the next attempt plans.
pub(crate) fn planned_transaction<T>(
    conn: &mut PgConnection,
    stats: &TxStats,
    kind: TransitionKind,
    mut body: impl FnMut(&mut PgConnection, Planning) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let mut attempt = 1;
    let mut planning = Planning::Optimistic;
    loop {
        let error = match conn.transaction(|conn| body(conn, planning)) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(cause) = SqlState::of(&error) else {
            return Err(error);
        };
        stats.observed(cause);
        if cause == SqlState::PlanChanged {
            planning = Planning::LockFirst;
        }
        if attempt >= MAX_ATTEMPTS {
            stats.gave_up();
            tracing::error!(transition = kind.as_str(), attempts = attempt, %cause, "transaction gave up");
            return Err(StorageError::Contention {
                attempts: attempt,
                last: cause,
            });
        }
        tracing::warn!(transition = kind.as_str(), attempt, %cause, "retrying transaction");
        std::thread::sleep(backoff(attempt));
        attempt += 1;
    }
}

/// Full jitter over an exponentially growing cap, so that transactions that collided once do
/// not collide again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 1u64 << attempt.min(6);
    Duration::from_micros(fastrand::u64(100..=cap_ms * 1_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::RunQueryDsl;
    use lockstep_test_db::TestDb;
    use std::sync::Barrier;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..20 {
            let cap = Duration::from_millis(1 << attempt.min(6));
            for _ in 0..100 {
                let pause = backoff(attempt);
                assert!(pause <= cap, "attempt {attempt}: {pause:?} > {cap:?}");
                assert!(pause >= Duration::from_micros(100));
            }
        }
    }

    fn lock(conn: &mut PgConnection, table: &str, id: i64) -> Result<(), StorageError> {
        diesel::sql_query(format!(
            "SELECT id FROM {table} WHERE id = $1 FOR NO KEY UPDATE"
        ))
        .bind::<diesel::sql_types::BigInt, _>(id)
        .execute(conn)?;
        Ok(())
    }

    fn seed(db: &TestDb) -> (i64, i64) {
        let mut conn = db.connect();
        diesel::sql_query("INSERT INTO projects (name) VALUES ('p')")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query("INSERT INTO projects (name) VALUES ('q')")
            .execute(&mut conn)
            .unwrap();
        (1, 2)
    }

    /// Two transactions take two rows in opposite order on their first attempt. PostgreSQL kills
    /// one (rarely both); the wrapper must retry it (in the right order this time) and count
    /// the 40P01.
    #[test]
    fn a_deadlock_is_retried_and_counted() {
        let db = TestDb::new();
        let (a, b) = seed(&db);
        let stats = TxStats::default();
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            for (first, second) in [(a, b), (b, a)] {
                let (db, stats, barrier) = (&db, &stats, &barrier);
                s.spawn(move || {
                    let mut conn = db.connect();
                    let mut attempt = 0;
                    transaction(&mut conn, stats, TransitionKind::Refresh, |conn| {
                        attempt += 1;
                        let (x, y) = if attempt == 1 {
                            (first, second)
                        } else {
                            (first.min(second), first.max(second))
                        };
                        lock(conn, "projects", x)?;
                        if attempt == 1 {
                            barrier.wait();
                        }
                        lock(conn, "projects", y)
                    })
                    .expect("the retry succeeds");
                });
            }
        });
        // At least one: on a loaded machine both backends can run their deadlock check before
        // the first victim's abort has released its lock, and both are then killed (and retried).
        let snapshot = stats.snapshot();
        assert!(snapshot.deadlocks >= 1, "{snapshot:?}");
        assert_eq!(snapshot.gave_up, 0);
    }

    /// A serializable read-then-write race: one of two transactions fails with 40001 and is
    /// retried.
    #[test]
    fn a_serialization_failure_is_retried_and_counted() {
        let db = TestDb::new();
        seed(&db);
        let stats = TxStats::default();
        let barrier = Barrier::new(2);
        std::thread::scope(|s| {
            for name in ["x", "y"] {
                let (db, stats, barrier) = (&db, &stats, &barrier);
                s.spawn(move || {
                    let mut conn = db.connect();
                    let mut attempt = 0;
                    transaction(&mut conn, stats, TransitionKind::Refresh, |conn| {
                        attempt += 1;
                        diesel::sql_query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                            .execute(conn)?;
                        diesel::sql_query("SELECT count(*) FROM projects").execute(conn)?;
                        if attempt == 1 {
                            barrier.wait();
                        }
                        diesel::sql_query(format!("INSERT INTO projects (name) VALUES ('{name}')"))
                            .execute(conn)?;
                        Ok(())
                    })
                    .expect("the retry succeeds");
                });
            }
        });
        // At least one: on a loaded machine a retry can race the other transaction's first
        // attempt again before it commits, and fail (and be counted) once more.
        let snapshot = stats.snapshot();
        assert!(snapshot.serialization_failures >= 1, "{snapshot:?}");
        assert_eq!(snapshot.gave_up, 0);
    }

    #[test]
    fn retries_are_bounded() {
        let db = TestDb::new();
        let mut conn = db.connect();
        let stats = TxStats::default();
        let mut calls = 0;
        let result: Result<(), _> = transaction(&mut conn, &stats, TransitionKind::Refresh, |_| {
            calls += 1;
            Err(StorageError::PlanChanged)
        });
        assert!(matches!(
            result,
            Err(StorageError::Contention {
                attempts: MAX_ATTEMPTS,
                last: SqlState::PlanChanged
            })
        ));
        assert_eq!(calls, MAX_ATTEMPTS);
        let snapshot = stats.snapshot();
        assert_eq!(
            (snapshot.replans, snapshot.gave_up),
            (u64::from(MAX_ATTEMPTS), 1)
        );
    }

    /// The first attempt plans optimistically, and so does a retry after a deadlock; every
    /// attempt after a replan locks first.
    #[test]
    fn a_replan_makes_every_later_attempt_lock_first() {
        let db = TestDb::new();
        let mut conn = db.connect();
        let stats = TxStats::default();
        let deadlock = || {
            StorageError::Database(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("deadlock detected".to_owned()),
            ))
        };
        let mut seen = Vec::new();
        let result: Result<(), _> =
            planned_transaction(&mut conn, &stats, TransitionKind::Refresh, |_, planning| {
                seen.push(planning);
                match seen.len() {
                    1 => Err(deadlock()),
                    2 => Err(StorageError::PlanChanged),
                    3 => Err(deadlock()),
                    _ => Ok(()),
                }
            });
        result.expect("the fourth attempt succeeds");
        let (optimistic, lock_first) = (Planning::Optimistic, Planning::LockFirst);
        assert_eq!(seen, [optimistic, optimistic, lock_first, lock_first]);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let db = TestDb::new();
        let mut conn = db.connect();
        let stats = TxStats::default();
        let mut calls = 0;
        let result: Result<(), _> = transaction(&mut conn, &stats, TransitionKind::Refresh, |_| {
            calls += 1;
            Err(StorageError::NotFound {
                entity: "build",
                id: 1,
            })
        });
        assert!(matches!(result, Err(StorageError::NotFound { .. })));
        assert_eq!(calls, 1);
    }

    #[test]
    fn only_retryable_errors_are_classified() {
        assert_eq!(
            SqlState::of(&StorageError::PlanChanged),
            Some(SqlState::PlanChanged)
        );
        assert_eq!(
            SqlState::of(&StorageError::Database(DieselError::NotFound)),
            None
        );
        assert_eq!(SqlState::of(&StorageError::corrupt("x")), None);
    }
}
