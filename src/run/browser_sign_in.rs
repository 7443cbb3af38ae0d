//! Performing the sign-in language ([`crate::payer::recipe`]) in the run's browser: one sign-in
//! under way ([`SignIn`]), step by step as the `@sign-in` scenario runs them, or all at once
//! when another scenario replays the recipe ([`RunContext::sign_in`]), and the probe that
//! follows a sign-in towards a redirect URI the server must refuse.
//!
//! The page itself is a [`Page`]. A sign-in that fails, for whatever reason, is not tried
//! again for that member: the steps that need it are skipped, naming the first failure.

use url::Url;

use super::StepFailure;
use super::context::RunContext;
use super::page::Page;
use super::session::Authorized;
use super::shared_browser::environment;
use crate::browser::{BrowserError, Patience};
use crate::infra::origin::same_origin;
use crate::payer::oauth::AuthorizationStart;
use crate::payer::recipe::{Action, Recipe, RecipeStep};

/// A sign-in under way: the authorization request, and the browser that shows it.
#[derive(Debug)]
pub struct SignIn {
    pub start: AuthorizationStart,
    page: Page,
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
        let mut page = Page::new(browser, context, filmed, member);
        page.goto(ctx, url).await.map_err(environment)?;
        page.screenshot(ctx, "authorization page").await;
        Ok(Self { start, page })
    }

    /// Whether the browser is at the redirect URI already.
    pub async fn arrived(&self) -> bool {
        self.page
            .browser
            .current_url()
            .await
            .is_ok_and(|url| same_endpoint(&url, &self.start.redirect_uri))
    }

    /// Wait for the browser to come back to the redirect URI and read what it carries. A
    /// browser sent to another path of the app's origin with a code fails at once; pages of
    /// the payer's on the same origin as the redirect URI (as a payer's own test client
    /// has) are waited through.
    /// Do what one step of the language says (see [`Page::perform`]).
    pub async fn perform(&mut self, ctx: &RunContext, action: &Action) -> Result<(), StepFailure> {
        self.page.perform(ctx, action).await
    }

    /// Where the browser is, with secret parameters blanked.
    pub async fn location(&self, ctx: &RunContext) -> String {
        self.page.location(ctx).await
    }

    pub async fn finish(mut self, ctx: &RunContext) -> Result<Authorized, StepFailure> {
        let redirect_uri = self.start.redirect_uri.clone();
        let started = std::time::Instant::now();
        let waited = self
            .page
            .browser
            .wait_for_url(&format!("the redirect to {redirect_uri}"), |url| {
                redirected(url, &redirect_uri)
            })
            .await;
        ctx.recorder.browser_action(
            &self.page.context,
            "wait for the redirect to the app",
            started,
            waited.is_ok(),
        );
        let landed = match waited {
            Ok(url) if same_endpoint(&url, &redirect_uri) => url,
            Ok(url) => {
                self.page.evidence(ctx, "sent somewhere else").await;
                return Err(StepFailure::conformance(format!(
                    "the authorization server sent the browser to {}, not to the registered redirect URI {redirect_uri} (RFC 6749 §3.1.2: the redirect goes to that URI)",
                    ctx.recorder.redact(url.as_str())
                )));
            }
            Err(BrowserError::Timeout { what, waited }) => {
                let at = self.location(ctx).await;
                let shown: String = self
                    .page
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
                self.page.evidence(ctx, "no redirect").await;
                let offers = self.page.browser.offers().await;
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
        self.page
            .screenshot(ctx, "back at the app's redirect URI")
            .await;
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
        flow.page.browser.set_patience(Patience::Settle);
        flow.page.expects_refusal = true;
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
            flow.page
                .evidence(
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
