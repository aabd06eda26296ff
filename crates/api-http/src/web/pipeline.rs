//! `/pipelines/{id}`: the pipeline's stages as columns and its jobs as cards, with the `needs`
//! edges drawn between them, and the buttons to cancel, retry and play.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::web::format::{self, Badge, badge};
use crate::web::{PageError, PageId, PageResult, Viewer, fragment, render};
use askama::Template;
use axum::extract::State;
use chrono::{DateTime, Utc};
use lockstep_domain::{BuildId, BuildStatus, PipelineId, PipelineStatus};
use lockstep_storage_pg::{
    BuildView, Waiting, artifacts_of, load_pipeline, load_project, pipeline_waiting,
};
use std::collections::{HashMap, HashSet};

/// A job's latest attempt, as a card of the graph.
#[derive(Debug, Clone)]
pub(crate) struct JobCard {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) status: Badge,
    pub(crate) duration: Option<String>,
    pub(crate) attempt: u32,
    pub(crate) runner: Option<i64>,
    /// The names of the jobs it needs, as JSON, for the script that draws the edges.
    pub(crate) needs: String,
    pub(crate) waiting: Option<String>,
    /// The build kept artifacts (its page lists them).
    pub(crate) artifacts: bool,
    pub(crate) actions: Actions,
}

/// Which buttons a build or pipeline offers in its status.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Actions {
    pub(crate) cancel: bool,
    pub(crate) retry: bool,
    pub(crate) play: bool,
}

impl Actions {
    pub(crate) fn of_build(status: BuildStatus) -> Self {
        Self {
            cancel: matches!(
                status,
                BuildStatus::Created
                    | BuildStatus::Pending
                    | BuildStatus::Running
                    | BuildStatus::WaitingForResource
            ),
            retry: matches!(
                status,
                BuildStatus::Success | BuildStatus::Failed | BuildStatus::Canceled
            ),
            play: status == BuildStatus::Manual,
        }
    }

    fn of_pipeline(status: PipelineStatus) -> Self {
        Self {
            cancel: matches!(
                status,
                PipelineStatus::Created | PipelineStatus::Pending | PipelineStatus::Running
            ),
            retry: matches!(status, PipelineStatus::Failed | PipelineStatus::Canceled),
            play: false,
        }
    }
}

pub(crate) struct StageColumn {
    pub(crate) name: String,
    pub(crate) jobs: Vec<JobCard>,
}

/// The live part of `/pipelines/{id}`: its facts, buttons and graph.
pub(crate) struct PipelineLive {
    pub(crate) id: i64,
    pub(crate) project_id: i64,
    pub(crate) project: String,
    pub(crate) status: Badge,
    pub(crate) git_ref: String,
    pub(crate) sha: String,
    pub(crate) ago: String,
    pub(crate) created_at: String,
    pub(crate) duration: Option<String>,
    pub(crate) auto_canceled_by: Option<i64>,
    pub(crate) actions: Actions,
    pub(crate) stages: Vec<StageColumn>,
    pub(crate) csrf: String,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct PipelinePage {
    signed_in: bool,
    csrf: String,
    live: PipelineLive,
}

/// `GET /pipelines/{id}`.
#[utoipa::path(get, path = "/pipelines/{id}", tag = "dashboard", params(("id" = i64, Path, description = "pipeline id")), 
    responses(
        (status = 200, description = "the page", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 404, description = "no such pipeline", content_type = "text/html")
    ),
    security(("session" = [])))]
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
) -> PageResult {
    let live = pipeline_live(&state, PipelineId(id), viewer.csrf.clone()).await?;
    Ok(render(&PipelinePage {
        signed_in: true,
        csrf: viewer.csrf,
        live,
    }))
}

/// Reads pipeline `id` and lays it out.
pub(crate) async fn pipeline_live(
    state: &AppState,
    id: PipelineId,
    csrf: String,
) -> Result<PipelineLive, PageError> {
    let online_since = state.online_since();
    let (pipeline, waiting, project, kept) = with_conn(state, move |conn, _| {
        let pipeline = load_pipeline(conn, id)?;
        let waiting = pipeline_waiting(
            conn,
            pipeline.summary.project_id,
            &pipeline.builds,
            online_since,
        )?;
        let project = load_project(conn, pipeline.summary.project_id)?;
        // One query for the whole page, not one per card.
        let ids: Vec<BuildId> = pipeline.builds.iter().map(|b| b.id).collect();
        let kept: HashSet<BuildId> = artifacts_of(conn, &ids)?
            .into_iter()
            .map(|a| a.build_id)
            .collect();
        Ok((pipeline, waiting, project.name, kept))
    })
    .await?;
    let now = Utc::now();
    let summary = &pipeline.summary;
    Ok(PipelineLive {
        id: summary.id.0,
        project_id: summary.project_id.0,
        project,
        status: badge(summary.status.as_str()),
        git_ref: summary.git_ref.clone(),
        sha: format::short_sha(summary.sha.as_deref()),
        ago: format::ago(summary.created_at, now),
        created_at: format::timestamp(summary.created_at),
        duration: format::elapsed(Some(summary.created_at), summary.finished_at, now),
        auto_canceled_by: summary.auto_canceled_by.map(|p| p.0),
        actions: Actions::of_pipeline(summary.status),
        stages: stages(&pipeline.builds, &waiting, &kept, now),
        csrf,
    })
}

