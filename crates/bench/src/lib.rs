#![doc = include_str!("../README.md")]

mod cost;
mod figures;
mod fixtures;
mod scenarios;

pub use figures::{Figure, Report};
pub use scenarios::{Options, run_all};
