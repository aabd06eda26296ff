//! The one router: every route, its body limit, the fallbacks, and the request log.

use crate::app::AppState;
use crate::error::ApiError;
use crate::handlers::{
    archives, artifacts, batch, builds, environments, health, jobs, pipelines, projects,
    resource_groups, runners,
};
use crate::openapi;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use std::time::Instant;

/// The largest JSON body: a pipeline of 2,000 jobs with long scripts fits.
pub(crate) const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/projects", post(projects::create).get(projects::list))
        .route("/projects/{id}", patch(projects::update))
        .route(
            "/projects/{id}/pipelines",
            post(pipelines::create).get(pipelines::list),
        )
        .route("/projects/{id}/lint", post(pipelines::lint))
        .route("/projects/{id}/environments", get(environments::list))
        .route("/projects/{id}/resource_groups", get(resource_groups::list))
        .route(
            "/projects/{id}/resource_groups/{name}",
            get(resource_groups::get).put(resource_groups::put),
        )
        .route("/pipelines/{id}", get(pipelines::get))
        .route("/pipelines/{id}/cancel", post(pipelines::cancel))
        .route("/pipelines/{id}/retry", post(pipelines::retry))
        .route("/builds/{id}", get(builds::get))
        .route("/builds/{id}/cancel", post(builds::cancel))
        .route("/builds/{id}/retry", post(builds::retry))
        .route("/builds/{id}/play", post(builds::play))
        .route("/builds/{id}/log", get(builds::log))
        .route(
            "/builds/{id}/artifacts",
            get(artifacts::list).delete(artifacts::delete),
        )
        .route("/builds/{id}/artifacts/download", get(artifacts::download))
        .route("/builds/{id}/artifacts/file/{*path}", get(artifacts::file))
        .route(
            "/environments/{id}/deployments",
            get(environments::deployments),
        )
        .route("/runners", post(runners::create).get(runners::list))
        .route("/runners/{id}", delete(runners::delete))
        .route("/jobs/request", post(jobs::request))
        .route("/jobs/batch/request", post(batch::request))
        .route("/jobs/batch/finish", post(batch::finish))
        .route("/jobs/watch", post(jobs::watch))
        .route("/jobs/{id}/heartbeat", post(jobs::heartbeat))
        .route("/jobs/{id}/finish", post(jobs::finish))
        .route(
            "/jobs/{id}/log",
            post(jobs::append).layer(DefaultBodyLimit::max(jobs::MAX_LOG_CHUNK)),
        )
        // Archives stream through their own size limit (LOCKSTEP_MAX_ARTIFACT_BYTES).
        .route(
            "/jobs/{id}/artifacts",
            put(archives::upload_artifacts).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/jobs/{id}/artifacts/{build_id}",
            get(archives::fetch_artifacts),
        )
        .route(
            "/jobs/{id}/cache",
            get(archives::fetch_cache)
                .put(archives::upload_cache)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/openapi.json", get(openapi::serve))
        .route(
            "/pipeline-file.schema.json",
            get(openapi::serve_pipeline_schema),
        );
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::web::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Logs one line per request and records it in the metrics, labelled by route pattern (never
/// by raw path, which would give every id its own series).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request(method, &route, status, latency);
    tracing::info!(
        method,
        route,
        status,
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}
