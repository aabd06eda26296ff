//! `/projects/{id}/environments`: each environment with what is deployed there now and before,
//! and the project's resource groups with the builds holding and waiting for them.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::web::format::{self, Badge, badge};
use crate::web::{PageError, PageId, PageResult, Viewer, fragment, render};
use askama::Template;
use axum::extract::State;
use chrono::Utc;
use lockstep_domain::{DeploymentStatus, ProjectId};
use lockstep_storage_pg::{
    DeploymentSummary, list_deployments, list_environments, list_resource_groups, load_project,
};

/// How many past deployments each environment lists.
const HISTORY: u32 = 10;

pub(crate) struct DeploymentRow {
    id: i64,
    build_id: i64,
    pipeline_id: i64,
    status: Badge,
    ago: String,
    created_at: String,
}

pub(crate) struct EnvironmentCard {
    name: String,
    /// The newest successful deployment: what runs there now.
    current: Option<DeploymentRow>,
    history: Vec<DeploymentRow>,
}

pub(crate) struct GroupCard {
    name: String,
    process_mode: &'static str,
    limit: u32,
    holders: Vec<i64>,
    waiting: Vec<i64>,
}

/// The live part of the page.
pub(crate) struct EnvironmentsLive {
    environments: Vec<EnvironmentCard>,
    groups: Vec<GroupCard>,
}

#[derive(Template)]
#[template(path = "environments.html")]
struct EnvironmentsPage {
    signed_in: bool,
    csrf: String,
    id: i64,
    name: String,
    live: EnvironmentsLive,
}

/// `GET /projects/{id}/environments`.
#[utoipa::path(get, path = "/projects/{id}/environments", tag = "dashboard", params(("id" = i64, Path, description = "project id")), 
    responses(
        (status = 200, description = "the page", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such project", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
) -> PageResult {
    let project = with_conn(&state, move |conn, _| load_project(conn, ProjectId(id))).await?;
    let live = environments_live(&state, ProjectId(id)).await?;
    Ok(render(&EnvironmentsPage {
        signed_in: true,
        csrf: viewer.csrf,
        id,
        name: project.name,
        live,
    }))
}

#[derive(Template)]
#[template(path = "environments_live.html")]
struct EnvironmentsFragment<'a> {
    live: &'a EnvironmentsLive,
}

/// [`environments_live`], rendered for a live update.
pub(crate) async fn environments_fragment(
    state: &AppState,
    id: ProjectId,
) -> Result<String, PageError> {
    let live = environments_live(state, id).await?;
    Ok(fragment(&EnvironmentsFragment { live: &live })?)
}

/// Reads project `id`'s environments and resource groups.
pub(crate) async fn environments_live(
    state: &AppState,
    id: ProjectId,
) -> Result<EnvironmentsLive, PageError> {
    let (environments, groups) = with_conn(state, move |conn, _| {
        let mut cards = Vec::new();
        for environment in list_environments(conn, id)? {
            let deployments = list_deployments(conn, environment.id, HISTORY)?;
            cards.push((environment.name, deployments));
        }
        Ok((cards, list_resource_groups(conn, id)?))
    })
    .await?;
    let now = Utc::now();
    let row = |d: &DeploymentSummary| DeploymentRow {
        id: d.id.0,
        build_id: d.build_id.0,
        pipeline_id: d.pipeline_id.0,
        status: badge(d.status.as_str()),
        ago: format::ago(d.created_at, now),
        created_at: format::timestamp(d.created_at),
    };
    Ok(EnvironmentsLive {
        environments: environments
            .into_iter()
            .map(|(name, deployments)| EnvironmentCard {
                name,
                current: deployments
                    .iter()
                    .find(|d| d.status == DeploymentStatus::Success)
                    .map(row),
                history: deployments.iter().map(row).collect(),
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|g| GroupCard {
                name: g.name,
                process_mode: g.process_mode.as_str(),
                limit: g.limit,
                holders: g.holders.iter().map(|b| b.0).collect(),
                waiting: g.waiting.iter().map(|b| b.0).collect(),
            })
            .collect(),
    })
}
