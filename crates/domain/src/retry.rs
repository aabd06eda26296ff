//! GitLab's `retry` and `allow_failure` rules: which failures a job retries by itself, and
//! which failures let its pipeline pass anyway.
//!
//! Both take GitLab's shapes in a definition: `retry: 2` or `retry: {max, when, exit_codes}`,
//! and `allow_failure: true` or `allow_failure: {exit_codes}`.

use crate::plan::FailureReason;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The failures a `retry` rule may name (GitLab's `retry:when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryWhen {
    /// Any failure.
    Always,
    /// A failure whose reason is none of the others. Lockstep always knows why a build
    /// failed, so this matches nothing today; it is accepted so that GitLab rules paste.
    UnknownFailure,
    ScriptFailure,
    RunnerSystemFailure,
    /// The runner stopped heartbeating (GitLab's `stuck_or_timeout_failure`).
    RunnerLost,
    JobTimeout,
}

impl RetryWhen {
    pub const ALL: [Self; 6] = [
        Self::Always,
        Self::UnknownFailure,
        Self::ScriptFailure,
        Self::RunnerSystemFailure,
        Self::RunnerLost,
        Self::JobTimeout,
    ];

    /// The name used in definitions and stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::UnknownFailure => "unknown_failure",
            Self::ScriptFailure => "script_failure",
            Self::RunnerSystemFailure => "runner_system_failure",
            Self::RunnerLost => "runner_lost",
            Self::JobTimeout => "job_timeout",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == value)
    }

    fn covers(self, reason: FailureReason) -> bool {
        match self {
            Self::Always => true,
            Self::UnknownFailure => false,
            Self::ScriptFailure => reason == FailureReason::ScriptFailure,
            Self::RunnerSystemFailure => reason == FailureReason::RunnerSystemFailure,
            Self::RunnerLost => reason == FailureReason::RunnerLost,
            Self::JobTimeout => reason == FailureReason::JobTimeout,
        }
    }
}

/// A job's `retry` as written: `N` (that many retries of any failure), or
/// `{max, when, exit_codes}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retry {
    pub max: u32,
    /// The failures that retry. `None`: `[always]`, unless `exit_codes` is given.
    pub when: Option<Vec<RetryWhen>>,
    /// Exit codes that retry whatever `when` says.
    pub exit_codes: Option<Vec<i32>>,
}

impl Retry {
    /// `retry: N`: up to `max` retries of any failure.
    pub fn times(max: u32) -> Self {
        Self {
            max,
            when: None,
            exit_codes: None,
        }
    }

    /// The rule this means, with GitLab's defaults filled in.
    pub(crate) fn policy(&self) -> RetryPolicy {
        let when = match (&self.when, &self.exit_codes) {
            (Some(when), _) => when.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => vec![RetryWhen::Always],
        };
        RetryPolicy::new(self.max, when, self.exit_codes.clone().unwrap_or_default())
    }
}

/// Which failures of a job are retried automatically, and how many times. The lists are sorted
/// and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    max: u32,
    when: Vec<RetryWhen>,
    exit_codes: Vec<i32>,
}

impl RetryPolicy {
    pub fn new(max: u32, mut when: Vec<RetryWhen>, mut exit_codes: Vec<i32>) -> Self {
        when.sort_unstable();
        when.dedup();
        exit_codes.sort_unstable();
        exit_codes.dedup();
        Self {
            max,
            when,
            exit_codes,
        }
    }

    /// No automatic retries.
    pub fn never() -> Self {
        Self::default()
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn when(&self) -> &[RetryWhen] {
        &self.when
    }

    pub fn exit_codes(&self) -> &[i32] {
        &self.exit_codes
    }

    /// Whether attempt `attempt`, failed for `reason` with `exit_code`, is retried: while
    /// attempts stay within `max` retries, when `when` covers the reason or the exit code is
    /// listed.
    pub fn retries(&self, attempt: u32, reason: FailureReason, exit_code: Option<i32>) -> bool {
        attempt <= self.max
            && (self.when.iter().any(|when| when.covers(reason))
                || exit_code.is_some_and(|code| self.exit_codes.binary_search(&code).is_ok()))
    }
}

impl Serialize for RetryPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("max", &self.max)?;
        map.serialize_entry("when", &self.when)?;
        map.serialize_entry("exit_codes", &self.exit_codes)?;
        map.end()
    }
}

