//! `lockstep status PIPELINE` (the job table, once) and `lockstep pipelines` (a project's
//! pipelines, newest first).

use super::{Context, project_name};
use crate::api::Pipeline;
use crate::cli::PipelinesArgs;
use crate::exit::Exit;
use crate::render::{self, Paint};
use crate::{output, project};
use chrono::{DateTime, Utc};

pub(super) fn status(ctx: &Context, id: i64) -> anyhow::Result<Exit> {
    let answer = ctx.client()?.pipeline(id)?;
    if ctx.json {
        output::json(&answer.raw)?;
        return Ok(Exit::Success);
    }
    let (pipeline, now, paint) = (&answer.value, Utc::now(), Paint::new(ctx.term.color));
    let mut lines = vec![heading(pipeline, now)];
    lines.extend(render::table(pipeline, now, paint));
    lines.push(render::summary(pipeline, now, paint));
    output::lines(&lines)?;
    Ok(Exit::Success)
}

/// `pipeline 7 on main at 1a2b3c4d, created 3m ago`.
fn heading(pipeline: &Pipeline, now: DateTime<Utc>) -> String {
    let sha = pipeline
        .sha
        .as_deref()
        .map(|sha| format!(" at {}", short(sha)))
        .unwrap_or_default();
    format!(
        "pipeline {} on {}{sha}, created {}",
        pipeline.id,
        pipeline.git_ref,
        render::age(pipeline.created_at, now)
    )
}

fn short(sha: &str) -> &str {
    sha.get(..8).unwrap_or(sha)
}

pub(super) fn list(ctx: &Context, args: &PipelinesArgs) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let name = project_name(args.project.project.clone())?;
    let project = project::find(&client, &name)?;
    let status = args.status.map(crate::cli::PipelineStatus::as_str);
    let answer = client.pipelines(project.id, status, args.limit)?;
    if ctx.json {
        output::json(&answer.raw)?;
        return Ok(Exit::Success);
    }
    if answer.value.is_empty() {
        output::line(format!(
            "project {name:?} has no pipelines{}",
            status.map(|s| format!(" {s}")).unwrap_or_default()
        ))?;
        return Ok(Exit::Success);
    }
    output::lines(&rows(&answer.value, Utc::now(), Paint::new(ctx.term.color)))?;
    Ok(Exit::Success)
}

/// The list as a table: id, status (icon and text), ref, commit, age.
fn rows(pipelines: &[Pipeline], now: DateTime<Utc>, paint: Paint) -> Vec<String> {
    let rows: Vec<Vec<render::Cell>> = pipelines
        .iter()
        .map(|p| {
            vec![
                (p.id.to_string(), None),
                (
                    format!("{} {}", render::status_icon(&p.status), p.status),
                    Some(render::status_tone(&p.status)),
                ),
                (p.git_ref.clone(), None),
                (p.sha.as_deref().map_or("-", short).to_owned(), None),
                (render::age(p.created_at, now), None),
            ]
        })
        .collect();
    render::columns(&["ID", "STATUS", "REF", "SHA", "CREATED"], &rows, paint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::tests::pipeline;

    #[test]
    fn the_list_aligns_its_columns() {
        let mut p = pipeline("success", &[]);
        p.sha = Some("0123456789abcdef".to_owned());
        let mut q = pipeline("running", &[]);
        q.id = 12;
        q.git_ref = "feature/x".to_owned();
        let now: DateTime<Utc> = "2026-01-01T12:05:00Z".parse().expect("a time");
        assert_eq!(
            rows(&[q, p], now, Paint::new(false)),
            [
                "ID  STATUS     REF        SHA       CREATED",
                "12  ● running  feature/x  -         5m ago",
                "7   ✔ success  main       01234567  5m ago",
            ]
        );
    }
}
