//! Pipeline definitions as users write them, and their validation into a [`ValidPipeline`].

use crate::artifacts::{Artifacts, Cache, Caches, Need, ValidArtifacts};
use crate::environment::{Environment, EnvironmentAction};
use crate::graph::{JobSet, Needs};
use crate::retry::{AllowFailure, Retry, RetryPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// The documented limits of a pipeline definition.
pub mod limits {
    /// Jobs in one pipeline. Large enough for monorepo fan-outs of a thousand jobs.
    pub const MAX_JOBS: usize = 2_000;
    /// Characters in a job, stage, environment or tag name.
    pub const MAX_NAME_CHARS: usize = 255;
    /// Entries in one job's `needs` (GitLab's limit too).
    pub const MAX_NEEDS: usize = 50;
    /// Lines in one job's script (and in its `before_script`, and in its `after_script`).
    pub const MAX_SCRIPT_LINES: usize = 1_000;
    /// Bytes in one job's script, all lines together (and in each of the other two).
    pub const MAX_SCRIPT_BYTES: usize = 256 * 1024;
    /// Variables of one job.
    pub const MAX_VARIABLES: usize = 200;
    /// Bytes in one variable's value (GitLab's limit for a variable is 10,000 characters).
    pub const MAX_VARIABLE_BYTES: usize = 10_000;
    /// Bytes in all of one job's variables, names and values together.
    pub const MAX_VARIABLES_BYTES: usize = 64 * 1024;
    /// Tags on one job.
    pub const MAX_TAGS: usize = 50;
    /// `timeout_seconds` when a job gives none.
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3_600;
    /// The longest `timeout_seconds` accepted: one week.
    pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3_600;
    /// The most automatic retries of one job (`retry: max`).
    pub const MAX_RETRY: u32 = 5;
    /// Exit codes in one `retry: exit_codes` or `allow_failure: exit_codes`.
    pub const MAX_EXIT_CODES: usize = 50;
    /// The stage of a job that names none.
    pub const DEFAULT_STAGE: &str = "test";
    /// Slots of a resource group that was never given a limit: one deploy at a time.
    pub const DEFAULT_GROUP_LIMIT: u32 = 1;
    /// The most slots a resource group may have.
    pub const MAX_GROUP_LIMIT: u32 = 100;
    /// Globs in one `artifacts: paths` (or `exclude`, or `cache: paths`).
    pub const MAX_ARTIFACT_PATHS: usize = 100;
    /// Bytes in one of those globs.
    pub const MAX_PATH_BYTES: usize = 4_096;
    /// Entries of one job's `cache` (GitLab's limit too).
    pub const MAX_CACHES: usize = 4;
    /// Files in one `cache: key: files` (GitLab's limit too).
    pub const MAX_CACHE_KEY_FILES: usize = 2;
    /// The longest `artifacts: expire_in` short of `never`: a hundred years.
    pub const MAX_EXPIRE_IN_SECONDS: u64 = 100 * 365 * 86_400;
}

/// What a new pipeline does to the older, unfinished pipelines of its project and ref (GitLab's
/// `workflow:auto_cancel:on_new_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoCancel {
    /// Cancel an older pipeline whole, but only while every build of it that has started is
    /// interruptible (or none has started): a deploy that started and is not interruptible is
    /// never interrupted.
    #[default]
    Conservative,
    /// Cancel only the older pipelines' interruptible builds that have not finished.
    Interruptible,
    /// Leave older pipelines alone.
    None,
}

impl AutoCancel {
    /// Every value, in declaration order.
    pub const ALL: [Self; 3] = [Self::Conservative, Self::Interruptible, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conservative => "conservative",
            Self::Interruptible => "interruptible",
            Self::None => "none",
        }
    }
}

/// When a job runs, given how the jobs it needs turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Only if every job it needs passed (the default).
    #[default]
    OnSuccess,
    /// Only if a job it needs failed.
    OnFailure,
    /// Whatever happened to the jobs it needs.
    Always,
    /// Like `on_success`, but it waits for a person instead of starting by itself.
    Manual,
}

impl When {
    /// Every value, in declaration order.
    pub const ALL: [Self; 4] = [Self::OnSuccess, Self::OnFailure, Self::Always, Self::Manual];

    /// The name stored in the database and used in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnSuccess => "on_success",
            Self::OnFailure => "on_failure",
            Self::Always => "always",
            Self::Manual => "manual",
        }
    }

    /// The inverse of [`When::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == value)
    }
}

