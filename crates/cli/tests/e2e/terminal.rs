//! The live view in a pseudo-terminal (a spinner, lines redrawn in place, the summary), and
//! Ctrl-C while following, on a terminal and off one.

use crate::support::{COMMAND_LIMIT, Stack, pipeline_id};
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect as _, Regex, Session};
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// A job that runs long enough for the spinner to turn, then one after it.
const SLOW: &str = r"
stages: [build, test]

compile:
  stage: build
  script:
    - echo compiling
    - sleep 2

unit:
  stage: test
  script: [echo testing]
";

/// A job that runs until it is canceled.
const ENDLESS: &str = r"
forever:
  script:
    - sleep 120
";

fn exit_code(session: &OsSession) -> i32 {
    match session.get_process().wait().expect("the exit status") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("lockstep did not exit normally: {other:?}"),
    }
}

fn spawn(stack: &Stack, args: &[&str]) -> OsSession {
    let mut command = stack.std_lockstep();
    command.args(args);
    let mut session = Session::spawn(command).expect("lockstep starts in a pty");
    session.set_expect_timeout(Some(COMMAND_LIMIT));
    session
}

/// The same without colour (`NO_COLOR`): still a terminal, so still redrawn in place. The
/// terminal echoes control characters (`^C`) as a person's usually does.
fn spawn_plain(stack: &Stack, args: &[&str]) -> OsSession {
    let lockstep = stack.std_lockstep();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"stty echo echoctl && exec "$0" "$@""#)
        .arg(lockstep.get_program())
        .args(args)
        .current_dir(stack.dir.path())
        .envs(lockstep.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("NO_COLOR", "1");
    let mut session = Session::spawn(command).expect("lockstep starts in a pty");
    session.set_expect_timeout(Some(COMMAND_LIMIT));
    session
}

/// Any of indicatif's default spinner frames.
const SPINNER: &str = "[⠁⠂⠄⡀⢀⠠⠐⠈]";
/// A colour code, or none.
const COLOUR: &str = r"(?:\x1b\[[0-9;]*m)?";

#[test]
fn on_a_terminal_the_table_is_redrawn_in_place_with_spinners_and_a_summary() {
    let stack = Stack::new();
    let file = stack.file("slow.yml", SLOW);
    let mut session = spawn(&stack, &["run", &file, "--project", "pty"]);
    session.expect("pipeline ").expect("the announcement");
    let running = session
        .expect(Regex(&format!("{SPINNER} compile +{COLOUR}running")))
        .expect("a spinner beside the running job");
    let drawn = String::from_utf8_lossy(running.before()).into_owned();
    assert!(
        drawn.contains("\x1b[1mbuild"),
        "no bold stage header: {drawn:?}"
    );
    let success = session
        .expect(Regex(&format!("✔{COLOUR} compile +{COLOUR}success")))
        .expect("the job's success");
    // Redrawn in place: lines are cleared and drawn again, rather than scrolled.
    let redrawn = String::from_utf8_lossy(success.before()).into_owned();
    assert!(redrawn.contains("\r\x1b[2K"), "{redrawn:?}");
    let summary = session
        .expect(Regex(&format!(
            r"pipeline (\d+) {COLOUR}success{COLOUR} in \d+s: 2 passed"
        )))
        .expect("the summary");
    let id: i64 = String::from_utf8_lossy(&summary[1]).parse().expect("an id");
    session.expect(Eof).expect("the end");
    assert_eq!(exit_code(&session), 0);
    assert_eq!(stack.get(&format!("/pipelines/{id}"))["status"], "success");
}

#[test]
fn ctrl_c_on_a_terminal_asks_and_cancels_on_yes() {
    let stack = Stack::new();
    let file = stack.file("endless.yml", ENDLESS);
    let mut session = spawn_plain(&stack, &["run", &file, "--project", "pty"]);
    let announced = session
        .expect(Regex(r"pipeline (\d+) of project"))
        .expect("the announcement");
    let id: i64 = String::from_utf8_lossy(&announced[1])
        .parse()
        .expect("an id");
    let running = session
        .expect(Regex(&format!("{SPINNER} forever +running")))
        .expect("the job runs, in no colour");
    assert!(!String::from_utf8_lossy(running.before()).contains("\x1b[3"));
    session.send("\x03").expect("Ctrl-C");
    let asked = session
        .expect(format!("cancel pipeline {id}? [y/N]"))
        .expect("the question");
    // The terminal did not echo `^C` into the table (it would push every redraw a line down).
    let between = String::from_utf8_lossy(asked.before()).into_owned();
    assert!(!between.contains("^C"), "{between:?}");
    session.send_line("y").expect("the answer");
    session
        .expect(format!("canceled pipeline {id}"))
        .expect("the cancel");
    session.expect(Eof).expect("the end");
    assert_eq!(exit_code(&session), 2);
    let pipeline = stack.wait_for(id, Duration::from_secs(30), |p| p["status"] == "canceled");
    assert!(!pipeline["finished_at"].is_null());
}

/// Starts `lockstep run` off a terminal and sends it SIGINT once its job runs; returns the
/// pipeline id, the exit code and stderr.
fn interrupt_off_a_terminal(stack: &Stack, extra: &[&str]) -> (i64, Option<i32>, String) {
    let file = stack.file("endless.yml", ENDLESS);
    let mut child = stack
        .std_lockstep()
        .args(["run", &file, "--project", "pipe"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lockstep starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    while !seen.contains("forever running") {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).expect("a line"),
            0,
            "ended early:\n{seen}"
        );
        seen.push_str(&line);
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("lockstep ends");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    (pipeline_id(&seen), output.status.code(), stderr)
}

#[test]
fn ctrl_c_off_a_terminal_leaves_the_pipeline_running_and_says_how_to_cancel() {
    let stack = Stack::new();
    let (id, code, stderr) = interrupt_off_a_terminal(&stack, &[]);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("`lockstep cancel {id}`")),
        "{stderr}"
    );
    assert_eq!(stack.get(&format!("/pipelines/{id}"))["status"], "running");
    // Leave nothing running behind.
    stack
        .lockstep()
        .args(["cancel", &id.to_string()])
        .assert()
        .code(0);
}

#[test]
fn cancel_on_interrupt_cancels_without_asking() {
    let stack = Stack::new();
    let (id, code, stderr) = interrupt_off_a_terminal(&stack, &["--cancel-on-interrupt"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("canceled pipeline {id}")),
        "{stderr}"
    );
    stack.wait_for(id, Duration::from_secs(30), |p| p["status"] == "canceled");
}
