//! The peer benchmarks: running `../shared/peers/run-peers` on our server and reading the
//! `PEER <name> [<kind>] <key>=<value> …` lines it prints.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process;

/// Where run-peers lives, relative to the workspace root: beside the checkout.
pub(crate) const SCRIPT: &str = "../shared/peers/run-peers";

/// Jobs per peer throughput run with `--quick` (run-peers' own default is 20,000).
const QUICK_JOBS: u32 = 2000;

/// One figure a peer reports: the line is found by the peer's name, the bare word after it and
/// some `key=value` pairs; the figure is one key's value on that line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PeerFigure {
    pub(crate) peer: &'static str,
    pub(crate) kind: Option<&'static str>,
    pub(crate) having: &'static [(&'static str, &'static str)],
    pub(crate) key: &'static str,
}

impl PeerFigure {
    /// How a person finds it in run-peers' output, e.g. `graphile-worker process mode=tuned
    /// jobs_per_sec`.
    pub(crate) fn describe(&self) -> String {
        let mut text = self.peer.to_owned();
        if let Some(kind) = self.kind {
            write!(text, " {kind}").expect("writing to a String cannot fail");
        }
        for (key, value) in self.having {
            write!(text, " {key}={value}").expect("writing to a String cannot fail");
        }
        write!(text, " {}", self.key).expect("writing to a String cannot fail");
        text
    }
}

/// One `PEER` line, split up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeerLine {
    peer: String,
    kind: Option<String>,
    /// The `key=value` pairs before any `|`: what follows it (graphile-worker's latency measured
    /// from the commit) repeats the keys with other meanings.
    fields: Vec<(String, String)>,
    raw: String,
}

impl PeerLine {
    /// Reads `PEER <name> [<kind>] <key>=<value> …`; anything else is not a peer line.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("PEER ")?;
        let before_bar = rest.split('|').next().unwrap_or_default();
        let mut words = before_bar.split_whitespace();
        let peer = words.next()?.to_owned();
        let mut kind = None;
        let mut fields = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((key, value)) => fields.push((key.to_owned(), value.to_owned())),
                None if kind.is_none() && fields.is_empty() => kind = Some(word.to_owned()),
                None => {}
            }
        }
        Some(Self {
            peer,
            kind,
            fields,
            raw: line.trim().to_owned(),
        })
    }

    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }

    fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    fn matches(&self, figure: &PeerFigure) -> bool {
        self.peer == figure.peer
            && self.kind.as_deref() == figure.kind
            && figure
                .having
                .iter()
                .all(|(key, value)| self.field(key) == Some(value))
    }
}

/// Everything one run of run-peers printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PeerRun {
    lines: Vec<PeerLine>,
}

impl PeerRun {
    /// Keeps the `PEER` lines of run-peers' output and ignores the rest.
    pub(crate) fn from_output(output: &str) -> Self {
        Self {
            lines: output.lines().filter_map(PeerLine::parse).collect(),
        }
    }

    pub(crate) fn lines(&self) -> &[PeerLine] {
        &self.lines
    }

    /// The figure's value; `None` if its line is missing or says something that is no number
    /// (run-peers prints `error` when a measurement failed).
    pub(crate) fn value(&self, figure: &PeerFigure) -> Option<f64> {
        self.lines
            .iter()
            .filter(|line| line.matches(figure))
            .find_map(|line| line.field(figure.key)?.parse::<f64>().ok())
            .filter(|value| value.is_finite())
    }

    /// The peers run-peers skipped, with its reason (`no_node`, `build_failed`, …).
    pub(crate) fn skipped(&self) -> Vec<(&str, &str)> {
        self.lines
            .iter()
            .filter_map(|line| Some((line.peer.as_str(), line.field("skipped")?)))
            .collect()
    }
}

/// Runs run-peers on `server_url`, echoing its lines to stderr as they come (it takes minutes),
/// and returns what it measured. A failed exit is a warning: each peer's figures stand alone.
pub(crate) fn run(script: &Path, server_url: &str, quick: bool) -> anyhow::Result<PeerRun> {
    let mut command = Command::new(script);
    command.arg(server_url);
    if quick {
        command.arg(QUICK_JOBS.to_string());
    }
    eprintln!("$ {}", process::display(&command));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `{}`", process::display(&command)))?;
    let stdout = child.stdout.take().context("run-peers' stdout is piped")?;
    let mut output = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read run-peers' output")?;
        eprintln!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait().context("cannot wait for run-peers")?;
    if !status.success() {
        eprintln!("warning: run-peers exited with {status}; reporting the figures it printed");
    }
    Ok(PeerRun::from_output(&output))
}

/// The server part of a database URL, as run-peers wants it: it appends `/<database>` itself.
/// A Unix socket directory given as `?host=/dir` (as `cargo xtask db url` prints) becomes the
/// percent-encoded host, `postgresql://postgres@%2Fdir:5432`, which libpq, pgbench, diesel and
/// node-postgres all read as a socket directory.
pub(crate) fn server_url(database_url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = database_url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
        .with_context(|| format!("`{database_url}` is not a postgres:// URL"))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, authority),
    };
    // A bracketed IPv6 address without a port ends in `]`: its colons are not a port's.
    let (mut host, mut port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host_port.ends_with(']') => (host.to_owned(), Some(port.to_owned())),
        _ => (host_port.to_owned(), None),
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "host" => host = percent_encode(&percent_decode(value)?),
            "port" => port = Some(value.to_owned()),
            _ => bail!(
                "run-peers takes a server URL without parameters, so `{key}` in DATABASE_URL \
                 would be lost; use a URL without it"
            ),
        }
    }
    let mut url = format!("{scheme}://");
    if let Some(user) = user {
        write!(url, "{user}@").expect("writing to a String cannot fail");
    }
    url.push_str(&host);
    if let Some(port) = port {
        write!(url, ":{port}").expect("writing to a String cannot fail");
    }
    Ok(url)
}

