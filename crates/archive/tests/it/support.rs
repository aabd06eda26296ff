//! Helpers: a scratch directory, file trees, hand-built archives and a compact listing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lockstep_archive::{EntryKind, Limits, inspect};
use tempfile::TempDir;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// A temporary directory holding an empty build directory `root` and a path for `a.zip`.
pub(crate) struct Scratch {
    pub(crate) dir: TempDir,
    pub(crate) root: PathBuf,
    pub(crate) zip: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("the root");
        let zip = dir.path().join("a.zip");
        Self { dir, root, zip }
    }

    /// A sibling of `root`: where an escaping write would land.
    pub(crate) fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes `contents` to `root/path`, making its parents.
pub(crate) fn file(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().expect("a parent")).expect("the parents");
    fs::write(path, contents).expect("the file");
}

pub(crate) fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The names in a directory, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("a directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    names.sort();
    names
}

/// An entry of a hand-built archive; names are written as given, however hostile.
pub(crate) enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Link(&'a str, &'a str),
    /// A file with the given raw unix mode, file type bits included.
    Mode(&'a str, u32),
}

pub(crate) fn build(zip: &Path, entries: &[Raw<'_>]) {
    let mut writer = ZipWriter::new(fs::File::create(zip).expect("the archive"));
    let options = SimpleFileOptions::default();
    for entry in entries {
        match entry {
            Raw::File(name, contents) => {
                writer.start_file(*name, options).expect("a file");
                writer.write_all(contents).expect("its contents");
            }
            Raw::Dir(name) => writer.add_directory(*name, options).expect("a directory"),
            Raw::Link(name, target) => writer.add_symlink(*name, *target, options).expect("a link"),
            Raw::Mode(name, mode) => {
                let options = options.external_attributes(mode << 16);
                writer.start_file(*name, options).expect("a file");
                writer.write_all(b"#!/bin/sh\n").expect("its contents");
            }
        }
    }
    writer.finish().expect("the archive");
}

/// Rewrites the archive's bytes: `edit` gets them whole.
pub(crate) fn patch(zip: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(zip).expect("the archive");
    edit(&mut bytes);
    fs::write(zip, bytes).expect("the patched archive");
}

/// The archive's entries as `dir/`, `file`, `exe*` and `link -> target`.
pub(crate) fn listing(zip: &Path) -> Vec<String> {
    let entries = inspect(zip, &Limits::DEFAULT).expect("a valid archive");
    entries
        .into_iter()
        .map(|e| match e.kind {
            EntryKind::Directory => format!("{}/", e.path),
            EntryKind::File { executable: true } => format!("{}*", e.path),
            EntryKind::File { executable: false } => e.path,
            EntryKind::Symlink { target } => format!("{} -> {target}", e.path),
        })
        .collect()
}
