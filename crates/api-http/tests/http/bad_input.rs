//! The bad-input table: for every route, requests that must be refused, each with the exact
//! status and error code expected, and the proof that a refused call changed no row.
//!
//! One fixture serves every case: a project with a finished pipeline, a running pipeline whose
//! build runner A holds, a manual build with an environment and a resource group, a pending
//! build nobody holds yet, runner B and a retired runner. The pending build is bait: a job request wrongly accepted
//! would claim it, and the fingerprint would show it.

use crate::support::{ADMIN, Answer, As, TestApp, build_named};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use lockstep_api_http::router;
use serde_json::{Value, json};
use tower::ServiceExt;

mod files;

/// The JSON body limit of the router, plus one byte.
const OVER_JSON_LIMIT: usize = 8 * 1024 * 1024 + 1;
/// The log chunk limit of `/jobs/{id}/log`, plus one byte.
const OVER_LOG_CHUNK: usize = 1024 * 1024 + 1;

/// Who a request claims to be. Unlike [`As`], it can send any `Authorization` header.
#[derive(Debug, Clone, Copy)]
enum Who<'f> {
    Admin,
    Runner(&'f str),
    Anonymous,
    /// The raw value of the `Authorization` header.
    Header(&'f str),
}

/// One refused request and what the answer must be.
#[derive(Debug)]
struct Case<'f> {
    name: String,
    method: Method,
    path: String,
    who: Who<'f>,
    body: Vec<u8>,
    /// The `Content-Type` header, when the case sends one.
    content_type: Option<&'static str>,
    status: Option<StatusCode>,
    code: &'static str,
    /// `error.field`, when the case pins it.
    field: Option<String>,
    /// `error.status` (the current status on a 409 or 410), when the case pins it.
    current: Option<&'static str>,
}

impl<'f> Case<'f> {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>, who: Who<'f>) -> Self {
        Self {
            name: name.into(),
            method,
            path: path.into(),
            who,
            body: Vec::new(),
            content_type: None,
            status: None,
            code: "",
            field: None,
            current: None,
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn json(self, body: &Value) -> Self {
        self.body(body.to_string())
    }

    fn content_type(mut self, value: &'static str) -> Self {
        self.content_type = Some(value);
        self
    }

    fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = Some(StatusCode::from_u16(status).expect("a valid status"));
        self.code = code;
        self
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn current(mut self, status: &'static str) -> Self {
        self.current = Some(status);
        self
    }
}

/// The shared state every case runs against.
struct Fixture {
    app: TestApp,
    router: Router,
    project: i64,
    /// A pipeline whose one build succeeded.
    finished_pipeline: i64,
    /// A pipeline with a running build and a manual one.
    running_pipeline: i64,
    /// A build runner A ran to success; its log holds `hello\n`.
    finished: i64,
    /// A build runner A holds, running; its log holds `running\n`.
    running: i64,
    /// A manual build, deploying to `staging`.
    manual: i64,
    /// A pending build nobody holds.
    pending: i64,
    environment: i64,
    runner_a: String,
    runner_b: String,
    runner_b_id: i64,
    retired: String,
    /// `Bearer ` and the admin token with one character more.
    wrong_admin: String,
}

/// Where the running build's log ends.
const RUNNING_LOG_END: u64 = 8;

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::new();
        let router = router(app.state.clone());
        let project = app.project("app").await;
        let (_, runner_a) = app.runner("runner-a", &[]).await;

        let finished_pipeline = app
            .pipeline(project, json!([{ "name": "unit", "script": ["true"] }]))
            .await;
        let finished = id_of(&app.acquire(&runner_a).await.expect("unit is pending"));
        append(&app, &runner_a, finished, 0, "hello\n").await;
        app.runner_post(
            &format!("/api/v1/jobs/{finished}/finish"),
            &runner_a,
            &json!({ "result": "success" }),
        )
        .await
        .expect(StatusCode::OK);

        let running_pipeline = app
            .pipeline(
                project,
                json!([
                    { "name": "compile", "stage": "build", "script": ["make"] },
                    { "name": "release", "stage": "deploy", "script": ["ship"], "when": "manual",
                      "needs": [], "environment": "staging", "resource_group": GROUP },
                ]),
            )
            .await;
        let manual = id_of(build_named(&running_pipeline, "release"));
        assert_eq!(
            build_named(&running_pipeline, "release")["status"],
            "manual"
        );
        let running = id_of(&app.acquire(&runner_a).await.expect("compile is pending"));
        append(&app, &runner_a, running, 0, "running\n").await;

        let (runner_b_id, runner_b) = app.runner("runner-b", &[]).await;
        let (retired_id, retired) = app.runner("runner-c", &[]).await;
        app.call(
            Method::DELETE,
            &format!("/api/v1/runners/{retired_id}"),
            As::Admin,
            "",
        )
        .await
        .expect(StatusCode::NO_CONTENT);

        let bait = app
            .pipeline(project, json!([{ "name": "queued", "script": ["true"] }]))
            .await;
        let pending = id_of(build_named(&bait, "queued"));
        assert_eq!(build_named(&bait, "queued")["status"], "pending");

        let environments = app
            .get(&format!("/api/v1/projects/{project}/environments"))
            .await
            .expect(StatusCode::OK)
            .json();
        let environment = id_of(&environments[0]);

        Self {
            app,
            router,
            project,
            finished_pipeline: id_of(&finished_pipeline),
            running_pipeline: id_of(&running_pipeline),
            finished,
            running,
            manual,
            pending,
            environment,
            runner_a,
            runner_b,
            runner_b_id,
            retired,
            wrong_admin: format!("Bearer {ADMIN}x"),
        }
    }

    fn a(&self) -> Who<'_> {
        Who::Runner(&self.runner_a)
    }

    fn b(&self) -> Who<'_> {
        Who::Runner(&self.runner_b)
    }

    /// Sends a request. A handler that panics is reported, not propagated, so that one run
    /// shows every failing case.
    async fn send(&self, case: &Case<'_>) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(case.method.clone())
            .uri(&case.path);
        let authorization = match case.who {
            Who::Admin => Some(format!("Bearer {ADMIN}")),
            Who::Runner(token) => Some(format!("Bearer {token}")),
            Who::Anonymous => None,
            Who::Header(value) => Some(value.to_owned()),
        };
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(value) = case.content_type {
            request = request.header("content-type", value);
        }
        let request = request
            .body(Body::from(case.body.clone()))
            .map_err(|error| format!("cannot build the request: {error}"))?;
        let router = self.router.clone();
        let response = tokio::spawn(async move { router.oneshot(request).await })
            .await
            .map_err(|error| format!("the handler panicked: {error}"))?
            .map_err(|error| format!("the router failed: {error}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| format!("unreadable body: {error}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.to_vec(),
        })
    }

    /// Runs one case; `Err` lists what was wrong with the answer.
    async fn check(&self, case: &Case<'_>) -> Result<(), String> {
        let expected = case.status.ok_or("the case expects no status")?;
        let before = self.app.fingerprint();
        let answer = self.send(case).await?;
        let changed = self.app.fingerprint() != before;
        let mut problems = Vec::new();
        if answer.status != expected {
            problems.push(format!("status {} instead of {expected}", answer.status));
        }
        if answer.status.is_server_error() {
            problems.push("a server error".to_owned());
        }
        if changed {
            problems.push("rows changed".to_owned());
        }
        problems.extend(error_problems(case, &answer));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}; body: {}",
                problems.join(", "),
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
            ))
        }
    }
}

