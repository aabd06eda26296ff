//! The live view's state machine: from the previous snapshot of a pipeline and the new one, which
//! jobs changed status, which just failed, and whether the pipeline is over. Pure, so it is
//! tested without a server; `view` draws what it says.

use crate::api::{Build, Pipeline, Status};
use crate::exit::Exit;

/// A pipeline's jobs grouped by stage, stages in the order they first appear (the order they
/// run), jobs in definition order. Each job is its latest attempt.
pub(crate) fn stages(pipeline: &Pipeline) -> Vec<(&str, Vec<&Build>)> {
    let mut stages: Vec<(&str, Vec<&Build>)> = Vec::new();
    for build in &pipeline.builds {
        let index = stages
            .iter()
            .position(|(stage, _)| *stage == build.stage)
            .unwrap_or_else(|| {
                stages.push((&build.stage, Vec::new()));
                stages.len() - 1
            });
        let jobs = &mut stages[index].1;
        // Builds come in id order, so a later attempt of a job replaces the earlier one.
        match jobs.iter_mut().find(|job| job.name == build.name) {
            Some(job) => *job = build,
            None => jobs.push(build),
        }
    }
    stages
}

/// A job whose latest attempt has a status it did not have in the previous snapshot (or that
/// is new: the first snapshot, or a retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) build: i64,
    pub(crate) stage: String,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) status: Status,
}

impl Change {
    /// The line a log file or a pipe gets: `12:00:01 build/compile running`.
    pub(crate) fn line(&self, time: &str) -> String {
        let attempt = if self.attempt > 1 {
            format!(" (attempt {})", self.attempt)
        } else {
            String::new()
        };
        format!(
            "{time} {}/{} {}{attempt}",
            self.stage, self.name, self.status
        )
    }
}

/// How a pipeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    Canceled,
    /// Nothing ran (every job was skipped); nothing failed either.
    Skipped,
}

impl Outcome {
    /// The outcome of a pipeline in `status`; `None` while it can still change.
    pub(crate) fn of(status: &Status) -> Option<Self> {
        match status {
            Status::Success => Some(Self::Succeeded),
            Status::Failed => Some(Self::Failed),
            Status::Canceled => Some(Self::Canceled),
            Status::Skipped => Some(Self::Skipped),
            _ => None,
        }
    }

    pub(crate) fn exit(self) -> Exit {
        match self {
            Self::Succeeded | Self::Skipped => Exit::Success,
            Self::Failed => Exit::Failed,
            Self::Canceled => Exit::Canceled,
        }
    }
}

/// What one new snapshot means.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// In stage order, then job order.
    pub(crate) changes: Vec<Change>,
    /// Builds that just failed: their log tails are worth showing.
    pub(crate) failed: Vec<i64>,
    /// Set once the pipeline is over.
    pub(crate) outcome: Option<Outcome>,
}

/// Compares `next` with `previous` (`None` for the first snapshot).
pub(crate) fn step(previous: Option<&Pipeline>, next: &Pipeline) -> Step {
    let before =
        |id: i64| previous.and_then(|p| p.builds.iter().find(|b| b.id == id).map(|b| &b.status));
    let mut step = Step {
        outcome: Outcome::of(&next.status),
        ..Step::default()
    };
    for (_, jobs) in stages(next) {
        for build in jobs {
            if before(build.id) == Some(&build.status) {
                continue;
            }
            if build.status == Status::Failed {
                step.failed.push(build.id);
            }
            step.changes.push(Change {
                build: build.id,
                stage: build.stage.clone(),
                name: build.name.clone(),
                attempt: build.attempt,
                status: build.status.clone(),
            });
        }
    }
    step
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A pipeline from `(id, stage, name, status)` rows, as the server would send it.
    pub(crate) fn pipeline(status: &str, builds: &[(i64, &str, &str, &str)]) -> Pipeline {
        let builds: Vec<_> = builds
            .iter()
            .map(|(id, stage, name, status)| {
                json!({
                    "id": id, "name": name, "stage": stage, "status": status,
                    "attempt": 1, "allow_failure": false,
                    "started_at": null, "finished_at": null,
                    "failure_reason": null, "exit_code": null,
                })
            })
            .collect();
        serde_json::from_value(json!({
            "id": 7, "ref": "main", "sha": null, "status": status,
            "created_at": "2026-01-01T12:00:00Z", "finished_at": null,
            "builds": builds,
        }))
        .expect("a pipeline")
    }

    fn lines(step: &Step) -> Vec<String> {
        step.changes.iter().map(|c| c.line("12:00:01")).collect()
    }

    #[test]
    fn the_first_snapshot_shows_every_job_in_stage_order() {
        let first = pipeline(
            "pending",
            &[
                (1, "build", "compile", "pending"),
                (2, "test", "unit", "created"),
                (3, "build", "docs", "pending"),
                (4, "deploy", "ship", "created"),
            ],
        );
        assert_eq!(
            lines(&step(None, &first)),
            [
                "12:00:01 build/compile pending",
                "12:00:01 build/docs pending",
                "12:00:01 test/unit created",
                "12:00:01 deploy/ship created",
            ]
        );
    }

    #[test]
    fn only_jobs_whose_status_changed_make_lines() {
        let before = pipeline(
            "running",
            &[
                (1, "build", "compile", "running"),
                (2, "test", "unit", "created"),
            ],
        );
        let after = pipeline(
            "running",
            &[
                (1, "build", "compile", "success"),
                (2, "test", "unit", "created"),
            ],
        );
        let step = step(Some(&before), &after);
        assert_eq!(lines(&step), ["12:00:01 build/compile success"]);
        assert_eq!(step.outcome, None);
        assert!(step.failed.is_empty());
    }

    #[test]
    fn a_failure_is_reported_once_with_its_build() {
        let before = pipeline("running", &[(1, "test", "unit", "running")]);
        let after = pipeline("failed", &[(1, "test", "unit", "failed")]);
        let first = step(Some(&before), &after);
        assert_eq!(first.failed, [1]);
        assert_eq!(first.outcome, Some(Outcome::Failed));
        let again = step(Some(&after), &after);
        assert!(again.failed.is_empty() && again.changes.is_empty());
    }

    #[test]
    fn a_retry_replaces_the_job_row_and_says_which_attempt() {
        let before = pipeline("running", &[(1, "test", "unit", "failed")]);
        let mut after = pipeline(
            "running",
            &[
                (1, "test", "unit", "failed"),
                (5, "test", "unit", "pending"),
            ],
        );
        after.builds[1].attempt = 2;
        assert_eq!(stages(&after)[0].1.len(), 1);
        assert_eq!(
            lines(&step(Some(&before), &after)),
            ["12:00:01 test/unit pending (attempt 2)"]
        );
    }

    #[test]
    fn the_final_status_gives_the_exit_code() {
        let check = |status: &str, exit: Option<Exit>| {
            let outcome = step(None, &pipeline(status, &[])).outcome;
            assert_eq!(outcome.map(Outcome::exit), exit, "{status}");
        };
        check("success", Some(Exit::Success));
        check("skipped", Some(Exit::Success));
        check("failed", Some(Exit::Failed));
        check("canceled", Some(Exit::Canceled));
        check("canceling", None);
        check("running", None);
        check("pending", None);
        check("created", None);
    }
}
