//! What the scenarios of one run share, composed of one part per concern: the target and
//! its clients ([`Http`], [`OAuthClient`]), the evidence [`Recorder`], the browser
//! ([`SharedBrowser`]), the member's authorization ([`Session`]), the searches
//! ([`Searches`]), the checks' verdicts ([`Checks`], and the failures on their way to the
//! collector) and the sign-in [`Recipe`]. The glue
//! between them (a sign-in when a code is needed, the token for a read) is here.

use std::sync::Arc;

use url::Url;

use super::StepFailure;
use super::checks::Checks;
use super::records::Searches;
use super::session::{Authorized, Grant, Session};
use super::shared_browser::SharedBrowser;
use crate::browser::Browser;
use crate::config::Target;
use crate::evidence::Recorder;
use crate::infra::secret::Secret;
use crate::payer::http::Http;
use crate::payer::oauth::{OAuthClient, TokenAnswer};
use crate::payer::recipe::Recipe;

/// The endpoints of the target, once known (the sandbox's are known after it starts).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub fhir_base: Url,
}

/// What every scenario of a run shares.
#[derive(Debug)]
pub struct RunContext {
    pub target: Target,
    pub endpoints: Endpoints,
    pub http: Http,
    pub oauth: OAuthClient,
    pub recorder: Arc<Recorder>,
    pub browser: Arc<SharedBrowser>,
    pub session: Session,
    /// The target's other members, for the `@isolation` checks.
    pub members: super::records::Members,
    pub searches: Searches,
    pub checks: Checks,
    /// The SMART configuration and the CapabilityStatement, fetched once.
    pub discovery: super::records::Discovery,
    /// The failures of checks, on their way to the collector.
    pub verdicts: Arc<super::Verdicts>,
    pub recipe: Option<Recipe>,
    /// The members' sign-ins that failed in a way a retry would repeat.
    pub sign_in_failures: super::records::Failures,
    /// The app under test (`[app]`), for the `@app` scenarios.
    pub app: super::app_host::AppHost,
    /// How every resource read is validated (the target's `[validation]`).
    pub validator: Arc<crate::validate::Validator>,
    /// The public APIs: the Provider Directory and the drug formulary.
    pub books: super::records::Books,
}

impl RunContext {
    /// `${member.<name>}` placeholders filled from the target's `[member]`.
    pub fn expand(&self, text: &str) -> Result<String, StepFailure> {
        self.expand_for(0, text)
    }

    /// `${member.<name>}` placeholders filled from the target's member number `member`, and
    /// `${app.connect}` and `${app.name}` from its `[app]`.
    pub fn expand_for(&self, member: usize, text: &str) -> Result<String, StepFailure> {
        let text = &self.expand_app(text)?;
        let values = self
            .target
            .members
            .get(member)
            .map_or(&self.target.member, |m| &m.values);
        crate::payer::recipe::expand(text, values).map_err(|e| StepFailure::usage(e.to_string()))
    }

    /// `text` with `${app.connect}` and `${app.name}` filled from the target's `[app]`.
    fn expand_app(&self, text: &str) -> Result<String, StepFailure> {
        if !text.contains("${app.") {
            return Ok(text.to_owned());
        }
        let app = self.target.app.as_ref();
        let mut out = text.to_owned();
        for (name, value) in [
            ("connect", app.and_then(|a| a.connect.clone())),
            ("name", app.map(|a| a.name.clone())),
        ] {
            let placeholder = format!("${{app.{name}}}");
            if !out.contains(&placeholder) {
                continue;
            }
            let value = value.ok_or_else(|| {
                StepFailure::usage(format!(
                    "the features use {placeholder} but the target's [app] has no {name}: add `{name} = \"…\"` under [app]"
                ))
            })?;
            out = out.replace(&placeholder, &value);
        }
        Ok(out)
    }

    /// Take a screenshot as evidence; a failure to take one is a note, not a failed step.
    pub async fn screenshot(&self, browser: &Browser, context: &str, caption: &str) {
        let mut url = browser.location().await;
        if url.starts_with("data:") {
            url = "data: (a page onramp made)".into();
        }
        // The app's pages make the recording the payer asks for: each says what the member
        // just did.
        let captioned = context == crate::evidence::APP_CONTEXT && !url.starts_with("data:");
        if captioned {
            browser
                .caption(Some(&capitalized(&self.recorder.redact(caption))))
                .await;
        }
        let shot = browser.screenshot().await;
        if captioned {
            browser.caption(None).await;
        }
        match shot {
            Ok(png) => self.recorder.screenshot(context, caption, &url, &png),
            Err(error) => self
                .recorder
                .note(context, &format!("no screenshot of \"{caption}\": {error}")),
        }
    }

    /// A code nobody has exchanged: the one the `@sign-in` scenario caught, or a sign-in of
    /// its own (filmed when it is the run's first, so the report shows one whole sign-in).
    pub async fn fresh_authorization(&self, context: &str) -> Result<Authorized, StepFailure> {
        match self.session.take_offered() {
            Some(authorized) => Ok(authorized),
            None => {
                let first = self.recorder.screenshot_count() == 0;
                self.sign_in(context, self.oauth.start(), first).await
            }
        }
    }

    /// Exchange a sign-in's code (with its PKCE verifier unless told not to send it).
    pub async fn exchange(
        &self,
        authorized: &Authorized,
        with_verifier: bool,
    ) -> Result<TokenAnswer, StepFailure> {
        let code = authorized.code()?.clone();
        let verifier = authorized.start.verifier.as_ref().filter(|_| with_verifier);
        let answer = self.oauth.exchange(&code, verifier).await;
        match &answer.transport {
            Some(error) => Err(StepFailure::from_http(error)),
            None => Ok(answer),
        }
    }

    /// The run's grant: the first exchange a scenario made, or one of its own.
    pub async fn grant(&self) -> Result<Arc<Grant>, StepFailure> {
        self.session
            .grant(async {
                let authorized = self
                    .fresh_authorization("Sign-in for the run's token")
                    .await?;
                let answer = self.exchange(&authorized, true).await?;
                Ok(Grant::new(answer, self.target.scope()))
            })
            .await
    }

    /// A live access token of the run's grant.
    pub async fn access_token(&self) -> Result<Secret, StepFailure> {
        self.grant()
            .await?
            .access_token(&self.oauth, &self.recorder)
            .await
    }

    /// The member's Patient id: the token response's `patient`, else the one Patient the
    /// Patient search returns (searching if it has not run).
    pub async fn patient_id(&self) -> Option<String> {
        if let Some(patient) = self.session.existing().and_then(|g| g.patient()) {
            return Some(patient);
        }
        match self.search("Patient").await.resources.as_slice() {
            [only] => only.id.clone(),
            _ => None,
        }
    }
}

/// `text` with its first letter in capitals.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
