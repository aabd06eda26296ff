//! Build artifacts and caches as rows (`ci_job_artifacts`, `ci_caches`): one per archive kept
//! in the object store, with its size, digest and listing, never its bytes. Writes happen while
//! the runner holds the build, under the build's lock; reads and deletes take no lock at all,
//! since deleting an object and then its row is safe to repeat (several replicas sweep).

use crate::StorageError;
use crate::locking::{Locks, NewArtifactRow, NewCacheRow};
use crate::rows::parse;
use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Nullable, Text, Timestamptz};
use lockstep_domain::{
    Artifacts, BuildId, BuildStatus, Expiry, PipelineId, PipelineStatus, ProjectId, RunnerId,
    check_holder,
};
use serde::{Deserialize, Serialize};

/// The archive a runner fetches before its script: a dependency's artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchArtifact {
    pub build_id: i64,
    /// The dependency's job name.
    pub job: String,
    pub file_name: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
}

/// One entry of an archive, as listed to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    pub path: String,
    /// `file`, `directory` or `symlink`.
    pub kind: String,
    /// Bytes, for a file.
    pub size: u64,
    /// For a symlink: where it points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An archive just written to the object store, to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewArchive<'a> {
    /// For artifacts: the name the runner gave them (checked as a name by the caller).
    pub name: Option<&'a str>,
    pub object_key: &'a str,
    pub size: u64,
    pub sha256: &'a [u8; 32],
    pub entries: &'a [ArtifactEntry],
}

/// A build's artifacts as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactView {
    pub build_id: BuildId,
    pub pipeline_id: PipelineId,
    pub job_name: String,
    pub file_name: String,
    pub object_key: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
    pub entries: Vec<ArtifactEntry>,
    pub created_at: DateTime<Utc>,
    /// `None`: kept until deleted.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What recording an archive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub stored: T,
    /// The object of the row this one replaced (a retried upload, a cache rewritten): delete it
    /// once the new row has committed.
    pub replaced: Option<String>,
}

/// A project's cache under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheView {
    pub project_id: ProjectId,
    pub key: String,
    pub object_key: String,
    pub size: u64,
    pub sha256: String,
    pub build_id: BuildId,
    pub updated_at: DateTime<Utc>,
}

/// A build's facts an archive needs: who holds it, where it belongs, what it declared.
#[derive(Debug, QueryableByName)]
struct BuildFacts {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    runner_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    artifacts: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    dependencies: Vec<String>,
}

impl BuildFacts {
    fn load(conn: &mut PgConnection, build: BuildId) -> Result<Self, StorageError> {
        diesel::sql_query(include_str!("artifacts/build_facts.sql"))
            .bind::<BigInt, _>(build.0)
            .get_result(conn)
            .optional()?
            .ok_or(StorageError::NotFound {
                entity: "build",
                id: build.0,
            })
    }

    /// The domain's holder rule: the runner holds the build (running or canceling).
    fn check_held(&self, build: BuildId, runner: RunnerId) -> Result<(), StorageError> {
        let status: BuildStatus = parse("ci_builds.status", &self.status)?;
        check_holder(build, self.runner_id.map(RunnerId), status, runner)?;
        Ok(())
    }

    fn declared(&self) -> Result<Option<Artifacts>, StorageError> {
        self.artifacts
            .as_deref()
            .map(|text| {
                serde_json::from_str(text).map_err(|error| {
                    StorageError::corrupt(format!(
                        "ci_job_definitions.artifacts cannot be read: {error}"
                    ))
                })
            })
            .transpose()
    }
}