#[derive(Template)]
#[template(path = "pipeline_live.html")]
struct PipelineFragment<'a> {
    live: &'a PipelineLive,
}

/// [`pipeline_live`], rendered for a live update.
pub(crate) async fn pipeline_fragment(
    state: &AppState,
    id: PipelineId,
    csrf: String,
) -> Result<String, PageError> {
    let live = pipeline_live(state, id, csrf).await?;
    Ok(fragment(&PipelineFragment { live: &live })?)
}

/// Each stage in order with the latest attempt of each of its jobs, in job order.
fn stages(
    builds: &[BuildView],
    waiting: &HashMap<BuildId, Waiting>,
    kept: &HashSet<BuildId>,
    now: DateTime<Utc>,
) -> Vec<StageColumn> {
    let mut latest: Vec<&BuildView> = Vec::new();
    for build in builds {
        match latest.iter_mut().find(|b| b.name == build.name) {
            Some(slot) if slot.attempt < build.attempt => *slot = build,
            Some(_) => {}
            None => latest.push(build),
        }
    }
    let mut columns: Vec<StageColumn> = Vec::new();
    for build in latest {
        let mut card = card(build, waiting.get(&build.id), now);
        card.artifacts = kept.contains(&build.id);
        match columns.iter_mut().find(|c| c.name == build.stage) {
            Some(column) => column.jobs.push(card),
            None => columns.push(StageColumn {
                name: build.stage.clone(),
                jobs: vec![card],
            }),
        }
    }
    columns
}

fn card(build: &BuildView, waiting: Option<&Waiting>, now: DateTime<Utc>) -> JobCard {
    JobCard {
        id: build.id.0,
        name: build.name.clone(),
        status: badge(build.status.as_str()),
        duration: format::elapsed(build.started_at, build.finished_at, now),
        attempt: build.attempt,
        runner: build.runner_id.map(|r| r.0),
        needs: serde_json::to_string(build.needs.as_deref().unwrap_or_default())
            .unwrap_or_else(|_| "[]".to_owned()),
        waiting: waiting.map(waiting_text),
        artifacts: false,
        actions: Actions::of_build(build.status),
    }
}

/// Why a build waits, in a sentence.
pub(crate) fn waiting_text(waiting: &Waiting) -> String {
    match waiting {
        Waiting::Needs(names) => format!("waits for {}", names.join(", ")),
        Waiting::Manual => "waits for someone to play it".to_owned(),
        Waiting::ResourceGroup { name, position } => {
            format!("waits for resource group {name} (number {position} in line)")
        }
        Waiting::NoRunner { tags } if tags.is_empty() => "no runner is online".to_owned(),
        Waiting::NoRunner { tags } => {
            format!("no online runner has the tags {}", tags.join(", "))
        }
        Waiting::Queued { ahead: 0 } => "next in line for a runner".to_owned(),
        Waiting::Queued { ahead } => format!("{ahead} builds ahead in the queue"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Actions, waiting_text};
    use lockstep_domain::BuildStatus;
    use lockstep_storage_pg::Waiting;

    #[test]
    fn a_build_offers_the_buttons_its_status_allows() {
        for (status, cancel, retry, play) in [
            (BuildStatus::Pending, true, false, false),
            (BuildStatus::Running, true, false, false),
            (BuildStatus::Canceling, false, false, false),
            (BuildStatus::Failed, false, true, false),
            (BuildStatus::Success, false, true, false),
            (BuildStatus::Manual, false, false, true),
            (BuildStatus::Skipped, false, false, false),
        ] {
            let actions = Actions::of_build(status);
            assert_eq!(
                (actions.cancel, actions.retry, actions.play),
                (cancel, retry, play),
                "{status}"
            );
        }
    }

    #[test]
    fn every_reason_to_wait_reads_as_a_sentence() {
        for (waiting, text) in [
            (Waiting::Needs(vec!["build".into()]), "waits for build"),
            (Waiting::Manual, "waits for someone to play it"),
            (
                Waiting::ResourceGroup {
                    name: "production".into(),
                    position: 2,
                },
                "waits for resource group production (number 2 in line)",
            ),
            (Waiting::NoRunner { tags: vec![] }, "no runner is online"),
            (
                Waiting::NoRunner {
                    tags: vec!["linux".into()],
                },
                "no online runner has the tags linux",
            ),
            (Waiting::Queued { ahead: 0 }, "next in line for a runner"),
            (Waiting::Queued { ahead: 3 }, "3 builds ahead in the queue"),
        ] {
            assert_eq!(waiting_text(&waiting), text);
        }
    }
}
