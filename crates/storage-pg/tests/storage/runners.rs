//! Runners: registration, token authentication with throttled contact times, retirement.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use lockstep_domain::RunnerId;
use lockstep_storage_pg::{
    RunnerView, StorageError, authenticate_runner, register_runner, retire_runner,
};
use lockstep_test_db::TestDb;

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Contact {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    contacted_at: Option<DateTime<Utc>>,
    /// The row version's creating transaction: it changes whenever the row is written.
    #[diesel(sql_type = Text)]
    version: String,
}

fn contact(conn: &mut PgConnection, runner: RunnerId) -> Contact {
    diesel::sql_query("SELECT contacted_at, xmin::text AS version FROM runners WHERE id = $1")
        .bind::<BigInt, _>(runner.0)
        .get_result(conn)
        .expect("runner row")
}

fn register(conn: &mut PgConnection) -> RunnerView {
    let tags = vec!["linux".to_owned(), "docker".to_owned()];
    register_runner(conn, "builder", &tags, b"token-hash").unwrap()
}

/// Whole seconds, as PostgreSQL keeps microseconds and the test compares stored values.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp")
}

#[test]
fn a_registered_runner_authenticates_by_its_token_hash_only() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let runner = register(&mut conn);
    assert_eq!(runner.name, "builder");
    assert_eq!(runner.tags, ["linux", "docker"]);
    let found = authenticate_runner(&mut conn, b"token-hash", t0()).unwrap();
    assert_eq!(found, Some(runner));
    assert_eq!(
        authenticate_runner(&mut conn, b"other-hash", t0()).unwrap(),
        None
    );
}

#[test]
fn contact_is_written_at_most_once_per_30_seconds() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let runner = register(&mut conn);
    assert_eq!(contact(&mut conn, runner.id).contacted_at, None);

    authenticate_runner(&mut conn, b"token-hash", t0()).unwrap();
    let first = contact(&mut conn, runner.id);
    assert_eq!(first.contacted_at, Some(t0()));

    // Same instant, and 30 seconds later: the row is not written again.
    authenticate_runner(&mut conn, b"token-hash", t0()).unwrap();
    authenticate_runner(&mut conn, b"token-hash", t0() + TimeDelta::seconds(30)).unwrap();
    assert_eq!(contact(&mut conn, runner.id), first);

    // An earlier clock (another replica's) never moves it back.
    authenticate_runner(&mut conn, b"token-hash", t0() - TimeDelta::seconds(60)).unwrap();
    assert_eq!(contact(&mut conn, runner.id), first);

    let later = t0() + TimeDelta::seconds(31);
    authenticate_runner(&mut conn, b"token-hash", later).unwrap();
    let second = contact(&mut conn, runner.id);
    assert_eq!(second.contacted_at, Some(later));
    assert_ne!(second.version, first.version);
}

#[test]
fn a_retired_runner_no_longer_authenticates_and_retiring_again_is_harmless() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let runner = register(&mut conn);
    retire_runner(&mut conn, runner.id, t0()).unwrap();
    assert_eq!(
        authenticate_runner(&mut conn, b"token-hash", t0()).unwrap(),
        None
    );
    let after_first = contact(&mut conn, runner.id);
    assert_eq!(
        after_first.contacted_at, None,
        "a refused runner is not contacted"
    );

    retire_runner(&mut conn, runner.id, t0() + TimeDelta::seconds(5)).unwrap();
    assert_eq!(
        contact(&mut conn, runner.id).version,
        after_first.version,
        "retiring twice writes nothing"
    );
    let retired_at = diesel::select(diesel::dsl::sql::<Nullable<Timestamptz>>(
        "(SELECT retired_at FROM runners)",
    ))
    .get_result::<Option<DateTime<Utc>>>(&mut conn)
    .unwrap();
    assert_eq!(retired_at, Some(t0()), "the first retirement time stays");
}

#[test]
fn retiring_an_unknown_runner_is_not_found() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let err = retire_runner(&mut conn, RunnerId(7), t0()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "runner",
                id: 7
            }
        ),
        "{err}"
    );
}
