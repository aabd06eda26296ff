//! The channels that wake runners waiting for work or watching their builds and keep the
//! dashboard's pages live, and the listener that hears them all.
//!
//! The listener is the one asynchronous part of this crate: a LISTEN must hold its connection
//! open and be told of notifications as they arrive, which diesel's blocking connection cannot do
//! without a thread per listener, so it runs on tokio-postgres. It only ever sends `LISTEN`.

use futures_util::{Stream, StreamExt};
use lockstep_domain::{BuildId, PipelineId};
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

/// PostgreSQL NOTIFY channel that fires, after commit, whenever running builds are asked to stop.
///
/// The `notify_canceling` migration's trigger sends it with the ids of the builds that turned
/// `canceling`, comma-separated, or an empty payload when there were too many to list.
pub const CANCELING_CHANNEL: &str = "lockstep_builds_canceling";

/// PostgreSQL NOTIFY channel that fires, after commit, whenever builds are inserted or change
/// status, with the ids of their pipelines (the `dashboard` migration).
pub const PIPELINES_CHANNEL: &str = "lockstep_pipelines_changed";

/// PostgreSQL NOTIFY channel that fires, after commit, whenever build logs grow, with the ids of
/// those builds (the `dashboard` migration).
pub const LOGS_CHANNEL: &str = "lockstep_build_logs";

/// What one notification on [`PENDING_CHANNEL`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// At least this many builds became pending.
    Builds(u64),
    /// Builds became pending, how many is not said (a trigger from before the count migration).
    Unknown,
}

/// The ids a notification names: those of [`CANCELING_CHANNEL`], [`PIPELINES_CHANNEL`] and
/// [`LOGS_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ids<T> {
    /// These, in the order the trigger listed them.
    Listed(Vec<T>),
    /// Too many to name: everyone concerned looks again.
    TooMany,
}

/// What one notification on [`CANCELING_CHANNEL`] says: the builds that turned `canceling`.
pub type Canceling = Ids<BuildId>;

/// One notification, by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Pending(Pending),
    Canceling(Canceling),
    /// Builds of these pipelines were inserted or changed status.
    Pipelines(Ids<PipelineId>),
    /// The logs of these builds grew.
    Logs(Ids<BuildId>),
}

type Messages = Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// A connection of its own that LISTENs on every channel above. Its
/// connection makes progress only while [`Listener::next`] is awaited, so a caller keeps
/// awaiting it.
pub struct Listener {
    // Dropping the client would close the connection; it is kept, never used again.
    _client: tokio_postgres::Client,
    messages: Messages,
    /// Notifications that arrived while LISTEN was still completing, oldest first.
    early: VecDeque<Notice>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// Connects to `database_url` and LISTENs. Once this returns, every change a later commit
    /// makes that a channel covers is announced to [`Listener::next`].
    pub async fn connect(database_url: &str) -> Result<Self, ListenError> {
        let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
        let mut messages: Messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
            connection.poll_message(cx)
        }));
        let statement = format!(
            "LISTEN {PENDING_CHANNEL}; LISTEN {CANCELING_CHANNEL}; \
             LISTEN {PIPELINES_CHANNEL}; LISTEN {LOGS_CHANNEL}"
        );
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
                        Some(Ok(message)) => early.extend(notice(&message)),
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

    /// Waits for the next notification on any channel.
    pub async fn next(&mut self) -> Result<Notice, ListenError> {
        if let Some(early) = self.early.pop_front() {
            return Ok(early);
        }
        loop {
            match self.messages.next().await {
                Some(Ok(message)) => {
                    if let Some(notice) = notice(&message) {
                        return Ok(notice);
                    }
                }
                Some(Err(error)) => return Err(error.into()),
                None => return Err(ListenError::Closed),
            }
        }
    }
}

/// What a message from the server says about builds: notices and the like say nothing.
fn notice(message: &AsyncMessage) -> Option<Notice> {
    let AsyncMessage::Notification(notification) = message else {
        return None;
    };
    let payload = notification.payload();
    Some(match notification.channel() {
        CANCELING_CHANNEL => Notice::Canceling(ids(payload, BuildId)),
        PIPELINES_CHANNEL => Notice::Pipelines(ids(payload, PipelineId)),
        LOGS_CHANNEL => Notice::Logs(ids(payload, BuildId)),
        _ => Notice::Pending(match payload.parse::<u64>() {
            Ok(builds) => Pending::Builds(builds),
            Err(_) => Pending::Unknown,
        }),
    })
}

/// The ids of a notification; anything unreadable counts as "too many to name".
fn ids<T>(payload: &str, id: fn(i64) -> T) -> Ids<T> {
    let ids: Result<Vec<T>, _> = payload
        .split(',')
        .map(|text| text.parse::<i64>().map(id))
        .collect();
    match ids {
        Ok(ids) if !payload.is_empty() => Ids::Listed(ids),
        _ => Ids::TooMany,
    }
}

#[cfg(test)]
mod tests {
    use super::{CANCELING_CHANNEL, Ids, LOGS_CHANNEL, PENDING_CHANNEL, PIPELINES_CHANNEL, ids};
    use lockstep_domain::BuildId;

    const MIGRATION: &str =
        include_str!("../../../migrations/2026-11-26-000001_notify_pending/up.sql");
    const COUNT_MIGRATION: &str =
        include_str!("../../../migrations/2026-11-27-000000_notify_pending_count/up.sql");
    const CANCELING_MIGRATION: &str =
        include_str!("../../../migrations/2026-12-01-000003_notify_canceling/up.sql");
    const DASHBOARD_MIGRATION: &str =
        include_str!("../../../migrations/2026-12-02-000001_dashboard/up.sql");

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

    #[test]
    fn the_update_trigger_notifies_both_exported_channels() {
        for call in [
            format!("pg_notify('{PENDING_CHANNEL}', builds::text)"),
            format!("pg_notify('{CANCELING_CHANNEL}', canceling)"),
        ] {
            assert_eq!(CANCELING_MIGRATION.matches(&call).count(), 1, "`{call}`");
        }
    }

    #[test]
    fn the_dashboard_triggers_notify_the_exported_channels() {
        for (call, count) in [
            (format!("pg_notify('{PENDING_CHANNEL}', builds::text)"), 2),
            (
                format!("pg_notify('{CANCELING_CHANNEL}', lockstep_id_list(canceling))"),
                1,
            ),
            (
                format!("pg_notify('{PIPELINES_CHANNEL}', lockstep_id_list(pipelines))"),
                2,
            ),
            (
                format!("pg_notify('{LOGS_CHANNEL}', lockstep_id_list(builds))"),
                1,
            ),
        ] {
            assert_eq!(
                DASHBOARD_MIGRATION.matches(&call).count(),
                count,
                "`{call}`"
            );
        }
    }

    #[test]
    fn a_payload_names_ids_or_asks_everyone_to_look() {
        assert_eq!(
            ids("3,17", BuildId),
            Ids::Listed(vec![BuildId(3), BuildId(17)])
        );
        assert_eq!(ids("", BuildId), Ids::TooMany);
        assert_eq!(ids("3,x", BuildId), Ids::TooMany);
    }
}
