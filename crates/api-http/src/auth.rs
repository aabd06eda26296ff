//! Bearer tokens: the admin token from the configuration, and runner tokens issued at
//! registration. Only SHA-256 hashes are kept; comparisons are constant-time.

use crate::app::AppState;
use crate::blocking::with_conn;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use lockstep_storage_pg::{RunnerView, authenticate_runner};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    pub(crate) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Compares hashes, so neither the length nor a common prefix of the token leaks by timing.
    pub(crate) fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A new runner token: a prefix that says what it is, then 32 random bytes in hex.
pub(crate) fn new_runner_token() -> Result<String, ApiError> {
    random_token("lsr_")
}

/// `prefix`, then 32 random bytes in hex: a secret nobody can guess.
pub(crate) fn random_token(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ApiError::internal(&error))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        // The scheme name is case-insensitive (RFC 9110, section 11.1).
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if state.api_token.matches(&TokenHash::of(token)) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("invalid API token"))
        }
    }
}

/// The runner whose token the request carries.
#[derive(Debug, Clone)]
pub(crate) struct Runner(pub(crate) RunnerView);

impl FromRequestParts<AppState> for Runner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = TokenHash::of(bearer(parts)?);
        // The lookup is by hash through a unique index, so it reveals nothing about the token.
        let runner = with_conn(state, move |conn, _| {
            authenticate_runner(conn, hash.as_bytes(), Utc::now())
        })
        .await?;
        runner
            .map(Runner)
            .ok_or_else(|| ApiError::unauthorized("invalid or retired runner token"))
    }
}

#[cfg(test)]
mod tests {
    use super::{TokenHash, new_runner_token};

    #[test]
    fn runner_tokens_are_prefixed_and_distinct() {
        let first = new_runner_token().expect("random bytes");
        let second = new_runner_token().expect("random bytes");
        assert!(first.starts_with("lsr_"));
        assert_eq!(first.len(), 4 + 64);
        assert_ne!(first, second);
    }

    #[test]
    fn a_token_matches_only_its_own_hash() {
        let hash = TokenHash::of("secret-token");
        assert!(hash.matches(&TokenHash::of("secret-token")));
        assert!(!hash.matches(&TokenHash::of("secret-tokem")));
        assert!(!hash.matches(&TokenHash::of("")));
    }
}
