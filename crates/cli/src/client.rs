//! The HTTP client: calls to the server's `/api/v1` with the admin token, and every way a call
//! can fail mapped to an error that says what to do about it.

use crate::exit::Exit;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use ureq::http::Response;
use ureq::{Body, RequestBuilder};

/// A server that accepts no connection within this is as good as absent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// No call of the CLI waits on the server (there is no long-poll here), so a slow answer is a
/// sick server.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read: a pipeline of thousands of jobs is a few MiB.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;
/// How long one archive download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A connection to one server, with one admin token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    agent: ureq::Agent,
    url: String,
    token: String,
}

/// One problem of a refused pipeline file, where the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileProblem {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) line: Option<u32>,
    #[serde(default)]
    pub(crate) column: Option<u32>,
    #[serde(default)]
    pub(crate) field: Option<String>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error(
        "cannot reach the server at {url} ({why}): start one with `cargo xtask dev`, or point LOCKSTEP_URL at yours"
    )]
    Unreachable { url: String, why: &'static str },
    #[error("{url} is not a server URL lockstep can use: {why}")]
    BadUrl { url: String, why: String },
    #[error(
        "the server at {url} refused the token: run `lockstep login` with the server's LOCKSTEP_API_TOKEN, or set LOCKSTEP_TOKEN"
    )]
    Unauthorized { url: String },
    /// A 404. Callers that know what they asked for replace the server's sentence by one
    /// naming it ([`ClientError::naming`]).
    #[error("{message}")]
    NotFound { message: String },
    /// A 409: the transition is not allowed from `status`, or the name is taken.
    #[error("{message}")]
    Conflict {
        message: String,
        status: Option<String>,
    },
    /// A 422: the request reads but is not acceptable (an invalid pipeline, a bad name).
    #[error("{message}")]
    Invalid {
        message: String,
        field: Option<String>,
        problems: Vec<FileProblem>,
        body: Value,
    },
    #[error("the server refused the call ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error(
        "the server at {url} gave an answer to {path} that does not read ({detail}): is it a Lockstep server of this version?"
    )]
    Unexpected {
        url: String,
        path: String,
        detail: String,
    },
}

impl ClientError {
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Self::Unreachable { .. } => Exit::Unreachable,
            Self::BadUrl { .. } | Self::Invalid { .. } => Exit::Usage,
            _ => Exit::Other,
        }
    }

    /// A 404 reworded as `{what} does not exist`; any other error unchanged.
    #[must_use]
    pub(crate) fn naming(self, what: impl FnOnce() -> String) -> Self {
        match self {
            Self::NotFound { .. } => Self::NotFound {
                message: format!("{} does not exist", what()),
            },
            other => other,
        }
    }

    /// A 409 reworded by `say`, given the status the server reported; any other error
    /// unchanged.
    #[must_use]
    pub(crate) fn conflict(self, say: impl FnOnce(&str) -> String) -> Self {
        match self {
            Self::Conflict { status, .. } => Self::Conflict {
                message: say(status.as_deref().unwrap_or("finished")),
                status,
            },
            other => other,
        }
    }
}

/// A JSON answer read both ways: typed for the CLI's own use, and as the server sent it for
/// `--json`.
#[derive(Debug, Clone)]
pub(crate) struct Json<T> {
    pub(crate) value: T,
    pub(crate) raw: Value,
}

/// One page of a build's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogPage {
    pub(crate) bytes: Vec<u8>,
    /// Where the next page starts.
    pub(crate) next_offset: u64,
    /// The build finished and the log is read to its end.
    pub(crate) complete: bool,
}

/// The error shape of docs/api.md, with the `errors` list of a refused pipeline file (in
/// `error`, or beside it).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorField,
    #[serde(default)]
    errors: Vec<FileProblem>,
}

impl ErrorBody {
    fn problems(self) -> Vec<FileProblem> {
        match self.error {
            ErrorField::Detail { errors, .. } if self.errors.is_empty() => errors,
            _ => self.errors,
        }
    }
}

/// `error` is an object by the API's conventions; a bare sentence is read too rather than
/// lost.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Detail {
        message: String,
        #[serde(default)]
        field: Option<String>,
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        errors: Vec<FileProblem>,
    },
    Text(String),
}

impl Client {
    /// A client for the server at `url` (`http://host:port`, with or without a trailing `/`).
    pub(crate) fn new(url: &str, token: &str) -> Result<Self, ClientError> {
        let url = check_url(url)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .user_agent(concat!("lockstep-cli/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            agent: config.into(),
            url,
            token: token.to_owned(),
        })
    }

