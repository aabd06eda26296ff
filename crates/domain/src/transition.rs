//! The build state machine: which events may move a build from which status, and where to.

use crate::status::BuildStatus;
use std::fmt;

/// Something that happens to one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildEvent {
    /// Its needs allow it to run: it waits for a runner.
    Enqueue,
    /// Its needs allow it to run (or a person played it), but it belongs to a resource group:
    /// it waits for one of the group's slots first.
    Queue,
    /// Its resource group gave it a slot: it waits for a runner.
    Grant,
    /// Its needs allow it, but `when: manual` parks it until a person acts.
    Park,
    /// It will not run: its needs do not allow it, or someone skipped it.
    Skip,
    /// A runner claimed it.
    Acquire,
    /// Its runner reported success.
    Succeed,
    /// Its runner reported failure.
    Fail,
    /// Its runner reported that it stopped the job because it was asked to.
    Abort,
    /// Someone asked for it to stop.
    Cancel,
    /// Its lease passed without a heartbeat, or it was asked to stop and its runner never
    /// confirmed within the grace period: the runner is presumed lost.
    LoseLease,
    /// Its runner never acknowledged it (no heartbeat, log or report within the short lease a
    /// claim starts with): it may never have received it, so the build waits for a runner
    /// again, its attempt not spent.
    Requeue,
    /// Its runner says it is still working on it.
    Heartbeat,
    /// A person starts a manual job.
    Play,
}

impl fmt::Display for BuildEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Enqueue => "enqueue",
            Self::Queue => "queue",
            Self::Grant => "grant",
            Self::Park => "park",
            Self::Skip => "skip",
            Self::Acquire => "acquire",
            Self::Succeed => "succeed",
            Self::Fail => "fail",
            Self::Abort => "abort",
            Self::Cancel => "cancel",
            Self::LoseLease => "lose lease",
            Self::Requeue => "requeue",
            Self::Heartbeat => "heartbeat",
            Self::Play => "play",
        };
        f.write_str(name)
    }
}

/// What an allowed event does to a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The build moves to this status.
    To(BuildStatus),
    /// The build is already where the event would take it: repeating a call is harmless.
    Unchanged,
}

/// An event that may not happen to a build in its current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a {from} build")]
pub struct IllegalTransition {
    pub from: BuildStatus,
    pub event: BuildEvent,
}

