//! Rebuilds the crate when a migration is added or edited (`embed_migrations!` compiles the
//! migrations into the binary, and cargo only watches what it is told to), and hashes the same
//! files into `LOCKSTEP_SCHEMA_HASH`, the template database's name.

#[path = "src/hash.rs"]
mod hash;

use std::fs;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=../../migrations");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files = Vec::new();
    if let Err(error) = collect_files(&dir, &dir, &mut files) {
        panic!("cannot read the migrations in {}: {error}", dir.display());
    }
    files.sort();
    let mut hash = hash::Fnv1a::new();
    for (relative, contents) in files {
        // Lengths as separators: no two different file sets hash the same byte stream.
        hash.write(&(relative.len() as u64).to_le_bytes());
        hash.write(relative.as_bytes());
        hash.write(&(contents.len() as u64).to_le_bytes());
        hash.write(&contents);
    }
    println!(
        "cargo::rustc-env=LOCKSTEP_SCHEMA_HASH={:016x}",
        hash.finish()
    );
}

fn collect_files(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            // `/` on every platform, so the hash does not depend on the OS.
            let relative = relative.to_string_lossy().replace('\\', "/");
            files.push((relative, fs::read(&path)?));
        }
    }
    Ok(())
}
