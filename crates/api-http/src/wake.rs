//! Waking long-polling runners when builds become pending.
//!
//! A trigger on `ci_builds` sends `NOTIFY lockstep_builds_pending` whenever a statement makes a
//! build pending, whichever server replica ran it. Each replica keeps one connection that
//! LISTENs on that channel and bumps a counter; waiting requests watch the counter. A request
//! reads the counter *before* it tries to claim, so a build made pending between its claim and
//! its wait still wakes it.

use crate::app::AppState;
use futures_util::StreamExt;
use lockstep_storage_pg::PENDING_CHANNEL;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

/// A counter that goes up each time builds may have become pending.
#[derive(Debug)]
pub(crate) struct Wake {
    generation: watch::Sender<u64>,
}

impl Default for Wake {
    fn default() -> Self {
        Self {
            generation: watch::Sender::new(0),
        }
    }
}

impl Wake {
    /// A receiver that has seen the current generation; `changed()` resolves on the next bump.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub(crate) fn bump(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }
}

/// LISTENs until shutdown, reconnecting with capped backoff when the connection drops.
pub(crate) async fn listen(state: AppState, database_url: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            result = listen_once(&state, &database_url) => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "wake-up listener disconnected");
                }
            }
            () = state.stopped() => return,
        }
        // Notifications may have been missed while disconnected: let every waiter look again.
        state.wake.bump();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = state.stopped() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(state: &AppState, database_url: &str) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {PENDING_CHANNEL}");
    let listen = client.batch_execute(&statement);
    // The connection only makes progress while its messages are polled, so drive both at once.
    let mut listen = std::pin::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            result = &mut listen, if !listening => {
                result?;
                listening = true;
                tracing::debug!("listening for pending builds");
                state.wake.bump();
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(_))) => state.wake.bump(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}