/// Escapes everything but unreserved characters, `/` included: in the host part it would end it.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            write!(encoded, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    encoded
}

fn percent_decode(text: &str) -> anyhow::Result<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .with_context(|| format!("bad percent-encoding in `{text}`"))?;
            bytes.push(hex);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).with_context(|| format!("`{text}` decodes to invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{PeerFigure, PeerLine, PeerRun, run, server_url};

    const OUTPUT: &str = "\
PEER pgbench update1_c16_tps=8293.460478
PEER graphile-worker enqueue-bulk n=2000 batch=1000 secs=0.050 jobs_per_sec=40000.0
PEER graphile-worker process n=2000 conc=10 mode=tuned executed=2000 startup_ms=80 secs_from_first_job=0.100 jobs_per_sec=20000.0 secs_incl_startup=0.180 jobs_per_sec_incl_startup=11111.1
PEER graphile-worker latency rate=100 n=1000 conc=10 samples=1000 p50_ms=1.50 p90_ms=2.00 p99_ms=3.50 max_ms=9.00 | from_commit(1000) p50_ms=1.10 p99_ms=3.00
PEER fang process n=2000 workers=10 secs=2.000 jobs_per_sec=error
something else
";

    fn figure(
        peer: &'static str,
        kind: Option<&'static str>,
        having: &'static [(&'static str, &'static str)],
        key: &'static str,
    ) -> PeerFigure {
        PeerFigure {
            peer,
            kind,
            having,
            key,
        }
    }

    #[test]
    fn peer_figures_are_found_by_peer_kind_and_fields() {
        let run = PeerRun::from_output(OUTPUT);
        assert_eq!(run.lines().len(), 5);
        let value = |peer, kind, having, key| run.value(&figure(peer, kind, having, key));
        assert_eq!(
            value("pgbench", None, &[], "update1_c16_tps"),
            Some(8_293.460_478)
        );
        assert_eq!(
            value(
                "graphile-worker",
                Some("process"),
                &[("mode", "tuned")],
                "jobs_per_sec"
            ),
            Some(20000.0)
        );
        assert_eq!(
            value(
                "graphile-worker",
                Some("process"),
                &[("mode", "default")],
                "jobs_per_sec"
            ),
            None
        );
        assert_eq!(
            value("graphile-worker", Some("enqueue-bulk"), &[], "jobs_per_sec"),
            Some(40000.0)
        );
    }

    #[test]
    fn latency_is_read_before_the_bar() {
        let run = PeerRun::from_output(OUTPUT);
        let latency = |key| run.value(&figure("graphile-worker", Some("latency"), &[], key));
        assert_eq!(latency("p50_ms"), Some(1.5));
        assert_eq!(latency("p99_ms"), Some(3.5));
    }

    #[test]
    fn a_failed_measurement_has_no_value_and_a_skipped_peer_says_why() {
        let run = PeerRun::from_output(OUTPUT);
        assert_eq!(
            run.value(&figure("fang", Some("process"), &[], "jobs_per_sec")),
            None
        );
        let run = PeerRun::from_output("PEER graphile-worker skipped=no_node\n");
        assert_eq!(run.skipped(), [("graphile-worker", "no_node")]);
        assert_eq!(PeerLine::parse("RESULT gw latency"), None);
    }

    #[test]
    fn run_keeps_the_peer_lines_the_script_prints() {
        // `echo` stands in for run-peers: it prints its arguments, the URL and, quick, N.
        let tps = figure("pgbench", None, &[], "update1_c16_tps");
        let quick = run(Path::new("echo"), "PEER pgbench update1_c16_tps=8000", true).unwrap();
        assert_eq!(
            quick.lines()[0].raw(),
            "PEER pgbench update1_c16_tps=8000 2000"
        );
        assert_eq!(quick.value(&tps), Some(8000.0));
        let full = run(
            Path::new("echo"),
            "PEER pgbench update1_c16_tps=8000",
            false,
        )
        .unwrap();
        assert_eq!(full.lines()[0].raw(), "PEER pgbench update1_c16_tps=8000");
    }

    #[test]
    fn a_socket_directory_becomes_the_percent_encoded_host() {
        assert_eq!(
            server_url("postgres://postgres@/lockstep?host=/work/main/target/socket&port=5432")
                .unwrap(),
            "postgres://postgres@%2Fwork%2Fmain%2Ftarget%2Fsocket:5432"
        );
        assert_eq!(
            server_url("postgresql://postgres@/lockstep?host=%2Ftmp%2Fa%20b").unwrap(),
            "postgresql://postgres@%2Ftmp%2Fa%20b"
        );
    }

    #[test]
    fn a_tcp_url_loses_only_its_database() {
        assert_eq!(
            server_url("postgres://me:secret@db.example:6543/lockstep").unwrap(),
            "postgres://me:secret@db.example:6543"
        );
        assert_eq!(
            server_url("postgres://localhost").unwrap(),
            "postgres://localhost"
        );
        assert!(server_url("postgres://localhost/x?sslmode=require").is_err());
        assert!(server_url("mysql://localhost/x").is_err());
    }
}
