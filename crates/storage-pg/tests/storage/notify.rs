//! The notification channels: which writes wake listening runners and watches or refresh the
//! dashboard's live pages, and which stay silent.

use crate::support::{Fixture, JobExt, LEASE, job, now};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use lockstep_domain::{BuildResult, When};
use lockstep_storage_pg::{
    CANCELING_CHANNEL, Canceling, Ids, LOGS_CHANNEL, Listener, Notice, PENDING_CHANNEL,
    PIPELINES_CHANNEL, Pending, append_log, older_transactions_done, register_viewers,
};
use std::time::{Duration, Instant};

const SENTINEL: &str = "sentinel";

fn listen(f: &Fixture) -> PgConnection {
    listen_on(f, PENDING_CHANNEL)
}

fn listen_on(f: &Fixture, channel: &str) -> PgConnection {
    let mut listener = f.db.connect();
    diesel::sql_query(format!("LISTEN {channel}"))
        .execute(&mut listener)
        .expect("listen");
    listener
}

/// Storage's asynchronous [`Listener`], driven from these synchronous tests.
struct BlockingListener {
    runtime: tokio::runtime::Runtime,
    listener: Listener,
}

impl BlockingListener {
    fn connect(f: &Fixture) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(Listener::connect(f.db.url()))
            .expect("listening");
        Self { runtime, listener }
    }

    /// The next notification for runners (pending or canceling), within 10 s: the dashboard's
    /// channels are left to [`Self::next_any`].
    fn next(&mut self) -> Notice {
        loop {
            let notice = self.next_any();
            if matches!(notice, Notice::Pending(_) | Notice::Canceling(_)) {
                return notice;
            }
        }
    }

    /// The next notification on any channel, within 10 s.
    fn next_any(&mut self) -> Notice {
        // The timer must be made inside the runtime, so the timeout goes in an async block.
        let listener = &mut self.listener;
        let wait = async { tokio::time::timeout(Duration::from_secs(10), listener.next()).await };
        self.runtime
            .block_on(wait)
            .expect("a notification within 10 s")
            .expect("the connection holds")
    }
}

/// The payloads `listener` received on `channel` since the last call. A sentinel notification
/// is sent after the writes under test, from the writing connection: PostgreSQL delivers one
/// sender's notifications in commit order, so once the sentinel arrives everything before it
/// has too. That makes "nothing arrived" as reliable as "something arrived".
fn received(writer: &mut PgConnection, listener: &mut PgConnection, channel: &str) -> Vec<String> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(channel)
        .bind::<Text, _>(SENTINEL)
        .execute(writer)
        .expect("send the sentinel");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut payloads = Vec::new();
    loop {
        // A round trip makes the client read whatever the server has sent meanwhile.
        diesel::sql_query("SELECT 1")
            .execute(listener)
            .expect("poll");
        for notification in listener.notifications_iter() {
            let notification = notification.expect("notification");
            assert_eq!(notification.channel, channel);
            if notification.payload == SENTINEL {
                return payloads;
            }
            payloads.push(notification.payload);
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel never arrived ({payloads:?} before it)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The wake-ups `listener` received since the last call, each as the number of builds it
/// announces.
fn wakeups(writer: &mut PgConnection, listener: &mut PgConnection) -> Vec<u64> {
    received(writer, listener, PENDING_CHANNEL)
        .into_iter()
        .map(|payload| {
            payload
                .parse()
                .expect("a wake-up's payload is a number of builds")
        })
        .collect()
}

#[test]
fn creating_a_pipeline_with_a_pending_build_wakes_listeners_once() {
    let mut f = Fixture::new();
    let mut listener = listen(&f);
    // Two pending builds, inserted by one transaction: one wake-up, for two builds.
    f.create(vec![job("a"), job("b")]);
    assert_eq!(wakeups(&mut f.conn, &mut listener), [2]);
}

#[test]
fn a_pipeline_with_nothing_pending_wakes_nobody() {
    let mut f = Fixture::new();
    let mut listener = listen(&f);
    f.create(vec![job("deploy").when(When::Manual)]);
    assert_eq!(wakeups(&mut f.conn, &mut listener), [0_u64; 0]);
}

#[test]
fn claims_and_heartbeats_are_silent_but_the_next_stage_wakes_listeners() {
    let mut f = Fixture::new();
    f.create(vec![job("build").stage("1"), job("test").stage("2")]);
    let mut listener = listen(&f);
    let build = f.acquire().expect("the first stage is pending");
    let runner = f.runner;
    f.tx()
        .heartbeat(build.id, runner, LEASE, now())
        .expect("heartbeat");
    assert_eq!(wakeups(&mut f.conn, &mut listener), [0_u64; 0]);

    // Finishing the first stage makes the second pending: an UPDATE, not an INSERT.
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .expect("finish");
    assert_eq!(wakeups(&mut f.conn, &mut listener), [1]);
}

#[test]
fn playing_a_manual_build_wakes_listeners() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("deploy").when(When::Manual)]);
    let mut listener = listen(&f);
    f.tx().play_build(created.builds[0], now()).expect("play");
    assert_eq!(wakeups(&mut f.conn, &mut listener), [1]);
}

