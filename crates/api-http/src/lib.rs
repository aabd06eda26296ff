#![doc = include_str!("../README.md")]

mod app;
mod archives;
mod auth;
mod blocking;
mod dto;
mod error;
mod extract;
mod handlers;
mod live;
mod metrics;
mod objects;
mod openapi;
mod reaper;
mod router;
mod server;
mod sweeper;
mod wake;
mod watch;
mod web;

pub use app::{
    App, AppState, DEFAULT_ACKNOWLEDGE_WITHIN, DEFAULT_ARTIFACTS_EXPIRE_IN, DEFAULT_CANCEL_GRACE,
    DEFAULT_MAX_ARTIFACT_BYTES, DEFAULT_RUNNER_ONLINE_WITHIN, DEFAULT_SWEEP_INTERVAL, Settings,
    reaper_interval,
};
pub use objects::{Objects, ObjectsConfig, ObjectsError};
pub use openapi::openapi_json;
pub use router::router;
pub use server::{ServerConfig, run, serve, start};
