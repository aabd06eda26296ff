//! `/projects/{id}/pipelines` and `/pipelines/{id}`: submit, read, list, cancel and retry.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::{CreatePipeline, Pipeline, PipelineListItem};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::handlers::check_name;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::{PipelineDefinition, PipelineId, PipelineStatus, ProjectId};
use lockstep_storage_pg::{
    NewPipeline, PipelineQuery, Transitions, list_pipelines, load_pipeline, pipeline_waiting,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// The most pipelines one page lists.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// Submits a pipeline. Builds whose needs allow it start `pending` at once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/pipelines", tag = "pipelines",
    params(("id" = i64, Path, description = "project id")),
    request_body = CreatePipeline,
    responses(
        (status = 201, body = Pipeline),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, description = "the definition is invalid; `field` names the job and field", body = ErrorBody),
    ),
    security(("admin" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
    Json(body): Json<CreatePipeline>,
) -> ApiResult<(StatusCode, axum::Json<Pipeline>)> {
    check_name("ref", &body.git_ref)?;
    if let Some(sha) = &body.sha {
        check_sha(sha)?;
    }
    let auto_cancel = body.auto_cancel();
    let definition = PipelineDefinition { jobs: body.jobs }.validate()?;
    let pipeline = with_conn(&state, move |conn, stats| {
        let new = NewPipeline {
            project: ProjectId(project),
            git_ref: &body.git_ref,
            sha: body.sha.as_deref(),
            definition: &definition,
            auto_cancel,
        };
        let created = Transitions::new(conn, stats).create_pipeline(&new, Utc::now())?;
        load_pipeline(conn, created.id)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(pipeline.into())))
}

fn check_sha(sha: &str) -> Result<(), ApiError> {
    if sha.is_empty() || sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid(
            "sha",
            "`sha` must be 1 to 64 letters and digits",
        ));
    }
    Ok(())
}

/// A pipeline with all its builds.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", tag = "pipelines",
    params(("id" = i64, Path, description = "pipeline id")),
    responses((status = 200, body = Pipeline), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Pipeline>> {
    let online_since = state.online_since();
    let (pipeline, waiting) = with_conn(&state, move |conn, _| {
        let pipeline = load_pipeline(conn, PipelineId(id))?;
        let waiting = pipeline_waiting(
            conn,
            pipeline.summary.project_id,
            &pipeline.builds,
            online_since,
        )?;
        Ok((pipeline, waiting))
    })
    .await?;
    Ok(axum::Json(Pipeline::read(pipeline, waiting)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only pipelines in this status.
    status: Option<String>,
    /// At most this many, 1 to 100 (default 20).
    limit: Option<u32>,
    /// Only pipelines older than this id: pass the last id of the previous page.
    before: Option<i64>,
}

/// A project's pipelines, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/projects/{id}/pipelines", tag = "pipelines",
    params(("id" = i64, Path, description = "project id"), ListQuery),
    responses((status = 200, body = Vec<PipelineListItem>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<PipelineListItem>>> {
    let query = page(query)?;
    let pipelines = with_conn(&state, move |conn, _| {
        list_pipelines(conn, ProjectId(project), &query)
    })
    .await?;
    Ok(axum::Json(
        pipelines.into_iter().map(PipelineListItem::from).collect(),
    ))
}

fn page(query: ListQuery) -> Result<PipelineQuery, ApiError> {
    let status = query
        .status
        .map(|s| {
            s.parse::<PipelineStatus>().map_err(|_| {
                ApiError::bad_request(
                    Some("status".to_owned()),
                    format!("unknown pipeline status `{s}`"),
                )
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            Some("limit".to_owned()),
            format!("`limit` must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(PipelineQuery {
        status,
        before: query.before.map(PipelineId),
        limit,
    })
}

/// Cancels every build that has not finished. Canceling a canceled pipeline changes nothing.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/cancel", tag = "pipelines",
    params(("id" = i64, Path, description = "pipeline id")),
    responses((status = 200, body = Pipeline), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the pipeline already finished otherwise; `status` says how", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Pipeline>> {
    let pipeline = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).cancel_pipeline(PipelineId(id), Utc::now())?;
        load_pipeline(conn, PipelineId(id))
    })
    .await?;
    Ok(axum::Json(pipeline.into()))
}

/// Runs every failed or canceled build again, as new attempts.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/retry", tag = "pipelines",
    params(("id" = i64, Path, description = "pipeline id")),
    responses((status = 200, body = Pipeline), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Pipeline>> {
    let pipeline = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).retry_pipeline(PipelineId(id), Utc::now())?;
        load_pipeline(conn, PipelineId(id))
    })
    .await?;
    Ok(axum::Json(pipeline.into()))
}
