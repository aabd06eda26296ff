#![doc = include_str!("../README.md")]

mod report;
mod storm;
mod workload;

pub use report::Report;
pub use storm::{StormConfig, run};
