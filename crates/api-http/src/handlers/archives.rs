//! `/jobs/{id}/artifacts` and `/jobs/{id}/cache`: the runner protocol's archives. A runner
//! uploads its build's artifacts and its project's caches while it holds the build, and fetches
//! only what its job may: the artifacts its job payload listed, its own project's caches.

use crate::app::AppState;
use crate::archives::{self, Received};
use crate::auth::Runner;
use crate::blocking::with_conn;
use crate::dto::{BuildArtifacts, StoredCache};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use crate::metrics::ArchiveKind;
use crate::objects::fresh_key;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::{
    Fetchable, NewArchive, Stored, Transitions, check_runner_holds, fetchable_artifact,
    fetchable_cache,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// Uploads the build's artifacts: a ZIP of the paths its job's `artifacts` names. A second
/// upload replaces the first (an upload that broke off is sent again whole).
#[utoipa::path(put, path = "/api/v1/jobs/{id}/artifacts", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id"), ArtifactsQuery),
    request_body(content = Vec<u8>, content_type = "application/zip",
        description = "the archive; at most the job's `max_artifact_bytes`"),
    responses((status = 201, body = BuildArtifacts), (status = 401, body = ErrorBody),
        (status = 403, description = "another runner holds the build", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "the lease was lost: the build ended", body = ErrorBody),
        (status = 413, description = "larger than the server's LOCKSTEP_MAX_ARTIFACT_BYTES", body = ErrorBody),
        (status = 422, description = "not a ZIP, or an entry would leave the build directory (`..`, an absolute name, a symlink pointing out), or too many entries", body = ErrorBody),
        (status = 503, description = "the object store is unavailable; send it again", body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn upload_artifacts(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
    Query(query): Query<ArtifactsQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<BuildArtifacts>)> {
    if let Some(name) = &query.name {
        crate::handlers::check_name("name", name)?;
    }
    let build = BuildId(id);
    let received = receive_held(&state, build, runner.id, &headers, body).await?;
    let key = put(&state, "artifacts", id, &received).await?;
    let default_expiry = state
        .artifacts_expire_in
        .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let (size, sha256, entries) = (received.size, received.sha256, received.entries);
    let stored_key = key.clone();
    let stored = with_conn(&state, move |conn, stats| {
        let archive = NewArchive {
            name: query.name.as_deref(),
            object_key: &stored_key,
            size,
            sha256: &sha256,
            entries: &entries,
        };
        Transitions::new(conn, stats).store_artifact(
            build,
            runner.id,
            &archive,
            default_expiry,
            Utc::now(),
        )
    })
    .await;
    let stored = settle(&state, &key, stored).await?;
    state.metrics.uploaded(ArchiveKind::Artifacts, size);
    Ok((StatusCode::CREATED, axum::Json(stored.into())))
}

/// Fetches a dependency's artifacts: only an archive the job's payload listed in `fetch`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts/{build_id}", tag = "runner protocol",
    params(("id" = i64, Path, description = "the runner's build"),
        ("build_id" = i64, Path, description = "the dependency's build, from the payload's `fetch`")),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "another runner holds the build, or `build_id` is not one of its job's dependencies", body = ErrorBody),
        (status = 404, description = "the dependency has no artifacts (any more)", body = ErrorBody),
        (status = 410, description = "the lease was lost", body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn fetch_artifacts(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path((id, from)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let found = with_conn(&state, move |conn, _| {
        fetchable_artifact(conn, BuildId(id), runner.id, BuildId(from))
    })
    .await?;
    let view = match found {
        Fetchable::Found(view) => view,
        Fetchable::Missing => {
            return Err(ApiError::not_found(format!(
                "build {from} has no artifacts"
            )));
        }
        Fetchable::NotAllowed => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_dependency",
                format!("build {from}'s artifacts are not among build {id}'s dependencies"),
            ));
        }
    };
    archives::respond(
        &state,
        ArchiveKind::Artifacts,
        &view.object_key,
        view.size,
        None,
    )
    .await
}

/// What the runner says of its artifacts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactsQuery {
    /// The archive's name without `.zip`: the job's `artifacts: name` with its variables
    /// expanded (a name: 1 to 255 characters, no control characters); absent, the name as
    /// written, or `artifacts`.
    name: Option<String>,
}

