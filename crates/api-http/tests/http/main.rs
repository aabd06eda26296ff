//! HTTP-level tests of lockstep-server against a real PostgreSQL: the contract, bad input,
//! the runner protocol over a real socket, and concurrency.

mod support;

mod artifacts;
mod auto_cancel;
mod bad_input;
mod batch;
mod concurrency;
mod contract;
mod dashboard;
mod log_checks;
mod long_poll;
mod pipeline_files;
mod resource_groups;
mod retry_rules;
mod unavailable;
mod waiting;
mod watch;
