//! Gherkin step definitions, one file per domain concept. Steps are thin: read the step's
//! parameters, call the run context (browser, OAuth, FHIR, validation), record what
//! happened in the World, and turn a problem into a [`StepFailure`] that says whose fault
//! it is.

mod access;
mod authorization;
mod resources;
mod token;

use std::sync::Arc;

use cucumber::World;
use tokio::sync::OwnedMutexGuard;

use crate::oauth::{AuthorizationStart, TokenAnswer};
use crate::run::StepFailure;
use crate::run::context::{Authorized, BrowserSlot, RunContext};

/// Per-scenario state, plus the run's shared context.
#[derive(Default, World)]
#[world(init = Self::new)]
pub struct OnrampWorld {
    /// Set by the run's `before` hook for every scenario.
    pub ctx: Option<Arc<RunContext>>,
    /// The browser, held from opening the authorization URL until the redirect is caught.
    pub browser: Option<OwnedMutexGuard<BrowserSlot>>,
    pub authorization: Option<AuthorizationStart>,
    pub authorized: Option<Authorized>,
    pub exchanges: Vec<TokenAnswer>,
    pub status: Option<u16>,
    /// The resource type of the scenario (resources feature).
    pub kind: Option<String>,
    pub redirect_probe: Option<crate::http::Response>,
}

impl std::fmt::Debug for OnrampWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets live in here; show only what is safe.
        f.debug_struct("OnrampWorld")
            .field("kind", &self.kind)
            .field("status", &self.status)
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
