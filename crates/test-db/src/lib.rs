#![doc = include_str!("../README.md")]

mod database;
// Compiled into build.rs, which names templates; here only for its tests.
#[cfg(test)]
mod hash;
mod server;
mod template;
mod url;

pub use database::TestDb;
