//! Build logs: who may append where, how reads stitch chunks, and racing appends.

use crate::support::{Fixture, LEASE, job, now, refusal};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary};
use lockstep_domain::{BuildId, BuildResult, BuildStatus, RunnerId, TransitionError};
use lockstep_storage_pg::{
    LogSlice, MAX_LOG_BYTES, StorageError, append_log, read_log, register_runner,
};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// A fixture whose runner holds a running build.
fn running() -> (Fixture, BuildId, RunnerId) {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire().expect("a pending build").id;
    let runner = f.runner;
    (f, build, runner)
}

fn chunks(conn: &mut PgConnection, build: BuildId) -> i64 {
    diesel::dsl::select(diesel::dsl::sql::<BigInt>(&format!(
        "(SELECT count(*) FROM build_log_chunks WHERE build_id = {})",
        build.0
    )))
    .get_result(conn)
    .expect("count chunks")
}

fn log_offset(err: StorageError) -> u64 {
    match err {
        StorageError::LogOffset { end } => end,
        other => panic!("expected LogOffset, got: {other}"),
    }
}

/// "hello " + "big " + "world", as three chunks: [0, 6), [6, 10), [10, 15).
fn hello_big_world(f: &mut Fixture, build: BuildId, runner: RunnerId) {
    assert_eq!(
        append_log(&mut f.conn, build, runner, 0, b"hello ").unwrap(),
        6
    );
    assert_eq!(
        append_log(&mut f.conn, build, runner, 6, b"big ").unwrap(),
        10
    );
    assert_eq!(
        append_log(&mut f.conn, build, runner, 10, b"world").unwrap(),
        15
    );
}

#[test]
fn appends_continue_where_the_log_ends_and_read_back_whole() {
    let (mut f, build, runner) = running();
    hello_big_world(&mut f, build, runner);
    assert_eq!(chunks(&mut f.conn, build), 3);
    let slice = read_log(&mut f.conn, build, 0, 1024).unwrap();
    assert_eq!(
        slice,
        LogSlice {
            data: b"hello big world".to_vec(),
            next_offset: 15,
            complete: false,
            end: 15,
        }
    );
}

#[test]
fn a_read_stitches_slices_across_chunk_boundaries() {
    let (mut f, build, runner) = running();
    hello_big_world(&mut f, build, runner);
    let read = |f: &mut Fixture, offset, max| read_log(&mut f.conn, build, offset, max).unwrap();
    assert_eq!(
        read(&mut f, 3, 2).end,
        15,
        "a slice says where the whole log ends"
    );

    // Starts inside the first chunk, spans the second, ends inside the third.
    let middle = read(&mut f, 3, 9);
    assert_eq!(middle.data, b"lo big wo");
    assert_eq!(middle.next_offset, 12);
    // Exactly one chunk, and one byte either side of a boundary.
    assert_eq!(read(&mut f, 6, 4).data, b"big ");
    assert_eq!(read(&mut f, 5, 2).data, b" b");
    // Past the end is cut at the end; at the end is empty; a zero window is empty.
    let tail = read(&mut f, 12, 100);
    assert_eq!((tail.data.as_slice(), tail.next_offset), (&b"rld"[..], 15));
    let at_end = read(&mut f, 15, 100);
    assert_eq!((at_end.data.len(), at_end.next_offset), (0, 15));
    let nothing = read(&mut f, 4, 0);
    assert_eq!((nothing.data.len(), nothing.next_offset), (0, 4));

    // Paging through in 4-byte steps gives back the whole log.
    let mut whole = Vec::new();
    let mut offset = 0;
    loop {
        let page = read(&mut f, offset, 4);
        if page.data.is_empty() {
            break;
        }
        assert!(page.data.len() <= 4);
        whole.extend(page.data);
        offset = page.next_offset;
    }
    assert_eq!(whole, b"hello big world");
}

#[test]
fn a_log_is_complete_only_once_its_build_finished_and_the_end_was_read() {
    let (mut f, build, runner) = running();
    append_log(&mut f.conn, build, runner, 0, b"done\n").unwrap();
    assert!(!read_log(&mut f.conn, build, 0, 100).unwrap().complete);
    f.tx()
        .finish(build, runner, BuildResult::Success, now())
        .unwrap();
    assert!(read_log(&mut f.conn, build, 0, 100).unwrap().complete);
    assert!(read_log(&mut f.conn, build, 5, 100).unwrap().complete);
    let partial = read_log(&mut f.conn, build, 0, 2).unwrap();
    assert_eq!((partial.next_offset, partial.complete), (2, false));
}

