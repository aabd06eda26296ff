//! The web dashboard: HTML pages rendered on the server from compile-time-checked templates
//! (`templates/`), a little plain JavaScript and CSS embedded in the binary (`assets/`), and
//! Server-Sent Events that keep the pages live.
//!
//! Pages take a session cookie set by `/login` (`session.rs`), never the API's Bearer token;
//! every state-changing form carries the session's CSRF token. Pages call the same storage
//! functions and transitions as the JSON API, so a button does exactly what the API does.

use crate::app::AppState;
use crate::error::ApiError;
use askama::Template;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

pub(crate) mod actions;
pub(crate) mod artifacts;
mod assets;
pub(crate) mod build;
pub(crate) mod environments;
mod format;
pub(crate) mod home;
pub(crate) mod live;
pub(crate) mod pipeline;
pub(crate) mod runners;
pub(crate) mod session;

pub(crate) use session::{SESSION_COOKIE, Viewer};

/// Scripts and styles come only from this server, and the pages may not be framed: with no
/// inline script allowed, text that slipped past escaping still could not run.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                      script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Every route of the dashboard.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::index))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/projects/{id}", get(home::project))
        .route("/projects/{id}/live", get(live::project))
        .route("/projects/{id}/environments", get(environments::page))
        .route("/projects/{id}/environments/live", get(live::environments))
        .route("/pipelines/{id}", get(pipeline::page))
        .route("/pipelines/{id}/live", get(live::pipeline))
        .route("/pipelines/{id}/cancel", post(actions::cancel_pipeline))
        .route("/pipelines/{id}/retry", post(actions::retry_pipeline))
        .route("/builds/{id}", get(build::page))
        .route("/builds/{id}/live", get(live::build))
        .route("/builds/{id}/raw", get(build::raw))
        .route("/builds/{id}/artifacts.zip", get(artifacts::archive))
        .route("/builds/{id}/artifacts/{*path}", get(artifacts::file))
        .route("/builds/{id}/delete-artifacts", post(artifacts::delete))
        .route("/builds/{id}/cancel", post(actions::cancel_build))
        .route("/builds/{id}/retry", post(actions::retry_build))
        .route("/builds/{id}/play", post(actions::play_build))
        .route("/runners", get(runners::page))
        .route("/runners/live", get(live::runners))
        .route("/assets/{name}", get(assets::serve))
}

/// Why a page could not be shown: the browser is sent to sign in, or gets an error page.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No valid session: sign in, then come back to this path.
    SignIn { next: String },
    /// A failure, shown as a page with its status.
    Failed(ApiError),
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self::Failed(error)
    }
}

impl From<lockstep_storage_pg::StorageError> for PageError {
    fn from(error: lockstep_storage_pg::StorageError) -> Self {
        Self::Failed(error.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    signed_in: bool,
    csrf: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { next } => {
                let location = format!("/login?{}", format::query(&[("next", &next)]));
                see_other(&location)
            }
            Self::Failed(error) => {
                let (status, detail) = error.into_parts();
                let page = ErrorPage {
                    title: status.canonical_reason().unwrap_or("Error"),
                    message: detail.message(),
                    signed_in: false,
                    csrf: "",
                };
                (status, render(&page)).into_response()
            }
        }
    }
}

/// A `303 See Other` to `location`: after a form, the browser loads the page with a GET.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Renders a template as a page that no cache keeps (it shows live state and a CSRF token).
pub(crate) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => ApiError::internal(&error).into_response(),
    }
}

/// Renders a template as a fragment of a live page.
pub(crate) fn fragment(template: &impl Template) -> Result<String, ApiError> {
    template
        .render()
        .map_err(|error| ApiError::internal(&error))
}

pub(crate) type PageResult = Result<Response, PageError>;

/// The id in a page's path (`/pipelines/{id}`): one that is not a number gets a 400 page, not
/// the API's JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageId(pub(crate) i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PageId {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, PageError> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Self(id)),
            Err(_) => Err(bad_id()),
        }
    }
}

/// The 400 page of an address whose id is not a number.
pub(crate) fn bad_id() -> PageError {
    PageError::Failed(ApiError::bad_request(
        Some("id".to_owned()),
        "the id in this address must be a whole number",
    ))
}
