//! Gherkin step definitions, one file per shipped feature (`discovery.rs` binds
//! `discovery.feature`, and so on: the names repeat those of the protocol modules that judge
//! the same things, on purpose). Steps are thin: read the step's parameters, call the run
//! context (browser, OAuth, FHIR, validation) or a judgement of [`crate::payer`], record
//! what happened in the [`OnrampWorld`] and hand the verdict in ([`world::check`] for a
//! `Then`, [`crate::run::verdict`] for a `Given`/`When`): a [`crate::run::StepFailure`] says
//! whose fault a failure is, and travels to the exit code as a type.
//!
//! This is the top of the run: [`crate::run`] executes any [`crate::run::Steps`], and the
//! command line names these.

mod access;
mod app;
mod books;
mod carin;
mod clinical;
mod code;
mod discovery;
mod isolation;
mod openid;
mod refresh;
mod resources;
mod revocation;
mod signin;
mod token;
mod world;

use std::sync::Arc;

pub use world::OnrampWorld;

use crate::run::context::RunContext;
use crate::run::{ScenarioKey, Steps};

impl Steps for OnrampWorld {
    fn enter(&mut self, ctx: Arc<RunContext>, scenario: ScenarioKey) {
        self.ctx = Some(ctx);
        self.scenario = Some(scenario);
    }

    fn sign_in() -> (regex::Regex, cucumber::Step<Self>) {
        (signin::step_pattern(), signin::sign_in_step)
    }
}
