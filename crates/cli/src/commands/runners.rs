//! `lockstep runners` (who is online, with which tags, holding which builds) and
//! `lockstep runners register NAME` (its token, shown this once).

use super::Context;
use crate::api::Runner;
use crate::cli::RunnersAction;
use crate::exit::Exit;
use crate::output;
use crate::render::{self, Paint, Tone};
use chrono::Utc;

pub(super) fn run(ctx: &Context, action: Option<RunnersAction>) -> anyhow::Result<Exit> {
    match action {
        None => list(ctx),
        Some(RunnersAction::Register { name, tags }) => register(ctx, &name, &tags),
    }
}

fn list(ctx: &Context) -> anyhow::Result<Exit> {
    let answer = ctx.client()?.runners()?;
    if ctx.json {
        output::json(&answer.raw)?;
    } else if answer.value.is_empty() {
        output::line("no runners: register one with `lockstep runners register NAME`")?;
    } else {
        output::lines(&rows(&answer.value, Paint::new(ctx.term.color)))?;
    }
    Ok(Exit::Success)
}

fn rows(runners: &[Runner], paint: Paint) -> Vec<String> {
    let now = Utc::now();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(" ")
        }
    };
    let rows: Vec<Vec<render::Cell>> = runners
        .iter()
        .map(|runner| {
            let state = if runner.online {
                ("● online".to_owned(), Some(Tone::Good))
            } else {
                ("○ offline".to_owned(), Some(Tone::Quiet))
            };
            let contact = runner
                .contacted_at
                .map_or_else(|| "never".to_owned(), |at| render::age(at, now));
            vec![
                (runner.id.to_string(), None),
                (runner.name.clone(), None),
                state,
                (contact, None),
                (list(runner.tags.clone()), None),
                (
                    list(runner.builds.iter().map(|b| format!("#{b}")).collect()),
                    None,
                ),
            ]
        })
        .collect();
    render::columns(
        &["ID", "NAME", "STATE", "CONTACT", "TAGS", "BUILDS"],
        &rows,
        paint,
    )
}

fn register(ctx: &Context, name: &str, tags: &[String]) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let answer = client.register_runner(name, tags)?;
    if ctx.json {
        output::json(&answer.raw)?;
        return Ok(Exit::Success);
    }
    let runner = &answer.value;
    let tags = if runner.tags.is_empty() {
        "no tags".to_owned()
    } else {
        format!("tags {}", runner.tags.join(", "))
    };
    output::lines(&[
        format!("registered runner {} {:?} ({tags})", runner.id, runner.name),
        format!("token: {}", runner.token),
        "the token is shown this once: keep it now".to_owned(),
        format!(
            "start a worker with: lockstep-worker --url {} --token {}",
            client.url(),
            runner.token
        ),
    ])?;
    Ok(Exit::Success)
}
