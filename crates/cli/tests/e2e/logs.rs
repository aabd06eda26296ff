//! `lockstep logs`: the log's bytes exactly, and with `-f` every byte exactly once while the
//! build runs.

use crate::support::{Stack, pipeline_id};
use std::time::Duration;

/// About three seconds of output, a line at a time, ending without a newline.
const SLOW: &str = r#"
tick:
  script:
    - i=1; while [ $i -le 30 ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done
    - printf 'done, no newline'
"#;

#[test]
fn logs_follow_on_a_running_build_prints_the_whole_log_exactly_once() {
    let stack = Stack::new();
    let file = stack.file("slow.yml", SLOW);
    let submitted = stack
        .lockstep()
        .args(["run", &file, "--project", "app", "--no-follow"])
        .output()
        .expect("lockstep runs");
    let id = pipeline_id(&String::from_utf8_lossy(&submitted.stdout));
    let running = stack.wait_for(id, Duration::from_secs(30), |p| {
        p["builds"][0]["status"] == "running"
    });
    let build = Stack::build_id(&running, "tick");

    let followed = stack
        .lockstep()
        .args(["logs", "-f", &build.to_string()])
        .output()
        .expect("lockstep runs");
    assert_eq!(followed.status.code(), Some(0));

    let finished = stack.get(&format!("/pipelines/{id}"));
    assert_eq!(finished["status"], "success", "{finished:#}");
    let log = stack.log(build);
    assert!(
        log.ends_with(b"done, no newline"),
        "{}",
        String::from_utf8_lossy(&log)
    );
    assert!(
        followed.stdout == log,
        "followed:\n{}\nserver:\n{}",
        String::from_utf8_lossy(&followed.stdout),
        String::from_utf8_lossy(&log)
    );

    // Without -f, a finished build's log comes out the same.
    let whole = stack
        .lockstep()
        .args(["logs", &build.to_string()])
        .output()
        .expect("lockstep runs");
    assert!(whole.stdout == log);
}

#[test]
fn logs_of_a_missing_build_say_so() {
    let stack = Stack::server_only();
    stack
        .lockstep()
        .args(["logs", "4242"])
        .assert()
        .code(5)
        .stderr("error: build 4242 does not exist\n");
}