/// Records the archive the runner holding `build` uploaded, replacing one it uploaded before.
/// Its expiry comes from the job's `artifacts` (`default_expiry` for a job that gives none,
/// `None` meaning never), its name from the runner (`artifacts: name` with the job's variables
/// expanded) or else the job's `artifacts: name` as written.
pub(crate) fn store_artifact(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
    archive: &NewArchive<'_>,
    default_expiry: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Result<Stored<ArtifactView>, StorageError> {
    let (_, mut locks) = Locks::begin(conn)?.lock_builds([build])?;
    let facts = BuildFacts::load(locks.conn(), build)?;
    facts.check_held(build, runner)?;
    let declared = facts.declared()?.unwrap_or_default();
    let expires_at = match declared.expire_in.as_deref().map(Expiry::parse) {
        Some(Ok(Expiry::Never)) => None,
        Some(Ok(Expiry::Seconds(seconds))) => {
            Some(now + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)))
        }
        Some(Ok(Expiry::ServerDefault)) | None => default_expiry.map(|d| now + d),
        Some(Err(why)) => {
            return Err(StorageError::corrupt(format!(
                "ci_job_definitions.artifacts.expire_in: {why}"
            )));
        }
    };
    let name = archive
        .name
        .or(declared.name.as_deref())
        .unwrap_or("artifacts");
    let file_name = format!("{name}.zip");
    let entries = serde_json::to_string(archive.entries)
        .map_err(|error| StorageError::corrupt(format!("entries: {error}")))?;
    let row = NewArtifactRow {
        build_id: build.0,
        pipeline_id: facts.pipeline_id,
        job_name: &facts.name,
        file_name: &file_name,
        object_key: archive.object_key,
        size: count(archive.size)?,
        sha256: archive.sha256,
        entries: &entries,
        entry_count: i32::try_from(archive.entries.len()).unwrap_or(i32::MAX),
        created_at: now,
        expires_at,
    };
    let (replaced, _locks) = locks.put_artifact(&row)?;
    Ok(Stored {
        stored: ArtifactView {
            build_id: build,
            pipeline_id: PipelineId(facts.pipeline_id),
            job_name: facts.name,
            file_name,
            object_key: archive.object_key.to_owned(),
            size: archive.size,
            sha256: hex::encode(archive.sha256),
            entries: archive.entries.to_vec(),
            created_at: now,
            expires_at,
        },
        replaced: replaced.filter(|old| old != archive.object_key),
    })
}

/// Records the cache `key` the runner holding `build` uploaded for the build's project; the
/// last writer wins.
pub(crate) fn store_cache(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
    key: &str,
    archive: &NewArchive<'_>,
    now: DateTime<Utc>,
) -> Result<Stored<CacheView>, StorageError> {
    let (_, mut locks) = Locks::begin(conn)?.lock_builds([build])?;
    let facts = BuildFacts::load(locks.conn(), build)?;
    facts.check_held(build, runner)?;
    let row = NewCacheRow {
        project_id: facts.project_id,
        key,
        object_key: archive.object_key,
        size: count(archive.size)?,
        sha256: archive.sha256,
        build_id: build.0,
        updated_at: now,
    };
    let (replaced, _locks) = locks.put_cache(&row)?;
    Ok(Stored {
        stored: CacheView {
            project_id: ProjectId(facts.project_id),
            key: key.to_owned(),
            object_key: archive.object_key.to_owned(),
            size: archive.size,
            sha256: hex::encode(archive.sha256),
            build_id: build,
            updated_at: now,
        },
        replaced: replaced.filter(|old| old != archive.object_key),
    })
}

fn count(size: u64) -> Result<i64, StorageError> {
    i64::try_from(size).map_err(|_| StorageError::corrupt("an archive larger than 2^63 bytes"))
}

/// Checks that the runner holds `build`, read without a lock: the fetches before a script and
/// the uploads' early refusal (the upload transaction checks again under the lock).
pub fn check_runner_holds(
    conn: &mut PgConnection,
    build: BuildId,
    runner: RunnerId,
) -> Result<(), StorageError> {
    BuildFacts::load(conn, build)?.check_held(build, runner)
}

/// Whether a runner may fetch an archive, and the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetchable<T> {
    /// Not an archive its job may fetch.
    NotAllowed,
    /// Allowed, but there is none (never uploaded, expired or deleted).
    Missing,
    Found(T),
}

