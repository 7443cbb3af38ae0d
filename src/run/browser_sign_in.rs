//! Performing the sign-in language ([`crate::payer::recipe`]) in the run's browser: one sign-in
//! under way ([`SignIn`]), step by step as the `@sign-in` scenario runs them, or all at once
//! when another scenario replays the recipe ([`RunContext::sign_in`]), and the probe that
//! follows a sign-in towards a redirect URI the server must refuse.
//!
//! A page that lacks what a step names means the sign-in recipe does not fit the payer's
//! pages (usage: the message lists what the page does offer, beside its screenshot); a page
//! that does not load is the environment's. Either way the member's later sign-ins are not
//! tried again: the steps that need them are skipped, naming the first failure.

use url::Url;

use super::StepFailure;
use super::context::RunContext;
use super::session::Authorized;
use super::shared_browser::{BrowserGuard, environment};
use crate::browser::{BrowserError, Patience};
use crate::payer::oauth::AuthorizationStart;
use crate::payer::recipe::{Action, Recipe, RecipeStep};

/// A sign-in under way: the authorization request, and the browser that shows it.
#[derive(Debug)]
pub struct SignIn {
    pub start: AuthorizationStart,
    browser: BrowserGuard,
    /// The field filled last: `submits the form` presses Enter there.
    last_field: Option<String>,
    context: String,
    /// Whether every page becomes a screenshot (the sign-in a reviewer sees); otherwise
    /// only a page where something went wrong does.
    filmed: bool,
    /// Whether the page as it is now is in a screenshot already.
    pictured: bool,
    /// Which of the target's members signs in (their `${member.<name>}` values are typed).
    member: usize,
    /// A probe that expects the payer to stop the sign-in: a page that lacks what the next
    /// step names is the refusal, not a failure.
    expects_refusal: bool,
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

/// A URL for the timeline: its query (an authorization request's state and challenge) left
/// out.
fn url_without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
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

/// Whether the browser at `url` was redirected to the app: at `redirect_uri`, or elsewhere on
/// its origin with what only an authorization response carries, a `code` and a `state`
/// (sent to the wrong place, which the caller fails). A page of the payer's on the app's
/// origin is waited through, even one with a `code` of its own (a one-time passcode page).
fn redirected(url: &Url, redirect_uri: &Url) -> bool {
    let has = |wanted: &str| url.query_pairs().any(|(name, _)| name == wanted);
    same_endpoint(url, redirect_uri)
        || (same_origin(url, redirect_uri) && has("code") && has("state"))
}

/// Whether `url` is `redirect_uri` (scheme, host, port and path; the query differs).
pub fn same_endpoint(url: &Url, redirect_uri: &Url) -> bool {
    same_origin(url, redirect_uri) && url.path() == redirect_uri.path()
}

fn same_origin(url: &Url, other: &Url) -> bool {
    url.scheme() == other.scheme()
        && url.host_str() == other.host_str()
        && url.port_or_known_default() == other.port_or_known_default()
}

impl SignIn {
    /// Open `url` (the authorization request's, or a variant of it) in the run's browser.
    pub async fn open(
        ctx: &RunContext,
        start: AuthorizationStart,
        url: &Url,
        context: &str,
        filmed: bool,
    ) -> Result<Self, StepFailure> {
        Self::open_as(ctx, start, url, context, filmed, 0).await
    }

    /// [`SignIn::open`] for the target's member number `member` (0 is the run's).
    pub async fn open_as(
        ctx: &RunContext,
        start: AuthorizationStart,
        url: &Url,
        context: &str,
        filmed: bool,
        member: usize,
    ) -> Result<Self, StepFailure> {
        if let Some(earlier) = ctx.sign_in_failures.earlier(member) {
            return Err(StepFailure::premise("no sign-in", &earlier));
        }
        if let Some(cause) = ctx.http.down(url.as_str()) {
            return Err(StepFailure::blocked(format!(
                "the sign-in page was not opened: {} gave no answer earlier in this run ({cause})",
                crate::payer::http::origin_of(url.as_str())
            )));
        }
        let mut browser = ctx.browser.lock().await?;
        // Whatever an earlier probe left, this sign-in waits for what its steps name.
        browser.set_patience(Patience::Wait);
        // A server that remembers the last member must not hand their code to this one.
        if browser.signs_in_as(member) {
            let started = std::time::Instant::now();
            let forgot = browser.forget_sign_ins().await;
            ctx.recorder.browser_action(
                context,
                "forget the previous member's sign-in (delete cookies)",
                started,
                forgot.is_ok(),
            );
            forgot.map_err(environment)?;
        }
        let started = std::time::Instant::now();
        let opened = browser.goto(url.as_str()).await;
        ctx.recorder.browser_action(
            context,
            &format!("open {}", url_without_query(url)),
            started,
            opened.is_ok(),
        );
        opened.map_err(environment)?;
        let mut sign_in = Self {
            start,
            browser,
            last_field: None,
            context: context.to_owned(),
            filmed,
            pictured: false,
            member,
            expects_refusal: false,
        };
        sign_in.screenshot(ctx, "authorization page").await;
        Ok(sign_in)
    }

