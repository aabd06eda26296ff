//! With the database gone, the server answers 503 in the error shape, and stays alive.

use crate::support::{ADMIN, settings};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use diesel::pg::PgConnection;
use diesel::r2d2::ConnectionManager;
use http_body_util::BodyExt;
use lockstep_api_http::{AppState, router};
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

async fn call(app: &axum::Router, path: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, body.to_vec())
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_not_a_500() {
    // A socket directory that does not exist: every checkout fails after the timeout.
    let manager = ConnectionManager::<PgConnection>::new(
        "postgres://nobody@/nowhere?host=/nonexistent-lockstep-socket",
    );
    let pool = r2d2::Pool::builder()
        .connection_timeout(Duration::from_millis(200))
        .build_unchecked(manager);
    let app = router(AppState::new(pool, &settings(Duration::from_secs(30))));

    for path in ["/readyz", "/api/v1/projects", "/api/v1/pipelines/1"] {
        let (status, body) = call(&app, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let body: Value = serde_json::from_slice(&body).expect("an error body");
        assert_eq!(body["error"]["code"], "unavailable", "{path}");
    }
    let (status, _) = call(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "the process itself is fine");
    let (status, metrics) = call(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(metrics).expect("utf-8");
    assert!(
        !metrics.contains("lockstep_builds_pending"),
        "no gauge without a database"
    );
}
