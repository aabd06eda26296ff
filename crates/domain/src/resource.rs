//! Resource groups: a project's named limit on how many of its builds may run at once (one
//! deploy at a time per environment, by default), and the order in which waiting builds get a
//! slot.
//!
//! A build of a group holds a slot from the moment it becomes pending until it is terminal
//! ([`BuildStatus::holds_slot`]). A build whose needs let it run waits in
//! `waiting_for_resource` until [`grants`] gives it a slot. The group's [`ProcessMode`] sets the
//! line: which builds stand in it and in what order. A build only gets a slot when every build
//! ahead of it in line has one, so no mode lets a later build jump the line.
//!
//! Keeping a place for a build not ready yet has one cost, as in GitLab: a pipeline whose jobs
//! sit in two groups, one `oldest_first` and one `newest_first`, with `needs` across them, can
//! have each group keep its slot for a build that waits on the other group, and wait forever.
//! Groups whose modes keep no place (`newest_ready_first`, `unordered`) cannot.

use crate::ids::{BuildId, PipelineId};
use crate::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The order in which a group's waiting builds get its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessMode {
    /// Deploys go out in the order their pipelines were made: the oldest pipeline's build goes
    /// first, and one not ready yet (still `created`) keeps its place in line, so a newer
    /// pipeline cannot deploy ahead of an older one that has yet to get there.
    #[default]
    OldestFirst,
    /// The newest pipeline's build goes first, also while it is not ready yet (GitLab's
    /// meaning). Under a stream of new pipelines the line may never reach a ready build: use
    /// `newest_ready_first` for "the newest deploy that can go now".
    NewestFirst,
    /// The newest pipeline's build among those ready now (waiting) goes first.
    NewestReadyFirst,
    /// Whichever build started waiting first goes first; pipelines play no part.
    Unordered,
}

impl ProcessMode {
    /// Every mode, in declaration order.
    pub const ALL: [Self; 4] = [
        Self::OldestFirst,
        Self::NewestFirst,
        Self::NewestReadyFirst,
        Self::Unordered,
    ];

    /// The name stored in the database and used over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OldestFirst => "oldest_first",
            Self::NewestFirst => "newest_first",
            Self::NewestReadyFirst => "newest_ready_first",
            Self::Unordered => "unordered",
        }
    }

    /// The inverse of [`ProcessMode::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }

    /// Whether a build not ready yet (`created`) stands in line.
    fn counts_upcoming(self) -> bool {
        matches!(self, Self::OldestFirst | Self::NewestFirst)
    }

    /// The members that stand in line, in the order they get a slot.
    fn line(self, members: &[Member]) -> Vec<&Member> {
        let mut line: Vec<&Member> = members
            .iter()
            .filter(|m| {
                m.status == BuildStatus::WaitingForResource
                    || (self.counts_upcoming() && m.status == BuildStatus::Created)
            })
            .collect();
        // Within a pipeline, its waiting builds stand before its upcoming ones: an upcoming
        // build may need one of them, and keeping a slot for it would then wait forever.
        let upcoming = |m: &Member| m.status == BuildStatus::Created;
        match self {
            Self::OldestFirst => line.sort_by_key(|m| (m.pipeline, upcoming(m), m.build)),
            Self::NewestFirst | Self::NewestReadyFirst => {
                line.sort_by_key(|m| (std::cmp::Reverse(m.pipeline), upcoming(m), m.build));
            }
            Self::Unordered => {
                line.sort_by_key(|m| (m.queued_at.is_none(), m.queued_at, m.build));
            }
        }
        line
    }
}

/// One build of a group, as the group sees it: the latest attempt of a job (older attempts are
/// terminal and play no part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub build: BuildId,
    pub pipeline: PipelineId,
    pub status: BuildStatus,
    /// When it started waiting (for `unordered`); `None` for a build that starts waiting in the
    /// transition deciding, which joins the line behind everyone already in it.
    pub queued_at: Option<DateTime<Utc>>,
}

/// The waiting builds that get a slot now, in line order: as many as the group has slots
/// neither held nor kept for a build ahead of them in line. Empty when nothing is to change, so
/// "`grants` is empty" is what "no slot is left unused while a build waits for it" means.
pub fn grants(limit: u32, mode: ProcessMode, members: &[Member]) -> Vec<BuildId> {
    let held = members.iter().filter(|m| m.status.holds_slot()).count();
    let free = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(held);
    mode.line(members)
        .into_iter()
        .take(free)
        .filter(|m| m.status == BuildStatus::WaitingForResource)
        .map(|m| m.build)
        .collect()
}

/// The waiting builds in the order they will get a slot.
pub fn waiting_line(mode: ProcessMode, members: &[Member]) -> Vec<BuildId> {
    mode.line(members)
        .into_iter()
        .filter(|m| m.status == BuildStatus::WaitingForResource)
        .map(|m| m.build)
        .collect()
}

#[cfg(test)]
mod tests;
