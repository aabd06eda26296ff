//! `lint`: the file read, then checked by the domain's own validation, whose problem is placed
//! back on the line of the job's key it names.

use crate::error::{FileError, shown};
use crate::pipeline::{self, PipelineFile, Sources};
use crate::tree::{Pos, join};
use lockstep_domain::{DefinitionError, Problem, ValidPipeline};

/// A file that reads and passes the domain's validation.
#[derive(Debug, Clone)]
pub struct Linted {
    pub file: PipelineFile,
    pub valid: ValidPipeline,
}

/// Reads and expands the file, then runs the domain's validation
/// ([`lockstep_domain::PipelineDefinition::validate`]) on a clone.
///
/// Returns every problem the reader finds; when it finds none, the domain's validation gives
/// at most one, placed at the job's key it names where known.
pub fn lint(source: &str) -> Result<Linted, Vec<FileError>> {
    let (file, sources) = pipeline::read(source)?;
    match file.definition.clone().validate() {
        Ok(valid) => Ok(Linted { file, valid }),
        Err(error) => Err(vec![placed(&error, &sources)]),
    }
}

/// The domain's problem as a [`FileError`] at the key it is about.
fn placed(error: &DefinitionError, sources: &Sources) -> FileError {
    let problem = error.problem();
    let Some(name) = error.job_name() else {
        return FileError::at(Pos::UNKNOWN, None, pipeline_message(error.field(), problem));
    };
    let Some(source) = sources.jobs.get(name) else {
        // Every job of the definition has a source; say what we know all the same.
        return FileError::at(Pos::UNKNOWN, None, error.to_string());
    };
    let instance = if name == source.key {
        String::new()
    } else {
        format!(" (in `{}`)", shown(name))
    };
    if error.field() == "name" {
        let message = match problem {
            Problem::DuplicateJob => {
                format!("the job name `{}` is used by an earlier job", shown(name))
            }
            other => format!("the job name {other}{instance}"),
        };
        return FileError::at(source.pos, Some(source.key.clone()), message);
    }
    // The domain says `timeout_seconds`; the file says `timeout`.
    let key = match error.field() {
        "timeout_seconds" => "timeout",
        other => other,
    };
    // `artifacts.paths` was written under `artifacts`.
    let top = key.split('.').next().unwrap_or(key);
    let pos = source
        .keys
        .iter()
        .find(|(field, _)| *field == error.field())
        .or_else(|| source.keys.iter().find(|(field, _)| *field == top))
        .map_or(source.pos, |&(_, pos)| pos);
    FileError::at(
        pos,
        Some(join(&source.key, key)),
        format!("`{key}` {problem}{instance}"),
    )
}

fn pipeline_message(field: &str, problem: &Problem) -> String {
    match (field, problem) {
        ("jobs", Problem::Empty) => {
            "the file defines no jobs (hidden jobs and `when: never` jobs do not count)".to_owned()
        }
        ("jobs", Problem::TooMany { max }) => format!("the file makes more than {max} jobs"),
        (field, problem) => format!("`{field}` {problem}"),
    }
}
