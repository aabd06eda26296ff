//! A headless Chromium for one test, driven through a ChromeDriver of its own with fantoccini.
//!
//! Missing binaries fail the test with the fix, never skip it: a skipped browser test would let
//! CI pass without having looked at a page. `cargo xtask test` checks the same before it starts
//! (xtask/src/browser.rs, whose test keeps the two messages the same).

use super::Stack;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to do when Chromium or ChromeDriver is missing; the only message for either.
const MISSING: &str = "Chromium and ChromeDriver are missing: install them with `apt-get install -y chromium chromium-driver` (as root; .ci/run does this), then run the tests again.";

/// Chromium's flags, beside the profile directory each browser gets fresh.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    // Chromium refuses to start as root with its sandbox on, and CI runs as root.
    "--no-sandbox",
    "--disable-gpu",
    // Containers often give /dev/shm 64 MB, too little for a renderer; use /tmp instead.
    "--disable-dev-shm-usage",
    // The machine's network is closed: every background connection (QUIC probes, first-run
    // pages, field trials, component updates, sync) would fail, slowly, so none is made.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // One size for every test, so screenshots compare from run to run.
    "--window-size=1280,800",
];

/// How long ChromeDriver may take to answer `/status` as ready after it starts.
const DRIVER_START_LIMIT: Duration = Duration::from_secs(20);

/// How long a page may take to load, or a script to run, before the command fails: the
/// WebDriver default of five minutes would hang a broken test instead.
const PAGE_LIMIT_MS: u64 = 30_000;

/// How long closing the session at the end may take before the driver is killed anyway.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// How often [`Browser::wait_for`] looks at the page again.
const POLL: Duration = Duration::from_millis(50);

/// One element as [`Browser::wait_for`] saw it: plain data, so a predicate is ordinary code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The rendered text, as a user reads it (`innerText`).
    pub(crate) text: String,
    /// The element's attributes as written in the DOM.
    pub(crate) attributes: BTreeMap<String, String>,
}

impl Seen {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// Every element matching `arguments[0]`, text and attributes, read in one step so that a page
/// that changes (live updates) is seen either before or after a change, never half of each.
const SNAPSHOT: &str = "return Array.from(document.querySelectorAll(arguments[0]), e => ({
    text: e.innerText ?? e.textContent,
    attributes: Object.fromEntries(Array.from(e.attributes, a => [a.name, a.value])),
}));";

/// A headless Chromium, borrowed from the stack whose runtime runs its commands.
pub(crate) struct Browser<'s> {
    stack: &'s Stack,
    client: Option<Client>,
    // Dropped after the session is closed: killing the driver first would orphan Chromium.
    _driver: Driver,
    // Last: Chromium has exited when its profile is removed.
    _profile: tempfile::TempDir,
}

