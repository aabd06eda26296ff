//! Files that pass between jobs: a job's `artifacts`, the `dependencies` whose artifacts it
//! fetches, its `needs` entries that opt out of them, and its `cache` (GitLab's shapes).

use crate::definition::{DefinitionError, Problem, limits};
use serde::{Deserialize, Serialize};

/// One entry of `needs`: a job name, or `{job, artifacts: false}` to wait for the job without
/// fetching its artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Need {
    pub job: String,
    /// Whether the job fetches this need's artifacts (when `dependencies` does not say).
    pub artifacts: bool,
}

impl From<&str> for Need {
    fn from(job: &str) -> Self {
        job.to_owned().into()
    }
}

impl From<String> for Need {
    fn from(job: String) -> Self {
        Self {
            job,
            artifacts: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a job name or {job, artifacts}")]
enum NeedShape {
    Name(String),
    Long(LongNeed),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LongNeed {
    job: String,
    #[serde(default = "yes")]
    artifacts: bool,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for Need {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match NeedShape::deserialize(deserializer)? {
            NeedShape::Name(job) => job.into(),
            NeedShape::Long(LongNeed { job, artifacts }) => Self { job, artifacts },
        })
    }
}

impl Serialize for Need {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.artifacts {
            serializer.serialize_str(&self.job)
        } else {
            LongNeed {
                job: self.job.clone(),
                artifacts: false,
            }
            .serialize(serializer)
        }
    }
}

/// When a job's artifacts or cache are uploaded, given how its script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadWhen {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

impl UploadWhen {
    /// Whether a script that `succeeded` (or not) uploads.
    pub fn uploads(self, succeeded: bool) -> bool {
        match self {
            Self::OnSuccess => succeeded,
            Self::OnFailure => !succeeded,
            Self::Always => true,
        }
    }
}

/// How long a job's artifacts are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Expiry {
    /// The server's default (`LOCKSTEP_ARTIFACTS_EXPIRE_IN`).
    #[default]
    ServerDefault,
    Never,
    Seconds(u64),
}

impl Expiry {
    /// Reads `expire_in`: `never`, or a GitLab duration such as `1 week` or `30 days`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("never") {
            return Ok(Self::Never);
        }
        let seconds = crate::duration::seconds(text)?;
        if (1..=limits::MAX_EXPIRE_IN_SECONDS).contains(&seconds) {
            Ok(Self::Seconds(seconds))
        } else {
            Err(format!(
                "must be between 1 second and 100 years, or `never`, not {seconds} seconds"
            ))
        }
    }
}

/// A job's `artifacts`: the files it keeps for later jobs and for people.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// Globs relative to the build directory (`*`, `**`, a directory means all under it).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Globs of files left out of `paths`' matches.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The archive's name when downloaded (`artifacts` when absent), without `.zip`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub when: UploadWhen,
    /// `never`, or a duration such as `1 week`; absent: the server's default.
    #[serde(default)]
    pub expire_in: Option<String>,
}

/// What a cache's key is made of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged, expecting = "a key text or {files, prefix}")]
pub enum CacheKey {
    /// A text, in which the runner expands variables (`$CI_COMMIT_REF_NAME`).
    Text(String),
    /// A hash of these files' contents, computed by the runner, after the optional prefix.
    Files {
        files: Vec<String>,
        #[serde(default)]
        prefix: Option<String>,
    },
}

impl Default for CacheKey {
    fn default() -> Self {
        Self::Text("default".to_owned())
    }
}

/// Whether a job downloads its cache before the script, uploads it after, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePolicy {
    #[default]
    PullPush,
    Pull,
    Push,
}

impl CachePolicy {
    pub fn pulls(self) -> bool {
        self != Self::Push
    }
    pub fn pushes(self) -> bool {
        self != Self::Pull
    }
}

/// One entry of a job's `cache`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    #[serde(default)]
    pub key: CacheKey,
    pub paths: Vec<String>,
    #[serde(default)]
    pub policy: CachePolicy,
    #[serde(default)]
    pub when: UploadWhen,
}

/// `cache` as written: one cache or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a cache or a list of caches")]
pub enum Caches {
    One(Box<Cache>),
    Many(Vec<Cache>),
}

impl Caches {
    pub fn into_vec(self) -> Vec<Cache> {
        match self {
            Self::One(cache) => vec![*cache],
            Self::Many(caches) => caches,
        }
    }
}

/// A job's artifacts after validation, their expiry read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidArtifacts {
    declared: Artifacts,
    expiry: Expiry,
}

impl ValidArtifacts {
    /// The artifacts as written (what the runner archives, and when).
    pub fn declared(&self) -> &Artifacts {
        &self.declared
    }
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }
}

pub(crate) fn check_artifacts(
    job: &str,
    artifacts: &Artifacts,
) -> Result<ValidArtifacts, DefinitionError> {
    check_paths(job, "artifacts.paths", &artifacts.paths, true)?;
    check_paths(job, "artifacts.exclude", &artifacts.exclude, false)?;
    if let Some(name) = &artifacts.name {
        crate::names::check_name(name)
            .map_err(|problem| DefinitionError::job(job, "artifacts.name", problem))?;
    }
    let expiry = match &artifacts.expire_in {
        None => Expiry::ServerDefault,
        Some(text) => Expiry::parse(text).map_err(|why| {
            DefinitionError::job(job, "artifacts.expire_in", Problem::Invalid(why))
        })?,
    };
    Ok(ValidArtifacts {
        declared: artifacts.clone(),
        expiry,
    })
}

