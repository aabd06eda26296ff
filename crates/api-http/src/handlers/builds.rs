//! `/builds/{id}`: read, cancel, retry, play, and read the log.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::Build;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::{StorageError, Transitions, build_waiting, load_build, read_log};
use serde::Deserialize;
use utoipa::IntoParams;

/// The most log bytes one read returns; a client reads on from `X-Log-Offset`.
const MAX_LOG_READ: usize = 1024 * 1024;

/// One build.
#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Build>> {
    let online_since = state.online_since();
    let (build, waiting) = with_conn(&state, move |conn, _| {
        let build = load_build(conn, BuildId(id))?;
        let waiting = build_waiting(conn, &build, online_since)?;
        Ok((build, waiting))
    })
    .await?;
    Ok(axum::Json(Build::read(build, waiting)))
}

/// Cancels a build: one not yet running is canceled, a running one becomes `canceling` until
/// its runner stops it. Canceling a canceled build changes nothing.
#[utoipa::path(post, path = "/api/v1/builds/{id}/cancel", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the build already finished; `status` says how", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Build>> {
    let build = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).cancel_build(BuildId(id), Utc::now())?;
        load_build(conn, BuildId(id))
    })
    .await?;
    Ok(axum::Json(build.into()))
}

/// Starts a `manual` build: it becomes pending.
#[utoipa::path(post, path = "/api/v1/builds/{id}/play", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = Build), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn play(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Build>> {
    let build = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).play_build(BuildId(id), Utc::now())?;
        load_build(conn, BuildId(id))
    })
    .await?;
    Ok(axum::Json(build.into()))
}

/// Runs a finished build again as a new attempt (with the builds its failure skipped).
#[utoipa::path(post, path = "/api/v1/builds/{id}/retry", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 201, description = "the new attempt", body = Build), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the build has not finished, or was already retried", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, axum::Json<Build>)> {
    let build = with_conn(&state, move |conn, stats| {
        let applied = Transitions::new(conn, stats).retry_build(BuildId(id), Utc::now())?;
        let (_, new) = applied
            .new_builds
            .iter()
            .find(|(copied, _)| *copied == BuildId(id))
            .copied()
            .ok_or_else(|| {
                StorageError::Corrupt(format!("retrying build {id} made no new attempt"))
            })?;
        load_build(conn, new)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(build.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// The first byte to return (default 0).
    offset: Option<u64>,
}

/// The build's log from `offset`, at most 1 MiB per call. `X-Log-Offset` is where to continue;
/// `X-Log-Complete: true` once the build finished and nothing is left.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log", tag = "builds",
    params(("id" = i64, Path, description = "build id"), LogQuery),
    responses(
        (status = 200, content_type = "text/plain", body = String,
            headers(("X-Log-Offset" = u64, description = "the offset to read from next"),
                    ("X-Log-Complete" = bool, description = "the build finished and the log is read to its end"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, description = "`offset` is past the end; `offset` in the body is the end", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn log(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let offset = query.offset.unwrap_or(0);
    let slice = with_conn(&state, move |conn, _| {
        read_log(conn, BuildId(id), offset, MAX_LOG_READ)
    })
    .await?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                HeaderName::from_static("x-log-offset"),
                slice.next_offset.to_string(),
            ),
            (
                HeaderName::from_static("x-log-complete"),
                slice.complete.to_string(),
            ),
        ],
        slice.data,
    ))
}
