//! `lockstep lint [FILE]`: checks a pipeline file locally, with the server's own reader, and
//! reports each problem as `FILE:LINE:COLUMN: message`. Also how `run` reports the problems
//! the server found.

use super::Context;
use crate::client::FileProblem;
use crate::exit::{Exit, usage};
use crate::output;
use anyhow::Context as _;
use lockstep_pipeline_file::{FileError, Linted};
use serde_json::json;
use std::path::Path;

/// One problem of a pipeline file, wherever it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    message: String,
    line: Option<u32>,
    column: Option<u32>,
}

impl Problem {
    /// A problem the server names by field rather than by place.
    pub(super) fn whole_file(message: String, field: Option<String>) -> Self {
        let message = match field {
            Some(field) => format!("{message} (at {field})"),
            None => message,
        };
        Self {
            message,
            line: None,
            column: None,
        }
    }

    /// `FILE:LINE:COLUMN: message`, with as much of the place as is known.
    fn line(&self, file: &Path) -> String {
        let place = match (self.line, self.column) {
            (Some(line), Some(column)) => format!(":{line}:{column}"),
            (Some(line), None) => format!(":{line}"),
            _ => String::new(),
        };
        format!("{}{place}: {}", file.display(), self.message)
    }
}

impl From<FileProblem> for Problem {
    fn from(problem: FileProblem) -> Self {
        Self {
            message: problem.message,
            line: problem.line,
            column: problem.column,
        }
    }
}

/// Prints the problems (on stderr under `--json`, where `json` goes to stdout) and exits 3.
pub(super) fn report(
    ctx: &Context,
    file: &Path,
    problems: &[Problem],
    json: Option<&serde_json::Value>,
) -> anyhow::Result<Exit> {
    let lines: Vec<String> = problems.iter().map(|p| p.line(file)).collect();
    if ctx.json {
        if let Some(json) = json {
            output::json(json)?;
        }
        for line in &lines {
            output::note(line)?;
        }
    } else {
        output::lines(&lines)?;
    }
    Ok(Exit::Usage)
}

impl From<FileError> for Problem {
    fn from(error: FileError) -> Self {
        Self {
            message: error.message,
            line: error.line,
            column: error.column,
        }
    }
}

pub(super) fn run(ctx: &Context, file: &Path) -> anyhow::Result<Exit> {
    let source = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!(
                "no pipeline file at {}: pass a FILE or create one (see examples/)",
                file.display()
            )));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let Ok(source) = String::from_utf8(source) else {
        let problem = Problem::whole_file("the file is not UTF-8 text".to_owned(), None);
        return report(ctx, file, &[problem], Some(&json!({ "ok": false })));
    };
    match lockstep_pipeline_file::lint(&source) {
        Ok(linted) => passed(ctx, file, &linted),
        Err(errors) => {
            let json = json!({ "ok": false, "errors": errors });
            let problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
            report(ctx, file, &problems, Some(&json))
        }
    }
}

/// `FILE: ok, 4 jobs in 3 stages (build, test, deploy)`.
fn passed(ctx: &Context, file: &Path, linted: &Linted) -> anyhow::Result<Exit> {
    let jobs = linted.valid.jobs();
    let mut stages: Vec<&str> = Vec::new();
    for job in jobs {
        if !stages.contains(&job.stage()) {
            stages.push(job.stage());
        }
    }
    if ctx.json {
        let names: Vec<&str> = (linted.file.definition.jobs.iter())
            .map(|job| job.name.as_str())
            .collect();
        output::json(&json!({ "ok": true, "jobs": names, "stages": stages }))?;
    } else {
        output::line(format!(
            "{}: ok, {} in {} ({})",
            file.display(),
            plural(jobs.len(), "job"),
            plural(stages.len(), "stage"),
            stages.join(", ")
        ))?;
    }
    Ok(Exit::Success)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_file_line_column() {
        let file = Path::new(".lockstep.yml");
        let at = |line, column| Problem {
            message: "unknown field `scirpt`".to_owned(),
            line,
            column,
        };
        assert_eq!(
            at(Some(3), Some(5)).line(file),
            ".lockstep.yml:3:5: unknown field `scirpt`"
        );
        assert_eq!(
            at(Some(3), None).line(file),
            ".lockstep.yml:3: unknown field `scirpt`"
        );
        assert_eq!(
            at(None, None).line(file),
            ".lockstep.yml: unknown field `scirpt`"
        );
        assert_eq!(
            Problem::whole_file("no jobs".to_owned(), Some("jobs".to_owned())).line(file),
            ".lockstep.yml: no jobs (at jobs)"
        );
    }
}