/// What is wrong with the error body (and, on a 416, the `X-Log-Offset` header).
fn error_problems(case: &Case<'_>, answer: &Answer) -> Vec<String> {
    let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
        return vec!["the body is not JSON".to_owned()];
    };
    let error = &body["error"];
    let mut problems = Vec::new();
    if error["code"] != case.code {
        problems.push(format!("code {} instead of {}", error["code"], case.code));
    }
    if !error["message"].is_string() {
        problems.push("no message".to_owned());
    }
    if let Some(field) = &case.field
        && error["field"] != field.as_str()
    {
        problems.push(format!("field {} instead of {field}", error["field"]));
    }
    if let Some(current) = case.current
        && error["status"] != current
    {
        problems.push(format!("status {} instead of {current}", error["status"]));
    }
    if answer.status == StatusCode::RANGE_NOT_SATISFIABLE {
        let header = answer.header("x-log-offset").map(str::to_owned);
        let offset = error["offset"].as_u64().map(|o| o.to_string());
        if offset.is_none() || header != offset {
            problems.push(format!(
                "offset {offset:?} and X-Log-Offset {header:?} should agree"
            ));
        }
    }
    problems
}

fn id_of(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

async fn append(app: &TestApp, token: &str, build: i64, offset: u64, data: &'static str) {
    app.call(
        Method::POST,
        &format!("/api/v1/jobs/{build}/log?offset={offset}"),
        As::Runner(token),
        data,
    )
    .await
    .expect(StatusCode::ACCEPTED);
}

/// A JSON object over the 8 MiB body limit.
fn huge_json() -> Vec<u8> {
    let mut body = br#"{"name":""#.to_vec();
    body.resize(OVER_JSON_LIMIT, b'a');
    body.extend_from_slice(br#""}"#);
    body
}

/// Bodies that are not a JSON object at all, for every route that reads one. Each is a 400
/// without a field: there is no field to blame.
fn not_an_object<'f>(route: &str, method: &Method, path: &str, who: Who<'f>) -> Vec<Case<'f>> {
    let bodies: [(&str, &[u8]); 8] = [
        ("`{`", b"{"),
        ("an array", b"[]"),
        ("a string", b"\"x\""),
        ("null", b"null"),
        ("a number", b"5"),
        ("trailing garbage", b"{} x"),
        ("invalid UTF-8", b"{\"name\": \"\xff\"}"),
        ("a second object", b"{}{}"),
    ];
    let mut cases: Vec<Case<'f>> = bodies
        .into_iter()
        .map(|(label, body)| {
            Case::new(format!("{route}: {label}"), method.clone(), path, who)
                .body(body)
                .is(400, "bad_request")
        })
        .collect();
    cases.push(
        Case::new(format!("{route}: over 8 MiB"), method.clone(), path, who)
            .body(huge_json())
            .is(413, "payload_too_large"),
    );
    cases
}

/// Unknown routes and known routes with a method they do not take.
fn routing(f: &Fixture) -> Vec<Case<'_>> {
    let mut cases = vec![
        Case::new("unknown route", Method::GET, "/api/v1/nope", Who::Admin).is(404, "not_found"),
        Case::new(
            "unknown route outside /api",
            Method::GET,
            "/nope",
            Who::Anonymous,
        )
        .is(404, "not_found"),
        Case::new(
            "a collection without a list",
            Method::GET,
            "/api/v1/builds",
            Who::Admin,
        )
        .is(404, "not_found"),
        Case::new("an empty id", Method::GET, "/api/v1/builds/", Who::Admin).is(404, "not_found"),
        Case::new(
            "a path under a build",
            Method::GET,
            format!("/api/v1/builds/{}/nope", f.running),
            Who::Admin,
        )
        .is(404, "not_found"),
        Case::new(
            "an old API version",
            Method::GET,
            "/api/v0/projects",
            Who::Admin,
        )
        .is(404, "not_found"),
    ];
    let (p, pl, b, env, r) = (
        f.project,
        f.running_pipeline,
        f.running,
        f.environment,
        f.runner_b_id,
    );
    let wrong_methods = [
        (Method::DELETE, "/api/v1/projects".to_owned()),
        (Method::PUT, format!("/api/v1/projects/{p}/pipelines")),
        (Method::POST, format!("/api/v1/projects/{p}/environments")),
        (Method::DELETE, format!("/api/v1/pipelines/{pl}")),
        (Method::GET, format!("/api/v1/pipelines/{pl}/cancel")),
        (Method::GET, format!("/api/v1/pipelines/{pl}/retry")),
        (Method::DELETE, format!("/api/v1/builds/{b}")),
        (Method::GET, format!("/api/v1/builds/{b}/cancel")),
        (Method::GET, format!("/api/v1/builds/{b}/retry")),
        (Method::GET, format!("/api/v1/builds/{b}/play")),
        (Method::POST, format!("/api/v1/builds/{b}/log")),
        (
            Method::POST,
            format!("/api/v1/environments/{env}/deployments"),
        ),
        (Method::PUT, "/api/v1/runners".to_owned()),
        (Method::GET, format!("/api/v1/runners/{r}")),
        (Method::GET, "/api/v1/jobs/request".to_owned()),
        (Method::GET, "/api/v1/jobs/watch".to_owned()),
        (Method::GET, format!("/api/v1/jobs/{b}/heartbeat")),
        (Method::GET, format!("/api/v1/jobs/{b}/finish")),
        (Method::GET, "/api/v1/jobs/batch/request".to_owned()),
        (Method::GET, "/api/v1/jobs/batch/finish".to_owned()),
        (Method::GET, format!("/api/v1/jobs/{b}/log")),
        (Method::POST, "/api/v1/openapi.json".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::POST, "/readyz".to_owned()),
        (Method::DELETE, "/metrics".to_owned()),
    ];
    for (method, path) in wrong_methods {
        cases.push(
            Case::new(format!("{method} {path}"), method, path, Who::Admin)
                .is(405, "method_not_allowed"),
        );
    }
    cases
}

/// A request without its credentials or expectation: the routes that several groups share.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    path: String,
    body: Vec<u8>,
}

fn get(path: impl Into<String>) -> Route {
    Route {
        method: Method::GET,
        path: path.into(),
        body: Vec::new(),
    }
}

fn post(path: impl Into<String>, body: impl Into<Vec<u8>>) -> Route {
    Route {
        method: Method::POST,
        path: path.into(),
        body: body.into(),
    }
}

fn put(path: impl Into<String>, body: impl Into<Vec<u8>>) -> Route {
    Route {
        method: Method::PUT,
        path: path.into(),
        body: body.into(),
    }
}

fn delete(path: impl Into<String>) -> Route {
    Route {
        method: Method::DELETE,
        path: path.into(),
        body: Vec::new(),
    }
}

impl Route {
    /// The route with `{id}` in its path replaced.
    fn with_id(&self, id: &str) -> Self {
        Self {
            path: self.path.replace("{id}", id),
            ..self.clone()
        }
    }

