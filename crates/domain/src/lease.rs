//! Whether a runner holds a build: the one rule behind heartbeats, log appends and reports.
//!
//! A runner holds a build while the build's row names it and the build is under a lease
//! (`running`, or `canceling` until the runner confirms). Once the build ends, heartbeats and log
//! appends are refused as a lost lease, so the runner stops and drops the build. A report of how
//! the build ended is accepted after the end too, so that a runner can repeat one it is unsure
//! arrived, unless the build ended without the runner: the reaper failed it as `runner_lost`.

use crate::ids::{BuildId, RunnerId};
use crate::plan::{FailureReason, TransitionError};
use crate::status::BuildStatus;

/// Where a runner stands with a build it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// The build is under this runner's lease.
    Holds,
    /// The build was this runner's and has ended.
    Ended,
    /// Another runner holds the build, or none ever did.
    NotHolder,
}

impl Holding {
    fn of(holder: Option<RunnerId>, status: BuildStatus, runner: RunnerId) -> Self {
        if holder != Some(runner) {
            Self::NotHolder
        } else if status.holds_lease() {
            Self::Holds
        } else {
            Self::Ended
        }
    }
}

/// Whether `runner` may work on `build` (heartbeat it, append to its log), given the runner its
/// row names (`holder`) and its `status`: only while it holds it. Another runner's build is
/// [`TransitionError::NotHolder`]; its own build that has ended is [`TransitionError::LeaseLost`].
pub fn check_holder(
    build: BuildId,
    holder: Option<RunnerId>,
    status: BuildStatus,
    runner: RunnerId,
) -> Result<(), TransitionError> {
    match Holding::of(holder, status, runner) {
        Holding::Holds => Ok(()),
        Holding::NotHolder => Err(TransitionError::NotHolder { build, runner }),
        Holding::Ended => Err(TransitionError::LeaseLost { build, status }),
    }
}

/// Whether `runner` may report how `build` ended. While it holds the build, and after the build
/// ended by a report (the state machine then takes a repeat as a no-op and refuses a different
/// result), but not once the build ended without it: `failure_reason` is then `runner_lost` (on a
/// failed build, or on one the reaper canceled), and the report is late.
pub(crate) fn check_reporter(
    build: BuildId,
    holder: Option<RunnerId>,
    status: BuildStatus,
    failure_reason: Option<FailureReason>,
    runner: RunnerId,
) -> Result<(), TransitionError> {
    match Holding::of(holder, status, runner) {
        Holding::NotHolder => Err(TransitionError::NotHolder { build, runner }),
        Holding::Ended if failure_reason == Some(FailureReason::RunnerLost) => {
            Err(TransitionError::LeaseLost { build, status })
        }
        Holding::Holds | Holding::Ended => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transition::{BuildEvent, next};
    use BuildStatus as S;

    const BUILD: BuildId = BuildId(7);
    const RUNNER: RunnerId = RunnerId(1);
    const OTHER: RunnerId = RunnerId(2);

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Ok,
        NotHolder,
        LeaseLost,
    }

    fn answer(result: Result<(), TransitionError>) -> Answer {
        match result {
            Ok(()) => Answer::Ok,
            Err(TransitionError::NotHolder { build, runner }) => {
                assert_eq!((build, runner), (BUILD, RUNNER));
                Answer::NotHolder
            }
            Err(TransitionError::LeaseLost { build, .. }) => {
                assert_eq!(build, BUILD);
                Answer::LeaseLost
            }
            Err(other) => panic!("unexpected refusal {other}"),
        }
    }

    /// (holder, status, failure reason) -> (heartbeat or log, report).
    #[test]
    fn who_may_heartbeat_append_and_report() {
        use Answer::{LeaseLost, NotHolder, Ok};
        let lost = Some(FailureReason::RunnerLost);
        let script = Some(FailureReason::ScriptFailure);
        let table = [
            (Some(RUNNER), S::Running, None, Ok, Ok),
            (Some(RUNNER), S::Canceling, None, Ok, Ok),
            (Some(RUNNER), S::Success, None, LeaseLost, Ok),
            (Some(RUNNER), S::Failed, script, LeaseLost, Ok),
            (Some(RUNNER), S::Canceled, None, LeaseLost, Ok),
            // The reaper failed it: a report now is late.
            (Some(RUNNER), S::Failed, lost, LeaseLost, LeaseLost),
            // The reaper canceled it, its runner never having confirmed: late too.
            (Some(RUNNER), S::Canceled, lost, LeaseLost, LeaseLost),
            (Some(OTHER), S::Running, None, NotHolder, NotHolder),
            (Some(OTHER), S::Failed, lost, NotHolder, NotHolder),
            (None, S::Pending, None, NotHolder, NotHolder),
            (None, S::Created, None, NotHolder, NotHolder),
        ];
        for (holder, status, reason, work, report) in table {
            let row = format!("{holder:?} {status} {reason:?}");
            assert_eq!(
                answer(check_holder(BUILD, holder, status, RUNNER)),
                work,
                "{row}"
            );
            assert_eq!(
                answer(check_reporter(BUILD, holder, status, reason, RUNNER)),
                report,
                "{row}"
            );
        }
    }

    /// The state machine accepts a heartbeat exactly in the statuses that hold a lease, so the
    /// two cannot disagree on when a runner holds its build.
    #[test]
    fn a_heartbeat_is_legal_exactly_under_a_lease() {
        for &status in S::ALL {
            assert_eq!(
                next(status, BuildEvent::Heartbeat).is_ok(),
                status.holds_lease(),
                "{status}"
            );
        }
    }
}
