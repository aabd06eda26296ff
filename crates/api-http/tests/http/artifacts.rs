//! The runner protocol's archives and the artifacts API, refused where they must be: an
//! oversized upload (413), a hostile archive (422, nothing stored), a fetch of an archive the
//! job may not have (403), an upload for a build that ended (410); and the payload that tells
//! a runner what to fetch.

use crate::support::{As, TestApp, build_named, settings};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write as _;
use std::time::Duration;

/// A ZIP of `(name, contents)` files, as the zip crate writes it.
fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, contents) in files {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("an entry");
        writer.write_all(contents).expect("contents");
    }
    writer.finish().expect("an archive").into_inner()
}

/// A ZIP whose one entry is named `../evil` (written as `xx/evil`, then renamed in place in the
/// local header and the central directory, as an attacker's tool would).
fn zip_slip() -> Vec<u8> {
    let mut bytes = zip_of(&[("xx/evil", b"owned")]);
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(7).position(|w| w == b"xx/evil") {
        bytes[at + found..at + found + 2].copy_from_slice(b"..");
        at += found + 7;
    }
    bytes
}

async fn upload(app: &TestApp, token: &str, build: i64, body: Vec<u8>) -> crate::support::Answer {
    app.call(
        Method::PUT,
        &format!("/api/v1/jobs/{build}/artifacts"),
        As::Runner(token),
        Body::from(body),
    )
    .await
}

/// A pipeline `build` (keeps `out/`) → `test` (needs it) → `other` (needs nothing), with the
/// build acquired by a runner; returns the pipeline, the build's payload and the token.
async fn started(app: &TestApp) -> (Value, Value, String) {
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let pipeline = app
        .pipeline(
            project,
            json!([
                { "name": "build", "stage": "build", "script": ["make"],
                  "artifacts": { "paths": ["out/"], "expire_in": "2 days" } },
                { "name": "test", "stage": "test", "needs": ["build"], "script": ["./out/app"] },
                { "name": "other", "stage": "test", "needs": [], "script": ["true"] },
            ]),
        )
        .await;
    let job = loop {
        let job = app.acquire(&token).await.expect("a build");
        if job["name"] == "build" {
            break job;
        }
        // `other` needs nothing and may come first: finish it.
        app.runner_post(
            &format!("/api/v1/jobs/{}/finish", job["id"]),
            &token,
            &json!({ "result": "success" }),
        )
        .await
        .expect(StatusCode::OK);
    };
    (pipeline, job, token)
}

#[tokio::test]
async fn a_build_keeps_an_archive_and_the_job_that_needs_it_is_told_to_fetch_it() {
    let app = TestApp::new();
    let (_, job, token) = started(&app).await;
    assert_eq!(job["artifacts"]["paths"], json!(["out/"]), "{job:#}");
    assert_eq!(job["fetch"], json!([]));
    let build = job["id"].as_i64().expect("an id");
    let stored = upload(&app, &token, build, zip_of(&[("out/app", b"#!/bin/sh\n")]))
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(stored["entries"][0]["path"], "out/app", "{stored:#}");
    assert!(!stored["expires_at"].is_null());
    app.runner_post(
        &format!("/api/v1/jobs/{build}/finish"),
        &token,
        &json!({ "result": "success" }),
    )
    .await
    .expect(StatusCode::OK);
    let test = loop {
        let next = app.acquire(&token).await.expect("the test build");
        if next["name"] == "test" {
            break next;
        }
    };
    assert_eq!(test["fetch"][0]["build_id"], build, "{test:#}");
    assert_eq!(test["fetch"][0]["size"], stored["size"]);
    let fetched = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{}/artifacts/{build}", test["id"]),
            As::Runner(&token),
            Body::empty(),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(fetched.header("content-type"), Some("application/zip"));
    assert_eq!(
        fetched.body.len() as u64,
        stored["size"].as_u64().expect("a size")
    );
}

#[tokio::test]
async fn an_upload_past_the_limit_is_413_and_a_hostile_archive_422_with_nothing_kept() {
    let app = TestApp::with_settings(&lockstep_api_http::Settings {
        max_artifact_bytes: 4_096,
        ..settings(Duration::from_secs(30))
    });
    let (_, job, token) = started(&app).await;
    let build = job["id"].as_i64().expect("an id");
    let big = zip_of(&[("out/big", &fastrand_bytes(20_000))]);
    let refused = upload(&app, &token, build, big)
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE)
        .json();
    assert_eq!(refused["error"]["field"], "body", "{refused:#}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .expect("a message")
            .contains("4096 bytes"),
        "{refused:#}"
    );
    let hostile = upload(&app, &token, build, zip_slip())
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    let message = hostile["error"]["message"].as_str().expect("a message");
    assert!(message.contains("../evil"), "{hostile:#}");
    let not_zip = upload(&app, &token, build, b"not a zip".to_vec())
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(not_zip["error"]["code"], "bad_archive", "{not_zip:#}");
    app.get(&format!("/api/v1/builds/{build}/artifacts"))
        .await
        .expect(StatusCode::NOT_FOUND);
}

