//! The browser: a WebDriver session (fantoccini) on Chromium, the chromedriver that serves
//! it, and the few things a member does on an identity page — follow a link, fill fields
//! found by their label text, press a button — plus screenshots and catching the redirect
//! back to the app. Every wait has a timeout that names what it waited for.
//!
//! It knows nothing of FHIR or OAuth: it drives pages and reports what it saw.

mod driver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub use driver::{CHROMEDRIVER_ENV, CHROMIUM_ENV, ChromeDriver, find_chromedriver, find_chromium};

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
    #[error("timed out after {} s waiting for {what}", waited.as_secs_f32())]
    Timeout { what: String, waited: Duration },
    #[error("no {what} on the page at {url}")]
    Missing { what: String, url: String },
}

impl BrowserError {
    fn command(action: impl Into<String>) -> impl FnOnce(fantoccini::error::CmdError) -> Self {
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
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            headed: false,
            chromium: None,
            timeout: Duration::from_secs(15),
            window: (1280, 900),
        }
    }
}

/// One browser window, with a private profile that is removed when it closes.
pub struct Browser {
    client: Client,
    timeout: Duration,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Open a Chromium session on the WebDriver at `webdriver`.
    pub async fn open(webdriver: &str, options: &BrowserOptions) -> Result<Self, BrowserError> {
        let chromium = match &options.chromium {
            Some(path) => path.clone(),
            None => find_chromium()?,
        };
        let profile = tempfile::Builder::new()
            .prefix("onramp-chromium-")
            .tempdir()
            .map_err(|source| BrowserError::Spawn {
                path: std::env::temp_dir(),
                source,
            })?;
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
            format!("--window-size={},{}", options.window.0, options.window.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if !options.headed {
            args.insert(0, "--headless=new".to_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium.display().to_string(), "args": args }),
        );
        let client = ClientBuilder::rustls()
            .map_err(|e| BrowserError::NotReady {
                url: webdriver.to_owned(),
                reason: e.to_string(),
            })?
            .capabilities(capabilities)
            .connect(webdriver)
            .await
            .map_err(|source| BrowserError::Session {
                url: webdriver.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            client,
            timeout: options.timeout,
            _profile: profile,
        })
    }

    /// The browser's name and version as the WebDriver reported them.
    pub fn version(&self) -> Option<String> {
        let capabilities = self.client.capabilities()?;
        let name = capabilities
            .get("browserName")
            .and_then(|n| n.as_str())
            .unwrap_or("browser");
        let version = capabilities
            .get("browserVersion")
            .and_then(|v| v.as_str())?;
        Some(format!("{name} {version}"))
    }

    /// The private profile folder (removed when the browser is dropped).
    pub fn profile_dir(&self) -> &std::path::Path {
        self._profile.path()
    }

