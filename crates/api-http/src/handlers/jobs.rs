//! `/jobs/*`: the runner protocol. Request a build (long-poll), stream its log, heartbeat,
//! and report the result. A runner touches only builds it holds.

use crate::app::AppState;
use crate::auth::Runner;
use crate::blocking::{TaskError, run_blocking, with_conn};
use crate::dto::{
    FinishAnswer, FinishRequest, HeartbeatAnswer, Job, JobRequest, JobResult, LogAppended,
    LogReport, RunnerFailure, WatchAnswer, WatchRequest,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query, body_error};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lockstep_domain::{BuildId, BuildResult, BuildStatus, FailureReason};
use lockstep_storage_pg::{
    AcquiredBuild, Applied, LogAccount, RunnerView, Transitions, WatchedBuild, watch_builds,
};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;
use utoipa::IntoParams;

/// The longest a job request may wait.
pub(crate) const MAX_WAIT_SECONDS: u32 = 30;
/// The most builds one watch may name: a worker's largest concurrency.
pub(crate) const MAX_WATCHED: usize = 256;
/// The largest log chunk one call may append.
pub(crate) const MAX_LOG_CHUNK: usize = 1024 * 1024;

/// Asks for a build whose tags are all among the runner's. Waits up to `wait_seconds` for one
/// to become pending; `204` when none did (or the server is shutting down).
#[utoipa::path(post, path = "/api/v1/jobs/request", tag = "runner protocol",
    request_body(content = JobRequest, description = "may be empty"),
    responses((status = 201, body = Job), (status = 204, description = "no build within the wait"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn request(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Json(body): Json<JobRequest>,
) -> ApiResult<Response> {
    let wait = wait_seconds(body.wait_seconds)?;
    let builds = wait_for_builds(&state, &runner, wait, 1).await?;
    match builds.into_iter().next() {
        Some(build) => {
            let job = Job::new(build, state.lease.as_secs(), state.max_artifact_bytes);
            Ok((StatusCode::CREATED, axum::Json(job)).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// A job request's `wait_seconds`: 0 when absent, at most [`MAX_WAIT_SECONDS`].
pub(crate) fn wait_seconds(requested: Option<u32>) -> ApiResult<u32> {
    let wait = requested.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::invalid(
            "wait_seconds",
            format!("`wait_seconds` must be between 0 and {MAX_WAIT_SECONDS}"),
        ));
    }
    Ok(wait)
}

/// Claims up to `limit` builds for the runner, waiting up to `wait` seconds for at least one;
/// empty when none came in time (or the server is shutting down).
pub(crate) async fn wait_for_builds(
    state: &AppState,
    runner: &RunnerView,
    wait: u32,
    limit: u32,
) -> ApiResult<Vec<AcquiredBuild>> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(wait));
    let _waiting = state.metrics.waiting();
    // Registered before the first claim, so that a build made pending from here on wakes it.
    let mut waiter = state.wake.waiter(&runner.tags);
    loop {
        waiter.look();
        let tags = runner.tags.clone();
        let (id, lease) = (runner.id, state.acknowledge_within);
        // On an error the waiter is dropped mid-claim, which lets every other waiter look again.
        let acquired = with_conn(state, move |conn, stats| {
            Transitions::new(conn, stats).acquire(id, &tags, limit, lease, Utc::now())
        })
        .await?;
        if !acquired.stale_pipelines.is_empty() {
            // The builds are acquired; the pipeline's move to `running` need not delay the
            // runner, so it happens beside the answer rather than before it.
            tokio::spawn(refresh(state.clone(), acquired.stale_pipelines));
        }
        if !acquired.builds.is_empty() {
            waiter.claimed();
            state.metrics.acquired_after(started.elapsed());
            return Ok(acquired.builds);
        }
        if waiter.found_nothing() == crate::wake::Next::LookAgain {
            continue;
        }
        tokio::select! {
            () = waiter.woken() => {}
            () = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            () = state.stopped() => return Ok(Vec::new()),
        }
    }
}

/// Brings pipelines up to date after a claim. A failure is only logged: the pipeline's next
/// transition derives its status again anyway.
async fn refresh(state: AppState, pipelines: Vec<lockstep_domain::PipelineId>) {
    let refreshed = run_blocking::<_, TaskError, _>(&state, move |conn, stats| {
        Transitions::new(conn, stats).refresh_pipelines(&pipelines, Utc::now())
    })
    .await;
    if let Err(error) = refreshed {
        tracing::warn!(%error, "pipeline status not refreshed after a claim");
    }
}

/// Waits until one of the runner's builds needs it: asked to stop (`canceling`), or no longer
/// held. Answers at once if one already does, else when one is canceled, or after
/// `wait_seconds` (or when the server shuts down) with every build as it stands. Changes
/// nothing: heartbeats still keep the leases.
#[utoipa::path(post, path = "/api/v1/jobs/watch", tag = "runner protocol",
    request_body = WatchRequest,
    responses((status = 200, body = WatchAnswer), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn watch(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Json(body): Json<WatchRequest>,
) -> ApiResult<axum::Json<WatchAnswer>> {
    let wait = wait_seconds(body.wait_seconds)?;
    if body.ids.is_empty() || body.ids.len() > MAX_WATCHED {
        return Err(ApiError::invalid(
            "ids",
            format!("`ids` must name 1 to {MAX_WATCHED} builds"),
        ));
    }
    let ids: Vec<BuildId> = body.ids.into_iter().map(BuildId).collect();
    let deadline = Instant::now() + Duration::from_secs(u64::from(wait));
    // Subscribed before the first read, so that a cancel committed after it is heard.
    let mut subscription = state.watches.subscribe(&ids);
    loop {
        let (ids, runner) = (ids.clone(), runner.id);
        let builds = with_conn(&state, move |conn, _| watch_builds(conn, runner, &ids)).await?;
        if builds.iter().any(WatchedBuild::needs_action) {
            return Ok(watched(builds));
        }
        tokio::select! {
            () = subscription.concerned() => {}
            () = tokio::time::sleep_until(deadline) => return Ok(watched(builds)),
            () = state.stopped() => return Ok(watched(builds)),
        }
    }
}

fn watched(builds: Vec<WatchedBuild>) -> axum::Json<WatchAnswer> {
    axum::Json(WatchAnswer {
        builds: builds.into_iter().map(Into::into).collect(),
    })
}

/// Extends the lease of a build the runner holds, and says whether to stop it.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/heartbeat", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = HeartbeatAnswer), (status = 401, body = ErrorBody),
        (status = 403, description = "another runner holds the build", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "the lease was lost: the build expired or finished; drop it", body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<HeartbeatAnswer>> {
    let lease = state.lease;
    let beat = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).heartbeat(BuildId(id), runner.id, lease, Utc::now())
    })
    .await?;
    Ok(axum::Json(HeartbeatAnswer {
        status: beat.status.to_string(),
        lease_expires_at: beat.lease_expires_at,
    }))
}

/// Reports a build's result. Reporting the same result again changes nothing and answers 200.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/finish", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id")),
    request_body = FinishRequest,
    responses((status = 200, body = FinishAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the build already finished with another result", body = ErrorBody),
        (status = 410, description = "the lease was lost before the report", body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn finish(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
    Json(body): Json<FinishRequest>,
) -> ApiResult<axum::Json<FinishAnswer>> {
    let result = build_result(body.result, body.failure_reason, body.exit_code)?;
    let log = body.log.as_ref().map(log_account).transpose()?;
    let build = BuildId(id);
    let applied = with_conn(&state, move |conn, stats| {
        let mut transitions = Transitions::new(conn, stats);
        match log {
            Some(log) => transitions.finish_with_log(build, runner.id, result, &log, Utc::now()),
            None => transitions.finish(build, runner.id, result, Utc::now()),
        }
    })
    .await?;
    Ok(axum::Json(FinishAnswer {
        id,
        status: finished_status(build, result, &applied).to_string(),
    }))
}

/// The build's status after its runner's accepted report. A report that changed nothing repeated
/// one already applied, so the build is where the report takes it. (A late report, after the
/// reaper failed the build, is refused by the transition itself with `LeaseLost`.)
pub(crate) fn finished_status(
    build: BuildId,
    result: BuildResult,
    applied: &Applied,
) -> BuildStatus {
    applied
        .changes
        .iter()
        .find(|change| change.id == build)
        .map_or(result.status(), |change| change.to)
}

/// A report's account of the log: its length and its SHA-256 read from hex.
fn log_account(report: &LogReport) -> Result<LogAccount, ApiError> {
    let mut sha256 = [0_u8; 32];
    hex::decode_to_slice(&report.sha256, &mut sha256)
        .map_err(|_| ApiError::invalid("log.sha256", "`log.sha256` must be 64 hex digits"))?;
    Ok(LogAccount {
        bytes: report.bytes,
        sha256,
    })
}

/// A runner's report as the domain sees it; `failure_reason` only goes with `failed`.
pub(crate) fn build_result(
    result: JobResult,
    failure_reason: Option<RunnerFailure>,
    exit_code: Option<i32>,
) -> Result<BuildResult, ApiError> {
    match (result, failure_reason) {
        (JobResult::Success, None) => Ok(BuildResult::Success),
        (JobResult::Canceled, None) => Ok(BuildResult::Canceled),
        (JobResult::Failed, reason) => Ok(BuildResult::Failed {
            reason: match reason.unwrap_or(RunnerFailure::ScriptFailure) {
                RunnerFailure::ScriptFailure => FailureReason::ScriptFailure,
                RunnerFailure::JobTimeout => FailureReason::JobTimeout,
                RunnerFailure::RunnerSystemFailure => FailureReason::RunnerSystemFailure,
            },
            exit_code,
        }),
        (_, Some(_)) => Err(ApiError::invalid(
            "failure_reason",
            "`failure_reason` is only for `result: failed`",
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AppendQuery {
    /// Where this chunk starts: the log's current end.
    offset: u64,
}

/// Appends raw bytes to the log of a build the runner holds. The chunk must start at the log's
/// end; otherwise 416 says where the end is, so a runner resumes without loss or duplication.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/log", tag = "runner protocol",
    params(("id" = i64, Path, description = "build id"), AppendQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "at most 1 MiB"),
    responses((status = 202, body = LogAppended), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 416, description = "`offset` is not the end; the body's `offset` (and header `X-Log-Offset`) is", body = ErrorBody)),
    security(("runner" = [])))]
pub(crate) async fn append(
    State(state): State<AppState>,
    Runner(runner): Runner,
    Path(id): Path<i64>,
    Query(query): Query<AppendQuery>,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<LogAppended>)> {
    let data = Bytes::from_request(request, &())
        .await
        .map_err(|r| body_error(&r))?;
    let lease = state.lease;
    let end = with_conn(&state, move |conn, stats| {
        Transitions::new(conn, stats).append_log(
            BuildId(id),
            runner.id,
            query.offset,
            &data,
            lease,
            Utc::now(),
        )
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(LogAppended { offset: end }),
    ))
}
