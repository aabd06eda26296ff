//! The Coder incident, replayed against real PostgreSQL: creators commit pipelines while
//! acquirers claim builds. Every claimed build must arrive whole (its pipeline, script and
//! deployment read in the claiming statement) and no build may be claimed twice.

use crate::support::{JobExt, LEASE, job, now};
use lockstep_domain::{BuildId, BuildResult, PipelineDefinition, ProjectId, RunnerId};
use lockstep_storage_pg::{
    AcquiredBuild, NewPipeline, Transitions, TxStats, check_invariants, create_project,
    register_runner,
};
use lockstep_test_db::TestDb;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(3);

struct Shared {
    stop: AtomicBool,
    claimed: Mutex<HashSet<BuildId>>,
    duplicates: AtomicUsize,
    incomplete: Mutex<Vec<String>>,
    created: AtomicUsize,
}

fn create_loop(db: &TestDb, project: ProjectId, shared: &Shared, stats: &TxStats) {
    let mut conn = db.connect();
    let definition = PipelineDefinition {
        jobs: vec![
            job("deploy").env("staging").needs(&[]),
            job("plain").needs(&[]),
            job("tail").stage("2"),
        ],
    }
    .validate()
    .expect("valid");
    while !shared.stop.load(Ordering::Relaxed) {
        let new = NewPipeline {
            project,
            git_ref: "main",
            sha: Some("f00"),
            definition: &definition,
            auto_cancel: lockstep_domain::AutoCancel::None,
        };
        Transitions::new(&mut conn, stats)
            .create_pipeline(&new, now())
            .expect("create");
        shared.created.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a claimed build must carry, checked against what its creator wrote.
fn incompleteness(build: &AcquiredBuild) -> Option<String> {
    let expect_deployment = build.name == "deploy";
    let ok = build.git_ref == "main"
        && build.sha.as_deref() == Some("f00")
        && build.script == [format!("echo {}", build.name)]
        && build.deployment.is_some() == expect_deployment
        && build
            .deployment
            .as_ref()
            .is_none_or(|d| d.environment == "staging");
    (!ok).then(|| format!("{build:?}"))
}

fn acquire_loop(db: &TestDb, runner: RunnerId, shared: &Shared, stats: &TxStats) {
    let mut conn = db.connect();
    let tags: Vec<String> = Vec::new();
    let mut batch = 1;
    while !shared.stop.load(Ordering::Relaxed) {
        batch = batch % 3 + 1;
        let mut transitions = Transitions::new(&mut conn, stats);
        let builds = match transitions.acquire(runner, &tags, batch, LEASE, now()) {
            Ok(acquired) => {
                // As the server does: the pipelines catch up, here under the same contention.
                if let Err(e) = transitions.refresh_pipelines(&acquired.stale_pipelines, now()) {
                    shared.incomplete.lock().unwrap().push(e.to_string());
                }
                acquired.builds
            }
            Err(e) => {
                shared.incomplete.lock().unwrap().push(e.to_string());
                continue;
            }
        };
        for build in builds {
            if let Some(problem) = incompleteness(&build) {
                shared.incomplete.lock().unwrap().push(problem);
            }
            if !shared.claimed.lock().unwrap().insert(build.id) {
                shared.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Transitions::new(&mut conn, stats)
                .finish(build.id, runner, BuildResult::Success, now())
                .expect("finish");
        }
    }
}

#[test]
fn builds_acquired_while_pipelines_are_created_arrive_whole() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let project = create_project(&mut conn, "race").unwrap().id;
    let runners: Vec<RunnerId> = (0..3)
        .map(|i| {
            register_runner(&mut conn, &format!("r{i}"), &[], format!("h{i}").as_bytes())
                .unwrap()
                .id
        })
        .collect();
    let stats = TxStats::default();
    let shared = Shared {
        stop: AtomicBool::new(false),
        claimed: Mutex::new(HashSet::new()),
        duplicates: AtomicUsize::new(0),
        incomplete: Mutex::new(Vec::new()),
        created: AtomicUsize::new(0),
    };
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| create_loop(&db, project, &shared, &stats));
        }
        for &runner in &runners {
            let (db, shared, stats) = (&db, &shared, &stats);
            s.spawn(move || acquire_loop(db, runner, shared, stats));
        }
        let start = Instant::now();
        while start.elapsed() < RUN_FOR {
            std::thread::sleep(Duration::from_millis(50));
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
    let claimed = shared.claimed.lock().unwrap().len();
    let incomplete = shared.incomplete.lock().unwrap();
    assert!(claimed >= 30, "too few claims to prove anything: {claimed}");
    assert!(shared.created.load(Ordering::Relaxed) >= 10);
    assert_eq!(
        shared.duplicates.load(Ordering::Relaxed),
        0,
        "a build was claimed twice"
    );
    assert!(
        incomplete.is_empty(),
        "builds arrived incomplete: {incomplete:#?}"
    );
    assert_eq!(stats.snapshot().deadlocks, 0);
    let violations = check_invariants(&mut conn).unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}