/// A pipeline as submitted: a list of jobs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDefinition {
    pub jobs: Vec<JobDefinition>,
}

/// One job as submitted. Validation turns it into a [`ValidJob`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDefinition {
    pub name: String,
    #[serde(default)]
    pub stage: Option<String>,
    /// Lines run first, in the same shell as `script`.
    #[serde(default)]
    pub before_script: Vec<String>,
    pub script: Vec<String>,
    /// Lines run after `script` in a new shell, whatever its outcome.
    #[serde(default)]
    pub after_script: Vec<String>,
    /// Environment variables for the scripts, beside the `CI_*` ones.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The jobs this one waits for. Absent: every job of earlier stages. Empty: none. An entry
    /// is a name or `{job, artifacts: false}`.
    #[serde(default)]
    pub needs: Option<Vec<Need>>,
    /// The jobs whose artifacts this one fetches. Absent: every job it waits for (but the
    /// `needs` entries with `artifacts: false`). Each must be a job it waits for.
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    /// The files kept after the script, for later jobs and for people.
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
    /// One cache or a list of them: files kept from one pipeline to the next.
    #[serde(default)]
    pub cache: Option<Caches>,
    #[serde(default)]
    pub when: When,
    /// `true`, `false` or `{exit_codes}`: the failures that let the pipeline pass anyway.
    #[serde(default)]
    pub allow_failure: AllowFailure,
    /// A name (the job deploys there) or `{name, action: start|prepare|stop}`.
    #[serde(default)]
    pub environment: Option<Environment>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Automatic retries: `N` (any failure, up to `N` times) or `{max, when, exit_codes}`.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// The resource group whose slots this job must hold to run (one at a time, by default).
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Safe to stop when a newer pipeline on the same ref makes it redundant.
    #[serde(default)]
    pub interruptible: bool,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong {
        max: usize,
    },
    TooMany {
        max: usize,
    },
    BadCharacters {
        allowed: &'static str,
    },
    DuplicateJob,
    DuplicateNeed(String),
    UnknownJob(String),
    Cycle(Vec<String>),
    OutOfRange {
        min: u32,
        max: u32,
    },
    /// A dependency the job does not wait for.
    NotNeeded(String),
    /// Anything else, said in words.
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("must not be empty"),
            Self::TooLong { max } => write!(f, "is longer than {max}"),
            Self::TooMany { max } => write!(f, "has more than {max} entries"),
            Self::BadCharacters { allowed } => write!(f, "may contain only {allowed}"),
            Self::DuplicateJob => f.write_str("is used by an earlier job"),
            Self::DuplicateNeed(name) => write!(f, "lists `{name}` twice"),
            Self::UnknownJob(name) => {
                write!(f, "names `{name}`, which is not a job of this pipeline")
            }
            Self::Cycle(jobs) => write!(f, "form a cycle: {}", jobs.join(" -> ")),
            Self::OutOfRange { min, max } => write!(f, "must be between {min} and {max}"),
            Self::NotNeeded(name) => write!(
                f,
                "names `{name}`, which this job does not wait for; list it in `needs` (or put it in an earlier stage)"
            ),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

/// The first problem found in a definition, naming the job and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionError {
    job: Option<String>,
    field: &'static str,
    problem: Problem,
}

impl DefinitionError {
    fn pipeline(field: &'static str, problem: Problem) -> Self {
        Self {
            job: None,
            field,
            problem,
        }
    }

    pub(crate) fn job(job: &str, field: &'static str, problem: Problem) -> Self {
        Self {
            job: Some(job.to_owned()),
            field,
            problem,
        }
    }

    /// The job at fault, or `None` for a problem with the pipeline as a whole.
    pub fn job_name(&self) -> Option<&str> {
        self.job.as_deref()
    }

    /// The field at fault, as spelled in the definition (`jobs`, `name`, `needs`, …).
    pub fn field(&self) -> &'static str {
        self.field
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.job {
            Some(job) => write!(f, "job `{job}`: `{}` {}", self.field, self.problem),
            None => write!(f, "`{}` {}", self.field, self.problem),
        }
    }
}

/// A job that passed validation. Fields are private: they hold the invariants checked there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidJob {
    name: String,
    stage: String,
    stage_idx: u32,
    before_script: Vec<String>,
    script: Vec<String>,
    after_script: Vec<String>,
    variables: BTreeMap<String, String>,
    needs: Option<Vec<String>>,
    when: When,
    allow_failure: AllowFailure,
    environment: Option<Environment>,
    tags: Vec<String>,
    timeout_seconds: u32,
    retry: RetryPolicy,
    resource_group: Option<String>,
    interruptible: bool,
    artifacts: Option<ValidArtifacts>,
    caches: Vec<Cache>,
    dependencies: Vec<String>,
}

