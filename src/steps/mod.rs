//! Gherkin step definitions, one file per domain concept. Steps are thin: read the step's
//! parameters, call the run context (browser, OAuth, FHIR, validation), record what
//! happened in the World, and end with [`verdict`]: a [`StepFailure`] says whose fault a
//! failure is, and travels to the exit code as a type.

mod access;
mod carin;
mod code;
mod discovery;
mod isolation;
mod openid;
mod refresh;
mod resources;
mod revocation;
mod signin;
mod token;

use std::sync::Arc;

use cucumber::World;

pub use signin::{sign_in_step, step_pattern};

use crate::payer::oauth::{AuthorizationStart, TokenAnswer};
use crate::run::context::RunContext;
use crate::run::session::Authorized;
use crate::run::{Probe, ScenarioKey, SignIn, StepFailure, verdict};

/// Per-scenario state, plus the run's shared context.
#[derive(Default, World)]
#[world(init = Self::new)]
pub struct OnrampWorld {
    /// Set by the run's `before` hook for every scenario.
    pub ctx: Option<Arc<RunContext>>,
    /// Where the scenario is, set by the same hook: checks report under it.
    pub scenario: Option<ScenarioKey>,
    /// An authorization request started, not yet opened in the browser.
    pub authorization: Option<AuthorizationStart>,
    /// A sign-in under way in the browser, until the redirect is caught.
    pub sign_in: Option<SignIn>,
    pub authorized: Option<Authorized>,
    pub exchanges: Vec<TokenAnswer>,
    /// The answer to a request a check judges (a read without a token, say).
    pub response: Option<crate::payer::http::Response>,
    /// The run's grant, held for the checks of its token response.
    pub grant: Option<Arc<crate::run::session::Grant>>,
    /// The resource type of the scenario (resources feature).
    pub kind: Option<String>,
    pub probe: Option<Probe>,
    /// The attempts at exchanging the scenario's code, in order.
    pub attempts: Vec<(code::Attempt, TokenAnswer)>,
    /// The refreshes of the scenario, in order.
    pub refreshes: Vec<refresh::Refreshed>,
    /// The revocation endpoint's status, once the access token was revoked.
    pub revocation: Option<u16>,
    /// A CARIN search and its answer.
    pub searched: Option<carin::Searched>,
    /// What the `@isolation` steps asked for of other members, in order.
    pub asked: Vec<isolation::Asked>,
    /// A token narrowed by a refresh, and its scope.
    pub narrowed: Option<(crate::infra::secret::Secret, String)>,
}

impl std::fmt::Debug for OnrampWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets live in here; show only what is safe.
        f.debug_struct("OnrampWorld")
            .field("kind", &self.kind)
            .field("status", &self.response.as_ref().map(|r| r.status))
            .field(
                "has_code",
                &self
                    .authorized
                    .as_ref()
                    .is_some_and(|a| a.redirect.code.is_some()),
            )
            .finish_non_exhaustive()
    }
}

impl OnrampWorld {
    async fn new() -> Result<Self, std::convert::Infallible> {
        Ok(Self::default())
    }

    fn ctx(&self) -> Result<Arc<RunContext>, StepFailure> {
        self.ctx.clone().ok_or_else(|| {
            StepFailure::environment("the run context is missing (a step ran outside onramp run)")
        })
    }
}

/// A check's verdict (`Then`): a failure goes to the collector and the scenario goes on to
/// its next check, which does not depend on this one. (A check that does depend on an
/// earlier one says so with [`StepFailure::blocked`].)
fn check(world: &OnrampWorld, step: &cucumber::gherkin::Step, result: Result<(), StepFailure>) {
    let Err(failure) = result else { return };
    match (&world.ctx, &world.scenario) {
        (Some(ctx), Some(scenario)) => {
            ctx.verdicts
                .fail((scenario.clone(), step.position.line), failure);
        }
        _ => std::panic::panic_any(failure),
    }
}

/// A list of problems as one failure message: the first ten, and how many more.
fn listed(head: &str, problems: &[String]) -> String {
    let mut text = head.to_owned();
    for problem in problems.iter().take(10) {
        text.push_str("\n  - ");
        text.push_str(problem);
    }
    if problems.len() > 10 {
        text.push_str(&format!(
            "\n  (and {} more; see summary.json)",
            problems.len() - 10
        ));
    }
    text
}

/// An HTTP request that got no usable answer: onramp could not test (or, when the request
/// was not sent, the step is skipped).
fn http_failure(error: &crate::payer::http::HttpError) -> StepFailure {
    StepFailure::from_http(error)
}

/// That `token` reads the member's Patient (`Patient/{patient}`, or a search of Patient
/// when the id is not known): the proof that a token works.
async fn reads_patient(
    ctx: &RunContext,
    token: &crate::infra::secret::Secret,
    patient: Option<&str>,
    context: &str,
    what: &str,
) -> Result<(), StepFailure> {
    let path = patient.map_or_else(|| "Patient".to_owned(), |id| format!("Patient/{id}"));
    let response = crate::payer::fhir::read(
        &ctx.http,
        &ctx.endpoints.fhir_base,
        &path,
        Some(token),
        context,
    )
    .await
    .map_err(|e| http_failure(&e))?;
    if response.status == 200 {
        return Ok(());
    }
    let reason = crate::payer::fhir::operation_outcome_text(&response.body)
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    Err(StepFailure::conformance(format!(
        "GET {path} with the {what} answered {}{reason}",
        response.status
    )))
}
