//! One PostgreSQL cluster in a directory of its own (`data/`, `socket/`, `postgres.log`), driven
//! with `initdb`, `pg_ctl` and `psql`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::binaries::PgBinaries;
use super::run_as::RunAs;
use crate::process;

/// The port only names the socket file (`.s.PGSQL.5432`): with TCP off, clusters of different
/// checkouts never clash on it.
const PORT: u16 = 5432;

/// How many lines of the server log to show when it does not start.
const LOG_TAIL_LINES: usize = 30;

#[derive(Debug)]
pub(crate) struct Cluster {
    dir: PathBuf,
    bins: PgBinaries,
    run_as: RunAs,
}

impl Cluster {
    pub(crate) fn new(dir: PathBuf, bins: PgBinaries, run_as: RunAs) -> Self {
        Self { dir, bins, run_as }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn socket_dir(&self) -> PathBuf {
        socket_dir(&self.dir)
    }

    /// The URL of `database` on this cluster.
    pub(crate) fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir(), database)
    }

    pub(crate) fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// Creates the data directory. The C locale keeps server messages in English: our code
    /// recognises errors such as "deadlock detected" by their text.
    pub(crate) fn init(&self) -> anyhow::Result<()> {
        self.create_dir(&self.dir)?;
        let mut initdb = self.server_command(&self.bins.initdb());
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            // A throwaway cluster need not survive a power cut; this saves seconds per reset.
            "--no-sync",
        ]);
        process::output(&mut initdb).context("initialising the cluster failed")?;
        Ok(())
    }

    pub(crate) fn is_running(&self) -> anyhow::Result<bool> {
        let mut status = self.pg_ctl("status");
        let output = status
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not run `{}`", process::display(&status)))?;
        // pg_ctl status: 0 running, 3 not running, 4 no usable data directory.
        match output.status.code() {
            Some(0) => Ok(true),
            Some(3 | 4) => Ok(false),
            _ => bail!(
                "`{}` failed ({}): {}",
                process::display(&status),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }

    /// Starts the server and waits until it accepts connections; on failure shows the log's end.
    pub(crate) fn start(&self) -> anyhow::Result<()> {
        self.create_dir(&self.socket_dir())?;
        let mut start = self.pg_ctl("start");
        start
            .arg("-w")
            .arg("-l")
            .arg(self.log_file())
            .arg("-o")
            .arg(server_options(&self.socket_dir()));
        if let Err(err) = process::output(&mut start) {
            self.print_log_tail();
            return Err(err.context(format!(
                "PostgreSQL did not start; the end of its log, {}, is above",
                self.log_file().display()
            )));
        }
        Ok(())
    }

    pub(crate) fn stop(&self) -> anyhow::Result<()> {
        let mut stop = self.pg_ctl("stop");
        stop.args(["-w", "-m", "fast"]);
        process::output(&mut stop).context("stopping PostgreSQL failed")?;
        Ok(())
    }

    /// Creates `database` unless it exists.
    pub(crate) fn ensure_database(&self, database: &str) -> anyhow::Result<()> {
        let exists = format!("SELECT 1 FROM pg_database WHERE datname = '{database}'");
        if self.psql(&exists)?.trim() != "1" {
            self.psql(&format!("CREATE DATABASE \"{database}\""))
                .with_context(|| format!("creating database {database} failed"))?;
        }
        Ok(())
    }

    /// Runs one statement in the `postgres` database; psql needs no privilege change, the socket
    /// is open to every local user.
    fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let mut psql = Command::new(self.bins.psql());
        psql.args(["--no-psqlrc", "--quiet", "--tuples-only", "--no-align"])
            .args(["--set", "ON_ERROR_STOP=1"])
            .arg("--dbname")
            .arg(self.url("postgres"))
            .arg("--command")
            .arg(sql);
        process::output(&mut psql)
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut pg_ctl = self.server_command(&self.bins.pg_ctl());
        pg_ctl.arg(action).arg("-D").arg(self.data_dir());
        pg_ctl
    }

    /// Runs a server program as the cluster's owner, from the cluster directory: the owner may
    /// be unable to enter our working directory, and the tools warn when they cannot.
    fn server_command(&self, program: &Path) -> Command {
        let mut command = self.run_as.command(program);
        command.current_dir(&self.dir);
        command
    }

    fn create_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.run_as.give(dir)
    }

    fn print_log_tail(&self) {
        let Ok(log) = fs::read_to_string(self.log_file()) else {
            return;
        };
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        eprintln!(
            "--- {} (last {} lines)",
            self.log_file().display(),
            tail.len()
        );
        for line in tail {
            eprintln!("{line}");
        }
    }
}

pub(crate) fn socket_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("socket")
}

/// Settings passed on every start, so they hold however old the data directory. Unix socket
/// only: no TCP port to clash with another checkout's cluster or a system server.
fn server_options(socket_dir: &Path) -> String {
    // pg_ctl hands these to `postgres` through `/bin/sh`, hence the shell quoting.
    let socket = shell_quote(&socket_dir.to_string_lossy());
    format!(
        "-c listen_addresses='' -c unix_socket_directories={socket} -c port={PORT} \
         -c max_connections=300 -c shared_buffers=256MB -c lc_messages=C"
    )
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `postgres://postgres@/<database>?host=<socket dir>&port=5432`: libpq reads a `host` that
/// starts with `/` as a Unix socket directory.
fn socket_url(socket_dir: &Path, database: &str) -> String {
    let host = percent_encode(&socket_dir.to_string_lossy());
    format!("postgres://postgres@/{database}?host={host}&port={PORT}")
}

/// Escapes everything but unreserved characters and `/`, which a query value may hold as is.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            write!(encoded, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{server_options, socket_url};

    #[test]
    fn socket_url_names_the_socket_directory_as_host() {
        let url = socket_url(
            Path::new("/work/main/target/lockstep-db/cluster/socket"),
            "lockstep",
        );
        assert_eq!(
            url,
            "postgres://postgres@/lockstep?host=/work/main/target/lockstep-db/cluster/socket&port=5432"
        );
    }

    #[test]
    fn socket_url_escapes_unusual_characters_in_the_path() {
        let url = socket_url(Path::new("/home/a b/x&y/socket"), "postgres");
        assert_eq!(
            url,
            "postgres://postgres@/postgres?host=/home/a%20b/x%26y/socket&port=5432"
        );
    }

    #[test]
    fn server_options_quote_the_socket_directory_for_the_shell() {
        let options = server_options(Path::new("/tmp/it's here/socket"));
        assert!(options.contains(r"unix_socket_directories='/tmp/it'\''s here/socket'"));
        assert!(options.starts_with("-c listen_addresses='' "));
    }
}