pub(crate) fn check_caches(job: &str, caches: &[Cache]) -> Result<(), DefinitionError> {
    if caches.len() > limits::MAX_CACHES {
        return Err(DefinitionError::job(
            job,
            "cache",
            Problem::TooMany {
                max: limits::MAX_CACHES,
            },
        ));
    }
    for cache in caches {
        check_paths(job, "cache.paths", &cache.paths, true)?;
        match &cache.key {
            CacheKey::Text(key) => check_key(job, "cache.key", key)?,
            CacheKey::Files { files, prefix } => {
                check_paths(job, "cache.key.files", files, true)?;
                if files.len() > limits::MAX_CACHE_KEY_FILES {
                    return Err(DefinitionError::job(
                        job,
                        "cache.key.files",
                        Problem::TooMany {
                            max: limits::MAX_CACHE_KEY_FILES,
                        },
                    ));
                }
                if let Some(prefix) = prefix {
                    check_key(job, "cache.key.prefix", prefix)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks a cache key as the server receives it (variables expanded, a hash appended); the
/// runner sends it and the server checks it again.
pub fn check_cache_key(key: &str) -> Result<(), Problem> {
    crate::names::check_name(key)?;
    // GitLab's rule too: a key that is only dots would name a directory, not a cache.
    if key.chars().all(|c| c == '.') {
        return Err(Problem::BadCharacters {
            allowed: "printable characters, not only dots",
        });
    }
    Ok(())
}

fn check_key(job: &str, field: &'static str, key: &str) -> Result<(), DefinitionError> {
    check_cache_key(key).map_err(|problem| DefinitionError::job(job, field, problem))
}

/// A list of globs relative to the build directory; `required` lists name at least one.
fn check_paths(
    job: &str,
    field: &'static str,
    paths: &[String],
    required: bool,
) -> Result<(), DefinitionError> {
    let fail = |problem| Err(DefinitionError::job(job, field, problem));
    if required && paths.is_empty() {
        return fail(Problem::Empty);
    }
    if paths.len() > limits::MAX_ARTIFACT_PATHS {
        return fail(Problem::TooMany {
            max: limits::MAX_ARTIFACT_PATHS,
        });
    }
    for path in paths {
        if path.trim().is_empty() {
            return fail(Problem::Empty);
        }
        if path.len() > limits::MAX_PATH_BYTES || path.contains('\0') {
            return fail(Problem::TooLong {
                max: limits::MAX_PATH_BYTES,
            });
        }
        if leaves_the_build_directory(path) {
            return fail(Problem::Invalid(format!(
                "`{path}` leaves the build directory; paths are relative to it"
            )));
        }
    }
    Ok(())
}

/// Absolute, or with more `..` than directories before them.
fn leaves_the_build_directory(path: &str) -> bool {
    if path.starts_with('/') || path.starts_with('\\') {
        return true;
    }
    let mut depth: i64 = 0;
    for part in path.split(['/', '\\']) {
        match part {
            ".." => depth -= 1,
            "" | "." => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_read_names_and_long_entries_and_write_them_back() {
        let needs: Vec<Need> =
            serde_json::from_str(r#"["a", {"job": "b", "artifacts": false}, {"job": "c"}]"#)
                .unwrap();
        assert_eq!(
            needs,
            [
                Need::from("a"),
                Need {
                    job: "b".into(),
                    artifacts: false
                },
                Need::from("c")
            ]
        );
        assert_eq!(
            serde_json::to_string(&needs).unwrap(),
            r#"["a",{"job":"b","artifacts":false},"c"]"#
        );
        assert!(serde_json::from_str::<Need>(r#"{"job": "a", "optional": 1}"#).is_err());
    }

    #[test]
    fn upload_when_table() {
        let cases = [
            (UploadWhen::OnSuccess, [true, false]),
            (UploadWhen::OnFailure, [false, true]),
            (UploadWhen::Always, [true, true]),
        ];
        for (when, [after_success, after_failure]) in cases {
            assert_eq!(when.uploads(true), after_success, "{when:?}");
            assert_eq!(when.uploads(false), after_failure, "{when:?}");
        }
    }

    #[test]
    fn expiry_table() {
        assert_eq!(Expiry::parse("never"), Ok(Expiry::Never));
        assert_eq!(Expiry::parse("1 week"), Ok(Expiry::Seconds(604_800)));
        assert_eq!(Expiry::parse("30 days"), Ok(Expiry::Seconds(2_592_000)));
        assert!(Expiry::parse("0").unwrap_err().contains("between"));
        assert!(Expiry::parse("soon").is_err());
        assert!(Expiry::parse("200 weeks 99999 weeks").is_err());
    }

    #[test]
    fn paths_that_leave_the_build_directory_table() {
        for (path, leaves) in [
            ("out/app", false),
            ("out/../app", false),
            ("./a/**/b", false),
            ("../x", true),
            ("a/../../x", true),
            ("/etc/passwd", true),
            ("..\\x", true),
        ] {
            assert_eq!(leaves_the_build_directory(path), leaves, "{path}");
        }
    }

    #[test]
    fn caches_read_one_or_many_and_their_key_shapes() {
        let one: Caches = serde_json::from_str(r#"{"paths": ["target"]}"#).unwrap();
        assert_eq!(one.into_vec()[0].key, CacheKey::default());
        let many: Caches = serde_json::from_str(
            r#"[{"key": {"files": ["Cargo.lock"]}, "paths": ["t"], "policy": "pull"}]"#,
        )
        .unwrap();
        let many = many.into_vec();
        assert_eq!(many[0].policy, CachePolicy::Pull);
        assert!(
            matches!(&many[0].key, CacheKey::Files { files, prefix: None } if files == &["Cargo.lock"])
        );
        assert!(check_cache_key("...").is_err());
        assert!(check_cache_key("main-1").is_ok());
    }
}
