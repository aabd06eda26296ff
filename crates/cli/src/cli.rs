//! The command line's shape: every subcommand, flag and argument, with its help text.

use crate::exit;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Run pipeline files on a Lockstep server and watch them; read logs, cancel, retry.
#[derive(Debug, Parser)]
#[command(name = "lockstep", version, after_help = exit::HELP, propagate_version = true)]
pub(crate) struct Cli {
    /// The server [env: LOCKSTEP_URL] [default: http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// The admin token (the server's LOCKSTEP_API_TOKEN) [env: LOCKSTEP_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Print machine-readable JSON on stdout, and nothing else there
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a token with the server and save it, with the URL, to the config file
    ///
    /// The token comes from --token, else from stdin (asked for without echo on a terminal).
    Login,
    /// Submit a pipeline file and follow it live to its end
    Run(RunArgs),
    /// Print a build's log, byte for byte
    Logs(LogsArgs),
    /// List a build's artifacts, or download and unpack them into a directory
    Artifacts(ArtifactsArgs),
    /// Show a pipeline's jobs, by stage
    Status(PipelineArg),
    /// List a project's pipelines, newest first
    Pipelines(PipelinesArgs),
    /// Cancel a pipeline, or one build
    Cancel(Target),
    /// Retry a pipeline's failed and canceled builds, or one build
    Retry(Target),
    /// Start a manual build
    Play(BuildArg),
    /// Check a pipeline file, locally: no server needed
    Lint(LintArgs),
    /// List the runners (online or not, tags, builds held), or register one
    Runners(RunnersArgs),
    /// List a project's resource groups: who holds their slots, who waits
    ResourceGroups(ProjectArg),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The pipeline file
    #[arg(default_value = ".lockstep.yml")]
    pub(crate) file: PathBuf,
    /// The project, created on first use [default: the git checkout's directory name]
    #[arg(long, value_name = "NAME")]
    pub(crate) project: Option<String>,
    /// The branch or tag [default: the current git branch, else main]
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) git_ref: Option<String>,
    /// The commit [default: git's HEAD, if in a checkout]
    #[arg(long, value_name = "SHA")]
    pub(crate) sha: Option<String>,
    /// Print the pipeline's id and path, and exit without following it
    #[arg(long)]
    pub(crate) no_follow: bool,
    /// On Ctrl-C, cancel the pipeline without asking
    #[arg(long)]
    pub(crate) cancel_on_interrupt: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The build
    #[arg(value_name = "BUILD", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) build: i64,
    /// Keep printing as the log grows, until the build finishes
    #[arg(short, long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ArtifactsArgs {
    /// The build
    #[arg(value_name = "BUILD", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) build: i64,
    /// Unpack them into this directory (created when missing); files already there with the
    /// same names are replaced
    #[arg(long, value_name = "DIR")]
    pub(crate) download: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PipelineArg {
    /// The pipeline
    #[arg(value_name = "PIPELINE", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) pipeline: i64,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArg {
    /// The build
    #[arg(value_name = "BUILD", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) build: i64,
}

#[derive(Debug, Args)]
pub(crate) struct ProjectArg {
    /// The project [default: the git checkout's directory name]
    #[arg(long, value_name = "NAME")]
    pub(crate) project: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PipelinesArgs {
    #[command(flatten)]
    pub(crate) project: ProjectArg,
    /// Only pipelines in this status
    #[arg(long, value_name = "STATUS")]
    pub(crate) status: Option<PipelineStatus>,
    /// At most this many
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) limit: u32,
}

/// A pipeline's status, as `--status` takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PipelineStatus {
    Created,
    Pending,
    Running,
    Success,
    Failed,
    Canceling,
    Canceled,
    Skipped,
}

impl PipelineStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Canceling => "canceling",
            Self::Canceled => "canceled",
            Self::Skipped => "skipped",
        }
    }
}

/// A pipeline, or with `--build` one build.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// The pipeline
    #[arg(value_name = "PIPELINE", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) pipeline: Option<i64>,
    /// One build instead of a whole pipeline
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub(crate) build: Option<i64>,
}

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// The pipeline file
    #[arg(default_value = ".lockstep.yml")]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RunnersArgs {
    #[command(subcommand)]
    pub(crate) action: Option<RunnersAction>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunnersAction {
    /// Register a runner and print its token (shown this once)
    Register {
        /// The runner's name
        name: String,
        /// The tags it has: it takes only builds whose tags are all among them
        #[arg(long, value_name = "TAGS", value_delimiter = ',')]
        tags: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cancel_takes_a_pipeline_or_a_build_not_both() {
        assert!(Cli::try_parse_from(["lockstep", "cancel", "3"]).is_ok());
        assert!(Cli::try_parse_from(["lockstep", "cancel", "--build", "9"]).is_ok());
        assert!(Cli::try_parse_from(["lockstep", "cancel", "3", "--build", "9"]).is_err());
        assert!(Cli::try_parse_from(["lockstep", "cancel"]).is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["lockstep", "status", "4", "--json", "--url", "http://x"])
            .expect("parses");
        assert!(cli.json);
        assert_eq!(cli.url.as_deref(), Some("http://x"));
    }

    #[test]
    fn runners_lists_or_registers() {
        let cli = Cli::try_parse_from(["lockstep", "runners", "register", "box", "--tags", "a,b"])
            .expect("parses");
        let Command::Runners(RunnersArgs {
            action: Some(RunnersAction::Register { name, tags }),
        }) = cli.command
        else {
            panic!("not register: {cli:?}");
        };
        assert_eq!(
            (name.as_str(), tags),
            ("box", vec!["a".to_owned(), "b".to_owned()])
        );
    }
}
