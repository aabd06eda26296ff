//! How pipelines, jobs and durations read on screen: the job table, the summary line, status
//! icons (always beside the status text: colour is never the only signal) and colours.

use crate::api::{Build, Pipeline, Status, Waiting};
use crate::follow::{Outcome, stages};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The width of the widest status name, `waiting_for_resource`.
const STATUS_WIDTH: usize = 20;

/// Colours a text, or leaves it plain when colour is off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    enabled: bool,
}

/// What a colour says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Good,
    Bad,
    Warn,
    Busy,
    Quiet,
    Strong,
}

impl Paint {
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    pub(crate) fn tone(self, text: &str, tone: Tone) -> String {
        if !self.enabled {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
            Tone::Busy => "36",
            Tone::Quiet => "2",
            Tone::Strong => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// The icon of a build's status.
pub(crate) fn icon(build: &Build) -> &'static str {
    match &build.status {
        Status::Failed if build.allow_failure => "!",
        status => status_icon(status),
    }
}

/// The icon of a status; a running one gets a spinner instead in the live view.
pub(crate) fn status_icon(status: &Status) -> &'static str {
    match status {
        Status::Created => "·",
        Status::WaitingForResource => "◌",
        Status::Pending => "○",
        Status::Running => "●",
        Status::Success => "✔",
        Status::Failed => "✘",
        Status::Canceling | Status::Canceled => "⊘",
        Status::Skipped => "↷",
        Status::Manual => "▶",
        Status::Other(_) => "?",
    }
}

pub(crate) fn status_tone(status: &Status) -> Tone {
    match status {
        Status::Success => Tone::Good,
        Status::Failed => Tone::Bad,
        Status::Running | Status::Pending | Status::WaitingForResource => Tone::Busy,
        Status::Canceling | Status::Manual => Tone::Warn,
        Status::Created | Status::Canceled | Status::Skipped | Status::Other(_) => Tone::Quiet,
    }
}

/// The tone of a build: an allowed failure warns rather than alarms.
pub(crate) fn build_tone(build: &Build) -> Tone {
    if build.status == Status::Failed && build.allow_failure {
        Tone::Warn
    } else {
        status_tone(&build.status)
    }
}

/// A duration as people read it: `0s`, `42s`, `3m07s`, `1h02m`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// From `start` to `end`, or to `now` while it lasts. Never negative: the server's clock and
/// ours may disagree by a little.
pub(crate) fn elapsed(
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Duration {
    (end.unwrap_or(now) - start).to_std().unwrap_or_default()
}

/// How long ago, coarsely: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(crate) fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = elapsed(at, None, now).as_secs();
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86_400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}

/// A job's row after its icon: name, status, duration, build id and why it waits.
pub(crate) fn job_line(build: &Build, now: DateTime<Utc>, width: usize, paint: Paint) -> String {
    let status = if build.status == Status::Failed && build.allow_failure {
        "failed (allowed)".to_owned()
    } else {
        build.status.to_string()
    };
    let duration = build
        .started_at
        .map(|start| format_duration(elapsed(start, build.finished_at, now)))
        .unwrap_or_default();
    let mut line = format!(
        "{:<width$}  {}  {duration:>6}  #{}",
        build.name,
        paint.tone(&format!("{status:<STATUS_WIDTH$}"), build_tone(build)),
        build.id,
    );
    if let Some(note) = note(build) {
        line.push_str("  ");
        line.push_str(&paint.tone(&note, Tone::Quiet));
    }
    line.trim_end().to_owned()
}

/// Why a build waits, how it failed, or which attempt it is.
fn note(build: &Build) -> Option<String> {
    let mut notes = Vec::new();
    if build.attempt > 1 {
        notes.push(format!("attempt {}", build.attempt));
    }
    if build.status == Status::Failed {
        match (&build.failure_reason, build.exit_code) {
            (Some(reason), _) if reason != "script_failure" => notes.push(reason.replace('_', " ")),
            (_, Some(code)) => notes.push(format!("exit {code}")),
            _ => {}
        }
    }
    if let Some(waiting) = &build.waiting {
        notes.push(waiting_note(waiting, build.id));
    }
    (!notes.is_empty()).then(|| notes.join(", "))
}

fn waiting_note(waiting: &Waiting, build: i64) -> String {
    match waiting {
        Waiting::Needs { jobs } => format!("waiting for {}", jobs.join(", ")),
        Waiting::Manual => format!("start it with `lockstep play {build}`"),
        Waiting::ResourceGroup {
            resource_group,
            position,
        } => format!("waiting for resource group {resource_group} (#{position} in line)"),
        Waiting::NoRunner { tags } if tags.is_empty() => "no runner is online".to_owned(),
        Waiting::NoRunner { tags } => format!("no online runner has tags {}", tags.join(", ")),
        Waiting::Queued { position } => format!("queued (#{position})"),
        Waiting::Other => "waiting".to_owned(),
    }
}

/// One cell of a list: its text and, maybe, its colour.
pub(crate) type Cell = (String, Option<Tone>);

/// A list as aligned columns under a header, two spaces apart; colour goes on after padding,
/// so escape codes never upset the alignment.
pub(crate) fn columns(header: &[&str], rows: &[Vec<Cell>], paint: Paint) -> Vec<String> {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|row| row.get(i))
            .map(|(text, _)| text.chars().count())
            .chain(std::iter::once(header[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<(&str, Option<Tone>)>| {
        let padded: Vec<String> = cells
            .into_iter()
            .zip(&widths)
            .map(|((text, tone), width)| {
                let text = format!("{text:<width$}");
                tone.map_or_else(|| text.clone(), |tone| paint.tone(&text, tone))
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    std::iter::once(line(header.iter().map(|h| (*h, None)).collect()))
        .chain(
            rows.iter()
                .map(|row| line(row.iter().map(|(t, tone)| (t.as_str(), *tone)).collect())),
        )
        .collect()
}

/// The width of the job name column.
pub(crate) fn name_width(pipeline: &Pipeline) -> usize {
    pipeline
        .builds
        .iter()
        .map(|b| b.name.chars().count())
        .max()
        .unwrap_or(0)
}

/// The stage header line.
pub(crate) fn stage_line(stage: &str, paint: Paint) -> String {
    paint.tone(stage, Tone::Strong)
}

/// The whole table, once: a header per stage, a row per job.
pub(crate) fn table(pipeline: &Pipeline, now: DateTime<Utc>, paint: Paint) -> Vec<String> {
    let width = name_width(pipeline);
    let mut lines = Vec::new();
    for (stage, jobs) in stages(pipeline) {
        lines.push(stage_line(stage, paint));
        for build in jobs {
            let icon = paint.tone(icon(build), build_tone(build));
            lines.push(format!("  {icon} {}", job_line(build, now, width, paint)));
        }
    }
    lines
}

/// One line for the whole pipeline: `✔ pipeline 7 success in 12s: 3 passed`.
pub(crate) fn summary(pipeline: &Pipeline, now: DateTime<Utc>, paint: Paint) -> String {
    let duration = format_duration(elapsed(pipeline.created_at, pipeline.finished_at, now));
    let took = if Outcome::of(&pipeline.status).is_some() {
        format!("in {duration}")
    } else {
        format!("for {duration}")
    };
    let icon = paint.tone(status_icon(&pipeline.status), status_tone(&pipeline.status));
    let status = paint.tone(pipeline.status.as_str(), status_tone(&pipeline.status));
    let counts = counts(pipeline);
    let counts = if counts.is_empty() {
        String::new()
    } else {
        format!(": {counts}")
    };
    format!("{icon} pipeline {} {status} {took}{counts}", pipeline.id)
}

/// `2 passed, 1 failed, 1 skipped`, over the jobs' latest attempts, in a fixed order.
fn counts(pipeline: &Pipeline) -> String {
    let jobs: Vec<&Build> = stages(pipeline).into_iter().flat_map(|(_, j)| j).collect();
    let count = |f: &dyn Fn(&Build) -> bool| jobs.iter().filter(|b| f(b)).count();
    let kinds: [(&str, usize); 9] = [
        ("passed", count(&|b| b.status == Status::Success)),
        (
            "failed",
            count(&|b| b.status == Status::Failed && !b.allow_failure),
        ),
        (
            "failed (allowed)",
            count(&|b| b.status == Status::Failed && b.allow_failure),
        ),
        ("running", count(&|b| b.status == Status::Running)),
        (
            "waiting",
            count(&|b| {
                matches!(
                    b.status,
                    Status::Created | Status::Pending | Status::WaitingForResource
                )
            }),
        ),
        (
            "canceled",
            count(&|b| matches!(b.status, Status::Canceled | Status::Canceling)),
        ),
        ("skipped", count(&|b| b.status == Status::Skipped)),
        ("manual", count(&|b| b.status == Status::Manual)),
        ("other", count(&|b| matches!(b.status, Status::Other(_)))),
    ];
    kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::tests::pipeline;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    #[test]
    fn durations_read_like_people_say_them() {
        let check = |seconds: u64, expect: &str| {
            assert_eq!(format_duration(Duration::from_secs(seconds)), expect);
        };
        check(0, "0s");
        check(59, "59s");
        check(60, "1m00s");
        check(187, "3m07s");
        check(3599, "59m59s");
        check(3600, "1h00m");
        check(3720, "1h02m");
        check(90_000, "25h00m");
        assert_eq!(format_duration(Duration::from_millis(999)), "0s");
    }

    #[test]
    fn a_clock_behind_the_servers_never_gives_negative_durations() {
        let start = at("2026-01-01T12:00:05Z");
        let now = at("2026-01-01T12:00:00Z");
        assert_eq!(elapsed(start, None, now), Duration::ZERO);
    }

    #[test]
    fn the_table_groups_jobs_under_stage_headers_with_text_beside_icons() {
        let mut p = pipeline(
            "failed",
            &[
                (1, "build", "compile", "success"),
                (2, "test", "unit", "failed"),
                (3, "build", "lint", "success"),
                (4, "deploy", "ship", "skipped"),
            ],
        );
        p.builds[1].exit_code = Some(2);
        p.builds[0].started_at = Some(at("2026-01-01T12:00:00Z"));
        p.builds[0].finished_at = Some(at("2026-01-01T12:00:03Z"));
        let lines = table(&p, at("2026-01-01T12:01:00Z"), Paint::new(false));
        let expect = [
            "build",
            "  ✔ compile  success                   3s  #1",
            "  ✔ lint     success                       #3",
            "test",
            "  ✘ unit     failed                        #2  exit 2",
            "deploy",
            "  ↷ ship     skipped                       #4",
        ];
        assert_eq!(lines, expect);
    }

    #[test]
    fn no_colour_means_no_escape_codes() {
        let p = pipeline("running", &[(1, "build", "compile", "running")]);
        let now = at("2026-01-01T12:01:00Z");
        let plain =
            table(&p, now, Paint::new(false)).join("\n") + &summary(&p, now, Paint::new(false));
        assert!(!plain.contains('\x1b'));
        let coloured = table(&p, now, Paint::new(true)).join("\n");
        assert!(coloured.contains("\x1b[36m"));
    }

    #[test]
    fn the_summary_counts_jobs_by_outcome() {
        let mut p = pipeline(
            "failed",
            &[
                (1, "build", "a", "success"),
                (2, "build", "b", "success"),
                (3, "test", "c", "failed"),
                (4, "test", "d", "failed"),
                (5, "deploy", "e", "skipped"),
            ],
        );
        p.builds[3].allow_failure = true;
        p.finished_at = Some(at("2026-01-01T12:00:42Z"));
        assert_eq!(
            summary(&p, at("2026-01-01T13:00:00Z"), Paint::new(false)),
            "✘ pipeline 7 failed in 42s: 2 passed, 1 failed, 1 failed (allowed), 1 skipped"
        );
    }

    #[test]
    fn columns_align_whatever_the_colour() {
        let rows = vec![
            vec![
                ("1".to_owned(), None),
                ("● online".to_owned(), Some(Tone::Good)),
            ],
            vec![("12".to_owned(), None), ("○ offline".to_owned(), None)],
        ];
        assert_eq!(
            columns(&["ID", "STATE"], &rows, Paint::new(false)),
            ["ID  STATE", "1   ● online", "12  ○ offline"]
        );
        let coloured = columns(&["ID", "STATE"], &rows, Paint::new(true));
        assert_eq!(coloured[1], "1   \x1b[32m● online \x1b[0m");
    }

    #[test]
    fn waiting_builds_say_why() {
        let mut p = pipeline("running", &[(9, "deploy", "ship", "manual")]);
        p.builds[0].waiting = Some(Waiting::Manual);
        let line = job_line(
            &p.builds[0],
            at("2026-01-01T12:00:00Z"),
            4,
            Paint::new(false),
        );
        assert!(line.ends_with("start it with `lockstep play 9`"), "{line}");
    }
}
