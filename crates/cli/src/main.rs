#![doc = include_str!("../README.md")]

mod api;
mod cli;
mod client;
mod commands;
mod config;
mod exit;
mod follow;
mod git;
mod interrupt;
mod logs;
mod output;
mod project;
mod render;
mod term;
mod view;

use clap::Parser as _;
use exit::Exit;
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_panics();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return parse_failure(&error).into(),
    };
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(error) => report(&error).into(),
    }
}

/// `--help` and `--version` exit 0; any other parse error is a usage error, 3 (clap's own
/// default, 2, means "canceled" here).
fn parse_failure(error: &clap::Error) -> Exit {
    let _ = error.print();
    if error.use_stderr() {
        Exit::Usage
    } else {
        Exit::Success
    }
}

/// Prints the error as one sentence on stderr and picks the exit code.
fn report(error: &anyhow::Error) -> Exit {
    let closed_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if closed_pipe {
        // Whoever read stdout (`| head`) has what they wanted.
        return Exit::Success;
    }
    let _ = writeln!(std::io::stderr().lock(), "error: {error:#}");
    Exit::of_error(error)
}

/// A panic is a bug: say so in a sentence, without a backtrace.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "error: lockstep hit a bug ({info}); please report it"
        );
    }));
}
