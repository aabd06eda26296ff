//! Tests of the whole reader through `lint` and `parse`: one `check` helper renders the outcome
//! as text, and each table row states the file and what it comes to.

mod artifacts;
mod domain;
mod extends;
mod hostile;
mod keys;
mod parallel;
mod refused;
mod schema;

use crate::{FileError, Linted, lint};
use lockstep_domain::{AutoCancel, JobDefinition};
use std::fmt::Write as _;

/// The fields of a job in the order of [`JobDefinition`], after its name.
const FIELDS: &[&str] = &[
    "stage",
    "before_script",
    "script",
    "after_script",
    "variables",
    "needs",
    "dependencies",
    "artifacts",
    "cache",
    "when",
    "allow_failure",
    "environment",
    "tags",
    "timeout_seconds",
    "retry",
    "resource_group",
    "interruptible",
];

/// The outcome as text: one line per job (`name: field=json …`, the fields that are not the
/// default, `stage` always), then `auto_cancel` when not the default; or one line per problem.
fn render(result: &Result<Linted, Vec<FileError>>) -> String {
    match result {
        Ok(linted) => {
            let mut lines: Vec<String> = linted.file.definition.jobs.iter().map(job_line).collect();
            if linted.file.auto_cancel != AutoCancel::Conservative {
                lines.push(format!("auto_cancel: {}", linted.file.auto_cancel.as_str()));
            }
            lines.join("\n")
        }
        Err(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn job_line(job: &JobDefinition) -> String {
    let blank = serde_json::to_value(JobDefinition::default()).expect("serializes");
    let value = serde_json::to_value(job).expect("serializes");
    let mut line = format!("{}:", job.name);
    for field in FIELDS {
        let v = &value[*field];
        if *field == "stage" || *v != blank[*field] {
            write!(line, " {field}={v}").expect("writes");
        }
    }
    line
}

/// `text` without the indentation its lines share, and without a first empty line: sources
/// and expectations can be indented like the code around them.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Lints `source` (dedented) and compares the rendered outcome with `expected` (whose
/// indentation and blank lines do not count).
#[track_caller]
fn check(source: &str, expected: &str) {
    let source = dedent(source);
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let got = render(&lint(&source));
    assert_eq!(got, expected.join("\n"), "\n--- source ---\n{source}");
}

/// The problems `source` (dedented) has; panics if it has none.
#[track_caller]
fn problems(source: &str) -> Vec<FileError> {
    match lint(&dedent(source)) {
        Ok(linted) => panic!("accepted: {:?}", linted.file.definition),
        Err(errors) => errors,
    }
}
