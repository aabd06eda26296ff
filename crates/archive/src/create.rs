//! Making an archive from GitLab-style `paths` and `exclude` globs under a root directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::{DirEntry, WalkDir};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::CreateError;
use crate::name::{ancestors, entry_path, is_absolute, lexical};

/// What [`create`] put in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub entries: u64,
    /// Uncompressed bytes of the regular files.
    pub bytes: u64,
    /// The patterns of `paths` that matched nothing (left after `exclude`), in order: GitLab
    /// warns about these rather than failing.
    pub unmatched: Vec<String>,
}

/// Archives what `paths` match under `root`, less what `exclude` matches, into a new ZIP at
/// `out` (which should not lie under a matched path).
///
/// Patterns are relative to `root`: `*` and `?` stay within one path component, `**` spans any
/// number of them, `[abc]` and `{a,b}` work as usual, and a path without glob characters is
/// literal. A match that is a directory brings everything under it, for `paths` and `exclude`
/// alike. Symlinks are stored as symlinks, whatever their target, and never followed (nor is a
/// symlinked directory entered). Sockets and other special files are skipped. Entries are
/// stored in path order with mode 0o755 or 0o644 (executable or not) and a fixed date, so the
/// same tree gives the same archive; unpacked files then look newer than a fresh checkout,
/// which is what build tools caching `target/` want.
pub fn create(
    root: &Path,
    paths: &[String],
    exclude: &[String],
    out: &Path,
) -> Result<Created, CreateError> {
    let include = Patterns::new(paths)?;
    let exclude = Patterns::new(exclude)?;
    let mut matched = vec![false; paths.len()];
    let mut found = BTreeMap::new();
    for base in include.bases() {
        walk(root, base, &include, &exclude, &mut matched, &mut found)?;
    }
    let (entries, bytes) = write(root, &found, out)?;
    let unmatched = paths.iter().zip(matched).filter(|(_, hit)| !hit);
    Ok(Created {
        entries,
        bytes,
        unmatched: unmatched.map(|(pattern, _)| pattern.clone()).collect(),
    })
}

/// A set of globs, and for each the literal directory its matches all lie under.
struct Patterns {
    set: GlobSet,
    bases: Vec<String>,
}

impl Patterns {
    fn new(patterns: &[String]) -> Result<Self, CreateError> {
        let mut set = GlobSetBuilder::new();
        let mut bases = Vec::new();
        for pattern in patterns {
            let outside = || CreateError::PatternOutsideRoot {
                pattern: pattern.clone(),
            };
            let path = lexical(pattern);
            if pattern.is_empty() || is_absolute(pattern) || path.ups > 0 {
                return Err(outside());
            }
            // `.` (the root itself) matches everything under it.
            let glob = if path.parts.is_empty() {
                "**".to_owned()
            } else {
                path.parts.join("/")
            };
            let bad = |source| CreateError::BadPattern {
                pattern: pattern.clone(),
                source,
            };
            let glob = GlobBuilder::new(&glob).literal_separator(true).build();
            set.add(glob.map_err(bad)?);
            let literal = path.parts.iter().take_while(|p| !p.contains(GLOB_CHARS));
            bases.push(literal.copied().collect::<Vec<_>>().join("/"));
        }
        let set = set.build().map_err(|source| CreateError::BadPattern {
            pattern: patterns.join(", "),
            source,
        })?;
        Ok(Self { set, bases })
    }

    /// The bases to walk: each once, and none under another.
    fn bases(&self) -> Vec<&str> {
        let mut sorted: Vec<&str> = self.bases.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut kept: Vec<&str> = Vec::new();
        for base in sorted {
            let under = |k: &&str| {
                k.is_empty()
                    || base
                        .strip_prefix(*k)
                        .is_some_and(|rest| rest.starts_with('/'))
            };
            if !kept.iter().any(under) {
                kept.push(base);
            }
        }
        kept
    }

    /// Whether `path` or a directory above it matches.
    fn covers(&self, path: &str) -> bool {
        self.set.is_match(path) || ancestors(path).any(|a| self.set.is_match(a))
    }
}

const GLOB_CHARS: [char; 5] = ['*', '?', '[', '{', '\\'];

