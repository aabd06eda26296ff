//! A whole file read into the domain's definition: settings, then each job merged by
//! `extends`, filled from `default`, expanded by `parallel`, its needs resolved, in stage order.

use crate::error::{FileError, Problems, Stop, shown};
use crate::job::{self, Common, JobFields, Run, Set};
use crate::needs::{self, Catalog};
use crate::top::{self, Kind, Settings};
use crate::tree::{Entry, Node, Pos, Value, get, join};
use crate::work::Work;
use crate::yaml;
use crate::{matrix::Instance, merge};
use lockstep_domain::{AutoCancel, JobDefinition, PipelineDefinition, When, limits};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The file, read and expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineFile {
    pub definition: PipelineDefinition,
    /// `Conservative` when the file says nothing.
    pub auto_cancel: AutoCancel,
}

/// Only read and expand (no domain validation).
pub fn parse(source: &str) -> Result<PipelineFile, Vec<FileError>> {
    read(source).map(|(file, _)| file)
}

/// Where each job of the definition was written, by its name in the definition.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub(crate) jobs: HashMap<String, JobSource>,
}

#[derive(Debug, Clone)]
pub(crate) struct JobSource {
    /// The job's key in the file (an instance of `parallel` has its own name beside it).
    pub(crate) key: String,
    pub(crate) pos: Pos,
    /// Where each of its keys was written (in the job, a template it extends, or `default`).
    pub(crate) keys: Vec<(&'static str, Pos)>,
}

pub(crate) fn read(source: &str) -> Result<(PipelineFile, Sources), Vec<FileError>> {
    let root = yaml::read(source).map_err(|error| vec![error])?;
    let mut problems = Problems::default();
    yaml::check_keys(&root, &mut problems, "");
    let top = match root.value {
        Value::Map(entries) => entries,
        Value::Null => Vec::new(),
        _ => {
            let message = format!(
                "the file must be a mapping of jobs and settings, not {}",
                root.kind()
            );
            return Err(vec![FileError::at(root.pos, None, message)]);
        }
    };
    let settings = top::settings(&top, &mut problems);
    let mut work = Work::default();
    let read = jobs(&top, &settings, &mut work, &mut problems);
    work.report(&mut problems);
    match read {
        Ok((jobs, sources)) if problems.is_empty() => Ok((
            PipelineFile {
                definition: PipelineDefinition { jobs },
                auto_cancel: settings.auto_cancel,
            },
            sources,
        )),
        _ => Err(problems.into_sorted()),
    }
}

/// One job of the file, read and filled from `default`, before `parallel` and `needs`.
#[derive(Debug)]
struct Planned {
    key: String,
    pos: Pos,
    fields: JobFields,
    instances: Vec<Instance>,
    weight: (usize, usize),
}

fn jobs(
    top: &[Entry],
    settings: &Settings,
    work: &mut Work,
    problems: &mut Problems,
) -> Result<(Vec<JobDefinition>, Sources), Stop> {
    let candidates: Vec<bool> = top
        .iter()
        .map(|e| matches!(top::kind(&e.key), Kind::Hidden | Kind::Job))
        .collect();
    let resolved = merge::resolve_all(top, &candidates, work, problems)?;
    let (planned, catalog) = plan_all(top, &resolved, settings, problems)?;
    let mut ordered: Vec<(usize, Planned)> = Vec::with_capacity(planned.len());
    for job in planned {
        if let Some(index) = stage_index(&job, settings, problems) {
            ordered.push((index, job));
        }
    }
    // Stable: within a stage, jobs keep the order of the file.
    ordered.sort_by_key(|(index, _)| *index);
    let mut definitions = Vec::with_capacity(catalog.exact.len());
    let mut sources = Sources::default();
    for (_, job) in ordered {
        work.charge_copies(job.weight, job.instances.len())?;
        let built = build(job, settings, &catalog, &mut sources, problems);
        definitions.extend(built);
    }
    Ok((definitions, sources))
}

/// Every job of the file planned, and the catalog of what the pipeline has for `needs`.
fn plan_all(
    top: &[Entry],
    resolved: &[Option<Rc<Node>>],
    settings: &Settings,
    problems: &mut Problems,
) -> Result<(Vec<Planned>, Catalog), Stop> {
    let mut catalog = Catalog::default();
    let mut planned = Vec::new();
    let mut total = 0usize;
    for (entry, merged) in top.iter().zip(resolved) {
        match top::kind(&entry.key) {
            Kind::Hidden => {
                catalog.hidden.insert(entry.key.clone());
            }
            Kind::Job => {
                let Some(job) = plan(entry, merged.as_deref(), settings, problems) else {
                    // Needs on a job that had a problem are not reported again.
                    catalog.instances.insert(entry.key.clone(), Vec::new());
                    continue;
                };
                if job
                    .fields
                    .when
                    .as_ref()
                    .is_some_and(|w| w.value == Run::Never)
                {
                    catalog.never.insert(job.key.clone());
                    continue;
                }
                let names = job.instances.iter().map(|i| i.name.clone());
                catalog.exact.extend(names.clone());
                catalog.instances.insert(job.key.clone(), names.collect());
                // Stop early: a file of a few lines can ask for 200 times more jobs.
                total += job.instances.len();
                if total > limits::MAX_JOBS {
                    let message = format!("the file makes more than {} jobs", limits::MAX_JOBS);
                    return Err(problems.stop(job.pos, Some(&job.key), message));
                }
                planned.push(job);
            }
            Kind::Setting | Kind::Refused => {}
        }
    }
    Ok((planned, catalog))
}

/// Reads one job and fills what it did not set from `default`.
fn plan(
    entry: &Entry,
    merged: Option<&Node>,
    settings: &Settings,
    problems: &mut Problems,
) -> Option<Planned> {
    let key = entry.key.clone();
    if entry.value.as_map().is_none() {
        let hint = top::misspelt_setting(&key).map_or(String::new(), |s| {
            format!("; did you mean the setting `{s}`?")
        });
        problems.at(
            entry.key_pos,
            &key,
            format!(
                "a job must be a mapping of keys such as `script` and `stage`, not {}{hint}",
                entry.value.kind()
            ),
        );
        return None;
    }
    let merged = merged?;
    // Checked before the other keys, so that a job with a typo hears of both.
    let has_script = merged
        .as_map()
        .and_then(|entries| get(entries, "script"))
        .is_some_and(|e| !e.value.is_null());
    if !has_script {
        let hint = top::misspelt_setting(&key).map_or(String::new(), |s| {
            format!(" (or did you mean the setting `{s}`?)")
        });
        problems.at(
            entry.key_pos,
            &key,
            format!("job `{}` has no `script`{hint}", shown(&key)),
        );
    }
    let fields = job::read(&key, merged, problems);
    let mut fields = fields.filter(|_| has_script)?;
    fill(&mut fields.common, &settings.defaults);
    let instances = match fields.parallel.take() {
        Some(Set { value, .. }) => value,
        None => vec![Instance {
            name: key.clone(),
            variables: Vec::new(),
        }],
    };
    Some(Planned {
        key,
        pos: entry.key_pos,
        fields,
        instances,
        weight: merged.weight(),
    })
}

/// `default` fills each key the job did not set; variables merge name by name, the job's win.
fn fill(common: &mut Common, defaults: &Common) {
    fn or<T: Clone>(slot: &mut Option<T>, default: Option<&T>) {
        if slot.is_none() {
            *slot = default.cloned();
        }
    }
    or(&mut common.before_script, defaults.before_script.as_ref());
    or(&mut common.after_script, defaults.after_script.as_ref());
    or(&mut common.tags, defaults.tags.as_ref());
    or(&mut common.timeout, defaults.timeout.as_ref());
    or(&mut common.retry, defaults.retry.as_ref());
    or(&mut common.interruptible, defaults.interruptible.as_ref());
    or(&mut common.artifacts, defaults.artifacts.as_ref());
    or(&mut common.cache, defaults.cache.as_ref());
    if let Some(default) = &defaults.variables {
        let own = common.variables.take();
        let pos = own.as_ref().map_or(default.pos, |own| own.pos);
        let mut value = default.value.clone();
        value.extend(own.map(|own| own.value).unwrap_or_default());
        common.variables = Some(Set { value, pos });
    }
}

/// The position of the job's stage in `stages`, or a problem naming the missing stage.
fn stage_index(job: &Planned, settings: &Settings, problems: &mut Problems) -> Option<usize> {
    let (stage, pos) = match &job.fields.stage {
        Some(Set { value, pos }) => (value.as_str(), *pos),
        None => (limits::DEFAULT_STAGE, job.pos),
    };
    let index = settings.stages.iter().position(|s| s == stage);
    if index.is_none() {
        let default = if job.fields.stage.is_none() {
            " (the default stage)"
        } else {
            ""
        };
        problems.at(
            pos,
            &join(&job.key, "stage"),
            format!("the stage `{}`{default} is not in `stages`", shown(stage)),
        );
    }
    index
}

/// The job's definitions, one per instance, with needs resolved.
fn build(
    job: Planned,
    settings: &Settings,
    catalog: &Catalog,
    sources: &mut Sources,
    problems: &mut Problems,
) -> Vec<JobDefinition> {
    let fields = &job.fields;
    let needs = match &fields.needs {
        Some(Set { value, .. }) => {
            match needs::resolve(value, &join(&job.key, "needs"), catalog, problems) {
                Some(names) => Some(names),
                None => return Vec::new(),
            }
        }
        None => None,
    };
    let dependencies = match &fields.dependencies {
        Some(Set { value, .. }) => {
            let field = join(&job.key, "dependencies");
            match needs::dependencies(value, &field, catalog, problems) {
                Some(names) => Some(names),
                None => return Vec::new(),
            }
        }
        None => None,
    };
    let mut variables: BTreeMap<String, String> = settings
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    for v in fields.common.variables.iter().flat_map(|set| &set.value) {
        variables.insert(v.name.clone(), v.value.clone());
    }
    let common = &fields.common;
    let template = JobDefinition {
        name: String::new(),
        stage: Some(
            fields
                .stage
                .as_ref()
                .map_or(limits::DEFAULT_STAGE, |s| &s.value)
                .to_owned(),
        ),
        before_script: value(common.before_script.as_ref()).unwrap_or_default(),
        script: value(fields.script.as_ref()).unwrap_or_default(),
        after_script: value(common.after_script.as_ref()).unwrap_or_default(),
        variables,
        needs,
        dependencies,
        artifacts: value(common.artifacts.as_ref()),
        cache: value(common.cache.as_ref()),
        when: match fields.when.as_ref().map(|w| w.value) {
            Some(Run::When(when)) => when,
            Some(Run::Never) | None => When::OnSuccess,
        },
        allow_failure: value(fields.allow_failure.as_ref()).unwrap_or_default(),
        environment: value(fields.environment.as_ref()),
        tags: value(common.tags.as_ref()).unwrap_or_default(),
        timeout_seconds: value(common.timeout.as_ref()),
        retry: value(common.retry.as_ref()),
        resource_group: value(fields.resource_group.as_ref()),
        interruptible: value(common.interruptible.as_ref()).unwrap_or(false),
    };
    let source = JobSource {
        key: job.key.clone(),
        pos: job.pos,
        keys: key_positions(fields),
    };
    job.instances
        .into_iter()
        .map(|instance| {
            let mut definition = template.clone();
            definition.variables.extend(instance.variables);
            sources.jobs.insert(instance.name.clone(), source.clone());
            definition.name = instance.name;
            definition
        })
        .collect()
}

fn value<T: Clone>(set: Option<&Set<T>>) -> Option<T> {
    set.map(|s| s.value.clone())
}

/// Where each key the job has was written, named as the domain names its fields.
fn key_positions(fields: &JobFields) -> Vec<(&'static str, Pos)> {
    let common = &fields.common;
    [
        ("stage", fields.stage.as_ref().map(|s| s.pos)),
        (
            "before_script",
            common.before_script.as_ref().map(|s| s.pos),
        ),
        ("script", fields.script.as_ref().map(|s| s.pos)),
        ("after_script", common.after_script.as_ref().map(|s| s.pos)),
        ("variables", common.variables.as_ref().map(|s| s.pos)),
        ("needs", fields.needs.as_ref().map(|s| s.pos)),
        ("dependencies", fields.dependencies.as_ref().map(|s| s.pos)),
        ("artifacts", common.artifacts.as_ref().map(|s| s.pos)),
        ("cache", common.cache.as_ref().map(|s| s.pos)),
        (
            "allow_failure",
            fields.allow_failure.as_ref().map(|s| s.pos),
        ),
        ("environment", fields.environment.as_ref().map(|s| s.pos)),
        ("tags", common.tags.as_ref().map(|s| s.pos)),
        ("timeout_seconds", common.timeout.as_ref().map(|s| s.pos)),
        ("retry", common.retry.as_ref().map(|s| s.pos)),
        (
            "resource_group",
            fields.resource_group.as_ref().map(|s| s.pos),
        ),
    ]
    .into_iter()
    .filter_map(|(key, pos)| Some((key, pos?)))
    .collect()
}