    fn case<'f>(&self, label: &str, who: Who<'f>) -> Case<'f> {
        let name = format!("{} {}: {label}", self.method, self.path);
        Case::new(name, self.method.clone(), &self.path, who).body(self.body.clone())
    }
}

const VALID_PIPELINE: &str = r#"{"ref":"main","jobs":[{"name":"a","script":["true"]}]}"#;
const SUCCESS: &str = r#"{"result":"success"}"#;

/// Every admin route, with a request that would succeed (and mostly change rows) if
/// authentication were skipped.
fn admin_routes(f: &Fixture) -> Vec<Route> {
    let (p, b) = (f.project, f.running);
    vec![
        post("/api/v1/projects", r#"{"name":"intruder"}"#),
        get("/api/v1/projects"),
        post(format!("/api/v1/projects/{p}/pipelines"), VALID_PIPELINE),
        post(format!("/api/v1/projects/{p}/lint"), VALID_PIPELINE),
        get(format!("/api/v1/projects/{p}/pipelines")),
        get(format!("/api/v1/projects/{p}/environments")),
        get(format!("/api/v1/projects/{p}/resource_groups")),
        get(format!("/api/v1/projects/{p}/resource_groups/{GROUP}")),
        put(
            format!("/api/v1/projects/{p}/resource_groups/{GROUP}"),
            r#"{"limit":2}"#,
        ),
        get(format!("/api/v1/pipelines/{}", f.running_pipeline)),
        post(
            format!("/api/v1/pipelines/{}/cancel", f.running_pipeline),
            "",
        ),
        post(
            format!("/api/v1/pipelines/{}/retry", f.finished_pipeline),
            "",
        ),
        get(format!("/api/v1/builds/{b}")),
        post(format!("/api/v1/builds/{b}/cancel"), ""),
        post(format!("/api/v1/builds/{}/retry", f.finished), ""),
        post(format!("/api/v1/builds/{}/play", f.manual), ""),
        get(format!("/api/v1/builds/{b}/log")),
        get(format!(
            "/api/v1/environments/{}/deployments",
            f.environment
        )),
        post("/api/v1/runners", r#"{"name":"intruder"}"#),
        get("/api/v1/runners"),
        delete(format!("/api/v1/runners/{}", f.runner_b_id)),
    ]
}

/// Every runner route, likewise: runner A would be allowed each of these.
fn runner_routes(f: &Fixture) -> Vec<Route> {
    let b = f.running;
    vec![
        post("/api/v1/jobs/request", "{}"),
        post("/api/v1/jobs/watch", format!(r#"{{"ids":[{b}]}}"#)),
        post(format!("/api/v1/jobs/{b}/heartbeat"), ""),
        post(format!("/api/v1/jobs/{b}/finish"), SUCCESS),
        post("/api/v1/jobs/batch/request", r#"{"max_jobs":5}"#),
        post(
            "/api/v1/jobs/batch/finish",
            format!(r#"{{"reports":[{{"id":{b},"result":"success"}}]}}"#),
        ),
        post(
            format!("/api/v1/jobs/{b}/log?offset={RUNNING_LOG_END}"),
            "more\n",
        ),
    ]
}

/// Every route under every kind of wrong credentials: 401.
fn authentication(f: &Fixture) -> Vec<Case<'_>> {
    let bad_admin: Vec<(&str, Who<'_>)> = vec![
        ("no token", Who::Anonymous),
        ("Basic credentials", Who::Header("Basic xyz")),
        ("an empty bearer token", Who::Header("Bearer ")),
        ("a blank bearer token", Who::Header("Bearer    ")),
        ("the token without `Bearer`", Who::Header(ADMIN)),
        ("a wrong admin token", Who::Header(&f.wrong_admin)),
        ("a runner token", f.a()),
    ];
    let bad_runner: Vec<(&str, Who<'_>)> = vec![
        ("no token", Who::Anonymous),
        ("Basic credentials", Who::Header("Basic xyz")),
        ("an empty bearer token", Who::Header("Bearer ")),
        ("the token without `Bearer`", Who::Header(&f.runner_a)),
        ("an unknown runner token", Who::Runner("lsr_0000")),
        // The admin token opens admin routes only: it is not a runner's.
        ("the admin token", Who::Admin),
        ("a retired runner", Who::Runner(&f.retired)),
    ];
    let mut cases = Vec::new();
    for (routes, credentials) in [
        (admin_routes(f), &bad_admin),
        (runner_routes(f), &bad_runner),
    ] {
        for route in &routes {
            for (label, who) in credentials {
                cases.push(route.case(label, *who).is(401, "unauthorized"));
            }
        }
    }
    cases
}

/// Every route with an `{id}`, with ids that do not parse (400, `field: id`) and ids that
/// parse but name nothing (404).
fn bad_ids(f: &Fixture) -> Vec<Case<'_>> {
    let routes: Vec<(Route, Who<'_>)> = vec![
        (
            post("/api/v1/projects/{id}/pipelines", VALID_PIPELINE),
            Who::Admin,
        ),
        (get("/api/v1/projects/{id}/pipelines"), Who::Admin),
        (get("/api/v1/projects/{id}/environments"), Who::Admin),
        (get("/api/v1/pipelines/{id}"), Who::Admin),
        (post("/api/v1/pipelines/{id}/cancel", ""), Who::Admin),
        (post("/api/v1/pipelines/{id}/retry", ""), Who::Admin),
        (get("/api/v1/builds/{id}"), Who::Admin),
        (post("/api/v1/builds/{id}/cancel", ""), Who::Admin),
        (post("/api/v1/builds/{id}/retry", ""), Who::Admin),
        (post("/api/v1/builds/{id}/play", ""), Who::Admin),
        (get("/api/v1/builds/{id}/log"), Who::Admin),
        (get("/api/v1/environments/{id}/deployments"), Who::Admin),
        (delete("/api/v1/runners/{id}"), Who::Admin),
        (post("/api/v1/jobs/{id}/heartbeat", ""), f.a()),
        (post("/api/v1/jobs/{id}/finish", SUCCESS), f.a()),
        (post("/api/v1/jobs/{id}/log?offset=0", "x"), f.a()),
    ];
    let ids = [
        ("abc", 400),
        ("1.5", 400),
        // One past i64::MAX: a number, but not an id.
        ("9223372036854775808", 400),
        ("99999999", 404),
        // Negative ids parse as i64 and simply name nothing.
        ("-1", 404),
        ("0", 404),
    ];
    let mut cases = Vec::new();
    for (route, who) in &routes {
        for (id, status) in ids {
            let case = route.with_id(id).case("bad id", *who);
            cases.push(if status == 400 {
                case.is(400, "bad_request").field("id")
            } else {
                case.is(404, "not_found")
            });
        }
    }
    cases
}

fn projects<'f>() -> Vec<Case<'f>> {
    let path = "/api/v1/projects";
    let create = |name: &str, body: Value| {
        Case::new(
            format!("create project: {name}"),
            Method::POST,
            path,
            Who::Admin,
        )
        .json(&body)
    };
    let mut cases = not_an_object("create project", &Method::POST, path, Who::Admin);
    cases.extend([
        // An empty body reads as `{}`, which lacks the name.
        Case::new("create project: no body", Method::POST, path, Who::Admin).is(400, "bad_request"),
        create("no name", json!({}))
            .is(400, "bad_request")
            .field("name"),
        create("a number for name", json!({ "name": 5 }))
            .is(400, "bad_request")
            .field("name"),
        create("null for name", json!({ "name": null }))
            .is(400, "bad_request")
            .field("name"),
        create("an unknown field", json!({ "name": "x", "colour": 1 }))
            .is(400, "bad_request")
            .field("colour"),
        create("an empty name", json!({ "name": "" }))
            .is(422, "invalid")
            .field("name"),
        create("a blank name", json!({ "name": "  " }))
            .is(422, "invalid")
            .field("name"),
        create("a 256-character name", json!({ "name": "x".repeat(256) }))
            .is(422, "invalid")
            .field("name"),
        // PostgreSQL text cannot hold NUL: refused up front rather than failing in the database.
        create("a NUL in the name", json!({ "name": "a\u{0}b" }))
            .is(422, "invalid")
            .field("name"),
        create("a newline in the name", json!({ "name": "a\nb" }))
            .is(422, "invalid")
            .field("name"),
        // Names follow the domain's one rule, as job names do: no surrounding spaces.
        create("a leading space in the name", json!({ "name": " app" }))
            .is(422, "invalid")
            .field("name"),
        create("a taken name", json!({ "name": "app" }))
            .is(409, "already_exists")
            .field("name"),
    ]);
    cases
}

fn submit<'f>(f: &Fixture, name: &str, body: &Value) -> Case<'f> {
    let path = format!("/api/v1/projects/{}/pipelines", f.project);
    Case::new(
        format!("submit pipeline: {name}"),
        Method::POST,
        path,
        Who::Admin,
    )
    .json(body)
}

/// A valid submission with `fields` put in (or replaced).
fn valid_with(fields: &Value) -> Value {
    let mut body = json!({ "ref": "main", "jobs": [{ "name": "a", "script": ["x"] }] });
    for (key, value) in fields.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

/// A submission of these jobs.
fn jobs(jobs: &Value) -> Value {
    json!({ "ref": "main", "jobs": jobs })
}

/// A submission of one job.
fn one(job: &Value) -> Value {
    jobs(&json!([job]))
}

/// A submission of one job `a` with `fields` put in (or replaced).
fn job_a(fields: &Value) -> Value {
    let mut job = json!({ "name": "a", "script": ["x"] });
    for (key, value) in fields.as_object().expect("an object") {
        job[key] = value.clone();
    }
    one(&job)
}

/// Submissions that do not read (400, naming the JSON path), or whose `ref` or `sha` the
/// handler refuses (422).
fn pipeline_bodies(f: &Fixture) -> Vec<Case<'_>> {
    let path = format!("/api/v1/projects/{}/pipelines", f.project);
    let mut cases = not_an_object("submit pipeline", &Method::POST, &path, Who::Admin);
    cases.extend([
        submit(
            f,
            "no ref",
            &json!({ "jobs": [{ "name": "a", "script": ["x"] }] }),
        )
        .is(400, "bad_request"),
        submit(f, "no jobs", &json!({ "ref": "main" })).is(400, "bad_request"),
        submit(f, "a number for ref", &valid_with(&json!({ "ref": 5 })))
            .is(400, "bad_request")
            .field("ref"),
        submit(f, "a string for jobs", &valid_with(&json!({ "jobs": "x" })))
            .is(400, "bad_request")
            .field("jobs"),
        submit(f, "a number for sha", &valid_with(&json!({ "sha": 5 })))
            .is(400, "bad_request")
            .field("sha"),
        submit(f, "an unknown field", &valid_with(&json!({ "colour": 1 })))
            .is(400, "bad_request")
            .field("colour"),
        submit(f, "an unknown job field", &job_a(&json!({ "colour": 1 })))
            .is(400, "bad_request")
            .field("jobs[0].colour"),
        submit(f, "a string for script", &job_a(&json!({ "script": "x" })))
            .is(400, "bad_request")
            .field("jobs[0].script"),
        submit(f, "a job without script", &one(&json!({ "name": "a" })))
            .is(400, "bad_request")
            .field("jobs[0].script"),
        submit(f, "a number for a job name", &job_a(&json!({ "name": 1 })))
            .is(400, "bad_request")
            .field("jobs[0].name"),
        // `when` is an enum: a value outside it does not read, like any wrong type.
        submit(f, "an unknown when", &job_a(&json!({ "when": "maybe" })))
            .is(400, "bad_request")
            .field("jobs[0].when"),
        submit(
            f,
            "a negative timeout",
            &job_a(&json!({ "timeout_seconds": -1 })),
        )
        .is(400, "bad_request")
        .field("jobs[0].timeout_seconds"),
        submit(f, "a string for retry", &job_a(&json!({ "retry": "2" })))
            .is(400, "bad_request")
            .field("jobs[0].retry"),
        submit(f, "a string for needs", &job_a(&json!({ "needs": "b" })))
            .is(400, "bad_request")
            .field("jobs[0].needs"),
        // serde would read a struct from an array of its fields; a job must be an object.
        submit(f, "a job as an array", &jobs(&json!([["a", null, ["x"]]])))
            .is(400, "bad_request")
            .field("jobs[0]"),
        submit(f, "an empty ref", &valid_with(&json!({ "ref": "" })))
            .is(422, "invalid")
            .field("ref"),
        submit(
            f,
            "a 256-character ref",
            &valid_with(&json!({ "ref": "r".repeat(256) })),
        )
        .is(422, "invalid")
        .field("ref"),
        submit(
            f,
            "a NUL in the ref",
            &valid_with(&json!({ "ref": "a\u{0}" })),
        )
        .is(422, "invalid")
        .field("ref"),
        submit(f, "an empty sha", &valid_with(&json!({ "sha": "" })))
            .is(422, "invalid")
            .field("sha"),
        submit(f, "a sha with `!`", &valid_with(&json!({ "sha": "abc!" })))
            .is(422, "invalid")
            .field("sha"),
        submit(
            f,
            "a sha with a space",
            &valid_with(&json!({ "sha": "abc 123" })),
        )
        .is(422, "invalid")
        .field("sha"),
        submit(
            f,
            "a 65-character sha",
            &valid_with(&json!({ "sha": "a".repeat(65) })),
        )
        .is(422, "invalid")
        .field("sha"),
    ]);
    cases
}

/// Definitions that read but break a rule: 422, naming the job and the field.
/// The `retry` and `allow_failure` shapes: 400 for one that does not read, 422 for one out of
/// bounds, naming the field.
fn retry_rules(f: &Fixture) -> Vec<Case<'_>> {
    let invalid = |name: &str, body: &Value, field: &str| {
        submit(f, name, body).is(422, "invalid").field(field)
    };
    vec![
        submit(
            f,
            "a misspelt retry key",
            &job_a(&json!({ "retry": { "max": 1, "wehn": "always" } })),
        )
        .is(400, "bad_request")
        .field("jobs[0].retry"),
        submit(
            f,
            "retry without max",
            &job_a(&json!({ "retry": { "when": "always" } })),
        )
        .is(400, "bad_request")
        .field("jobs[0].retry.max"),
        submit(
            f,
            "an unknown retry reason",
            &job_a(&json!({ "retry": { "max": 1, "when": ["sometimes"] } })),
        )
        .is(400, "bad_request")
        .field("jobs[0].retry.when"),
        submit(
            f,
            "a string for allow_failure",
            &job_a(&json!({ "allow_failure": "yes" })),
        )
        .is(400, "bad_request")
        .field("jobs[0].allow_failure"),
        submit(
            f,
            "a misspelt allow_failure key",
            &job_a(&json!({ "allow_failure": { "codes": [1] } })),
        )
        .is(400, "bad_request")
        .field("jobs[0].allow_failure"),
        invalid(
            "retry max 6",
            &job_a(&json!({ "retry": { "max": 6, "when": "always" } })),
            "jobs[a].retry",
        ),
        invalid(
            "an empty retry exit_codes",
            &job_a(&json!({ "retry": { "max": 1, "exit_codes": [] } })),
            "jobs[a].retry",
        ),
        invalid(
            "51 retry exit codes",
            &job_a(&json!({ "retry": { "max": 1, "exit_codes": (0..51).collect::<Vec<i32>>() } })),
            "jobs[a].retry",
        ),
        invalid(
            "an empty allow_failure exit_codes",
            &job_a(&json!({ "allow_failure": { "exit_codes": [] } })),
            "jobs[a].allow_failure",
        ),
    ]
}

fn pipeline_definitions(f: &Fixture) -> Vec<Case<'_>> {
    let long = "x".repeat(256);
    let many: Vec<Value> = (0..=2_000)
        .map(|i| json!({ "name": format!("j{i}"), "script": ["true"] }))
        .collect();
    let invalid = |name: &str, body: &Value, field: &str| {
        submit(f, name, body).is(422, "invalid").field(field)
    };
    vec![
        invalid("no jobs at all", &jobs(&json!([])), "jobs"),
        invalid("too many jobs", &jobs(&Value::Array(many)), "jobs"),
        invalid(
            "duplicate job names",
            &jobs(&json!([{ "name": "a", "script": ["x"] }, { "name": "a", "script": ["y"] }])),
            "jobs[a].name",
        ),
        // A job without a name has no name to put between the brackets.
        invalid(
            "an empty job name",
            &job_a(&json!({ "name": "" })),
            "jobs[].name",
        ),
        invalid(
            "a 256-character job name",
            &job_a(&json!({ "name": long })),
            &format!("jobs[{long}].name"),
        ),
        invalid(
            "a tab in a job name",
            &job_a(&json!({ "name": "a\tb" })),
            "jobs[a\tb].name",
        ),
        invalid(
            "unknown needs",
            &job_a(&json!({ "needs": ["nope"] })),
            "jobs[a].needs",
        ),
        invalid(
            "a need listed twice",
            &jobs(&json!([
                { "name": "a", "script": ["x"] },
                { "name": "b", "script": ["x"], "needs": ["a", "a"] },
            ])),
            "jobs[b].needs",
        ),
        invalid(
            "a job needing itself",
            &job_a(&json!({ "needs": ["a"] })),
            "jobs[a].needs",
        ),
        invalid(
            "a cycle",
            &jobs(&json!([
                { "name": "a", "script": ["x"], "needs": ["b"] },
                { "name": "b", "script": ["x"], "needs": ["a"] },
            ])),
            "jobs[a].needs",
        ),
        invalid(
            "an empty script",
            &job_a(&json!({ "script": [] })),
            "jobs[a].script",
        ),
        invalid(
            "a blank script",
            &job_a(&json!({ "script": ["  ", ""] })),
            "jobs[a].script",
        ),
        invalid(
            "a NUL in a script",
            &job_a(&json!({ "script": ["a\u{0}b"] })),
            "jobs[a].script",
        ),
        invalid(
            "an empty stage",
            &job_a(&json!({ "stage": "" })),
            "jobs[a].stage",
        ),
        invalid(
            "a zero timeout",
            &job_a(&json!({ "timeout_seconds": 0 })),
            "jobs[a].timeout_seconds",
        ),
        invalid(
            "a timeout over a week",
            &job_a(&json!({ "timeout_seconds": 604_801 })),
            "jobs[a].timeout_seconds",
        ),
        invalid("retry 6", &job_a(&json!({ "retry": 6 })), "jobs[a].retry"),
        invalid(
            "a bad environment",
            &job_a(&json!({ "environment": "/prod" })),
            "jobs[a].environment",
        ),
        invalid(
            "an empty tag",
            &job_a(&json!({ "tags": [""] })),
            "jobs[a].tags",
        ),
    ]
}

/// `workflow` and `interruptible` that do not read: 400, naming the JSON path.
fn auto_cancel_bodies(f: &Fixture) -> Vec<Case<'_>> {
    vec![
        submit(
            f,
            "an unknown auto-cancel rule",
            &valid_with(&json!({ "workflow": { "auto_cancel": { "on_new_commit": "always" } } })),
        )
        .is(400, "bad_request")
        .field("workflow.auto_cancel.on_new_commit"),
        submit(
            f,
            "an unknown workflow key",
            &valid_with(&json!({ "workflow": { "rules": [] } })),
        )
        .is(400, "bad_request")
        .field("workflow.rules"),
        submit(
            f,
            "a string for interruptible",
            &job_a(&json!({ "interruptible": "yes" })),
        )
        .is(400, "bad_request")
        .field("jobs[0].interruptible"),
    ]
}

/// Every name field of a submission follows the domain's one rule for names, the `ref` as much
/// as the job, stage, environment and tag names: surrounding spaces are refused everywhere.
fn submitted_names(f: &Fixture) -> Vec<Case<'_>> {
    let invalid = |name: &str, body: &Value, field: &str| {
        submit(f, name, body).is(422, "invalid").field(field)
    };
    vec![
        invalid(
            "a leading space in the ref",
            &valid_with(&json!({ "ref": " main" })),
            "ref",
        ),
        invalid(
            "a trailing space in the ref",
            &valid_with(&json!({ "ref": "main " })),
            "ref",
        ),
        invalid(
            "a leading space in a job name",
            &job_a(&json!({ "name": " a" })),
            "jobs[ a].name",
        ),
        invalid(
            "a trailing space in a stage",
            &job_a(&json!({ "stage": "build " })),
            "jobs[a].stage",
        ),
        invalid(
            "a leading space in an environment",
            &job_a(&json!({ "environment": " staging" })),
            "jobs[a].environment",
        ),
        invalid(
            "a trailing space in a tag",
            &job_a(&json!({ "tags": ["linux "] })),
            "jobs[a].tags",
        ),
        invalid(
            "an empty resource group",
            &job_a(&json!({ "resource_group": "" })),
            "jobs[a].resource_group",
        ),
        invalid(
            "a leading space in a resource group",
            &job_a(&json!({ "resource_group": " prod" })),
            "jobs[a].resource_group",
        ),
    ]
}

