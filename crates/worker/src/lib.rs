#![doc = include_str!("../README.md")]

mod archives;
mod backoff;
mod client;
mod job;
mod log;
mod process;
mod script;
mod watch;
mod worker;

pub use worker::{Config, Shutdown, run};
