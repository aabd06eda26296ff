//! The runner protocol over a real socket: long-polls woken by NOTIFY (from this process or
//! another), graceful shutdown, and the lease reaper.

use crate::support::{ADMIN, TestApp};
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::{JobDefinition, PipelineDefinition, ProjectId};
use lockstep_storage_pg::{NewPipeline, Transitions, TxStats};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client")
}

async fn post(url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_runner_is_woken_by_a_new_pipeline() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let answer = post(&url, &token, &json!({ "wait_seconds": 20 })).await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = post(
        &served.url(&format!("/api/v1/projects/{project}/pipelines")),
        ADMIN,
        &json!({ "ref": "main", "jobs": [{ "name": "a", "script": ["true"] }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let ((status, job), waited) = waiting.await.expect("the request completes");
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["name"], "a");
    assert!(
        waited < Duration::from_secs(20),
        "woken, not timed out: {waited:?}"
    );
    served.shut_down().await;
}

/// Another replica (here: a plain storage transaction on its own connection) makes a build
/// pending; the NOTIFY reaches this server's listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_made_pending_elsewhere_wakes_the_runner() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting =
        tokio::spawn(async move { post(&url, &token, &json!({ "wait_seconds": 20 })).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut conn = app.db.connect();
    tokio::task::spawn_blocking(move || {
        let definition = PipelineDefinition {
            jobs: vec![JobDefinition {
                name: "elsewhere".to_owned(),
                script: vec!["true".to_owned()],
                ..JobDefinition::default()
            }],
        }
        .validate()
        .expect("valid");
        let stats = TxStats::default();
        Transitions::new(&mut conn, &stats)
            .create_pipeline(
                &NewPipeline {
                    project: ProjectId(project),
                    git_ref: "main",
                    sha: None,
                    definition: &definition,
                    auto_cancel: lockstep_domain::AutoCancel::None,
                },
                Utc::now(),
            )
            .expect("created");
    })
    .await
    .expect("created on another connection");
    let (status, job) = waiting.await.expect("the request completes");
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["name"], "elsewhere");
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_waiting_runners_with_no_content() {
    let app = TestApp::new();
    let (_, token) = app.runner("r1", &[]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let response = client()
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "wait_seconds": 30 }))
            .send()
            .await
            .expect("answered before the server stops");
        (response.status().as_u16(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.shut_down().await;
    let (status, waited) = waiting.await.expect("the request completes");
    assert_eq!(status, 204);
    assert!(
        waited < Duration::from_secs(30),
        "answered at shutdown: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_fails_the_build_and_its_deployment() {
    let app = TestApp::with_lease(Duration::from_secs(1));
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(
        project,
        json!([{ "name": "deploy", "script": ["true"], "environment": "prod" }]),
    )
    .await;
    let job = app.acquire(&token).await.expect("pending");
    let id = job["id"].as_i64().expect("id");
    let served = app.serve().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let build = loop {
        let build = app.get(&format!("/api/v1/builds/{id}")).await.json();
        if build["status"] != "running" || Instant::now() > deadline {
            break build;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(build["status"], "failed", "{build}");
    assert_eq!(build["failure_reason"], "runner_lost");
    assert_eq!(build["deployment"]["status"], "failed");
    let (status, body) = post(
        &served.url(&format!("/api/v1/jobs/{id}/heartbeat")),
        &token,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let (status, body) = post(
        &served.url(&format!("/api/v1/jobs/{id}/finish")),
        &token,
        &json!({ "result": "failed" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "a late report is not an echo: {body}"
    );
    served.shut_down().await;
}

/// Diesel blocks; it must do so off the runtime. On a single-threaded runtime, a request stuck
/// behind a row lock must not stop another request from being answered.
#[tokio::test(flavor = "current_thread")]
async fn a_blocked_query_does_not_stall_other_requests() {
    use diesel::connection::SimpleConnection as _;
    let app = TestApp::new();
    let project = app.project("app").await;
    let pipeline = app
        .pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let id = pipeline["id"].as_i64().expect("id");
    let served = app.serve().await;
    // Another session holds the pipeline's row, so the cancel below waits in PostgreSQL. It
    // lets go when told, or after 10 s: were the runtime thread blocked, nobody could tell it,
    // and the timing assertion below would fail instead of the test hanging.
    let mut holder = app.db.connect();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM pipelines WHERE id = {id} FOR UPDATE"
        ))
        .expect("lock the pipeline row");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _ = released.recv_timeout(Duration::from_secs(10));
        holder.batch_execute("ROLLBACK").expect("release");
    });
    let url = served.url(&format!("/api/v1/pipelines/{id}/cancel"));
    let cancel = tokio::spawn(async move { post(&url, ADMIN, &json!({})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cancel.is_finished(), "the cancel waits for the row lock");
    let started = Instant::now();
    let health = client()
        .get(served.url("/healthz"))
        .send()
        .await
        .expect("answered while the cancel is blocked");
    let waited = started.elapsed();
    release.send(()).expect("the holder listens");
    holder.join().expect("the holder releases");
    assert_eq!(health.status().as_u16(), 200);
    assert!(waited < Duration::from_secs(5), "healthz waited {waited:?}");
    let (status, body) = cancel.await.expect("the cancel completes");
    assert_eq!(status, StatusCode::OK, "{body}");
    served.shut_down().await;
}

/// Starts a runner's single long-poll; it answers with the job's name, or `None` on 204.
fn wait_for_a_job(url: String, token: String) -> tokio::task::JoinHandle<Option<String>> {
    tokio::spawn(async move {
        let (status, job) = post(&url, &token, &json!({ "wait_seconds": 20 })).await;
        match status {
            StatusCode::CREATED => Some(job["name"].as_str().expect("a name").to_owned()),
            StatusCode::NO_CONTENT => None,
            other => panic!("the job request answered {other}: {job}"),
        }
    })
}

/// One pending build wakes one waiter, the one that has waited longest; here it cannot take
/// the build, so it hands the wake-up on to a runner whose tags might.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_runner_that_cannot_take_the_build_wakes_one_that_can() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, linux) = app.runner("linux", &["linux"]).await;
    let (_, gpu) = app.runner("gpu", &["linux", "gpu"]).await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let first = wait_for_a_job(url.clone(), linux);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = wait_for_a_job(url, gpu);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    app.pipeline(
        project,
        json!([{ "name": "train", "script": ["true"], "tags": ["gpu"] }]),
    )
    .await;
    let taken = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the gpu runner is woken, not left to its timeout")
        .expect("the request completes");
    assert_eq!(taken.as_deref(), Some("train"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!first.is_finished(), "the linux runner still waits");
    served.shut_down().await;
    assert_eq!(first.await.expect("the request completes"), None);
}

/// Runners with different tags wait once each while pipelines appear one after another. After
/// each pipeline, no runner may go on waiting while a build it could take is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_build_stays_pending_while_a_runner_that_could_take_it_waits() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let runners: [&[&str]; 6] = [
        &["linux"],
        &["linux"],
        &["docker"],
        &["gpu", "linux"],
        &["gpu"],
        &["docker", "linux"],
    ];
    let mut tokens = Vec::new();
    for (i, tags) in runners.iter().enumerate() {
        tokens.push(app.runner(&format!("r{i}"), tags).await.1);
    }
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let mut waiting = Vec::new();
    for token in tokens {
        waiting.push(wait_for_a_job(url.clone(), token));
        // Staggered, so that who has waited longest is well defined.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The jobs' tags, one pipeline per line; `arm` matches no runner.
    let pipelines: [&[&[&str]]; 6] = [
        &[&["gpu"]],
        &[&["arm"]],
        &[&[]],
        &[&["docker"], &["gpu"], &["arm", "linux"]],
        &[&["docker", "linux"]],
        &[&["linux"], &[]],
    ];
    let mut ids = Vec::new();
    for (p, jobs) in pipelines.iter().enumerate() {
        let jobs: Vec<Value> = jobs
            .iter()
            .enumerate()
            .map(|(j, tags)| json!({ "name": format!("p{p}-j{j}"), "script": ["true"], "tags": tags }))
            .collect();
        let created = app.pipeline(project, Value::Array(jobs)).await;
        ids.push(created["id"].as_i64().expect("an id"));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let still_waiting: Vec<&[&str]> = runners
                .iter()
                .zip(&waiting)
                .filter(|(_, request)| !request.is_finished())
                .map(|(tags, _)| *tags)
                .collect();
            let stranded = stranded(&app, &ids, &still_waiting).await;
            if stranded.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after pipeline {p}, runners wait while these builds they could take are pending: {stranded:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    served.shut_down().await;
    for request in waiting {
        // Whoever got nothing is answered 204 at shutdown.
        request.await.expect("the request completes");
    }
}

/// The pending builds of these pipelines that one of these runners could take, by name.
async fn stranded(app: &TestApp, pipelines: &[i64], runners: &[&[&str]]) -> Vec<String> {
    let mut stranded = Vec::new();
    for id in pipelines {
        let pipeline = app.get(&format!("/api/v1/pipelines/{id}")).await.json();
        for build in pipeline["builds"].as_array().expect("builds") {
            let needs = build["tags"].as_array().expect("tags");
            let takers = runners.iter().filter(|tags| {
                needs
                    .iter()
                    .all(|tag| tags.contains(&tag.as_str().expect("a tag")))
            });
            if build["status"] == "pending" && takers.count() > 0 {
                stranded.push(build["name"].as_str().expect("a name").to_owned());
            }
        }
    }
    stranded
}

#[derive(diesel::QueryableByName)]
struct Backends {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    backends: i32,
}

/// Counts the server's listening connections to this database, terminating them (and waiting
/// until they are gone) when asked.
fn listeners(conn: &mut diesel::PgConnection, terminate: bool) -> i32 {
    use diesel::RunQueryDsl as _;
    let what = if terminate {
        "count(pg_terminate_backend(pid, 5000))"
    } else {
        "count(*)"
    };
    diesel::sql_query(format!(
        "SELECT {what}::int AS backends FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'"
    ))
    .get_result::<Backends>(conn)
    .expect("query the listeners")
    .backends
}

/// Opens or closes a database to new connections, from a connection to another database (a
/// database cannot close itself).
fn allow_connections(db: &lockstep_test_db::TestDb, allow: bool) {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    let url = db.url().replacen(db.name(), "postgres", 1);
    let mut maintenance =
        diesel::PgConnection::establish(&url).expect("a connection to the postgres database");
    maintenance
        .batch_execute(&format!(
            r#"ALTER DATABASE "{}" WITH ALLOW_CONNECTIONS {allow}"#,
            db.name()
        ))
        .expect("alter the database");
}

/// Notifications sent while the listener is disconnected are lost; once it is back, every
/// waiting runner looks again, and each finds its build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_listener_lets_every_waiting_runner_look_again() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let served = app.serve().await;
    let url = served.url("/api/v1/jobs/request");
    let mut waiting = Vec::new();
    for i in 0..3 {
        let (_, token) = app.runner(&format!("r{i}"), &[]).await;
        waiting.push(wait_for_a_job(url.clone(), token));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Cut the listener's connection and keep it from reconnecting (the pool's connections stay
    // up) until the pipeline below has committed, unheard.
    let mut conn = app.db.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(&mut conn, false) == 0 {
        assert!(Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    allow_connections(&app.db, false);
    assert_eq!(listeners(&mut conn, true), 1, "one listening connection");
    app.pipeline(
        project,
        json!([
            { "name": "a", "script": ["true"] },
            { "name": "b", "script": ["true"] },
            { "name": "c", "script": ["true"] },
        ]),
    )
    .await;
    allow_connections(&app.db, true);
    for request in waiting {
        let taken = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("woken by the reconnect, not left to its timeout")
            .expect("the request completes");
        assert!(taken.is_some());
    }
    served.shut_down().await;
}

/// The answer to a claim is lost (the runner's connection drops after the claim commits): the
/// build goes back to the queue once its acknowledgement lease passes, and the next runner gets
/// the same build, its attempt not spent, instead of a `runner_lost` failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_answer_is_lost_is_handed_to_another_runner_with_its_attempt() {
    use tokio::io::AsyncWriteExt as _;
    let mut settings = crate::support::settings(Duration::from_secs(30));
    settings.acknowledge_within = Duration::from_secs(1);
    let app = TestApp::with_settings(&settings);
    let project = app.project("app").await;
    let (_, lost) = app.runner("lost", &[]).await;
    let (_, other) = app.runner("other", &[]).await;
    let pipeline = app
        .pipeline(
            project,
            json!([{ "name": "deploy", "environment": "prod", "script": ["true"] }]),
        )
        .await;
    let build = pipeline["builds"][0]["id"].as_i64().expect("a build id");
    let served = app.serve().await;

    // The request goes out whole; its answer is never read.
    let mut socket = tokio::net::TcpStream::connect(served.address)
        .await
        .expect("connect");
    let body = "{}";
    let request = format!(
        "POST /api/v1/jobs/request HTTP/1.1\r\nhost: lockstep\r\nauthorization: Bearer {lost}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/api/v1/builds/{build}")).await.json()["status"] != "running" {
        assert!(Instant::now() < deadline, "the claim never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let claimed = Instant::now();
    drop(socket);

    let (status, job) = post(
        &served.url("/api/v1/jobs/request"),
        &other,
        &json!({ "wait_seconds": 20 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(
        (job["id"].as_i64(), job["attempt"].as_i64()),
        (Some(build), Some(1))
    );
    assert!(
        claimed.elapsed() < Duration::from_secs(5),
        "handed on within the acknowledgement lease and a reaper sweep: {:?}",
        claimed.elapsed()
    );
    let pipeline = app
        .get(&format!("/api/v1/pipelines/{}", pipeline["id"]))
        .await
        .json();
    let builds = pipeline["builds"].as_array().expect("builds");
    assert_eq!(builds.len(), 1, "no attempt was spent: {pipeline:#}");
    assert_eq!(builds[0]["failure_reason"], Value::Null);
    assert_eq!(builds[0]["deployment"]["status"], "running");
    served.shut_down().await;
}
