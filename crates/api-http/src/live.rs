//! What the dashboard's live pages hear: which pipelines and build logs changed, as the one
//! listener of this process (`wake.rs`) heard it from PostgreSQL.
//!
//! Triggers announce every change on `lockstep_pipelines_changed` and `lockstep_build_logs`
//! after commit, whichever replica made it, so a page served by this replica is told of changes
//! made through any other. Each open page holds a [`Subscription`], a broadcast receiver and no
//! database connection, and reads again only when a change concerns it: a page costs nothing
//! while nothing it shows changes.
//!
//! A page subscribes before it reads, so a change committed after that read is always heard.
//! When the listener reconnects (notices may have been lost meanwhile), or a page falls so far
//! behind that the channel dropped notices for it, the page reads again.
//!
//! The triggers send those notifications only while some replica says it has pages open
//! (`presence.rs`), so [`Live`] also counts the open pages.

use lockstep_domain::{BuildId, PipelineId};
use lockstep_storage_pg::Ids;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

pub(crate) mod presence;

/// Notices kept for pages that have not read them yet; a page further behind reads again.
const BACKLOG: usize = 1024;

/// One change, as a page filters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Builds of these pipelines were inserted or changed status.
    Pipelines(Arc<[PipelineId]>),
    /// The logs of these builds grew.
    Logs(Arc<[BuildId]>),
    /// Anything may have changed unannounced: every page reads again.
    Everything,
}

impl Change {
    /// Whether a page showing pipeline `id` must read again.
    pub(crate) fn concerns_pipeline(&self, id: PipelineId) -> bool {
        match self {
            Self::Pipelines(ids) => ids.contains(&id),
            Self::Logs(_) => false,
            Self::Everything => true,
        }
    }

    /// Whether a page showing any pipeline at all (a list, the queue) must read again.
    pub(crate) fn concerns_pipelines(&self) -> bool {
        !matches!(self, Self::Logs(_))
    }

    /// Whether a page following the log of build `id` must read on.
    pub(crate) fn concerns_log(&self, id: BuildId) -> bool {
        match self {
            Self::Logs(ids) => ids.contains(&id),
            Self::Pipelines(_) => false,
            Self::Everything => true,
        }
    }
}

/// The live pages of this process.
#[derive(Debug)]
pub(crate) struct Live {
    sender: broadcast::Sender<Change>,
    /// How many pages are open: one per [`Subscription`] alive.
    open: Arc<watch::Sender<usize>>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(BACKLOG),
            open: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Live {
    /// Starts listening: changes announced from now on are kept for [`Subscription::next`].
    pub(crate) fn subscribe(&self) -> Subscription {
        self.open.send_modify(|open| *open += 1);
        Subscription {
            receiver: self.sender.subscribe(),
            open: Arc::clone(&self.open),
        }
    }

    /// The number of open pages, as it changes.
    pub(crate) fn open_pages(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }

    /// A notification on the pipelines channel arrived.
    pub(crate) fn pipelines(&self, ids: Ids<PipelineId>) {
        self.send(match ids {
            Ids::Listed(ids) => Change::Pipelines(ids.into()),
            Ids::TooMany => Change::Everything,
        });
    }

    /// A notification on the logs channel arrived.
    pub(crate) fn logs(&self, ids: Ids<BuildId>) {
        self.send(match ids {
            Ids::Listed(ids) => Change::Logs(ids.into()),
            Ids::TooMany => Change::Everything,
        });
    }

    /// Notices may have been lost: every page reads again.
    pub(crate) fn look_again(&self) {
        self.send(Change::Everything);
    }

    fn send(&self, change: Change) {
        // No page open is no error: nobody needed telling.
        let _ = self.sender.send(change);
    }
}

/// One page's view of the changes.
#[derive(Debug)]
pub(crate) struct Subscription {
    receiver: broadcast::Receiver<Change>,
    open: Arc<watch::Sender<usize>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.open.send_modify(|open| *open = open.saturating_sub(1));
    }
}

impl Subscription {
    /// The next change; [`Change::Everything`] when this page fell behind and missed some.
    /// `None` once the process no longer announces changes.
    pub(crate) async fn next(&mut self) -> Option<Change> {
        match self.receiver.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Everything),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Waits for the next change that `concerns` says matters to this page.
    pub(crate) async fn next_that(&mut self, concerns: impl Fn(&Change) -> bool) -> Option<Change> {
        loop {
            let change = self.next().await?;
            if concerns(&change) {
                return Some(change);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Live};
    use lockstep_domain::{BuildId, PipelineId};
    use lockstep_storage_pg::Ids;

    #[tokio::test]
    async fn a_page_hears_only_the_changes_that_concern_it() {
        let live = Live::default();
        let mut page = live.subscribe();
        live.pipelines(Ids::Listed(vec![PipelineId(1)]));
        live.logs(Ids::Listed(vec![BuildId(7)]));
        live.pipelines(Ids::Listed(vec![PipelineId(2), PipelineId(3)]));
        page.next_that(|c| c.concerns_pipeline(PipelineId(3)))
            .await
            .expect("open");
        live.logs(Ids::TooMany);
        assert_eq!(page.next().await, Some(Change::Everything));
    }

    #[tokio::test]
    async fn a_page_that_fell_behind_reads_everything_again() {
        let live = Live::default();
        let mut page = live.subscribe();
        for id in 0..=super::BACKLOG {
            live.logs(Ids::Listed(vec![BuildId(
                i64::try_from(id).expect("small"),
            )]));
        }
        assert_eq!(page.next().await, Some(Change::Everything));
    }

    #[test]
    fn open_pages_are_counted_while_subscribed() {
        let live = Live::default();
        let pages = live.open_pages();
        let first = live.subscribe();
        let second = live.subscribe();
        assert_eq!(*pages.borrow(), 2);
        drop(first);
        assert_eq!(*pages.borrow(), 1);
        drop(second);
        assert_eq!(*pages.borrow(), 0);
    }

    #[test]
    fn log_changes_never_concern_pipeline_pages() {
        let logs = Change::Logs(vec![BuildId(1)].into());
        assert!(!logs.concerns_pipeline(PipelineId(1)));
        assert!(!logs.concerns_pipelines());
        assert!(logs.concerns_log(BuildId(1)));
        assert!(!logs.concerns_log(BuildId(2)));
        assert!(Change::Everything.concerns_log(BuildId(2)));
    }
}
