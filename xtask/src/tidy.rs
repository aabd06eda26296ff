//! Repository rules, checked by ordinary tests so that `cargo test` enforces them.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root")
            .to_path_buf()
    }

    /// Every file under `dir` (recursively) whose name ends with one of `extensions`.
    fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir(dir) else {
            return found;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files(&path, extensions));
            } else if extensions
                .iter()
                .any(|ext| path.extension().is_some_and(|e| e == *ext))
            {
                found.push(path);
            }
        }
        found
    }

    fn crate_dirs() -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("crates"))
            .expect("crates/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.push(root().join("xtask"));
        dirs
    }

    fn relative(path: &Path) -> String {
        path.strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// `file (pattern)` for each of `sources` whose code before its unit tests (`#[cfg(test)]`)
    /// holds one of `patterns`, compared in lower case.
    fn matching_code(sources: impl IntoIterator<Item = PathBuf>, patterns: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for file in sources {
            let text = fs::read_to_string(&file).expect("readable source");
            let code = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or("")
                .to_lowercase();
            if let Some(pattern) = patterns.iter().find(|p| code.contains(*p)) {
                found.push(format!("{} ({pattern})", relative(&file)));
            }
        }
        found
    }

    /// Every module says what it is for in its first line (generated code excepted).
    #[test]
    fn every_module_opens_with_a_doc_comment() {
        let mut missing = Vec::new();
        for dir in crate_dirs() {
            for sub in ["src", "tests"] {
                for file in files(&dir.join(sub), &["rs"]) {
                    let text = fs::read_to_string(&file).expect("readable source");
                    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    let generated = first.contains("@generated");
                    if !generated && !first.starts_with("//!") && !first.starts_with("#![doc") {
                        missing.push(relative(&file));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "modules without a `//!` line: {missing:#?}"
        );
    }

    /// Only the lock-order module takes row locks (tests excepted: they lock on purpose).
    /// A negative check of the check itself: the locking module does contain them.
    #[test]
    fn only_the_locking_module_takes_row_locks() {
        let locking = root().join("crates/storage-pg/src/locking");
        let patterns = [
            "for update",
            "for no key update",
            "for share",
            "for key share",
            "for_update(",
            "for_no_key_update(",
            "for_share(",
            "for_key_share(",
        ];
        let sources = crate_dirs()
            .into_iter()
            .flat_map(|dir| files(&dir.join("src"), &["rs", "sql"]))
            .filter(|file| {
                let in_locking =
                    file.starts_with(&locking) || *file == locking.with_extension("rs");
                !in_locking && !file.ends_with("xtask/src/tidy.rs")
            });
        // Unit tests may lock rows on purpose (to cause a deadlock, say).
        let offenders = matching_code(sources, &patterns);
        assert!(
            offenders.is_empty(),
            "row locks outside crates/storage-pg/src/locking: {offenders:#?}"
        );
        let own = fs::read_to_string(locking.with_extension("rs")).expect("locking.rs");
        assert!(
            own.contains("for_no_key_update("),
            "the patterns no longer match the locking module"
        );
    }

    /// Handlers see no SQL: the API crate reaches the database only through storage-pg's
    /// functions. `blocking.rs` is the one exception, because the connection it checks out and
    /// hands to those functions is diesel's `PgConnection`. (Database errors are classified in
    /// storage-pg, so the error mapping needs no diesel.) Unit tests are left out, as in the
    /// lock check. The check checks itself on `blocking.rs`, which must still match.
    #[test]
    fn the_api_crate_runs_no_sql_of_its_own() {
        let src = root().join("crates/api-http/src");
        let blocking = src.join("blocking.rs");
        let patterns = ["diesel", "tokio_postgres", "sql_query", "select 1"];
        let sources = files(&src, &["rs"])
            .into_iter()
            .filter(|file| *file != blocking);
        // Unit tests may build a pool that cannot connect, say.
        let offenders = matching_code(sources, &patterns);
        assert!(
            offenders.is_empty(),
            "SQL or a database client in the API crate, outside blocking.rs: {offenders:#?}"
        );
        let own = fs::read_to_string(&blocking).expect("blocking.rs");
        assert!(
            own.contains("diesel::"),
            "the patterns no longer match blocking.rs"
        );
    }

    /// `(file, line number, pattern)` for every line of `files` that holds one of `patterns`,
    /// outside `//` comments (a comment may name what it forbids).
    fn lines_with(files: &[PathBuf], patterns: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for file in files {
            let text = fs::read_to_string(file).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if let Some(pattern) = patterns.iter().find(|p| code.contains(*p)) {
                    found.push(format!("{}:{} ({pattern})", relative(file), number + 1));
                }
            }
        }
        found
    }

    /// Every Rust file of every crate, sources and tests, except this one (which names the
    /// patterns it looks for).
    fn rust_files() -> Vec<PathBuf> {
        let this = root().join("xtask/src/tidy.rs");
        crate_dirs()
            .iter()
            .flat_map(|dir| ["src", "tests"].map(|sub| dir.join(sub)))
            .flat_map(|dir| files(&dir, &["rs"]))
            .filter(|file| *file != this)
            .collect()
    }

    /// A test asserts on the error it expects: a panic that passes (`should_panic`) hides which
    /// panic it was, and an ignored test never runs in CI.
    #[test]
    fn no_test_expects_a_panic_or_is_ignored() {
        let patterns = ["#[should_panic", "#[ignore"];
        let found = lines_with(&rust_files(), &patterns);
        assert!(found.is_empty(), "assert on the Err instead: {found:#?}");
        let sample = std::env::temp_dir().join(format!("tidy-sample-{}.rs", std::process::id()));
        fs::write(&sample, "#[test]\n#[should_panic]\nfn f() {}\n").expect("a sample");
        let caught = lines_with(std::slice::from_ref(&sample), &patterns);
        fs::remove_file(&sample).expect("remove the sample");
        assert_eq!(caught.len(), 1, "the check no longer catches should_panic");
    }

    /// The SQL files beside storage-pg's modules run as prepared statements, whose binder
    /// (`prepared.rs`) skips `--` comments but would read a `$1` inside `/* */` as a parameter.
    #[test]
    fn sql_files_use_only_line_comments() {
        let sql: Vec<PathBuf> = crate_dirs()
            .iter()
            .flat_map(|dir| files(&dir.join("src"), &["sql"]))
            .collect();
        assert!(
            sql.iter().any(|f| f.ends_with("locking/claim.sql")),
            "the SQL files are no longer found"
        );
        let mut offenders = Vec::new();
        for file in &sql {
            let text = fs::read_to_string(file).expect("readable SQL");
            // Quoted text could hold `/*` harmlessly; none of ours does, so any is refused.
            if text.contains("/*") || text.contains("*/") {
                offenders.push(relative(file));
            }
        }
        assert!(
            offenders.is_empty(),
            "block comments in SQL files, use `--`: {offenders:#?}"
        );
    }

    /// The domain takes time as an argument: no clock in its code. `cargo tree` cannot prove
    /// it, since chrono's clock feature is on for the whole workspace.
    #[test]
    fn the_domain_reads_no_clock() {
        let patterns = [
            "Utc::now",
            "Local::now",
            "SystemTime::now",
            "Instant::now",
            "UNIX_EPOCH.elapsed",
        ];
        let domain = root().join("crates/domain");
        let sources: Vec<PathBuf> = ["src", "tests"]
            .iter()
            .flat_map(|sub| files(&domain.join(sub), &["rs"]))
            .collect();
        assert!(
            sources.iter().any(|f| f.ends_with("plan.rs")),
            "the domain's sources are no longer found"
        );
        let found = lines_with(&sources, &patterns);
        assert!(
            found.is_empty(),
            "a clock in the domain; take `now` as an argument: {found:#?}"
        );
    }

    /// The domain crate stays pure: no IO crate and none of our other crates in its tree.
    #[test]
    fn the_domain_crate_depends_on_no_io_crate() {
        let output = std::process::Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "tree",
                "-p",
                "lockstep-domain",
                "-e",
                "normal",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .output()
            .expect("cargo tree runs");
        assert!(output.status.success(), "cargo tree failed: {output:?}");
        let tree = String::from_utf8_lossy(&output.stdout);
        assert!(
            tree.contains("lockstep-domain"),
            "unexpected output: {tree}"
        );
        assert_eq!(
            crate::ci::forbidden_dependencies(&tree),
            Vec::<String>::new()
        );
    }

    /// The example `dev` offers and `demo` runs is valid JSON of the pipeline shape, builds,
    /// tests, then deploys to `staging` (the server checks the rest when it is submitted).
    #[test]
    fn the_example_pipeline_deploys_to_staging() {
        let path = root().join(crate::dev::EXAMPLE);
        let text = fs::read_to_string(&path).expect("examples/pipeline.json");
        let pipeline: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(pipeline["ref"], "main");
        let jobs = pipeline["jobs"].as_array().expect("a jobs array");
        let names: Vec<&str> = jobs.iter().filter_map(|job| job["name"].as_str()).collect();
        assert_eq!(names, ["build", "test", "deploy"]);
        for job in jobs {
            let script = job["script"].as_array().expect("a script array");
            assert!(
                !script.is_empty() && script.iter().all(serde_json::Value::is_string),
                "{job}"
            );
        }
        let deploy = &jobs[2];
        assert_eq!(deploy["environment"], "staging");
        assert_eq!(deploy["stage"], "deploy");
        assert_eq!(deploy["resource_group"], "staging", "one deploy at a time");
    }

    /// The README starts with `dev`, then `test`: the first two commands a newcomer is told to
    /// run (in its `sh` blocks; output shown in `text` blocks does not count).
    #[test]
    fn the_readme_starts_with_dev_then_test() {
        let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
        let mut in_sh = false;
        let mut commands = Vec::new();
        for line in readme.lines().map(str::trim) {
            if line.starts_with("```") {
                in_sh = line == "```sh";
            } else if in_sh && line.starts_with("cargo ") {
                commands.push(line);
            }
        }
        assert_eq!(commands[..2], ["cargo xtask dev", "cargo xtask test"]);
    }

    /// CI is defined once. `.ci/run` runs what the README tells users to run, then the storm;
    /// the GitHub workflow runs `cargo xtask ci` and no cargo step of its own; and
    /// `cargo xtask ci` ends with the same two, so the three cannot drift apart.
    #[test]
    fn ci_is_defined_once_in_cargo_xtask_ci() {
        let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
        let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
        let workflow =
            fs::read_to_string(root().join(".github/workflows/ci.yml")).expect("ci workflow");
        let xtask_ci = fs::read_to_string(root().join("xtask/src/ci.rs")).expect("ci.rs");
        let command = "cargo xtask test";
        assert!(
            readme.lines().any(|l| l.trim() == command),
            "README lacks `{command}` on a line of its own"
        );
        let runs = |text: &str, command: &str| text.lines().any(|l| l.trim().ends_with(command));
        assert!(runs(&ci, command), ".ci/run does not run `{command}`");
        let storm = format!("cargo xtask stress --seconds {}", crate::ci::STORM_SECONDS);
        assert!(runs(&ci, &storm), ".ci/run does not run `{storm}`");
        assert!(
            runs(&workflow, "cargo xtask ci"),
            "ci.yml does not run `cargo xtask ci`"
        );
        let cargo_steps: Vec<&str> = workflow
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("run:") && l.contains("cargo ") && !l.ends_with("cargo xtask ci")
            })
            .collect();
        assert!(
            cargo_steps.is_empty(),
            "ci.yml runs cargo beside `cargo xtask ci`; add the check to xtask/src/ci.rs: {cargo_steps:?}"
        );
        for call in ["cargo::test(root", "cargo::stress_status(root"] {
            assert!(
                xtask_ci.contains(call),
                "cargo xtask ci no longer calls `{call}`"
            );
        }
    }
}
