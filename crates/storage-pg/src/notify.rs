//! The channel that wakes runners waiting for work, and the listener that hears it.
//!
//! The listener is the one asynchronous part of this crate: a LISTEN must hold its connection
//! open and be told of notifications as they arrive, which diesel's blocking connection cannot do
//! without a thread per listener, so it runs on tokio-postgres. It only ever sends `LISTEN`.

use futures_util::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use tokio_postgres::{AsyncMessage, NoTls};

/// PostgreSQL NOTIFY channel that fires, after commit, whenever any build becomes pending.
///
/// Triggers on `ci_builds` send it (see the `notify_pending` migration), so every path that makes
/// a build pending is covered. The payload is the number of builds the statement made pending, in
/// decimal (see `notify_pending_count`); PostgreSQL folds equal payloads within a transaction, so
/// it is a lower bound. Listeners must still look again after reconnecting, since a notification
/// sent while a connection was not listening is lost.
pub const PENDING_CHANNEL: &str = "lockstep_builds_pending";

/// Why the listening connection stopped. Either way the listener is done: connect a new one, and
/// assume notifications were missed meanwhile.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("the listening connection failed: {0}")]
    Connection(#[from] tokio_postgres::Error),
    #[error("the server closed the listening connection")]
    Closed,
}

/// What one notification on [`PENDING_CHANNEL`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// At least this many builds became pending.
    Builds(u64),
    /// Builds became pending, how many is not said (a trigger from before the count migration).
    Unknown,
}

type Messages = Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// A connection of its own that LISTENs on [`PENDING_CHANNEL`]. Its connection makes progress
/// only while [`PendingListener::next`] is awaited, so a caller keeps awaiting it.
pub struct PendingListener {
    // Dropping the client would close the connection; it is kept, never used again.
    _client: tokio_postgres::Client,
    messages: Messages,
    /// Notifications that arrived while LISTEN was still completing, oldest first.
    early: VecDeque<Pending>,
}

impl std::fmt::Debug for PendingListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingListener").finish_non_exhaustive()
    }
}

impl PendingListener {
    /// Connects to `database_url` and LISTENs. Once this returns, every build made pending by a
    /// later commit is announced to [`PendingListener::next`].
    pub async fn connect(database_url: &str) -> Result<Self, ListenError> {
        let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
        let mut messages: Messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
            connection.poll_message(cx)
        }));
        let statement = format!("LISTEN {PENDING_CHANNEL}");
        let mut early = VecDeque::new();
        {
            // The connection only makes progress while its messages are polled, so drive both.
            // The server may deliver a notification committed just after our LISTEN before it
            // says the LISTEN is done: keep it for `next`.
            let mut listen = std::pin::pin!(client.batch_execute(&statement));
            loop {
                tokio::select! {
                    result = &mut listen => break result?,
                    message = messages.next() => match message {
                        Some(Ok(message)) => early.extend(pending(&message)),
                        Some(Err(error)) => return Err(error.into()),
                        None => return Err(ListenError::Closed),
                    },
                }
            }
        }
        Ok(Self {
            _client: client,
            messages,
            early,
        })
    }

    /// Waits for the next notification on the channel.
    pub async fn next(&mut self) -> Result<Pending, ListenError> {
        if let Some(early) = self.early.pop_front() {
            return Ok(early);
        }
        loop {
            match self.messages.next().await {
                Some(Ok(message)) => {
                    if let Some(pending) = pending(&message) {
                        return Ok(pending);
                    }
                }
                Some(Err(error)) => return Err(error.into()),
                None => return Err(ListenError::Closed),
            }
        }
    }
}

/// What a message from the server says about pending builds: notices and the like say nothing.
fn pending(message: &AsyncMessage) -> Option<Pending> {
    let AsyncMessage::Notification(notification) = message else {
        return None;
    };
    Some(match notification.payload().parse::<u64>() {
        Ok(builds) => Pending::Builds(builds),
        Err(_) => Pending::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::PENDING_CHANNEL;

    const MIGRATION: &str =
        include_str!("../../../migrations/2026-11-26-000001_notify_pending/up.sql");
    const COUNT_MIGRATION: &str =
        include_str!("../../../migrations/2026-11-27-000000_notify_pending_count/up.sql");

    /// The triggers spell the channel as a literal; it must be this constant.
    #[test]
    fn the_triggers_notify_the_exported_channel() {
        for (migration, payload) in [(MIGRATION, "''"), (COUNT_MIGRATION, "builds::text")] {
            let call = format!("pg_notify('{PENDING_CHANNEL}', {payload})");
            assert_eq!(
                migration.matches(&call).count(),
                2,
                "both triggers call `{call}`"
            );
        }
    }
}