impl<'s> Browser<'s> {
    /// Starts ChromeDriver and a headless Chromium session; panics with the fix when either
    /// binary is missing.
    pub(crate) fn new(stack: &'s Stack) -> Self {
        let (chromium, chromedriver) = binaries();
        let profile = tempfile::tempdir().expect("a profile directory");
        let driver = Driver::start(&chromedriver, profile.path());
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities(&chromium, &profile.path().join("chromium")));
        let client = stack
            .block_on(builder.connect(&driver.url))
            .unwrap_or_else(|e| panic!("no Chromium session: {e}\n{}", driver.log()));
        Self {
            stack,
            client: Some(client),
            _driver: driver,
            _profile: profile,
        }
    }

    /// The WebDriver session, for what the helpers here do not cover; run its calls with
    /// [`Stack::block_on`].
    pub(crate) fn client(&self) -> &Client {
        self.client.as_ref().expect("a session until drop")
    }

    /// Loads `url` and waits for the page's load event.
    pub(crate) fn goto(&self, url: &str) {
        self.stack
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Loads `path` on the stack's server (`/login`, `/pipelines/7`).
    pub(crate) fn open(&self, path: &str) {
        self.goto(&format!("{}{path}", self.stack.url));
    }

    /// Clicks the first element matching `css`. A live page may replace the element between
    /// finding and clicking it; then the click is tried again on its replacement.
    pub(crate) fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            let clicked = self
                .stack
                .block_on(async { self.client().find(Locator::Css(css)).await?.click().await });
            match clicked {
                Ok(()) => return,
                Err(e) if tries < 5 && e.to_string().contains("stale element") => tries += 1,
                Err(e) => panic!("cannot click `{css}`: {e}"),
            }
        }
    }

    /// Types `text` into the first element matching `css`, after what it holds.
    pub(crate) fn fill(&self, css: &str, text: &str) {
        self.stack
            .block_on(async {
                let field = self.client().find(Locator::Css(css)).await?;
                field.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("cannot type into `{css}`: {e}"));
    }

    /// Runs `script` in the page (`return …` gives a value) and returns what it returned.
    pub(crate) fn run(&self, script: &str) -> Value {
        self.stack
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("cannot run `{script}`: {e}"))
    }

    /// Signs in through the form at `/login` with `token`, and waits for the next page.
    pub(crate) fn sign_in(&self, token: &str) {
        self.open("/login");
        self.fill("#token", token);
        self.click("#login button[type=submit]");
    }

    /// Resizes the window, for the narrow layouts.
    pub(crate) fn set_window_size(&self, width: u32, height: u32) {
        self.stack
            .block_on(self.client().set_window_size(width, height))
            .unwrap_or_else(|e| panic!("cannot resize to {width}x{height}: {e}"));
    }

    /// Writes the visible page to `target/screenshots/<name>.png`; returns the path.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .stack
            .block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("no screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Looks at the elements matching `css` every 50 ms until `done` holds for them (in
    /// document order, perhaps none); returns them. Panics after `limit` with what it saw last.
    pub(crate) fn wait_for(
        &self,
        css: &str,
        limit: Duration,
        done: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        loop {
            // A page in the middle of loading cannot run scripts: that counts as not yet.
            let last = match self.snapshot(css) {
                Ok(seen) if done(&seen) => return seen,
                Ok(seen) => format!("{seen:#?}"),
                Err(e) => format!("an error: {e}"),
            };
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for `{css}`; last saw {last}"
            );
            std::thread::sleep(POLL);
        }
    }

    fn snapshot(&self, css: &str) -> Result<Vec<Seen>, String> {
        let found = self
            .stack
            .block_on(self.client().execute(SNAPSHOT, vec![json!(css)]))
            .map_err(|e| e.to_string())?;
        let elements = found
            .as_array()
            .ok_or_else(|| format!("not a list: {found}"))?;
        elements.iter().map(seen).collect()
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        // Best effort: a failed close only leaves the driver to kill, which its Drop does.
        if let Some(client) = self.client.take() {
            // In an async block: `timeout` starts its clock where it is called, which must be
            // inside the runtime.
            let _ = self
                .stack
                .block_on(async { tokio::time::timeout(CLOSE_LIMIT, client.close()).await });
        }
    }
}

fn seen(element: &Value) -> Result<Seen, String> {
    let text = element["text"].as_str().unwrap_or_default().to_owned();
    let attributes = element["attributes"]
        .as_object()
        .ok_or_else(|| format!("no attributes in {element}"))?
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    Ok(Seen { text, attributes })
}

/// ChromeDriver on a free port, its output in a file; killed on drop.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(chromedriver: &Path, dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let out = File::create(&log).expect("a log file");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("a home directory");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            // Chromium's crash reports and caches go under HOME whatever its profile
            // directory is: a home of its own keeps the test from writing to the user's.
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_CACHE_HOME")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        driver.wait_until_ready();
        driver
    }

    /// Polls `/status` until the driver says it is ready for a session.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + DRIVER_START_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("the driver's status") {
                panic!(
                    "chromedriver exited ({status}) before it was ready\n{}",
                    self.log()
                );
            }
            if self.is_ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after {DRIVER_START_LIMIT:?}\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    fn is_ready(&self) -> bool {
        let Ok(mut response) = ureq::get(format!("{}/status", self.url)).call() else {
            return false;
        };
        let status: Value = response.body_mut().read_json().unwrap_or_default();
        status["value"]["ready"] == true
    }

    /// What the driver wrote, for a failure message.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("chromedriver's output:\n{text}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium and ChromeDriver from `PATH`; panics with [`MISSING`] when either is not there.
fn binaries() -> (PathBuf, PathBuf) {
    match (on_path("chromium"), on_path("chromedriver")) {
        (Some(chromium), Some(chromedriver)) => (chromium, chromedriver),
        _ => panic!("{MISSING}"),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port nothing listens on: one the system gave us, then closed for the driver to take.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

fn capabilities(chromium: &Path, profile: &Path) -> Capabilities {
    let args: Vec<String> = CHROMIUM_ARGS
        .iter()
        .map(|&arg| arg.to_owned())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect();
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": chromium, "args": args }),
    );
    capabilities.insert(
        "timeouts".to_owned(),
        json!({ "pageLoad": PAGE_LIMIT_MS, "script": PAGE_LIMIT_MS }),
    );
    capabilities
}

/// `target/screenshots` of the workspace, or under `CARGO_TARGET_DIR` when that is set (taken
/// as cargo does: relative to the workspace root, where `cargo xtask` runs).
fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/browser-tests sits two levels below the workspace root");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), |dir| workspace.join(dir));
    target.join("screenshots")
}