/// Listing with bad query parameters (400 naming the parameter), and canceling a pipeline
/// that already succeeded (409 with its status).
fn pipeline_reads(f: &Fixture) -> Vec<Case<'_>> {
    let path = format!("/api/v1/projects/{}/pipelines", f.project);
    let list = |query: &str| {
        let name = format!("list pipelines: {query}");
        Case::new(name, Method::GET, format!("{path}?{query}"), Who::Admin)
    };
    let mut cases: Vec<Case<'_>> = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=4294967296", "limit"),
        ("status=bogus", "status"),
        ("before=x", "before"),
        ("before=9223372036854775808", "before"),
    ]
    .into_iter()
    .map(|(query, field)| list(query).is(400, "bad_request").field(field))
    .collect();
    cases.push(list("limit=1&limit=2").is(400, "bad_request"));
    cases.push(
        Case::new(
            "cancel a pipeline that succeeded",
            Method::POST,
            format!("/api/v1/pipelines/{}/cancel", f.finished_pipeline),
            Who::Admin,
        )
        .is(409, "illegal_transition")
        .current("success"),
    );
    cases
}

fn builds(f: &Fixture) -> Vec<Case<'_>> {
    let on = |action: &str, build: i64, label: &str| {
        Case::new(
            format!("{action} {label}"),
            Method::POST,
            format!("/api/v1/builds/{build}/{action}"),
            Who::Admin,
        )
        .is(409, "illegal_transition")
    };
    let read_log = |query: &str| {
        Case::new(
            format!("read log: {query}"),
            Method::GET,
            format!("/api/v1/builds/{}/log?{query}", f.running),
            Who::Admin,
        )
    };
    vec![
        on("cancel", f.finished, "a build that succeeded").current("success"),
        // Only a finished build can be retried.
        on("retry", f.running, "a running build").current("running"),
        on("retry", f.pending, "a pending build").current("pending"),
        on("retry", f.manual, "a manual build").current("manual"),
        // Only a manual build can be played.
        on("play", f.running, "a running build").current("running"),
        // Not here: playing a pending build answers 200 and changes nothing, as a played
        // manual build is pending and a second click must not fail.
        on("play", f.finished, "a build that succeeded").current("success"),
        read_log("offset=9").is(416, "log_offset").field("offset"),
        read_log("offset=18446744073709551615")
            .is(416, "log_offset")
            .field("offset"),
        read_log("offset=18446744073709551616")
            .is(400, "bad_request")
            .field("offset"),
        read_log("offset=-1").is(400, "bad_request").field("offset"),
        read_log("offset=abc")
            .is(400, "bad_request")
            .field("offset"),
    ]
}

