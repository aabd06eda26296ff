//! End to end: the `lockstep` binary against a real lockstep-server and a real lockstep-worker
//! (both in this process) on a real PostgreSQL (`cargo xtask db start`).

mod support;

mod artifacts;
mod errors;
mod json;
mod login;
mod logs;
mod run;
mod terminal;