/// What an archive entry is made from.
enum Source {
    Directory,
    File { executable: bool },
    Symlink(String),
}

fn walk(
    root: &Path,
    base: &str,
    include: &Patterns,
    exclude: &Patterns,
    matched: &mut [bool],
    found: &mut BTreeMap<String, Source>,
) -> Result<(), CreateError> {
    if !reachable(root, base) {
        return Ok(());
    }
    let walker = WalkDir::new(root.join(base))
        .follow_links(false)
        .follow_root_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| relative(root, e).is_none_or(|path| !exclude.covers(path)));
    for item in walker {
        let item = item.map_err(|e| CreateError::Read {
            path: e.path().unwrap_or(root).to_owned(),
            source: io::Error::from(e),
        })?;
        let path = relative(root, &item).ok_or_else(|| CreateError::NotUtf8 {
            path: item.path().to_owned(),
        })?;
        if path.is_empty() {
            continue;
        }
        let hits = include.set.matches(path);
        for hit in &hits {
            matched[*hit] = true;
        }
        if hits.is_empty() && !include.covers(path) {
            continue;
        }
        if let Some(source) = source(&item)? {
            let safe = entry_path(path).map_err(|rule| CreateError::BadName {
                path: path.to_owned(),
                rule,
            })?;
            found.insert(safe, source);
        }
    }
    Ok(())
}

/// Whether `base` exists under `root` without passing through a symlink (it may be one itself):
/// a pattern reaching through a symlinked directory matches nothing, as a full walk would find.
fn reachable(root: &Path, base: &str) -> bool {
    let mut path = root.to_path_buf();
    let mut parts = base.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() || parts.peek().is_none() => {}
            _ => return false,
        }
    }
    true
}

fn relative<'a>(root: &Path, item: &'a DirEntry) -> Option<&'a str> {
    item.path().strip_prefix(root).ok()?.to_str()
}

fn source(item: &DirEntry) -> Result<Option<Source>, CreateError> {
    let read = |source| CreateError::Read {
        path: item.path().to_owned(),
        source,
    };
    let kind = item.file_type();
    Ok(Some(if kind.is_symlink() {
        let target = fs::read_link(item.path()).map_err(read)?;
        let target = target.to_str().ok_or_else(|| CreateError::NotUtf8 {
            path: item.path().to_owned(),
        })?;
        Source::Symlink(target.to_owned())
    } else if kind.is_dir() {
        Source::Directory
    } else if kind.is_file() {
        let mode = item
            .metadata()
            .map_err(|e| read(e.into()))?
            .permissions()
            .mode();
        Source::File {
            executable: mode & 0o111 != 0,
        }
    } else {
        return Ok(None);
    }))
}

/// Writes the entries in path order; returns the entry and byte counts.
fn write(
    root: &Path,
    found: &BTreeMap<String, Source>,
    out: &Path,
) -> Result<(u64, u64), CreateError> {
    let failed = |source| CreateError::Write {
        path: out.to_owned(),
        source,
    };
    let file = File::create(out).map_err(|e| failed(e.into()))?;
    // Large-file (ZIP64) headers only where a file needs them.
    let mut zip = ZipWriter::new(BufWriter::new(file)).set_auto_large_file();
    let options = SimpleFileOptions::default();
    let mut bytes = 0;
    for (path, source) in found {
        match source {
            Source::Directory => zip.add_directory(path, options.unix_permissions(0o755)),
            Source::Symlink(target) => zip.add_symlink(path, target, options),
            Source::File { executable } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                zip.start_file(path, options.unix_permissions(mode))
                    .map_err(failed)?;
                bytes += copy(&root.join(path), &mut zip)?;
                Ok(())
            }
        }
        .map_err(failed)?;
    }
    let written = zip.finish().map_err(failed)?;
    written
        .into_inner()
        .map_err(|e| failed(e.into_error().into()))?;
    Ok((found.len() as u64, bytes))
}

fn copy(path: &Path, zip: &mut impl io::Write) -> Result<u64, CreateError> {
    let mut file = File::open(path).map_err(|source| CreateError::Read {
        path: path.to_owned(),
        source,
    })?;
    io::copy(&mut file, zip).map_err(|source| CreateError::Copy {
        path: path.to_owned(),
        source,
    })
}
