//! Finding the PostgreSQL programs: server binaries all from one directory, so `initdb` and
//! `postgres` always agree on the version, and `psql` beside them or on `PATH`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where Debian and Ubuntu install each major version's binaries, as `<dir>/<version>/bin`.
const DEBIAN_VERSIONS_DIR: &str = "/usr/lib/postgresql";

/// The programs a cluster needs; all must be in the same directory for it to count.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

const MISSING: &str = "no PostgreSQL server binaries found (looked for pg_ctl and initdb on PATH \
    and in /usr/lib/postgresql/*/bin); install them (Debian/Ubuntu: `apt-get install postgresql`; \
    macOS: `brew install postgresql@16`) or set DATABASE_URL to a server you run";

#[derive(Debug, Clone)]
pub(crate) struct PgBinaries {
    bin_dir: PathBuf,
    psql: PathBuf,
}

impl PgBinaries {
    pub(crate) fn find() -> anyhow::Result<Self> {
        let bin_dir = server_bin_dir().context(MISSING)?;
        let psql = psql_in(&bin_dir).with_context(|| {
            format!(
                "found the PostgreSQL server in {} but no psql there or on PATH; install the \
                 PostgreSQL client (Debian/Ubuntu: `apt-get install postgresql-client`)",
                bin_dir.display()
            )
        })?;
        Ok(Self { bin_dir, psql })
    }

    pub(crate) fn initdb(&self) -> PathBuf {
        self.bin_dir.join("initdb")
    }

    pub(crate) fn pg_ctl(&self) -> PathBuf {
        self.bin_dir.join("pg_ctl")
    }

    pub(crate) fn psql(&self) -> &Path {
        &self.psql
    }
}

/// A `psql` for talking to any server: beside the server binaries if there are some, else on
/// `PATH`. Needs no server binaries, so it works with `DATABASE_URL` and a client-only install.
pub(crate) fn find_psql() -> Option<PathBuf> {
    match server_bin_dir() {
        Some(bin_dir) => psql_in(&bin_dir),
        None => on_path("psql"),
    }
}

fn psql_in(bin_dir: &Path) -> Option<PathBuf> {
    let beside = bin_dir.join("psql");
    if beside.is_file() {
        Some(beside)
    } else {
        on_path("psql")
    }
}

/// The directory of `pg_ctl` on `PATH` (symlinks resolved, so a `/usr/local/bin/pg_ctl` link
/// leads to its real version directory), else the newest `/usr/lib/postgresql/*/bin`.
fn server_bin_dir() -> Option<PathBuf> {
    let from_path = on_path("pg_ctl")
        .and_then(|pg_ctl| pg_ctl.canonicalize().ok())
        .and_then(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf))
        .filter(|dir| has_server_programs(dir));
    from_path.or_else(newest_debian_bin_dir)
}

fn newest_debian_bin_dir() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_VERSIONS_DIR).ok()?;
    let versions = entries
        .filter_map(Result::ok)
        .filter(|entry| has_server_programs(&entry.path().join("bin")))
        .filter_map(|entry| entry.file_name().into_string().ok());
    let newest = highest_version(versions)?;
    Some(Path::new(DEBIAN_VERSIONS_DIR).join(newest).join("bin"))
}

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS
        .iter()
        .all(|program| dir.join(program).is_file())
}

fn on_path(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program.as_ref()))
        .find(|candidate| candidate.is_file())
}

/// The highest of version-like directory names (`9.6`, `15`, `16`), compared numerically part by
/// part; names that are not versions are ignored.
fn highest_version(names: impl IntoIterator<Item = String>) -> Option<String> {
    names
        .into_iter()
        .filter_map(|name| version_key(&name).map(|key| (key, name)))
        .max()
        .map(|(_, name)| name)
}

fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::highest_version;

    fn highest(names: &[&str]) -> Option<String> {
        highest_version(names.iter().map(|name| (*name).to_owned()))
    }

    #[test]
    fn highest_version_compares_numerically_not_as_text() {
        assert_eq!(highest(&["9.6", "15", "10", "16"]).as_deref(), Some("16"));
        assert_eq!(highest(&["9.6", "9.10"]).as_deref(), Some("9.10"));
    }

    #[test]
    fn highest_version_ignores_names_that_are_not_versions() {
        assert_eq!(highest(&["common", "15", "15-beta"]).as_deref(), Some("15"));
        assert_eq!(highest(&["common"]), None);
        assert_eq!(highest(&[]), None);
    }
}
