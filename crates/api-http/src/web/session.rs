//! Signing in and out of the dashboard, and the [`Viewer`] every page and form requires.
//!
//! `/login` takes the admin token in a form field named `token` (never in a URL) and sets a
//! session cookie holding a random token of its own: HttpOnly, so no script reads it;
//! SameSite=Strict, so no other site's page sends it; Secure when the request came over TLS.
//! The database keeps only the session token's SHA-256 (`web_sessions`), so every replica knows
//! every session and signing out ends it everywhere.
//!
//! Each session has a CSRF token, rendered into every form and checked on every POST. The sign-in
//! form itself is protected by a nonce in a short-lived cookie that the form repeats.

use crate::app::AppState;
use crate::auth::{TokenHash, random_token};
use crate::blocking::with_conn;
use crate::error::ApiError;
use crate::web::{PageError, PageResult, render, see_other};
use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use lockstep_storage_pg::{create_session, delete_session, load_session};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "lockstep_session";
/// The sign-in form's nonce cookie.
const LOGIN_COOKIE: &str = "lockstep_login";
/// How long a session lasts: a working day, after which the dashboard asks again.
const SESSION_HOURS: i64 = 12;
/// How long a sign-in form stays usable.
const LOGIN_FORM_SECONDS: u32 = 3600;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The token this session's forms must send back.
    pub(crate) csrf: String,
    hash: TokenHash,
}

impl Viewer {
    /// `Ok` when a form sent back this session's CSRF token; a 403 page otherwise.
    pub(crate) fn check(&self, sent: &str) -> Result<(), PageError> {
        if same(sent, &self.csrf) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }
}

fn csrf_refused() -> PageError {
    PageError::Failed(ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this form's CSRF token is missing or stale: reload the page and try again",
    ))
}

/// Constant-time, so a guess learns nothing from how long a refusal takes.
fn same(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(hash) = cookie(&parts.headers, SESSION_COOKIE).map(TokenHash::of) else {
            return Err(PageError::SignIn { next });
        };
        let session = with_conn(state, move |conn, _| {
            load_session(conn, hash.as_bytes(), Utc::now())
        })
        .await?;
        match session {
            Some(session) => Ok(Viewer {
                csrf: session.csrf_token,
                hash,
            }),
            None => Err(PageError::SignIn { next }),
        }
    }
}

/// The value of cookie `name`, from any `Cookie` header of the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Where to go after signing in: a path on this server only, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control)
                && !path.starts_with("/login") =>
        {
            path
        }
        _ => "/",
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    error: Option<&'a str>,
    signed_in: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// `GET /login`: the sign-in form, with a fresh nonce.
#[utoipa::path(get, path = "/login", tag = "dashboard",
    params(("next" = Option<String>, Query, description = "where to go after signing in: a path on this server")),
    responses((status = 200, description = "the sign-in form; sets the nonce cookie `lockstep_login`", content_type = "text/html")))]
pub(crate) async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> PageResult {
    let nonce = random_token("")?;
    let page = LoginPage {
        csrf: &nonce,
        next: safe_next(query.next.as_deref()),
        error: None,
        signed_in: false,
    };
    let mut response = render(&page);
    let secure = secure(&state, &headers);
    set_cookie(
        &mut response,
        LOGIN_COOKIE,
        &nonce,
        "/login",
        LOGIN_FORM_SECONDS,
        secure,
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /login`: signs in with the admin token.
#[utoipa::path(post, path = "/login", tag = "dashboard",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`token`: the admin token; `csrf`: the form's nonce; `next`: where to go"),
    responses(
        (status = 303, description = "signed in: sets `lockstep_session` (HttpOnly; SameSite=Strict; Path=/; 12 hours; Secure over TLS) and goes to `next`"),
        (status = 401, description = "not the admin token: the form again, no session", content_type = "text/html"),
        (status = 403, description = "the form's nonce is missing or not the cookie's", content_type = "text/html"),
    ))]
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> PageResult {
    let Form(form) = form.map_err(|_| csrf_refused())?;
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same(&form.csrf, nonce) {
        return Err(PageError::Failed(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this sign-in form expired or came from another site: open /login again",
        )));
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    if !state.api_token.matches(&TokenHash::of(form.token.trim())) {
        let page = LoginPage {
            csrf: nonce,
            next: &next,
            error: Some(
                "That token is not valid. Use the admin token the server was started with.",
            ),
            signed_in: false,
        };
        return Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response());
    }
    let token = random_token("lss_")?;
    let csrf = random_token("")?;
    let hash = TokenHash::of(&token);
    with_conn(&state, move |conn, _| {
        let now = Utc::now();
        create_session(
            conn,
            hash.as_bytes(),
            &csrf,
            now,
            now + TimeDelta::hours(SESSION_HOURS),
        )
    })
    .await?;
    tracing::info!("dashboard session started");
    let mut response = see_other(&next);
    let secure = secure(&state, &headers);
    let lifetime = u32::try_from(SESSION_HOURS * 3600).unwrap_or(u32::MAX);
    set_cookie(&mut response, SESSION_COOKIE, &token, "/", lifetime, secure);
    set_cookie(&mut response, LOGIN_COOKIE, "", "/login", 0, secure);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `POST /logout`: ends the session here and on every replica.
#[utoipa::path(post, path = "/logout", tag = "dashboard",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`csrf`: the session's CSRF token"),
    responses(
        (status = 303, description = "signed out everywhere: the cookie is cleared; to `/login`"),
        (status = 403, description = "the CSRF token is missing or not this session's", content_type = "text/html"),
    ),
    security(("session" = [])))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: Viewer,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let Form(form) = form.map_err(|_| csrf_refused())?;
    viewer.check(&form.csrf)?;
    let hash = viewer.hash;
    with_conn(&state, move |conn, _| delete_session(conn, hash.as_bytes())).await?;
    let mut response = see_other("/login");
    let secure = secure(&state, &headers);
    set_cookie(&mut response, SESSION_COOKIE, "", "/", 0, secure);
    Ok(response)
}

/// Whether cookies must be `Secure`: the request came over TLS, as a proxy in front says, or
/// the server was told to always mark them.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Adds a `Set-Cookie`; a `max_age` of 0 deletes the cookie.
fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age: u32,
    secure: bool,
) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::{cookie, safe_next, same};
    use axum::http::{HeaderMap, HeaderValue, header::COOKIE};

    #[test]
    fn only_paths_on_this_server_are_followed_after_sign_in() {
        for (next, expected) in [
            (Some("/pipelines/3"), "/pipelines/3"),
            (
                Some("/projects/1?status=failed"),
                "/projects/1?status=failed",
            ),
            (Some("//evil.example/"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/login?next=/"), "/"),
            (Some("/a\nb"), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn a_cookie_is_found_among_others_and_in_any_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; lockstep_session=abc"),
        );
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, "lockstep_session"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn an_empty_expected_token_matches_nothing() {
        assert!(same("x", "x"));
        assert!(!same("", ""));
        assert!(!same("x", "y"));
    }
}