/// The listener storage hands the server hears each wake-up with its count, and one without a
/// count as `Unknown`, in commit order.
#[test]
fn the_pending_listener_hears_how_many_builds_became_pending() {
    let mut f = Fixture::new();
    let mut listener = BlockingListener::connect(&f);
    f.create(vec![job("a"), job("b")]);
    diesel::sql_query("SELECT pg_notify($1, 'no count')")
        .bind::<Text, _>(PENDING_CHANNEL)
        .execute(&mut f.conn)
        .expect("notify");
    assert_eq!(listener.next(), Notice::Pending(Pending::Builds(2)));
    assert_eq!(listener.next(), Notice::Pending(Pending::Unknown));
}

/// Canceling a pipeline with two running builds and a pending one announces the two running
/// ones, by id, on the canceling channel: the pending one is canceled outright, nothing to stop.
#[test]
fn canceling_running_builds_names_them_on_the_canceling_channel() {
    let mut f = Fixture::new();
    let created = f.create(vec![job("a"), job("b"), job("c").tags(&["elsewhere"])]);
    let first = f.acquire().expect("a is pending");
    let second = f.acquire().expect("b is pending");
    let mut listener = BlockingListener::connect(&f);
    f.tx()
        .cancel_pipeline(created.id, now())
        .expect("cancel the pipeline");
    let notice = listener.next();
    let mut ids = vec![first.id, second.id];
    ids.sort();
    assert_eq!(notice, Notice::Canceling(Canceling::Listed(ids)));
}

#[test]
fn a_runner_confirming_a_cancel_is_not_announced_again() {
    let mut f = Fixture::new();
    f.create(vec![job("a")]);
    let build = f.acquire().expect("a is pending");
    let mut listener = f.db.connect();
    diesel::sql_query(format!("LISTEN {CANCELING_CHANNEL}"))
        .execute(&mut listener)
        .expect("listen");
    f.tx().cancel_build(build.id, now()).expect("cancel");
    let runner = f.runner;
    f.tx()
        .heartbeat(build.id, runner, LEASE, now())
        .expect("a heartbeat while canceling");
    f.tx()
        .finish(build.id, runner, BuildResult::Canceled, now())
        .expect("confirm");
    assert_eq!(
        received(&mut f.conn, &mut listener, CANCELING_CHANNEL),
        [build.id.0.to_string()]
    );
}

/// A NOTIFY payload stops at 8000 bytes: a cancel of more running builds than fit names none,
/// and every watch reads its builds again.
#[test]
fn a_cancel_of_too_many_builds_to_name_asks_every_watch_to_look() {
    let mut f = Fixture::new();
    // 2,000 ids, comma-separated, take about 8,900 characters: past the trigger's 7,000.
    let jobs: Vec<_> = (0..2_000).map(|i| job(&format!("j{i}"))).collect();
    let created = f.create(jobs);
    let (runner, tags) = (f.runner, Vec::<String>::new());
    let acquired = f
        .tx()
        .acquire(runner, &tags, 2_000, LEASE, now())
        .expect("acquire");
    assert_eq!(acquired.builds.len(), 2_000);
    let mut listener = BlockingListener::connect(&f);
    f.tx()
        .cancel_pipeline(created.id, now())
        .expect("cancel the pipeline");
    let notice = listener.next();
    let named = match &notice {
        Notice::Canceling(Canceling::Listed(ids)) => ids.len(),
        _ => 0,
    };
    assert!(
        notice == Notice::Canceling(Canceling::TooMany),
        "expected an unnamed cancel, got {named} ids"
    );
}

/// The dashboard's channels are sent only while a replica says it has live pages open.
fn open_a_page(f: &mut Fixture) {
    register_viewers(&mut f.conn, "a-replica", 60).expect("register");
}

