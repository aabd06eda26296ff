//! What can go wrong making, reading and unpacking an archive.

use std::io;
use std::path::PathBuf;

/// Why [`create`](crate::create) made no archive.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("pattern {pattern:?} leaves the build directory; paths are relative to it")]
    PatternOutsideRoot { pattern: String },
    #[error("pattern {pattern:?} is not a valid glob")]
    BadPattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("file {path:?} cannot be archived: its name {rule}")]
    BadName { path: String, rule: Refusal },
    #[error("file {path:?} cannot be archived: its name or symlink target is not UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("cannot read {path:?}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot copy {path:?} into the archive")]
    Copy {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the archive {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

/// Why an archive was refused, or could not be read or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot open the archive {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} is not a readable ZIP archive")]
    NotZip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// An entry breaks one of the safety rules; nothing was unpacked if [`inspect`](crate::inspect)
    /// could tell, which is every rule but those about what is already on disk and `SizeMismatch`.
    #[error("entry {name:?} {rule}")]
    Refused { name: String, rule: Refusal },
    #[error("the archive names an entry more than once")]
    DuplicateNames,
    #[error("the archive has {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: u64, limit: u64 },
    #[error("the archive holds more than the limit of {limit} bytes uncompressed")]
    TooLarge { limit: u64 },
    #[error("entry {path:?} is not in the archive")]
    NotFound { path: String },
    #[error("entry {path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("cannot read entry {name:?} from the archive")]
    ReadEntry {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write out the entry's contents")]
    Output(#[source] io::Error),
}

/// The safety rule an entry breaks; each reads after `entry "name"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("leaves the build directory")]
    Escapes,
    #[error("is an absolute path")]
    Absolute,
    #[error("contains a backslash or a NUL byte")]
    BadCharacter,
    #[error("names the build directory itself")]
    Empty,
    #[error("appears more than once")]
    Duplicate,
    #[error("has an unsupported file type (mode {0:o})")]
    FileType(u32),
    #[error("is encrypted or compressed other than with deflate")]
    Unsupported,
    #[error("is a symlink to {0:?}, outside the build directory")]
    SymlinkEscapes(String),
    #[error("is a symlink whose target is not a short UTF-8 path without backslash or NUL")]
    SymlinkTarget,
    #[error("would be written through the symlink {0:?}")]
    ThroughSymlink(String),
    #[error("needs {0:?} to be a directory, but it is a file")]
    NotADirectory(String),
    #[error("would replace a directory")]
    ReplacesDirectory,
    #[error("does not inflate to the {0} bytes its header declares")]
    SizeMismatch(u64),
}
