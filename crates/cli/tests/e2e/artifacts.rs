//! `lockstep artifacts`: a build's files as a table and as JSON, unpacked into a directory with
//! `--download`, and a clear error for a build that kept none.

use crate::support::{Stack, outcome, pipeline_id};

const KEEPS: &str = r"
build:
  stage: build
  script:
    - mkdir -p out
    - printf 'hello\n' > out/hello.txt
  artifacts:
    paths: [out/]
    name: hello-$CI_COMMIT_REF_NAME
test:
  stage: test
  script: [cat out/hello.txt]
";

#[test]
fn artifacts_list_and_download_what_a_build_kept() {
    let stack = Stack::new();
    let file = stack.file("keeps.yml", KEEPS);
    let ran = stack
        .lockstep()
        .args(["run", &file, "--project", "app", "--ref", "main"])
        .output()
        .expect("lockstep runs");
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
    let id = pipeline_id(&String::from_utf8_lossy(&ran.stdout));
    let pipeline = stack.get(&format!("/pipelines/{id}"));
    let build = Stack::build_id(&pipeline, "build");
    let test = Stack::build_id(&pipeline, "test");

    let (code, listing) = outcome(stack.lockstep().args(["artifacts", &build.to_string()]));
    assert_eq!(code, Some(0), "{listing}");
    assert!(listing.contains("hello-main.zip"), "{listing}");
    assert!(
        listing.contains("out/hello.txt") && listing.contains("6 B"),
        "{listing}"
    );

    let json = stack
        .lockstep()
        .args(["--json", "artifacts", &build.to_string()])
        .output()
        .expect("lockstep runs");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["file_name"], "hello-main.zip", "{json:#}");

    let target = tempfile::tempdir().expect("a directory");
    // Not there yet: `--download` creates it.
    let dir = target.path().join("from-ci");
    let dir_arg = dir.display().to_string();
    let (code, said) =
        outcome(
            stack
                .lockstep()
                .args(["artifacts", &build.to_string(), "--download", &dir_arg]),
        );
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("unpacked 2 entries"), "{said}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/hello.txt")).expect("unpacked"),
        "hello\n"
    );

    let none = stack
        .lockstep()
        .args(["artifacts", &test.to_string()])
        .output()
        .expect("lockstep runs");
    let said = String::from_utf8_lossy(&none.stderr);
    assert_ne!(none.status.code(), Some(0), "{said}");
    assert!(said.contains("no artifacts"), "{said}");
}