    /// A screenshot of the page, when this sign-in is filmed. Screenshots are taken of a
    /// page that has settled (after `goto`, after finding what to click or after typing),
    /// never right after a click or Enter: a capture while the next page commits can
    /// stall Chromium's renderer for 10 s.
    async fn screenshot(&mut self, ctx: &RunContext, caption: &str) {
        if self.filmed && !self.pictured {
            self.evidence(ctx, caption).await;
            self.pictured = true;
        }
    }

    /// A screenshot of the page, filmed or not: where something went wrong.
    async fn evidence(&self, ctx: &RunContext, caption: &str) {
        ctx.screenshot(&self.browser, &self.context, caption).await;
    }

    /// Whether the browser is at the redirect URI already.
    pub async fn arrived(&self) -> bool {
        self.browser
            .current_url()
            .await
            .is_ok_and(|url| same_endpoint(&url, &self.start.redirect_uri))
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
                target.click().await.map_err(page_failure)?;
                self.pictured = false;
            }
            Action::Fill(pairs) => {
                for (label, value) in pairs {
                    let (label, value) = (expand(label)?, expand(value)?);
                    // What goes into a password field is a secret from now on (before any
                    // screenshot or message could show it).
                    if self
                        .browser
                        .fill(&label, &value)
                        .await
                        .map_err(page_failure)?
                    {
                        ctx.recorder.add_secret(&value);
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

    /// Wait for the browser to come back to the redirect URI and read what it carries. A
    /// browser sent to another path of the app's origin with a code fails at once; pages of
    /// the payer's on the same origin as the redirect URI (as a payer's own test client
    /// has) are waited through.
    pub async fn finish(mut self, ctx: &RunContext) -> Result<Authorized, StepFailure> {
        let redirect_uri = self.start.redirect_uri.clone();
        let started = std::time::Instant::now();
        let waited = self
            .browser
            .wait_for_url(&format!("the redirect to {redirect_uri}"), |url| {
                redirected(url, &redirect_uri)
            })
            .await;
        ctx.recorder.browser_action(
            &self.context,
            "wait for the redirect to the app",
            started,
            waited.is_ok(),
        );
        let landed = match waited {
            Ok(url) if same_endpoint(&url, &redirect_uri) => url,
            Ok(url) => {
                self.evidence(ctx, "sent somewhere else").await;
                return Err(StepFailure::conformance(format!(
                    "the authorization server sent the browser to {}, not to the registered redirect URI {redirect_uri} (RFC 6749 §3.1.2: the redirect goes to that URI)",
                    ctx.recorder.redact(url.as_str())
                )));
            }
            Err(BrowserError::Timeout { what, waited }) => {
                let at = self.location(ctx).await;
                let shown: String = self
                    .browser
                    .text()
                    .await
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(300)
                    .collect();
                self.evidence(ctx, "no redirect").await;
                let offers = self.browser.offers().await;
                // The payer's pages answered what the features did; that they did not end
                // in a redirect says the features (a step short, a consent page not
                // answered) or the member's details do not fit, not that a rule was broken.
                return Err(StepFailure::usage(format!(
                    "the sign-in's steps ran to their end, but after {} waiting for {what} the browser is at {at}, showing: {shown}\nthe page offers {offers}; the sign-in in the features may lack a step, or the target's member details may be wrong (see the screenshot)",
                    crate::infra::words::seconds(waited),
                )));
            }
            Err(other) => return Err(environment(other)),
        };
        let redirect = ctx.oauth.read_redirect(&landed);
        self.screenshot(ctx, "back at the app's redirect URI").await;
        Ok(Authorized {
            start: self.start,
            landed,
            redirect,
        })
    }
}

/// Where a replayed step was written, for a failure message.
fn replayed(recipe: &Recipe, step: &RecipeStep, failure: StepFailure) -> StepFailure {
    StepFailure {
        message: format!(
            "{} (replaying the sign-in of {}, line {}: {})",
            failure.message, recipe.source, step.line, step.text
        ),
        ..failure
    }
}

/// What the probe towards a redirect URI the server must refuse saw.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The address of the refused URI the browser reached (redacted), if it did.
    pub reached: Option<String>,
    /// How far the sign-in went before the server stopped it.
    pub stopped: String,
}

impl RunContext {
    /// The recipe, or a usage failure saying where it should be.
    pub fn recipe(&self) -> Result<&Recipe, StepFailure> {
        self.recipe.as_ref().ok_or_else(|| {
            StepFailure::usage(
                "no scenario is tagged @sign-in: the features must say how the member signs in (onramp init writes an example)",
            )
        })
    }

    /// A whole sign-in, replaying the `@sign-in` scenario's actions: for scenarios that
    /// need a code of their own. `filmed`: a screenshot of every page, for the sign-in a
    /// reviewer sees (otherwise only of a page where something went wrong).
    pub async fn sign_in(
        &self,
        context: &str,
        start: AuthorizationStart,
        filmed: bool,
    ) -> Result<Authorized, StepFailure> {
        self.sign_in_as(context, start, filmed, 0).await
    }

    /// [`RunContext::sign_in`] of the target's member number `member` (0 is the run's).
    pub async fn sign_in_as(
        &self,
        context: &str,
        start: AuthorizationStart,
        filmed: bool,
        member: usize,
    ) -> Result<Authorized, StepFailure> {
        let recipe = self.recipe()?;
        let url = start.url.clone();
        let signed_in = async {
            let mut flow = SignIn::open_as(self, start, &url, context, filmed, member).await?;
            for step in &recipe.steps {
                if matches!(step.action, Action::Start | Action::Open) {
                    continue;
                }
                // A server that remembers the member may send the browser straight back.
                if flow.arrived().await {
                    self.recorder.note(
                        context,
                        "the authorization server redirected without asking the member again",
                    );
                    break;
                }
                flow.perform(self, &step.action)
                    .await
                    .map_err(|f| replayed(recipe, step, f))?;
            }
            flow.finish(self).await
        }
        .await;
        if let Err(failure) = &signed_in {
            self.sign_in_failures.record(member, failure);
        }
        signed_in
    }

    /// Follow a sign-in whose authorization request names `redirect_uri` instead of the
    /// registered one, as far as the server lets it go, watching for the browser to reach
    /// that URI. Any page that does not show what the recipe's next step needs ends it.
    pub async fn probe_redirect(
        &self,
        context: &str,
        redirect_uri: &Url,
    ) -> Result<Probe, StepFailure> {
        let recipe = self.recipe()?;
        let start = self.oauth.start();
        let mut url = start.url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let value = if k == "redirect_uri" {
                    redirect_uri.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        let start = AuthorizationStart {
            redirect_uri: redirect_uri.clone(),
            ..start
        };
        let mut flow = SignIn::open(self, start, &url, context, false).await?;
        flow.browser.set_patience(Patience::Settle);
        flow.expects_refusal = true;
        let mut stopped = "the authorization page".to_owned();
        let mut reached = None;
        let mut refused = false;
        for step in &recipe.steps {
            if flow.arrived().await {
                reached = Some(flow.location(self).await);
                break;
            }
            if matches!(step.action, Action::Start | Action::Open) {
                continue;
            }
            match flow.perform(self, &step.action).await {
                Ok(()) => stopped = format!("line {}: {}", step.line, step.text),
                Err(failure) if failure.kind == crate::summary::FailureKind::Usage => {
                    stopped = format!(
                        "{stopped}; the next page did not offer line {}: {} ({})",
                        step.line, step.text, failure.message
                    );
                    refused = true;
                    break;
                }
                Err(failure) => return Err(failure),
            }
        }
        if reached.is_none() && !refused {
            // After the last action the server has had its say: give a redirect a moment.
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
            while reached.is_none() && std::time::Instant::now() < deadline {
                if flow.arrived().await {
                    reached = Some(flow.location(self).await);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        // A page that refused a step is in a screenshot already ([`SignIn::perform`]).
        if !refused {
            flow.evidence(
                self,
                if reached.is_some() {
                    "the browser reached the redirect URI the payer must refuse"
                } else {
                    "where the redirect URI the payer must refuse led"
                },
            )
            .await;
        }
        Ok(Probe { reached, stopped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_is_the_registered_uri_or_an_authorization_response_on_its_origin() {
        let registered = Url::parse("https://app.example/cb").expect("url");
        let at = |u: &str| redirected(&Url::parse(u).expect("url"), &registered);
        assert!(at("https://app.example/cb?code=c&state=s"));
        assert!(at("https://app.example/cb?error=access_denied"));
        // Sent to another path of the app's origin with the response: caught at once.
        assert!(at("https://app.example/elsewhere?code=c&state=s"));
        // The payer's own pages on the app's origin are waited through, a passcode page too.
        assert!(!at(
            "https://app.example/v2/accounts/login?next=%2Fauthorize"
        ));
        assert!(!at("https://app.example/verify?code=123456"));
        assert!(!at("https://payer.example/cb?code=c&state=s"));
    }
}