    /// The server's URL, without a trailing `/`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `GET /api/v1{path}`, read as JSON.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Json<T>, ClientError> {
        let request = self.authorized(self.agent.get(self.endpoint(path)));
        let request = query
            .iter()
            .fold(request, |request, (key, value)| request.query(*key, value));
        let response = self.answer(path, request.call())?;
        self.read_json(path, response)
    }

    /// `POST /api/v1{path}` with a JSON body (or none), read as JSON.
    pub(crate) fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Json<T>, ClientError> {
        let request = self.authorized(self.agent.post(self.endpoint(path)));
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        let response = self.answer(path, sent)?;
        self.read_json(path, response)
    }

    /// `POST /api/v1{path}?query` with raw bytes of `content_type`, read as JSON.
    pub(crate) fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Json<T>, ClientError> {
        let request = self
            .authorized(self.agent.post(self.endpoint(path)))
            .header("Content-Type", content_type);
        let request = query
            .iter()
            .fold(request, |request, (key, value)| request.query(*key, value));
        let response = self.answer(path, request.send(bytes))?;
        self.read_json(path, response)
    }

    /// `GET /api/v1{path}` written to `file`; returns the bytes written.
    pub(crate) fn download(&self, path: &str, file: &std::path::Path) -> Result<u64, ClientError> {
        let request = self
            .authorized(self.agent.get(self.endpoint(path)))
            .config()
            .timeout_global(Some(DOWNLOAD_TIMEOUT))
            .build();
        let mut response = self.answer(path, request.call())?;
        let mut target = std::fs::File::create(file).map_err(|e| self.unexpected(path, &e))?;
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, &mut target).map_err(|e| self.unexpected(path, &e))
    }

    /// One page of build `build`'s log, from `offset`.
    pub(crate) fn log_page(&self, build: i64, offset: u64) -> Result<LogPage, ClientError> {
        let path = format!("/builds/{build}/log");
        let request = self
            .authorized(self.agent.get(self.endpoint(&path)))
            .query("offset", offset.to_string());
        let mut response = self
            .answer(&path, request.call())
            .map_err(|e| e.naming(|| format!("build {build}")))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let next_offset = header("x-log-offset").and_then(|v| v.parse().ok());
        let complete = header("x-log-complete").is_some_and(|v| v == "true");
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| self.unexpected(&path, &e))?;
        let next_offset = next_offset.ok_or_else(|| ClientError::Unexpected {
            url: self.url.clone(),
            path: path.clone(),
            detail: "no X-Log-Offset header".to_owned(),
        })?;
        Ok(LogPage {
            bytes,
            next_offset,
            complete,
        })
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }

    fn authorized<B>(&self, request: RequestBuilder<B>) -> RequestBuilder<B> {
        request.header("Authorization", format!("Bearer {}", self.token))
    }

    /// The response if it is a success; the error it stands for otherwise.
    fn answer(
        &self,
        path: &str,
        sent: Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>, ClientError> {
        let mut response = sent.map_err(|e| self.transport(path, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        // A body that does not read is no reason to hide the status.
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .unwrap_or_default();
        Err(self.refusal(status, &text))
    }

    fn refusal(&self, status: u16, text: &str) -> ClientError {
        let body: Option<ErrorBody> = serde_json::from_str(text).ok();
        let (message, field, current) = match body.as_ref().map(|b| &b.error) {
            Some(ErrorField::Detail {
                message,
                field,
                status,
                ..
            }) => (message.clone(), field.clone(), status.clone()),
            Some(ErrorField::Text(message)) => (message.clone(), None, None),
            None if text.trim().is_empty() => (format!("HTTP {status}"), None, None),
            None => (text.trim().to_owned(), None, None),
        };
        match status {
            401 => ClientError::Unauthorized {
                url: self.url.clone(),
            },
            404 => ClientError::NotFound { message },
            409 => ClientError::Conflict {
                message,
                status: current,
            },
            422 => ClientError::Invalid {
                message,
                field,
                problems: body.map(ErrorBody::problems).unwrap_or_default(),
                body: serde_json::from_str(text).unwrap_or(Value::Null),
            },
            _ => ClientError::Refused { status, message },
        }
    }

    fn transport(&self, path: &str, error: &ureq::Error) -> ClientError {
        let why = match error {
            ureq::Error::Timeout(_) => "timed out",
            ureq::Error::HostNotFound => "no such host",
            ureq::Error::ConnectionFailed => "connection failed",
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused",
                std::io::ErrorKind::TimedOut => "timed out",
                _ => "the connection broke",
            },
            ureq::Error::BadUri(why) => {
                return ClientError::BadUrl {
                    url: self.url.clone(),
                    why: why.clone(),
                };
            }
            _ => return self.unexpected(path, error),
        };
        ClientError::Unreachable {
            url: self.url.clone(),
            why,
        }
    }

    fn read_json<T: DeserializeOwned>(
        &self,
        path: &str,
        mut response: Response<Body>,
    ) -> Result<Json<T>, ClientError> {
        let raw: Value = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_json()
            .map_err(|e| self.unexpected(path, &e))?;
        let value = T::deserialize(&raw).map_err(|e| self.unexpected(path, &e))?;
        Ok(Json { value, raw })
    }

    fn unexpected(&self, path: &str, detail: &dyn std::fmt::Display) -> ClientError {
        ClientError::Unexpected {
            url: self.url.clone(),
            path: format!("/api/v1{path}"),
            detail: detail.to_string(),
        }
    }
}

/// The URL without its trailing `/`, if lockstep can call it.
fn check_url(url: &str) -> Result<String, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let bad = |why: &str| ClientError::BadUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    if trimmed.starts_with("https://") {
        // Plain HTTP keeps the binary small and the server is meant for a trusted network; a
        // TLS-terminating proxy in front of it needs a TLS-enabled build.
        return Err(bad(
            "https needs TLS, which this build of lockstep lacks: use http://",
        ));
    }
    match trimmed.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(bad("it must look like http://HOST:PORT")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("http://127.0.0.1:9/", "t").expect("a client")
    }

    #[test]
    fn urls_lose_their_trailing_slash() {
        assert_eq!(client().url(), "http://127.0.0.1:9");
    }

    #[test]
    fn https_and_garbage_urls_are_refused_with_the_fix() {
        let https = Client::new("https://ci.example", "t").expect_err("no TLS");
        assert!(https.to_string().contains("use http://"), "{https}");
        assert_eq!(https.exit(), Exit::Usage);
        let garbage = Client::new("localhost:8080", "t").expect_err("no scheme");
        assert!(
            garbage.to_string().contains("http://HOST:PORT"),
            "{garbage}"
        );
    }

    #[test]
    fn refusals_follow_the_api_error_shape() {
        let c = client();
        let conflict = c.refusal(
            409,
            r#"{"error":{"code":"illegal_transition","message":"no","status":"success"}}"#,
        );
        assert!(
            matches!(&conflict, ClientError::Conflict { status: Some(s), .. } if s == "success"),
            "{conflict:?}"
        );
        let unauthorized = c.refusal(401, r#"{"error":{"code":"unauthorized","message":"x"}}"#);
        assert!(unauthorized.to_string().contains("lockstep login"));
        let plain = c.refusal(502, "Bad Gateway");
        assert_eq!(
            plain.to_string(),
            "the server refused the call (502): Bad Gateway"
        );
        assert_eq!(plain.exit(), Exit::Other);
    }

    #[test]
    fn a_refused_pipeline_file_keeps_its_problems() {
        let body = r#"{"error":{"code":"invalid","message":"the file has 1 problem"},
            "errors":[{"message":"unknown field `scirpt`","line":3,"column":5,"field":"jobs[build].scirpt"}]}"#;
        let ClientError::Invalid { problems, .. } = client().refusal(422, body) else {
            panic!("not Invalid");
        };
        assert_eq!(problems[0].line, Some(3));
        assert_eq!(problems[0].column, Some(5));
    }

    #[test]
    fn problems_inside_the_error_object_are_read_too() {
        let body = r#"{"error":{"code":"invalid_pipeline_file","message":"2 problems",
            "errors":[{"message":"a","line":1,"column":1,"field":null},
                      {"message":"b","line":5,"column":3,"field":"x.y"}]}}"#;
        let ClientError::Invalid { problems, .. } = client().refusal(422, body) else {
            panic!("not Invalid");
        };
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[1].field.as_deref(), Some("x.y"));
    }

    #[test]
    fn not_found_names_what_was_asked_for() {
        let error = client()
            .refusal(
                404,
                r#"{"error":{"code":"not_found","message":"pipeline 42 not found"}}"#,
            )
            .naming(|| "pipeline 42".to_owned());
        assert_eq!(error.to_string(), "pipeline 42 does not exist");
    }
}
