//! The one error type of the API, its JSON shape, and every mapping from a failure to a status.
//!
//! Each source error is mapped on purpose, in this file only: a new storage error that nobody
//! mapped fails to compile here rather than silently becoming a 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lockstep_domain::{DefinitionError, TransitionError};
use lockstep_storage_pg::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: a status and the body `{"error": {...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    // Boxed: every handler's `Result` carries it, and the detail is large.
    body: Box<ErrorDetail>,
}

/// Every error the API returns has this shape.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code, e.g. `not_found`, `illegal_transition`.
    code: &'static str,
    /// A sentence for humans.
    message: String,
    /// The request field at fault, e.g. `jobs[2].script` or `offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// For `409`: the current status of the build or pipeline that refused the transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// For `416`: where the log ends now.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    /// For a definition or pipeline file that is not acceptable (`422`): every problem found,
    /// each with the line and column of a pipeline file (null for JSON). `message` and `field`
    /// repeat the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<Problem>>,
}

impl ErrorDetail {
    /// The sentence for humans, for a dashboard page.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// One problem of a definition or pipeline file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Problem {
    pub(crate) message: String,
    /// 1-based; null for a JSON body.
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
    /// The dotted path of keys in a pipeline file (`build.script`, `test.retry.max`), or the
    /// field of a JSON body (`jobs[build].script`).
    pub(crate) field: Option<String>,
}

impl From<lockstep_pipeline_file::FileError> for Problem {
    fn from(error: lockstep_pipeline_file::FileError) -> Self {
        Self {
            message: error.message,
            line: error.line,
            column: error.column,
            field: error.field,
        }
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorDetail {
                code,
                message: message.into(),
                field: None,
                status: None,
                offset: None,
                errors: None,
            }),
        }
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Adds a sentence on what to do instead.
    pub(crate) fn with_hint(mut self, hint: &str) -> Self {
        self.body.message = format!("{} ({hint})", self.body.message);
        self
    }

    /// 422: a pipeline file that is not acceptable, with every problem found in it.
    pub(crate) fn pipeline_file(problems: Vec<lockstep_pipeline_file::FileError>) -> Self {
        let first = problems
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let message = match problems.len() {
            0 | 1 => format!("the pipeline file is not valid: {first}"),
            n => format!("the pipeline file has {n} problems; the first: {first}"),
        };
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pipeline_file",
            message,
        );
        error.body.field = problems.first().and_then(|p| p.field.clone());
        error.body.errors = Some(problems.into_iter().map(Problem::from).collect());
        error
    }

    fn with_status(mut self, status: impl std::fmt::Display) -> Self {
        self.body.status = Some(status.to_string());
        self
    }

    /// The status and body, for an error answered inside a larger answer (a batch).
    pub(crate) fn into_parts(self) -> (StatusCode, ErrorDetail) {
        (self.status, *self.body)
    }

    /// 400: the request cannot be read (malformed JSON, wrong types, a bad path or query).
    pub(crate) fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        let error = Self::new(StatusCode::BAD_REQUEST, "bad_request", message);
        match field {
            Some(field) => error.with_field(field),
            None => error,
        }
    }

    /// 422: the request reads fine but is not acceptable.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).with_field(field)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500. The cause is logged here, once, and never sent to the client.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    fn log_offset(end: u64) -> Self {
        let mut error = Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "log_offset",
            format!("the log ends at byte {end}; continue from there"),
        )
        .with_field("offset");
        error.body.offset = Some(end);
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let offset = self.body.offset;
        let mut response = (self.status, Json(ErrorBody { error: *self.body })).into_response();
        if let Some(end) = offset {
            response
                .headers_mut()
                .insert("x-log-offset", HeaderValue::from(end));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound { .. } | StorageError::NotFoundNamed { .. } => {
                Self::not_found(error.to_string())
            }
            StorageError::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, "already_exists", error.to_string())
                    .with_field("name")
            }
            StorageError::Transition(transition) => transition.into(),
            StorageError::LogOffset { end } => Self::log_offset(end),
            StorageError::LogTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "log_too_large",
                error.to_string(),
            ),
            StorageError::Contention { .. } | StorageError::PlanChanged => {
                tracing::warn!(%error, "transaction gave up under contention");
                Self::unavailable("the database is busy; try again")
            }
            StorageError::Pool(_) => {
                tracing::warn!(%error, "no database connection");
                Self::unavailable("the database is unavailable")
            }
            StorageError::Disconnected(_) => {
                tracing::warn!(%error, "database connection lost");
                Self::unavailable("the database is unavailable")
            }
            StorageError::Database(_) | StorageError::Corrupt(_) => Self::internal(&error),
        }
    }
}

/// A blocking task that panicked or was cancelled (at shutdown) is a bug or an accident, never
/// the client's doing.
impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::internal(&error)
    }
}

impl From<TransitionError> for ApiError {
    fn from(error: TransitionError) -> Self {
        let message = error.to_string();
        match error {
            TransitionError::UnknownBuild(_) => Self::not_found(message),
            TransitionError::NotHolder { .. } => {
                Self::new(StatusCode::FORBIDDEN, "not_holder", message)
            }
            TransitionError::LeaseLost { status, .. } => {
                Self::new(StatusCode::GONE, "lease_lost", message).with_status(status)
            }
            TransitionError::Illegal { source, .. } => illegal(message).with_status(source.from),
            TransitionError::NotRetryable { status, .. } => illegal(message).with_status(status),
            TransitionError::PipelineFinished { status } => illegal(message).with_status(status),
            TransitionError::AlreadyRetried { .. } => {
                Self::new(StatusCode::CONFLICT, "already_retried", message)
            }
            TransitionError::InvalidSnapshot(_) => Self::internal(&error),
        }
    }
}

fn illegal(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "illegal_transition", message)
}

impl From<DefinitionError> for ApiError {
    fn from(error: DefinitionError) -> Self {
        // Only `jobs` belongs to the pipeline as a whole; any other field without a job is
        // the name of a job that has none, so it reads `jobs[].name` as the pattern says.
        let field = match error.job_name() {
            Some(job) => format!("jobs[{job}].{}", error.field()),
            None if error.field() == "jobs" => "jobs".to_owned(),
            None => format!("jobs[].{}", error.field()),
        };
        let mut invalid = Self::invalid(field.clone(), error.to_string());
        invalid.body.errors = Some(vec![Problem {
            message: error.to_string(),
            line: None,
            column: None,
            field: Some(field),
        }]);
        invalid
    }
}

/// The result type of handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