impl ValidJob {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn stage(&self) -> &str {
        &self.stage
    }
    /// Position of the stage in the pipeline, from 0, in order of first appearance.
    pub fn stage_idx(&self) -> u32 {
        self.stage_idx
    }
    pub fn before_script(&self) -> &[String] {
        &self.before_script
    }
    pub fn script(&self) -> &[String] {
        &self.script
    }
    pub fn after_script(&self) -> &[String] {
        &self.after_script
    }
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }
    /// `None` means every job of earlier stages.
    pub fn needs(&self) -> Option<&[String]> {
        self.needs.as_deref()
    }
    pub fn when(&self) -> When {
        self.when
    }
    pub fn allow_failure(&self) -> &AllowFailure {
        &self.allow_failure
    }
    /// The environment's name, whatever the job does to it.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_ref().map(|e| e.name.as_str())
    }
    /// What the job does to its environment (`start` when it has none).
    pub fn environment_action(&self) -> EnvironmentAction {
        self.environment
            .as_ref()
            .map(|e| e.action)
            .unwrap_or_default()
    }
    /// The environment a deployment follows the build to: only a job that starts one deploys.
    pub fn deploys_to(&self) -> Option<&str> {
        self.environment
            .as_ref()
            .filter(|e| e.action == EnvironmentAction::Start)
            .map(|e| e.name.as_str())
    }
    /// Sorted and without duplicates.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }
    pub fn timeout_seconds(&self) -> u32 {
        self.timeout_seconds
    }
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }
    pub fn interruptible(&self) -> bool {
        self.interruptible
    }
    pub fn artifacts(&self) -> Option<&ValidArtifacts> {
        self.artifacts.as_ref()
    }
    pub fn caches(&self) -> &[Cache] {
        &self.caches
    }
    /// The jobs whose artifacts this one fetches before its script, in definition order: its
    /// `dependencies`, or else the jobs it waits for, less those it opted out of, keeping only
    /// jobs that declare artifacts.
    pub fn dependencies(&self) -> &[String] {
        &self.dependencies
    }
}

/// A pipeline whose jobs all passed validation and whose needs form no cycle.
#[derive(Debug, Clone)]
pub struct ValidPipeline {
    jobs: Vec<ValidJob>,
    graph: JobSet,
}

impl ValidPipeline {
    pub fn jobs(&self) -> &[ValidJob] {
        &self.jobs
    }

    pub(crate) fn graph(&self) -> &JobSet {
        &self.graph
    }
}

impl PipelineDefinition {
    /// Checks every rule and returns the first problem in job order.
    pub fn validate(self) -> Result<ValidPipeline, DefinitionError> {
        if self.jobs.is_empty() {
            return Err(DefinitionError::pipeline("jobs", Problem::Empty));
        }
        if self.jobs.len() > limits::MAX_JOBS {
            return Err(DefinitionError::pipeline(
                "jobs",
                Problem::TooMany {
                    max: limits::MAX_JOBS,
                },
            ));
        }
        let mut index = HashMap::with_capacity(self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            check_name(&job.name, "name", None)?;
            if index.insert(job.name.as_str(), i).is_some() {
                return Err(DefinitionError::job(
                    &job.name,
                    "name",
                    Problem::DuplicateJob,
                ));
            }
        }
        let mut stages: Vec<String> = Vec::new();
        let mut jobs = Vec::with_capacity(self.jobs.len());
        let mut needs = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            let valid = validate_job(job, &index, &mut stages)?;
            needs.push(match valid.needs() {
                Some(list) => Needs::Explicit(list.iter().map(|n| index[n.as_str()]).collect()),
                None => Needs::EarlierStages,
            });
            jobs.push(valid);
        }
        let graph = JobSet::new(
            jobs.iter().map(ValidJob::stage_idx).collect(),
            needs,
            jobs.iter().map(ValidJob::when).collect(),
            // Nothing has failed yet; a failure's allowance is decided when it happens.
            jobs.iter()
                .map(|job| job.allow_failure.may_allow())
                .collect(),
        )
        .map_err(|cycle| {
            let names: Vec<String> = cycle.iter().map(|&i| jobs[i].name.clone()).collect();
            let first = cycle.iter().min().map_or("", |&i| jobs[i].name.as_str());
            DefinitionError::job(first, "needs", Problem::Cycle(names))
        })?
        .with_groups(jobs.iter().map(|j| j.resource_group.is_some()).collect());
        let resolved = self
            .jobs
            .iter()
            .zip(&jobs)
            .map(|(job, valid)| dependencies(job, valid.stage_idx, &self.jobs, &jobs, &index))
            .collect::<Result<Vec<_>, _>>()?;
        for (job, dependencies) in jobs.iter_mut().zip(resolved) {
            job.dependencies = dependencies;
        }
        Ok(ValidPipeline { jobs, graph })
    }
}

