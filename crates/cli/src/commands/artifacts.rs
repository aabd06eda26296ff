//! `lockstep artifacts BUILD [--download DIR]`: what a build kept, as a table, or unpacked into
//! a directory with the same checks a runner makes (nothing lands outside DIR).

use super::Context;
use crate::api::Artifacts;
use crate::cli::ArtifactsArgs;
use crate::exit::{Exit, usage};
use crate::{output, render};
use serde_json::json;
use std::path::Path;

pub(super) fn run(ctx: &Context, args: &ArtifactsArgs) -> anyhow::Result<Exit> {
    let client = ctx.client()?;
    let listing = client.artifacts(args.build)?;
    let Some(dir) = &args.download else {
        if ctx.json {
            output::json(&listing.raw)?;
        } else {
            output::line(summary(args.build, &listing.value))?;
            output::lines(&rows(&listing.value))?;
        }
        return Ok(Exit::Success);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    let archive = tempfile::NamedTempFile::new()?.into_temp_path();
    client.download(
        &format!("/builds/{}/artifacts/download", args.build),
        &archive,
    )?;
    let unpacked = lockstep_archive::unpack(&archive, dir, &lockstep_archive::Limits::DEFAULT)
        .map_err(|e| anyhow::anyhow!("refused to unpack build {}'s artifacts: {e}", args.build))?;
    if ctx.json {
        output::json(&json!({
            "build_id": args.build,
            "directory": dir,
            "entries": unpacked.entries,
            "bytes": unpacked.bytes,
        }))?;
    } else {
        output::line(format!(
            "unpacked {} entries ({}) of build {} into {}",
            unpacked.entries,
            bytes(unpacked.bytes),
            args.build,
            shown(dir)
        ))?;
    }
    Ok(Exit::Success)
}

fn shown(dir: &Path) -> String {
    dir.display().to_string()
}

fn summary(build: i64, artifacts: &Artifacts) -> String {
    let expiry = artifacts.expires_at.map_or_else(
        || "kept until deleted".to_owned(),
        |at| format!("expires {}", at.format("%Y-%m-%d %H:%M UTC")),
    );
    format!(
        "build {build} ({}): {}, {}, {expiry}",
        artifacts.job,
        artifacts.file_name,
        bytes(artifacts.size)
    )
}

fn rows(artifacts: &Artifacts) -> Vec<String> {
    let rows: Vec<Vec<render::Cell>> = artifacts
        .entries
        .iter()
        .map(|entry| {
            let path = match &entry.target {
                Some(target) => format!("{} -> {target}", entry.path),
                None => entry.path.clone(),
            };
            let size = if entry.kind == "file" {
                bytes(entry.size)
            } else {
                "-".to_owned()
            };
            vec![(path, None), (entry.kind.clone(), None), (size, None)]
        })
        .collect();
    render::columns(&["PATH", "KIND", "SIZE"], &rows, render::Paint::new(false))
}

/// Bytes for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[expect(clippy::cast_precision_loss, reason = "one decimal is shown")]
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ArtifactEntry;

    #[test]
    fn the_listing_shows_paths_kinds_and_sizes() {
        let artifacts = Artifacts {
            job: "build".to_owned(),
            file_name: "artifacts.zip".to_owned(),
            size: 2_048,
            expires_at: None,
            entries: vec![
                ArtifactEntry {
                    path: "out".to_owned(),
                    kind: "directory".to_owned(),
                    size: 0,
                    target: None,
                },
                ArtifactEntry {
                    path: "out/app".to_owned(),
                    kind: "file".to_owned(),
                    size: 1_536,
                    target: None,
                },
                ArtifactEntry {
                    path: "out/latest".to_owned(),
                    kind: "symlink".to_owned(),
                    size: 0,
                    target: Some("app".to_owned()),
                },
            ],
        };
        assert_eq!(
            summary(7, &artifacts),
            "build 7 (build): artifacts.zip, 2.0 KiB, kept until deleted"
        );
        let rows = rows(&artifacts);
        assert!(
            rows[2].contains("out/app") && rows[2].contains("1.5 KiB"),
            "{rows:#?}"
        );
        assert!(rows[3].contains("out/latest -> app"), "{rows:#?}");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
