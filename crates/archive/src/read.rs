//! Reading an archive: checking every entry against the safety rules, listing, copying one out.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use crate::name::{ancestors, entry_path, symlink_target};
use crate::{Limits, Refusal, UnpackError};

pub(crate) type Archive = ZipArchive<BufReader<File>>;

/// The longest symlink target read (Linux's `PATH_MAX`).
const MAX_TARGET: u64 = 4096;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// One entry of a checked archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The safe, normal path relative to the root: `out/app`, never a trailing slash.
    pub path: String,
    /// Uncompressed bytes as declared (a symlink's: its target's length; a directory's: 0).
    pub size: u64,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        executable: bool,
    },
    Directory,
    /// `target` is in normal form (`..` only at the start), as unpacking creates it.
    Symlink {
        target: String,
    },
}

/// Reads and checks an archive without unpacking it: every entry's name is safe, every symlink
/// stays inside the root, no entry sits under a file or a symlink of the archive, and the count
/// and total size are within `limits`. Returns the entries in archive order.
pub fn inspect(archive: &Path, limits: &Limits) -> Result<Vec<Entry>, UnpackError> {
    check(&mut open(archive)?, limits)
}

/// Copies the contents of the regular file entry `path` (as [`inspect`] lists it) to `to`, and
/// returns the byte count. Only this entry is checked, so the server can serve one file of a
/// large archive cheaply; it checked the whole archive when it was uploaded.
pub fn copy_file(
    archive: &Path,
    path: &str,
    to: &mut impl Write,
    limits: &Limits,
) -> Result<u64, UnpackError> {
    let mut zip = open(archive)?;
    check_count(&zip, limits)?;
    let not_found = || UnpackError::NotFound {
        path: path.to_owned(),
    };
    let wanted = entry_path(path).map_err(|_| not_found())?;
    let index = zip
        .file_names()
        .position(|name| name.ok().and_then(|n| entry_path(&n).ok()).as_ref() == Some(&wanted))
        .ok_or_else(not_found)?;
    let entry = check_entry(&mut zip, index)?;
    if !matches!(entry.kind, EntryKind::File { .. }) {
        return Err(UnpackError::NotAFile { path: entry.path });
    }
    if entry.size > limits.max_bytes {
        return Err(UnpackError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    copy_entry(&mut zip, index, &entry, to).map_err(|failure| match failure {
        Failure::Write(source) => UnpackError::Output(source),
        Failure::Other(error) => error,
    })
}

pub(crate) fn open(path: &Path) -> Result<Archive, UnpackError> {
    let file = File::open(path).map_err(|source| UnpackError::Open {
        path: path.to_owned(),
        source,
    })?;
    ZipArchive::new(BufReader::new(file)).map_err(|source| UnpackError::NotZip {
        path: path.to_owned(),
        source,
    })
}

/// Every entry, checked; index `i` of the result is entry `i` of the archive.
pub(crate) fn check(zip: &mut Archive, limits: &Limits) -> Result<Vec<Entry>, UnpackError> {
    check_count(zip, limits)?;
    let mut entries = Vec::with_capacity(zip.len());
    let mut bytes = 0_u64;
    for index in 0..zip.len() {
        let entry = check_entry(zip, index)?;
        if let EntryKind::File { .. } = entry.kind {
            bytes = bytes.saturating_add(entry.size);
        }
        if bytes > limits.max_bytes {
            return Err(UnpackError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        entries.push(entry);
    }
    check_tree(&entries)?;
    Ok(entries)
}

fn check_count(zip: &Archive, limits: &Limits) -> Result<(), UnpackError> {
    // The zip crate keeps one entry per raw name, so a repeated name would hide an entry.
    if zip.has_duplicate_names() {
        return Err(UnpackError::DuplicateNames);
    }
    let count = zip.len() as u64;
    if count > limits.max_entries {
        return Err(UnpackError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    Ok(())
}

fn check_entry(zip: &mut Archive, index: usize) -> Result<Entry, UnpackError> {
    let unnamed = |e| read_error(&format!("#{index}"), e);
    let data = zip.by_index_data(index).map_err(unnamed)?;
    let name = data.name().map_err(unnamed)?.into_owned();
    let refused = |rule| UnpackError::Refused {
        name: name.clone(),
        rule,
    };
    let path = entry_path(&name).map_err(refused)?;
    if data.encrypted()
        || !matches!(
            data.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        )
    {
        return Err(refused(Refusal::Unsupported));
    }
    let (is_dir, size) = (data.is_dir(), data.size());
    let mode = data.unix_mode().unwrap_or(0);
    let kind = match mode & S_IFMT {
        _ if is_dir => EntryKind::Directory,
        0 | S_IFREG => EntryKind::File {
            executable: mode & 0o111 != 0,
        },
        S_IFDIR => EntryKind::Directory,
        S_IFLNK => {
            let target = read_target(zip, index, &name)?;
            EntryKind::Symlink {
                target: symlink_target(&path, &target).map_err(refused)?,
            }
        }
        _ => return Err(refused(Refusal::FileType(mode))),
    };
    let size = match &kind {
        EntryKind::File { .. } => size,
        EntryKind::Directory => 0,
        EntryKind::Symlink { target } => target.len() as u64,
    };
    Ok(Entry { path, size, kind })
}

fn read_target(zip: &mut Archive, index: usize, name: &str) -> Result<String, UnpackError> {
    let mut bytes = Vec::new();
    zip.by_index(index)
        .map_err(io::Error::from)
        .and_then(|file| file.take(MAX_TARGET + 1).read_to_end(&mut bytes))
        .map_err(|source| UnpackError::ReadEntry {
            name: name.to_owned(),
            source,
        })?;
    match String::from_utf8(bytes) {
        Ok(target) if target.len() as u64 <= MAX_TARGET => Ok(target),
        _ => Err(UnpackError::Refused {
            name: name.to_owned(),
            rule: Refusal::SymlinkTarget,
        }),
    }
}

/// Refuses two entries with one path (`a/b` and `a//b`), and an entry under a file or a symlink
/// of the archive: unpacking would have to write through it.
fn check_tree(entries: &[Entry]) -> Result<(), UnpackError> {
    let mut kinds = HashMap::with_capacity(entries.len());
    let refused = |entry: &Entry, rule| UnpackError::Refused {
        name: entry.path.clone(),
        rule,
    };
    for entry in entries {
        if kinds.insert(entry.path.as_str(), &entry.kind).is_some() {
            return Err(refused(entry, Refusal::Duplicate));
        }
    }
    for entry in entries {
        for ancestor in ancestors(&entry.path) {
            match kinds.get(ancestor) {
                Some(EntryKind::Symlink { .. }) => {
                    return Err(refused(entry, Refusal::ThroughSymlink(ancestor.to_owned())));
                }
                Some(EntryKind::File { .. }) => {
                    return Err(refused(entry, Refusal::NotADirectory(ancestor.to_owned())));
                }
                Some(EntryKind::Directory) | None => {}
            }
        }
    }
    Ok(())
}

/// A failed copy: writing the output, or anything else (reading, a size that lies).
pub(crate) enum Failure {
    Write(io::Error),
    Other(UnpackError),
}

/// Copies a file entry's contents to `to`, never more than its declared size: a header that
/// claims little but inflates to more is refused before the extra byte is written (the
/// `take(size + 1)` of the brief, checked chunk by chunk).
pub(crate) fn copy_entry(
    zip: &mut Archive,
    index: usize,
    entry: &Entry,
    to: &mut impl Write,
) -> Result<u64, Failure> {
    let read = |source| Failure::Other(read_error(&entry.path, source));
    let mut from = zip.by_index(index).map_err(|e| read(e.into()))?;
    let mut buffer = vec![0; 64 * 1024];
    let mut copied = 0_u64;
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read(e)),
        };
        copied += n as u64;
        if copied > entry.size {
            break;
        }
        to.write_all(&buffer[..n]).map_err(Failure::Write)?;
    }
    if copied == entry.size {
        Ok(copied)
    } else {
        Err(Failure::Other(UnpackError::Refused {
            name: entry.path.clone(),
            rule: Refusal::SizeMismatch(entry.size),
        }))
    }
}

fn read_error(name: &str, error: impl Into<io::Error>) -> UnpackError {
    UnpackError::ReadEntry {
        name: name.to_owned(),
        source: error.into(),
    }
}