impl Serialize for Retry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.when.is_none() && self.exit_codes.is_none() {
            return serializer.serialize_u32(self.max);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("max", &self.max)?;
        if let Some(when) = &self.when {
            map.serialize_entry("when", when)?;
        }
        if let Some(codes) = &self.exit_codes {
            map.serialize_entry("exit_codes", codes)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Retry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RetryVisitor)
    }
}

struct RetryVisitor;

impl<'de> Visitor<'de> for RetryVisitor {
    type Value = Retry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of retries, or {max, when, exit_codes}")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Retry, E> {
        u32::try_from(value)
            .map(Retry::times)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Retry, E> {
        u64::try_from(value)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
            .and_then(|value| self.visit_u64(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Retry, A::Error> {
        let mut retry = Retry::default();
        let mut max = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "max" => max = Some(map.next_value::<u32>()?),
                "when" => retry.when = Some(one_or_many(map.next_value::<OneOrMany>()?)),
                "exit_codes" => retry.exit_codes = Some(map.next_value::<Codes>()?.0),
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &["max", "when", "exit_codes"],
                    ));
                }
            }
        }
        retry.max = max.ok_or_else(|| de::Error::missing_field("max"))?;
        Ok(retry)
    }
}

/// `when` as GitLab takes it: one name or a list.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a failure (`always`, `script_failure`, …) or a list of them"
)]
enum OneOrMany {
    One(RetryWhen),
    Many(Vec<RetryWhen>),
}

fn one_or_many(when: OneOrMany) -> Vec<RetryWhen> {
    match when {
        OneOrMany::One(when) => vec![when],
        OneOrMany::Many(when) => when,
    }
}

/// `exit_codes` as GitLab takes it: one code or a list.
struct Codes(Vec<i32>);

impl<'de> Deserialize<'de> for Codes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "an exit code or a list of exit codes")]
        enum Raw {
            One(i32),
            Many(Vec<i32>),
        }
        Ok(Self(match Raw::deserialize(deserializer)? {
            Raw::One(code) => vec![code],
            Raw::Many(codes) => codes,
        }))
    }
}

/// Whether a job's failure lets its pipeline (and the jobs that need it) pass anyway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowFailure {
    /// No failure is allowed (the default).
    #[default]
    No,
    /// Every failure is allowed.
    Yes,
    /// Only a failure with one of these exit codes (sorted, no duplicates) is allowed.
    ExitCodes(Vec<i32>),
}

impl AllowFailure {
    /// `{exit_codes}`, sorted and without duplicates.
    pub fn exit_codes(mut codes: Vec<i32>) -> Self {
        codes.sort_unstable();
        codes.dedup();
        Self::ExitCodes(codes)
    }

    /// Whether a failure with `exit_code` is allowed. A failure without an exit code (a lost
    /// runner, a timeout) is allowed only by `true`.
    pub fn allows(&self, exit_code: Option<i32>) -> bool {
        match self {
            Self::No => false,
            Self::Yes => true,
            Self::ExitCodes(codes) => {
                exit_code.is_some_and(|code| codes.binary_search(&code).is_ok())
            }
        }
    }

    /// Whether some failure may be allowed.
    pub fn may_allow(&self) -> bool {
        !matches!(self, Self::No)
    }

    /// The exit codes, for `{exit_codes}`.
    pub fn listed_codes(&self) -> Option<&[i32]> {
        match self {
            Self::ExitCodes(codes) => Some(codes),
            Self::No | Self::Yes => None,
        }
    }
}

impl Serialize for AllowFailure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::No => serializer.serialize_bool(false),
            Self::Yes => serializer.serialize_bool(true),
            Self::ExitCodes(codes) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("exit_codes", codes)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for AllowFailure {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AllowFailureVisitor)
    }
}

struct AllowFailureVisitor;