#[test]
fn a_build_that_never_ran_has_an_empty_log_complete_once_it_ends() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a")]);
    let build = created.builds[0];
    let pending = read_log(&mut f.conn, build, 0, 100).unwrap();
    assert_eq!((pending.data.len(), pending.complete), (0, false));
    f.tx().cancel_build(build, now()).unwrap();
    let canceled = read_log(&mut f.conn, build, 0, 100).unwrap();
    assert_eq!((canceled.data.len(), canceled.complete), (0, true));
}

#[test]
fn reading_an_unknown_build_or_past_the_end_is_refused() {
    let (mut f, build, runner) = running();
    append_log(&mut f.conn, build, runner, 0, b"abc").unwrap();
    assert_eq!(
        log_offset(read_log(&mut f.conn, build, 4, 100).unwrap_err()),
        3
    );
    assert_eq!(
        log_offset(read_log(&mut f.conn, build, u64::MAX, 100).unwrap_err()),
        3
    );
    let err = read_log(&mut f.conn, BuildId(999), 0, 100).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "build",
                id: 999
            }
        ),
        "{err}"
    );
}

#[test]
fn an_append_away_from_the_end_is_refused_with_the_end() {
    let (mut f, build, runner) = running();
    append_log(&mut f.conn, build, runner, 0, b"0123456789").unwrap();
    assert_eq!(
        log_offset(append_log(&mut f.conn, build, runner, 11, b"gap").unwrap_err()),
        10
    );
    assert_eq!(
        log_offset(append_log(&mut f.conn, build, runner, 4, b"overlap").unwrap_err()),
        10
    );
    assert_eq!(
        log_offset(append_log(&mut f.conn, build, runner, u64::MAX, b"x").unwrap_err()),
        10
    );
    // Empty data at the end answers where the log ends and writes nothing.
    assert_eq!(append_log(&mut f.conn, build, runner, 10, b"").unwrap(), 10);
    assert_eq!(
        log_offset(append_log(&mut f.conn, build, runner, 3, b"").unwrap_err()),
        10
    );
    assert_eq!(chunks(&mut f.conn, build), 1);
    assert_eq!(
        read_log(&mut f.conn, build, 0, 100).unwrap().data,
        b"0123456789"
    );
}

#[test]
fn only_the_runner_holding_the_build_may_append() {
    let (mut f, build, runner) = running();
    let stranger = register_runner(&mut f.conn, "stranger", &[], b"hash-2")
        .unwrap()
        .id;
    let err = append_log(&mut f.conn, build, stranger, 0, b"x").unwrap_err();
    assert_eq!(
        refusal(err),
        TransitionError::NotHolder {
            build,
            runner: stranger
        }
    );

    // A build nobody has claimed yet.
    let waiting = f.create(vec![job("b")]).builds[0];
    let err = append_log(&mut f.conn, waiting, runner, 0, b"x").unwrap_err();
    assert!(matches!(refusal(err), TransitionError::NotHolder { .. }));

    let err = append_log(&mut f.conn, BuildId(999), runner, 0, b"x").unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotFound {
                entity: "build",
                id: 999
            }
        ),
        "{err}"
    );
    assert_eq!(chunks(&mut f.conn, build), 0);
}

#[test]
fn a_build_asked_to_stop_still_takes_its_log_but_a_finished_one_does_not() {
    let (mut f, build, runner) = running();
    f.tx().cancel_build(build, now()).unwrap();
    assert_eq!(
        f.tx()
            .heartbeat(build, runner, LEASE, now())
            .unwrap()
            .status,
        BuildStatus::Canceling
    );
    assert_eq!(
        append_log(&mut f.conn, build, runner, 0, b"bye").unwrap(),
        3
    );
    f.tx()
        .finish(build, runner, BuildResult::Canceled, now())
        .unwrap();
    let err = append_log(&mut f.conn, build, runner, 3, b"late").unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Transition(TransitionError::LeaseLost { build: b, status: BuildStatus::Canceled }) if b == build
        ),
        "{err}"
    );
    assert_eq!(read_log(&mut f.conn, build, 0, 100).unwrap().data, b"bye");
}

