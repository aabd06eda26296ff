//! Liveness, readiness and metrics: unauthenticated, for orchestrators and Prometheus.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::dto::Health;
use crate::error::{ApiError, ErrorBody};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use lockstep_storage_pg::{count_pending_builds, ping, queue_figures};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    with_conn(&state, |conn, _| ping(conn)).await?;
    Ok(axum::Json(Health { status: "ok" }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // A metrics scrape must work while the database is down: the gauge is left out then.
    let online_since = state.online_since();
    let pending = with_conn(&state, move |conn, _| {
        Ok((
            count_pending_builds(conn)?,
            queue_figures(conn, online_since)?,
            lockstep_storage_pg::stored_figures(conn)?,
        ))
    })
    .await
    .ok();
    let text = state.metrics.render(&state.stats.snapshot(), pending);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
