//! `retry`, `allow_failure` and `environment`, read by the domain's own serde impls so that
//! the file takes exactly the shapes the JSON API takes.

use crate::error::Problems;
use crate::keys;
use crate::tree::{Node, PathStep, Value, get, join};
use lockstep_domain::{AllowFailure, Artifacts, Caches, Environment, Retry};
use serde::de::DeserializeOwned;

/// GitLab's `retry: when` failures that Lockstep names differently, and what it calls them.
const RENAMED_FAILURES: &[(&str, &str)] = &[
    ("stuck_or_timeout_failure", "runner_lost"),
    ("job_execution_timeout", "job_timeout"),
];

/// GitLab's `retry: when` failures that cannot happen in Lockstep.
const GITLAB_ONLY_FAILURES: &[&str] = &[
    "api_failure",
    "runner_unsupported",
    "stale_schedule",
    "archived_failure",
    "unmet_prerequisites",
    "scheduler_failure",
    "data_integrity_failure",
];

pub(crate) fn retry(node: &Node, field: &str, problems: &mut Problems) -> Option<Retry> {
    if !keys_known(node, keys::RETRY, field, problems)
        || !gitlab_failures_explained(node, field, problems)
    {
        return None;
    }
    domain(node, field, problems)
}

pub(crate) fn allow_failure(
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<AllowFailure> {
    if !keys_known(node, keys::ALLOW_FAILURE, field, problems) {
        return None;
    }
    domain(node, field, problems)
}

pub(crate) fn environment(
    node: &Node,
    field: &str,
    problems: &mut Problems,
) -> Option<Environment> {
    if !keys_known(node, keys::ENVIRONMENT, field, problems) {
        return None;
    }
    domain(node, field, problems)
}

pub(crate) fn artifacts(node: &Node, field: &str, problems: &mut Problems) -> Option<Artifacts> {
    if node.as_map().is_none() {
        problems.at(
            node.pos,
            field,
            format!(
                "`artifacts` must be a mapping such as {{paths: [out/]}}, not {}",
                node.kind()
            ),
        );
        return None;
    }
    if !keys_known(node, keys::ARTIFACTS, field, problems) {
        return None;
    }
    domain(node, field, problems)
}

/// `cache`: one mapping or a list of them, each with its keys (and its `key`'s) checked.
pub(crate) fn cache(node: &Node, field: &str, problems: &mut Problems) -> Option<Caches> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut clean = true;
    for item in items {
        let Some(entries) = item.as_map() else {
            problems.at(
                item.pos,
                field,
                format!(
                    "`cache` must be a mapping such as {{key: deps, paths: [target/]}} or a list of them, not {}",
                    item.kind()
                ),
            );
            clean = false;
            continue;
        };
        clean &= keys::check(entries, keys::CACHE, field, problems);
        if let Some(key) = get(entries, "key") {
            clean &= keys_known(&key.value, keys::CACHE_KEY, &join(field, "key"), problems);
        }
    }
    if !clean {
        return None;
    }
    domain(node, field, problems)
}

/// Checks the keys of the long form first: a typo or one of GitLab's other keys then gets the
/// same message as anywhere else ("did you mean", "not supported yet"), at the key.
fn keys_known(node: &Node, keys: keys::Keys, field: &str, problems: &mut Problems) -> bool {
    node.as_map()
        .is_none_or(|entries| keys::check(entries, keys, field, problems))
}

/// Reports GitLab failure names in `retry: when` with what to write instead; true when none.
fn gitlab_failures_explained(node: &Node, field: &str, problems: &mut Problems) -> bool {
    let Some(when) = node.as_map().and_then(|entries| get(entries, "when")) else {
        return true;
    };
    let names: Vec<&Node> = match &when.value.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![&when.value],
    };
    let mut clean = true;
    for name in names {
        let Some(text) = name.as_str() else { continue };
        let message = if let Some((_, ours)) = RENAMED_FAILURES.iter().find(|(g, _)| *g == text) {
            format!("`{text}` is GitLab's name; Lockstep calls it `{ours}`")
        } else if GITLAB_ONLY_FAILURES.contains(&text) {
            format!("`retry: when: {text}` is not supported yet")
        } else {
            continue;
        };
        clean = false;
        problems.at(name.pos, &join(field, "when"), message);
    }
    clean
}

/// Deserializes `node` with `T`'s serde impl; a refusal is reported at the part refused.
fn domain<T: DeserializeOwned>(node: &Node, field: &str, problems: &mut Problems) -> Option<T> {
    let json = match node.to_json() {
        Ok(json) => json,
        Err((pos, message)) => {
            problems.at(pos, field, message);
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(json) {
        Ok(value) => Some(value),
        Err(error) => {
            let path = steps(error.path());
            let at = node.find(&path).unwrap_or(node);
            let mut here = field.to_owned();
            for step in &path {
                if let PathStep::Key(key) = step {
                    here = join(&here, key);
                }
            }
            let key = crate::fields::key_of(field);
            problems.at(at.pos, &here, format!("`{key}`: {}", error.into_inner()));
            None
        }
    }
}

fn steps(path: &serde_path_to_error::Path) -> Vec<PathStep> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(PathStep::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(PathStep::Index(*index)),
            _ => None,
        })
        .collect()
}
