#![doc = include_str!("../README.md")]

mod app;
mod auth;
mod blocking;
mod dto;
mod error;
mod extract;
mod handlers;
mod live;
mod metrics;
mod openapi;
mod reaper;
mod router;
mod server;
mod wake;
mod watch;
mod web;

pub use app::{
    App, AppState, DEFAULT_ACKNOWLEDGE_WITHIN, DEFAULT_CANCEL_GRACE, DEFAULT_RUNNER_ONLINE_WITHIN,
    Settings, reaper_interval,
};
pub use openapi::openapi_json;
pub use router::router;
pub use server::{ServerConfig, run, serve, start};
