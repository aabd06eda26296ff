//! `lockstep login`: the token is checked, then saved with mode 0600 for the commands after it.

use crate::support::{ADMIN, Stack};

fn config(stack: &Stack) -> std::path::PathBuf {
    stack.config_home().join("lockstep").join("config.toml")
}

#[test]
fn login_writes_a_private_config_that_later_commands_use() {
    let stack = Stack::server_only();
    stack
        .lockstep()
        .env_remove("LOCKSTEP_TOKEN")
        .args(["login", "--token", ADMIN])
        .assert()
        .code(0);
    let path = config(&stack);
    let text = std::fs::read_to_string(&path).expect("a config file");
    assert!(text.contains(ADMIN), "{text}");
    assert!(text.contains(&stack.url), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Neither flag nor environment now: the file gives the URL and the token.
    stack
        .lockstep()
        .env_remove("LOCKSTEP_TOKEN")
        .env_remove("LOCKSTEP_URL")
        .arg("runners")
        .assert()
        .code(0);
}

#[test]
fn login_reads_the_token_from_stdin() {
    let stack = Stack::server_only();
    stack
        .lockstep()
        .env_remove("LOCKSTEP_TOKEN")
        .arg("login")
        .write_stdin(format!("{ADMIN}\n"))
        .assert()
        .code(0);
    assert!(
        std::fs::read_to_string(config(&stack))
            .expect("a config")
            .contains(ADMIN)
    );
}

#[test]
fn login_refuses_a_wrong_token_and_saves_nothing() {
    let stack = Stack::server_only();
    let output = stack
        .lockstep()
        .env_remove("LOCKSTEP_TOKEN")
        .args(["login", "--token", "not-the-token-at-all"])
        .output()
        .expect("lockstep runs");
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(stderr.contains("refused the token"), "{stderr}");
    assert!(!config(&stack).exists());
}
