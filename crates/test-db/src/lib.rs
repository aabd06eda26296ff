#![doc = include_str!("../README.md")]

mod database;
mod hash;
mod server;
mod template;
mod url;

pub use database::TestDb;
