//! Every scenario, and the run that collects their figures. A scenario that fails is reported
//! and left out; the others still run.

mod cancel;
mod history;
mod http;
mod storage;

use crate::figures::{Figure, Report};
use std::path::PathBuf;

/// How big and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// A few seconds in all: proves the scenarios still run, measures nothing worth quoting.
    pub quick: bool,
    /// Rounds per scenario (the figure is their median).
    pub rounds: usize,
    /// `lockstep-server`, for the HTTP scenarios; they are skipped without it.
    pub server_bin: Option<PathBuf>,
    /// `lockstep-worker`, for cancel to stop; it is skipped without it.
    pub worker_bin: Option<PathBuf>,
    /// When not empty, only scenarios whose name contains one of these run.
    pub only: Vec<String>,
}

impl Options {
    fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

type Outcome = anyhow::Result<(Vec<Figure>, Vec<(String, String)>)>;
type Scenario = fn(&Options) -> Outcome;

/// Runs every scenario in turn.
pub fn run_all(options: &Options) -> Report {
    let mut report = Report::default();
    let scenarios: [(&str, Scenario); 6] = [
        ("claim and complete (storage)", storage::claim_complete),
        ("bulk create", storage::bulk_create),
        ("cancel storm", storage::cancel_storm),
        ("acquire with history", history::acquire_history),
        ("HTTP", http::scenarios),
        ("cancel to stop (real worker)", cancel::cancel_to_stop),
    ];
    for (name, scenario) in scenarios {
        if !options.only.is_empty() && !options.only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        progress(&format!("scenario: {name}"));
        match scenario(options) {
            Ok((figures, notes)) => {
                report.figures.extend(figures);
                report.notes.extend(notes);
            }
            Err(error) => {
                progress(&format!("scenario `{name}` failed: {error:#}"));
                report
                    .notes
                    .insert(format!("failed: {name}"), format!("{error:#}"));
            }
        }
    }
    report
}

#[expect(clippy::print_stderr, reason = "progress of a long-running benchmark")]
pub(crate) fn progress(message: &str) {
    eprintln!("  {message}");
}