#[test]
fn a_log_cannot_grow_past_the_limit() {
    let (mut f, build, runner) = running();
    // Appending 64 MiB would make a slow test; one fake chunk ending 5 bytes short of the limit
    // puts the log's end there just as well (the gap before it only matters to reads).
    let near = i64::try_from(MAX_LOG_BYTES).unwrap() - 10;
    diesel::sql_query(
        "INSERT INTO build_log_chunks (build_id, byte_offset, data) VALUES ($1, $2, $3)",
    )
    .bind::<BigInt, _>(build.0)
    .bind::<BigInt, _>(near)
    .bind::<Binary, _>(b"12345".as_slice())
    .execute(&mut f.conn)
    .unwrap();
    let end = MAX_LOG_BYTES - 5;
    let err = append_log(&mut f.conn, build, runner, end, b"123456").unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::LogTooLarge {
                limit: MAX_LOG_BYTES
            }
        ),
        "{err}"
    );
    assert_eq!(
        append_log(&mut f.conn, build, runner, end, b"12345").unwrap(),
        MAX_LOG_BYTES
    );
    let err = append_log(&mut f.conn, build, runner, MAX_LOG_BYTES, b"1").unwrap_err();
    assert!(matches!(err, StorageError::LogTooLarge { .. }), "{err}");
    assert_eq!(
        append_log(&mut f.conn, build, runner, MAX_LOG_BYTES, b"").unwrap(),
        MAX_LOG_BYTES
    );
}

/// Two connections append at the same offset at once, round after round: exactly one wins each
/// round, and the other is told where the log now ends.
#[test]
fn of_two_racing_appends_at_one_offset_exactly_one_wins() {
    const ROUNDS: u64 = 20;
    const CHUNK: u64 = 8;
    let (f, build, runner) = running();
    let barrier = Barrier::new(2);
    let results: Vec<Vec<Result<u64, StorageError>>> = std::thread::scope(|s| {
        let handles: Vec<_> = [b'a', b'b']
            .into_iter()
            .map(|byte| {
                let (db, barrier) = (&f.db, &barrier);
                s.spawn(move || {
                    let mut conn = db.connect();
                    (0..ROUNDS)
                        .map(|round| {
                            barrier.wait();
                            let data = [byte; 8];
                            append_log(&mut conn, build, runner, round * CHUNK, &data)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut conn = f.db.connect();
    let log = read_log(&mut conn, build, 0, 1024).unwrap().data;
    assert_eq!(log.len(), usize::try_from(ROUNDS * CHUNK).unwrap());
    for (round, (a, b)) in (0..ROUNDS).zip(results[0].iter().zip(&results[1])) {
        let end = (round + 1) * CHUNK;
        let winner = match (a, b) {
            (Ok(e), Err(StorageError::LogOffset { end: lost })) if *e == end && *lost == end => {
                b'a'
            }
            (Err(StorageError::LogOffset { end: lost }), Ok(e)) if *e == end && *lost == end => {
                b'b'
            }
            other => panic!("round {round}: expected one winner, got {other:?}"),
        };
        let start = usize::try_from(round * CHUNK).unwrap();
        assert_eq!(log[start..start + 8], [winner; 8], "round {round}");
    }
}

/// The slow path made certain: an append that must wait for an uncommitted append at the same
/// offset loses once that commits, and reports the end the winner made.
#[test]
fn an_append_waiting_on_another_at_its_offset_loses_when_that_commits() {
    let (f, build, runner) = running();
    let mut first = f.db.connect();
    let mut watcher = f.db.connect();
    // A transaction opened by hand, so that it can stay open while another thread runs.
    diesel::sql_query("BEGIN").execute(&mut first).unwrap();
    assert_eq!(
        append_log(&mut first, build, runner, 0, b"first").unwrap(),
        5
    );
    let lost = std::thread::scope(|s| {
        let second = s.spawn(|| {
            let mut conn = f.db.connect();
            append_log(&mut conn, build, runner, 0, b"second!")
        });
        wait_until_someone_waits_for_a_lock(&mut watcher);
        diesel::sql_query("COMMIT").execute(&mut first).unwrap();
        second.join().unwrap()
    });
    assert_eq!(log_offset(lost.unwrap_err()), 5);
    assert_eq!(
        read_log(&mut watcher, build, 0, 100).unwrap().data,
        b"first"
    );
}

fn wait_until_someone_waits_for_a_lock(watcher: &mut PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = diesel::dsl::select(diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
        .get_result(watcher)
        .expect("read pg_stat_activity");
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the second append never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
}
