//! What every browser test starts with: a [`Stack`] (database, server, worker) and a
//! [`Browser`] (ChromeDriver and a headless Chromium) pointed at it.

mod browser;
mod stack;

pub(crate) use browser::{Browser, Seen};
pub(crate) use stack::{ADMIN, Stack};
