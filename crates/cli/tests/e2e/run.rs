//! `lockstep run` off a terminal: one plain line per status change, the failed job's log tail,
//! the summary, and the exit code of the outcome.

use crate::support::{Stack, outcome, pipeline_id};

pub(crate) const PASSING: &str = r#"
stages: [build, test]

compile:
  stage: build
  script:
    - echo compiling
    - sleep 1

docs:
  stage: build
  script: [echo documenting]

unit:
  stage: test
  script:
    - echo "testing in $CI_JOB_NAME"
"#;

const FAILING: &str = r#"
unit:
  stage: test
  script:
    - i=1; while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); done
    - exit 3

ship:
  stage: deploy
  script: [echo never]
"#;

#[test]
fn a_passing_file_exits_0_and_prints_each_job() {
    let stack = Stack::new();
    let file = stack.file("pass.yml", PASSING);
    let (code, stdout) = outcome(stack.lockstep().args(["run", &file, "--project", "app"]));
    assert_eq!(code, Some(0), "{stdout}");
    for job in ["build/compile", "build/docs", "test/unit"] {
        assert!(
            stdout.contains(&format!("{job} success")),
            "{job}:\n{stdout}"
        );
    }
    // Stages in order: every build line comes before the test's success.
    let unit = stdout.find("test/unit success").expect("unit");
    assert!(stdout.find("build/compile success").expect("compile") < unit);
    let id = pipeline_id(&stdout);
    assert!(
        stdout.contains(&format!("pipeline {id} success in")),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "escape codes off a terminal:\n{stdout}"
    );
    // The project was created on first use, and the pipeline is the server's.
    assert_eq!(stack.get(&format!("/pipelines/{id}"))["status"], "success");
}

#[test]
fn a_failing_file_exits_1_and_prints_the_failed_jobs_log_tail() {
    let stack = Stack::new();
    let file = stack.file("fail.yml", FAILING);
    let (code, stdout) = outcome(stack.lockstep().args(["run", &file, "--project", "app"]));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("test/unit failed"), "{stdout}");
    assert!(stdout.contains("deploy/ship skipped"), "{stdout}");
    let id = pipeline_id(&stdout);
    let unit = Stack::build_id(&stack.get(&format!("/pipelines/{id}")), "unit");
    let tail_start = format!("--- test/unit failed (build {unit}): the last lines of its log ---");
    let tail = &stdout[stdout.find(&tail_start).expect("a log tail") + tail_start.len()..];
    assert!(tail.contains("line 40\n"), "{tail}");
    assert!(!tail.contains("line 5\n"), "more than 30 lines:\n{tail}");
    assert!(tail.contains(&format!("lockstep logs {unit}")), "{tail}");
    assert!(
        stdout.contains(&format!("pipeline {id} failed in")),
        "{stdout}"
    );
}

#[test]
fn a_file_the_server_refuses_is_reported_by_line_and_column_and_exits_3() {
    let stack = Stack::new();
    let file = stack.file(
        "typo.yml",
        "stages: [build]\n\ncompile:\n  stage: build\n  scirpt:\n    - echo hi\n",
    );
    let (code, stdout) = outcome(stack.lockstep().args(["run", &file, "--project", "app"]));
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("typo.yml:5:3: unknown key `scirpt`")),
        "{stdout}"
    );
}

#[test]
fn no_follow_prints_the_pipeline_and_leaves_it_running() {
    let stack = Stack::server_only();
    let file = stack.file("pass.yml", PASSING);
    let (code, stdout) = outcome(stack.lockstep().args([
        "run",
        &file,
        "--project",
        "app",
        "--no-follow",
        "--ref",
        "feature/x",
    ]));
    assert_eq!(code, Some(0), "{stdout}");
    let id = pipeline_id(&stdout);
    assert!(
        stdout.contains(&format!("/api/v1/pipelines/{id}")),
        "{stdout}"
    );
    let pipeline = stack.get(&format!("/pipelines/{id}"));
    assert_eq!(pipeline["ref"], "feature/x");
    assert!(pipeline["finished_at"].is_null());
}

#[test]
fn a_missing_pipeline_says_it_does_not_exist() {
    let stack = Stack::server_only();
    stack
        .lockstep()
        .args(["status", "999"])
        .assert()
        .code(5)
        .stderr("error: pipeline 999 does not exist\n");
}
