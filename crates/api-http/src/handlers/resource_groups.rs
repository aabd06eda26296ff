//! `/projects/{id}/resource_groups`: a project's resource groups, their holders and their line,
//! and setting one up.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::{ConfigureResourceGroup, ResourceGroup};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::handlers::check_name;
use axum::extract::State;
use chrono::Utc;
use lockstep_domain::{ProjectId, limits};
use lockstep_storage_pg::{GroupSettings, Transitions, list_resource_groups, load_resource_group};

/// A project's resource groups, by name.
#[utoipa::path(get, path = "/api/v1/projects/{id}/resource_groups", tag = "resource groups",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = Vec<ResourceGroup>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
) -> ApiResult<axum::Json<Vec<ResourceGroup>>> {
    let groups = with_conn(&state, move |conn, _| {
        list_resource_groups(conn, ProjectId(project))
    })
    .await?;
    Ok(axum::Json(
        groups.into_iter().map(ResourceGroup::from).collect(),
    ))
}

/// One resource group of a project.
#[utoipa::path(get, path = "/api/v1/projects/{id}/resource_groups/{name}", tag = "resource groups",
    params(("id" = i64, Path, description = "project id"), ("name" = String, Path, description = "group name")),
    responses((status = 200, body = ResourceGroup), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "no such project, or no such group in it", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path((project, name)): Path<(i64, String)>,
) -> ApiResult<axum::Json<ResourceGroup>> {
    check_name("name", &name)?;
    let group = with_conn(&state, move |conn, _| {
        load_resource_group(conn, ProjectId(project), &name)
    })
    .await?;
    Ok(axum::Json(group.into()))
}

/// Sets a resource group up, creating it when absent, so that a group can be configured before
/// its first pipeline. A higher limit hands its new slots to the waiting builds at once.
#[utoipa::path(put, path = "/api/v1/projects/{id}/resource_groups/{name}", tag = "resource groups",
    params(("id" = i64, Path, description = "project id"), ("name" = String, Path, description = "group name")),
    request_body(content = ConfigureResourceGroup, description = "may be empty"),
    responses((status = 200, body = ResourceGroup), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "a bad name or a limit outside 1 to 100", body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn put(
    State(state): State<AppState>,
    _: Admin,
    Path((project, name)): Path<(i64, String)>,
    Json(body): Json<ConfigureResourceGroup>,
) -> ApiResult<axum::Json<ResourceGroup>> {
    check_name("name", &name)?;
    if let Some(limit) = body.limit
        && !(1..=limits::MAX_GROUP_LIMIT).contains(&limit)
    {
        return Err(ApiError::invalid(
            "limit",
            format!("`limit` must be between 1 and {}", limits::MAX_GROUP_LIMIT),
        ));
    }
    let settings = GroupSettings {
        process_mode: body.process_mode.map(Into::into),
        limit: body.limit,
    };
    let group = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).configure_resource_group(
            ProjectId(project),
            &name,
            settings,
            Utc::now(),
        )
    })
    .await?;
    Ok(axum::Json(group.into()))
}