/// The fixture's resource group (its manual build deploys through it).
const GROUP: &str = "production";

/// Resource group reads and set-ups that must be refused: an unknown group or project, a bad
/// name, an unknown mode, a limit outside 1 to 100.
fn resource_groups(f: &Fixture) -> Vec<Case<'_>> {
    let path =
        |project: i64, name: &str| format!("/api/v1/projects/{project}/resource_groups/{name}");
    let set_up = |label: &str, body: Value| {
        Case::new(
            format!("set up a resource group: {label}"),
            Method::PUT,
            path(f.project, GROUP),
            Who::Admin,
        )
        .json(&body)
    };
    let mut cases = not_an_object(
        "set up a resource group",
        &Method::PUT,
        &path(f.project, GROUP),
        Who::Admin,
    );
    cases.extend([
        Case::new(
            "get an unknown group",
            Method::GET,
            path(f.project, "nope"),
            Who::Admin,
        )
        .is(404, "not_found"),
        Case::new(
            "get a group of an unknown project",
            Method::GET,
            path(9_999, GROUP),
            Who::Admin,
        )
        .is(404, "not_found"),
        Case::new(
            "list the groups of an unknown project",
            Method::GET,
            "/api/v1/projects/9999/resource_groups",
            Who::Admin,
        )
        .is(404, "not_found"),
        Case::new(
            "set up a group of an unknown project",
            Method::PUT,
            path(9_999, GROUP),
            Who::Admin,
        )
        .json(&json!({ "limit": 2 }))
        .is(404, "not_found"),
        Case::new(
            "set up a group named with a leading space",
            Method::PUT,
            path(f.project, "%20prod"),
            Who::Admin,
        )
        .json(&json!({}))
        .is(422, "invalid")
        .field("name"),
        set_up("an unknown mode", json!({ "process_mode": "fifo" }))
            .is(400, "bad_request")
            .field("process_mode"),
        set_up("a number for the mode", json!({ "process_mode": 1 }))
            .is(400, "bad_request")
            .field("process_mode"),
        set_up("a zero limit", json!({ "limit": 0 }))
            .is(422, "invalid")
            .field("limit"),
        set_up("a limit of 101", json!({ "limit": 101 }))
            .is(422, "invalid")
            .field("limit"),
        set_up("a negative limit", json!({ "limit": -1 }))
            .is(400, "bad_request")
            .field("limit"),
        set_up("an unknown field", json!({ "slots": 2 }))
            .is(400, "bad_request")
            .field("slots"),
    ]);
    cases
}

