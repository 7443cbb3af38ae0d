//! What the scenarios of one run share: the target, the HTTP and OAuth clients, the
//! browser (started on first use, one window for the run), the evidence recorder, the
//! member's authorized session (obtained once, whichever scenario asks first) and each
//! search's result (fetched once, read by every check that needs it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{Mutex as AsyncMutex, OnceCell, OwnedMutexGuard};
use url::Url;

use super::StepFailure;
use crate::browser::{Browser, BrowserError, BrowserOptions, ChromeDriver};
use crate::config::Target;
use crate::evidence::Recorder;
use crate::fhir::{Paging, SearchResult};
use crate::http::Http;
use crate::oauth::{AuthorizationStart, OAuthClient, Redirect, TokenAnswer, Tokens};
use crate::secret::Secret;

/// The identity form of the payer's demo: label, and the `[member]` field that fills it.
pub const IDENTITY_FORM: [(&str, &str); 5] = [
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Birthdate", "birth_date"),
    ("Plan Member ID", "member_id"),
    ("Zip Code", "zip"),
];
pub const CONFIRM_LINK: &str = "Click here to confirm identity";
pub const VERIFY_BUTTON: &str = "Verify identity";

/// The endpoints of the target, once known (the sandbox's are known after it starts).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub fhir_base: Url,
}

/// The browser of the run, started on first use.
#[derive(Debug, Default)]
pub struct BrowserSlot {
    driver: Option<ChromeDriver>,
    browser: Option<Browser>,
}

impl BrowserSlot {
    /// The open browser (present once [`RunContext::browser`] returned this slot).
    pub fn browser(&self) -> Result<&Browser, StepFailure> {
        self.browser
            .as_ref()
            .ok_or_else(|| StepFailure::environment("the browser is not open"))
    }
}

/// A member's sign-in, up to the redirect back to the app.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub start: AuthorizationStart,
    pub landed: Url,
    pub redirect: Redirect,
}

/// The member's authorized session: the code exchange and the tokens it gave.
#[derive(Debug)]
pub struct Session {
    /// The first exchange's answer, as the token checks judge it.
    pub answer: TokenAnswer,
    tokens: AsyncMutex<Option<Tokens>>,
    pub requested_scope: String,
    refreshed: AtomicU32,
}

impl Session {
    pub fn refreshed(&self) -> u32 {
        self.refreshed.load(Ordering::Relaxed)
    }
}

/// What every scenario of a run shares.
pub struct RunContext {
    pub target: Target,
    pub endpoints: Endpoints,
    pub http: Http,
    pub oauth: OAuthClient,
    pub recorder: Arc<Recorder>,
    browser: Arc<AsyncMutex<BrowserSlot>>,
    webdriver: Option<String>,
    browser_options: BrowserOptions,
    browser_version: Mutex<Option<String>>,
    session: OnceCell<Result<Arc<Session>, StepFailure>>,
    offered: Mutex<Option<Authorized>>,
    searches: AsyncMutex<BTreeMap<String, Arc<OnceCell<SearchResult>>>>,
    show_progress: bool,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("target", &self.target.name)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    #[allow(clippy::too_many_arguments, reason = "the run's parts, assembled once")]
    pub fn new(
        target: Target,
        endpoints: Endpoints,
        http: Http,
        oauth: OAuthClient,
        recorder: Arc<Recorder>,
        webdriver: Option<String>,
        browser_options: BrowserOptions,
        show_progress: bool,
    ) -> Self {
        Self {
            target,
            endpoints,
            http,
            oauth,
            recorder,
            browser: Arc::new(AsyncMutex::new(BrowserSlot::default())),
            webdriver,
            browser_options,
            browser_version: Mutex::new(None),
            session: OnceCell::new(),
            offered: Mutex::new(None),
            searches: AsyncMutex::new(BTreeMap::new()),
            show_progress,
        }
    }

    /// The run's browser, started on first use and held until the guard is dropped.
    pub async fn browser(&self) -> Result<OwnedMutexGuard<BrowserSlot>, StepFailure> {
        let mut slot = Arc::clone(&self.browser).lock_owned().await;
        if slot.browser.is_none() {
            let url = match &self.webdriver {
                Some(url) => url.clone(),
                None => {
                    let driver = ChromeDriver::start().await.map_err(browser_failure)?;
                    let url = driver.url().to_owned();
                    slot.driver = Some(driver);
                    url
                }
            };
            let browser = Browser::open(&url, &self.browser_options)
                .await
                .map_err(browser_failure)?;
            *self
                .browser_version
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = browser.version();
            slot.browser = Some(browser);
        }
        Ok(slot)
    }

    /// Chromium's version, once the browser has started.
    pub fn browser_version(&self) -> Option<String> {
        self.browser_version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// End the browser session and stop chromedriver (also happens when the context drops).
    pub async fn close_browser(&self) {
        let mut slot = self.browser.lock().await;
        if let Some(browser) = slot.browser.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
        }
        if let Some(mut driver) = slot.driver.take() {
            driver.stop();
        }
    }

