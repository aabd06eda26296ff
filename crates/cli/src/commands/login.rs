//! `lockstep login`: checks a token with the server, then saves it and the URL to the config
//! file for the commands after it.

use super::Context;
use crate::client::{Client, ClientError};
use crate::config;
use crate::exit::{Exit, usage};
use crate::output;
use anyhow::Context as _;
use serde_json::json;
use std::io::Read as _;

pub(super) fn run(ctx: &Context) -> anyhow::Result<Exit> {
    let url = ctx.settings().map_or_else(
        // A broken config file is what login replaces; the URL then comes from flag or env.
        |_| config::resolve(&ctx.flags, &ctx.env, &config::ConfigFile::default()).url,
        |settings| settings.url,
    );
    let token = match ctx.flags.token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => token.to_owned(),
        _ => read_token(ctx, &url)?,
    };
    let client = Client::new(&url, &token)?;
    // Any admin call proves the token; listing projects changes nothing.
    match client.projects() {
        Ok(_) => {}
        Err(ClientError::Unauthorized { url }) => anyhow::bail!(
            "the server at {url} refused the token: give the server's LOCKSTEP_API_TOKEN"
        ),
        Err(error) => return Err(error.into()),
    }
    let path = config::path()?;
    let mut file = config::load(&path).unwrap_or_default();
    file.url = Some(client.url().to_owned());
    file.token = Some(token);
    config::save(&path, &file)?;
    if ctx.json {
        output::json(&json!({ "url": client.url(), "config": path }))?;
    } else {
        output::line(format!(
            "logged in to {}; saved the token to {}",
            client.url(),
            path.display()
        ))?;
    }
    Ok(Exit::Success)
}

/// The token from stdin: asked for without echo on a terminal, else the whole of stdin.
fn read_token(ctx: &Context, url: &str) -> anyhow::Result<String> {
    let token = if ctx.term.can_ask {
        let term = console::Term::stderr();
        term.write_str(&format!(
            "token for {url} (the server's LOCKSTEP_API_TOKEN): "
        ))?;
        term.read_secure_line().context("cannot read the token")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the token from stdin")?;
        text
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(usage(
            "no token given: pass --token TOKEN, or type it (or pipe it in) when asked",
        ));
    }
    Ok(token.to_owned())
}
