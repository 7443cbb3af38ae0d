//! The run's browser: one Chromium window, started on first use and shared by the
//! scenarios one at a time (a sign-in holds it from opening the authorization URL until the
//! redirect is caught). Unless `--webdriver` names a WebDriver, chromedriver and Chromium
//! are started here (the window a browser context of its own in that Chromium, or in the
//! one a run over several targets shares), and stopped when the run closes the browser, or
//! when this is dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::StepFailure;
use crate::browser::{Browser, BrowserError, BrowserOptions, ChromeDriver, Chromium};

#[derive(Debug, Default)]
struct Slot {
    driver: Option<ChromeDriver>,
    /// The Chromium this run started (none when it shares one, or the WebDriver starts it).
    chromium: Option<Chromium>,
    browser: Option<Browser>,
    /// Which member the browser last signed in.
    member: Option<usize>,
}

/// The browser of a run.
#[derive(Debug)]
pub struct SharedBrowser {
    slot: Arc<AsyncMutex<Slot>>,
    webdriver: Option<String>,
    options: BrowserOptions,
    version: Mutex<Option<String>>,
    /// Why the browser did not start: told once, by the step that tried; the steps after it
    /// are skipped, naming it.
    failed: Mutex<Option<StepFailure>>,
}

/// The browser, held until dropped.
#[derive(Debug)]
pub struct BrowserGuard(OwnedMutexGuard<Slot>);

impl std::ops::Deref for BrowserGuard {
    type Target = Browser;

    fn deref(&self) -> &Browser {
        self.0
            .browser
            .as_ref()
            .unwrap_or_else(|| unreachable!("a guard is only handed out with an open browser"))
    }
}

impl std::ops::DerefMut for BrowserGuard {
    fn deref_mut(&mut self) -> &mut Browser {
        self.0
            .browser
            .as_mut()
            .unwrap_or_else(|| unreachable!("a guard is only handed out with an open browser"))
    }
}

impl BrowserGuard {
    /// Note that member number `member` signs in now; true when the browser last signed in
    /// someone else (whose session it may remember).
    pub fn signs_in_as(&mut self, member: usize) -> bool {
        self.0
            .member
            .replace(member)
            .is_some_and(|last| last != member)
    }
}

impl SharedBrowser {
    pub fn new(webdriver: Option<String>, options: BrowserOptions) -> Self {
        Self {
            slot: Arc::new(AsyncMutex::new(Slot::default())),
            webdriver,
            options,
            version: Mutex::new(None),
            failed: Mutex::new(None),
        }
    }

    /// Start the browser now, in the background, for a run that will certainly sign in:
    /// Chromium's start then overlaps with the run's own (the sandbox, discovery). The first
    /// [`SharedBrowser::lock`] waits for it; a start that fails here is tried again there,
    /// where its error becomes the step's.
    pub fn warm(self: &Arc<Self>) {
        let Ok(mut slot) = Arc::clone(&self.slot).try_lock_owned() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _ = this.start(&mut slot).await;
        });
    }

    /// The browser, started on first use; waits while another scenario holds it.
    pub async fn lock(&self) -> Result<BrowserGuard, StepFailure> {
        if let Some(earlier) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Err(StepFailure::premise("no browser", earlier));
        }
        let mut slot = Arc::clone(&self.slot).lock_owned().await;
        if let Err(failure) = self.start(&mut slot).await {
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure.clone());
            return Err(failure);
        }
        Ok(BrowserGuard(slot))
    }

    async fn start(&self, slot: &mut Slot) -> Result<(), StepFailure> {
        if slot.browser.is_some() {
            return Ok(());
        }
        // A local browser is a Chromium onramp starts (alongside chromedriver), unless the
        // run shares one.
        let local = !self.options.remote && self.options.devtools.is_none();
        let url = match (&self.webdriver, &slot.driver) {
            (Some(url), _) => url.clone(),
            (None, Some(driver)) => driver.url().to_owned(),
            (None, None) if local && slot.chromium.is_none() => {
                let (driver, chromium) =
                    tokio::join!(ChromeDriver::start(), Chromium::launch(&self.options));
                let driver = driver.map_err(environment)?;
                slot.chromium = Some(chromium.map_err(environment)?);
                let url = driver.url().to_owned();
                slot.driver = Some(driver);
                url
            }
            (None, None) => {
                let driver = ChromeDriver::start().await.map_err(environment)?;
                let url = driver.url().to_owned();
                slot.driver = Some(driver);
                url
            }
        };
        let mut options = self.options.clone();
        if local {
            if slot.chromium.is_none() {
                slot.chromium = Some(Chromium::launch(&options).await.map_err(environment)?);
            }
            options.devtools = slot.chromium.as_ref().map(|c| c.endpoint().clone());
        }
        let browser = Browser::open(&url, &options).await.map_err(environment)?;
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = browser.version();
        slot.browser = Some(browser);
        Ok(())
    }

    /// Chromium's version, once it has started.
    pub fn version(&self) -> Option<String> {
        self.version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// End the session and stop chromedriver (also done when this is dropped).
    pub async fn close(&self) {
        let mut slot = self.slot.lock().await;
        if let Some(browser) = slot.browser.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
        }
        if let Some(mut chromium) = slot.chromium.take() {
            chromium.stop();
        }
        if let Some(mut driver) = slot.driver.take() {
            driver.stop();
        }
    }
}

/// A browser that cannot start or act is the environment's problem, told with what the
/// WebDriver or Chromium said of it.
pub fn environment(error: BrowserError) -> StepFailure {
    StepFailure::environment(crate::infra::cause::with_causes(&error))
}
