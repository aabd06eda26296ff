//! The server's resources as the CLI reads them (only the fields it shows), and one method per
//! endpoint it calls, each saying what a 404 there means.

use crate::client::{Client, ClientError, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::fmt;

/// A build's or a pipeline's status. The CLI keeps its own copy of the names rather than
/// depending on the domain crate: it speaks the wire format, and a status a newer server adds
/// shows as its name instead of failing the read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub(crate) enum Status {
    Created,
    WaitingForResource,
    Pending,
    Running,
    Success,
    Failed,
    Canceling,
    Canceled,
    Skipped,
    Manual,
    Other(String),
}

impl Status {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::WaitingForResource => "waiting_for_resource",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceling => "canceling",
            Self::Canceled => "canceled",
            Self::Skipped => "skipped",
            Self::Manual => "manual",
            Self::Other(name) => name,
        }
    }
}

impl From<String> for Status {
    fn from(name: String) -> Self {
        match name.as_str() {
            "created" => Self::Created,
            "waiting_for_resource" => Self::WaitingForResource,
            "pending" => Self::Pending,
            "running" => Self::Running,
            "success" => Self::Success,
            "failed" => Self::Failed,
            "canceling" => Self::Canceling,
            "canceled" => Self::Canceled,
            "skipped" => Self::Skipped,
            "manual" => Self::Manual,
            _ => Self::Other(name),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Project {
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// A pipeline; list answers leave `builds` out.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Pipeline {
    pub(crate) id: i64,
    #[serde(rename = "ref")]
    pub(crate) git_ref: String,
    pub(crate) sha: Option<String>,
    pub(crate) status: Status,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Every attempt of every job, in id order.
    #[serde(default)]
    pub(crate) builds: Vec<Build>,
}

/// One attempt of a job.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Build {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) stage: String,
    pub(crate) status: Status,
    pub(crate) attempt: u32,
    #[serde(default)]
    pub(crate) allow_failure: bool,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    pub(crate) failure_reason: Option<String>,
    pub(crate) exit_code: Option<i32>,
    #[serde(default)]
    pub(crate) waiting: Option<Waiting>,
}

/// Why a build that has not started waits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub(crate) enum Waiting {
    Needs {
        jobs: Vec<String>,
    },
    Manual,
    ResourceGroup {
        resource_group: String,
        position: u64,
    },
    NoRunner {
        tags: Vec<String>,
    },
    Queued {
        position: u64,
    },
    /// A reason a newer server gives that this CLI does not know.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Runner {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) online: bool,
    pub(crate) contacted_at: Option<DateTime<Utc>>,
    /// The builds it holds.
    pub(crate) builds: Vec<i64>,
}

/// A runner as registration answers it: with its token, shown this once.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RegisteredRunner {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) tags: Vec<String>,
    pub(crate) token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResourceGroup {
    pub(crate) name: String,
    pub(crate) process_mode: String,
    pub(crate) limit: u32,
    pub(crate) holders: Vec<i64>,
    pub(crate) waiting: Vec<i64>,
}

impl Client {
    pub(crate) fn projects(&self) -> Result<Json<Vec<Project>>, ClientError> {
        self.get("/projects", &[])
    }

    pub(crate) fn create_project(&self, name: &str) -> Result<Json<Project>, ClientError> {
        self.post("/projects", Some(&json!({ "name": name })))
    }

    /// Submits a pipeline file as it is: the server reads the YAML and answers with the
    /// pipeline, or 422 with each problem's line and column.
    pub(crate) fn submit_file(
        &self,
        project: i64,
        git_ref: &str,
        sha: Option<&str>,
        source: &[u8],
    ) -> Result<Json<Pipeline>, ClientError> {
        let mut query = vec![("ref", git_ref.to_owned())];
        if let Some(sha) = sha {
            query.push(("sha", sha.to_owned()));
        }
        self.post_bytes(
            &format!("/projects/{project}/pipelines"),
            &query,
            "application/yaml",
            source,
        )
        .map_err(|e| e.naming(|| format!("project {project}")))
    }

