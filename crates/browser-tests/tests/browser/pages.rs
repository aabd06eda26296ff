//! Signing in, the pipeline page's live graph, the buttons and their CSRF protection, and a
//! screenshot of every page.

use crate::support::{ADMIN, Browser, Seen, Stack};
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn status_of<'a>(seen: &'a [Seen], name: &str) -> Option<&'a str> {
    seen.iter()
        .find(|job| job.attr("data-name") == Some(name))
        .and_then(|job| job.attr("data-status"))
}

fn create(stack: &Stack, project: &str, jobs: &Value) -> Value {
    let project = stack.post("/projects", &json!({ "name": project }));
    let id = project["id"].as_i64().expect("a project id");
    stack.post(
        &format!("/projects/{id}/pipelines"),
        &json!({ "ref": "main", "sha": "0123456789abcdef", "jobs": jobs }),
    )
}

#[test]
fn a_bad_token_is_refused_and_the_right_one_signs_in() {
    let stack = Stack::server_only();
    let browser = Browser::new(&stack);
    browser.open("/runners");
    browser.wait_for("#login", LIMIT, |form| !form.is_empty());
    browser.screenshot("login");
    browser.fill("#token", "not-the-token-0123456789");
    browser.click("#login button[type=submit]");
    let refused = browser.wait_for(".flash.error", LIMIT, |e| !e.is_empty());
    assert!(
        refused[0].text.contains("That token is not valid"),
        "{refused:?}"
    );
    browser.fill("#token", ADMIN);
    browser.click("#login button[type=submit]");
    // Back where the browser first wanted to go, signed in.
    let heading = browser.wait_for("h1", LIMIT, |h| {
        h.iter().any(|h| h.text == "Runners and queue")
    });
    assert_eq!(heading.len(), 1);
    let token_shown = browser.run(&format!(
        "return document.documentElement.outerHTML.includes('{ADMIN}')"
    ));
    assert_eq!(token_shown, json!(false), "the token is never in the page");
    let cookie = browser.run("return document.cookie");
    assert_eq!(
        cookie,
        json!(""),
        "the session cookie is HttpOnly: no script sees it"
    );
}

#[test]
fn a_pipeline_page_turns_a_job_from_running_to_success_without_a_reload() {
    let stack = Stack::new();
    let browser = Browser::new(&stack);
    browser.sign_in(ADMIN);
    browser.wait_for("h1", LIMIT, |h| h.iter().any(|h| h.text == "Projects"));
    let jobs = json!([
        { "name": "build", "stage": "build", "script": ["sleep 3"] },
        { "name": "lint", "stage": "build", "script": ["true"] },
        { "name": "test", "stage": "test", "needs": ["build"], "script": ["true"] },
    ]);
    let pipeline = create(&stack, "graph", &jobs);
    let id = pipeline["id"].as_i64().expect("a pipeline id");
    browser.open(&format!("/pipelines/{id}"));
    browser.wait_for(".job", LIMIT, |jobs| {
        status_of(jobs, "build") == Some("running")
    });
    let edges = browser.wait_for("svg.edges path.edge", LIMIT, |e| !e.is_empty());
    assert_eq!(edges.len(), 1, "one need, one edge: {edges:?}");
    assert_eq!(edges[0].attr("data-from"), Some("build"));
    assert_eq!(edges[0].attr("data-to"), Some("test"));
    browser.run("window.lockstepKept = 'this page'");
    browser.wait_for(".job", LIMIT, |jobs| {
        status_of(jobs, "build") == Some("success") && status_of(jobs, "test") == Some("success")
    });
    browser.wait_for("#pipeline-status .badge", LIMIT, |b| {
        b.iter().any(|b| b.attr("data-status") == Some("success"))
    });
    assert_eq!(
        browser.run("return window.lockstepKept"),
        json!("this page"),
        "the page changed without a reload"
    );
    assert_eq!(
        browser
            .wait_for("svg.edges path.edge", LIMIT, |e| e.len() == 1)
            .len(),
        1,
        "the edge is drawn again after the update"
    );
    browser.screenshot("pipeline");
    browser.set_window_size(390, 844);
    browser.open(&format!("/pipelines/{id}"));
    browser.wait_for("svg.edges path.edge", LIMIT, |e| e.len() == 1);
    browser.screenshot("pipeline-phone");
}

