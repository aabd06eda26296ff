//! Runners watching their builds: a `POST /jobs/watch` waits until one of them is asked to stop.
//!
//! The cancel transition's trigger sends `NOTIFY lockstep_builds_canceling` with the ids of the
//! builds it turned `canceling`, whichever replica ran it; the listener in `wake.rs` hears it on
//! the connection it already holds for pending builds and hands it here. Each waiting watch holds
//! a [`Subscription`] (a broadcast receiver, no database connection) and reads its builds again
//! only when a notice names one of them, so a watch costs one read when it starts and one per
//! cancel that concerns it.
//!
//! A watch subscribes before its first read, so a cancel committed after that read is always
//! heard. When the listener reconnects (notices may have been lost meanwhile), or a watch falls
//! so far behind that the channel dropped notices for it, every watch reads again.

use lockstep_domain::BuildId;
use lockstep_storage_pg::Canceling;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Notices kept for watches that have not read them yet; a watch further behind reads again.
const BACKLOG: usize = 1024;

/// What a watch hears.
#[derive(Debug, Clone)]
enum Notice {
    Canceling(Arc<[BuildId]>),
    /// Builds may have turned canceling unannounced: every watch reads again.
    LookAgain,
}

/// The watches of this process.
#[derive(Debug)]
pub(crate) struct Watches {
    sender: broadcast::Sender<Notice>,
}

impl Default for Watches {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(BACKLOG),
        }
    }
}

impl Watches {
    /// Starts listening for the builds `ids`: notices sent from now on are kept for
    /// [`Subscription::concerned`].
    pub(crate) fn subscribe(&self, ids: &[BuildId]) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            ids: ids.iter().copied().collect(),
        }
    }

    /// A notification on the canceling channel arrived.
    pub(crate) fn canceling(&self, canceling: Canceling) {
        let notice = match canceling {
            Canceling::Listed(ids) => Notice::Canceling(ids.into()),
            Canceling::TooMany => Notice::LookAgain,
        };
        // An error only means that nobody is watching.
        let _ = self.sender.send(notice);
    }

    /// Notifications may have been missed: every watch reads its builds again.
    pub(crate) fn look_again(&self) {
        let _ = self.sender.send(Notice::LookAgain);
    }
}

/// One watch's place among the listeners.
#[derive(Debug)]
pub(crate) struct Subscription {
    receiver: broadcast::Receiver<Notice>,
    ids: HashSet<BuildId>,
}

impl Subscription {
    /// Resolves when a notice may concern one of the watched builds: read them again then.
    /// Cancel-safe: notices that arrive while nobody awaits are kept.
    pub(crate) async fn concerned(&mut self) {
        loop {
            match self.receiver.recv().await {
                Ok(Notice::Canceling(ids)) if !ids.iter().any(|id| self.ids.contains(id)) => {}
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                // The sender lives as long as the app: this never happens while it serves.
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Watches;
    use lockstep_domain::BuildId;
    use lockstep_storage_pg::Canceling;
    use std::time::Duration;

    async fn hears(subscription: &mut super::Subscription) -> bool {
        tokio::time::timeout(Duration::from_millis(50), subscription.concerned())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_watch_hears_only_the_cancels_of_its_builds() {
        let watches = Watches::default();
        let mut watch = watches.subscribe(&[BuildId(1), BuildId(2)]);
        watches.canceling(Canceling::Listed(vec![BuildId(3)]));
        assert!(!hears(&mut watch).await, "build 3 is not watched");
        watches.canceling(Canceling::Listed(vec![BuildId(2), BuildId(5)]));
        assert!(hears(&mut watch).await, "build 2 is watched");
        watches.canceling(Canceling::TooMany);
        assert!(hears(&mut watch).await, "an unnamed cancel may be ours");
        watches.look_again();
        assert!(hears(&mut watch).await, "after a reconnect everyone looks");
    }

    #[tokio::test]
    async fn a_notice_sent_before_anyone_awaits_is_kept() {
        let watches = Watches::default();
        let mut watch = watches.subscribe(&[BuildId(1)]);
        watches.canceling(Canceling::Listed(vec![BuildId(1)]));
        assert!(hears(&mut watch).await);
    }

    #[tokio::test]
    async fn a_watch_that_fell_behind_reads_again() {
        let watches = Watches::default();
        let mut watch = watches.subscribe(&[BuildId(1)]);
        for other in 0..super::BACKLOG + 10 {
            let id = i64::try_from(other).expect("small") + 100;
            watches.canceling(Canceling::Listed(vec![BuildId(id)]));
        }
        assert!(hears(&mut watch).await, "notices were dropped for it");
    }
}