#[test]
fn creating_claiming_and_finishing_name_the_pipeline_but_heartbeats_do_not() {
    let mut f = Fixture::new();
    open_a_page(&mut f);
    let mut listener = listen_on(&f, PIPELINES_CHANNEL);
    let created = f.create(vec![job("a")]);
    let pipeline = created.id.0.to_string();
    assert_eq!(
        received(&mut f.conn, &mut listener, PIPELINES_CHANNEL),
        [pipeline.as_str()]
    );
    let build = f.acquire().expect("a is pending");
    assert_eq!(
        received(&mut f.conn, &mut listener, PIPELINES_CHANNEL),
        [pipeline.as_str()]
    );
    let runner = f.runner;
    f.tx()
        .heartbeat(build.id, runner, LEASE, now())
        .expect("heartbeat");
    assert_eq!(
        received(&mut f.conn, &mut listener, PIPELINES_CHANNEL),
        Vec::<String>::new()
    );
    f.tx()
        .finish(build.id, runner, BuildResult::Success, now())
        .expect("finish");
    assert_eq!(
        received(&mut f.conn, &mut listener, PIPELINES_CHANNEL),
        [pipeline.as_str()]
    );
}

#[test]
fn a_log_append_names_its_build_and_an_empty_one_is_silent() {
    let mut f = Fixture::new();
    open_a_page(&mut f);
    f.create(vec![job("a")]);
    let build = f.acquire().expect("a is pending");
    let mut listener = listen_on(&f, LOGS_CHANNEL);
    let runner = f.runner;
    append_log(&mut f.conn, build.id, runner, 0, b"").expect("ask where the log ends");
    assert_eq!(
        received(&mut f.conn, &mut listener, LOGS_CHANNEL),
        Vec::<String>::new()
    );
    append_log(&mut f.conn, build.id, runner, 0, b"hello\n").expect("append");
    assert_eq!(
        received(&mut f.conn, &mut listener, LOGS_CHANNEL),
        [build.id.0.to_string()]
    );
}

/// The server's listener hears the dashboard's channels beside the runners' ones.
#[test]
fn the_listener_hears_pipeline_and_log_notices() {
    let mut f = Fixture::new();
    open_a_page(&mut f);
    let mut listener = BlockingListener::connect(&f);
    let created = f.create(vec![job("a")]);
    assert_eq!(
        listener.next_any(),
        Notice::Pending(Pending::Builds(1)),
        "the pending wake-up is sent first, by the same trigger"
    );
    assert_eq!(
        listener.next_any(),
        Notice::Pipelines(Ids::Listed(vec![created.id]))
    );
    let build = f.acquire().expect("a is pending");
    assert_eq!(
        listener.next_any(),
        Notice::Pipelines(Ids::Listed(vec![created.id]))
    );
    let runner = f.runner;
    append_log(&mut f.conn, build.id, runner, 0, b"x").expect("append");
    assert_eq!(
        listener.next_any(),
        Notice::Logs(Ids::Listed(vec![build.id]))
    );
}

#[test]
fn nothing_is_sent_to_pages_while_no_replica_has_one_open() {
    let mut f = Fixture::new();
    let mut pipelines = listen_on(&f, PIPELINES_CHANNEL);
    let mut logs = listen_on(&f, LOGS_CHANNEL);
    f.create(vec![job("a"), job("b")]);
    let build = f.acquire().expect("a is pending");
    let runner = f.runner;
    append_log(&mut f.conn, build.id, runner, 0, b"x").expect("append");
    assert_eq!(
        received(&mut f.conn, &mut pipelines, PIPELINES_CHANNEL),
        Vec::<String>::new()
    );
    assert_eq!(
        received(&mut f.conn, &mut logs, LOGS_CHANNEL),
        Vec::<String>::new()
    );

    // A registration that has run out counts as none.
    register_viewers(&mut f.conn, "gone", 0).expect("register");
    f.acquire().expect("b is pending");
    assert_eq!(
        received(&mut f.conn, &mut pipelines, PIPELINES_CHANNEL),
        Vec::<String>::new()
    );

    // The negative control: with a page open, the same writes are announced.
    open_a_page(&mut f);
    append_log(&mut f.conn, build.id, runner, 1, b"y").expect("append");
    assert_eq!(
        received(&mut f.conn, &mut logs, LOGS_CHANNEL),
        [build.id.0.to_string().as_str()]
    );
}

/// A replica waits out the transactions that may have run their trigger before its
/// registration was visible: until they end, `older_transactions_done` says no.
#[test]
fn a_registration_waits_out_the_transactions_already_running() {
    let mut f = Fixture::new();
    let mut other = f.db.connect();
    diesel::sql_query("BEGIN")
        .execute(&mut other)
        .expect("begin");
    // An id is assigned at the first write.
    diesel::sql_query("SELECT pg_current_xact_id()")
        .execute(&mut other)
        .expect("an xid");
    let horizon = register_viewers(&mut f.conn, "a-replica", 60).expect("register");
    assert!(!older_transactions_done(&mut f.conn, horizon).expect("look"));
    diesel::sql_query("COMMIT")
        .execute(&mut other)
        .expect("commit");
    // Other tests' transactions may share the server and end a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !older_transactions_done(&mut f.conn, horizon).expect("look") {
        assert!(Instant::now() < deadline, "older transactions never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}
