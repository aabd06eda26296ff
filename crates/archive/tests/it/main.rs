//! The crate's tests, as one binary: making archives, and refusing hostile ones.

mod create;
mod hostile;
mod support;
