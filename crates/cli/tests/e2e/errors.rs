//! Errors read as sentences naming the fix, with the documented exit codes, and `lint` needs no
//! server.

use crate::support::{ADMIN, bare_lockstep, nowhere, outcome};

#[test]
fn an_unreachable_server_exits_4_with_the_way_to_start_one() {
    let dir = tempfile::tempdir().expect("a dir");
    let url = nowhere();
    bare_lockstep(dir.path())
        .args(["runners", "--url", &url, "--token", ADMIN])
        .assert()
        .code(4)
        .stdout("")
        .stderr(format!(
            "error: cannot reach the server at {url} (connection refused): start one with \
             `cargo xtask dev`, or point LOCKSTEP_URL at yours\n"
        ));
}

#[test]
fn a_missing_token_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("a dir");
    bare_lockstep(dir.path())
        .args(["pipelines"])
        .assert()
        .code(3)
        .stderr("error: no token: run `lockstep login` or set LOCKSTEP_TOKEN\n");
}

#[test]
fn a_missing_pipeline_file_says_what_to_pass() {
    let dir = tempfile::tempdir().expect("a dir");
    bare_lockstep(dir.path())
        .args(["run", "--token", ADMIN])
        .assert()
        .code(3)
        .stderr(
            "error: no pipeline file at .lockstep.yml: pass a FILE or create one (see examples/)\n",
        );
}

#[test]
fn bad_arguments_exit_3_not_2() {
    let dir = tempfile::tempdir().expect("a dir");
    bare_lockstep(dir.path())
        .args(["cancel", "1", "--build", "2"])
        .assert()
        .code(3);
}

#[test]
fn help_documents_every_exit_code() {
    let dir = tempfile::tempdir().expect("a dir");
    let output = bare_lockstep(dir.path())
        .arg("--help")
        .output()
        .expect("lockstep runs");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).expect("utf-8");
    for code in ["0", "1", "2", "3", "4", "5", "130"] {
        assert!(help.contains(&format!("\n  {code:<4} ")), "{code}:\n{help}");
    }
}

#[test]
fn lint_reports_a_typo_with_its_line_and_exits_3_without_a_server() {
    let dir = tempfile::tempdir().expect("a dir");
    std::fs::write(
        dir.path().join(".lockstep.yml"),
        "stages: [build]\n\ncompile:\n  stage: build\n  scirpt:\n    - echo hi\n",
    )
    .expect("a file");
    let (code, stdout) = outcome(bare_lockstep(dir.path()).arg("lint"));
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with(".lockstep.yml:5:3: unknown key `scirpt`")),
        "{stdout}"
    );
}

#[test]
fn lint_passes_a_good_file() {
    let dir = tempfile::tempdir().expect("a dir");
    std::fs::write(dir.path().join("ok.yml"), crate::run::PASSING).expect("a file");
    bare_lockstep(dir.path())
        .args(["lint", "ok.yml"])
        .assert()
        .code(0)
        .stdout("ok.yml: ok, 3 jobs in 2 stages (build, test)\n");
}
