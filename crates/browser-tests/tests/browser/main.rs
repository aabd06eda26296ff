//! The dashboard in a real browser: headless Chromium through ChromeDriver, against a real
//! lockstep-server (and lockstep-worker) in this process on a real PostgreSQL
//! (`cargo xtask db start`). Chromium and ChromeDriver must be on `PATH`: see the README.

mod support;

mod logs;
mod pages;

use std::time::Duration;
use support::{Browser, Stack};

/// What `GET /healthz` answers (crates/api-http/src/handlers/health.rs).
const HEALTHY: &str = r#"{"status":"ok"}"#;

/// ChromeDriver, Chromium and the server work together: the browser loads a page the server
/// serves and shows what it says.
#[test]
fn the_browser_reaches_the_server() {
    let stack = Stack::server_only();
    let browser = Browser::new(&stack);
    browser.goto(&format!("{}/healthz", stack.url));
    browser.wait_for("body", Duration::from_secs(10), |body| {
        body.iter().any(|seen| seen.text.contains(HEALTHY))
    });
    browser.screenshot("healthz");
}
