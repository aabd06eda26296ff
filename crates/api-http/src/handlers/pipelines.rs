//! `/projects/{id}/pipelines` and `/pipelines/{id}`: submit (as JSON or as a pipeline file),
//! lint, read, list, cancel and retry.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::{CreatePipeline, LintAnswer, LintPipeline, Pipeline, PipelineListItem};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query, Submission};
use crate::handlers::check_name;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::{
    AutoCancel, JobDefinition, PipelineDefinition, PipelineId, PipelineStatus, ProjectId,
    ValidPipeline,
};
use lockstep_storage_pg::{
    NewPipeline, PipelineQuery, Transitions, list_pipelines, load_pipeline, load_project,
    pipeline_waiting,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// The most pipelines one page lists.
const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

/// Where a pipeline file's pipeline runs: its branch or tag and commit, which a JSON body
/// carries in itself.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FileQuery {
    /// The branch or tag, for a pipeline file (required for one); a JSON body says it as `ref`.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    git_ref: Option<String>,
    /// The commit, for a pipeline file.
    sha: Option<String>,
}

/// Submits a pipeline: a JSON body, or a pipeline file (`.lockstep.yml`) as it is, with
/// `Content-Type: application/yaml` (or `application/x-yaml`, `text/yaml`) and `?ref=…&sha=…`.
/// Builds whose needs allow it start `pending` at once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/pipelines", tag = "pipelines",
    params(("id" = i64, Path, description = "project id"), FileQuery),
    request_body(content(
        (CreatePipeline = "application/json"),
        (String = "application/yaml"),
    )),
    responses(
        (status = 201, body = Pipeline),
        (status = 400, description = "the body or query cannot be read (JSON that does not parse, a file that is not UTF-8, `ref` missing for a file or given beside a JSON body)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, description = "the Content-Type is neither JSON nor YAML", body = ErrorBody),
        (status = 422, description = "the definition or file is not valid: `field` names the job and field, `errors` lists every problem (with the line and column of a file)", body = ErrorBody),
    ),
    security(("admin" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
    Query(query): Query<FileQuery>,
    body: Submission<CreatePipeline>,
) -> ApiResult<(StatusCode, axum::Json<Pipeline>)> {
    let submitted = match body {
        Submission::Json(body) => from_json(body, &query)?,
        Submission::File(text) => from_file(text, query).await?,
    };
    let pipeline = with_conn(&state, move |conn, stats| {
        let new = NewPipeline {
            project: ProjectId(project),
            git_ref: &submitted.git_ref,
            sha: submitted.sha.as_deref(),
            definition: &submitted.definition,
            auto_cancel: submitted.auto_cancel,
        };
        let created = Transitions::new(conn, stats).create_pipeline(&new, Utc::now())?;
        load_pipeline(conn, created.id)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(pipeline.into())))
}

/// A pipeline ready to create, however it was submitted.
struct Submitted {
    git_ref: String,
    sha: Option<String>,
    definition: ValidPipeline,
    auto_cancel: AutoCancel,
}

fn from_json(body: CreatePipeline, query: &FileQuery) -> Result<Submitted, ApiError> {
    if query.git_ref.is_some() || query.sha.is_some() {
        return Err(ApiError::bad_request(
            Some("ref".to_owned()),
            "a JSON body gives `ref` and `sha` in itself; the query's are for a pipeline file",
        ));
    }
    check_place(&body.git_ref, body.sha.as_deref())?;
    let auto_cancel = body.auto_cancel();
    let definition = PipelineDefinition { jobs: body.jobs }.validate()?;
    Ok(Submitted {
        git_ref: body.git_ref,
        sha: body.sha,
        definition,
        auto_cancel,
    })
}

async fn from_file(text: String, query: FileQuery) -> Result<Submitted, ApiError> {
    let git_ref = query.git_ref.ok_or_else(|| {
        ApiError::bad_request(
            Some("ref".to_owned()),
            "a pipeline file needs `?ref=` (the branch or tag it runs for)",
        )
    })?;
    check_place(&git_ref, query.sha.as_deref())?;
    let linted = lint_file(text).await?;
    Ok(Submitted {
        git_ref,
        sha: query.sha,
        definition: linted.valid,
        auto_cancel: linted.file.auto_cancel,
    })
}

/// Reads a pipeline file on the blocking pool: a large one takes milliseconds of CPU.
async fn lint_file(text: String) -> Result<lockstep_pipeline_file::Linted, ApiError> {
    tokio::task::spawn_blocking(move || lockstep_pipeline_file::lint(&text))
        .await?
        .map_err(ApiError::pipeline_file)
}

fn check_place(git_ref: &str, sha: Option<&str>) -> Result<(), ApiError> {
    check_name("ref", git_ref)?;
    if let Some(sha) = sha {
        check_sha(sha)?;
    }
    Ok(())
}

/// Checks a pipeline (JSON or a pipeline file) without creating anything: 200 with the jobs as
/// they would be created (templates, `default`, `extends` and `parallel` expanded), or 422
/// with every problem.
#[utoipa::path(post, path = "/api/v1/projects/{id}/lint", tag = "pipelines",
    params(("id" = i64, Path, description = "project id")),
    request_body(content(
        (LintPipeline = "application/json"),
        (String = "application/yaml"),
    )),
    responses(
        (status = 200, body = LintAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "not valid: `errors` lists every problem, with the line and column of a file", body = ErrorBody),
    ),
    security(("admin" = [])))]
pub(crate) async fn lint(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
    body: Submission<LintPipeline>,
) -> ApiResult<axum::Json<LintAnswer>> {
    with_conn(&state, move |conn, _| {
        load_project(conn, ProjectId(project))
    })
    .await?;
    let (jobs, auto_cancel): (Vec<JobDefinition>, AutoCancel) = match body {
        Submission::Json(body) => {
            let auto_cancel = body.auto_cancel();
            let jobs = body.jobs;
            PipelineDefinition { jobs: jobs.clone() }.validate()?;
            (jobs, auto_cancel)
        }
        Submission::File(text) => {
            let linted = lint_file(text).await?;
            (linted.file.definition.jobs, linted.file.auto_cancel)
        }
    };
    Ok(axum::Json(LintAnswer::new(jobs, auto_cancel)))
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

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only pipelines in this status.
    pub(crate) status: Option<String>,
    /// Only pipelines of this branch or tag.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    pub(crate) git_ref: Option<String>,
    /// At most this many, 1 to 100 (default 20).
    pub(crate) limit: Option<u32>,
    /// Only pipelines older than this id: pass the last id of the previous page.
    pub(crate) before: Option<i64>,
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

pub(crate) fn page(query: ListQuery) -> Result<PipelineQuery, ApiError> {
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
        git_ref: query.git_ref,
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
