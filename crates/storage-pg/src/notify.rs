//! The channel that wakes runners waiting for work.

/// PostgreSQL NOTIFY channel that fires, after commit, whenever any build becomes pending.
///
/// Triggers on `ci_builds` send it (see the `notify_pending` migration), so every path that makes
/// a build pending is covered. The payload is the number of builds the statement made pending, in
/// decimal (see `notify_pending_count`); PostgreSQL folds equal payloads within a transaction, so
/// it is a lower bound. Listeners must still look again after reconnecting, since a notification
/// sent while a connection was not listening is lost.
pub const PENDING_CHANNEL: &str = "lockstep_builds_pending";

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
