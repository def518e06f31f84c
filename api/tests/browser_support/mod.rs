//! A real browser on the page: Debian's `chromium`, headless, driven over WebDriver by
//! its `chromedriver` (through `fantoccini`), against a real `api` process.
//!
//! Each test gets its own `chromedriver` on a free port and a fresh Chromium profile.
//! When either program is missing the test is skipped with a note, except under
//! `CI=true`, where it fails (`scripts/browsers` installs both). Screenshots go to
//! `target/browser-screenshots/` (or `$BROWSER_SCREENSHOTS`), to be looked at.

#![allow(dead_code, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Long enough for a debug build on a busy two-core machine; only reached on failure.
pub const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
const API_BIN: &str = env!("CARGO_BIN_EXE_api");
/// WebDriver's codes for the Tab and Enter keys.
pub const TAB: &str = "\u{e004}";
pub const ENTER: &str = "\u{e007}";

fn find_program(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env_var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Where screenshots go: beside the build's binaries unless told otherwise.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("BROWSER_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(API_BIN)
                .parent()
                .and_then(Path::parent)
                .unwrap()
                .join("browser-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium and the chromedriver driving it.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    _profile: TempDir,
}

impl Browser {
    /// `None` (skipped) when Chromium or chromedriver is missing, unless `CI=true`.
    pub async fn start() -> Option<Self> {
        let chromium = find_program("CHROMIUM_BIN", &["chromium", "chromium-browser"]);
        let driver = find_program("CHROMEDRIVER_BIN", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("chromium or chromedriver is missing; run scripts/browsers");
            }
            eprintln!(
                "skipped: chromium or chromedriver is missing (scripts/browsers installs them)"
            );
            return None;
        };
        let port = free_port();
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if running_as_root() {
            args.push("--no-sandbox".into());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("chromedriver did not start a session: {err}"),
            }
        };
        Some(Self {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Ends the browser session, then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Saves a screenshot as `NAME.png` in [`screenshot_dir`]; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The visible text of the page (for failure messages).
    pub async fn page_text(&self) -> String {
        self.eval("return document.body.innerText;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, waiting for it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("no `{css}` on the page:\n{}", self.page_text().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Sends `key` to whatever has the focus.
    pub async fn press(&self, key: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(key).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// The text of `css`, or `None` when it is absent or hidden.
    pub async fn visible_text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        if !element.is_displayed().await.ok()? {
            return None;
        }
        element.text().await.ok()
    }

    /// Waits until `css` is shown with a text that contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(text) = self.visible_text(css).await
                && text.contains(needle)
            {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                let shot = self.screenshot("failure").await;
                panic!(
                    "`{css}` never showed {needle:?} (screenshot {}):\n{}",
                    shot.display(),
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the script `condition` (a JS expression) is truthy.
    pub async fn wait_until(&self, condition: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let script = format!("return Boolean({condition});");
        loop {
            if self.eval(&script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let shot = self.screenshot("failure").await;
                panic!(
                    "{what}: never true (screenshot {}):\n{}",
                    shot.display(),
                    self.page_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Signs in on the page at `base` with `token`, landing on the task list.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/")).await;
        self.fill("#token", token).await;
        self.click("form button[type=submit]").await;
        self.find("#task-list").await;
    }
}

/// Chromium's own sandbox refuses to start as root; the test's temp profile and the
/// loopback-only page are what it would protect.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
