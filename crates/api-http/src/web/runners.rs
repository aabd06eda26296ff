//! `/runners`: every runner, online or not, with its tags and the builds it holds; and the
//! queue: pending builds by why they wait, and the longest wait.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::web::format;
use crate::web::{PageError, PageResult, Viewer, fragment, render};
use askama::Template;
use axum::extract::State;
use chrono::Utc;
use lockstep_storage_pg::{list_runners, queue_figures};

pub(crate) struct RunnerRow {
    id: i64,
    name: String,
    online: bool,
    tags: String,
    contacted: Option<String>,
    builds: Vec<i64>,
}

/// The live part of the page.
pub(crate) struct RunnersLive {
    runners: Vec<RunnerRow>,
    queued: u64,
    no_runner: u64,
    oldest_wait: Option<String>,
}

#[derive(Template)]
#[template(path = "runners.html")]
struct RunnersPage {
    signed_in: bool,
    csrf: String,
    live: RunnersLive,
}

/// `GET /runners`.
#[utoipa::path(get, path = "/runners", tag = "dashboard", 
    responses(
        (status = 200, description = "the page", content_type = "text/html"),
        (status = 303, description = "no session: to `/login?next=` this page")
    ),
    security(("session" = [])))]
pub(crate) async fn page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let live = runners_live(&state).await?;
    Ok(render(&RunnersPage {
        signed_in: true,
        csrf: viewer.csrf,
        live,
    }))
}

#[derive(Template)]
#[template(path = "runners_live.html")]
struct RunnersFragment<'a> {
    live: &'a RunnersLive,
}

/// [`runners_live`], rendered for a live update.
pub(crate) async fn runners_fragment(state: &AppState) -> Result<String, PageError> {
    let live = runners_live(state).await?;
    Ok(fragment(&RunnersFragment { live: &live })?)
}

/// Reads the runners and the queue.
pub(crate) async fn runners_live(state: &AppState) -> Result<RunnersLive, PageError> {
    let online_since = state.online_since();
    let (runners, queue) = with_conn(state, move |conn, _| {
        Ok((
            list_runners(conn, online_since)?,
            queue_figures(conn, online_since)?,
        ))
    })
    .await?;
    let now = Utc::now();
    Ok(RunnersLive {
        runners: runners
            .into_iter()
            .map(|listing| RunnerRow {
                id: listing.runner.id.0,
                name: listing.runner.name,
                online: listing.online,
                tags: listing.runner.tags.join(", "),
                contacted: listing.contacted_at.map(|at| format::ago(at, now)),
                builds: listing.builds.iter().map(|b| b.0).collect(),
            })
            .collect(),
        queued: queue.queued,
        no_runner: queue.no_runner,
        oldest_wait: queue
            .oldest_queued_at
            .map(|at| format::duration((now - at).num_seconds())),
    })
}