fn validate_job(
    job: &JobDefinition,
    index: &HashMap<&str, usize>,
    stages: &mut Vec<String>,
) -> Result<ValidJob, DefinitionError> {
    let name = job.name.as_str();
    let stage = job
        .stage
        .clone()
        .unwrap_or_else(|| limits::DEFAULT_STAGE.to_owned());
    check_name(&stage, "stage", Some(name))?;
    let stage_idx = stages.iter().position(|s| *s == stage).unwrap_or_else(|| {
        stages.push(stage.clone());
        stages.len() - 1
    });
    check_script(name, "before_script", &job.before_script, false)?;
    check_script(name, "script", &job.script, true)?;
    check_script(name, "after_script", &job.after_script, false)?;
    crate::variables::check(&job.variables)
        .map_err(|problem| DefinitionError::job(name, "variables", problem))?;
    if let Some(needs) = &job.needs {
        check_needs(name, needs, index)?;
    }
    let artifacts = job
        .artifacts
        .as_ref()
        .map(|a| crate::artifacts::check_artifacts(name, a))
        .transpose()?;
    let caches = job.cache.clone().map(Caches::into_vec).unwrap_or_default();
    crate::artifacts::check_caches(name, &caches)?;
    if let Some(env) = &job.environment {
        check_environment(name, &env.name)?;
    }
    let tags = check_tags(name, &job.tags)?;
    let timeout_seconds = in_range(
        name,
        "timeout_seconds",
        job.timeout_seconds
            .unwrap_or(limits::DEFAULT_TIMEOUT_SECONDS),
        1,
        limits::MAX_TIMEOUT_SECONDS,
    )?;
    let retry = check_retry(name, job.retry.as_ref())?;
    check_exit_codes(name, "allow_failure", job.allow_failure.listed_codes())?;
    if let Some(group) = &job.resource_group {
        check_name(group, "resource_group", Some(name))?;
    }
    Ok(ValidJob {
        name: name.to_owned(),
        stage,
        stage_idx: u32::try_from(stage_idx).expect("stage count is bounded by MAX_JOBS"),
        before_script: job.before_script.clone(),
        script: job.script.clone(),
        after_script: job.after_script.clone(),
        variables: job.variables.clone(),
        needs: job
            .needs
            .as_ref()
            .map(|needs| needs.iter().map(|n| n.job.clone()).collect()),
        when: job.when,
        allow_failure: job.allow_failure.clone(),
        environment: job.environment.clone(),
        tags,
        timeout_seconds,
        retry,
        resource_group: job.resource_group.clone(),
        interruptible: job.interruptible,
        artifacts,
        caches,
        // Resolved by the caller, which knows the other jobs.
        dependencies: Vec::new(),
    })
}

/// The jobs whose artifacts `job` fetches (see [`ValidJob::dependencies`]), given every job
/// (`all` as written, `valid` validated, in the same order); `stage_idx` is the job's own.
fn dependencies(
    job: &JobDefinition,
    stage_idx: u32,
    all: &[JobDefinition],
    valid: &[ValidJob],
    index: &HashMap<&str, usize>,
) -> Result<Vec<String>, DefinitionError> {
    let waits_for = |other: &str| match &job.needs {
        Some(needs) => needs.iter().any(|n| n.job == other),
        None => valid[index[other]].stage_idx < stage_idx,
    };
    let chosen: Vec<&str> = match &job.dependencies {
        Some(listed) => {
            check_dependencies(&job.name, listed, index, waits_for)?;
            listed.iter().map(String::as_str).collect()
        }
        None => match &job.needs {
            Some(needs) => needs
                .iter()
                .filter(|n| n.artifacts)
                .map(|n| n.job.as_str())
                .collect(),
            None => all
                .iter()
                .map(|other| other.name.as_str())
                .filter(|other| waits_for(other))
                .collect(),
        },
    };
    Ok(chosen
        .into_iter()
        .filter(|name| all[index[name]].artifacts.is_some())
        .map(str::to_owned)
        .collect())
}