/// The archive the runner holding `job` may fetch from `from`: only the artifacts of the latest
/// attempt of a job it depends on (the ones its claim listed).
pub fn fetchable_artifact(
    conn: &mut PgConnection,
    job: BuildId,
    runner: RunnerId,
    from: BuildId,
) -> Result<Fetchable<ArtifactView>, StorageError> {
    let facts = BuildFacts::load(conn, job)?;
    facts.check_held(job, runner)?;
    let latest: Option<i64> = diesel::sql_query(include_str!("artifacts/latest_dependency.sql"))
        .bind::<BigInt, _>(facts.pipeline_id)
        .bind::<Array<Text>, _>(&facts.dependencies)
        .bind::<BigInt, _>(from.0)
        .get_result::<LatestBuild>(conn)
        .optional()?
        .map(|row| row.id);
    if latest.is_none() {
        return Ok(Fetchable::NotAllowed);
    }
    Ok(load_artifact(conn, from)?.map_or(Fetchable::Missing, Fetchable::Found))
}

#[derive(QueryableByName)]
struct LatestBuild {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The cache `key` of the project of the build the runner holds.
pub fn fetchable_cache(
    conn: &mut PgConnection,
    job: BuildId,
    runner: RunnerId,
    key: &str,
) -> Result<Option<CacheView>, StorageError> {
    let facts = BuildFacts::load(conn, job)?;
    facts.check_held(job, runner)?;
    load_cache(conn, ProjectId(facts.project_id), key)
}

#[derive(QueryableByName)]
struct ArtifactRow {
    #[diesel(sql_type = BigInt)]
    build_id: i64,
    #[diesel(sql_type = BigInt)]
    pipeline_id: i64,
    #[diesel(sql_type = Text)]
    job_name: String,
    #[diesel(sql_type = Text)]
    file_name: String,
    #[diesel(sql_type = Text)]
    object_key: String,
    #[diesel(sql_type = BigInt)]
    size_bytes: i64,
    #[diesel(sql_type = Bytea)]
    sha256: Vec<u8>,
    #[diesel(sql_type = Text)]
    entries: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

impl ArtifactRow {
    fn view(self) -> Result<ArtifactView, StorageError> {
        Ok(ArtifactView {
            build_id: BuildId(self.build_id),
            pipeline_id: PipelineId(self.pipeline_id),
            job_name: self.job_name,
            file_name: self.file_name,
            object_key: self.object_key,
            size: u64::try_from(self.size_bytes).unwrap_or_default(),
            sha256: hex::encode(self.sha256),
            entries: serde_json::from_str(&self.entries).map_err(|error| {
                StorageError::corrupt(format!("ci_job_artifacts.entries: {error}"))
            })?,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// A build's artifacts, if it kept any (and they were not deleted).
pub fn load_artifact(
    conn: &mut PgConnection,
    build: BuildId,
) -> Result<Option<ArtifactView>, StorageError> {
    diesel::sql_query(
        "SELECT build_id, pipeline_id, job_name, file_name, object_key, size_bytes, sha256, \
         entries::text AS entries, created_at, expires_at \
         FROM ci_job_artifacts WHERE build_id = $1",
    )
    .bind::<BigInt, _>(build.0)
    .get_result::<ArtifactRow>(conn)
    .optional()?
    .map(ArtifactRow::view)
    .transpose()
}

/// The artifacts of these builds that have any, for pages that list several builds.
pub fn artifacts_of(
    conn: &mut PgConnection,
    builds: &[BuildId],
) -> Result<Vec<ArtifactView>, StorageError> {
    let ids: Vec<i64> = builds.iter().map(|b| b.0).collect();
    diesel::sql_query(
        "SELECT build_id, pipeline_id, job_name, file_name, object_key, size_bytes, sha256, \
         '[]' AS entries, created_at, expires_at \
         FROM ci_job_artifacts WHERE build_id = ANY($1) ORDER BY build_id",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .load::<ArtifactRow>(conn)?
    .into_iter()
    .map(ArtifactRow::view)
    .collect()
}

#[derive(QueryableByName)]
struct CacheRow {
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = Text)]
    cache_key: String,
    #[diesel(sql_type = Text)]
    object_key: String,
    #[diesel(sql_type = BigInt)]
    size_bytes: i64,
    #[diesel(sql_type = Bytea)]
    sha256: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    build_id: i64,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

/// A project's cache under `key`.
pub fn load_cache(
    conn: &mut PgConnection,
    project: ProjectId,
    key: &str,
) -> Result<Option<CacheView>, StorageError> {
    let row = diesel::sql_query(
        "SELECT project_id, cache_key, object_key, size_bytes, sha256, build_id, updated_at \
         FROM ci_caches WHERE project_id = $1 AND cache_key = $2",
    )
    .bind::<BigInt, _>(project.0)
    .bind::<Text, _>(key)
    .get_result::<CacheRow>(conn)
    .optional()?;
    Ok(row.map(|row| CacheView {
        project_id: ProjectId(row.project_id),
        key: row.cache_key,
        object_key: row.object_key,
        size: u64::try_from(row.size_bytes).unwrap_or_default(),
        sha256: hex::encode(row.sha256),
        build_id: BuildId(row.build_id),
        updated_at: row.updated_at,
    }))
}

/// Deletes a build's artifacts row if it still names `object_key` (delete the object first: a
/// row without its object reads as gone, an object without a row would never be found again).
/// False when there was no such row (another replica got there first).
pub fn forget_artifact(
    conn: &mut PgConnection,
    build: BuildId,
    object_key: &str,
) -> Result<bool, StorageError> {
    let deleted =
        diesel::sql_query("DELETE FROM ci_job_artifacts WHERE build_id = $1 AND object_key = $2")
            .bind::<BigInt, _>(build.0)
            .bind::<Text, _>(object_key)
            .execute(conn)?;
    Ok(deleted > 0)
}

/// An archive whose time has come.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Expired {
    #[diesel(sql_type = BigInt)]
    pub build_id: i64,
    #[diesel(sql_type = Text)]
    pub object_key: String,
}

/// Up to `limit` artifacts past their `expires_at`, oldest first, leaving out those of the
/// latest successful pipeline of each ref in projects that keep them. Several replicas may be
/// handed the same rows; deleting twice is harmless.
pub fn expired_artifacts(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Expired>, StorageError> {
    Ok(diesel::sql_query(include_str!("artifacts/expired.sql"))
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(PipelineStatus::Success.as_str())
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)?)
}

/// Sets whether a project keeps the artifacts of each ref's latest successful pipeline.
pub fn set_keep_latest_artifacts(
    conn: &mut PgConnection,
    project: ProjectId,
    keep: bool,
) -> Result<(), StorageError> {
    let updated = diesel::sql_query("UPDATE projects SET keep_latest_artifacts = $2 WHERE id = $1")
        .bind::<BigInt, _>(project.0)
        .bind::<Bool, _>(keep)
        .execute(conn)?;
    if updated == 0 {
        return Err(StorageError::NotFound {
            entity: "project",
            id: project.0,
        });
    }
    Ok(())
}

/// Bytes and archives stored, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, QueryableByName)]
pub struct StoredFigures {
    #[diesel(sql_type = BigInt)]
    pub artifact_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub artifacts: i64,
    #[diesel(sql_type = BigInt)]
    pub cache_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub caches: i64,
}

pub fn stored_figures(conn: &mut PgConnection) -> Result<StoredFigures, StorageError> {
    Ok(diesel::sql_query(
        "SELECT (SELECT COALESCE(sum(size_bytes), 0)::bigint FROM ci_job_artifacts) AS artifact_bytes, \
                (SELECT count(*) FROM ci_job_artifacts) AS artifacts, \
                (SELECT COALESCE(sum(size_bytes), 0)::bigint FROM ci_caches) AS cache_bytes, \
                (SELECT count(*) FROM ci_caches) AS caches",
    )
    .get_result(conn)?)
}
