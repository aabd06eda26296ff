//! The build page's log: followed live byte for byte, a 20 MB log that stays responsive, and a
//! cancel from the page that stops the build.

use crate::support::{ADMIN, Browser, Stack};
use serde_json::json;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// The log as a terminal shows it: what the server stored, without its escape sequences.
fn shown(log: &[u8]) -> String {
    let text = String::from_utf8(log.to_vec()).expect("the tests' logs are UTF-8");
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn log_text(browser: &Browser<'_>) -> String {
    browser
        .run("return document.getElementById('log').textContent")
        .as_str()
        .expect("text")
        .to_owned()
}

fn signed_in(stack: &Stack) -> Browser<'_> {
    let browser = Browser::new(stack);
    browser.sign_in(ADMIN);
    browser.wait_for("h1", LIMIT, |h| h.iter().any(|h| h.text == "Projects"));
    browser
}

fn project(stack: &Stack, name: &str) -> i64 {
    stack.post("/projects", &json!({ "name": name }))["id"]
        .as_i64()
        .expect("a project id")
}

#[test]
fn a_build_page_follows_a_live_log_that_matches_the_servers_bytes() {
    let stack = Stack::new();
    let browser = signed_in(&stack);
    let project = project(&stack, "logs");
    // Lines over several seconds, in colour, with a character of three bytes and one of four.
    let script = "for i in $(seq 1 40); do printf '\\033[1;32mline %s\\033[0m € 😀 \\033[38;5;208mok\\033[0m\\n' $i; sleep 0.1; done";
    let pipeline = stack.post(
        &format!("/projects/{project}/pipelines"),
        &json!({ "ref": "main", "jobs": [{ "name": "talk", "script": [script] }] }),
    );
    let id = pipeline["builds"][0]["id"].as_i64().expect("a build id");
    browser.open(&format!("/builds/{id}"));
    // Part of the log arrives while the build still runs.
    browser.wait_for("#build-status .badge", LIMIT, |b| {
        b.iter().any(|b| b.attr("data-status") == Some("running"))
    });
    let deadline = Instant::now() + LIMIT;
    while !log_text(&browser).contains("line 3") {
        assert!(Instant::now() < deadline, "no log arrived while running");
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.wait_for("#log[data-complete=true]", LIMIT, |l| !l.is_empty());
    browser.wait_for("#build-status .badge", LIMIT, |b| {
        b.iter().any(|b| b.attr("data-status") == Some("success"))
    });
    let server = stack.log(id);
    assert_eq!(
        log_text(&browser),
        shown(&server),
        "no byte twice, none missing"
    );
    let green = browser.run("return document.querySelectorAll('#log span.fg-2.bold').length");
    assert_eq!(green, json!(40), "each `line N` is bold green");
}

#[test]
fn a_20_mb_log_opens_at_its_end_and_the_raw_log_has_it_all() {
    let stack = Stack::server_only();
    let browser = signed_in(&stack);
    let project = project(&stack, "big");
    let token = stack.runner_token("hand");
    stack.post(
        &format!("/projects/{project}/pipelines"),
        &json!({ "ref": "main", "jobs": [{ "name": "noisy", "script": ["true"] }] }),
    );
    let job = ureq::post(format!("{}/api/v1/jobs/request", stack.url))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(json!({}))
        .expect("a job")
        .body_mut()
        .read_json::<serde_json::Value>()
        .expect("JSON");
    let id = job["id"].as_i64().expect("a job id");
    let line = "0123456789 the quick brown fox jumps over the lazy dog 0123456789\n";
    // Just under the 1 MiB a runner may send at once.
    let chunk = line.repeat(15_000);
    let mut offset = 0;
    for _ in 0..22 {
        let path = format!("/jobs/{id}/log?offset={offset}");
        assert_eq!(
            stack.runner_post(&path, &token, chunk.as_bytes(), false),
            202
        );
        offset += chunk.len();
    }
    let last = "the very last line\n";
    let path = format!("/jobs/{id}/log?offset={offset}");
    assert_eq!(
        stack.runner_post(&path, &token, last.as_bytes(), false),
        202
    );
    let finish = json!({ "result": "success", "exit_code": 0 }).to_string();
    assert_eq!(
        stack.runner_post(
            &format!("/jobs/{id}/finish"),
            &token,
            finish.as_bytes(),
            true
        ),
        200
    );

    browser.open(&format!("/builds/{id}"));
    browser.wait_for("#log[data-complete=true]", LIMIT, |l| !l.is_empty());
    let text = log_text(&browser);
    assert!(text.ends_with(last), "the end of the log is shown");
    assert!(
        text.starts_with(line),
        "it starts at a whole line: {:?}",
        &text[..80]
    );
    assert!(
        text.len() <= 600 * 1024,
        "only the end is in the page: {} bytes",
        text.len()
    );
    let note = browser.wait_for("#log-note", LIMIT, |n| !n.is_empty());
    assert!(
        note[0].text.contains("Showing the end of a 20.7 MiB log"),
        "{note:?}"
    );
    // The page still answers: a script runs, the log box scrolls.
    assert_eq!(
        browser
            .run("const l = document.getElementById('log'); l.scrollTop = 0; return l.scrollTop"),
        json!(0)
    );
    browser.screenshot("build-20mb");
    // Without the browser's session the raw log is not given: the request ends at sign-in.
    let anonymous = ureq::get(format!("{}/builds/{id}/raw", stack.url))
        .call()
        .expect("the sign-in page")
        .body_mut()
        .read_to_string()
        .expect("a page");
    assert!(anonymous.contains(r#"id="login""#) && !anonymous.contains("lazy dog"));
    let raw_len = browser.run(&format!(
        "return fetch('/builds/{id}/raw').then(r => r.text()).then(t => t.length)"
    ));
    assert_eq!(raw_len, json!(offset + last.len()));
}

#[test]
fn cancel_from_the_build_page_stops_the_build() {
    let stack = Stack::new();
    let browser = signed_in(&stack);
    let project = project(&stack, "cancel");
    let pipeline = stack.post(
        &format!("/projects/{project}/pipelines"),
        &json!({ "ref": "main", "jobs": [{ "name": "long", "script": ["echo started", "sleep 120"] }] }),
    );
    let id = pipeline["builds"][0]["id"].as_i64().expect("a build id");
    browser.open(&format!("/builds/{id}"));
    let deadline = Instant::now() + LIMIT;
    while !log_text(&browser).contains("started") {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let clicked = Instant::now();
    browser.click("header.facts form[action$='/cancel'] button");
    browser.wait_for("#build-status .badge", LIMIT, |b| {
        b.iter().any(|b| b.attr("data-status") == Some("canceled"))
    });
    let build = stack.get(&format!("/builds/{id}"));
    assert_eq!(build["status"], "canceled");
    assert!(
        clicked.elapsed() < Duration::from_secs(60),
        "the worker stopped the script rather than the grace period running out"
    );
    browser.wait_for("#log[data-complete=true]", LIMIT, |l| !l.is_empty());
}
