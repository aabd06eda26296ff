//! `needs`: the jobs a job waits for, by name or as `{job, optional}`, resolved against the
//! jobs the pipeline really has (a parallel job's name means all its instances).

use crate::error::{Problems, did_you_mean, shown};
use crate::keys;
use crate::tree::{Node, Pos, Value, get};
use std::collections::{HashMap, HashSet};

/// One entry of `needs` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) name: String,
    pub(crate) optional: bool,
    /// `artifacts: false`: wait for the job without fetching its artifacts.
    pub(crate) artifacts: bool,
    pub(crate) pos: Pos,
}

/// Reads a `needs` list; `None` when an entry is wrong (each one reported).
pub(crate) fn read(node: &Node, field: &str, problems: &mut Problems) -> Option<Vec<Need>> {
    let Value::Seq(items) = &node.value else {
        problems.at(
            node.pos,
            field,
            format!("`needs` must be a list of job names, not {}", node.kind()),
        );
        return None;
    };
    let mut needs = Vec::with_capacity(items.len());
    let mut clean = true;
    for item in items {
        match entry(item, field, problems) {
            Some(need) => needs.push(need),
            None => clean = false,
        }
    }
    clean.then_some(needs)
}

fn entry(item: &Node, field: &str, problems: &mut Problems) -> Option<Need> {
    if let Some(name) = item.as_str() {
        return Some(Need {
            name: name.to_owned(),
            optional: false,
            artifacts: true,
            pos: item.pos,
        });
    }
    let Some(entries) = item.as_map() else {
        problems.at(
            item.pos,
            field,
            format!(
                "each entry of `needs` must be a job name or {{job, optional, artifacts}}, not {}",
                item.kind()
            ),
        );
        return None;
    };
    if !keys::check(entries, keys::NEED, field, problems) {
        return None;
    }
    let Some(job) = get(entries, "job") else {
        problems.at(
            item.pos,
            field,
            "an entry of `needs` written as a mapping needs a `job`",
        );
        return None;
    };
    let name = crate::fields::string(&job.value, &format!("{field}.job"), problems)?;
    let flag = |key: &str, problems: &mut Problems| match get(entries, key) {
        Some(e) => crate::fields::boolean(&e.value, &format!("{field}.{key}"), problems),
        None => Some(key == "artifacts"),
    };
    let optional = flag("optional", problems)?;
    let artifacts = flag("artifacts", problems)?;
    Some(Need {
        name,
        optional,
        artifacts,
        pos: job.value.pos,
    })
}

/// What the pipeline has, to resolve needs against.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// Every job in the pipeline by the name written in the file, with its instances' names.
    pub(crate) instances: HashMap<String, Vec<String>>,
    /// Every instance name (`test 1/3`, `test: [aws]`), which may be needed one by one.
    pub(crate) exact: HashSet<String>,
    /// Jobs with `when: never`: written, but not in the pipeline.
    pub(crate) never: HashSet<String>,
    /// Hidden jobs (`.name`), which never run.
    pub(crate) hidden: HashSet<String>,
}

/// The jobs a job's needs come to; `None` when one names no job of the pipeline.
pub(crate) fn resolve(
    needs: &[Need],
    field: &str,
    catalog: &Catalog,
    problems: &mut Problems,
) -> Option<Vec<lockstep_domain::Need>> {
    let mut resolved = Vec::with_capacity(needs.len());
    let mut clean = true;
    for need in needs {
        let to = |job: &String| lockstep_domain::Need {
            job: job.clone(),
            artifacts: need.artifacts,
        };
        if let Some(instances) = catalog.instances.get(&need.name) {
            resolved.extend(instances.iter().map(to));
        } else if catalog.exact.contains(&need.name) {
            resolved.push(to(&need.name));
        } else if !need.optional {
            clean = false;
            problems.at(need.pos, field, missing("needs", &need.name, catalog));
        }
    }
    clean.then_some(resolved)
}

/// The jobs `dependencies` names (a parallel job's name means all its instances); `None` when
/// one names no job of the pipeline.
pub(crate) fn dependencies(
    names: &[(String, Pos)],
    field: &str,
    catalog: &Catalog,
    problems: &mut Problems,
) -> Option<Vec<String>> {
    let mut resolved = Vec::with_capacity(names.len());
    let mut clean = true;
    for (name, pos) in names {
        if let Some(instances) = catalog.instances.get(name) {
            resolved.extend(instances.iter().cloned());
        } else if catalog.exact.contains(name) {
            resolved.push(name.clone());
        } else {
            clean = false;
            problems.at(*pos, field, missing("dependencies", name, catalog));
        }
    }
    clean.then_some(resolved)
}

fn missing(key: &str, name: &str, catalog: &Catalog) -> String {
    let shown = shown(name);
    if catalog.never.contains(name) {
        let hint = if key == "needs" {
            "; add `optional: true` to need it only when it runs"
        } else {
            ""
        };
        format!(
            "`{key}` names `{shown}`, which has `when: never` and so is not in the pipeline{hint}"
        )
    } else if catalog.hidden.contains(name) {
        format!("`{key}` names `{shown}`, a hidden job, which never runs")
    } else {
        let hint = did_you_mean(name, catalog.instances.keys().map(String::as_str));
        format!("`{key}` names `{shown}`, which is not a job of this pipeline{hint}")
    }
}
