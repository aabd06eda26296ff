//! Prometheus metrics in the text exposition format, kept in plain counters so that recording
//! a request costs one short lock and no allocation on the common path.

use lockstep_storage_pg::{QueueFigures, StoredFigures, TxStatsSnapshot};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let separator = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The process's metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), RouteStats>>,
    acquire_wait: Mutex<Histogram>,
    long_polls_waiting: AtomicI64,
    leases_expired: AtomicU64,
    claims_requeued: AtomicU64,
    /// Uploads and downloads by kind (artifacts, caches): `[count, bytes]`.
    uploads: [[AtomicU64; 2]; 2],
    downloads: [[AtomicU64; 2]; 2],
    swept: AtomicU64,
}

/// What an archive is, for the metrics' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Artifacts,
    Cache,
}

impl ArchiveKind {
    const ALL: [Self; 2] = [Self::Artifacts, Self::Cache];

    fn label(self) -> &'static str {
        match self {
            Self::Artifacts => "artifacts",
            Self::Cache => "cache",
        }
    }
}

#[derive(Debug, Default)]
struct RouteStats {
    count: u64,
    latency: Histogram,
}

/// Decrements the waiting gauge when a long-poll ends, however it ends.
#[derive(Debug)]
pub(crate) struct Waiting<'a>(&'a AtomicI64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn request(
        &self,
        method: &'static str,
        route: &str,
        status: u16,
        latency: Duration,
    ) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = requests
            .entry((method, route.to_owned(), status))
            .or_default();
        entry.count += 1;
        entry.latency.observe(latency);
    }

    /// How long a runner waited from its request until it was given a build.
    pub(crate) fn acquired_after(&self, wait: Duration) {
        self.acquire_wait
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .observe(wait);
    }

    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.long_polls_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.long_polls_waiting)
    }

    pub(crate) fn leases_expired(&self, builds: usize) {
        self.leases_expired
            .fetch_add(builds as u64, Ordering::Relaxed);
    }

    pub(crate) fn claims_requeued(&self, builds: usize) {
        self.claims_requeued
            .fetch_add(builds as u64, Ordering::Relaxed);
    }

    pub(crate) fn uploaded(&self, kind: ArchiveKind, bytes: u64) {
        let [count, total] = &self.uploads[kind as usize];
        count.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn downloaded(&self, kind: ArchiveKind, bytes: u64) {
        let [count, total] = &self.downloads[kind as usize];
        count.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn swept(&self, archives: usize) {
        self.swept.fetch_add(archives as u64, Ordering::Relaxed);
    }

    fn render_archives(&self, out: &mut String, stored: Option<&StoredFigures>) {
        for (name, help, counters) in [
            (
                "uploads",
                "Archives uploaded to this process, by kind.",
                &self.uploads,
            ),
            (
                "downloads",
                "Archives this process served, by kind.",
                &self.downloads,
            ),
        ] {
            for (unit, index, what) in [("total", 0, "count"), ("bytes_total", 1, "bytes")] {
                let metric = format!("lockstep_archive_{name}_{unit}");
                header(out, &metric, "counter", &format!("{help} ({what})"));
                for kind in ArchiveKind::ALL {
                    let value = counters[kind as usize][index].load(Ordering::Relaxed);
                    let _ = writeln!(out, "{metric}{{kind=\"{}\"}} {value}", kind.label());
                }
            }
        }
        header(
            out,
            "lockstep_artifacts_swept_total",
            "counter",
            "Expired artifacts this process's sweeper deleted (object and row).",
        );
        let _ = writeln!(
            out,
            "lockstep_artifacts_swept_total {}",
            self.swept.load(Ordering::Relaxed)
        );
        if let Some(stored) = stored {
            header(
                out,
                "lockstep_archives_stored_bytes",
                "gauge",
                "Bytes the object store holds for artifacts and caches, by kind.",
            );
            let _ = writeln!(
                out,
                "lockstep_archives_stored_bytes{{kind=\"artifacts\"}} {}",
                stored.artifact_bytes
            );
            let _ = writeln!(
                out,
                "lockstep_archives_stored_bytes{{kind=\"cache\"}} {}",
                stored.cache_bytes
            );
            header(
                out,
                "lockstep_archives_stored",
                "gauge",
                "Archives the object store holds, by kind.",
            );
            let _ = writeln!(
                out,
                "lockstep_archives_stored{{kind=\"artifacts\"}} {}",
                stored.artifacts
            );
            let _ = writeln!(
                out,
                "lockstep_archives_stored{{kind=\"cache\"}} {}",
                stored.caches
            );
        }
    }

    /// The text exposition of every metric. `pending` (the pending builds, the queue by reason
    /// and what the object store holds) is `None` when the database could not be asked.
    pub(crate) fn render(
        &self,
        tx: &TxStatsSnapshot,
        pending: Option<(i64, QueueFigures, StoredFigures)>,
    ) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        render_transactions(&mut out, tx);
        header(
            &mut out,
            "lockstep_acquire_wait_seconds",
            "histogram",
            "Time from a runner's job request until it was given a build.",
        );
        self.acquire_wait
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .render(&mut out, "lockstep_acquire_wait_seconds", "");
        header(
            &mut out,
            "lockstep_long_polls_waiting",
            "gauge",
            "Job requests waiting for a build.",
        );
        let _ = writeln!(
            out,
            "lockstep_long_polls_waiting {}",
            self.long_polls_waiting.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "lockstep_leases_expired_total",
            "counter",
            "Builds whose lease this process expired, or whose cancel it forced after the grace.",
        );
        let _ = writeln!(
            out,
            "lockstep_leases_expired_total {}",
            self.leases_expired.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "lockstep_claims_requeued_total",
            "counter",
            "Claimed builds this process handed back to the queue, never acknowledged.",
        );
        let _ = writeln!(
            out,
            "lockstep_claims_requeued_total {}",
            self.claims_requeued.load(Ordering::Relaxed)
        );
        self.render_archives(&mut out, pending.as_ref().map(|(_, _, stored)| stored));
        if let Some((pending, queue, _)) = pending {
            header(
                &mut out,
                "lockstep_builds_pending",
                "gauge",
                "Builds waiting for a runner.",
            );
            let _ = writeln!(out, "lockstep_builds_pending {pending}");
            render_queue(&mut out, &queue);
        }
        out
    }

    fn render_requests(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        header(
            out,
            "lockstep_http_requests_total",
            "counter",
            "HTTP requests by route and status.",
        );
        for ((method, route, status), stats) in requests.iter() {
            let _ = writeln!(
                out,
                "lockstep_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                stats.count
            );
        }
        header(
            out,
            "lockstep_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by route and status.",
        );
        for ((method, route, status), stats) in requests.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            stats
                .latency
                .render(out, "lockstep_http_request_duration_seconds", &labels);
        }
    }
}

