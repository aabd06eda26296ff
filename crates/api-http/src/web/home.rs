//! `/`, the projects with their latest pipelines, and `/projects/{id}`, one project's pipelines
//! with filters and paging.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::error::ApiError;
use crate::handlers::pipelines::{ListQuery, page};
use crate::web::format::{self, Badge, badge};
use crate::web::{PageError, PageId, PageResult, Viewer, fragment, render};
use askama::Template;
use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use lockstep_domain::{PipelineStatus, ProjectId};
use lockstep_storage_pg::{
    PipelineQuery, PipelineSummary, list_pipelines, list_projects, load_project,
};

/// How many pipelines `/` shows per project.
const LATEST: u32 = 5;
/// How many projects `/` shows.
const MAX_PROJECTS: usize = 100;

/// A pipeline as a row of a list.
#[derive(Debug, Clone)]
pub(crate) struct PipelineRow {
    pub(crate) id: i64,
    pub(crate) status: Badge,
    pub(crate) git_ref: String,
    pub(crate) sha: String,
    pub(crate) duration: Option<String>,
    pub(crate) ago: String,
    pub(crate) created_at: String,
    pub(crate) auto_canceled_by: Option<i64>,
}

impl PipelineRow {
    pub(crate) fn new(pipeline: &PipelineSummary, now: DateTime<Utc>) -> Self {
        Self {
            id: pipeline.id.0,
            status: badge(pipeline.status.as_str()),
            git_ref: pipeline.git_ref.clone(),
            sha: format::short_sha(pipeline.sha.as_deref()),
            duration: format::elapsed(Some(pipeline.created_at), pipeline.finished_at, now),
            ago: format::ago(pipeline.created_at, now),
            created_at: format::timestamp(pipeline.created_at),
            auto_canceled_by: pipeline.auto_canceled_by.map(|p| p.0),
        }
    }
}

struct ProjectCard {
    id: i64,
    name: String,
    pipelines: Vec<PipelineRow>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    signed_in: bool,
    csrf: String,
    projects: Vec<ProjectCard>,
}

/// `GET /`: every project with its latest pipelines.
#[utoipa::path(get, path = "/", tag = "dashboard", 
    responses(
        (status = 200, description = "the projects and their latest pipelines", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page")
    ),
    security(("session" = [])))]
pub(crate) async fn index(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let projects = with_conn(&state, |conn, _| {
        let now = Utc::now();
        let latest = PipelineQuery {
            status: None,
            git_ref: None,
            before: None,
            limit: LATEST,
        };
        let mut cards = Vec::new();
        for project in list_projects(conn)?.into_iter().take(MAX_PROJECTS) {
            let pipelines = list_pipelines(conn, project.id, &latest)?;
            cards.push(ProjectCard {
                id: project.id.0,
                name: project.name,
                pipelines: pipelines.iter().map(|p| PipelineRow::new(p, now)).collect(),
            });
        }
        Ok(cards)
    })
    .await?;
    Ok(render(&HomePage {
        signed_in: true,
        csrf: viewer.csrf,
        projects,
    }))
}

/// The rows of one page of a project's pipelines: the live part of `/projects/{id}`.
pub(crate) struct ProjectRows {
    rows: Vec<PipelineRow>,
    /// The next page's URL, when this one is full.
    older: Option<String>,
    /// The first page's URL, when this is not it.
    newest: Option<String>,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    signed_in: bool,
    csrf: String,
    id: i64,
    name: String,
    statuses: Vec<&'static str>,
    status: String,
    git_ref: String,
    live: String,
    list: ProjectRows,
}

/// Parses a page's query string, or answers 400 naming the field.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(
    raw: Option<&str>,
) -> Result<T, PageError> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|error| {
        PageError::Failed(ApiError::bad_request(
            None,
            format!("bad query string: {error}"),
        ))
    })
}

/// `GET /projects/{id}?status=&ref=&before=`: a project's pipelines, newest first.
#[utoipa::path(get, path = "/projects/{id}", tag = "dashboard", params(("id" = i64, Path, description = "project id")), 
    responses(
        (status = 200, description = "the project's pipelines; query `status`, `ref`, `before`", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such project", content_type = "text/html"),
        (status = 400, description = "an unknown `status` or a `before` that is not a number", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn project(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let mut query: ListQuery = parse_query(raw.as_deref())?;
    // An empty field of the filter form means "any".
    query.status = query.status.filter(|s| !s.is_empty());
    query.git_ref = query.git_ref.filter(|s| !s.is_empty());
    let project = with_conn(&state, move |conn, _| load_project(conn, ProjectId(id))).await?;
    let list = project_rows(&state, id, query.clone()).await?;
    Ok(render(&ProjectPage {
        signed_in: true,
        csrf: viewer.csrf,
        id,
        name: project.name,
        statuses: PipelineStatus::ALL.iter().map(|s| s.as_str()).collect(),
        status: query.status.clone().unwrap_or_default(),
        git_ref: query.git_ref.clone().unwrap_or_default(),
        live: format!("/projects/{id}/live?{}", filter_query(&query, query.before)),
        list,
    }))
}

/// One page of project `id`'s pipelines, as `query` asks.
pub(crate) async fn project_rows(
    state: &AppState,
    id: i64,
    query: ListQuery,
) -> Result<ProjectRows, PageError> {
    let filter = query.clone();
    let page = page(query)?;
    let limit = page.limit as usize;
    let pipelines = with_conn(state, move |conn, _| {
        list_pipelines(conn, ProjectId(id), &page)
    })
    .await?;
    let now = Utc::now();
    let rows: Vec<PipelineRow> = pipelines.iter().map(|p| PipelineRow::new(p, now)).collect();
    let older = (rows.len() == limit)
        .then(|| {
            rows.last()
                .map(|last| format!("/projects/{id}?{}", filter_query(&filter, Some(last.id))))
        })
        .flatten();
    let newest = filter
        .before
        .map(|_| format!("/projects/{id}?{}", filter_query(&filter, None)));
    Ok(ProjectRows {
        rows,
        older,
        newest,
    })
}

#[derive(Template)]
#[template(path = "project_rows.html")]
struct ProjectFragment<'a> {
    list: &'a ProjectRows,
}

/// [`project_rows`], rendered for a live update.
pub(crate) async fn project_fragment(
    state: &AppState,
    id: i64,
    query: ListQuery,
) -> Result<String, PageError> {
    let list = project_rows(state, id, query).await?;
    Ok(fragment(&ProjectFragment { list: &list })?)
}

/// The filter of `query`, starting before pipeline `before`, as a query string.
fn filter_query(query: &ListQuery, before: Option<i64>) -> String {
    let before = before.map(|id| id.to_string());
    let mut pairs = Vec::new();
    if let Some(status) = &query.status {
        pairs.push(("status", status.as_str()));
    }
    if let Some(git_ref) = &query.git_ref {
        pairs.push(("ref", git_ref.as_str()));
    }
    if let Some(before) = &before {
        pairs.push(("before", before.as_str()));
    }
    format::query(&pairs)
}
