//! The runner protocol, client side: request a job, heartbeat, append log chunks, finish.
//! Every call maps the server's answer onto [`CallError`], which says what the caller can do.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A build handed to this runner.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: i64,
    pub(crate) pipeline_id: i64,
    pub(crate) name: String,
    /// Absent from older servers, as is `after_script`.
    #[serde(default)]
    pub(crate) before_script: Vec<String>,
    pub(crate) script: Vec<String>,
    #[serde(default)]
    pub(crate) after_script: Vec<String>,
    pub(crate) variables: BTreeMap<String, String>,
    pub(crate) timeout_seconds: u64,
    pub(crate) lease_seconds: u64,
    /// The most log the server keeps (absent from older servers).
    #[serde(default)]
    pub(crate) log_limit_bytes: Option<u64>,
    /// Archives to unpack into the build directory before the script (servers before
    /// artifacts send none of these).
    #[serde(default)]
    pub(crate) fetch: Vec<crate::archives::Fetch>,
    #[serde(default)]
    pub(crate) artifacts: Option<crate::archives::ArtifactsSpec>,
    #[serde(default)]
    pub(crate) caches: Vec<crate::archives::CacheSpec>,
}

/// What the server says about a running build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    Running,
    /// Someone canceled the build: stop it and finish it `canceled`.
    Canceling,
}

/// A watched build as the server sees it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Watched {
    pub(crate) id: i64,
    pub(crate) status: Option<String>,
    /// `false`: the runner no longer holds it.
    pub(crate) held: bool,
}

/// How a build ended, as reported to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    pub(crate) result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure_reason: Option<&'static str>,
    /// What the log should hold, for the server to check against what it stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log: Option<LogAccount>,
}

/// A log's length and SHA-256 (hex), as the worker produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct LogAccount {
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The server is unreachable or answered 5xx: try again later.
    #[error("server unavailable: {0}")]
    Unavailable(String),
    /// 401: the token was refused; nothing will work until the runner is registered again.
    #[error("the server refused the runner token")]
    Unauthorized,
    /// 410: the lease on the build ended; drop it.
    #[error("the lease on the build is lost")]
    Gone,
    /// 416: the log ends elsewhere than where the chunk started.
    #[error("the log ends at byte {0}")]
    Offset(u64),
    /// Any other refusal (403, 404, 409, 4xx): retrying will not help.
    #[error("refused with {status}: {body}")]
    Refused { status: u16, body: String },
}