    /// Load `url`.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.client
            .goto(url)
            .await
            .map_err(BrowserError::command(format!("open {url}")))
    }

    /// The address the window shows now.
    pub async fn current_url(&self) -> Result<url::Url, BrowserError> {
        self.client
            .current_url()
            .await
            .map_err(BrowserError::command("read the current URL"))
    }

    /// The page's visible text.
    pub async fn text(&self) -> Result<String, BrowserError> {
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .map_err(BrowserError::command("find the page body"))?;
        body.text()
            .await
            .map_err(BrowserError::command("read the page text"))
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        self.client
            .screenshot()
            .await
            .map_err(BrowserError::command("take a screenshot"))
    }

    async fn here(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "(unknown)".into())
    }

    /// Retry `probe` until it yields, or fail after the timeout naming `what`.
    async fn wait_until<T, F, Fut>(&self, what: &str, mut probe: F) -> Result<T, BrowserError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(found) = probe().await {
                return Ok(found);
            }
            if started.elapsed() >= self.timeout {
                return Err(BrowserError::Timeout {
                    what: what.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Click the link whose text is `text`.
    pub async fn click_link(&self, text: &str) -> Result<(), BrowserError> {
        let link = self
            .wait_until(&format!("a link \"{text}\""), || async {
                self.client
                    .find(Locator::XPath(&format!(
                        "//a[normalize-space(.)={}]",
                        xpath_literal(text)
                    )))
                    .await
                    .ok()
            })
            .await?;
        link.click()
            .await
            .map_err(BrowserError::command(format!("click the link \"{text}\"")))
    }

    /// Click the link or button whose text is `text` (a member does not tell them apart).
    pub async fn click(&self, text: &str) -> Result<(), BrowserError> {
        let literal = xpath_literal(text);
        let target = self
            .wait_until(&format!("a link or button \"{text}\""), || async {
                let xpath = format!(
                    "//a[normalize-space(.)={literal}] | //button[normalize-space(.)={literal}] | //input[(@type='submit' or @type='button') and @value={literal}]"
                );
                self.client.find(Locator::XPath(&xpath)).await.ok()
            })
            .await?;
        target
            .click()
            .await
            .map_err(BrowserError::command(format!("click \"{text}\"")))
    }

    /// Type `value` into the field labelled `label` (by `<label for>` or a wrapping label).
    pub async fn fill(&self, label: &str, value: &str) -> Result<(), BrowserError> {
        let literal = xpath_literal(label);
        let field = self
            .wait_until(&format!("a field labelled \"{label}\""), || async {
                let by_for = format!("//input[@id=//label[normalize-space(.)={literal}]/@for] | //textarea[@id=//label[normalize-space(.)={literal}]/@for] | //select[@id=//label[normalize-space(.)={literal}]/@for]");
                let wrapped = format!("//label[normalize-space(.)={literal}]//*[self::input or self::textarea or self::select]");
                match self.client.find(Locator::XPath(&by_for)).await {
                    Ok(field) => Some(field),
                    Err(_) => self.client.find(Locator::XPath(&wrapped)).await.ok(),
                }
            })
            .await?;
        field.clear().await.map_err(BrowserError::command(format!(
            "clear the field \"{label}\""
        )))?;
        field
            .send_keys(value)
            .await
            .map_err(BrowserError::command(format!(
                "type into the field \"{label}\""
            )))
    }

    /// Press the button whose text (or value) is `text`.
    pub async fn press(&self, text: &str) -> Result<(), BrowserError> {
        let literal = xpath_literal(text);
        let button = self
            .wait_until(&format!("a button \"{text}\""), || async {
                let xpath = format!("//button[normalize-space(.)={literal}] | //input[(@type='submit' or @type='button') and @value={literal}]");
                self.client.find(Locator::XPath(&xpath)).await.ok()
            })
            .await?;
        button.click().await.map_err(BrowserError::command(format!(
            "press the button \"{text}\""
        )))
    }

    /// Wait until the window's address satisfies `arrived` (the redirect back to the app),
    /// and return it. Works whether or not the address loads: an unreachable app URL still
    /// becomes the window's address.
    pub async fn wait_for_url(
        &self,
        what: &str,
        arrived: impl Fn(&url::Url) -> bool,
    ) -> Result<url::Url, BrowserError> {
        self.wait_until(what, || async {
            let url = self.client.current_url().await.ok()?;
            arrived(&url).then_some(url)
        })
        .await
    }

    /// The page's title.
    pub async fn title(&self) -> Result<String, BrowserError> {
        self.client
            .title()
            .await
            .map_err(BrowserError::command("read the page title"))
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> Result<usize, BrowserError> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .map_err(BrowserError::command(format!("look for {css}")))
    }

    /// Where the page is, for error messages.
    pub async fn location(&self) -> String {
        self.here().await
    }

    /// End the session (Chromium quits).
    pub async fn close(self) -> Result<(), BrowserError> {
        self.client
            .close()
            .await
            .map_err(BrowserError::command("close the browser"))
    }
}

/// `text` as an XPath string literal, whatever quotes it holds.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('\'').map(|part| format!("'{part}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

#[cfg(test)]
mod tests {
    use super::xpath_literal;

    #[test]
    fn xpath_literals_survive_quotes() {
        assert_eq!(xpath_literal("First Name"), "'First Name'");
        assert_eq!(xpath_literal("O'Brien"), "\"O'Brien\"");
        assert_eq!(xpath_literal("a'b\"c"), "concat('a', \"'\", 'b\"c')");
    }
}
