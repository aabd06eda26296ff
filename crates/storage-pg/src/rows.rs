//! Conversions between stored text and domain types, shared by every query.

use crate::StorageError;
use std::str::FromStr;

/// Parses a stored status (or any `FromStr` domain enum); an unknown value is corrupt data, not
/// a client error.
pub(crate) fn parse<T: FromStr>(column: &'static str, value: &str) -> Result<T, StorageError> {
    value
        .parse()
        .map_err(|_| StorageError::corrupt(format!("{column} holds unknown value `{value}`")))
}

pub(crate) fn parse_when(value: &str) -> Result<lockstep_domain::When, StorageError> {
    lockstep_domain::When::parse(value).ok_or_else(|| {
        StorageError::corrupt(format!("ci_builds.run_when holds unknown value `{value}`"))
    })
}

pub(crate) fn parse_failure_reason(
    value: &str,
) -> Result<lockstep_domain::FailureReason, StorageError> {
    lockstep_domain::FailureReason::parse(value).ok_or_else(|| {
        StorageError::corrupt(format!(
            "ci_builds.failure_reason holds unknown value `{value}`"
        ))
    })
}

/// Counts stored as `integer` are never negative (CHECK constraints); a negative one is corrupt.
pub(crate) fn count(column: &'static str, value: i32) -> Result<u32, StorageError> {
    u32::try_from(value)
        .map_err(|_| StorageError::corrupt(format!("{column} holds negative {value}")))
}

/// Counts from the domain fit in `integer`: definitions are validated against far smaller limits.
pub(crate) fn to_int(value: u32) -> i32 {
    i32::try_from(value).expect("validated counts fit in an integer column")
}
