//! Headless-browser tests of the dashboard; the code is all in `tests/browser/`.
#![doc = include_str!("../README.md")]
