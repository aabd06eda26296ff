//! The browser tests' prerequisites, Chromium and ChromeDriver, looked up on `PATH` before
//! `cargo xtask test` starts, so a missing browser stops the run with its fix up front rather
//! than as one more failure deep in cargo's output.

use std::ffi::OsStr;
use std::path::Path;

/// What to do when either is missing. The browser tests panic with the same sentence
/// (`crates/browser-tests/tests/browser/support/browser.rs`; a test below keeps them equal).
const MISSING: &str = "Chromium and ChromeDriver are missing: install them with `apt-get install -y chromium chromium-driver` (as root; .ci/run does this), then run the tests again.";

/// The programs the browser tests start, by the names Debian's packages give them.
const PROGRAMS: [&str; 2] = ["chromium", "chromedriver"];

/// The message naming the fix when `chromium` or `chromedriver` is not on `PATH`.
pub(crate) fn missing() -> Option<String> {
    missing_on(&std::env::var_os("PATH").unwrap_or_default())
}

/// Fails, after printing the fix where it cannot be missed, when either program is missing.
pub(crate) fn require() -> anyhow::Result<()> {
    let Some(message) = missing() else {
        return Ok(());
    };
    let rule = "!".repeat(78);
    eprintln!("\n{rule}\n\n{message}\n\n{rule}\n");
    anyhow::bail!("the browser tests need Chromium and ChromeDriver; no tests were run")
}

fn missing_on(path: &OsStr) -> Option<String> {
    let found =
        |program: &&str| std::env::split_paths(path).any(|dir| is_executable(&dir.join(program)));
    (!PROGRAMS.iter().all(found)).then(|| MISSING.to_owned())
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::{MISSING, missing_on};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root")
            .to_path_buf()
    }

    /// A fresh directory for one test (its name and our pid: two runs never share one),
    /// holding executables named `programs`.
    fn bin_dir(name: &str, programs: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a test directory");
        for program in programs {
            let file = dir.join(program);
            fs::write(&file, "#!/bin/sh\n").expect("a fake program");
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("executable");
        }
        dir
    }

    fn remove(dirs: &[PathBuf]) {
        for dir in dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn the_message_says_what_to_install_and_how() {
        assert!(MISSING.contains("`apt-get install -y chromium chromium-driver`"));
        assert!(MISSING.contains("as root"), "apt-get needs root: {MISSING}");
        assert!(MISSING.ends_with("then run the tests again."));
    }

    /// The tests panic with this very sentence, and `.ci/run` installs what it names.
    #[test]
    fn the_browser_tests_and_ci_say_the_same() {
        let support = root().join("crates/browser-tests/tests/browser/support/browser.rs");
        let support = fs::read_to_string(&support).expect("the browser tests' support code");
        assert!(
            support.contains(&format!("const MISSING: &str = \"{MISSING}\";")),
            "the browser tests' message differs from xtask's"
        );
        let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
        assert!(
            ci.contains("apt-get install -y -qq chromium chromium-driver"),
            ".ci/run does not install Chromium and ChromeDriver"
        );
    }

    #[test]
    fn either_program_missing_gives_the_message() {
        let empty = bin_dir("browser-none", &[]);
        let driver_only = bin_dir("browser-driver-only", &["chromedriver"]);
        for path in [
            OsString::new(),
            empty.clone().into(),
            driver_only.clone().into(),
        ] {
            assert_eq!(missing_on(&path).as_deref(), Some(MISSING), "PATH={path:?}");
        }
        remove(&[empty, driver_only]);
    }

    #[test]
    fn both_programs_anywhere_on_the_path_are_enough() {
        let chromium = bin_dir("browser-chromium", &["chromium"]);
        let driver = bin_dir("browser-chromedriver", &["chromedriver"]);
        let path = std::env::join_paths([&chromium, &driver]).expect("a PATH");
        assert_eq!(missing_on(&path), None);
        remove(&[chromium, driver]);
    }

    #[test]
    fn a_file_that_is_not_executable_does_not_count() {
        let dir = bin_dir("browser-not-executable", &["chromedriver"]);
        fs::write(dir.join("chromium"), "").expect("a plain file");
        assert_eq!(missing_on(dir.as_os_str()).as_deref(), Some(MISSING));
        remove(&[dir]);
    }
}