/// The transition table of a single build.
pub fn next(from: BuildStatus, event: BuildEvent) -> Result<Step, IllegalTransition> {
    use BuildEvent as E;
    use BuildStatus as S;
    let step = match (event, from) {
        (E::Enqueue, S::Created) => Step::To(S::Pending),
        (E::Queue, S::Created | S::Manual) => Step::To(S::WaitingForResource),
        (E::Grant, S::WaitingForResource) => Step::To(S::Pending),
        (E::Park, S::Created) => Step::To(S::Manual),
        (E::Play, S::Manual) => Step::To(S::Pending),
        (E::Skip, S::Created | S::WaitingForResource | S::Pending | S::Manual) => {
            Step::To(S::Skipped)
        }
        (E::Acquire, S::Pending) => Step::To(S::Running),
        (E::Requeue, S::Running) => Step::To(S::Pending),
        (E::Succeed, S::Running | S::Canceling) => Step::To(S::Success),
        (E::Fail | E::LoseLease, S::Running) => Step::To(S::Failed),
        (E::Fail, S::Canceling) => Step::To(S::Failed),
        (E::Abort | E::LoseLease, S::Canceling) | (E::Abort, S::Running) => Step::To(S::Canceled),
        (E::Cancel, S::Created | S::WaitingForResource | S::Pending | S::Manual) => {
            Step::To(S::Canceled)
        }
        (E::Cancel, S::Running) => Step::To(S::Canceling),
        (E::Skip, S::Skipped)
        | (E::Succeed, S::Success)
        | (E::Fail, S::Failed)
        | (E::Abort | E::Cancel, S::Canceled)
        | (E::Cancel, S::Canceling)
        | (E::Heartbeat, S::Running | S::Canceling)
        | (E::Queue | E::Play, S::WaitingForResource | S::Pending) => Step::Unchanged,
        _ => return Err(IllegalTransition { from, event }),
    };
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildEvent as E;
    use BuildStatus as S;

    const EVENTS: [BuildEvent; 14] = [
        E::Enqueue,
        E::Queue,
        E::Grant,
        E::Park,
        E::Skip,
        E::Acquire,
        E::Succeed,
        E::Fail,
        E::Abort,
        E::Cancel,
        E::LoseLease,
        E::Requeue,
        E::Heartbeat,
        E::Play,
    ];

    /// Every allowed move; anything not listed must be refused.
    const LEGAL: &[(BuildStatus, BuildEvent, Option<BuildStatus>)] = &[
        (S::Created, E::Enqueue, Some(S::Pending)),
        (S::Created, E::Park, Some(S::Manual)),
        (S::Created, E::Skip, Some(S::Skipped)),
        (S::Created, E::Cancel, Some(S::Canceled)),
        (S::Created, E::Queue, Some(S::WaitingForResource)),
        (S::WaitingForResource, E::Grant, Some(S::Pending)),
        (S::WaitingForResource, E::Skip, Some(S::Skipped)),
        (S::WaitingForResource, E::Cancel, Some(S::Canceled)),
        (S::WaitingForResource, E::Queue, None),
        (S::WaitingForResource, E::Play, None),
        (S::Pending, E::Queue, None),
        (S::Manual, E::Queue, Some(S::WaitingForResource)),
        (S::Pending, E::Skip, Some(S::Skipped)),
        (S::Pending, E::Acquire, Some(S::Running)),
        (S::Pending, E::Cancel, Some(S::Canceled)),
        (S::Pending, E::Play, None),
        (S::Manual, E::Skip, Some(S::Skipped)),
        (S::Manual, E::Cancel, Some(S::Canceled)),
        (S::Manual, E::Play, Some(S::Pending)),
        (S::Running, E::Succeed, Some(S::Success)),
        (S::Running, E::Fail, Some(S::Failed)),
        (S::Running, E::Abort, Some(S::Canceled)),
        (S::Running, E::Cancel, Some(S::Canceling)),
        (S::Running, E::LoseLease, Some(S::Failed)),
        (S::Running, E::Requeue, Some(S::Pending)),
        (S::Running, E::Heartbeat, None),
        (S::Canceling, E::Succeed, Some(S::Success)),
        (S::Canceling, E::Fail, Some(S::Failed)),
        (S::Canceling, E::Abort, Some(S::Canceled)),
        (S::Canceling, E::Cancel, None),
        (S::Canceling, E::LoseLease, Some(S::Canceled)),
        (S::Canceling, E::Heartbeat, None),
        (S::Success, E::Succeed, None),
        (S::Failed, E::Fail, None),
        (S::Canceled, E::Abort, None),
        (S::Canceled, E::Cancel, None),
        (S::Skipped, E::Skip, None),
    ];

    /// `None`: the move must be refused.
    fn check(from: BuildStatus, event: BuildEvent, expected: Option<Step>) {
        let actual = next(from, event);
        match expected {
            None => assert_eq!(
                actual,
                Err(IllegalTransition { from, event }),
                "{event} {from}"
            ),
            Some(step) => assert_eq!(actual, Ok(step), "{event} {from}"),
        }
    }

    #[test]
    fn transition_table_is_exactly_the_legal_moves() {
        for &from in S::ALL {
            for event in EVENTS {
                let expected = LEGAL
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| to.map_or(Step::Unchanged, Step::To));
                check(from, event, expected);
            }
        }
    }

    #[test]
    fn terminal_builds_never_move() {
        for &from in S::ALL.iter().filter(|s| s.is_terminal()) {
            for event in EVENTS {
                assert!(
                    !matches!(next(from, event), Ok(Step::To(_))),
                    "{event} moved a {from} build"
                );
            }
        }
    }
}
