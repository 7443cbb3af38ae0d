//! The chromedriver process: found, started on a free port, waited for, and stopped on every
//! exit path. It runs in a process group of its own, and dropping [`ChromeDriver`] ends the
//! whole group (chromedriver and the Chromium it started), so that neither a failed step, a
//! panic nor an interrupted run leaves a browser behind.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::setup::{BrowserError, CHROMEDRIVER_ENV, CHROMIUM_ENV};
pub(super) use crate::infra::process::stop_group;

const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];
/// Chromium's headless shell, looked for first when no window is to be shown: the same
/// Blink and V8 without the browser's own interface (the omnibox, tab strip and their
/// WebUI), it spends about half of Chromium's CPU on a sign-in, as Puppeteer and Playwright
/// found when they made it their headless default. Debian's binary comes first because its
/// `/usr/bin` wrapper does not `exec` it, so a signal would stop the wrapper and not the
/// browser; Chrome for Testing names it `chrome-headless-shell`.
const HEADLESS_SHELLS: [&str; 3] = [
    "/usr/lib/chromium/chromium-headless-shell",
    "chrome-headless-shell",
    "chromium-headless-shell",
];
/// How long chromedriver may take to answer `/status`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Find an executable: the environment variable if set (a path, or a name on `PATH`), else
/// the first of `names` on `PATH`.
fn find(variable: &str, names: &[&str]) -> Result<PathBuf, Vec<String>> {
    if let Some(value) = std::env::var_os(variable) {
        return which::which(&value)
            .map_err(|_| vec![format!("{variable}={}", PathBuf::from(&value).display())]);
    }
    names
        .iter()
        .find_map(|name| which::which(name).ok())
        .ok_or_else(|| names.iter().map(|name| format!("{name} on PATH")).collect())
}

/// The Chromium binary to drive: [`CHROMIUM_ENV`] if set, else (when `headless_shell` may
/// stand in: no window, and onramp starts it) the headless shell if installed, else
/// Chromium or Chrome. chromedriver itself cannot start the shell ("unable to discover open
/// pages").
pub fn find_chromium(headless_shell: bool) -> Result<PathBuf, BrowserError> {
    if headless_shell
        && std::env::var_os(CHROMIUM_ENV).is_none()
        && let Some(shell) = HEADLESS_SHELLS
            .iter()
            .find_map(|name| which::which(name).ok())
    {
        return Ok(shell);
    }
    find(CHROMIUM_ENV, &CHROMIUM_NAMES).map_err(|searched| BrowserError::NoChromium { searched })
}

/// The chromedriver binary to start.
pub fn find_chromedriver() -> Result<PathBuf, BrowserError> {
    find(CHROMEDRIVER_ENV, &["chromedriver"])
        .map_err(|searched| BrowserError::NoChromedriver { searched })
}

/// A running chromedriver; dropping it stops it and everything it started.
#[derive(Debug)]
pub struct ChromeDriver {
    child: Option<Child>,
    url: String,
    /// chromedriver's log, for diagnosing a browser that will not start.
    logs: tempfile::TempDir,
}

impl ChromeDriver {
    /// Start chromedriver on a free loopback port and wait until it answers.
    pub async fn start() -> Result<Self, BrowserError> {
        let path = find_chromedriver()?;
        let port = free_port()?;
        let logs = tempfile::Builder::new()
            .prefix("onramp-chromedriver-")
            .tempdir()
            .map_err(|source| BrowserError::Spawn {
                path: std::env::temp_dir(),
                source,
            })?;
        crate::infra::leftovers::mark(logs.path());
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!(
                "--log-path={}",
                logs.path().join("chromedriver.log").display()
            ))
            // Why it could not start, not every command and answer (a screenshot's answer
            // is 100 KB of base64, written out at INFO).
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| BrowserError::Spawn {
                path: path.clone(),
                source,
            })?;
        let mut driver = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            logs,
        };
        driver.wait_until_ready(&path).await?;
        Ok(driver)
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn wait_until_ready(&mut self, path: &Path) -> Result<(), BrowserError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| BrowserError::NotReady {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let started = Instant::now();
        let status = format!("{}/status", self.url);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                return Err(BrowserError::NotReady {
                    url: self.url.clone(),
                    reason: format!(
                        "{} exited at start ({exit}){}",
                        path.display(),
                        self.log_tail()
                    ),
                });
            }
            if let Ok(response) = client.get(&status).send().await
                && let Ok(body) = response.json::<serde_json::Value>().await
                && body
                    .pointer("/value/ready")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(BrowserError::NotReady {
                    url: self.url.clone(),
                    reason: format!(
                        "no answer from {status} within {} s",
                        READY_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of chromedriver's log, for an error message.
    fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.logs.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "; its log ends: {}",
                lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        }
    }

    /// Stop chromedriver and its browsers now (also done on drop).
    pub fn stop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        stop_group(child);
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, BrowserError> {
    crate::infra::process::free_port().map_err(|source| BrowserError::Spawn {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    })
}
