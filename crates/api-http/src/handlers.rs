//! Request handlers, one module per resource. A handler parses, calls one use case through
//! [`crate::blocking::with_conn`], and maps the result.

pub(crate) mod batch;
pub(crate) mod builds;
pub(crate) mod environments;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod pipelines;
pub(crate) mod projects;
pub(crate) mod runners;

use crate::error::ApiError;

/// Checks a required name-like field: not blank, at most 255 characters, no control
/// characters (as for the names in a pipeline definition). A NUL would otherwise reach
/// PostgreSQL, whose text cannot hold it, and come back as a 500.
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must not be empty"),
        ));
    }
    if value.chars().count() > 255 {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must be at most 255 characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` must not contain control characters"),
        ));
    }
    Ok(())
}