fn environments(f: &Fixture) -> Vec<Case<'_>> {
    ["limit=0", "limit=101", "limit=x", "limit=-5"]
        .into_iter()
        .map(|query| {
            Case::new(
                format!("list deployments: {query}"),
                Method::GET,
                format!("/api/v1/environments/{}/deployments?{query}", f.environment),
                Who::Admin,
            )
            .is(400, "bad_request")
            .field("limit")
        })
        .collect()
}

fn runners<'f>() -> Vec<Case<'f>> {
    let path = "/api/v1/runners";
    let register = |name: &str, body: Value| {
        Case::new(
            format!("register runner: {name}"),
            Method::POST,
            path,
            Who::Admin,
        )
        .json(&body)
    };
    let many_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let mut cases = not_an_object("register runner", &Method::POST, path, Who::Admin);
    cases.extend([
        register("no name", json!({ "tags": [] }))
            .is(400, "bad_request")
            .field("name"),
        register("a number for name", json!({ "name": 5 }))
            .is(400, "bad_request")
            .field("name"),
        register("a string for tags", json!({ "name": "r", "tags": "linux" }))
            .is(400, "bad_request")
            .field("tags"),
        register("a number tag", json!({ "name": "r", "tags": [1] }))
            .is(400, "bad_request")
            .field("tags[0]"),
        register("an unknown field", json!({ "name": "r", "colour": 1 }))
            .is(400, "bad_request")
            .field("colour"),
        register("an empty name", json!({ "name": "" }))
            .is(422, "invalid")
            .field("name"),
        register("a 256-character name", json!({ "name": "r".repeat(256) }))
            .is(422, "invalid")
            .field("name"),
        register("a NUL in the name", json!({ "name": "r\u{0}" }))
            .is(422, "invalid")
            .field("name"),
        register("a leading space in the name", json!({ "name": " r" }))
            .is(422, "invalid")
            .field("name"),
        register(
            "an empty tag",
            json!({ "name": "r", "tags": ["linux", ""] }),
        )
        .is(422, "invalid")
        .field("tags[1]"),
        register("a NUL in a tag", json!({ "name": "r", "tags": ["a\u{0}"] }))
            .is(422, "invalid")
            .field("tags[0]"),
        register(
            "a trailing space in a tag",
            json!({ "name": "r", "tags": ["linux", "arm64 "] }),
        )
        .is(422, "invalid")
        .field("tags[1]"),
        register("51 tags", json!({ "name": "r", "tags": many_tags }))
            .is(422, "invalid")
            .field("tags"),
    ]);
    cases
}

