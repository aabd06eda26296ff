//! Telling the database that this replica has live pages open, so that the triggers send the
//! dashboard's notifications (and only then: a notifying commit queues behind every other one).
//!
//! While any page is open, this replica's row in `live_viewers` is kept alive, refreshed every
//! [`REFRESH`] for a [`LEASE`]; once the last page has been closed for [`LINGER`], the row is
//! deleted. A replica that crashes leaves its row to expire.
//!
//! Registering is not enough by itself: a transaction whose trigger ran just before the row was
//! committed sent nothing, and a page may have read before it committed. So after each
//! registration that may have found no row of ours, the task waits until every transaction
//! older than the registration has ended (storage's `older_transactions_done`), then tells every
//! page to read again. After that, every change is either announced or read.

use crate::app::AppState;
use crate::auth::random_token;
use crate::blocking::{TaskError, run_blocking};
use lockstep_storage_pg::{older_transactions_done, register_viewers, unregister_viewers};
use std::time::Duration;
use tokio::time::Instant;

/// How long a registration holds without being refreshed.
const LEASE: Duration = Duration::from_secs(30);
/// How often an open page's registration is refreshed: well within the lease.
const REFRESH: Duration = Duration::from_secs(10);
/// How long the registration outlives the last page: a reload closes and opens a page.
const LINGER: Duration = Duration::from_secs(60);
/// How often to look whether the older transactions have ended.
const WAIT_STEP: Duration = Duration::from_millis(20);
/// The longest wait for them: a transaction open longer is stuck, and pages read again anyway.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// What the task believes about its row.
#[derive(Debug, Default)]
struct Registration {
    /// Until when the row certainly holds; `None` when it may be gone.
    holds_until: Option<Instant>,
    /// Since when no page has been open, while the row is still there.
    idle_since: Option<Instant>,
}

/// Keeps this replica's presence in step with its open pages until shutdown.
pub(crate) async fn run(state: AppState) {
    let replica = match random_token("") {
        Ok(token) => token[..32].to_owned(),
        Err(_) => return,
    };
    let mut pages = state.live.open_pages();
    let mut registration = Registration::default();
    loop {
        let open = *pages.borrow_and_update();
        step(&state, &replica, open, &mut registration).await;
        tokio::select! {
            changed = pages.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(REFRESH) => {}
            () = state.stopped() => break,
        }
    }
    if registration.holds_until.is_some() {
        let replica = replica.clone();
        let _ = run_blocking::<_, TaskError, _>(&state, move |conn, _| {
            unregister_viewers(conn, &replica)
        })
        .await;
    }
}

async fn step(state: &AppState, replica: &str, open: usize, registration: &mut Registration) {
    let now = Instant::now();
    if open > 0 {
        registration.idle_since = None;
        let fresh = registration.holds_until.is_none_or(|until| until <= now);
        match register(state, replica).await {
            Ok(horizon) => {
                registration.holds_until = Some(now + LEASE);
                if fresh {
                    wait_out(state, horizon).await;
                    state.live.look_again();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot register this replica's live pages");
                registration.holds_until = None;
            }
        }
    } else if registration.holds_until.is_some() {
        let idle_since = *registration.idle_since.get_or_insert(now);
        if now.duration_since(idle_since) >= LINGER {
            let replica = replica.to_owned();
            let gone = run_blocking::<_, TaskError, _>(state, move |conn, _| {
                unregister_viewers(conn, &replica)
            })
            .await;
            if gone.is_ok() {
                *registration = Registration::default();
            }
        }
    }
}

async fn register(state: &AppState, replica: &str) -> Result<i64, TaskError> {
    let replica = replica.to_owned();
    let lease = i32::try_from(LEASE.as_secs()).unwrap_or(i32::MAX);
    run_blocking(state, move |conn, _| {
        register_viewers(conn, &replica, lease)
    })
    .await
}

/// Waits until every transaction older than `horizon` has ended, or [`WAIT_LIMIT`].
async fn wait_out(state: &AppState, horizon: i64) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        let done = run_blocking::<_, TaskError, _>(state, move |conn, _| {
            older_transactions_done(conn, horizon)
        })
        .await;
        if matches!(done, Ok(true)) {
            return;
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
    tracing::warn!(
        horizon,
        "older transactions still open after 10 s; live pages read again"
    );
}
