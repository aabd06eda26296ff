//! `lockstep run`: submits a pipeline file as it is, then follows the pipeline live to its end.
//! Ctrl-C stops following and asks whether to cancel it.

use super::Context;
use super::lint::{Problem, report};
use crate::api::Pipeline;
use crate::cli::RunArgs;
use crate::client::{Client, ClientError, Json};
use crate::exit::{Exit, usage};
use crate::follow::{self, Outcome};
use crate::interrupt::Interrupts;
use crate::view::{self, View};
use crate::{git, logs, output, project};
use anyhow::Context as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the pipeline is read while followed.
const POLL: Duration = Duration::from_millis(500);
/// How long following rides out a server that went away (a restart, a busy database) before
/// giving up.
const OUTAGE: Duration = Duration::from_secs(30);

pub(super) fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<Exit> {
    let source = read_file(&args.file)?;
    let checkout = git::checkout();
    let branch = checkout.as_ref().and_then(|c| c.branch.clone());
    let git_ref = args
        .git_ref
        .clone()
        .or(branch)
        .unwrap_or_else(|| "main".to_owned());
    let sha = args
        .sha
        .clone()
        .or_else(|| checkout.as_ref().and_then(|c| c.sha.clone()));
    let name = match &args.project {
        Some(name) => name.clone(),
        None => project::default_name(checkout.as_ref())?,
    };
    let client = ctx.client()?;
    let project = project::find_or_create(&client, &name)?;
    let submitted = match client.submit_file(project.id, &git_ref, sha.as_deref(), &source) {
        Ok(submitted) => submitted,
        Err(ClientError::Invalid {
            message,
            field,
            problems,
            body,
        }) => {
            let problems = if problems.is_empty() {
                vec![Problem::whole_file(message, field)]
            } else {
                problems.into_iter().map(Problem::from).collect()
            };
            return report(ctx, &args.file, &problems, Some(&body));
        }
        Err(
            error @ ClientError::Refused {
                status: 400 | 415, ..
            },
        ) => {
            return Err(anyhow::Error::from(error).context(format!(
                "the server did not take {} as a YAML pipeline file (is it older than YAML support?)",
                args.file.display()
            )));
        }
        Err(error) => return Err(error.into()),
    };
    let id = submitted.value.id;
    let announce = format!(
        "pipeline {id} of project {name:?} on {git_ref}{}, from {}",
        sha.as_deref()
            .map(|s| format!(" at {}", s.get(..8).unwrap_or(s)))
            .unwrap_or_default(),
        args.file.display()
    );
    if args.no_follow {
        if ctx.json {
            output::json(&submitted.raw)?;
        } else {
            output::line(format!("{announce}: /api/v1/pipelines/{id}"))?;
        }
        return Ok(Exit::Success);
    }
    if ctx.json {
        output::note(&announce)?;
    } else {
        output::line(&announce)?;
    }
    let interrupts = Interrupts::install()?;
    let mut view = view::for_run(ctx.json, ctx.term);
    match follow(&client, submitted, view.as_mut(), &interrupts)? {
        Ended::Finished(last, outcome) => {
            if ctx.json {
                output::json(&last.raw)?;
            }
            Ok(outcome.exit())
        }
        Ended::Interrupted(last) => interrupted(ctx, args, &client, &last, &interrupts),
    }
}

/// The file's bytes, sent as they are: the server reads the YAML and says where it is wrong.
fn read_file(file: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(usage(format!(
            "no pipeline file at {}: pass a FILE or create one (see examples/)",
            file.display()
        ))),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// How following ended.
enum Ended {
    Finished(Json<Pipeline>, Outcome),
    Interrupted(Json<Pipeline>),
}

/// Shows each snapshot until the pipeline is over or Ctrl-C comes.
fn follow(
    client: &Client,
    first: Json<Pipeline>,
    view: &mut dyn View,
    interrupts: &Interrupts,
) -> anyhow::Result<Ended> {
    let mut step = follow::step(None, &first.value);
    let mut last = first;
    loop {
        view.show(&last.value, &step)?;
        for build in &step.failed {
            show_tail(client, view, &last.value, *build)?;
        }
        if let Some(outcome) = step.outcome {
            view.finish(&last.value)?;
            return Ok(Ended::Finished(last, outcome));
        }
        let next = if interrupts.wait(POLL) {
            None
        } else {
            fetch(client, last.value.id, view, interrupts)?
        };
        let Some(next) = next else {
            view.stop();
            return Ok(Ended::Interrupted(last));
        };
        step = follow::step(Some(&last.value), &next.value);
        last = next;
    }
}

/// The pipeline now, riding out a short outage; `None` if Ctrl-C came meanwhile.
fn fetch(
    client: &Client,
    id: i64,
    view: &mut dyn View,
    interrupts: &Interrupts,
) -> anyhow::Result<Option<Json<Pipeline>>> {
    let mut lost: Option<Instant> = None;
    loop {
        match client.pipeline(id) {
            Ok(pipeline) => {
                if lost.is_some() {
                    view.note("the server answers again")?;
                }
                return Ok(Some(pipeline));
            }
            Err(
                error
                @ (ClientError::Unreachable { .. } | ClientError::Refused { status: 503, .. }),
            ) => {
                if lost.is_none() {
                    view.note(&format!("{error}; trying again for {}s", OUTAGE.as_secs()))?;
                }
                let since = *lost.get_or_insert_with(Instant::now);
                if since.elapsed() > OUTAGE {
                    return Err(error.into());
                }
                if interrupts.wait(Duration::from_secs(1)) {
                    return Ok(None);
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The tail of a failed build's log. A log that cannot be read is noted, not fatal: the
/// pipeline is still worth following.
fn show_tail(
    client: &Client,
    view: &mut dyn View,
    pipeline: &Pipeline,
    id: i64,
) -> anyhow::Result<()> {
    let Some(build) = pipeline.builds.iter().find(|b| b.id == id) else {
        return Ok(());
    };
    match logs::tail(client, id, logs::TAIL_LINES) {
        Ok(tail) => view.log_tail(build, &tail)?,
        Err(error) => view.note(&format!("cannot read the log of build {id}: {error}"))?,
    }
    Ok(())
}

/// After Ctrl-C: cancel if asked to (by flag, or by answering yes), else say how to.
fn interrupted(
    ctx: &Context,
    args: &RunArgs,
    client: &Client,
    last: &Json<Pipeline>,
    interrupts: &Interrupts,
) -> anyhow::Result<Exit> {
    let id = last.value.id;
    let cancel = args.cancel_on_interrupt
        || (ctx.term.can_ask && interrupts.ask(&format!("cancel pipeline {id}? [y/N]"))?);
    if !cancel {
        output::note(format!(
            "stopped following pipeline {id}; it goes on (cancel it with `lockstep cancel {id}`)"
        ))?;
        if ctx.json {
            output::json(&last.raw)?;
        }
        return Ok(Exit::Interrupted);
    }
    let canceled = client.cancel_pipeline(id)?;
    output::note(format!(
        "canceled pipeline {id} (it is {})",
        canceled.value.status
    ))?;
    if ctx.json {
        output::json(&canceled.raw)?;
    }
    Ok(Exit::Canceled)
}
