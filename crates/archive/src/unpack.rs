//! Unpacking a checked archive into a directory without ever following a symlink on the way.
//!
//! The job is not running while its archives are unpacked, so nothing else changes the root
//! meanwhile: checking each component once with `symlink_metadata` and then creating it is
//! enough, and directories already checked are remembered.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::read::{Archive, Failure, check, copy_entry, open};
use crate::{Entry, EntryKind, Limits, Refusal, UnpackError};

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    /// Uncompressed bytes of the regular files.
    pub bytes: u64,
}

/// Unpacks `archive` into `root`, an existing directory that may hold files already: an entry
/// replaces a file or symlink of the same path (so later archives win, as when GitLab fetches
/// several jobs' artifacts and a cache), but never a directory, and never writes through a
/// symlink. The whole archive is checked as [`inspect`](crate::inspect) does before anything is
/// written. Files get mode 0o755 if the archive says executable, else 0o644: no setuid, setgid
/// or sticky bit, no write for group or others.
pub fn unpack(archive: &Path, root: &Path, limits: &Limits) -> Result<Unpacked, UnpackError> {
    let mut zip = open(archive)?;
    let entries = check(&mut zip, limits)?;
    let mut checked = HashSet::new();
    let mut bytes = 0;
    for (index, entry) in entries.iter().enumerate() {
        bytes += extract(&mut zip, index, entry, root, &mut checked)?;
    }
    Ok(Unpacked {
        entries: entries.len() as u64,
        bytes,
    })
}

fn extract(
    zip: &mut Archive,
    index: usize,
    entry: &Entry,
    root: &Path,
    checked: &mut HashSet<PathBuf>,
) -> Result<u64, UnpackError> {
    let parts: Vec<&str> = entry.path.split('/').collect();
    if entry.kind == EntryKind::Directory {
        directories(root, &entry.path, &parts, checked)?;
        return Ok(0);
    }
    let (last, parents) = parts.split_last().expect("an entry path is never empty");
    let dest = directories(root, &entry.path, parents, checked)?.join(last);
    clear(&dest, &entry.path)?;
    let write = |source| write_error(&dest, source);
    if let EntryKind::Symlink { target } = &entry.kind {
        std::os::unix::fs::symlink(target, &dest).map_err(write)?;
        return Ok(0);
    }
    let mode = match entry.kind {
        EntryKind::File { executable: true } => 0o755,
        _ => 0o644,
    };
    // `create_new` fails rather than follow whatever appeared at `dest`.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&dest)
        .map_err(write)?;
    // Set exactly, whatever the umask: a later job runs what this one built.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(write)?;
    copy_entry(zip, index, entry, &mut file).map_err(|failure| match failure {
        Failure::Write(source) => write(source),
        Failure::Other(error) => error,
    })
}

/// Makes sure `parts` under `root` are real directories, creating the missing ones, and returns
/// the innermost. A symlink or a file on the way is refused, never followed or replaced.
fn directories(
    root: &Path,
    name: &str,
    parts: &[&str],
    checked: &mut HashSet<PathBuf>,
) -> Result<PathBuf, UnpackError> {
    let mut path = root.to_path_buf();
    for (n, part) in parts.iter().enumerate() {
        path.push(part);
        if checked.contains(&path) {
            continue;
        }
        let refused = |rule| UnpackError::Refused {
            name: name.to_owned(),
            rule,
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(Refusal::ThroughSymlink(parts[..=n].join("/"))));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(refused(Refusal::NotADirectory(parts[..=n].join("/")))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(|source| write_error(&path, source))?,
            Err(source) => return Err(write_error(&path, source)),
        }
        checked.insert(path.clone());
    }
    Ok(path)
}

/// Removes a file or symlink at `dest` so the entry is written afresh: writing into an existing
/// symlink would follow it, and into an existing file would reach its other hard links.
fn clear(dest: &Path, name: &str) -> Result<(), UnpackError> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Err(UnpackError::Refused {
            name: name.to_owned(),
            rule: Refusal::ReplacesDirectory,
        }),
        Ok(_) => fs::remove_file(dest).map_err(|source| write_error(dest, source)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(write_error(dest, source)),
    }
}

fn write_error(path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Write {
        path: path.to_owned(),
        source,
    }
}
