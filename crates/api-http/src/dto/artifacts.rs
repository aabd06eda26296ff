//! The JSON of artifacts and caches: their parts of a job definition (schemas only: bodies are
//! read as the domain's types), what a runner is told to fetch, and the listing people read.

use chrono::{DateTime, Utc};
use lockstep_storage_pg::{ArtifactEntry, ArtifactView, CacheView, FetchArtifact};
use serde::Serialize;
use utoipa::ToSchema;

/// An entry of `needs`: a job name, or the job and whether to fetch its artifacts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum NeedSpec {
    Name(String),
    Job {
        job: String,
        /// `false`: wait for the job without fetching its artifacts (default `true`).
        artifacts: Option<bool>,
    },
}

/// `artifacts`: the files the runner keeps after the script, for later jobs and people.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArtifactsSpec {
    /// 1 to 100 globs relative to the build directory (`*` within a directory, `**` across
    /// them, a directory means everything under it); none may be absolute or leave the build
    /// directory with `..`. A glob matching nothing is a warning in the log, not a failure.
    #[schema(min_items = 1, max_items = 100)]
    paths: Vec<String>,
    /// Globs of files left out of what `paths` matched (at most 100).
    #[schema(max_items = 100)]
    exclude: Option<Vec<String>>,
    /// The downloaded archive's name without `.zip` (default `artifacts`); a name, as a job's.
    #[schema(min_length = 1, max_length = 255)]
    name: Option<String>,
    /// `on_success` (default), `on_failure` or `always`: when the runner uploads them, given
    /// how the script ended.
    when: Option<String>,
    /// `never`, or a duration such as `1 week` or `3 days 12h` (1 second to 100 years); absent:
    /// the server's `LOCKSTEP_ARTIFACTS_EXPIRE_IN` (30 days unless set).
    expire_in: Option<String>,
}

/// `cache`: one cache or a list of up to 4.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum CachesSpec {
    One(CacheSpec),
    /// At most 4.
    Many(Vec<CacheSpec>),
}

/// Files kept from one pipeline to the next under a key, per project.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CacheSpec {
    /// The cache's name in the project (default `default`): a text in which the runner expands
    /// variables (`$CI_COMMIT_REF_NAME`), or `{"files": [...], "prefix": ...}`, a hash of 1 or
    /// 2 files' contents after the prefix. Once expanded: 1 to 255 characters, not only dots.
    key: Option<CacheKeySpec>,
    /// 1 to 100 globs, as `artifacts.paths`.
    #[schema(min_items = 1, max_items = 100)]
    paths: Vec<String>,
    /// `pull-push` (default), `pull` (download only) or `push` (upload only).
    policy: Option<String>,
    /// `on_success` (default), `on_failure` or `always`: when the runner uploads it.
    when: Option<String>,
}

/// A cache's key: a text, or the files whose contents name it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "a schema for the OpenAPI document: bodies are read as the domain's JobDefinition"
)]
pub(crate) enum CacheKeySpec {
    Text(String),
    Files {
        #[schema(min_items = 1, max_items = 2)]
        files: Vec<String>,
        prefix: Option<String>,
    },
}

/// A dependency's archive the runner fetches before the script, from
/// `GET /api/v1/jobs/{id}/artifacts/{build_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Fetch {
    build_id: i64,
    /// The dependency's job name.
    job: String,
    size: u64,
    /// Hex SHA-256 of the archive.
    sha256: String,
}

impl From<FetchArtifact> for Fetch {
    fn from(fetch: FetchArtifact) -> Self {
        Self {
            build_id: fetch.build_id,
            job: fetch.job,
            size: fetch.size,
            sha256: fetch.sha256,
        }
    }
}

/// One entry of an archive.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Entry {
    path: String,
    /// `file`, `directory` or `symlink`.
    kind: String,
    /// Bytes of a file (0 for the others).
    size: u64,
    /// Where a symlink points.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

impl From<ArtifactEntry> for Entry {
    fn from(entry: ArtifactEntry) -> Self {
        Self {
            path: entry.path,
            kind: entry.kind,
            size: entry.size,
            target: entry.target,
        }
    }
}

/// A build's artifacts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BuildArtifacts {
    build_id: i64,
    pipeline_id: i64,
    job: String,
    /// The name the archive downloads as.
    file_name: String,
    /// The archive's bytes.
    size: u64,
    /// Hex SHA-256 of the archive.
    sha256: String,
    created_at: DateTime<Utc>,
    /// When the sweeper deletes them; null: never. The artifacts of each ref's latest successful
    /// pipeline stay past it while the project keeps them (`keep_latest_artifacts`).
    expires_at: Option<DateTime<Utc>>,
    /// Every entry, in the archive's order.
    entries: Vec<Entry>,
}

impl From<ArtifactView> for BuildArtifacts {
    fn from(view: ArtifactView) -> Self {
        Self {
            build_id: view.build_id.0,
            pipeline_id: view.pipeline_id.0,
            job: view.job_name,
            file_name: view.file_name,
            size: view.size,
            sha256: view.sha256,
            created_at: view.created_at,
            expires_at: view.expires_at,
            entries: view.entries.into_iter().map(Entry::from).collect(),
        }
    }
}

/// A project's cache, as an upload recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoredCache {
    key: String,
    size: u64,
    sha256: String,
    build_id: i64,
    updated_at: DateTime<Utc>,
}

impl From<CacheView> for StoredCache {
    fn from(view: CacheView) -> Self {
        Self {
            key: view.key,
            size: view.size,
            sha256: view.sha256,
            build_id: view.build_id.0,
            updated_at: view.updated_at,
        }
    }
}
