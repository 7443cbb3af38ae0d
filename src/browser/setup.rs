//! What a browser starts with: its options, the Chromium command line and profile that
//! follow from them, the environment variables that name the binaries, and why a browser
//! could not do what was asked ([`BrowserError`]).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

/// Environment variable naming the chromedriver to use.
pub const CHROMEDRIVER_ENV: &str = "ONRAMP_CHROMEDRIVER";
/// Environment variable naming the Chromium (or Chrome) binary to use.
pub const CHROMIUM_ENV: &str = "ONRAMP_CHROMIUM";

/// Why the browser could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "chromedriver was not found (looked for {}); install it (Debian: apt-get install -y chromium chromium-driver), set {CHROMEDRIVER_ENV}, or pass --webdriver URL",
        searched.join(", ")
    )]
    NoChromedriver { searched: Vec<String> },
    #[error(
        "Chromium was not found (looked for {}); install it (Debian: apt-get install -y chromium chromium-driver) or set {CHROMIUM_ENV}",
        searched.join(", ")
    )]
    NoChromium { searched: Vec<String> },
    #[error("cannot start {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the WebDriver at {url} is not ready: {reason}")]
    NotReady { url: String, reason: String },
    #[error("Chromium ({}) did not start: {reason}", path.display())]
    ChromiumStart { path: PathBuf, reason: String },
    #[error("Chromium's DevTools at {url} did not do what was asked: {reason}")]
    DevTools { url: String, reason: String },
    #[error("cannot open a browser session at {url}")]
    Session {
        url: String,
        #[source]
        source: Box<fantoccini::error::NewSessionError>,
    },
    #[error("the browser failed to {action}")]
    Command {
        action: String,
        #[source]
        source: Box<fantoccini::error::CmdError>,
    },
    #[error("timed out after {} waiting for {what}", crate::infra::words::seconds(*waited))]
    Timeout { what: String, waited: Duration },
    #[error("the page at {url} has no {what}")]
    Missing { what: String, url: String },
}

impl BrowserError {
    /// Whether the browser gave up waiting for a page to load (WebDriver's `timeout` error:
    /// the command itself was carried out, the page it led to had not loaded in time).
    pub fn is_load_timeout(&self) -> bool {
        match self {
            Self::Command { source, .. } => matches!(
                source.as_ref(),
                fantoccini::error::CmdError::Standard(e)
                    if e.error == fantoccini::error::ErrorStatus::Timeout
            ),
            _ => false,
        }
    }

    pub(super) fn command(
        action: impl Into<String>,
    ) -> impl FnOnce(fantoccini::error::CmdError) -> Self {
        let action = action.into();
        move |source| Self::Command {
            action,
            source: Box::new(source),
        }
    }
}

/// How to open the browser.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// Show the window instead of running headless.
    pub headed: bool,
    /// Chromium binary; found on `PATH` or through [`CHROMIUM_ENV`] when `None`.
    pub chromium: Option<PathBuf>,
    /// Longest wait for any page or element.
    pub timeout: Duration,
    pub window: (u32, u32),
    /// The WebDriver is someone else's (`--webdriver`: a chromedriver started by hand,
    /// Selenium Grid): its machine has its own browser and its own disk, so no local
    /// Chromium is looked for (only [`CHROMIUM_ENV`], when set, names the binary) and the
    /// driver creates the profile.
    pub remote: bool,
    /// Work in a browser context of its own in this Chromium (one onramp started), which
    /// the WebDriver attaches to, instead of a Chromium the WebDriver starts.
    pub devtools: Option<DevToolsEndpoint>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            headed: false,
            chromium: None,
            timeout: Duration::from_secs(15),
            window: (1280, 900),
            remote: false,
            devtools: None,
        }
    }
}

/// Start on a blank page: Chromium's own start page (its new-tab page) takes ~200 ms to
/// load, and the first navigation waits for it.
pub(super) fn preferences() -> serde_json::Value {
    json!({
        "session": { "restore_on_startup": 4, "startup_urls": ["about:blank"] },
        "homepage": "about:blank",
        "homepage_is_newtabpage": false,
    })
}

/// A fresh, private Chromium profile folder (removed when dropped), starting on a blank page.
pub(super) fn new_profile() -> Result<tempfile::TempDir, BrowserError> {
    let profile = tempfile::Builder::new()
        .prefix("onramp-chromium-")
        .tempdir()
        .map_err(|source| BrowserError::Spawn {
            path: std::env::temp_dir(),
            source,
        })?;
    crate::infra::leftovers::mark(profile.path());
    let _ = std::fs::create_dir_all(profile.path().join("Default")).and_then(|()| {
        std::fs::write(
            profile.path().join("Default").join("Preferences"),
            preferences().to_string(),
        )
    });
    Ok(profile)
}

/// What Chromium is started with (all but its profile folder).
pub(super) fn chromium_args(options: &BrowserOptions) -> Vec<String> {
    let mut args = vec![
        "--no-sandbox".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-extensions".to_owned(),
        "--password-store=basic".to_owned(),
        // What Playwright and Puppeteer pass for automation: no throttling of a window
        // nobody looks at, no paint holding across navigations (a screenshot right
        // after a redirect otherwise waits for a frame that may come 10 s later), and
        // none of the background services a test never needs. Nor the omnibox popup
        // that recent Chromium renders as two WebUI pages per window, headless or not: in
        // a renderer of their own they cost about 0.9 s of CPU for each browser context.
        "--disable-background-timer-throttling".to_owned(),
        "--disable-backgrounding-occluded-windows".to_owned(),
        "--disable-renderer-backgrounding".to_owned(),
        "--disable-back-forward-cache".to_owned(),
        "--disable-hang-monitor".to_owned(),
        "--disable-ipc-flooding-protection".to_owned(),
        "--disable-breakpad".to_owned(),
        "--disable-client-side-phishing-detection".to_owned(),
        "--disable-default-apps".to_owned(),
        "--disable-field-trial-config".to_owned(),
        "--disable-features=PaintHolding,Translate,MediaRouter,OptimizationHints,CertificateTransparencyComponentUpdater,AutofillServerCommunication,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup".to_owned(),
        "--allow-pre-commit-input".to_owned(),
        "--metrics-recording-only".to_owned(),
        "--mute-audio".to_owned(),
        "--force-color-profile=srgb".to_owned(),
        // Reuse a renderer where site isolation allows (a sign-in's pages and the app's
        // redirect page on one host): a renderer process costs a few hundred ms of CPU to
        // start, and several targets' sign-ins share two cores. Browser contexts never
        // share one.
        "--renderer-process-limit=1".to_owned(),
        format!("--window-size={},{}", options.window.0, options.window.1),
    ];
    if !options.headed {
        args.insert(0, "--headless=new".to_owned());
    }
    args
}

/// Where a running Chromium's DevTools listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevToolsEndpoint {
    /// `127.0.0.1:PORT`, what chromedriver's `debuggerAddress` takes.
    pub address: String,
    /// The browser's own WebSocket (`ws://127.0.0.1:PORT/devtools/browser/…`).
    pub browser: String,
}
