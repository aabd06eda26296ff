//! The two ways to show a pipeline being followed: a table redrawn in place on a terminal
//! (indicatif, a spinner per running job), or one plain line per status change for pipes and
//! files, with no escape codes.

use crate::api::{Build, Pipeline, Status};
use crate::follow::{Step, stages};
use crate::render::{self, Paint};
use crate::term::{QuietControlChars, Term};
use chrono::Utc;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, Write};
use std::time::Duration;

/// How often a running job's spinner turns.
const SPIN: Duration = Duration::from_millis(100);

/// Something that shows a followed pipeline.
pub(crate) trait View {
    /// Shows a new snapshot and what changed in it.
    fn show(&mut self, pipeline: &Pipeline, step: &Step) -> io::Result<()>;
    /// Shows the tail of a failed build's log.
    fn log_tail(&mut self, build: &Build, tail: &[u8]) -> io::Result<()>;
    /// A line for people (on stderr), e.g. that the server went away for a moment.
    fn note(&mut self, text: &str) -> io::Result<()>;
    /// The pipeline is over: the last picture stays, then the summary line.
    fn finish(&mut self, pipeline: &Pipeline) -> io::Result<()>;
    /// Following stopped early: what is shown stays as it is.
    fn stop(&mut self);
}

/// The view for `lockstep run`: live on a terminal, plain lines otherwise, and under `--json`
/// plain lines on stderr, so stdout carries only the JSON.
pub(crate) fn for_run(json: bool, term: Term) -> Box<dyn View> {
    if json {
        Box::new(Plain::new(Box::new(io::stderr())))
    } else if term.stdout {
        Box::new(Live::new(Paint::new(term.color)))
    } else {
        Box::new(Plain::new(Box::new(io::stdout())))
    }
}

/// A failed job's log tail, framed so it reads apart from the table.
fn framed_tail(build: &Build, tail: &[u8]) -> String {
    let what = format!("{}/{} failed (build {})", build.stage, build.name, build.id);
    if tail.is_empty() {
        return format!("--- {what}: its log is empty ---\n");
    }
    let mut text = String::from_utf8_lossy(tail).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    format!(
        "--- {what}: the last lines of its log ---\n{text}--- the whole log: lockstep logs {} ---\n",
        build.id
    )
}

/// A line per status change: `12:00:01 build/compile running`.
struct Plain {
    out: Box<dyn Write>,
}

impl Plain {
    fn new(out: Box<dyn Write>) -> Self {
        Self { out }
    }
}

impl View for Plain {
    fn show(&mut self, _: &Pipeline, step: &Step) -> io::Result<()> {
        let time = chrono::Local::now().format("%H:%M:%S").to_string();
        for change in &step.changes {
            writeln!(self.out, "{}", change.line(&time))?;
        }
        self.out.flush()
    }

    fn log_tail(&mut self, build: &Build, tail: &[u8]) -> io::Result<()> {
        self.out.write_all(framed_tail(build, tail).as_bytes())?;
        self.out.flush()
    }

    fn note(&mut self, text: &str) -> io::Result<()> {
        crate::output::note(text)
    }

    fn finish(&mut self, pipeline: &Pipeline) -> io::Result<()> {
        let summary = render::summary(pipeline, Utc::now(), Paint::new(false));
        writeln!(self.out, "{summary}")?;
        self.out.flush()
    }

    fn stop(&mut self) {}
}

/// The table, redrawn in place: a bar per stage header and per job.
struct Live {
    multi: MultiProgress,
    _quiet: QuietControlChars,
    paint: Paint,
    /// The stages and job names the bars stand for, to notice a change of layout.
    layout: Vec<(String, Vec<String>)>,
    rows: Vec<Row>,
}

struct Row {
    /// `None` for a stage header.
    job: Option<String>,
    bar: ProgressBar,
    spinning: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("the view's templates are valid")
}

