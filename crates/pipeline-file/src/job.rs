//! One job's keys, read from its mapping once `extends` is merged: every key typed, each with
//! the place its key was written. `default` takes the same reader for the keys it shares.

use crate::error::Problems;
use crate::fields;
use crate::keys;
use crate::matrix::{self, Instance};
use crate::needs::{self, Need};
use crate::shaped;
use crate::tree::{Entry, Node, Pos, Value, join};
use crate::variables::{self, Variable};
use lockstep_domain::{AllowFailure, Artifacts, Caches, Environment, Retry, When, limits};

/// A value and where its key was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Set<T> {
    pub(crate) value: T,
    pub(crate) pos: Pos,
}

/// The keys a job shares with `default`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Common {
    pub(crate) before_script: Option<Set<Vec<String>>>,
    pub(crate) after_script: Option<Set<Vec<String>>>,
    pub(crate) tags: Option<Set<Vec<String>>>,
    pub(crate) timeout: Option<Set<u32>>,
    pub(crate) retry: Option<Set<Retry>>,
    pub(crate) interruptible: Option<Set<bool>>,
    pub(crate) variables: Option<Set<Vec<Variable>>>,
    pub(crate) artifacts: Option<Set<Artifacts>>,
    pub(crate) cache: Option<Set<Caches>>,
}

/// `when`, with GitLab's `never` (the job is not in the pipeline) beside the domain's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    When(When),
    Never,
}

/// Every key of one job.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFields {
    pub(crate) common: Common,
    pub(crate) stage: Option<Set<String>>,
    pub(crate) script: Option<Set<Vec<String>>>,
    pub(crate) needs: Option<Set<Vec<Need>>>,
    pub(crate) dependencies: Option<Set<Vec<(String, Pos)>>>,
    pub(crate) when: Option<Set<Run>>,
    pub(crate) allow_failure: Option<Set<AllowFailure>>,
    pub(crate) environment: Option<Set<Environment>>,
    pub(crate) resource_group: Option<Set<String>>,
    pub(crate) parallel: Option<Set<Vec<Instance>>>,
}

/// Reads the job `name` from its merged mapping; `None` when it had a problem (reported).
pub(crate) fn read(name: &str, node: &Node, problems: &mut Problems) -> Option<JobFields> {
    let before = problems.count();
    let entries = node.as_map()?;
    keys::check(entries, keys::JOB, name, problems);
    let mut job = JobFields {
        common: common(entries, name, problems),
        ..JobFields::default()
    };
    for entry in present(entries) {
        let field = join(name, &entry.key);
        let (value, pos) = (&entry.value, entry.key_pos);
        match entry.key.as_str() {
            "stage" => job.stage = fields::string(value, &field, problems).map(at(pos)),
            "script" => job.script = fields::script(value, &field, problems).map(at(pos)),
            "needs" => job.needs = needs::read(value, &field, problems).map(at(pos)),
            "dependencies" => {
                job.dependencies = fields::names(value, &field, problems).map(at(pos));
            }
            "when" => job.when = when(value, &field, problems).map(at(pos)),
            "allow_failure" => {
                job.allow_failure = shaped::allow_failure(value, &field, problems).map(at(pos));
            }
            "environment" => {
                job.environment = shaped::environment(value, &field, problems).map(at(pos));
            }
            "resource_group" => {
                job.resource_group = fields::string(value, &field, problems).map(at(pos));
            }
            "parallel" => job.parallel = matrix::expand(name, value, &field, problems).map(at(pos)),
            _ => {}
        }
    }
    (problems.count() == before).then_some(job)
}

/// Reads `default`'s keys (the same readers as a job's).
pub(crate) fn defaults(node: &Node, problems: &mut Problems) -> Option<Common> {
    let Some(entries) = node.as_map() else {
        problems.at(
            node.pos,
            "default",
            format!("`default` must be a mapping, not {}", node.kind()),
        );
        return None;
    };
    let before = problems.count();
    keys::check(entries, keys::DEFAULT, "default", problems);
    let common = common(entries, "default", problems);
    (problems.count() == before).then_some(common)
}

/// Wraps a value read for a key written at `pos`.
fn at<T>(pos: Pos) -> impl FnOnce(T) -> Set<T> {
    move |value| Set { value, pos }
}

/// The entries with a value: GitLab reads `key: null` as the key not given, so that `default`
/// (or nothing) fills it.
fn present(entries: &[Entry]) -> impl Iterator<Item = &Entry> {
    entries.iter().filter(|e| !e.value.is_null())
}

fn common(entries: &[Entry], path: &str, problems: &mut Problems) -> Common {
    let mut common = Common::default();
    for entry in present(entries) {
        let field = join(path, &entry.key);
        let (value, pos) = (&entry.value, entry.key_pos);
        match entry.key.as_str() {
            "before_script" => {
                common.before_script = fields::script(value, &field, problems).map(at(pos));
            }
            "after_script" => {
                common.after_script = fields::script(value, &field, problems).map(at(pos));
            }
            "tags" => common.tags = tags(value, &field, problems).map(at(pos)),
            "timeout" => common.timeout = timeout(value, &field, problems).map(at(pos)),
            "retry" => common.retry = shaped::retry(value, &field, problems).map(at(pos)),
            "interruptible" => {
                common.interruptible = fields::boolean(value, &field, problems).map(at(pos));
            }
            "variables" => common.variables = variables::read(value, &field, problems).map(at(pos)),
            "artifacts" => {
                common.artifacts = shaped::artifacts(value, &field, problems).map(at(pos));
            }
            "cache" => common.cache = shaped::cache(value, &field, problems).map(at(pos)),
            _ => {}
        }
    }
    common
}

fn tags(node: &Node, field: &str, problems: &mut Problems) -> Option<Vec<String>> {
    let names = fields::names(node, field, problems)?;
    Some(names.into_iter().map(|(name, _)| name).collect())
}

fn when(node: &Node, field: &str, problems: &mut Problems) -> Option<Run> {
    let text = fields::string(node, field, problems)?;
    match text.as_str() {
        "never" => Some(Run::Never),
        "delayed" => {
            problems.at(node.pos, field, "`when: delayed` is not supported yet");
            None
        }
        other => {
            let parsed = When::parse(other).map(Run::When);
            if parsed.is_none() {
                problems.at(
                    node.pos,
                    field,
                    format!(
                        "`when` must be on_success, on_failure, always, manual or never, not `{}`",
                        crate::error::shown(other)
                    ),
                );
            }
            parsed
        }
    }
}

/// `timeout`: seconds as a number, or a GitLab duration (`1h 30m`), up to a week.
fn timeout(node: &Node, field: &str, problems: &mut Problems) -> Option<u32> {
    let seconds = match &node.value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| "must not be negative".to_owned()),
        Value::Str(text) => lockstep_domain::duration_seconds(text),
        _ => Err(format!(
            "must be a duration such as `1h 30m`, not {}",
            node.kind()
        )),
    };
    let max = limits::MAX_TIMEOUT_SECONDS;
    let checked = seconds.and_then(|s| match u32::try_from(s) {
        Ok(s) if (1..=max).contains(&s) => Ok(s),
        _ => Err(format!(
            "must be between 1 second and 1 week ({max} seconds), not {s} seconds"
        )),
    });
    checked
        .map_err(|why| problems.at(node.pos, field, format!("`timeout` {why}")))
        .ok()
}