fn check_dependencies(
    job: &str,
    listed: &[String],
    index: &HashMap<&str, usize>,
    waits_for: impl Fn(&str) -> bool,
) -> Result<(), DefinitionError> {
    let mut seen = BTreeSet::new();
    for name in listed {
        let problem = if !index.contains_key(name.as_str()) {
            Problem::UnknownJob(name.clone())
        } else if !seen.insert(name.as_str()) {
            Problem::DuplicateNeed(name.clone())
        } else if !waits_for(name) {
            Problem::NotNeeded(name.clone())
        } else {
            continue;
        };
        return Err(DefinitionError::job(job, "dependencies", problem));
    }
    Ok(())
}

fn check_retry(job: &str, retry: Option<&Retry>) -> Result<RetryPolicy, DefinitionError> {
    let Some(retry) = retry else {
        return Ok(RetryPolicy::never());
    };
    in_range(job, "retry", retry.max, 0, limits::MAX_RETRY)?;
    check_exit_codes(job, "retry", retry.exit_codes.as_deref())?;
    Ok(retry.policy())
}

/// A list of exit codes: given, it names at least one and at most [`limits::MAX_EXIT_CODES`].
fn check_exit_codes(
    job: &str,
    field: &'static str,
    codes: Option<&[i32]>,
) -> Result<(), DefinitionError> {
    match codes {
        Some([]) => Err(DefinitionError::job(job, field, Problem::Empty)),
        Some(codes) if codes.len() > limits::MAX_EXIT_CODES => Err(DefinitionError::job(
            job,
            field,
            Problem::TooMany {
                max: limits::MAX_EXIT_CODES,
            },
        )),
        _ => Ok(()),
    }
}

fn check_name(value: &str, field: &'static str, job: Option<&str>) -> Result<(), DefinitionError> {
    crate::names::check_name(value).map_err(|problem| match job {
        Some(job) => DefinitionError::job(job, field, problem),
        None => DefinitionError {
            job: (!value.is_empty()).then(|| value.to_owned()),
            field,
            problem,
        },
    })
}

/// A list of shell lines: `required` ones (the script) must say something.
fn check_script(
    job: &str,
    field: &'static str,
    script: &[String],
    required: bool,
) -> Result<(), DefinitionError> {
    if required && script.iter().all(|line| line.trim().is_empty()) {
        return Err(DefinitionError::job(job, field, Problem::Empty));
    }
    if script.len() > limits::MAX_SCRIPT_LINES {
        return Err(DefinitionError::job(
            job,
            field,
            Problem::TooMany {
                max: limits::MAX_SCRIPT_LINES,
            },
        ));
    }
    if script.iter().map(String::len).sum::<usize>() > limits::MAX_SCRIPT_BYTES {
        return Err(DefinitionError::job(
            job,
            field,
            Problem::TooLong {
                max: limits::MAX_SCRIPT_BYTES,
            },
        ));
    }
    if script.iter().any(|line| line.contains('\0')) {
        return Err(DefinitionError::job(
            job,
            field,
            Problem::BadCharacters {
                allowed: "text without NUL bytes",
            },
        ));
    }
    Ok(())
}

fn check_needs(
    job: &str,
    needs: &[Need],
    index: &HashMap<&str, usize>,
) -> Result<(), DefinitionError> {
    if needs.len() > limits::MAX_NEEDS {
        return Err(DefinitionError::job(
            job,
            "needs",
            Problem::TooMany {
                max: limits::MAX_NEEDS,
            },
        ));
    }
    let mut seen = BTreeSet::new();
    for need in needs.iter().map(|n| &n.job) {
        if !index.contains_key(need.as_str()) {
            return Err(DefinitionError::job(
                job,
                "needs",
                Problem::UnknownJob(need.clone()),
            ));
        }
        if !seen.insert(need.as_str()) {
            return Err(DefinitionError::job(
                job,
                "needs",
                Problem::DuplicateNeed(need.clone()),
            ));
        }
    }
    Ok(())
}

fn check_environment(job: &str, env: &str) -> Result<(), DefinitionError> {
    check_name(env, "environment", Some(job))?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || " -_/.".contains(c);
    if !env.chars().all(allowed) || env.starts_with('/') || env.ends_with('/') {
        return Err(DefinitionError::job(
            job,
            "environment",
            Problem::BadCharacters {
                allowed: "letters, digits, spaces, '-', '_', '.' and '/' (not first or last)",
            },
        ));
    }
    Ok(())
}

