//! The World of the steps: what one scenario holds (the request it started, the answers it
//! judges, what it asked of other members), the run's shared context, and the one way a
//! step hands in its verdict ([`check`]).

use std::sync::Arc;

use cucumber::World;
use serde_json::Value;

use crate::infra::secret::Secret;
use crate::payer::isolation::Way;
pub use crate::payer::oauth::Attempt;
use crate::payer::oauth::{AuthorizationStart, TokenAnswer};
use crate::payer::search::Parameter;
use crate::run::context::RunContext;
use crate::run::session::Authorized;
use crate::run::{Probe, ScenarioKey, SignIn, StepFailure};

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
    pub attempts: Vec<(Attempt, TokenAnswer)>,
    /// The refreshes of the scenario, in order.
    pub refreshes: Vec<Refreshed>,
    /// The revocation endpoint's status, once the access token was revoked.
    pub revocation: Option<u16>,
    /// A CARIN search and its answer.
    pub searched: Option<Searched>,
    /// The public API the scenario reads (`None`: the Patient Access API).
    pub book: Option<crate::payer::public::Book>,
    /// What the public API answered to requests without a token: each path asked, and the
    /// answer.
    pub public: Vec<(String, crate::payer::http::Response)>,
    /// What the `@isolation` steps asked for of other members, in order.
    pub asked: Vec<Asked>,
    /// The app under test, open in the browser (`@app`).
    pub app: Option<crate::run::app::AppVisit>,
    /// A token narrowed by a refresh, and its scope.
    pub narrowed: Option<(Secret, String)>,
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

    /// Hand in a check's verdict (`Then`): a failure goes to the collector and the scenario
    /// goes on to its next check, which does not depend on this one. (A check that does
    /// depend on an earlier one says so with [`StepFailure::blocked`].) The one way a `Then`
    /// step ends.
    pub(super) fn judge(&self, step: &cucumber::gherkin::Step, result: Result<(), StepFailure>) {
        let Err(failure) = result else { return };
        match (&self.ctx, &self.scenario) {
            (Some(ctx), Some(scenario)) => {
                ctx.verdicts
                    .fail((scenario.clone(), step.position.line), failure);
            }
            _ => std::panic::panic_any(failure),
        }
    }

    /// Everything the scenario's search read of `kind`: from its public API, or the Patient
    /// Access API's.
    pub(super) async fn read_all(
        &self,
        kind: &str,
    ) -> Result<Arc<crate::payer::fhir::SearchResult>, StepFailure> {
        let ctx = self.ctx()?;
        Ok(match self.book {
            Some(book) => ctx.book_search(book, kind).await,
            None => ctx.search(kind).await,
        })
    }

    pub(super) fn ctx(&self) -> Result<Arc<RunContext>, StepFailure> {
        self.ctx.clone().ok_or_else(|| {
            StepFailure::environment("the run context is missing (a step ran outside onramp run)")
        })
    }
}

/// An HTTP request that got no usable answer: onramp could not test (or, when the request
/// was not sent, the step is skipped).
pub(super) fn http_failure(error: &crate::payer::http::HttpError) -> StepFailure {
    StepFailure::from_http(error)
}

/// That `token` reads the member's Patient (`Patient/{patient}`, or a search of Patient
/// when the id is not known): the proof that a token works.
pub(super) async fn reads_patient(
    ctx: &RunContext,
    token: &Secret,
    patient: Option<&str>,
    context: &str,
    what: &str,
) -> Result<(), StepFailure> {
    let path = patient.map_or_else(
        || "Patient".to_owned(),
        |id| crate::payer::fhir::resource_path("Patient", id),
    );
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
    let reason = crate::payer::http::operation_outcome_text(&response.body)
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    Err(StepFailure::conformance(format!(
        "GET {path} with the {what} answered {}{reason}",
        response.status
    )))
}

// ---- what a scenario remembers between its steps ------------------------------------------

/// One refresh of the scenario: the scope asked for, the refresh token used, the answer.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub asked: Option<String>,
    pub used: Secret,
    pub answer: TokenAnswer,
}

impl Refreshed {
    /// The scope the answer grants: its `scope`, else (RFC 6749 §5.1: omitted when
    /// identical to the request) what was asked, else the grant's.
    pub(super) fn scope(&self, granted: &str) -> String {
        self.answer
            .fields
            .get("scope")
            .and_then(|s| s.as_str())
            .map(str::to_owned)
            .or_else(|| self.asked.clone())
            .unwrap_or_else(|| granted.to_owned())
    }
}

/// A search the scenario made, and what came back.
#[derive(Debug, Clone)]
pub struct Searched {
    pub kind: String,
    /// `(parameter, value)`; for an `_include` search, the include spec and no parameter.
    pub parameter: Option<Parameter>,
    pub value: String,
    /// The other parameters of a combined search (`patient+category`), with their values.
    pub more: Vec<(Parameter, String)>,
    /// The CapabilityStatement that asks for the search, for messages.
    pub cited: String,
    /// The id of the resource the value came from.
    pub source: Option<String>,
    /// Every entry of every page: `search.mode` (if any) and the resource.
    pub entries: Vec<(Option<String>, Value)>,
    /// Whether every page was read (a search cut at onramp's page cap cannot say what it
    /// did not find).
    pub complete: bool,
    /// For a search without a parameter: `_include` or `_revinclude`.
    pub including: &'static str,
}

impl Searched {
    /// The entries the server marked as matches (or left unmarked) of the searched type.
    pub(super) fn matches(&self) -> impl Iterator<Item = &Value> {
        crate::payer::search::matches(&self.kind, &self.entries)
    }
}

/// What a `When` step of this feature asked, for the `Then` after it.
#[derive(Debug)]
pub struct Asked {
    pub(super) kind: String,
    pub(super) way: Way,
    pub(super) probes: Vec<crate::run::records::Probe>,
    /// Why nothing was asked.
    pub(super) nothing: Option<String>,
}