/// `POST /jobs/request` as runner B. A pending build is there to be claimed, so a request
/// wrongly accepted would change rows.
fn job_requests(f: &Fixture) -> Vec<Case<'_>> {
    let path = "/api/v1/jobs/request";
    let request = |name: &str, body: Value| {
        Case::new(format!("request a job: {name}"), Method::POST, path, f.b()).json(&body)
    };
    let mut cases = not_an_object("request a job", &Method::POST, path, f.b());
    cases.extend([
        request(
            "a string for wait_seconds",
            json!({ "wait_seconds": "ten" }),
        )
        .is(400, "bad_request")
        .field("wait_seconds"),
        request("a negative wait", json!({ "wait_seconds": -1 }))
            .is(400, "bad_request")
            .field("wait_seconds"),
        request("a fractional wait", json!({ "wait_seconds": 1.5 }))
            .is(400, "bad_request")
            .field("wait_seconds"),
        request("an unknown field", json!({ "wait": 5 }))
            .is(400, "bad_request")
            .field("wait"),
        // It reads, but is beyond the longest wait.
        request("wait_seconds 31", json!({ "wait_seconds": 31 }))
            .is(422, "invalid")
            .field("wait_seconds"),
        request("wait_seconds u32::MAX", json!({ "wait_seconds": u32::MAX }))
            .is(422, "invalid")
            .field("wait_seconds"),
    ]);
    cases
}

fn heartbeats(f: &Fixture) -> Vec<Case<'_>> {
    let beat = |label: &str, build: i64, who| {
        let path = format!("/api/v1/jobs/{build}/heartbeat");
        Case::new(format!("heartbeat {label}"), Method::POST, path, who)
    };
    vec![
        beat("on another runner's build", f.running, f.b()).is(403, "not_holder"),
        // Nobody holds a pending or manual build: no runner may beat for it.
        beat("on a pending build", f.pending, f.b()).is(403, "not_holder"),
        beat("on a manual build", f.manual, f.a()).is(403, "not_holder"),
        // Its holder learns that the build ended: drop it.
        beat("on its own finished build", f.finished, f.a())
            .is(410, "lease_lost")
            .current("success"),
    ]
}

fn finishes(f: &Fixture) -> Vec<Case<'_>> {
    let path = format!("/api/v1/jobs/{}/finish", f.running);
    // Runner A holds the build, so only the body can be at fault.
    let finish = |name: &str, body: Value| {
        Case::new(format!("finish: {name}"), Method::POST, &path, f.a()).json(&body)
    };
    let mut cases = not_an_object("finish", &Method::POST, &path, f.a());
    cases.extend([
        // An array would fill the fields in order; a body must be an object.
        finish("an array of fields", json!(["success"])).is(400, "bad_request"),
        finish("no result", json!({})).is(400, "bad_request"),
        finish("null result", json!({ "result": null }))
            .is(400, "bad_request")
            .field("result"),
        finish("an unknown result", json!({ "result": "maybe" }))
            .is(400, "bad_request")
            .field("result"),
        // `runner_lost` is the server's verdict, not a runner's report.
        finish(
            "runner_lost",
            json!({ "result": "failed", "failure_reason": "runner_lost" }),
        )
        .is(400, "bad_request")
        .field("failure_reason"),
        finish(
            "a string exit code",
            json!({ "result": "failed", "exit_code": "1" }),
        )
        .is(400, "bad_request")
        .field("exit_code"),
        finish(
            "an exit code past i32",
            json!({ "result": "failed", "exit_code": 2_147_483_648_i64 }),
        )
        .is(400, "bad_request")
        .field("exit_code"),
        finish(
            "an unknown field",
            json!({ "result": "success", "colour": 1 }),
        )
        .is(400, "bad_request")
        .field("colour"),
        // It reads, but a failure reason makes sense only for a failure.
        finish(
            "a reason for success",
            json!({ "result": "success", "failure_reason": "job_timeout" }),
        )
        .is(422, "invalid")
        .field("failure_reason"),
        Case::new("finish another runner's build", Method::POST, &path, f.b())
            .json(&json!({ "result": "success" }))
            .is(403, "not_holder"),
        Case::new(
            "finish another runner's finished build",
            Method::POST,
            format!("/api/v1/jobs/{}/finish", f.finished),
            f.b(),
        )
        .json(&json!({ "result": "success" }))
        .is(403, "not_holder"),
        Case::new(
            "finish a pending build",
            Method::POST,
            format!("/api/v1/jobs/{}/finish", f.pending),
            f.b(),
        )
        .json(&json!({ "result": "success" }))
        .is(403, "not_holder"),
        // The same result again is 200; another result for a finished build is a conflict.
        Case::new(
            "finish a succeeded build as failed",
            Method::POST,
            format!("/api/v1/jobs/{}/finish", f.finished),
            f.a(),
        )
        .json(&json!({ "result": "failed" }))
        .is(409, "illegal_transition")
        .current("success"),
    ]);
    cases
}

/// `POST /jobs/batch/request` as runner B, with a pending build there to be claimed.
fn batch_requests(f: &Fixture) -> Vec<Case<'_>> {
    let path = "/api/v1/jobs/batch/request";
    let request = |name: &str, body: Value| {
        Case::new(format!("batch request: {name}"), Method::POST, path, f.b()).json(&body)
    };
    let mut cases = not_an_object("batch request", &Method::POST, path, f.b());
    cases.extend([
        request("no max_jobs", json!({}))
            .is(400, "bad_request")
            .field("max_jobs"),
        request("a string max_jobs", json!({ "max_jobs": "ten" }))
            .is(400, "bad_request")
            .field("max_jobs"),
        request("a negative max_jobs", json!({ "max_jobs": -1 }))
            .is(400, "bad_request")
            .field("max_jobs"),
        request("an unknown field", json!({ "max_jobs": 1, "limit": 5 }))
            .is(400, "bad_request")
            .field("limit"),
        request("max_jobs 0", json!({ "max_jobs": 0 }))
            .is(422, "invalid")
            .field("max_jobs"),
        request("max_jobs 101", json!({ "max_jobs": 101 }))
            .is(422, "invalid")
            .field("max_jobs"),
        request(
            "wait_seconds 31",
            json!({ "max_jobs": 5, "wait_seconds": 31 }),
        )
        .is(422, "invalid")
        .field("wait_seconds"),
    ]);
    cases
}

