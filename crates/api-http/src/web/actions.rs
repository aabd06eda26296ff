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
