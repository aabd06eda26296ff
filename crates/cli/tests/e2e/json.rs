//! `--json`: stdout holds JSON and nothing else, on every command.

use crate::run::PASSING;
use crate::support::{Stack, bare_lockstep};
use serde_json::Value;

/// Runs `lockstep --json ARGS`, checks the exit code, and parses stdout whole.
fn json(stack: &Stack, args: &[&str], code: i32) -> Value {
    let output = stack
        .lockstep()
        .arg("--json")
        .args(args)
        .output()
        .expect("lockstep runs");
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn every_command_prints_json_that_parses() {
    let stack = Stack::new();
    let file = stack.file("pass.yml", PASSING);
    let pipeline = json(&stack, &["run", &file, "--project", "app"], 0);
    assert_eq!(pipeline["status"], "success");
    let id = pipeline["id"].as_i64().expect("an id").to_string();

    let status = json(&stack, &["status", &id], 0);
    assert_eq!(status["builds"].as_array().map(Vec::len), Some(3));
    let list = json(&stack, &["pipelines", "--project", "app"], 0);
    assert_eq!(list[0]["id"].to_string(), id);
    let runners = json(&stack, &["runners"], 0);
    assert_eq!(runners[0]["online"], true);
    let groups = json(&stack, &["resource-groups", "--project", "app"], 0);
    assert!(groups.is_array());
    let build = Stack::build_id(&status, "unit").to_string();
    let log = json(&stack, &["logs", &build], 0);
    assert_eq!(log["complete"], true);
    assert!(
        log["log"]
            .as_str()
            .expect("text")
            .contains("testing in unit")
    );
    let registered = json(&stack, &["runners", "register", "box", "--tags", "a,b"], 0);
    assert!(registered["token"].is_string());
    let retried = json(&stack, &["retry", "--build", &build], 0);
    assert_eq!(retried["attempt"], 2);

    // A job no runner can take stays pending, so canceling it cannot race its end.
    let parked = stack.file(
        "parked.yml",
        "parked:\n  tags: [nowhere]\n  script: [echo]\n",
    );
    let submitted = json(
        &stack,
        &["run", &parked, "--project", "parked", "--no-follow"],
        0,
    );
    let parked_id = submitted["id"].to_string();
    let canceled = json(&stack, &["cancel", &parked_id], 0);
    assert_eq!(canceled["status"], "canceled");
}

#[test]
fn lint_prints_json_without_a_server() {
    let dir = tempfile::tempdir().expect("a dir");
    std::fs::write(dir.path().join("typo.yml"), "unit:\n  scirpt: [echo]\n").expect("a file");
    let output = bare_lockstep(dir.path())
        .args(["lint", "--json", "typo.yml"])
        .output()
        .expect("lockstep runs");
    assert_eq!(output.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["ok"], false);
    let typo = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.contains("scirpt")))
        .unwrap_or_else(|| panic!("no typo in {report:#}"));
    assert_eq!((&typo["line"], &typo["column"]), (&2.into(), &3.into()));
}
