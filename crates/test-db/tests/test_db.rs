//! `TestDb` against a real server: isolation, the migrated schema, and cleanup on drop.

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use lockstep_test_db::TestDb;

fn table_exists(conn: &mut PgConnection, table: &str) -> bool {
    diesel::select(sql::<Bool>(&format!(
        "to_regclass('public.{table}') IS NOT NULL"
    )))
    .get_result(conn)
    .unwrap()
}

/// Whether the server has a database called `name`; `pg_database` is the same from any database.
fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    diesel::select(
        sql::<Bool>("EXISTS (SELECT 1 FROM pg_database WHERE datname = ")
            .bind::<Text, _>(name)
            .sql(")"),
    )
    .get_result(conn)
    .unwrap()
}

#[test]
fn test_dbs_are_distinct_and_isolated() {
    let first = TestDb::new();
    let second = TestDb::new();
    assert_ne!(first.name(), second.name());
    assert_ne!(first.url(), second.url());

    first
        .connect()
        .batch_execute("CREATE TABLE only_in_first (id int)")
        .unwrap();

    assert!(table_exists(&mut first.connect(), "only_in_first"));
    assert!(!table_exists(&mut second.connect(), "only_in_first"));
}

#[test]
fn test_db_has_the_migrated_schema() {
    let db = TestDb::new();
    assert!(table_exists(&mut db.connect(), "ci_builds"));
    assert!(table_exists(
        &mut db.connect(),
        "__diesel_schema_migrations"
    ));
}

#[test]
fn connect_and_pool_reach_the_test_db_itself() {
    let db = TestDb::new();
    let current = || sql::<Text>("current_database()");
    let direct: String = diesel::select(current())
        .get_result(&mut db.connect())
        .unwrap();
    let pool = db.pool(2);
    let pooled: String = diesel::select(current())
        .get_result(&mut pool.get().unwrap())
        .unwrap();
    assert_eq!(direct, db.name());
    assert_eq!(pooled, db.name());
}

#[test]
fn dropping_a_test_db_drops_its_database_even_with_open_connections() {
    let observer = TestDb::new();
    let db = TestDb::new();
    let name = db.name().to_owned();
    let still_open = db.pool(1);
    let _conn = still_open.get().unwrap();
    assert!(database_exists(&mut observer.connect(), &name));

    drop(db);

    assert!(!database_exists(&mut observer.connect(), &name));
}

#[test]
fn test_db_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TestDb>();
}
