//! `/builds/{id}`: a build's facts and buttons, its artifacts, and its log, followed live;
//! `/builds/{id}/raw`, the whole log as plain text.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::web::artifacts::{self, ArtifactsSection};
use crate::web::format::{self, Badge, badge};
use crate::web::pipeline::{Actions, waiting_text};
use crate::web::{PageError, PageId, PageResult, Viewer, render};
use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::IntoResponse;
use chrono::Utc;
use lockstep_domain::BuildId;
use lockstep_storage_pg::{build_waiting, load_build, read_log};

/// How much of the end of a log the page shows at first: enough to read what went wrong,
/// little enough that a 20 MB log opens at once. The rest is one click away, raw.
pub(crate) const LOG_TAIL: u64 = 512 * 1024;
/// How much log one raw-log read takes from the database.
const RAW_READ: usize = 1024 * 1024;

/// The live part of `/builds/{id}`: its facts and buttons.
pub(crate) struct BuildLive {
    pub(crate) id: i64,
    pub(crate) pipeline_id: i64,
    pub(crate) name: String,
    pub(crate) stage: String,
    pub(crate) status: Badge,
    pub(crate) attempt: u32,
    pub(crate) retry_of: Option<i64>,
    pub(crate) retried_by: Option<i64>,
    pub(crate) runner: Option<i64>,
    pub(crate) ago: String,
    pub(crate) created_at: String,
    pub(crate) duration: Option<String>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) failure_reason: Option<String>,
    pub(crate) waiting: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) deployment: Option<Badge>,
    pub(crate) resource_group: Option<String>,
    pub(crate) tags: String,
    pub(crate) allow_failure: bool,
    pub(crate) actions: Actions,
    pub(crate) csrf: String,
}

#[derive(Template)]
#[template(path = "build.html")]
struct BuildPage {
    signed_in: bool,
    csrf: String,
    live: BuildLive,
    /// What the build kept, if anything. Read once with the page, not live: artifacts arrive
    /// as the build ends, and a reload shows them.
    artifacts: Option<ArtifactsSection>,
    /// Where the page's log starts: the last [`LOG_TAIL`] bytes.
    start: u64,
    log_size: String,
}

/// `GET /builds/{id}`.
#[utoipa::path(get, path = "/builds/{id}", tag = "dashboard", params(("id" = i64, Path, description = "build id")), 
    responses(
        (status = 200, description = "the page", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such build", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
) -> PageResult {
    let live = build_live(&state, BuildId(id), viewer.csrf.clone()).await?;
    let artifacts = artifacts::section(&state, BuildId(id)).await?;
    let end = with_conn(&state, move |conn, _| read_log(conn, BuildId(id), 0, 0))
        .await?
        .end;
    Ok(render(&BuildPage {
        signed_in: true,
        csrf: viewer.csrf,
        live,
        artifacts,
        start: end.saturating_sub(LOG_TAIL),
        log_size: format::size(end),
    }))
}

/// Reads build `id` and says it as the page shows it.
pub(crate) async fn build_live(
    state: &AppState,
    id: BuildId,
    csrf: String,
) -> Result<BuildLive, PageError> {
    let online_since = state.online_since();
    let (build, waiting) = with_conn(state, move |conn, _| {
        let build = load_build(conn, id)?;
        let waiting = build_waiting(conn, &build, online_since)?;
        Ok((build, waiting))
    })
    .await?;
    let now = Utc::now();
    Ok(BuildLive {
        id: build.id.0,
        pipeline_id: build.pipeline_id.0,
        name: build.name.clone(),
        stage: build.stage.clone(),
        status: badge(build.status.as_str()),
        attempt: build.attempt,
        retry_of: build.retry_of.map(|b| b.0),
        retried_by: build.retried_by.map(|b| b.0),
        runner: build.runner_id.map(|r| r.0),
        ago: format::ago(build.created_at, now),
        created_at: format::timestamp(build.created_at),
        duration: format::elapsed(build.started_at, build.finished_at, now),
        exit_code: build.exit_code,
        failure_reason: build.failure_reason.map(|r| r.as_str().replace('_', " ")),
        waiting: waiting.as_ref().map(waiting_text),
        environment: build.environment.clone(),
        deployment: build.deployment.as_ref().map(|d| badge(d.status.as_str())),
        resource_group: build.resource_group.clone(),
        tags: build.tags.join(", "),
        allow_failure: !matches!(build.allow_failure, lockstep_domain::AllowFailure::No),
        actions: Actions::of_build(build.status),
        csrf,
    })
}

#[derive(Template)]
#[template(path = "build_live.html")]
pub(crate) struct BuildFragment<'a> {
    pub(crate) live: &'a BuildLive,
}

/// `GET /builds/{id}/raw`: the whole log, as the runner sent it.
#[utoipa::path(get, path = "/builds/{id}/raw", tag = "dashboard", params(("id" = i64, Path, description = "build id")), 
    responses(
        (status = 200, description = "the whole log", content_type = "text/plain"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such build", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn raw(
    State(state): State<AppState>,
    _: Viewer,
    PageId(id): PageId,
) -> PageResult {
    // The log is read in slices and sent as one body; a log is at most 64 MiB.
    let log = with_conn(&state, move |conn, _| {
        let mut log = Vec::new();
        loop {
            let offset = u64::try_from(log.len()).unwrap_or(u64::MAX);
            let slice = read_log(conn, BuildId(id), offset, RAW_READ)?;
            let done = slice.data.is_empty() || slice.next_offset >= slice.end;
            log.extend_from_slice(&slice.data);
            if done {
                return Ok(log);
            }
        }
    })
    .await?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("inline; filename=\"build-{id}.log\""),
            ),
        ],
        Body::from(log),
    )
        .into_response())
}
