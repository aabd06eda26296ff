//! `/jobs/batch/*`: the runner protocol for many builds per call. A runner with free slots asks
//! for up to `max_jobs` builds in one request, and reports several results in one; each build
//! keeps exactly the semantics of the single-build calls in `jobs.rs`, which stay as they are.

use crate::app::AppState;
use crate::auth::Runner;
use crate::blocking::with_conn;
use crate::dto::{BatchFinishAnswer, BatchFinishRequest, ReportAnswer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::handlers::jobs::{build_result, finished_status};
use axum::extract::State;
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::Transitions;

/// The most builds one batch call may ask for or report.
pub(crate) const MAX_BATCH: usize = 100;

/// Reports several results in one transaction. Each report is answered as
/// `POST /jobs/{id}/finish` would answer it alone (a refused one changes nothing and does not
/// stop the others); reports of one pipeline apply in the order given.
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
            .map(|((build, _), answer)| (*build, finished_status(conn, *build, answer)))
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