fn render_transactions(out: &mut String, tx: &TxStatsSnapshot) {
    header(
        out,
        "lockstep_transitions_total",
        "counter",
        "Committed state transitions by kind.",
    );
    for (kind, count) in &tx.committed {
        let _ = writeln!(
            out,
            "lockstep_transitions_total{{kind=\"{}\"}} {count}",
            kind.as_str()
        );
    }
    header(
        out,
        "lockstep_transaction_retries_total",
        "counter",
        "Transactions retried, by SQLSTATE (replan: rows changed between planning and locking).",
    );
    let _ = writeln!(
        out,
        "lockstep_transaction_retries_total{{sqlstate=\"40P01\"}} {}",
        tx.deadlocks
    );
    let _ = writeln!(
        out,
        "lockstep_transaction_retries_total{{sqlstate=\"40001\"}} {}",
        tx.serialization_failures
    );
    let _ = writeln!(
        out,
        "lockstep_transaction_retries_total{{sqlstate=\"replan\"}} {}",
        tx.replans
    );
    header(
        out,
        "lockstep_transactions_gave_up_total",
        "counter",
        "Transactions that failed after their last retry.",
    );
    let _ = writeln!(out, "lockstep_transactions_gave_up_total {}", tx.gave_up);
}

/// The pending builds by why they wait, and the oldest one's wait.
fn render_queue(out: &mut String, queue: &QueueFigures) {
    header(
        out,
        "lockstep_builds_pending_by_reason",
        "gauge",
        "Pending builds by reason: `queued` (an online runner can take it) or `no_runner`.",
    );
    let _ = writeln!(
        out,
        "lockstep_builds_pending_by_reason{{reason=\"queued\"}} {}",
        queue.queued
    );
    let _ = writeln!(
        out,
        "lockstep_builds_pending_by_reason{{reason=\"no_runner\"}} {}",
        queue.no_runner
    );
    header(
        out,
        "lockstep_oldest_pending_build_age_seconds",
        "gauge",
        "How long the longest-waiting pending build has waited (0 when none waits).",
    );
    let age = queue
        .oldest_queued_at
        .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
        .map_or(0.0, |waited| waited.as_secs_f64());
    let _ = writeln!(out, "lockstep_oldest_pending_build_age_seconds {age:.3}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::Metrics;
    use lockstep_storage_pg::{QueueFigures, StoredFigures, TxStatsSnapshot};
    use std::time::Duration;

    #[test]
    fn histograms_are_cumulative_and_count_every_observation() {
        let metrics = Metrics::default();
        metrics.request("GET", "/a", 200, Duration::from_micros(300));
        metrics.request("GET", "/a", 200, Duration::from_millis(3));
        metrics.request("GET", "/a", 200, Duration::from_secs(100));
        let queue = QueueFigures {
            queued: 3,
            no_runner: 1,
            oldest_queued_at: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(90)),
        };
        let text = metrics.render(
            &TxStatsSnapshot::default(),
            Some((4, queue, StoredFigures::default())),
        );
        let labels = "method=\"GET\",route=\"/a\",status=\"200\"";
        for (le, count) in [("0.0005", 1), ("0.005", 2), ("60", 2), ("+Inf", 3)] {
            let line = format!(
                "lockstep_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {count}"
            );
            assert!(text.contains(&line), "missing `{line}` in\n{text}");
        }
        assert!(text.contains(&format!("lockstep_http_requests_total{{{labels}}} 3")));
        assert!(text.contains("lockstep_builds_pending 4"));
        assert!(text.contains("lockstep_builds_pending_by_reason{reason=\"queued\"} 3"));
        assert!(text.contains("lockstep_builds_pending_by_reason{reason=\"no_runner\"} 1"));
        let age = text
            .lines()
            .find_map(|line| line.strip_prefix("lockstep_oldest_pending_build_age_seconds "))
            .and_then(|value| value.parse::<f64>().ok())
            .expect("the oldest pending build's age");
        assert!((89.0..120.0).contains(&age), "{age}");
    }

    #[test]
    fn the_waiting_gauge_falls_when_a_wait_ends() {
        let metrics = Metrics::default();
        let first = metrics.waiting();
        let second = metrics.waiting();
        drop(first);
        let text = metrics.render(&TxStatsSnapshot::default(), None);
        assert!(text.contains("lockstep_long_polls_waiting 1"));
        drop(second);
        assert!(!text.contains("lockstep_builds_pending"));
    }
}
