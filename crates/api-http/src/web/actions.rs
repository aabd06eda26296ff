//! The dashboard's buttons: each a form POST carrying the session's CSRF token, running the same
//! transition as the JSON API, then sending the browser back to the page it came from.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::web::session::CsrfForm;
use crate::web::{PageError, PageId, PageResult, Viewer, see_other};
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use chrono::Utc;
use lockstep_domain::{BuildId, PipelineId};
use lockstep_storage_pg::{StorageError, Transitions};

/// Checks the form's CSRF token before anything else is read or done.
fn checked(viewer: &Viewer, form: Result<Form<CsrfForm>, FormRejection>) -> Result<(), PageError> {
    let csrf = form.map(|Form(form)| form.csrf).unwrap_or_default();
    viewer.check(&csrf)
}

/// Checks the form, runs `transition`, and sends the browser to `back`.
async fn act<T: Send + 'static>(
    state: &AppState,
    viewer: &Viewer,
    form: Result<Form<CsrfForm>, FormRejection>,
    back: String,
    transition: impl FnOnce(&mut Transitions<'_>) -> Result<T, StorageError> + Send + 'static,
) -> PageResult {
    checked(viewer, form)?;
    with_conn(state, move |conn, stats| {
        transition(&mut Transitions::new(conn, stats))
    })
    .await?;
    Ok(see_other(&back))
}

/// `POST /pipelines/{id}/cancel`.
#[utoipa::path(post, path = "/pipelines/{id}/cancel", tag = "dashboard",
    params(("id" = i64, Path, description = "pipeline id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "done: back to the pipeline"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such pipeline", content_type = "text/html"),
        (status = 409, description = "the transition is refused in the current status", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn cancel_pipeline(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    act(
        &state,
        &viewer,
        form,
        format!("/pipelines/{id}"),
        move |tx| tx.cancel_pipeline(PipelineId(id), Utc::now()),
    )
    .await
}

/// `POST /pipelines/{id}/retry`.
#[utoipa::path(post, path = "/pipelines/{id}/retry", tag = "dashboard",
    params(("id" = i64, Path, description = "pipeline id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "done: back to the pipeline"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such pipeline", content_type = "text/html"),
        (status = 409, description = "the transition is refused in the current status", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn retry_pipeline(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    act(
        &state,
        &viewer,
        form,
        format!("/pipelines/{id}"),
        move |tx| tx.retry_pipeline(PipelineId(id), Utc::now()),
    )
    .await
}

/// `POST /builds/{id}/cancel`.
#[utoipa::path(post, path = "/builds/{id}/cancel", tag = "dashboard",
    params(("id" = i64, Path, description = "build id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "done: back to the build"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such build", content_type = "text/html"),
        (status = 409, description = "the transition is refused in the current status", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn cancel_build(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    act(&state, &viewer, form, format!("/builds/{id}"), move |tx| {
        tx.cancel_build(BuildId(id), Utc::now())
    })
    .await
}

/// `POST /builds/{id}/play`.
#[utoipa::path(post, path = "/builds/{id}/play", tag = "dashboard",
    params(("id" = i64, Path, description = "build id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "done: back to the build"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such build", content_type = "text/html"),
        (status = 409, description = "the transition is refused in the current status", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn play_build(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    act(&state, &viewer, form, format!("/builds/{id}"), move |tx| {
        tx.play_build(BuildId(id), Utc::now())
    })
    .await
}

/// `POST /builds/{id}/retry`: the browser goes on to the new attempt.
#[utoipa::path(post, path = "/builds/{id}/retry", tag = "dashboard",
    params(("id" = i64, Path, description = "build id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token, as the page's form sends it"),
    responses(
        (status = 303, description = "done: back to the new attempt"),
        (status = 400, description = "the id is not a number", content_type = "text/html"),
        (status = 403, description = "the CSRF token is missing or not this session's; nothing changed", content_type = "text/html"),
        (status = 404, description = "no such build", content_type = "text/html"),
        (status = 409, description = "the transition is refused in the current status", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn retry_build(
    State(state): State<AppState>,
    viewer: Viewer,
    PageId(id): PageId,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    checked(&viewer, form)?;
    let new = with_conn(&state, move |conn, stats| {
        let applied = Transitions::new(conn, stats).retry_build(BuildId(id), Utc::now())?;
        applied
            .new_builds
            .iter()
            .find(|(copied, _)| *copied == BuildId(id))
            .map(|(_, new)| *new)
            .ok_or_else(|| {
                StorageError::Corrupt(format!("retrying build {id} made no new attempt"))
            })
    })
    .await?;
    Ok(see_other(&format!("/builds/{}", new.0)))
}