#[test]
fn a_post_without_the_csrf_token_is_refused() {
    let stack = Stack::server_only();
    let browser = Browser::new(&stack);
    browser.sign_in(ADMIN);
    browser.wait_for("h1", LIMIT, |h| h.iter().any(|h| h.text == "Projects"));
    let pipeline = create(
        &stack,
        "csrf",
        &json!([{ "name": "a", "script": ["true"] }]),
    );
    let id = pipeline["id"].as_i64().expect("a pipeline id");
    // The page's own session cookie goes with this request; only the token is missing.
    let status = browser.run(&format!(
        "return fetch('/pipelines/{id}/cancel', {{ method: 'POST', \
         headers: {{ 'Content-Type': 'application/x-www-form-urlencoded' }}, body: 'csrf=' }})\
         .then(r => r.status)"
    ));
    assert_eq!(status, json!(403));
    assert_eq!(stack.get(&format!("/pipelines/{id}"))["status"], "pending");
    // The page's own button carries the token and works.
    browser.open(&format!("/pipelines/{id}"));
    // Nothing changes while nobody runs the pipeline: the stream's first fragment equals what
    // the page shows and replaces nothing (a property on the element, not in the DOM, survives).
    browser.run("document.querySelector('#pipeline-status').lockstepMark = 1");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        browser.run("return document.querySelector('#pipeline-status').lockstepMark"),
        json!(1),
        "an unchanged fragment left the page alone"
    );
    browser.click("header.facts form[action$='/cancel'] button");
    browser.wait_for("#pipeline-status .badge", LIMIT, |b| {
        b.iter().any(|b| b.attr("data-status") == Some("canceled"))
    });
    assert_eq!(stack.get(&format!("/pipelines/{id}"))["status"], "canceled");
}

/// One screenshot of each page, for docs/screenshots (copied from target/screenshots by hand).
#[test]
fn every_page_renders_and_is_photographed() {
    let stack = Stack::new();
    let browser = Browser::new(&stack);
    browser.sign_in(ADMIN);
    browser.wait_for("h1", LIMIT, |h| h.iter().any(|h| h.text == "Projects"));
    let jobs = json!([
        { "name": "build", "stage": "build", "script": ["printf '\\033[32mcompiled\\033[0m\\n'"] },
        { "name": "test", "stage": "test", "needs": ["build"], "script": ["echo tests pass"] },
        { "name": "deploy", "stage": "deploy", "script": ["echo deployed"],
          "environment": "staging", "resource_group": "staging" },
        { "name": "production", "stage": "deploy", "script": ["echo"], "when": "manual",
          "environment": "production", "resource_group": "production" },
    ]);
    let pipeline = create(&stack, "shop", &jobs);
    let id = pipeline["id"].as_i64().expect("a pipeline id");
    let project = pipeline["project_id"].as_i64().expect("a project id");
    stack.wait_for(id, LIMIT, |p| {
        p["status"] == "success" || p["status"] == "manual"
    });
    stack.wait_for(id, LIMIT, |p| {
        p["builds"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| b["name"] == "deploy" && b["status"] == "success")
        })
    });
    let build = pipeline["builds"][0]["id"].as_i64().expect("a build id");
    for (name, path, ready) in [
        ("projects", "/".to_owned(), ".project"),
        (
            "project",
            format!("/projects/{project}"),
            "table.pipelines tbody tr",
        ),
        ("pipeline-done", format!("/pipelines/{id}"), ".job"),
        (
            "build",
            format!("/builds/{build}"),
            "#log[data-complete=true]",
        ),
        (
            "environments",
            format!("/projects/{project}/environments"),
            ".environment",
        ),
        ("runners", "/runners".to_owned(), "table.runners tbody tr"),
    ] {
        browser.open(&path);
        browser.wait_for(ready, LIMIT, |found| !found.is_empty());
        browser.screenshot(name);
    }
}
