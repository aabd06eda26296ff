//! The sweeper's rules in storage: expired artifacts are listed, except the latest successful
//! pipeline's of each ref while the project keeps them; two replicas that sweep the same
//! archive both may delete it, and exactly one removes the row.

use crate::support::{Fixture, job, now};
use chrono::TimeDelta;
use lockstep_domain::{Artifacts, BuildResult, JobDefinition};
use lockstep_storage_pg::{
    NewArchive, expired_artifacts, forget_artifact, load_artifact, set_keep_latest_artifacts,
};

fn keeping() -> JobDefinition {
    JobDefinition {
        artifacts: Some(Artifacts {
            paths: vec!["out".into()],
            expire_in: Some("1 second".into()),
            ..Artifacts::default()
        }),
        ..job("a")
    }
}

/// A pipeline whose one build keeps an archive and then passes; returns the build.
fn kept(f: &mut Fixture, key: &str) -> lockstep_domain::BuildId {
    f.create(vec![keeping()]);
    let build = f.acquire().expect("a build").id;
    let runner = f.runner;
    let sha256 = [3u8; 32];
    let archive = NewArchive {
        name: None,
        object_key: key,
        size: 10,
        sha256: &sha256,
        entries: &[],
    };
    f.tx()
        .store_artifact(build, runner, &archive, None, now())
        .expect("stored");
    f.tx()
        .finish(build, runner, BuildResult::Success, now())
        .expect("finished");
    build
}

#[test]
fn the_latest_successful_pipeline_keeps_its_artifacts_until_a_newer_one_succeeds() {
    let mut f = Fixture::new();
    let older = kept(&mut f, "a/1");
    let later = now() + TimeDelta::seconds(5);
    let expired = expired_artifacts(&mut f.conn, later, 10).expect("listed");
    assert!(
        expired.is_empty(),
        "the ref's latest keeps its: {expired:?}"
    );

    let newer = kept(&mut f, "a/2");
    let expired = expired_artifacts(&mut f.conn, later, 10).expect("listed");
    let builds: Vec<i64> = expired.iter().map(|e| e.build_id).collect();
    assert_eq!(builds, [older.0], "only the older pipeline's go");

    set_keep_latest_artifacts(&mut f.conn, f.project, false).expect("set");
    let mut builds: Vec<i64> = expired_artifacts(&mut f.conn, later, 10)
        .expect("listed")
        .iter()
        .map(|e| e.build_id)
        .collect();
    builds.sort_unstable();
    assert_eq!(
        builds,
        [older.0, newer.0],
        "nothing kept once the project says so"
    );
}

#[test]
fn two_sweepers_of_one_archive_remove_its_row_once() {
    let mut f = Fixture::new();
    let build = kept(&mut f, "a/1");
    set_keep_latest_artifacts(&mut f.conn, f.project, false).expect("set");
    let later = now() + TimeDelta::seconds(5);
    let mut other = f.db.connect();
    let by_one = expired_artifacts(&mut f.conn, later, 10).expect("listed");
    let by_another = expired_artifacts(&mut other, later, 10).expect("listed");
    assert_eq!(by_one, by_another, "both replicas are handed the archive");
    let first = forget_artifact(&mut f.conn, build, "a/1").expect("deleted");
    let second = forget_artifact(&mut other, build, "a/1").expect("deleted");
    assert_eq!((first, second), (true, false));
    assert!(load_artifact(&mut f.conn, build).expect("read").is_none());
    // A row that names another object (a newer upload) is never deleted for an old one.
    assert!(!forget_artifact(&mut f.conn, build, "a/0").expect("no row"));
}