/// `POST /jobs/batch/finish` as runner A, with its running build in every report, so only the
/// body can be at fault. A refused report inside a well-formed batch is answered inside a 200
/// (contract.rs); these are the bodies refused whole, with nothing written.
fn batch_finishes(f: &Fixture) -> Vec<Case<'_>> {
    let path = "/api/v1/jobs/batch/finish";
    let b = f.running;
    let finish = |name: &str, body: Value| {
        Case::new(format!("batch finish: {name}"), Method::POST, path, f.a()).json(&body)
    };
    let many: Vec<Value> = (0..101)
        .map(|_| json!({ "id": b, "result": "success" }))
        .collect();
    let mut cases = not_an_object("batch finish", &Method::POST, path, f.a());
    cases.extend([
        finish("no reports", json!({}))
            .is(400, "bad_request")
            .field("reports"),
        finish("reports not a list", json!({ "reports": { "id": b } }))
            .is(400, "bad_request")
            .field("reports"),
        finish("an empty list", json!({ "reports": [] }))
            .is(422, "invalid")
            .field("reports"),
        finish("101 reports", json!({ "reports": many }))
            .is(422, "invalid")
            .field("reports"),
        finish(
            "a report without an id",
            json!({ "reports": [{ "result": "success" }] }),
        )
        .is(400, "bad_request")
        .field("reports[0].id"),
        finish(
            "an unknown result in the second report",
            json!({ "reports": [{ "id": b, "result": "success" }, { "id": b, "result": "maybe" }] }),
        )
        .is(400, "bad_request")
        .field("reports[1].result"),
        finish(
            "runner_lost",
            json!({ "reports": [{ "id": b, "result": "failed", "failure_reason": "runner_lost" }] }),
        )
        .is(400, "bad_request")
        .field("reports[0].failure_reason"),
        finish(
            "an unknown field in a report",
            json!({ "reports": [{ "id": b, "result": "success", "colour": 1 }] }),
        )
        .is(400, "bad_request")
        .field("reports[0].colour"),
        finish(
            "a string id",
            json!({ "reports": [{ "id": "one", "result": "success" }] }),
        )
        .is(400, "bad_request")
        .field("reports[0].id"),
        // It reads, but the second report's reason makes sense only for a failure: nothing of
        // the batch is applied, not even the valid first report.
        finish(
            "a reason for success in the second report",
            json!({ "reports": [
                { "id": b, "result": "success" },
                { "id": b, "result": "success", "failure_reason": "job_timeout" },
            ] }),
        )
        .is(422, "invalid")
        .field("reports[1].failure_reason"),
    ]);
    cases
}

fn log_appends(f: &Fixture) -> Vec<Case<'_>> {
    let end = format!("?offset={RUNNING_LOG_END}");
    let case = |name: &str, build: i64, query: &str, who| {
        let path = format!("/api/v1/jobs/{build}/log{query}");
        Case::new(format!("append log: {name}"), Method::POST, path, who)
    };
    vec![
        case("another runner's build", f.running, &end, f.b())
            .body("x")
            .is(403, "not_holder"),
        case("a pending build", f.pending, "?offset=0", f.a())
            .body("x")
            .is(403, "not_holder"),
        case("its own finished build", f.finished, "?offset=6", f.a())
            .body("x")
            .is(410, "lease_lost")
            .current("success"),
        // A resend of what the log already has: the answer says where the end is.
        case("an offset before the end", f.running, "?offset=0", f.a())
            .body("running\n")
            .is(416, "log_offset")
            .field("offset"),
        case("an offset past the end", f.running, "?offset=100", f.a())
            .body("x")
            .is(416, "log_offset")
            .field("offset"),
        case(
            "the largest offset",
            f.running,
            "?offset=18446744073709551615",
            f.a(),
        )
        .body("x")
        .is(416, "log_offset")
        .field("offset"),
        case("no offset", f.running, "", f.a())
            .body("x")
            .is(400, "bad_request"),
        case("a negative offset", f.running, "?offset=-1", f.a())
            .body("x")
            .is(400, "bad_request")
            .field("offset"),
        case("a word for offset", f.running, "?offset=end", f.a())
            .body("x")
            .is(400, "bad_request")
            .field("offset"),
        case("a chunk over 1 MiB", f.running, &end, f.a())
            .body(vec![b'x'; OVER_LOG_CHUNK])
            .is(413, "payload_too_large"),
    ]
}

fn all_cases(f: &Fixture) -> Vec<Case<'_>> {
    [
        routing(f),
        authentication(f),
        bad_ids(f),
        projects(),
        pipeline_bodies(f),
        files::pipeline_files(f),
        files::lints(f),
        pipeline_definitions(f),
        retry_rules(f),
        submitted_names(f),
        auto_cancel_bodies(f),
        pipeline_reads(f),
        builds(f),
        environments(f),
        resource_groups(f),
        runners(),
        job_requests(f),
        heartbeats(f),
        finishes(f),
        batch_requests(f),
        batch_finishes(f),
        log_appends(f),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[tokio::test]
async fn every_bad_input_gets_its_exact_status_and_changes_nothing() {
    let fixture = Fixture::new().await;
    let cases = all_cases(&fixture);
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(problem) = fixture.check(case).await {
            failures.push(format!("- {}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_rejected_log_chunk_leaves_the_log_unchanged() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let (_, token) = app.runner("r1", &[]).await;
    app.pipeline(project, json!([{ "name": "a", "script": ["true"] }]))
        .await;
    let build = id_of(&app.acquire(&token).await.expect("a is pending"));
    append(&app, &token, build, 0, "hello\n").await;
    let path = |offset: u64| format!("/api/v1/jobs/{build}/log?offset={offset}");

    let too_large = app
        .call(
            Method::POST,
            &path(6),
            As::Runner(&token),
            vec![b'x'; OVER_LOG_CHUNK],
        )
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json()["error"]["code"], "payload_too_large");
    for offset in [0, 3, 7] {
        let misplaced = app
            .call(Method::POST, &path(offset), As::Runner(&token), "again\n")
            .await
            .expect(StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(misplaced.header("x-log-offset"), Some("6"));
        assert_eq!(misplaced.json()["error"]["offset"], 6);
    }

    let log = app
        .get(&format!("/api/v1/builds/{build}/log"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(log.body, b"hello\n");
    assert_eq!(log.header("x-log-offset"), Some("6"));
    // The log goes on from where it ended, as if nothing had been tried.
    append(&app, &token, build, 6, "world\n").await;
}

#[tokio::test]
async fn a_rejected_definition_creates_no_pipeline() {
    let app = TestApp::new();
    let project = app.project("app").await;
    let before = app.fingerprint();
    let path = format!("/api/v1/projects/{project}/pipelines");
    let cycle = json!({ "ref": "main", "jobs": [
        { "name": "build", "script": ["make"] },
        { "name": "a", "script": ["x"], "needs": ["build", "b"] },
        { "name": "b", "script": ["x"], "needs": ["a"] },
    ] });
    let refused = app
        .post(&path, &cycle)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(refused["error"]["code"], "invalid");
    assert_eq!(refused["error"]["field"], "jobs[a].needs");
    // The last job is the invalid one: every earlier job was fine, and none of them was kept.
    let late = json!({ "ref": "main", "jobs": [
        { "name": "build", "script": ["make"], "environment": "staging" },
        { "name": "test", "script": ["make test"], "retry": 9 },
    ] });
    app.post(&path, &late)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    let listed = app.get(&path).await.expect(StatusCode::OK).json();
    assert_eq!(listed, json!([]));
    let environments = app
        .get(&format!("/api/v1/projects/{project}/environments"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        environments,
        json!([]),
        "no environment from a refused pipeline"
    );
    assert_eq!(app.fingerprint(), before);
}
