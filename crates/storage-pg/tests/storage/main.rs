//! Integration tests of lockstep-storage-pg against a real PostgreSQL (one database per test).

mod acquire_race;
mod artifacts;
mod auto_cancel;
mod batch;
mod deadlock;
mod environments;
mod lock_order;
mod lock_recorder;
mod logs;
mod notify;
mod projects;
mod reads;
mod reaper;
mod replan;
mod resource_groups;
mod runners;
mod support;
mod transitions;