/// The cache a request names.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct CacheQuery {
    /// The cache's key with its variables expanded (and its files' hash appended): 1 to 255
    /// characters, not only dots.
    key: String,
}

fn check_key(key: &str) -> ApiResult<()> {
    lockstep_domain::check_cache_key(key)
        .map_err(|problem| ApiError::invalid("key", format!("`key` {problem}")))
}

/// Fetches the build's project's cache `key`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/cache", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id"), CacheQuery),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no cache under that key yet", body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn fetch_cache(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
    Query(query): Query<CacheQuery>,
) -> ApiResult<Response> {
    check_key(&query.key)?;
    let key = query.key.clone();
    let cache = with_conn(&state, move |conn, _| {
        fetchable_cache(conn, BuildId(id), runner.id, &key)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no cache `{}` yet", query.key)))?;
    archives::respond(
        &state,
        ArchiveKind::Cache,
        &cache.object_key,
        cache.size,
        None,
    )
    .await
}

/// Uploads the build's project's cache `key`: the last upload wins.
#[utoipa::path(put, path = "/api/v1/jobs/{id}/cache", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id"), CacheQuery),
    request_body(content = Vec<u8>, content_type = "application/zip"),
    responses((status = 201, body = StoredCache), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn upload_cache(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
    Query(query): Query<CacheQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<StoredCache>)> {
    check_key(&query.key)?;
    let build = BuildId(id);
    let received = receive_held(&state, build, runner.id, &headers, body).await?;
    let key = put(&state, "caches", id, &received).await?;
    let (size, sha256, cache_key) = (received.size, received.sha256, query.key);
    let stored_key = key.clone();
    let stored = with_conn(&state, move |conn, stats| {
        let archive = NewArchive {
            name: None,
            object_key: &stored_key,
            size,
            sha256: &sha256,
            entries: &[],
        };
        Transitions::new(conn, stats).store_cache(
            build,
            runner.id,
            &cache_key,
            &archive,
            Utc::now(),
        )
    })
    .await;
    let stored = settle(&state, &key, stored).await?;
    state.metrics.uploaded(ArchiveKind::Cache, size);
    Ok((StatusCode::CREATED, axum::Json(stored.into())))
}

/// Receives an upload once the runner is known to hold the build, so that a runner that lost
/// it is told before it sends the bytes.
async fn receive_held(
    state: &AppState,
    build: BuildId,
    runner: lockstep_domain::RunnerId,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Received> {
    with_conn(state, move |conn, _| {
        check_runner_holds(conn, build, runner)
    })
    .await?;
    archives::receive(state, headers, body).await
}

async fn put(state: &AppState, kind: &str, owner: i64, received: &Received) -> ApiResult<String> {
    let key = fresh_key(kind, owner);
    state
        .objects
        .put_file(&key, &received.file)
        .await
        .map_err(|error| archives::store_error(&error))?;
    Ok(key)
}

/// After the row's transaction: a refused one leaves the new object unnamed (deleted), a
/// committed one may leave the object it replaced unnamed (deleted too).
async fn settle<T>(
    state: &AppState,
    key: &str,
    stored: Result<Stored<T>, ApiError>,
) -> ApiResult<T> {
    match stored {
        Ok(stored) => {
            if let Some(old) = stored.replaced {
                archives::discard(state, &old).await;
            }
            Ok(stored.stored)
        }
        Err(error) => {
            archives::discard(state, key).await;
            Err(error)
        }
    }
}
