//! What the figures were measured on: the machine, the PostgreSQL server, the toolchain and the
//! commit, for `report.json` and docs/performance.md. Each part is best effort: one that cannot
//! be found is null, with a warning, rather than losing a run's figures.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::{db, process};

/// Describes this machine and run, as `report.json`'s `machine` fields in order; `database_url`
/// is the server the bench used, when known.
pub(crate) fn describe(
    root: &Path,
    database_url: Option<&str>,
    quick: bool,
) -> Vec<(&'static str, Value)> {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.current_dir(root).args(args);
        output(&mut command)
    };
    let postgres =
        database_url.and_then(|url| warn_none(db::server_version(url), "the PostgreSQL version"));
    vec![
        ("cpu", json!(cpuinfo.as_deref().and_then(cpu_model))),
        ("cpus", json!(cpuinfo.as_deref().map(cpu_count))),
        ("memory_gib", json!(meminfo.as_deref().and_then(memory_gib))),
        ("kernel", json!(output(Command::new("uname").arg("-sr")))),
        ("postgres", json!(postgres)),
        (
            "rustc",
            json!(output(Command::new("rustc").arg("--version"))),
        ),
        (
            "date",
            json!(output(
                Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            )),
        ),
        ("commit", json!(git(&["rev-parse", "--short", "HEAD"]))),
        (
            "uncommitted_changes",
            json!(git(&["status", "--porcelain"]).map(|status| !status.is_empty())),
        ),
        ("quick", json!(quick)),
    ]
}

fn read(path: &str) -> Option<String> {
    warn_none(fs::read_to_string(path).map_err(anyhow::Error::from), path)
}

/// A command's trimmed stdout, or `None` with a warning.
fn output(command: &mut Command) -> Option<String> {
    let what = process::display(command);
    warn_none(process::output(command), &what).map(|text| text.trim().to_owned())
}

fn warn_none<T>(result: anyhow::Result<T>, what: &str) -> Option<T> {
    result
        .inspect_err(|err| eprintln!("warning: cannot tell {what} for the report: {err:#}"))
        .ok()
}

/// The first `model name` in /proc/cpuinfo (x86; ARM kernels may not say).
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// How many processors the kernel lists: the machine's, not a cgroup's share of it.
fn cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(key, _)| key.trim() == "processor")
        })
        .count()
}

/// `MemTotal` from /proc/meminfo, in GiB to one decimal.
fn memory_gib(meminfo: &str) -> Option<f64> {
    let kib: f64 = meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })?;
    Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::{cpu_count, cpu_model, memory_gib};

    #[test]
    fn cpu_and_memory_are_read_from_proc() {
        let cpuinfo =
            "processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC"));
        assert_eq!(cpu_count(cpuinfo), 2);
        let meminfo = "MemTotal:       24684084 kB\nMemFree:         1000 kB\n";
        assert_eq!(memory_gib(meminfo), Some(23.5));
        assert_eq!(memory_gib("MemFree: 1 kB\n"), None);
    }
}
