//! `/builds/{id}/artifacts`: what a build kept, for people: the listing, the archive, one file
//! of it, and deleting them; and a project's `keep_latest_artifacts` setting.

use crate::app::AppState;
use crate::archives;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::BuildArtifacts;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::metrics::ArchiveKind;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lockstep_domain::BuildId;
use lockstep_storage_pg::{ArtifactView, forget_artifact, load_artifact, load_build};

/// A build's artifacts; 404 when it kept none (or they expired or were deleted).
pub(crate) async fn artifacts_of(state: &AppState, id: i64) -> ApiResult<ArtifactView> {
    with_conn(state, move |conn, _| {
        // A build that does not exist is told apart from one without artifacts.
        load_build(conn, BuildId(id))?;
        load_artifact(conn, BuildId(id))
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("build {id} has no artifacts")))
}

/// The build's artifacts: the archive's size, digest, expiry and every entry.
#[utoipa::path(get, path = "/api/v1/builds/{id}/artifacts", tag = "artifacts",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = BuildArtifacts), (status = 401, body = ErrorBody),
        (status = 404, description = "no such build, or it has no artifacts", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<BuildArtifacts>> {
    Ok(axum::Json(artifacts_of(&state, id).await?.into()))
}

/// The build's artifacts as the ZIP archive the runner uploaded.
#[utoipa::path(get, path = "/api/v1/builds/{id}/artifacts/download", tag = "artifacts",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>,
            description = "an attachment named by the job's `artifacts: name`"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn download(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    download_archive(&state, id).await
}

pub(crate) async fn download_archive(state: &AppState, id: i64) -> ApiResult<Response> {
    let view = artifacts_of(state, id).await?;
    archives::respond(
        state,
        ArchiveKind::Artifacts,
        &view.object_key,
        view.size,
        Some(&view.file_name),
    )
    .await
}

/// One file of the build's artifacts, by its path in the archive.
#[utoipa::path(get, path = "/api/v1/builds/{id}/artifacts/file/{path}", tag = "artifacts",
    params(("id" = i64, Path, description = "build id"),
        ("path" = String, Path, description = "the file's path in the archive, as the listing names it (may hold `/`)")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "the path names a directory or a symlink", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such build, no artifacts, or no such file in them", body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn file(
    State(state): State<AppState>,
    _: Admin,
    Path((id, path)): Path<(i64, String)>,
) -> ApiResult<Response> {
    one_file(&state, id, &path).await
}

pub(crate) async fn one_file(state: &AppState, id: i64, path: &str) -> ApiResult<Response> {
    let view = artifacts_of(state, id).await?;
    let path = path.trim_start_matches('/').trim_end_matches('/');
    let Some(entry) = view.entries.iter().find(|e| e.path == path) else {
        return Err(ApiError::not_found(format!(
            "build {id}'s artifacts have no file `{path}`"
        )));
    };
    if entry.kind != "file" {
        return Err(ApiError::bad_request(
            Some("path".to_owned()),
            format!(
                "`{path}` is a {} in build {id}'s artifacts, not a file",
                entry.kind
            ),
        ));
    }
    let archive = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::internal(&e))?
        .into_temp_path();
    state
        .objects
        .get_to_file(&view.object_key, &archive)
        .await
        .map_err(|error| match error {
            object_store::Error::NotFound { .. } => {
                ApiError::not_found("the archive is gone (it expired or was deleted)")
            }
            other => archives::store_error(&other),
        })?;
    let wanted = path.to_owned();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        lockstep_archive::copy_file(
            &archive,
            &wanted,
            &mut out,
            &lockstep_archive::Limits::DEFAULT,
        )
        .map(|_| out)
    })
    .await?
    .map_err(|error| ApiError::internal(&error))?;
    state
        .metrics
        .downloaded(ArchiveKind::Artifacts, bytes.len() as u64);
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(entry.size));
    headers.insert(CONTENT_DISPOSITION, archives::attachment(name));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Deletes the build's artifacts, object and row.
#[utoipa::path(delete, path = "/api/v1/builds/{id}/artifacts", tag = "artifacts",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    delete_artifacts(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The object first, then the row: a failure in between leaves a row whose download says the
/// archive is gone, and deleting again finishes the job.
pub(crate) async fn delete_artifacts(state: &AppState, id: i64) -> ApiResult<()> {
    let view = artifacts_of(state, id).await?;
    state
        .objects
        .delete(&view.object_key)
        .await
        .map_err(|error| archives::store_error(&error))?;
    let key = view.object_key;
    with_conn(state, move |conn, _| {
        forget_artifact(conn, BuildId(id), &key)
    })
    .await?;
    Ok(())
}
