//! `lockstep cancel`, `retry` and `play`: one transition of a pipeline or a build each.

use super::Context;
use crate::cli::Target;
use crate::exit::Exit;
use crate::output;

pub(super) fn cancel(ctx: &Context, target: &Target) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let (raw, said) = match (target.pipeline, target.build) {
        (Some(id), _) => {
            let answer = client.cancel_pipeline(id)?;
            let said = format!("pipeline {id} is {}", answer.value.status);
            (answer.raw, said)
        }
        (None, Some(id)) => {
            let answer = client.cancel_build(id)?;
            let said = format!(
                "build {id} ({}) is {}",
                answer.value.name, answer.value.status
            );
            (answer.raw, said)
        }
        (None, None) => unreachable!("clap requires a pipeline or --build"),
    };
    say(ctx, &raw, &said)
}

pub(super) fn retry(ctx: &Context, target: &Target) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let (raw, said) = match (target.pipeline, target.build) {
        (Some(id), _) => {
            let answer = client.retry_pipeline(id)?;
            let said = format!(
                "pipeline {id} is {}: its failed and canceled builds run again (`lockstep status {id}`)",
                answer.value.status
            );
            (answer.raw, said)
        }
        (None, Some(id)) => {
            let answer = client.retry_build(id)?;
            let new = &answer.value;
            let said = format!(
                "build {id} ({}) retried as build {}, attempt {} (`lockstep logs -f {}`)",
                new.name, new.id, new.attempt, new.id
            );
            (answer.raw, said)
        }
        (None, None) => unreachable!("clap requires a pipeline or --build"),
    };
    say(ctx, &raw, &said)
}

pub(super) fn play(ctx: &Context, build: i64) -> anyhow::Result<Exit> {
    let answer = ctx.client()?.play_build(build)?;
    let said = format!(
        "build {build} ({}) is {} (`lockstep logs -f {build}`)",
        answer.value.name, answer.value.status
    );
    say(ctx, &answer.raw, &said)
}

fn say(ctx: &Context, raw: &serde_json::Value, said: &str) -> anyhow::Result<Exit> {
    if ctx.json {
        output::json(raw)?;
    } else {
        output::line(said)?;
    }
    Ok(Exit::Success)
}
