#![doc = include_str!("../README.md")]

mod error;
mod fields;
mod job;
mod keys;
mod lint;
mod matrix;
mod merge;
mod needs;
mod pipeline;
mod shaped;
mod top;
mod tree;
mod variables;
mod work;
mod yaml;

#[cfg(test)]
mod tests;

pub use error::FileError;
pub use keys::{
    DEFAULT_KEYS, JOB_KEYS, REFUSED_DEFAULT_KEYS, REFUSED_JOB_KEYS, REFUSED_TOP_KEYS,
    REFUSED_WORKFLOW_KEYS, TOP_KEYS, WORKFLOW_KEYS,
};
pub use lint::{Linted, lint};
pub use pipeline::{PipelineFile, parse};
