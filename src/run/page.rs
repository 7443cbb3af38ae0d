//! A page in the run's browser driven by the sign-in language ([`crate::payer::recipe`]):
//! a link clicked, a form filled in, a choice made, each as a person would, each timed
//! in the record and (when filmed) each page in a screenshot. The payer's sign-in
//! ([`super::SignIn`]) and the app under test ([`super::app::AppVisit`]) both drive one.
//!
//! A page that lacks what a step names means the features do not fit the page (usage: the
//! message lists what the page does offer, beside its screenshot); a page that does not
//! load is the environment's.

use url::Url;

pub use crate::infra::origin::without_query as url_without_query;

use super::StepFailure;
use super::context::RunContext;
use super::shared_browser::{BrowserGuard, environment};
use crate::browser::BrowserError;
use crate::payer::recipe::Action;

/// The browser, held for one scenario's pages.
#[derive(Debug)]
pub struct Page {
    pub browser: BrowserGuard,
    /// The field filled last: `submits the form` presses Enter there.
    last_field: Option<String>,
    /// Where its actions and screenshots are recorded (the scenario's context).
    pub context: String,
    /// Whether every page becomes a screenshot (what a reviewer sees); otherwise only a
    /// page where something went wrong does.
    filmed: bool,
    /// Whether the page as it is now is in a screenshot already.
    pictured: bool,
    /// Which of the target's members acts (their `${member.<name>}` values are typed).
    pub member: usize,
    /// A probe that expects the payer to stop the sign-in: a page that lacks what the next
    /// step names is the refusal, not a failure.
    pub expects_refusal: bool,
    /// A click whose next page does not load in time has done its part: where the browser
    /// ends up is the next step's question (the app's callback may hang).
    pub clicks_outlast_loads: bool,
    /// The secrets typed into this page's fields: masked before every screenshot.
    typed: Vec<String>,
    /// Whether the record already says a field showed a typed secret.
    masked_said: std::sync::atomic::AtomicBool,
}

/// What a page lacking a link, field or button the features name says: the features do not
/// fit the target's page (a timeout or a missing element: usage), or the browser broke
/// (anything else).
fn page_failure(error: BrowserError) -> StepFailure {
    match error {
        BrowserError::Timeout { .. } | BrowserError::Missing { .. } => {
            StepFailure::usage(error.to_string())
        }
        other => environment(other),
    }
}

