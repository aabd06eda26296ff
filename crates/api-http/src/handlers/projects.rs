//! `/projects`: create, list and configure projects.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::{CreateProject, Project, UpdateProject};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::handlers::check_name;
use axum::extract::State;
use axum::http::StatusCode;
use lockstep_domain::ProjectId;
use lockstep_storage_pg::{create_project, list_projects, load_project, set_keep_latest_artifacts};

/// Creates a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, body = Project),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the name is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("admin" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    Json(body): Json<CreateProject>,
) -> ApiResult<(StatusCode, axum::Json<Project>)> {
    check_name("name", &body.name)?;
    let project = with_conn(&state, move |conn, _| create_project(conn, &body.name)).await?;
    Ok((StatusCode::CREATED, axum::Json(project.into())))
}

/// Lists every project, oldest first.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> ApiResult<axum::Json<Vec<Project>>> {
    let projects = with_conn(&state, |conn, _| list_projects(conn)).await?;
    Ok(axum::Json(
        projects.into_iter().map(Project::from).collect(),
    ))
}

/// Changes a project's settings.
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects",
    params(("id" = i64, Path, description = "project id")),
    request_body = UpdateProject,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
    Json(body): Json<UpdateProject>,
) -> ApiResult<axum::Json<Project>> {
    let project = with_conn(&state, move |conn, _| {
        if let Some(keep) = body.keep_latest_artifacts {
            set_keep_latest_artifacts(conn, ProjectId(id), keep)?;
        }
        load_project(conn, ProjectId(id))
    })
    .await?;
    Ok(axum::Json(project.into()))
}