    /// Take a screenshot as evidence; a failure to take one is a note, not a failed step.
    pub async fn screenshot(&self, browser: &Browser, context: &str, caption: &str) {
        let url = browser.location().await;
        match browser.screenshot().await {
            Ok(png) => self.recorder.screenshot(context, caption, &url, &png),
            Err(error) => self
                .recorder
                .note(context, &format!("no screenshot of \"{caption}\": {error}")),
        }
    }

    /// `${member.first_name}` and friends, from the target's `[member]`.
    pub fn expand(&self, text: &str) -> Result<String, StepFailure> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${member.") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "${member.".len()..];
            let end = after
                .find('}')
                .ok_or_else(|| StepFailure::usage(format!("unclosed placeholder in \"{text}\"")))?;
            let name = &after[..end];
            let value = self.target.member.get(name).ok_or_else(|| {
                StepFailure::usage(format!(
                    "the target's [member] has no \"{name}\" (used in \"{text}\")"
                ))
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Wait for the browser to come back to the redirect URI, and read what it carries.
    pub async fn catch_redirect(
        &self,
        browser: &Browser,
        start: &AuthorizationStart,
        context: &str,
    ) -> Result<Authorized, StepFailure> {
        let target = start.redirect_uri.clone();
        let arrived = |url: &Url| same_endpoint(url, &target);
        let landed = match browser
            .wait_for_url(&format!("the redirect to {}", target), arrived)
            .await
        {
            Ok(url) => url,
            Err(BrowserError::Timeout { what, waited }) => {
                let at = browser.location().await;
                let text: String = browser
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                self.screenshot(browser, context, "no redirect").await;
                return Err(StepFailure::conformance(format!(
                    "timed out after {:.0} s waiting for {what}; the browser is at {at} showing: {}",
                    waited.as_secs_f32(),
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                )));
            }
            Err(other) => return Err(browser_failure(other)),
        };
        let redirect = self.oauth.read_redirect(&landed);
        self.screenshot(browser, context, "back at the app's redirect URI")
            .await;
        Ok(Authorized {
            start: start.clone(),
            landed,
            redirect,
        })
    }

    /// A member's whole sign-in in the browser, as the authorization feature spells it.
    pub async fn sign_in(&self, context: &str) -> Result<Authorized, StepFailure> {
        let start = self.oauth.start();
        let slot = self.browser().await?;
        let browser = slot.browser()?;
        browser
            .goto(start.url.as_str())
            .await
            .map_err(browser_failure)?;
        self.screenshot(browser, context, "authorization page")
            .await;
        // An identity provider that remembers the member may send the browser straight back.
        if browser
            .current_url()
            .await
            .is_ok_and(|url| same_endpoint(&url, &start.redirect_uri))
        {
            self.recorder.note(
                context,
                "the authorization server redirected at once, without asking the member again",
            );
            return self.catch_redirect(browser, &start, context).await;
        }
        browser
            .click_link(CONFIRM_LINK)
            .await
            .map_err(page_failure)?;
        self.screenshot(browser, context, "identity form").await;
        for (label, field) in IDENTITY_FORM {
            let value = self.target.member.get(field).ok_or_else(|| {
                StepFailure::usage(format!(
                    "the target's [member] has no \"{field}\" for the field \"{label}\""
                ))
            })?;
            browser.fill(label, value).await.map_err(page_failure)?;
        }
        self.screenshot(browser, context, "identity form filled in")
            .await;
        browser.press(VERIFY_BUTTON).await.map_err(page_failure)?;
        self.catch_redirect(browser, &start, context).await
    }

    /// Give the run a fresh code from an explicit sign-in, for the session to use.
    pub fn offer(&self, authorized: Authorized) {
        *self.offered.lock().unwrap_or_else(|p| p.into_inner()) = Some(authorized);
    }

    /// The member's session: exchanged once, from an offered code or a sign-in of its own.
    pub async fn session(&self) -> Result<Arc<Session>, StepFailure> {
        self.session
            .get_or_init(|| async {
                let offered = self
                    .offered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                let authorized = match offered {
                    Some(authorized) => authorized,
                    None => self.sign_in("Sign-in for the run's session").await?,
                };
                let code = authorized.redirect.code.clone().ok_or_else(|| {
                    StepFailure::conformance(format!(
                        "the redirect carried no code{}",
                        authorized
                            .redirect
                            .error
                            .as_ref()
                            .map(|e| format!(" but error={e}"))
                            .unwrap_or_default()
                    ))
                })?;
                let answer = self
                    .oauth
                    .exchange(&code, authorized.start.verifier.as_ref())
                    .await;
                if let Some(error) = &answer.transport
                    && error.is_environment()
                {
                    return Err(StepFailure::environment(error.to_string()));
                }
                let tokens = answer.tokens.clone();
                Ok(Arc::new(Session {
                    answer,
                    tokens: AsyncMutex::new(tokens),
                    requested_scope: self.target.scope(),
                    refreshed: AtomicU32::new(0),
                }))
            })
            .await
            .clone()
    }

    /// The session if it was established, without starting one.
    pub fn existing_session(&self) -> Option<Arc<Session>> {
        self.session.get().and_then(|s| s.as_ref().ok()).cloned()
    }

    /// A live access token, refreshed when it is about to expire.
    pub async fn access_token(&self) -> Result<Secret, StepFailure> {
        let session = self.session().await?;
        let mut tokens = session.tokens.lock().await;
        let Some(current) = tokens.as_ref() else {
            let why = session
                .answer
                .problem
                .clone()
                .unwrap_or_else(|| "no token response".into());
            return Err(StepFailure::conformance(format!(
                "no access token: the code exchange failed: {why}"
            )));
        };
        if current.expires_within(Duration::from_secs(60))
            && let Some(refresh) = current.refresh.clone()
        {
            let answer = self.oauth.refresh(&refresh).await;
            match answer.tokens {
                Some(fresh) => {
                    session.refreshed.fetch_add(1, Ordering::Relaxed);
                    self.recorder.note(
                        "Token",
                        "the access token was about to expire and was refreshed",
                    );
                    *tokens = Some(fresh);
                }
                None => self.recorder.note(
                    "Token",
                    &format!(
                        "refreshing the access token failed: {}",
                        answer.problem.unwrap_or_default()
                    ),
                ),
            }
        }
        tokens
            .as_ref()
            .map(|t| t.access.clone())
            .ok_or_else(|| StepFailure::conformance("no access token"))
    }

    /// The member's Patient id: the token response's `patient`, else the one Patient the
    /// Patient search returns (searching if it has not run).
    pub async fn patient_id(&self) -> Option<String> {
        if let Some(known) = self.known_patient_id().await {
            return Some(known);
        }
        let patients = self.search("Patient").await;
        match patients.resources.as_slice() {
            [only] => only.id.clone(),
            _ => None,
        }
    }

    /// The member's Patient id from what the run already knows, without a request: for the
    /// summary, built after the target may be gone.
    pub async fn known_patient_id(&self) -> Option<String> {
        if let Some(session) = self.existing_session()
            && let Some(patient) = session
                .answer
                .fields
                .get("patient")
                .and_then(|p| p.as_str())
        {
            return Some(patient.to_owned());
        }
        let searches = self.searches.lock().await;
        let patients = searches.get("Patient")?.get()?;
        match patients.resources.as_slice() {
            [only] => only.id.clone(),
            _ => None,
        }
    }

    /// The search for `kind`, run once and shared.
    pub async fn search(&self, kind: &str) -> SearchResult {
        let cell = {
            let mut searches = self.searches.lock().await;
            Arc::clone(searches.entry(kind.to_owned()).or_default())
        };
        cell.get_or_init(|| async {
            let token = match self.access_token().await {
                Ok(token) => token,
                Err(failure) => {
                    return SearchResult {
                        kind: kind.to_owned(),
                        failure: Some(crate::fhir::SearchFailure {
                            environment: failure.kind
                                == crate::run::summary::FailureKind::Environment,
                            message: failure.message,
                        }),
                        ..SearchResult::default()
                    };
                }
            };
            let bar = self.progress_bar(kind);
            let paging = Paging {
                page_size: self.target.page_size,
                page_cap: self.target.page_cap,
            };
            let result = crate::fhir::search(
                &self.http,
                &self.endpoints.fhir_base,
                kind,
                &token,
                paging,
                |pages, resources| {
                    bar.set_message(format!(
                        "{pages} page{}, {resources} resources",
                        if pages == 1 { "" } else { "s" }
                    ));
                },
            )
            .await;
            bar.finish_and_clear();
            result
        })
        .await
        .clone()
    }

    /// Every required type's search, keyed by type.
    pub async fn searches(&self) -> BTreeMap<String, SearchResult> {
        let mut all = BTreeMap::new();
        for kind in &self.target.required_resources {
            all.insert(kind.clone(), self.search(kind).await);
        }
        all
    }

    /// The searches run so far (for the summary), without starting new ones.
    pub async fn finished_searches(&self) -> Vec<SearchResult> {
        let searches = self.searches.lock().await;
        searches
            .values()
            .filter_map(|cell| cell.get().cloned())
            .collect()
    }

    fn progress_bar(&self, kind: &str) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} reading {prefix}: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_prefix(kind.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// Whether `url` is the redirect URI (scheme, host, port and path; the query differs).
fn same_endpoint(url: &Url, redirect_uri: &Url) -> bool {
    url.scheme() == redirect_uri.scheme()
        && url.host_str() == redirect_uri.host_str()
        && url.port_or_known_default() == redirect_uri.port_or_known_default()
        && url.path() == redirect_uri.path()
}

/// A browser that cannot start or act is the environment's problem.
pub fn browser_failure(error: BrowserError) -> StepFailure {
    StepFailure::environment(error.to_string())
}

/// A page without the expected link, field or button is the target's problem.
pub fn page_failure(error: BrowserError) -> StepFailure {
    match error {
        BrowserError::Timeout { .. } | BrowserError::Missing { .. } => {
            StepFailure::conformance(error.to_string())
        }
        other => browser_failure(other),
    }
}
