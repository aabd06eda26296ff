//! What `demo` prints while a pipeline runs: a line for each status that changed since the last
//! look, for the pipeline, each build and each deployment.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

/// Pipeline statuses after which nothing changes any more.
const TERMINAL: [&str; 4] = ["success", "failed", "canceled", "skipped"];

pub(crate) fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

/// One status as of one look at the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// `pipeline`, `build` or `deployment`.
    pub(crate) kind: &'static str,
    /// The pipeline's `#id`, a build's name (with `#attempt` past the first), an environment.
    pub(crate) label: String,
    pub(crate) status: String,
}

impl Change {
    /// `  2.1s  build      test     running`: aligned, so a run reads as a table.
    pub(crate) fn line(&self, elapsed: Duration) -> String {
        format!(
            "{:>6.1}s  {:<10} {:<8} {}",
            elapsed.as_secs_f64(),
            self.kind,
            self.label,
            self.status
        )
    }
}

/// The last status seen of everything in one pipeline.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    seen: HashMap<String, String>,
}

impl Tracker {
    /// What changed since the previous call, in the pipeline's order: the pipeline, then each
    /// build (in id order) followed by its deployment.
    pub(crate) fn changes(&mut self, pipeline: &Value) -> Vec<Change> {
        snapshot(pipeline)
            .into_iter()
            .filter_map(|(key, change)| {
                let previous = self.seen.insert(key, change.status.clone());
                (previous.as_ref() != Some(&change.status)).then_some(change)
            })
            .collect()
    }
}

/// Every status in `pipeline` (a `GET /api/v1/pipelines/{id}` answer), each with a stable key.
fn snapshot(pipeline: &Value) -> Vec<(String, Change)> {
    let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
    let mut all = vec![(
        "pipeline".to_owned(),
        Change {
            kind: "pipeline",
            label: format!("#{}", pipeline["id"]),
            status: text(&pipeline["status"]),
        },
    )];
    for build in pipeline["builds"].as_array().into_iter().flatten() {
        let id = &build["id"];
        let mut label = text(&build["name"]);
        if let Some(attempt) = build["attempt"].as_u64().filter(|attempt| *attempt > 1) {
            label = format!("{label}#{attempt}");
        }
        all.push((
            format!("build {id}"),
            Change {
                kind: "build",
                label,
                status: text(&build["status"]),
            },
        ));
        let deployment = &build["deployment"];
        if deployment.is_object() {
            all.push((
                format!("deployment {id}"),
                Change {
                    kind: "deployment",
                    label: text(&deployment["environment"]),
                    status: text(&deployment["status"]),
                },
            ));
        }
    }
    all
}

/// The id of the pipeline's deploying build (the last one, should a retry have made several).
pub(crate) fn deploy_build_id(pipeline: &Value) -> Option<i64> {
    pipeline["builds"]
        .as_array()?
        .iter()
        .rev()
        .find(|build| build["deployment"].is_object())
        .and_then(|build| build["id"].as_i64())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::{Tracker, deploy_build_id, is_terminal};

    fn pipeline(status: &str, builds: &[(&str, &str)], deployment: Option<&str>) -> Value {
        let builds: Vec<Value> = builds
            .iter()
            .enumerate()
            .map(|(index, (name, status))| {
                let deploys = *name == "deploy";
                json!({
                    "id": index + 10,
                    "name": name,
                    "status": status,
                    "attempt": 1,
                    "deployment": deployment
                        .filter(|_| deploys)
                        .map(|status| json!({"id": 1, "environment": "staging", "status": status})),
                })
            })
            .collect();
        json!({"id": 7, "status": status, "builds": builds})
    }

    fn lines(tracker: &mut Tracker, pipeline: &Value) -> Vec<String> {
        tracker
            .changes(pipeline)
            .iter()
            .map(|change| change.line(Duration::from_millis(2_140)))
            .collect()
    }

    #[test]
    fn the_first_look_reports_everything_then_only_what_changed() {
        let mut tracker = Tracker::default();
        let created = pipeline(
            "pending",
            &[("build", "pending"), ("deploy", "created")],
            Some("created"),
        );
        assert_eq!(
            lines(&mut tracker, &created),
            [
                "   2.1s  pipeline   #7       pending",
                "   2.1s  build      build    pending",
                "   2.1s  build      deploy   created",
                "   2.1s  deployment staging  created",
            ]
        );
        assert_eq!(lines(&mut tracker, &created), Vec::<String>::new());
        let deploying = pipeline(
            "running",
            &[("build", "success"), ("deploy", "running")],
            Some("running"),
        );
        assert_eq!(
            lines(&mut tracker, &deploying),
            [
                "   2.1s  pipeline   #7       running",
                "   2.1s  build      build    success",
                "   2.1s  build      deploy   running",
                "   2.1s  deployment staging  running",
            ]
        );
    }

    #[test]
    fn a_retried_build_is_its_own_line_with_its_attempt() {
        let mut tracker = Tracker::default();
        let mut retried = pipeline("running", &[("test", "failed")], None);
        retried["builds"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": 11, "name": "test", "status": "pending", "attempt": 2}));
        let changes = tracker.changes(&retried);
        assert_eq!(changes.last().unwrap().label, "test#2");
        assert_eq!(changes.len(), 3);
    }

    #[test]
    fn the_deploy_build_is_the_one_with_a_deployment() {
        let done = pipeline(
            "success",
            &[("build", "success"), ("deploy", "success")],
            Some("success"),
        );
        assert_eq!(deploy_build_id(&done), Some(11));
        assert_eq!(
            deploy_build_id(&pipeline("success", &[("build", "success")], None)),
            None
        );
    }

    #[test]
    fn only_finished_pipelines_are_terminal() {
        for status in ["success", "failed", "canceled", "skipped"] {
            assert!(is_terminal(status), "{status}");
        }
        for status in ["created", "pending", "running", "canceling", "manual"] {
            assert!(!is_terminal(status), "{status}");
        }
    }
}
