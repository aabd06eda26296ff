//! `/projects/{id}/environments` and `/environments/{id}/deployments`.

use crate::app::AppState;
use crate::auth::Admin;
use crate::blocking::with_conn;
use crate::dto::{DeploymentRecord, Environment};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Path, Query};
use axum::extract::State;
use lockstep_domain::ProjectId;
use lockstep_storage_pg::{list_deployments, list_environments};
use serde::Deserialize;
use utoipa::IntoParams;

const MAX_PAGE: u32 = 100;

/// A project's environments by name, each with its latest deployment.
#[utoipa::path(get, path = "/api/v1/projects/{id}/environments", tag = "environments",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = Vec<Environment>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    Path(project): Path<i64>,
) -> ApiResult<axum::Json<Vec<Environment>>> {
    let environments = with_conn(&state, move |conn, _| {
        list_environments(conn, ProjectId(project))
    })
    .await?;
    Ok(axum::Json(
        environments.into_iter().map(Environment::from).collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeploymentsQuery {
    /// At most this many, 1 to 100 (default 20).
    limit: Option<u32>,
}

/// An environment's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/environments/{id}/deployments", tag = "environments",
    params(("id" = i64, Path, description = "environment id"), DeploymentsQuery),
    responses((status = 200, body = Vec<DeploymentRecord>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn deployments(
    State(state): State<AppState>,
    _: Admin,
    Path(environment): Path<i64>,
    Query(query): Query<DeploymentsQuery>,
) -> ApiResult<axum::Json<Vec<DeploymentRecord>>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            Some("limit".to_owned()),
            format!("`limit` must be between 1 and {MAX_PAGE}"),
        ));
    }
    let deployments = with_conn(&state, move |conn, _| {
        list_deployments(conn, environment, limit)
    })
    .await?;
    Ok(axum::Json(
        deployments
            .into_iter()
            .map(DeploymentRecord::from)
            .collect(),
    ))
}
