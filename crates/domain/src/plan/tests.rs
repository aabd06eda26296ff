//! Examples of what events do to pipelines, one named row per rule.

use super::*;
use crate::status::BuildStatus as S;

/// A report ends the build in the status `BuildResult::status` names, from any status the state
/// machine lets it end from, and a report that changes nothing found the build there already.
#[test]
fn a_report_ends_the_build_in_its_status() {
    let results = [
        BuildResult::Success,
        BuildResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(1),
        },
        BuildResult::Canceled,
    ];
    for result in results {
        for &from in S::ALL {
            match next(from, result.event()) {
                Ok(Step::To(to)) => assert_eq!(to, result.status(), "{from} {result:?}"),
                Ok(Step::Unchanged) => assert_eq!(from, result.status(), "{from} {result:?}"),
                Err(_) => {}
            }
        }
    }
}
