//! What a scenario costs beyond its wall-clock time: statements sent (round trips) and CPU
//! time, both on the client and in the PostgreSQL backend serving the connection.
//!
//! CPU comes from `/proc/.../schedstat` (nanoseconds on a CPU), which the bench can read for its
//! own threads and, the server being local, for each backend it talks to.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Statements and CPU, summed over the connections of a run.
#[derive(Debug, Default)]
pub(crate) struct Cost {
    statements: AtomicU64,
    client_ns: AtomicU64,
    server_ns: AtomicU64,
}

impl Cost {
    pub(crate) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    pub(crate) fn client_cpu(&self) -> Duration {
        Duration::from_nanos(self.client_ns.load(Ordering::Relaxed))
    }

    pub(crate) fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.server_ns.load(Ordering::Relaxed))
    }
}

/// Counts the statements of one connection into a [`Cost`].
struct Counter(Arc<Cost>);

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.statements.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Measures one thread's work on one connection, from now until [`Meter::stop`].
pub(crate) struct Meter {
    cost: Arc<Cost>,
    backend: Option<i32>,
    client_start: Option<u64>,
    server_start: Option<u64>,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

impl Meter {
    /// Starts counting `conn`'s statements and this thread's and its backend's CPU.
    pub(crate) fn start(cost: &Arc<Cost>, conn: &mut PgConnection) -> Self {
        // Fixture SQL: which process serves this connection.
        let backend = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)
            .ok()
            .map(|row| row.pid);
        conn.set_instrumentation(Counter(Arc::clone(cost)));
        Self {
            cost: Arc::clone(cost),
            backend,
            client_start: cpu_ns("/proc/thread-self/schedstat"),
            server_start: backend.and_then(|pid| cpu_ns(&format!("/proc/{pid}/schedstat"))),
        }
    }

    /// Adds this thread's and its backend's CPU since `start`; call before the connection closes.
    pub(crate) fn stop(self) {
        let client = cpu_ns("/proc/thread-self/schedstat");
        let server = self
            .backend
            .and_then(|pid| cpu_ns(&format!("/proc/{pid}/schedstat")));
        if let (Some(end), Some(start)) = (client, self.client_start) {
            self.cost
                .client_ns
                .fetch_add(end.saturating_sub(start), Ordering::Relaxed);
        }
        if let (Some(end), Some(start)) = (server, self.server_start) {
            self.cost
                .server_ns
                .fetch_add(end.saturating_sub(start), Ordering::Relaxed);
        }
    }
}

/// The first field of a schedstat file: nanoseconds spent on a CPU.
fn cpu_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
