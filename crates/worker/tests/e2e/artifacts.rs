//! Artifacts and caches on real workers: `build` keeps `out/app`, `test` runs it, `deploy`
//! fetches nothing, `when` picks what a failure keeps, a cache passes from one pipeline to
//! the next, and `expire_in` deletes object and row. The same run against the filesystem store
//! and against a real S3-compatible server (moto, started by `cargo xtask s3 start`).

use crate::support::{Stack, build};
use lockstep_api_http::{Objects, ObjectsConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The message a test fails with when no S3 server runs.
const NO_S3: &str = "no S3 server: run cargo xtask s3 install && cargo xtask s3 start";

/// A store in a directory of its own, under the test's name.
fn directory(name: &str) -> (ObjectsConfig, PathBuf) {
    let dir = std::env::temp_dir().join(format!("lockstep-objects-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    (ObjectsConfig::Dir(dir.clone()), dir)
}

/// The local S3 server, under a prefix of the test's name.
fn s3(name: &str) -> ObjectsConfig {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/lockstep-s3/url");
    let endpoint = std::env::var("LOCKSTEP_TEST_S3_URL")
        .ok()
        .or_else(|| std::fs::read_to_string(&file).ok())
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| panic!("{NO_S3}"));
    let option = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    ObjectsConfig::Url {
        url: format!("s3://lockstep-test/{name}"),
        options: vec![
            option("aws_endpoint", &endpoint),
            option("aws_allow_http", "true"),
            option("aws_access_key_id", "lockstep"),
            option("aws_secret_access_key", "lockstep-secret"),
            option("aws_region", "us-east-1"),
            option("aws_virtual_hosted_style_request", "false"),
        ],
    }
}

async fn stack(objects: ObjectsConfig) -> Stack {
    Stack::with(Duration::from_secs(10), |settings, _| {
        settings.objects = Objects::open(&objects).expect("the object store opens");
        settings.sweep_interval = Duration::from_millis(200);
    })
    .await
}

fn id(pipeline: &Value, name: &str) -> i64 {
    build(pipeline, name)["id"].as_i64().expect("a build id")
}

/// build → test → deploy, passing `out/app` from build to test; returns the build's id.
async fn build_test_deploy(stack: &Stack) -> i64 {
    let _worker = stack.worker(&[]);
    let pipeline = stack
        .submit(json!([
            { "name": "build", "stage": "build",
              "script": ["mkdir -p out/sub", "printf '#!/bin/sh\\necho app ran\\n' > out/app",
                         "chmod +x out/app", "echo note > out/sub/note.txt", "echo junk > out/junk.tmp"],
              "artifacts": { "paths": ["out/", "missing/"], "exclude": ["out/*.tmp"], "name": "app-$CI_JOB_NAME" } },
            { "name": "test", "stage": "test", "needs": ["build"],
              "script": ["./out/app", "test ! -e out/junk.tmp"] },
            { "name": "deploy", "stage": "deploy", "dependencies": [],
              "script": ["test ! -e out/app", "echo deployed"] },
        ]))
        .await;
    let pipeline = stack.wait_finished(pipeline, Duration::from_secs(60)).await;
    assert_eq!(pipeline["status"], "success", "{pipeline:#}");
    let build_log = stack
        .wait_for_log(id(&pipeline, "build"), "uploaded the artifacts")
        .await;
    assert!(
        build_log.contains("WARNING: `missing/` matched no files"),
        "{build_log}"
    );
    let test_log = stack.wait_for_log(id(&pipeline, "test"), "app ran").await;
    assert!(
        test_log.contains("fetching the artifacts of `build`"),
        "{test_log}"
    );
    let deploy_log = stack
        .wait_for_log(id(&pipeline, "deploy"), "deployed")
        .await;
    assert!(!deploy_log.contains("fetching"), "{deploy_log}");
    id(&pipeline, "build")
}

/// What people see of a build's artifacts: the listing, one file, the archive.
async fn check_listing(stack: &Stack, build: i64) {
    let listing = stack.admin_get(&format!("/builds/{build}/artifacts")).await;
    assert_eq!(listing["file_name"], "app-build.zip", "{listing:#}");
    let paths: Vec<&str> = listing["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "file")
        .map(|e| e["path"].as_str().expect("a path"))
        .collect();
    assert_eq!(paths, ["out/app", "out/sub/note.txt"], "{listing:#}");
    let (status, note) = stack
        .admin_fetch(&format!("/builds/{build}/artifacts/file/out/sub/note.txt"))
        .await;
    assert_eq!((status, note.as_slice()), (200, b"note\n".as_slice()));
    let (status, _) = stack
        .admin_fetch(&format!("/builds/{build}/artifacts/file/out/nothing"))
        .await;
    assert_eq!(status, 404);
    let (status, archive) = stack
        .admin_fetch(&format!("/builds/{build}/artifacts/download"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        archive.len() as u64,
        listing["size"].as_u64().expect("a size")
    );
    assert_eq!(&archive[..2], b"PK", "a ZIP archive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_pass_from_build_to_test_in_the_filesystem_store() {
    let (objects, dir) = directory("build-test-deploy");
    let stack = stack(objects).await;
    let build = build_test_deploy(&stack).await;
    check_listing(&stack, build).await;
    let stored = walk(&dir);
    assert_eq!(stored.len(), 1, "one object for one archive: {stored:?}");
    // Deleting them removes the object and the row.
    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/builds/{build}/artifacts", stack.url()))
        .bearer_auth(crate::support::ADMIN)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 204);
    assert!(walk(&dir).is_empty(), "{:?}", walk(&dir));
    assert_eq!(
        stack
            .admin_fetch(&format!("/builds/{build}/artifacts"))
            .await
            .0,
        404
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_pass_from_build_to_test_in_an_s3_store() {
    let stack = stack(s3(&format!("e2e-{}", fastrand::u64(..)))).await;
    let build = build_test_deploy(&stack).await;
    check_listing(&stack, build).await;
    stack.stop().await;
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_decides_what_a_failure_keeps_and_a_cache_reaches_the_next_pipeline() {
    let (objects, _dir) = directory("when-and-cache");
    let stack = stack(objects).await;
    let _worker = stack.worker(&[]);
    let first = stack
        .submit(json!([
            { "name": "fails", "script": ["echo log > failure.log", "exit 3"], "allow_failure": true,
              "artifacts": { "paths": ["failure.log"], "when": "on_failure" } },
            { "name": "passes", "script": ["echo ok > ok.txt"],
              "artifacts": { "paths": ["ok.txt"], "when": "on_failure" } },
            { "name": "warm", "script": ["mkdir -p cache", "echo $CI_PIPELINE_ID >> cache/runs"],
              "cache": { "key": "deps-$CI_COMMIT_REF_NAME", "paths": ["cache/"] } },
        ]))
        .await;
    let first = stack.wait_finished(first, Duration::from_secs(60)).await;
    assert_eq!(first["status"], "success", "{first:#}");
    let fails = stack
        .admin_get(&format!("/builds/{}/artifacts", id(&first, "fails")))
        .await;
    assert_eq!(fails["entries"][0]["path"], "failure.log", "{fails:#}");
    let passes = stack
        .admin_fetch(&format!("/builds/{}/artifacts", id(&first, "passes")))
        .await;
    assert_eq!(passes.0, 404, "on_failure keeps nothing of a success");

    let second = stack
        .submit(json!([
            { "name": "reuse", "script": ["cat cache/runs", "test \"$(wc -l < cache/runs)\" -eq 1"],
              "cache": { "key": "deps-$CI_COMMIT_REF_NAME", "paths": ["cache/"], "policy": "pull" } },
        ]))
        .await;
    let second = stack.wait_finished(second, Duration::from_secs(60)).await;
    let log = stack
        .wait_for_log(id(&second, "reuse"), "restored the cache `deps-main`")
        .await;
    assert_eq!(second["status"], "success", "{second:#}\n{log}");
    assert!(log.contains(&first["id"].to_string()), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_artifacts_lose_object_and_row_unless_they_are_the_latest_kept() {
    let (objects, dir) = directory("expiry");
    let stack = stack(objects).await;
    let _worker = stack.worker(&[]);
    let jobs = json!([
        { "name": "short", "script": ["echo x > x"],
          "artifacts": { "paths": ["x"], "expire_in": "1 second" } },
    ]);
    let kept = stack.submit(jobs.clone()).await;
    let kept = stack.wait_finished(kept, Duration::from_secs(60)).await;
    let kept_build = id(&kept, "short");
    // The latest successful pipeline of the ref keeps its artifacts past their expiry.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack
            .admin_fetch(&format!("/builds/{kept_build}/artifacts"))
            .await
            .0,
        200
    );
    // Once the project stops keeping them, the sweeper deletes object and row.
    let project = stack
        .admin_patch(
            &format!("/projects/{}", stack.project),
            &json!({ "keep_latest_artifacts": false }),
        )
        .await;
    assert_eq!(project["keep_latest_artifacts"], false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stack
        .admin_fetch(&format!("/builds/{kept_build}/artifacts"))
        .await
        .0
        != 404
    {
        assert!(Instant::now() < deadline, "the artifacts never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        walk(&dir).is_empty(),
        "the object went too: {:?}",
        walk(&dir)
    );
    let metrics = reqwest::get(format!("{}/metrics", stack.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("lockstep_artifacts_swept_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lockstep_archive_uploads_total{kind=\"artifacts\"} 1"),
        "{metrics}"
    );
    stack.stop().await;
}
