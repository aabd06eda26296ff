#![doc = include_str!("../README.md")]

mod create;
mod error;
mod name;
mod read;
mod unpack;

pub use create::{Created, create};
pub use error::{CreateError, Refusal, UnpackError};
pub use read::{Entry, EntryKind, copy_file, inspect};
pub use unpack::{Unpacked, unpack};

/// How much one archive may hold; reading refuses anything bigger before writing a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries (files, directories and symlinks).
    pub max_entries: u64,
    /// Total uncompressed bytes of the regular files.
    pub max_bytes: u64,
}

impl Limits {
    /// 100,000 entries and 4 GiB uncompressed: a large `target/` or `node_modules/` fits.
    pub const DEFAULT: Limits = Limits {
        max_entries: 100_000,
        max_bytes: 4 << 30,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
