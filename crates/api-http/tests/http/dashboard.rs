//! The dashboard over HTTP: signing in and out, the cookie's flags, CSRF, and what the pages
//! and their event streams say. (The browser tests in crates/browser-tests drive a real
//! Chromium against the same pages.)

use crate::support::{ADMIN, Answer, As, TestApp, build_named};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// A browser's cookies and the session's CSRF token, as the pages gave them.
struct Session {
    cookie: String,
    csrf: String,
}

fn cookie_of<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn value_of(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map_or("", |(_, value)| value)
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn text(answer: &Answer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Answer {
    let request = Request::builder()
        .uri(path)
        .header("cookie", cookie)
        .body(Body::empty())
        .expect("a request");
    app.request(request).await
}

async fn post_form(app: &TestApp, path: &str, cookie: &str, form: &str, proto: &str) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", proto)
        .body(Body::from(form.to_owned()))
        .expect("a request");
    app.request(request).await
}

/// Opens the sign-in form and posts `token` with its nonce.
async fn sign_in_with(app: &TestApp, token: &str, proto: &str) -> Answer {
    let form = get(app, "/login", "").await.expect(StatusCode::OK);
    let nonce_cookie = cookie_of(&form, "lockstep_login").expect("a nonce cookie");
    let nonce = csrf_field(&text(&form));
    assert_eq!(value_of(nonce_cookie), nonce, "the form repeats its cookie");
    let body = format!("token={token}&csrf={nonce}&next=%2Fprojects%2F1");
    post_form(
        app,
        "/login",
        &format!("lockstep_login={nonce}"),
        &body,
        proto,
    )
    .await
}

async fn sign_in(app: &TestApp) -> Session {
    let answer = sign_in_with(app, ADMIN, "http")
        .await
        .expect(StatusCode::SEE_OTHER);
    let cookie = format!(
        "lockstep_session={}",
        value_of(cookie_of(&answer, "lockstep_session").expect("a session cookie"))
    );
    let page = get(app, "/", &cookie).await.expect(StatusCode::OK);
    Session {
        csrf: csrf_field(&text(&page)),
        cookie,
    }
}

#[tokio::test]
async fn a_page_sends_a_browser_without_a_session_to_sign_in_and_back() {
    let app = TestApp::new();
    let answer = get(&app, "/pipelines/7?x=1", "")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some("/login?next=%2Fpipelines%2F7%3Fx%3D1")
    );
    let stale = get(&app, "/", "lockstep_session=lss_not-a-session").await;
    assert_eq!(
        stale.status,
        StatusCode::SEE_OTHER,
        "an unknown session signs nobody in"
    );
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_goes_where_it_was_asked() {
    let app = TestApp::new();
    let answer = sign_in_with(&app, ADMIN, "http")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), Some("/projects/1"));
    let cookie = cookie_of(&answer, "lockstep_session").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie: {cookie}"
    );
    assert!(
        !value_of(cookie).contains(ADMIN),
        "the cookie is not the token"
    );

    let over_tls = sign_in_with(&app, ADMIN, "https")
        .await
        .expect(StatusCode::SEE_OTHER);
    let cookie = cookie_of(&over_tls, "lockstep_session").expect("a session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_bad_token_is_refused_and_starts_no_session() {
    let app = TestApp::new();
    let answer = sign_in_with(&app, "not-the-admin-token-at-all", "http")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(text(&answer).contains("That token is not valid"));
    assert!(cookie_of(&answer, "lockstep_session").is_none());
    assert!(
        !text(&answer).contains("not-the-admin-token"),
        "the token is not echoed"
    );
}