/// A client for one runner token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// How long an ordinary call may take before it counts as a network failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one archive upload or download may take.
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl Client {
    pub(crate) fn new(base: &str, token: &str) -> Result<Self, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|error| CallError::Unavailable(error.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    fn post(&self, path: &str, timeout: Duration) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout)
    }

    /// Waits up to `wait_seconds` for builds, and takes up to `max_jobs` of them in one call;
    /// empty when none came.
    pub(crate) async fn request_jobs(
        &self,
        max_jobs: usize,
        wait_seconds: u32,
    ) -> Result<Vec<Job>, CallError> {
        #[derive(Deserialize)]
        struct Jobs {
            jobs: Vec<Job>,
        }
        let timeout = Duration::from_secs(u64::from(wait_seconds)) + CALL_TIMEOUT;
        let response = send(
            self.post("/jobs/batch/request", timeout)
                .json(&serde_json::json!({ "max_jobs": max_jobs, "wait_seconds": wait_seconds })),
        )
        .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let answer = response
            .json::<Jobs>()
            .await
            .map_err(|error| CallError::Unavailable(format!("unreadable jobs: {error}")))?;
        Ok(answer.jobs)
    }

    /// Waits up to `wait_seconds` for one of `builds` to be asked to stop or lost; answers with
    /// each as it stands.
    pub(crate) async fn watch(
        &self,
        builds: &[i64],
        wait_seconds: u32,
    ) -> Result<Vec<Watched>, CallError> {
        #[derive(Deserialize)]
        struct Answer {
            builds: Vec<Watched>,
        }
        let timeout = Duration::from_secs(u64::from(wait_seconds)) + CALL_TIMEOUT;
        let response = send(
            self.post("/jobs/watch", timeout)
                .json(&serde_json::json!({ "ids": builds, "wait_seconds": wait_seconds })),
        )
        .await?;
        let answer = response
            .json::<Answer>()
            .await
            .map_err(|error| CallError::Unavailable(format!("unreadable watch: {error}")))?;
        Ok(answer.builds)
    }

    pub(crate) async fn heartbeat(&self, build: i64) -> Result<Beat, CallError> {
        #[derive(Deserialize)]
        struct Answer {
            status: String,
        }
        let response = send(self.post(&format!("/jobs/{build}/heartbeat"), CALL_TIMEOUT)).await?;
        let answer = response
            .json::<Answer>()
            .await
            .map_err(|error| CallError::Unavailable(format!("unreadable heartbeat: {error}")))?;
        Ok(if answer.status == "canceling" {
            Beat::Canceling
        } else {
            Beat::Running
        })
    }

    /// Appends `data` at `offset`; returns where the log ends now.
    pub(crate) async fn append_log(
        &self,
        build: i64,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, CallError> {
        #[derive(Deserialize)]
        struct Answer {
            offset: u64,
        }
        let request = self
            .post(&format!("/jobs/{build}/log?offset={offset}"), CALL_TIMEOUT)
            .header("content-type", "application/octet-stream")
            .body(data);
        let answer = send(request)
            .await?
            .json::<Answer>()
            .await
            .map_err(|error| CallError::Unavailable(format!("unreadable log answer: {error}")))?;
        Ok(answer.offset)
    }

    /// Uploads an archive file with PUT to `path` (under /api/v1).
    pub(crate) async fn upload(
        &self,
        path: &str,
        file: &std::path::Path,
    ) -> Result<serde_json::Value, CallError> {
        let source = tokio::fs::File::open(file)
            .await
            .map_err(|error| CallError::Unavailable(format!("cannot read the archive: {error}")))?;
        let length = source
            .metadata()
            .await
            .map_err(|error| CallError::Unavailable(error.to_string()))?
            .len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(source));
        let request = self
            .http
            .put(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/zip")
            .header("content-length", length)
            .timeout(ARCHIVE_TIMEOUT)
            .body(body);
        send(request)
            .await?
            .json()
            .await
            .map_err(|error| CallError::Unavailable(format!("unreadable upload answer: {error}")))
    }

    /// Downloads `path` (under /api/v1) into a file; `Ok(false)` when the server has none (404).
    pub(crate) async fn download(
        &self,
        path: &str,
        file: &std::path::Path,
    ) -> Result<bool, CallError> {
        use futures_util::StreamExt as _;
        use tokio::io::AsyncWriteExt as _;
        let request = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(ARCHIVE_TIMEOUT);
        let response = match send(request).await {
            Ok(response) => response,
            Err(CallError::Refused { status: 404, .. }) => return Ok(false),
            Err(other) => return Err(other),
        };
        let write = |error: std::io::Error| {
            CallError::Unavailable(format!("cannot write the archive: {error}"))
        };
        let mut target = tokio::fs::File::create(file).await.map_err(write)?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| CallError::Unavailable(error.to_string()))?;
            target.write_all(&chunk).await.map_err(write)?;
        }
        target.flush().await.map_err(write)?;
        Ok(true)
    }

    pub(crate) async fn finish(&self, build: i64, report: &Report) -> Result<(), CallError> {
        send(
            self.post(&format!("/jobs/{build}/finish"), CALL_TIMEOUT)
                .json(report),
        )
        .await?;
        Ok(())
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
    let response = request
        .send()
        .await
        .map_err(|error| CallError::Unavailable(error.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(match code {
        401 => CallError::Unauthorized,
        410 => CallError::Gone,
        416 => offset_of(&body).map_or_else(
            || CallError::Refused {
                status: code,
                body: body.clone(),
            },
            CallError::Offset,
        ),
        // 429 and 5xx pass; anything else is a refusal that retrying cannot fix.
        429 | 500..=599 => CallError::Unavailable(format!("{status}: {body}")),
        _ => CallError::Refused { status: code, body },
    })
}

/// The log's end, from a 416 answer's `{"error": {"offset": N}}`.
fn offset_of(body: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["error"]["offset"].as_u64()
}

#[cfg(test)]
mod tests {
    use super::offset_of;

    #[test]
    fn the_log_end_is_read_from_a_416_body() {
        assert_eq!(
            offset_of(r#"{"error":{"code":"log_offset","message":"m","offset":42}}"#),
            Some(42)
        );
        assert_eq!(offset_of("not json"), None);
    }
}
