//! End to end: a real lockstep-server (in this process, on a socket), real lockstep-worker
//! processes, real scripts, and a real PostgreSQL.

mod support;

mod artifacts;
mod failures;
mod happy_path;
mod logs;
mod resource_groups;
mod scripts;
mod signals;