    pub(crate) fn pipeline(&self, id: i64) -> Result<Json<Pipeline>, ClientError> {
        self.get(&format!("/pipelines/{id}"), &[])
            .map_err(|e| e.naming(|| format!("pipeline {id}")))
    }

    pub(crate) fn pipelines(
        &self,
        project: i64,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Json<Vec<Pipeline>>, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(status) = status {
            query.push(("status", status.to_owned()));
        }
        self.get(&format!("/projects/{project}/pipelines"), &query)
            .map_err(|e| e.naming(|| format!("project {project}")))
    }

    pub(crate) fn cancel_pipeline(&self, id: i64) -> Result<Json<Pipeline>, ClientError> {
        self.post(&format!("/pipelines/{id}/cancel"), None)
            .map_err(|e| {
                e.naming(|| format!("pipeline {id}")).conflict(|status| {
                    format!("pipeline {id} already finished ({status}): there is nothing to cancel")
                })
            })
    }

    pub(crate) fn retry_pipeline(&self, id: i64) -> Result<Json<Pipeline>, ClientError> {
        self.post(&format!("/pipelines/{id}/retry"), None)
            .map_err(|e| e.naming(|| format!("pipeline {id}")))
    }

    pub(crate) fn cancel_build(&self, id: i64) -> Result<Json<Build>, ClientError> {
        self.post(&format!("/builds/{id}/cancel"), None)
            .map_err(|e| {
                e.naming(|| format!("build {id}")).conflict(|status| {
                    format!("build {id} already finished ({status}): there is nothing to cancel")
                })
            })
    }

    pub(crate) fn retry_build(&self, id: i64) -> Result<Json<Build>, ClientError> {
        self.post(&format!("/builds/{id}/retry"), None)
            .map_err(|e| e.naming(|| format!("build {id}")))
    }

    pub(crate) fn play_build(&self, id: i64) -> Result<Json<Build>, ClientError> {
        self.post(&format!("/builds/{id}/play"), None).map_err(|e| {
            e.naming(|| format!("build {id}")).conflict(|status| {
                format!("build {id} is {status}, not a manual job waiting to be played")
            })
        })
    }

    pub(crate) fn artifacts(&self, build: i64) -> Result<Json<Artifacts>, ClientError> {
        // The server's 404 says which: no such build, or a build without artifacts.
        self.get(&format!("/builds/{build}/artifacts"), &[])
    }

    pub(crate) fn runners(&self) -> Result<Json<Vec<Runner>>, ClientError> {
        self.get("/runners", &[])
    }

    pub(crate) fn register_runner(
        &self,
        name: &str,
        tags: &[String],
    ) -> Result<Json<RegisteredRunner>, ClientError> {
        self.post("/runners", Some(&json!({ "name": name, "tags": tags })))
    }

    pub(crate) fn resource_groups(
        &self,
        project: i64,
    ) -> Result<Json<Vec<ResourceGroup>>, ClientError> {
        self.get(&format!("/projects/{project}/resource_groups"), &[])
            .map_err(|e| e.naming(|| format!("project {project}")))
    }
}

/// A build's artifacts, as `GET /builds/{id}/artifacts` lists them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Artifacts {
    pub(crate) job: String,
    pub(crate) file_name: String,
    pub(crate) size: u64,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) entries: Vec<ArtifactEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ArtifactEntry {
    pub(crate) path: String,
    pub(crate) kind: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_and_reasons_still_read() {
        let build: Build = serde_json::from_value(json!({
            "id": 1, "name": "a", "stage": "test", "status": "paused", "attempt": 1,
            "started_at": null, "finished_at": null, "failure_reason": null, "exit_code": null,
            "waiting": {"reason": "moon_phase"}
        }))
        .expect("reads");
        assert_eq!(build.status, Status::Other("paused".to_owned()));
        assert_eq!(build.status.to_string(), "paused");
        assert_eq!(build.waiting, Some(Waiting::Other));
    }
}
