//! The subcommands, one module each, and what they share: the settings and the client.

mod artifacts;
mod lint;
mod login;
mod logs;
mod pipelines;
mod resource_groups;
mod run;
mod runners;
mod transitions;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::config::{self, Given, Settings};
use crate::exit::{Exit, usage};
use crate::term::Term;

/// What every command may need, read lazily: `lint` needs neither a config file nor a server.
#[derive(Debug)]
pub(crate) struct Context {
    flags: Given,
    env: Given,
    pub(crate) json: bool,
    pub(crate) term: Term,
}

impl Context {
    /// The URL and token from the flags, the environment and the config file.
    pub(crate) fn settings(&self) -> anyhow::Result<Settings> {
        let file = match config::path() {
            Ok(path) => config::load(&path)?,
            // Without a home there is no config file; the flags and environment may suffice.
            Err(_) => config::ConfigFile::default(),
        };
        Ok(config::resolve(&self.flags, &self.env, &file))
    }

    /// A client for the configured server, with the configured token.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let settings = self.settings()?;
        let token = settings
            .token
            .ok_or_else(|| usage("no token: run `lockstep login` or set LOCKSTEP_TOKEN"))?;
        Ok(Client::new(&settings.url, &token)?)
    }
}

/// Runs the command the line asked for.
pub(crate) fn run(cli: Cli) -> anyhow::Result<Exit> {
    let context = Context {
        flags: Given {
            url: cli.url,
            token: cli.token,
        },
        env: Given::from_env(),
        json: cli.json,
        term: Term::detect(),
    };
    let ctx = &context;
    match cli.command {
        Command::Login => login::run(ctx),
        Command::Run(args) => run::run(ctx, &args),
        Command::Logs(args) => logs::run(ctx, &args),
        Command::Artifacts(args) => artifacts::run(ctx, &args),
        Command::Status(args) => pipelines::status(ctx, args.pipeline),
        Command::Pipelines(args) => pipelines::list(ctx, &args),
        Command::Cancel(target) => transitions::cancel(ctx, &target),
        Command::Retry(target) => transitions::retry(ctx, &target),
        Command::Play(args) => transitions::play(ctx, args.build),
        Command::Lint(args) => lint::run(ctx, &args.file),
        Command::Runners(args) => runners::run(ctx, args.action),
        Command::ResourceGroups(args) => resource_groups::run(ctx, args.project),
    }
}

/// The project a command names, or the default one.
fn project_name(given: Option<String>) -> anyhow::Result<String> {
    match given {
        Some(name) => Ok(name),
        None => crate::project::default_name(crate::git::checkout().as_ref()),
    }
}