#[tokio::test]
async fn a_sign_in_without_its_nonce_is_refused() {
    let app = TestApp::new();
    let body = format!("token={ADMIN}&csrf=guessed");
    let answer = post_form(&app, "/login", "lockstep_login=other", &body, "http")
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(cookie_of(&answer, "lockstep_session").is_none());
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let project = app.project("web").await;
    let pipeline = app
        .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let id = pipeline["id"].as_i64().expect("an id");
    let cancel = format!("/pipelines/{id}/cancel");
    for form in ["", "csrf=", "csrf=0123456789abcdef0123456789abcdef"] {
        post_form(&app, &cancel, &session.cookie, form, "http")
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    let status = |p: Value| p["status"].as_str().map(str::to_owned);
    let now = app.get(&format!("/api/v1/pipelines/{id}")).await.json();
    assert_eq!(status(now).as_deref(), Some("pending"));

    let form = format!("csrf={}", session.csrf);
    let answer = post_form(&app, &cancel, &session.cookie, &form, "http")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some(format!("/pipelines/{id}").as_str())
    );
    let now = app.get(&format!("/api/v1/pipelines/{id}")).await.json();
    assert_eq!(status(now).as_deref(), Some("canceled"));
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let form = format!("csrf={}", session.csrf);
    let answer = post_form(&app, "/logout", &session.cookie, &form, "http")
        .await
        .expect(StatusCode::SEE_OTHER);
    let cleared = cookie_of(&answer, "lockstep_session").expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    get(&app, "/", &session.cookie)
        .await
        .expect(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_take_sessions_and_the_api_keeps_its_bearer_tokens() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let bearer = Request::builder()
        .uri("/")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("a request");
    assert_eq!(app.request(bearer).await.status, StatusCode::SEE_OTHER);
    get(&app, "/api/v1/projects", &session.cookie)
        .await
        .expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_page_renders_with_its_policy_and_the_graph_names_its_needs() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let project = app.project("web").await;
    let jobs = json!([
        { "name": "build", "stage": "build", "script": ["true"] },
        { "name": "test", "stage": "test", "needs": ["build"], "script": ["true"] },
        { "name": "approve", "stage": "build", "script": ["true"], "when": "manual" },
        { "name": "deploy", "stage": "deploy", "script": ["true"], "environment": "staging",
          "resource_group": "staging" },
    ]);
    let pipeline = app.pipeline(project, jobs).await;
    let id = pipeline["id"].as_i64().expect("an id");
    let build = build_named(&pipeline, "build")["id"]
        .as_i64()
        .expect("an id");
    for path in [
        "/".to_owned(),
        format!("/projects/{project}"),
        format!("/projects/{project}?status=pending&ref=main"),
        format!("/projects/{project}/environments"),
        format!("/pipelines/{id}"),
        format!("/builds/{build}"),
        "/runners".to_owned(),
    ] {
        let answer = get(&app, &path, &session.cookie)
            .await
            .expect(StatusCode::OK);
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
    }
    let page = text(&get(&app, &format!("/pipelines/{id}"), &session.cookie).await);
    assert!(page.contains(r#"data-name="test""#), "{page}");
    assert!(
        page.contains(r#"data-needs="[&#34;build&#34;]""#)
            || page.contains(r#"data-needs="[&quot;build&quot;]""#),
        "{page}"
    );
    assert!(
        page.contains(r#"action="/builds/"#) && page.contains("/play\""),
        "the manual job offers Play"
    );
    let filtered = text(
        &get(
            &app,
            &format!("/projects/{project}?ref=other"),
            &session.cookie,
        )
        .await,
    );
    assert!(filtered.contains("No pipelines match"), "{filtered}");
}

#[tokio::test]
async fn a_missing_pipeline_is_a_404_page_and_a_bad_id_a_400_page() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let answer = get(&app, "/pipelines/999", &session.cookie)
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(
        text(&answer).contains("<h1>Not Found</h1>"),
        "{}",
        text(&answer)
    );
    let answer = get(&app, "/builds/abc", &session.cookie)
        .await
        .expect(StatusCode::BAD_REQUEST);
    let page = text(&answer);
    assert!(
        page.contains("must be a whole number") && page.contains("<h1>"),
        "{page}"
    );
}

#[tokio::test]
async fn a_finished_builds_stream_sends_its_log_with_offsets_then_ends() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let project = app.project("web").await;
    app.pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let (_, token) = app.runner("r", &[]).await;
    let job = app.acquire(&token).await.expect("a job");
    let id = job["id"].as_i64().expect("an id");
    let log = format!("/api/v1/jobs/{id}/log?offset=0");
    let request = Request::builder()
        .method(Method::POST)
        .uri(&log)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from("caf\u{e9} \x1b[32mok\x1b[0m\r\nline 2\n"))
        .expect("a request");
    app.request(request).await.expect(StatusCode::ACCEPTED);
    app.runner_post(
        &format!("/api/v1/jobs/{id}/finish"),
        &token,
        &json!({ "result": "success", "exit_code": 0 }),
    )
    .await
    .expect(StatusCode::OK);

    let stream = text(
        &get(
            &app,
            &format!("/builds/{id}/live?offset=0"),
            &session.cookie,
        )
        .await,
    );
    assert!(stream.starts_with("event: fragment"), "{stream}");
    assert!(
        stream.contains(
            "event: log\nid: 26\ndata: {\"text\":\"café \\u001b[32mok\\u001b[0m\\r\\nline 2\\n\"}"
        ),
        "{stream}"
    );
    assert!(
        stream.trim_end().ends_with("event: end\ndata: done"),
        "{stream}"
    );

    let resumed = Request::builder()
        .uri(format!("/builds/{id}/live?offset=0"))
        .header("cookie", &session.cookie)
        .header("last-event-id", "20")
        .body(Body::empty())
        .expect("a request");
    let resumed = text(&app.request(resumed).await);
    assert!(
        resumed.contains("id: 26\ndata: {\"text\":\"ine 2\\n\"}"),
        "Last-Event-ID wins: {resumed}"
    );
}

/// An open live page makes its replica register in `live_viewers`, which turns the dashboard's
/// notifications on; the page then hears a change made through the API, and the server's
/// shutdown ends the stream.
#[tokio::test]
async fn an_open_live_page_turns_notifications_on_and_hears_a_cancel() {
    use diesel::prelude::*;
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let project = app.project("web").await;
    let pipeline = app
        .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let id = pipeline["id"].as_i64().expect("an id");
    let served = app.serve().await;
    let mut stream = reqwest::Client::new()
        .get(served.url(&format!("/pipelines/{id}/live")))
        .header("cookie", &session.cookie)
        .send()
        .await
        .expect("a stream");
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !seen.contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no `{needle}` in time: {seen}"))
                .expect("a chunk")
                .expect("the stream is open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("event: fragment", &mut seen).await;
    let mut conn = app.db.connect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows: i64 =
            diesel::sql_query("SELECT count(*) AS n FROM live_viewers WHERE expires_at > now()")
                .get_result::<Count>(&mut conn)
                .expect("count")
                .n;
        if rows == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never registered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    seen.clear();
    app.post(&format!("/api/v1/pipelines/{id}/cancel"), &json!({}))
        .await
        .expect(StatusCode::OK);
    read_until(r#"data-status="canceled""#, &mut seen).await;
    served.shut_down().await;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A ZIP with a directory, two files (one with a space in its name) and a symlink, as a runner
/// uploads it for `artifacts: paths: [out/]`.
fn artifacts_zip() -> Vec<u8> {
    use std::io::Write as _;
    let options = zip::write::SimpleFileOptions::default();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.add_directory("out/", options).expect("a directory");
    writer.start_file("out/app", options).expect("an entry");
    writer.write_all(b"#!/bin/sh\necho hi\n").expect("contents");
    writer
        .start_file("out/release notes.txt", options)
        .expect("an entry");
    writer.write_all(&[b'n'; 3000]).expect("contents");
    writer
        .add_symlink("out/current", "app", options)
        .expect("a link");
    writer.finish().expect("an archive").into_inner()
}

/// A pipeline whose `build` job keeps `out/`, with the archive uploaded by the runner that holds
/// it; returns the pipeline's id, the build's id and the archive.
async fn a_build_with_artifacts(app: &TestApp) -> (i64, i64, Vec<u8>) {
    let project = app.project("web").await;
    let (_, token) = app.runner("r1", &[]).await;
    let pipeline = app
        .pipeline(
            project,
            json!([{ "name": "build", "script": ["make"], "artifacts": { "paths": ["out/"], "expire_in": "6 days" } }]),
        )
        .await;
    let job = app.acquire(&token).await.expect("the build");
    let build = job["id"].as_i64().expect("an id");
    let archive = artifacts_zip();
    app.call(
        Method::PUT,
        &format!("/api/v1/jobs/{build}/artifacts"),
        As::Runner(&token),
        Body::from(archive.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    (pipeline["id"].as_i64().expect("an id"), build, archive)
}

#[tokio::test]
async fn a_build_page_lists_its_artifacts_with_links_and_the_pipeline_marks_them() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let (pipeline, build, _) = a_build_with_artifacts(&app).await;
    let page = text(
        &get(&app, &format!("/builds/{build}"), &session.cookie)
            .await
            .expect(StatusCode::OK),
    );
    assert!(
        page.contains(r#"<h2 id="artifacts-heading">Artifacts</h2>"#),
        "{page}"
    );
    assert!(page.contains(r#"<th scope="col">Path</th>"#), "{page}");
    assert!(
        page.contains(&format!(r#"href="/builds/{build}/artifacts.zip""#)),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"<a href="/builds/{build}/artifacts/out/app" download>out/app</a>"#
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"href="/builds/{build}/artifacts/out/release%20notes.txt""#
        )),
        "a name with a space is percent-encoded: {page}"
    );
    assert!(page.contains("2 KiB"), "the file's size: {page}");
    assert!(page.contains("expires in 6 days"), "{page}");
    assert!(page.contains("→ app"), "a symlink shows its target: {page}");
    assert!(
        !page.contains("/artifacts/out/current\"") && !page.contains("/artifacts/out\""),
        "neither a symlink nor a directory is a link: {page}"
    );
    let graph = text(&get(&app, &format!("/pipelines/{pipeline}"), &session.cookie).await);
    assert!(
        graph.contains(&format!(r#"href="/builds/{build}#artifacts""#)),
        "{graph}"
    );
}

#[tokio::test]
async fn a_build_without_artifacts_shows_no_section_and_its_download_is_a_404_page() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let project = app.project("web").await;
    let pipeline = app
        .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let build = build_named(&pipeline, "a")["id"].as_i64().expect("an id");
    let page = text(&get(&app, &format!("/builds/{build}"), &session.cookie).await);
    assert!(!page.contains("Artifacts"), "{page}");
    let answer = get(
        &app,
        &format!("/builds/{build}/artifacts.zip"),
        &session.cookie,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "an error page, not JSON"
    );
    assert!(
        text(&answer).contains("has no artifacts"),
        "{}",
        text(&answer)
    );
}

#[tokio::test]
async fn artifact_downloads_take_a_session_and_serve_the_archive_and_one_file() {
    let app = TestApp::new();
    let (_, build, archive) = a_build_with_artifacts(&app).await;
    let zip = format!("/builds/{build}/artifacts.zip");
    let file = format!("/builds/{build}/artifacts/out/release%20notes.txt");
    for path in [&zip, &file] {
        let answer = get(&app, path, "").await.expect(StatusCode::SEE_OTHER);
        assert!(
            answer
                .header("location")
                .is_some_and(|l| l.starts_with("/login?next=%2Fbuilds%2F")),
            "{path}: {:?}",
            answer.header("location")
        );
        let bearer = Request::builder()
            .uri(path.as_str())
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .expect("a request");
        assert_eq!(
            app.request(bearer).await.status,
            StatusCode::SEE_OTHER,
            "{path}: pages take no Bearer token"
        );
    }

    let session = sign_in(&app).await;
    let answer = get(&app, &zip, &session.cookie)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/zip"));
    assert!(
        answer
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "{:?}",
        answer.header("content-disposition")
    );
    assert_eq!(answer.body, archive, "the archive as uploaded");

    let answer = get(&app, &file, &session.cookie)
        .await
        .expect(StatusCode::OK);
    assert_eq!(answer.body, vec![b'n'; 3000]);
    let answer = get(
        &app,
        &format!("/builds/{build}/artifacts/out/app"),
        &session.cookie,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(answer.body, b"#!/bin/sh\necho hi\n");

    for (path, status) in [
        (
            format!("/builds/{build}/artifacts/out/missing"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/builds/{build}/artifacts/out/current"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/builds/abc/artifacts/out/app".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/builds/999/artifacts.zip".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let answer = get(&app, &path, &session.cookie).await.expect(status);
        assert!(
            text(&answer).contains("<h1>"),
            "{path}: an error page: {}",
            text(&answer)
        );
    }
}

#[tokio::test]
async fn deleting_artifacts_from_the_page_takes_the_csrf_token() {
    let app = TestApp::new();
    let session = sign_in(&app).await;
    let (_, build, _) = a_build_with_artifacts(&app).await;
    let delete = format!("/builds/{build}/delete-artifacts");
    post_form(&app, &delete, &session.cookie, "csrf=guessed", "http")
        .await
        .expect(StatusCode::FORBIDDEN);
    get(
        &app,
        &format!("/builds/{build}/artifacts.zip"),
        &session.cookie,
    )
    .await
    .expect(StatusCode::OK);

    let form = format!("csrf={}", session.csrf);
    let answer = post_form(&app, &delete, &session.cookie, &form, "http")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        Some(format!("/builds/{build}").as_str())
    );
    let page = text(&get(&app, &format!("/builds/{build}"), &session.cookie).await);
    assert!(!page.contains("artifacts-heading"), "{page}");
    get(
        &app,
        &format!("/builds/{build}/artifacts.zip"),
        &session.cookie,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}
