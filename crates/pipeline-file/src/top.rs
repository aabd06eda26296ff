//! The top level of the file: which keys are settings (`stages`, `variables`, `default`,
//! `workflow`, the global scripts) and which are jobs, and the settings read.

use crate::error::{Problems, shown};
use crate::fields;
use crate::job::{self, Common, Set};
use crate::keys;
use crate::tree::{Entry, Node, get, join};
use crate::variables::{self, Variable};
use lockstep_domain::AutoCancel;

/// GitLab's stages when a file names none (`.pre` and `.post` are always there).
const DEFAULT_STAGES: &[&str] = &["build", "test", "deploy"];

/// What a top-level key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Setting,
    Refused,
    /// `.name`: a template for `extends` or a holder of anchors; never a job.
    Hidden,
    Job,
}

pub(crate) fn kind(key: &str) -> Kind {
    if keys::TOP_KEYS.contains(&key) {
        Kind::Setting
    } else if keys::REFUSED_TOP_KEYS.contains(&key) {
        Kind::Refused
    } else if key.starts_with('.') {
        Kind::Hidden
    } else {
        Kind::Job
    }
}

/// The settings of a file, each with GitLab's default when the file says nothing.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `.pre`, the stages written (or GitLab's three), `.post`.
    pub(crate) stages: Vec<String>,
    pub(crate) variables: Vec<Variable>,
    pub(crate) defaults: Common,
    pub(crate) auto_cancel: AutoCancel,
}

pub(crate) fn settings(top: &[Entry], problems: &mut Problems) -> Settings {
    for entry in top.iter().filter(|e| kind(&e.key) == Kind::Refused) {
        problems.at(entry.key_pos, &entry.key, keys::not_supported(&entry.key));
    }
    let value = |key: &str| get(top, key).map(|e| &e.value).filter(|v| !v.is_null());
    let stages = value("stages").and_then(|node| stages(node, problems));
    let variables =
        value("variables").and_then(|node| variables::read(node, "variables", problems));
    let mut defaults = value("default")
        .and_then(|node| job::defaults(node, problems))
        .unwrap_or_default();
    // GitLab's deprecated global scripts act as defaults; `default:` wins.
    for (key, slot) in [
        ("before_script", &mut defaults.before_script),
        ("after_script", &mut defaults.after_script),
    ] {
        if let (Some(entry), None) = (get(top, key).filter(|e| !e.value.is_null()), &slot) {
            *slot = fields::script(&entry.value, key, problems).map(|value| Set {
                value,
                pos: entry.key_pos,
            });
        }
    }
    Settings {
        stages: stages.unwrap_or_else(|| {
            with_edges(DEFAULT_STAGES.iter().map(|s| (*s).to_owned()).collect())
        }),
        variables: variables.unwrap_or_default(),
        defaults,
        auto_cancel: value("workflow")
            .and_then(|node| workflow(node, problems))
            .unwrap_or_default(),
    }
}

fn with_edges(mut stages: Vec<String>) -> Vec<String> {
    stages.insert(0, ".pre".to_owned());
    stages.push(".post".to_owned());
    stages
}

/// `stages`: the order of the stages; `.pre` and `.post` stay first and last wherever written.
fn stages(node: &Node, problems: &mut Problems) -> Option<Vec<String>> {
    let names = fields::names(node, "stages", problems)?;
    let mut stages: Vec<String> = Vec::with_capacity(names.len() + 2);
    for (name, pos) in names {
        if name == ".pre" || name == ".post" {
            continue;
        }
        if stages.contains(&name) {
            // Reported; the first place counts, so the jobs are still checked against it.
            problems.at(
                pos,
                "stages",
                format!("`stages` lists `{}` twice", shown(&name)),
            );
            continue;
        }
        stages.push(name);
    }
    Some(with_edges(stages))
}

/// `workflow: {auto_cancel: {on_new_commit}}`.
fn workflow(node: &Node, problems: &mut Problems) -> Option<AutoCancel> {
    let Some(entries) = node.as_map() else {
        problems.at(
            node.pos,
            "workflow",
            format!("`workflow` must be a mapping, not {}", node.kind()),
        );
        return None;
    };
    keys::check(entries, keys::WORKFLOW, "workflow", problems);
    let auto_cancel = get(entries, "auto_cancel").filter(|e| !e.value.is_null())?;
    let field = "workflow.auto_cancel";
    let Some(entries) = auto_cancel.value.as_map() else {
        problems.at(
            auto_cancel.value.pos,
            field,
            "`auto_cancel` must be a mapping such as {on_new_commit: interruptible}",
        );
        return None;
    };
    keys::check(entries, keys::AUTO_CANCEL, field, problems);
    let on_new_commit = get(entries, "on_new_commit").filter(|e| !e.value.is_null())?;
    let field = join(field, "on_new_commit");
    let text = fields::string(&on_new_commit.value, &field, problems)?;
    let value = AutoCancel::ALL.into_iter().find(|a| a.as_str() == text);
    if value.is_none() {
        problems.at(
            on_new_commit.value.pos,
            &field,
            format!(
                "`on_new_commit` must be conservative, interruptible or none, not `{}`",
                shown(&text)
            ),
        );
    }
    value
}

/// A hint for a top-level key read as a job that looks like a misspelt setting.
pub(crate) fn misspelt_setting(key: &str) -> Option<&'static str> {
    crate::error::closest(key, keys::TOP_KEYS.iter().copied())
}