fn check_tags(job: &str, tags: &[String]) -> Result<Vec<String>, DefinitionError> {
    if tags.len() > limits::MAX_TAGS {
        return Err(DefinitionError::job(
            job,
            "tags",
            Problem::TooMany {
                max: limits::MAX_TAGS,
            },
        ));
    }
    for tag in tags {
        check_name(tag, "tags", Some(job))?;
    }
    let set: BTreeSet<&String> = tags.iter().collect();
    Ok(set.into_iter().cloned().collect())
}

fn in_range(
    job: &str,
    field: &'static str,
    value: u32,
    min: u32,
    max: u32,
) -> Result<u32, DefinitionError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DefinitionError::job(
            job,
            field,
            Problem::OutOfRange { min, max },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::CacheKey;

    fn job(name: &str) -> JobDefinition {
        JobDefinition {
            name: name.to_owned(),
            script: vec!["true".to_owned()],
            ..JobDefinition::default()
        }
    }

    fn check(jobs: Vec<JobDefinition>, expected: Option<(&str, &str, Problem)>) {
        let result = PipelineDefinition { jobs }.validate();
        match (result, expected) {
            (Ok(_), None) => {}
            (Err(err), Some((job, field, problem))) => {
                assert_eq!(
                    (err.job_name().unwrap_or(""), err.field(), err.problem()),
                    (job, field, &problem)
                );
            }
            (Ok(_), Some(expected)) => panic!("accepted a definition with {expected:?}"),
            (Err(err), None) => panic!("rejected a valid definition: {err}"),
        }
    }

    fn with(name: &str, edit: impl FnOnce(&mut JobDefinition)) -> JobDefinition {
        let mut job = job(name);
        edit(&mut job);
        job
    }

    #[test]
    fn validation_table() {
        let long = "x".repeat(limits::MAX_NAME_CHARS + 1);
        check(vec![job("a"), job("b")], None);
        check(vec![], Some(("", "jobs", Problem::Empty)));
        check(
            vec![job("a"), job("a")],
            Some(("a", "name", Problem::DuplicateJob)),
        );
        check(vec![job("")], Some(("", "name", Problem::Empty)));
        check(
            vec![job(&long)],
            Some((
                long.as_str(),
                "name",
                Problem::TooLong {
                    max: limits::MAX_NAME_CHARS,
                },
            )),
        );
        check(
            vec![job("tab\tname")],
            Some((
                "tab\tname",
                "name",
                Problem::BadCharacters {
                    allowed: "printable characters, without leading or trailing spaces",
                },
            )),
        );
        check(
            vec![with("a", |j| j.script = vec![])],
            Some(("a", "script", Problem::Empty)),
        );
        check(
            vec![with("a", |j| j.script = vec![" ".into()])],
            Some(("a", "script", Problem::Empty)),
        );
        check(
            vec![with("a", |j| {
                j.script = vec!["x".into(); limits::MAX_SCRIPT_LINES + 1];
            })],
            Some((
                "a",
                "script",
                Problem::TooMany {
                    max: limits::MAX_SCRIPT_LINES,
                },
            )),
        );
    }

    #[test]
    fn validation_table_for_needs_and_limits() {
        check(
            vec![with("a", |j| j.needs = Some(vec!["nope".into()]))],
            Some(("a", "needs", Problem::UnknownJob("nope".into()))),
        );
        check(
            vec![
                job("b"),
                with("a", |j| j.needs = Some(vec!["b".into(), "b".into()])),
            ],
            Some(("a", "needs", Problem::DuplicateNeed("b".into()))),
        );
        check(
            vec![with("a", |j| j.needs = Some(vec!["a".into()]))],
            Some(("a", "needs", Problem::Cycle(vec!["a".into()]))),
        );
        check(
            vec![with("a", |j| j.timeout_seconds = Some(0))],
            Some((
                "a",
                "timeout_seconds",
                Problem::OutOfRange {
                    min: 1,
                    max: limits::MAX_TIMEOUT_SECONDS,
                },
            )),
        );
        check(
            vec![with("a", |j| j.retry = Some(Retry::times(6)))],
            Some((
                "a",
                "retry",
                Problem::OutOfRange {
                    min: 0,
                    max: limits::MAX_RETRY,
                },
            )),
        );
        check(
            vec![with("a", |j| j.environment = Some("/prod".into()))],
            Some((
                "a",
                "environment",
                Problem::BadCharacters {
                    allowed: "letters, digits, spaces, '-', '_', '.' and '/' (not first or last)",
                },
            )),
        );
        check(
            vec![with("a", |j| j.stage = Some(String::new()))],
            Some(("a", "stage", Problem::Empty)),
        );
        check(
            vec![with("a", |j| j.tags = vec![String::new()])],
            Some(("a", "tags", Problem::Empty)),
        );
    }

    #[test]
    fn validation_table_for_scripts_variables_and_environments() {
        let too_many = vec!["x".to_owned(); limits::MAX_SCRIPT_LINES + 1];
        let many_lines = Problem::TooMany {
            max: limits::MAX_SCRIPT_LINES,
        };
        // Around the script, nothing is required.
        check(
            vec![with("a", |j| {
                j.before_script = vec![String::new()];
                j.after_script = vec![];
            })],
            None,
        );
        check(
            vec![with("a", |j| j.before_script.clone_from(&too_many))],
            Some(("a", "before_script", many_lines.clone())),
        );
        check(
            vec![with("a", |j| j.after_script = vec!["nul\0".into()])],
            Some((
                "a",
                "after_script",
                Problem::BadCharacters {
                    allowed: "text without NUL bytes",
                },
            )),
        );
        check(
            vec![with("a", |j| {
                j.variables = BTreeMap::from([("1BAD".into(), "v".into())]);
            })],
            Some((
                "a",
                "variables",
                Problem::BadCharacters {
                    allowed: crate::variables::NAME_RULE,
                },
            )),
        );
        check(
            vec![with("a", |j| {
                j.environment = Some(Environment {
                    name: "review/x".into(),
                    action: EnvironmentAction::Stop,
                });
            })],
            None,
        );
        check(
            vec![with("a", |j| {
                j.environment = Some(Environment {
                    name: String::new(),
                    action: EnvironmentAction::Prepare,
                });
            })],
            Some(("a", "environment", Problem::Empty)),
        );
    }

    #[test]
    fn only_a_job_that_starts_its_environment_deploys() {
        let jobs = EnvironmentAction::ALL
            .into_iter()
            .map(|action| {
                with(action.as_str(), |j| {
                    j.environment = Some(Environment {
                        name: "review".into(),
                        action,
                    });
                })
            })
            .collect();
        let valid = PipelineDefinition { jobs }.validate().unwrap();
        let deploys: Vec<Option<&str>> = valid.jobs().iter().map(ValidJob::deploys_to).collect();
        assert_eq!(deploys, [Some("review"), None, None]);
        assert!(
            valid
                .jobs()
                .iter()
                .all(|j| j.environment() == Some("review"))
        );
    }

    fn kept(paths: &[&str]) -> Artifacts {
        Artifacts {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            ..Artifacts::default()
        }
    }

    fn resolved(jobs: Vec<JobDefinition>) -> Vec<(String, Vec<String>)> {
        let valid = PipelineDefinition { jobs }.validate().unwrap();
        valid
            .jobs()
            .iter()
            .map(|j| (j.name().to_owned(), j.dependencies().to_vec()))
            .collect()
    }

    #[test]
    fn dependencies_default_to_the_jobs_waited_for_that_keep_artifacts() {
        let staged = |name: &str, stage: &str| {
            with(name, |j| {
                j.stage = Some(stage.into());
                j.artifacts = Some(kept(&["out"]));
            })
        };
        let deps = resolved(vec![
            staged("build", "build"),
            with("plain", |j| j.stage = Some("build".into())),
            with("test", |j| j.stage = Some("test".into())),
            // Defined last but in the first stage: `test` still waits for it.
            staged("late", "build"),
            with("direct", |j| {
                j.stage = Some("test".into());
                j.needs = Some(vec![
                    "build".into(),
                    Need {
                        job: "late".into(),
                        artifacts: false,
                    },
                ]);
            }),
            with("none", |j| {
                j.stage = Some("test".into());
                j.dependencies = Some(vec![]);
            }),
            with("chosen", |j| {
                j.stage = Some("test".into());
                j.dependencies = Some(vec!["late".into(), "plain".into()]);
            }),
        ]);
        let deps: Vec<(&str, Vec<&str>)> = deps
            .iter()
            .map(|(n, d)| (n.as_str(), d.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            deps,
            [
                ("build", vec![]),
                ("plain", vec![]),
                ("test", vec!["build", "late"]),
                ("late", vec![]),
                ("direct", vec!["build"]),
                ("none", vec![]),
                ("chosen", vec!["late"]),
            ]
        );
    }

    #[test]
    fn validation_table_for_artifacts_dependencies_and_caches() {
        let b = || with("b", |j| j.stage = Some("build".into()));
        check(
            vec![
                b(),
                with("a", |j| j.dependencies = Some(vec!["nope".into()])),
            ],
            Some(("a", "dependencies", Problem::UnknownJob("nope".into()))),
        );
        check(
            vec![
                b(),
                with("a", |j| {
                    j.needs = Some(vec![]);
                    j.dependencies = Some(vec!["b".into()]);
                }),
            ],
            Some(("a", "dependencies", Problem::NotNeeded("b".into()))),
        );
        check(
            vec![with("a", |j| j.artifacts = Some(kept(&[])))],
            Some(("a", "artifacts.paths", Problem::Empty)),
        );
        check(
            vec![with("a", |j| j.artifacts = Some(kept(&["../up"])))],
            Some((
                "a",
                "artifacts.paths",
                Problem::Invalid(
                    "`../up` leaves the build directory; paths are relative to it".into(),
                ),
            )),
        );
        let err = PipelineDefinition {
            jobs: vec![with("a", |j| {
                j.artifacts = Some(Artifacts {
                    paths: vec!["x".into()],
                    expire_in: Some("soon".into()),
                    ..Artifacts::default()
                });
            })],
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field(), "artifacts.expire_in");
        let cache = |key: CacheKey| Cache {
            key,
            paths: vec!["target".into()],
            ..Cache::default()
        };
        check(
            vec![with("a", |j| {
                j.cache = Some(Caches::Many(vec![cache(CacheKey::default()); 5]));
            })],
            Some((
                "a",
                "cache",
                Problem::TooMany {
                    max: limits::MAX_CACHES,
                },
            )),
        );
        check(
            vec![with("a", |j| {
                j.cache = Some(Caches::One(Box::new(cache(CacheKey::Files {
                    files: vec![],
                    prefix: None,
                }))));
            })],
            Some(("a", "cache.key.files", Problem::Empty)),
        );
    }

    #[test]
    fn too_many_jobs_is_refused() {
        let jobs = (0..=limits::MAX_JOBS)
            .map(|i| job(&format!("j{i}")))
            .collect();
        check(
            jobs,
            Some((
                "",
                "jobs",
                Problem::TooMany {
                    max: limits::MAX_JOBS,
                },
            )),
        );
    }

    #[test]
    fn a_cycle_names_its_jobs() {
        let jobs = vec![
            with("a", |j| j.needs = Some(vec!["c".into()])),
            with("b", |j| j.needs = Some(vec!["a".into()])),
            with("c", |j| j.needs = Some(vec!["b".into()])),
        ];
        let err = PipelineDefinition { jobs }.validate().unwrap_err();
        assert_eq!(err.field(), "needs");
        let Problem::Cycle(names) = err.problem() else {
            panic!("{err}")
        };
        let mut names = names.clone();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(err.to_string().contains("form a cycle"), "{err}");
    }

    #[test]
    fn stages_are_numbered_by_first_appearance_and_tags_deduplicated() {
        let jobs = vec![
            with("build", |j| j.stage = Some("build".into())),
            with("unit", |j| {
                j.tags = vec!["linux".into(), "docker".into(), "linux".into()];
            }),
            with("compile", |j| j.stage = Some("build".into())),
        ];
        let valid = PipelineDefinition { jobs }.validate().unwrap();
        let stages: Vec<u32> = valid.jobs().iter().map(ValidJob::stage_idx).collect();
        assert_eq!(stages, [0, 1, 0]);
        assert_eq!(valid.jobs()[1].stage(), "test");
        assert_eq!(valid.jobs()[1].tags(), ["docker", "linux"]);
    }

    #[test]
    fn definitions_parse_from_json_and_reject_unknown_fields() {
        let json = r#"{"jobs":[{"name":"deploy","script":["make deploy"],"when":"manual","environment":"staging","needs":[]}]}"#;
        let def: PipelineDefinition = serde_json::from_str(json).unwrap();
        assert_eq!(def.jobs[0].when, When::Manual);
        assert_eq!(def.jobs[0].needs, Some(vec![]));
        assert!(
            serde_json::from_str::<PipelineDefinition>(
                r#"{"jobs":[{"name":"a","script":["x"],"colour":1}]}"#
            )
            .is_err()
        );
    }
}