impl<'de> Visitor<'de> for AllowFailureVisitor {
    type Value = AllowFailure;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or {exit_codes}")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<AllowFailure, E> {
        Ok(if value {
            AllowFailure::Yes
        } else {
            AllowFailure::No
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AllowFailure, A::Error> {
        let mut codes = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "exit_codes" => codes = Some(map.next_value::<Codes>()?.0),
                other => return Err(de::Error::unknown_field(other, &["exit_codes"])),
            }
        }
        let codes = codes.ok_or_else(|| de::Error::missing_field("exit_codes"))?;
        Ok(AllowFailure::exit_codes(codes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureReason as R;

    fn parse(json: &str) -> Retry {
        serde_json::from_str(json).unwrap_or_else(|error| panic!("{json}: {error}"))
    }

    /// (retry as written, attempt, reason, exit code) -> retried.
    #[test]
    fn which_failures_retry() {
        let table = [
            ("2", 1, R::ScriptFailure, Some(1), true),
            ("2", 2, R::RunnerLost, None, true),
            ("2", 3, R::ScriptFailure, Some(1), false),
            ("0", 1, R::ScriptFailure, Some(1), false),
            (r#"{"max": 2}"#, 1, R::JobTimeout, None, true),
            (
                r#"{"max": 2, "when": "runner_lost"}"#,
                1,
                R::RunnerLost,
                None,
                true,
            ),
            (
                r#"{"max": 2, "when": ["runner_lost"]}"#,
                1,
                R::ScriptFailure,
                Some(1),
                false,
            ),
            (
                r#"{"max": 2, "exit_codes": [137]}"#,
                1,
                R::ScriptFailure,
                Some(137),
                true,
            ),
            // Only exit codes: no reason retries by itself.
            (
                r#"{"max": 2, "exit_codes": 137}"#,
                1,
                R::ScriptFailure,
                Some(1),
                false,
            ),
            (
                r#"{"max": 2, "exit_codes": [137]}"#,
                1,
                R::RunnerLost,
                None,
                false,
            ),
            // Either one is enough.
            (
                r#"{"max": 1, "when": ["job_timeout"], "exit_codes": [3]}"#,
                1,
                R::ScriptFailure,
                Some(3),
                true,
            ),
            (
                r#"{"max": 1, "when": ["job_timeout"], "exit_codes": [3]}"#,
                1,
                R::JobTimeout,
                None,
                true,
            ),
            (
                r#"{"max": 1, "when": ["unknown_failure"]}"#,
                1,
                R::ScriptFailure,
                Some(1),
                false,
            ),
            (
                r#"{"max": 1, "when": []}"#,
                1,
                R::ScriptFailure,
                Some(1),
                false,
            ),
        ];
        for (json, attempt, reason, code, retried) in table {
            assert_eq!(
                parse(json).policy().retries(attempt, reason, code),
                retried,
                "{json} attempt {attempt} {reason:?} {code:?}"
            );
        }
    }

    #[test]
    fn a_bad_retry_says_what_is_expected() {
        for (json, expected) in [
            (r#"{"max": 1, "wehn": []}"#, "unknown field `wehn`"),
            (r#"{"when": []}"#, "missing field `max`"),
            (
                r#"{"max": 1, "when": ["sometimes"]}"#,
                "a failure (`always`",
            ),
            ("-1", "a number of retries"),
            (r#""2""#, "a number of retries"),
        ] {
            let error = serde_json::from_str::<Retry>(json)
                .expect_err(json)
                .to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn allow_failure_takes_a_bool_or_exit_codes() {
        let allow = |json: &str| serde_json::from_str::<AllowFailure>(json).expect(json);
        assert!(!allow("false").allows(Some(1)));
        assert!(allow("true").allows(None));
        let codes = allow(r#"{"exit_codes": [42, 1, 42]}"#);
        assert_eq!(codes, AllowFailure::ExitCodes(vec![1, 42]));
        assert!(codes.allows(Some(42)));
        assert!(!codes.allows(Some(2)));
        assert!(
            !codes.allows(None),
            "a lost runner is not an allowed exit code"
        );
        assert!(allow(r#"{"exit_codes": 3}"#).allows(Some(3)));
        let error = serde_json::from_str::<AllowFailure>(r#"{"codes": [1]}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `codes`"),
            "{error}"
        );
        for value in [AllowFailure::No, AllowFailure::Yes, codes] {
            let text = serde_json::to_string(&value).expect("serializes");
            assert_eq!(allow(&text), value, "{text}");
        }
    }
}
