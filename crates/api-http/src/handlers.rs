//! Request handlers, one module per resource. A handler parses, calls one use case through
//! [`crate::blocking::with_conn`], and maps the result.

pub(crate) mod archives;
pub(crate) mod artifacts;
pub(crate) mod batch;
pub(crate) mod builds;
pub(crate) mod environments;
pub(crate) mod health;
pub(crate) mod jobs;
pub(crate) mod pipelines;
pub(crate) mod projects;
pub(crate) mod resource_groups;
pub(crate) mod runners;

use crate::error::ApiError;

/// Checks a required name-like field by the domain's one rule for names (the rule job, stage,
/// environment and tag names in a definition follow), naming the field.
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    lockstep_domain::check_name(value)
        .map_err(|problem| ApiError::invalid(field, format!("`{field}` {problem}")))
}