/// What a step of the sign-in language did, as the features said it, without the values
/// typed (a password is a secret).
fn describe(action: &Action) -> String {
    match action {
        Action::Start => "start an authorization request".into(),
        Action::Open => "open the authorization URL".into(),
        Action::Click(text) => format!("click \"{text}\""),
        Action::Fill(pairs) => format!(
            "fill in {}",
            pairs
                .iter()
                .map(|(label, _)| format!("\"{label}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Choose { option, field } => match field {
            Some(field) => format!("choose \"{option}\" for \"{field}\""),
            None => format!("choose \"{option}\""),
        },
        Action::Check { label, on: true } => format!("check \"{label}\""),
        Action::Check { label, on: false } => format!("uncheck \"{label}\""),
        Action::WaitFor(text) => format!("wait for \"{text}\""),
        Action::Submit => "submit the form".into(),
    }
}

impl Page {
    /// The browser `browser`, for `context`, acting as member number `member`.
    pub fn new(browser: BrowserGuard, context: &str, filmed: bool, member: usize) -> Self {
        Self {
            browser,
            last_field: None,
            context: context.to_owned(),
            filmed,
            pictured: false,
            member,
            expects_refusal: false,
            clicks_outlast_loads: false,
            typed: Vec::new(),
            masked_said: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Open `url`, timed in the record as `what`.
    pub async fn goto(&mut self, ctx: &RunContext, url: &Url) -> Result<(), BrowserError> {
        let started = std::time::Instant::now();
        let opened = self.browser.goto(url.as_str()).await;
        ctx.recorder.browser_action(
            &self.context,
            &if url.scheme() == "data" {
                "open a page onramp made (a data: URL)".to_owned()
            } else {
                format!("open {}", url_without_query(url))
            },
            started,
            opened.is_ok(),
        );
        self.pictured = false;
        opened
    }

    /// A screenshot of the page, when this sign-in is filmed. Screenshots are taken of a
    /// page that has settled (after `goto`, after finding what to click or after typing),
    /// never right after a click or Enter: a capture while the next page commits can
    /// stall Chromium's renderer for 10 s.
    pub async fn screenshot(&mut self, ctx: &RunContext, caption: &str) {
        if self.filmed && !self.pictured {
            self.evidence(ctx, caption).await;
            self.pictured = true;
        }
    }

    /// A screenshot of the page, filmed or not: where something went wrong. A field that
    /// shows a secret typed into it as text (a password field of `type="text"`) is masked
    /// first, and the record says so once.
    pub async fn evidence(&self, ctx: &RunContext, caption: &str) {
        if !self.typed.is_empty() && self.browser.mask_fields(&self.typed).await > 0 {
            use std::sync::atomic::Ordering;
            if !self.masked_said.swap(true, Ordering::Relaxed) {
                ctx.recorder.note(
                    &self.context,
                    "a field showed a secret onramp typed into it as plain text (not a password field); it is masked in every screenshot and recording",
                );
            }
        }
        ctx.screenshot(&self.browser, &self.context, caption).await;
    }

    /// Where the browser is, with secret parameters blanked.
    pub async fn location(&self, ctx: &RunContext) -> String {
        ctx.recorder.redact(&self.browser.location().await)
    }

    /// Do what one step of the language says; a page that does not let it shows in a
    /// screenshot.
    pub async fn perform(&mut self, ctx: &RunContext, action: &Action) -> Result<(), StepFailure> {
        let started = std::time::Instant::now();
        let result = self.act(ctx, action).await;
        ctx.recorder
            .browser_action(&self.context, &describe(action), started, result.is_ok());
        match result {
            Err(failure) if failure.kind == crate::summary::FailureKind::Usage => {
                if self.expects_refusal {
                    self.evidence(ctx, "the payer stopped the sign-in here, as expected")
                        .await;
                    return Err(failure);
                }
                self.evidence(ctx, "the page the step could not act on")
                    .await;
                Err(self.does_not_fit(ctx, failure).await)
            }
            other => other,
        }
    }

    /// `failure` of a step that found no element it names, with what the page does offer.
    async fn does_not_fit(&self, ctx: &RunContext, failure: StepFailure) -> StepFailure {
        let offers = self.browser.offers().await;
        StepFailure::usage(format!(
            "{}; the page offers {offers}\nthe sign-in in the features does not fit the payer's page at {} (see its screenshot): change the step to what the page says",
            failure.message,
            self.location(ctx).await
        ))
    }

    async fn act(&mut self, ctx: &RunContext, action: &Action) -> Result<(), StepFailure> {
        let member = self.member;
        let expand = |text: &str| ctx.expand_for(member, text);
        match action {
            Action::Start | Action::Open => {
                return Err(StepFailure::usage(
                    "the authorization request is already open in the browser",
                ));
            }
            Action::Click(text) => {
                let text = expand(text)?;
                let target = self.browser.clickable(&text).await.map_err(page_failure)?;
                self.screenshot(ctx, &format!("before clicking {text}"))
                    .await;
                match target.click().await {
                    Err(error) if self.clicks_outlast_loads && error.is_load_timeout() => {
                        ctx.recorder.note(
                            &self.context,
                            &format!("after clicking \"{text}\" the next page had not loaded when the browser stopped waiting"),
                        );
                    }
                    clicked => clicked.map_err(page_failure)?,
                }
                self.pictured = false;
            }
            Action::Fill(pairs) => {
                for (label, value) in pairs {
                    let (label, value) = (expand(label)?, expand(value)?);
                    // What goes into a password field is a secret from now on (before any
                    // screenshot or message could show it); a secret typed into any field
                    // is masked before every screenshot.
                    let password = self
                        .browser
                        .fill(&label, &value)
                        .await
                        .map_err(page_failure)?;
                    if password {
                        ctx.recorder.add_secret(&value);
                    }
                    if (password || ctx.recorder.is_secret(&value)) && !self.typed.contains(&value)
                    {
                        self.typed.push(value.clone());
                    }
                    self.last_field = Some(label);
                }
                self.pictured = false;
                self.screenshot(ctx, "form filled in").await;
            }
            Action::Choose { option, field } => {
                let option = expand(option)?;
                let field = field.as_deref().map(&expand).transpose()?;
                self.browser
                    .choose(&option, field.as_deref())
                    .await
                    .map_err(page_failure)?;
                self.pictured = false;
            }
            Action::Check { label, on } => {
                let label = expand(label)?;
                self.browser
                    .set_checked(&label, *on)
                    .await
                    .map_err(page_failure)?;
                self.pictured = false;
            }
            Action::WaitFor(text) => {
                let text = expand(text)?;
                self.browser
                    .wait_for_text(&text)
                    .await
                    .map_err(page_failure)?;
            }
            Action::Submit => {
                self.browser
                    .submit(self.last_field.as_deref())
                    .await
                    .map_err(page_failure)?;
                self.pictured = false;
            }
        }
        Ok(())
    }
}
