//! `cargo xtask ci`: every check CI runs, in the order that fails fastest.

use std::path::Path;

use anyhow::{Context, bail};

use crate::{cargo, process};

/// The crate whose dependencies the architecture check restricts.
const DOMAIN_CRATE: &str = "lockstep-domain";

/// Packages `lockstep-domain` must not pull in: it has no IO, no async and knows no other crate
/// of ours (dependencies point inward).
const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "diesel",
    "tokio",
    "tokio-postgres",
    "axum",
    "r2d2",
    "reqwest",
    // Pipeline files are read by crates/pipeline-file; the domain never sees YAML.
    "serde-saphyr",
];

/// How long the storm at the end of `cargo xtask ci` runs: long enough to interleave every
/// transition many thousands of times, short enough for every push. (`.ci/run` runs the same.)
pub(crate) const STORM_SECONDS: u64 = 30;
const STORM_THREADS: u32 = 8;

/// The one definition of "everything passes", in the order that fails fastest. The GitHub
/// workflow runs exactly this; `.ci/run` runs its last two steps, the README's test command
/// and the storm.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    step("formatting", || {
        cargo_step(root, &["fmt", "--all", "--", "--check"])
    })?;
    step("clippy", || {
        cargo_step(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    // Alone, the server's crate resolves storage-pg's features from its own dependencies, so
    // this fails if it needs the `testing` hooks (or if storage-pg warns without them).
    step("the server without storage-pg's test hooks", || {
        cargo_step(
            root,
            &[
                "clippy",
                "-p",
                "lockstep-api-http",
                "--lib",
                "--bins",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    step("the architecture check", || check_domain_dependencies(root))?;
    step("the docs", || {
        let mut doc = process::cargo();
        doc.current_dir(root)
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "--no-deps"]);
        process::run(&mut doc)
    })?;
    step("the tests (cargo xtask test)", || cargo::test(root, &[]))?;
    step("the storm (cargo xtask stress)", || {
        let status = cargo::stress_status(root, STORM_SECONDS, STORM_THREADS)?;
        if !status.success() {
            bail!("the storm found a deadlock, a broken invariant or a double acquire ({status})");
        }
        Ok(())
    })?;
    eprintln!("cargo xtask ci: everything passed");
    Ok(())
}

fn step(name: &str, check: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("== cargo xtask ci: {name}");
    check().with_context(|| format!("cargo xtask ci: {name} failed"))
}

fn cargo_step(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    process::run(process::cargo().current_dir(root).args(args))
}

/// Fails if `lockstep-domain` depends, directly or not, on an IO crate or another of our crates.
fn check_domain_dependencies(root: &Path) -> anyhow::Result<()> {
    let mut tree = process::cargo();
    tree.current_dir(root).args([
        "tree",
        "-p",
        DOMAIN_CRATE,
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    eprintln!("$ {}", process::display(&tree));
    let output = process::output(&mut tree).context("listing the domain crate's dependencies")?;
    let forbidden = forbidden_dependencies(&output);
    if !forbidden.is_empty() {
        bail!(
            "architecture check failed: {DOMAIN_CRATE} must stay free of IO and of our other \
             crates, but depends on {} (see `cargo tree -p {DOMAIN_CRATE} -i <package>`)",
            forbidden.join(", ")
        );
    }
    eprintln!("architecture check passed: {DOMAIN_CRATE} has no forbidden dependencies");
    Ok(())
}

/// The forbidden package names in `cargo tree --prefix none --format {p}` output, sorted, once.
pub(crate) fn forbidden_dependencies(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| is_forbidden(name))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

fn is_forbidden(name: &str) -> bool {
    let ours = name.starts_with("lockstep-") && name != DOMAIN_CRATE;
    // Family members count too: `tokio-util` or `diesel_derives` mean the parent is near.
    let io = FORBIDDEN_IN_DOMAIN.iter().any(|forbidden| {
        name.strip_prefix(forbidden)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_']))
    });
    ours || io
}

#[cfg(test)]
mod tests {
    use super::forbidden_dependencies;

    #[test]
    fn clean_tree_has_no_forbidden_dependencies() {
        let tree = "lockstep-domain v0.1.0 (/w/crates/domain)\nchrono v0.4.42\nserde v1.0.228\n\
                    serde_derive v1.0.228 (proc-macro)\nchrono v0.4.42 (*)\n";
        assert_eq!(forbidden_dependencies(tree), Vec::<String>::new());
    }

    #[test]
    fn io_crates_and_our_crates_are_forbidden_once_each() {
        let tree = "lockstep-domain v0.1.0 (/w/crates/domain)\ntokio v1.48.0\n\
                    lockstep-storage-pg v0.1.0 (/w/crates/storage-pg)\ndiesel_derives v2.3.0\n\
                    tokio v1.48.0 (*)\ntokionic v0.1.0\n";
        assert_eq!(
            forbidden_dependencies(tree),
            ["diesel_derives", "lockstep-storage-pg", "tokio"]
        );
    }
}
