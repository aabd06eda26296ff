//! Pipeline files (YAML bodies) and lint requests that must be refused: malformed, misspelt,
//! hostile, misplaced, or sent with the wrong content type.

use super::{Case, Fixture, Who};
use axum::http::Method;
use serde_json::json;
use std::fmt::Write as _;

const YAML: &str = "application/yaml";

/// A pipeline file with a job that would run.
const VALID_FILE: &str = "build:\n  script: make\n";

fn file<'f>(f: &Fixture, name: &str, query: &str, body: impl Into<Vec<u8>>) -> Case<'f> {
    Case::new(
        format!("submit pipeline file: {name}"),
        Method::POST,
        format!("/api/v1/projects/{}/pipelines{query}", f.project),
        Who::Admin,
    )
    .body(body)
    .content_type(YAML)
}

fn lint<'f>(f: &Fixture, name: &str, body: impl Into<Vec<u8>>) -> Case<'f> {
    Case::new(
        format!("lint: {name}"),
        Method::POST,
        format!("/api/v1/projects/{}/lint", f.project),
        Who::Admin,
    )
    .body(body)
    .content_type(YAML)
}

/// Billion laughs: nine aliases of nine aliases, nine levels deep.
fn billion_laughs() -> String {
    let mut text = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        let items = vec![previous; 9].join(",");
        let _ = writeln!(text, "a{level}: &a{level} [{items}]");
    }
    text.push_str("build:\n  script: [*a8]\n");
    text
}

/// A job whose script is a list `depth` levels deep.
fn deep_nesting(depth: usize) -> String {
    format!(
        "build:\n  script: {}x{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// A file over the 2 MiB a pipeline file may have, but under the body limit.
fn three_mebibytes() -> String {
    let mut text = String::from("build:\n  script:\n");
    while text.len() < 3 * 1024 * 1024 {
        text.push_str("    - echo 'a line of a very long script that goes on'\n");
    }
    text
}

pub(super) fn pipeline_files(f: &Fixture) -> Vec<Case<'_>> {
    vec![
        file(f, "malformed YAML", "?ref=main", "build: [script, \n")
            .is(422, "invalid_pipeline_file"),
        file(
            f,
            "a typo in a key",
            "?ref=main",
            "build:\n  script: make\n  tgas: [x]\n",
        )
        .is(422, "invalid_pipeline_file")
        .field("build.tgas"),
        file(
            f,
            "a key not supported yet",
            "?ref=main",
            "build:\n  script: make\n  rules: []\n",
        )
        .is(422, "invalid_pipeline_file")
        .field("build.rules"),
        file(
            f,
            "needs naming no job",
            "?ref=main",
            "build:\n  script: make\n  needs: [nope]\n",
        )
        .is(422, "invalid_pipeline_file"),
        file(f, "no jobs", "?ref=main", "stages: [build]\n").is(422, "invalid_pipeline_file"),
        file(f, "not a mapping", "?ref=main", "- build\n").is(422, "invalid_pipeline_file"),
        file(f, "billion laughs", "?ref=main", billion_laughs()).is(422, "invalid_pipeline_file"),
        file(f, "100,000 levels deep", "?ref=main", deep_nesting(100_000))
            .is(422, "invalid_pipeline_file"),
        file(f, "over 2 MiB", "?ref=main", three_mebibytes()).is(422, "invalid_pipeline_file"),
        file(
            f,
            "over the body limit",
            "?ref=main",
            vec![b'#'; super::OVER_JSON_LIMIT],
        )
        .is(413, "payload_too_large"),
        file(
            f,
            "not UTF-8",
            "?ref=main",
            b"build:\n  script: \xff\xfe\n".to_vec(),
        )
        .is(400, "bad_request"),
        file(f, "no ref", "", VALID_FILE)
            .is(400, "bad_request")
            .field("ref"),
        file(f, "an empty ref", "?ref=", VALID_FILE)
            .is(422, "invalid")
            .field("ref"),
        file(f, "a bad sha", "?ref=main&sha=not%20hex", VALID_FILE)
            .is(422, "invalid")
            .field("sha"),
        file(f, "sent as text/plain", "?ref=main", VALID_FILE)
            .content_type("text/plain")
            .is(415, "unsupported_media_type")
            .field("Content-Type"),
        file(f, "sent as JSON", "?ref=main", VALID_FILE)
            .content_type("application/json")
            .is(400, "bad_request"),
        Case::new(
            "submit pipeline: ref in the query beside a JSON body",
            Method::POST,
            format!("/api/v1/projects/{}/pipelines?ref=main", f.project),
            Who::Admin,
        )
        .json(&json!({ "ref": "main", "jobs": [{ "name": "a", "script": ["x"] }] }))
        .is(400, "bad_request")
        .field("ref"),
        Case::new(
            "submit pipeline file: to no project",
            Method::POST,
            "/api/v1/projects/999999/pipelines?ref=main",
            Who::Admin,
        )
        .body(VALID_FILE)
        .content_type(YAML)
        .is(404, "not_found"),
    ]
}

/// Lint changes nothing whatever it is sent; these are the ones it refuses.
pub(super) fn lints(f: &Fixture) -> Vec<Case<'_>> {
    vec![
        lint(f, "a typo", "build:\n  script: make\n  tgas: [x]\n")
            .is(422, "invalid_pipeline_file")
            .field("build.tgas"),
        lint(f, "billion laughs", billion_laughs()).is(422, "invalid_pipeline_file"),
        lint(
            f,
            "an invalid JSON definition",
            r#"{"jobs":[{"name":"a","script":[]}]}"#,
        )
        .content_type("application/json")
        .is(422, "invalid")
        .field("jobs[a].script"),
        lint(f, "JSON that does not read", r#"{"jobs": 3}"#)
            .content_type("application/json")
            .is(400, "bad_request")
            .field("jobs"),
        lint(f, "sent as text/html", VALID_FILE)
            .content_type("text/html")
            .is(415, "unsupported_media_type"),
        Case::new(
            "lint: no project",
            Method::POST,
            "/api/v1/projects/999999/lint",
            Who::Admin,
        )
        .body(VALID_FILE)
        .content_type(YAML)
        .is(404, "not_found"),
    ]
}
