//! One watch per worker on every build it runs (`POST /jobs/watch`): the server answers the
//! moment one of them is asked to stop, so a cancel reaches the script in milliseconds instead of
//! at the next heartbeat, a third of the lease away. Heartbeats still keep the leases, and still
//! say `canceling` too: a server without watches, or a watch that failed, costs only speed.
//!
//! The set of builds changes as builds start and end; the watch then starts again with the new
//! set. A build the server names is signalled once and leaves the set.

use crate::backoff::Backoff;
use crate::client::{CallError, Client, Watched};
use crate::job::Stop;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long one watch waits on the server.
const WAIT_SECONDS: u32 = 30;
/// The most builds one watch names (the server's limit).
const MAX_WATCHED: usize = 256;

/// The builds being watched, each with where to send its stop.
#[derive(Debug, Default)]
struct Builds {
    stops: Mutex<BTreeMap<i64, mpsc::Sender<Stop>>>,
    changed: Notify,
}

impl Builds {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<i64, mpsc::Sender<Stop>>> {
        // Every critical section is a single map operation: a panic cannot leave it half done.
        self.stops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The worker's watch: cheap to clone, one task behind it.
#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    builds: Arc<Builds>,
}

/// A build in the watch until dropped.
#[derive(Debug)]
pub(crate) struct Watching {
    builds: Arc<Builds>,
    id: i64,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if self.builds.lock().remove(&self.id).is_some() {
            self.builds.changed.notify_one();
        }
    }
}

impl Watcher {
    /// Starts the watch task; it runs until `done`.
    pub(crate) fn spawn(client: Client, done: CancellationToken) -> (Self, JoinHandle<()>) {
        let builds = Arc::new(Builds::default());
        let task = tokio::spawn(run(client, Arc::clone(&builds), done));
        (Self { builds }, task)
    }

    /// Watches `id` until the returned guard drops; `stop` hears [`Stop::Canceled`] when the
    /// server asks for it to stop and [`Stop::LeaseLost`] when the runner no longer holds it.
    pub(crate) fn watch(&self, id: i64, stop: mpsc::Sender<Stop>) -> Watching {
        self.builds.lock().insert(id, stop);
        self.builds.changed.notify_one();
        Watching {
            builds: Arc::clone(&self.builds),
            id,
        }
    }
}

async fn run(client: Client, builds: Arc<Builds>, done: CancellationToken) {
    let mut backoff = Backoff::default();
    loop {
        let ids: Vec<i64> = builds.lock().keys().copied().take(MAX_WATCHED).collect();
        if ids.is_empty() {
            tokio::select! {
                () = builds.changed.notified() => continue,
                () = done.cancelled() => return,
            }
        }
        let answer = tokio::select! {
            answer = client.watch(&ids, WAIT_SECONDS) => answer,
            // Builds started or ended: watch the new set (dropping the call closes it).
            () = builds.changed.notified() => continue,
            () = done.cancelled() => return,
        };
        match answer {
            Ok(watched) => {
                backoff.reset();
                signal(&builds, &watched);
            }
            Err(CallError::Refused { status: 404, .. }) => {
                tracing::warn!("the server has no build watch: cancels arrive with heartbeats");
                return;
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "build watch failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = done.cancelled() => return,
                }
            }
        }
    }
}

/// Tells each build the server named what to do, once: it leaves the watch.
fn signal(builds: &Builds, watched: &[Watched]) {
    let mut stops = builds.lock();
    for build in watched {
        let stop = if !build.held {
            Stop::LeaseLost
        } else if build.status.as_deref() == Some("canceling") {
            Stop::Canceled
        } else {
            continue;
        };
        if let Some(sender) = stops.remove(&build.id) {
            tracing::debug!(build_id = build.id, ?stop, "the watch says to stop");
            // The build takes only its first stop; a full channel already holds one.
            let _ = sender.try_send(stop);
        }
    }
}