/// Bytes that do not compress, so that the archive stays past the limit.
fn fastrand_bytes(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test]
async fn a_runner_fetches_only_what_its_job_may() {
    let app = TestApp::new();
    let (pipeline, job, token) = started(&app).await;
    let build = job["id"].as_i64().expect("an id");
    upload(&app, &token, build, zip_of(&[("out/app", b"x")]))
        .await
        .expect(StatusCode::CREATED);
    // The build fetching its own archive: not one of its dependencies.
    let own = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{build}/artifacts/{build}"),
            As::Runner(&token),
            Body::empty(),
        )
        .await
        .expect(StatusCode::FORBIDDEN)
        .json();
    assert_eq!(own["error"]["code"], "not_a_dependency", "{own:#}");
    // Another runner, on a build it does not hold.
    let (_, intruder) = app.runner("r2", &[]).await;
    let other = build_named(&pipeline, "test")["id"]
        .as_i64()
        .expect("an id");
    let refused = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{other}/artifacts/{build}"),
            As::Runner(&intruder),
            Body::empty(),
        )
        .await;
    assert!(
        matches!(refused.status, StatusCode::FORBIDDEN | StatusCode::GONE),
        "{}: {}",
        refused.status,
        String::from_utf8_lossy(&refused.body)
    );
    let cache = app
        .call(
            Method::GET,
            &format!("/api/v1/jobs/{build}/cache?key=..."),
            As::Runner(&token),
            Body::empty(),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(cache["error"]["field"], "key", "{cache:#}");
    app.call(
        Method::GET,
        &format!("/api/v1/jobs/{build}/cache?key=deps"),
        As::Runner(&token),
        Body::empty(),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_upload_for_a_build_that_ended_is_410() {
    let app = TestApp::new();
    let (_, job, token) = started(&app).await;
    let build = job["id"].as_i64().expect("an id");
    app.runner_post(
        &format!("/api/v1/jobs/{build}/finish"),
        &token,
        &json!({ "result": "failed", "exit_code": 1 }),
    )
    .await
    .expect(StatusCode::OK);
    upload(&app, &token, build, zip_of(&[("out/app", b"x")]))
        .await
        .expect(StatusCode::GONE);
}

#[tokio::test]
async fn a_dependency_the_job_does_not_wait_for_is_refused_naming_the_field() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let refused = app
        .post(
            &format!("/api/v1/projects/{project}/pipelines"),
            &json!({ "ref": "main", "jobs": [
                { "name": "build", "script": ["make"], "artifacts": { "paths": ["out"] } },
                { "name": "test", "needs": [], "dependencies": ["build"], "script": ["t"] },
            ]}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(
        refused["error"]["field"], "jobs[test].dependencies",
        "{refused:#}"
    );
    let refused = app
        .post(
            &format!("/api/v1/projects/{project}/pipelines"),
            &json!({ "ref": "main", "jobs": [
                { "name": "build", "script": ["make"], "artifacts": { "paths": ["/etc"] } },
            ]}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(
        refused["error"]["field"], "jobs[build].artifacts.paths",
        "{refused:#}"
    );
}

#[tokio::test]
async fn a_cache_is_its_projects_own_and_the_last_upload_wins() {
    let app = TestApp::new();
    let (_, token) = app.runner("r1", &[]).await;
    let mut jobs = Vec::new();
    for name in ["one", "two"] {
        let project = app.project(name).await;
        app.pipeline(project, json!([{ "name": "a", "script": ["make"] }]))
            .await;
        jobs.push(
            app.acquire(&token).await.expect("a build")["id"]
                .as_i64()
                .expect("an id"),
        );
    }
    let (one, two) = (jobs[0], jobs[1]);
    let put = |build: i64, body: Vec<u8>| {
        let app = &app;
        let token = token.clone();
        async move {
            app.call(
                Method::PUT,
                &format!("/api/v1/jobs/{build}/cache?key=deps"),
                As::Runner(&token),
                Body::from(body),
            )
            .await
        }
    };
    let get = |build: i64| {
        let app = &app;
        let token = token.clone();
        async move {
            app.call(
                Method::GET,
                &format!("/api/v1/jobs/{build}/cache?key=deps"),
                As::Runner(&token),
                Body::empty(),
            )
            .await
        }
    };
    let first = zip_of(&[("deps/a", b"first")]);
    let second = zip_of(&[("deps/a", b"second")]);
    put(one, first).await.expect(StatusCode::CREATED);
    put(one, second.clone()).await.expect(StatusCode::CREATED);
    let cached = get(one).await.expect(StatusCode::OK);
    assert_eq!(cached.body, second, "the last upload wins");
    // Another project's job, same key: nothing.
    get(two).await.expect(StatusCode::NOT_FOUND);
}
