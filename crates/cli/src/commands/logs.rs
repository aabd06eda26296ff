//! `lockstep logs BUILD [-f]`: a build's log on stdout, byte for byte.

use super::Context;
use crate::cli::LogsArgs;
use crate::exit::Exit;
use crate::{logs, output};
use serde_json::json;

pub(super) fn run(ctx: &Context, args: &LogsArgs) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    if ctx.json {
        // JSON holds text, not bytes: the log is read whole, then given as one string.
        let mut bytes = Vec::new();
        let copied = logs::copy(&client, args.build, &mut bytes, args.follow)?;
        output::json(&json!({
            "build_id": args.build,
            "bytes": copied.bytes,
            "complete": copied.complete,
            "log": String::from_utf8_lossy(&bytes),
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        logs::copy(&client, args.build, &mut out, args.follow)?;
    }
    Ok(Exit::Success)
}
