//! `/jobs/batch/*`: the runner protocol for many builds per call. A runner with free slots asks
//! for up to `max_jobs` builds in one request, and reports several results in one; each build
//! keeps exactly the semantics of the single-build calls in `jobs.rs`, which stay as they are.

use crate::app::AppState;
use crate::auth::Runner;
use crate::blocking::with_conn;
use crate::dto::{BatchFinishAnswer, BatchFinishRequest, BatchJobRequest, Job, Jobs, ReportAnswer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::handlers::jobs::{build_result, finished_status, wait_for_builds, wait_seconds};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::Transitions;

/// The most builds one batch call may ask for or report.
pub(crate) const MAX_BATCH: usize = 100;

/// Asks for up to `max_jobs` builds whose tags are all among the runner's, claimed in one
/// statement. Waits up to `wait_seconds` for at least one to become pending, then answers with
/// all it could claim at that moment; `204` when none came (or the server is shutting down).
#[utoipa::path(post, path = "/api/v1/jobs/batch/request", tag = "runner protocol",
    request_body = BatchJobRequest,
    responses((status = 201, description = "1 to `max_jobs` builds, in ascending id", body = Jobs),
        (status = 204, description = "no build within the wait"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn request(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Json(body): Json<BatchJobRequest>,
) -> ApiResult<Response> {
    let wait = wait_seconds(body.wait_seconds)?;
    let limit = usize::try_from(body.max_jobs).unwrap_or(usize::MAX);
    if !(1..=MAX_BATCH).contains(&limit) {
        return Err(ApiError::invalid(
            "max_jobs",
            format!("`max_jobs` must be between 1 and {MAX_BATCH}"),
        ));
    }
    let builds = wait_for_builds(&state, &runner, wait, body.max_jobs).await?;
    if builds.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let lease = state.lease.as_secs();
    let jobs = builds
        .into_iter()
        .map(|b| Job::new(b, lease, state.max_artifact_bytes))
        .collect();
    Ok((StatusCode::CREATED, axum::Json(Jobs { jobs })).into_response())
}

/// Reports several results at once. Each report is answered as `POST /jobs/{id}/finish` would
/// answer it alone (a refused one changes nothing and does not stop the others); reports of one
/// pipeline apply together, in the order given.
#[utoipa::path(post, path = "/api/v1/jobs/batch/finish", tag = "runner protocol",
    request_body = BatchFinishRequest,
    responses((status = 200, description = "one answer per report, in order", body = BatchFinishAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn finish(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Json(body): Json<BatchFinishRequest>,
) -> ApiResult<axum::Json<BatchFinishAnswer>> {
    if body.reports.is_empty() || body.reports.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "reports",
            format!("`reports` must hold 1 to {MAX_BATCH} reports"),
        ));
    }
    let reports = body
        .reports
        .iter()
        .enumerate()
        .map(|(i, report)| {
            build_result(report.result, report.failure_reason, report.exit_code)
                .map(|result| (BuildId(report.id), result))
                .map_err(|_| {
                    ApiError::invalid(
                        format!("reports[{i}].failure_reason"),
                        "`failure_reason` is only for `result: failed`",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = with_conn(&state, move |conn, stats| {
        let answers = Transitions::new(conn, stats).finish_all(runner.id, &reports, Utc::now())?;
        Ok(reports
            .iter()
            .zip(answers)
            .map(|(&(build, result), answer)| {
                let status = answer.map(|applied| finished_status(build, result, &applied));
                (build, status)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let results = statuses
        .into_iter()
        .map(|(build, status)| match status {
            Ok(status) => ReportAnswer {
                id: build.0,
                status: Some(status.to_string()),
                http_status: None,
                error: None,
            },
            Err(refused) => {
                let (http_status, error) = ApiError::from(refused).into_parts();
                ReportAnswer {
                    id: build.0,
                    status: None,
                    http_status: Some(http_status.as_u16()),
                    error: Some(error),
                }
            }
        })
        .collect();
    Ok(axum::Json(BatchFinishAnswer { results }))
}
