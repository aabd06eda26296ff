//! Integration tests of lockstep-storage-pg against a real PostgreSQL (one database per test).

mod lock_order;
mod lock_recorder;
mod support;
mod transitions;