impl Live {
    fn new(paint: Paint) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            _quiet: QuietControlChars::new(),
            paint,
            layout: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Makes one bar per header and job. Jobs are all known when the pipeline is created, so
    /// this happens once; a layout that changes anyway is drawn afresh.
    fn lay_out(&mut self, layout: Vec<(String, Vec<String>)>) {
        for row in self.rows.drain(..) {
            row.bar.finish_and_clear();
            self.multi.remove(&row.bar);
        }
        for (stage, jobs) in &layout {
            let header = self.multi.add(ProgressBar::new_spinner());
            header.set_style(style("{wide_msg}"));
            header.set_message(render::stage_line(stage, self.paint));
            self.rows.push(Row {
                job: None,
                bar: header,
                spinning: false,
            });
            for job in jobs {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(style("  {wide_msg}"));
                self.rows.push(Row {
                    job: Some(job.clone()),
                    bar,
                    spinning: false,
                });
            }
        }
        self.layout = layout;
    }

    fn job_rows(&mut self) -> impl Iterator<Item = &mut Row> {
        self.rows.iter_mut().filter(|row| row.job.is_some())
    }
}

fn layout_of(pipeline: &Pipeline) -> Vec<(String, Vec<String>)> {
    stages(pipeline)
        .into_iter()
        .map(|(stage, jobs)| {
            let names = jobs.iter().map(|b| b.name.clone()).collect();
            (stage.to_owned(), names)
        })
        .collect()
}

impl View for Live {
    fn show(&mut self, pipeline: &Pipeline, _: &Step) -> io::Result<()> {
        let layout = layout_of(pipeline);
        if layout != self.layout {
            self.lay_out(layout);
        }
        let (now, width, paint) = (Utc::now(), render::name_width(pipeline), self.paint);
        let jobs: Vec<&Build> = stages(pipeline).into_iter().flat_map(|(_, j)| j).collect();
        for row in self.job_rows() {
            let Some(build) = jobs.iter().find(|b| row.job.as_ref() == Some(&b.name)) else {
                continue;
            };
            let running = build.status == Status::Running;
            if running != row.spinning {
                row.spinning = running;
                if running {
                    row.bar.set_style(style("  {spinner} {wide_msg}"));
                    row.bar.enable_steady_tick(SPIN);
                } else {
                    row.bar.disable_steady_tick();
                    row.bar.set_style(style("  {wide_msg}"));
                }
            }
            let line = render::job_line(build, now, width, paint);
            let message = if running {
                line
            } else {
                let icon = paint.tone(render::icon(build), render::build_tone(build));
                format!("{icon} {line}")
            };
            row.bar.set_message(message);
        }
        Ok(())
    }

    fn log_tail(&mut self, build: &Build, tail: &[u8]) -> io::Result<()> {
        let text = framed_tail(build, tail);
        self.multi.suspend(|| {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        })
    }

    fn note(&mut self, text: &str) -> io::Result<()> {
        self.multi.suspend(|| crate::output::note(text))
    }

    fn finish(&mut self, pipeline: &Pipeline) -> io::Result<()> {
        for row in &self.rows {
            row.bar.finish();
        }
        let summary = render::summary(pipeline, Utc::now(), self.paint);
        crate::output::line(summary)
    }

    fn stop(&mut self) {
        for row in &self.rows {
            if row.spinning {
                // A spinner that stopped turning would look like a job that stopped running.
                row.bar.disable_steady_tick();
                row.bar.set_style(style("  {wide_msg}"));
                let icon = self.paint.tone(
                    render::status_icon(&Status::Running),
                    render::status_tone(&Status::Running),
                );
                row.bar.set_message(format!("{icon} {}", row.bar.message()));
            }
            row.bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::tests::pipeline;

    #[test]
    fn a_failed_jobs_tail_is_framed_with_the_way_to_the_whole_log() {
        let p = pipeline("failed", &[(12, "test", "unit", "failed")]);
        let text = framed_tail(&p.builds[0], b"one\ntwo");
        assert_eq!(
            text,
            "--- test/unit failed (build 12): the last lines of its log ---\none\ntwo\n\
             --- the whole log: lockstep logs 12 ---\n"
        );
        assert!(framed_tail(&p.builds[0], b"").contains("its log is empty"));
    }
}
