//! A failed step and whose fault it is, carried as a type from the step to the exit code.
//!
//! A step that sets something up (`Given`, `When`) and fails raises its [`StepFailure`] as
//! the panic payload cucumber catches ([`verdict`]): the steps after it cannot run. A check
//! (`Then`) that fails hands its failure to the collector through [`Verdicts`] instead and
//! lets the scenario go on, so that one failed check never hides the independent ones
//! after it. Either way the collector takes the failure back by type; nothing is parsed out
//! of a message.

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::payer::failure::StepFailure;

/// A step's result as cucumber's verdict: `Err` fails the step with the failure itself as
/// the payload, so its kind arrives intact.
pub fn verdict(result: Result<(), StepFailure>) {
    if let Err(failure) = result {
        std::panic::panic_any(failure);
    }
}

/// Where a scenario is: its feature file and its line (an expanded Scenario Outline row has
/// a line of its own).
pub type ScenarioKey = (String, usize);

/// A step of a scenario: the scenario's key and the step's line.
pub type StepKey = (ScenarioKey, usize);

/// The failures of checks that let their scenario go on, from the step to the collector,
/// which learns that the step ended only later (cucumber's events travel on their own).
#[derive(Debug, Default)]
pub struct Verdicts {
    pending: Mutex<HashMap<StepKey, StepFailure>>,
}

impl Verdicts {
    /// The check at `step` failed.
    pub fn fail(&self, step: StepKey, failure: StepFailure) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(step, failure);
    }

    /// How the check at `step` went, if it failed.
    pub fn take(&self, step: &StepKey) -> Option<StepFailure> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(step)
    }
}
