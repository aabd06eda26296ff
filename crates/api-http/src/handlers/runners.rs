//! `/runners`: register runners (their token is shown once) and retire them.

use crate::app::AppState;
use crate::auth::{Admin, TokenHash, new_runner_token};
use crate::blocking::with_conn;
use crate::dto::{CreateRunner, Runner, RunnerItem};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::handlers::check_name;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lockstep_domain::{Problem, RunnerId, limits};
use lockstep_storage_pg::{list_runners, register_runner, retire_runner};

/// Registers a runner. The answer carries its token, which is never shown again.
#[utoipa::path(post, path = "/api/v1/runners", tag = "runners",
    request_body = CreateRunner,
    responses((status = 201, body = Runner), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    Json(body): Json<CreateRunner>,
) -> ApiResult<(StatusCode, axum::Json<Runner>)> {
    check_name("name", &body.name)?;
    check_tags(&body.tags)?;
    let token = new_runner_token()?;
    let hash = TokenHash::of(&token);
    let runner = with_conn(&state, move |conn, _| {
        register_runner(conn, &body.name, &body.tags, hash.as_bytes())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Runner::with_token(runner, token)),
    ))
}

fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > limits::MAX_TAGS {
        return Err(ApiError::invalid(
            "tags",
            format!(
                "`tags` {}",
                Problem::TooMany {
                    max: limits::MAX_TAGS
                }
            ),
        ));
    }
    for (index, tag) in tags.iter().enumerate() {
        check_name(&format!("tags[{index}]"), tag)?;
    }
    Ok(())
}

/// Every runner that is not retired, by id: whether it is online (in contact within the
/// server's window) and the builds it holds.
#[utoipa::path(get, path = "/api/v1/runners", tag = "runners",
    responses((status = 200, body = Vec<RunnerItem>), (status = 401, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> ApiResult<axum::Json<Vec<RunnerItem>>> {
    let online_since = state.online_since();
    let runners = with_conn(&state, move |conn, _| list_runners(conn, online_since)).await?;
    Ok(axum::Json(runners.into_iter().map(Into::into).collect()))
}

/// Retires a runner: its token stops working. Builds it holds run out their lease.
#[utoipa::path(delete, path = "/api/v1/runners/{id}", tag = "runners",
    params(("id" = i64, Path, description = "runner id")),
    responses((status = 204, description = "retired (again, if it already was)"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("admin" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    with_conn(&state, move |conn, _| {
        retire_runner(conn, RunnerId(id), Utc::now())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
