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

use crate::summary::{FailureKind, Severity};

/// A failed step: the message, whose fault it is, and how much it weighs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub kind: FailureKind,
    pub message: String,
    pub severity: Severity,
}

impl StepFailure {
    /// The target did something wrong.
    pub fn conformance(message: impl Into<String>) -> Self {
        Self::of(FailureKind::Conformance, message)
    }

    /// The target misses a SHOULD: reported, but the verdict stands.
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::of(FailureKind::Conformance, message)
        }
    }

    /// onramp could not test: no browser, the target unreachable.
    pub fn environment(message: impl Into<String>) -> Self {
        Self::of(FailureKind::Environment, message)
    }

    /// The features or the target configuration are wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::of(FailureKind::Usage, message)
    }

    /// No usable answer came (see [`crate::payer::http::HttpError`]): onramp could not test, or,
    /// when the request was not even sent because its origin failed earlier, the step's
    /// premise failed and it is skipped.
    pub fn from_http(error: &crate::payer::http::HttpError) -> Self {
        if error.is_skip() {
            Self::blocked(error.to_string())
        } else {
            Self::environment(error.to_string())
        }
    }

    /// A search's failure, with its kind.
    pub fn from_search(failure: &crate::payer::fhir::SearchFailure) -> Self {
        Self::of(failure.kind, failure.message.clone())
    }

    /// A step that needs what `earlier` failed to give: skipped, saying what it lacks
    /// (`what`) and why, in the first line of the earlier failure.
    pub fn premise(what: &str, earlier: &StepFailure) -> Self {
        if earlier.kind == FailureKind::Blocked {
            return earlier.clone();
        }
        let first = earlier.message.lines().next().unwrap_or_default();
        let whose = match earlier.kind {
            FailureKind::Environment => "onramp could not test",
            FailureKind::Usage => "the features or the target do not fit",
            _ => "it failed",
        };
        Self::blocked(format!("{what}: an earlier step failed ({whose}): {first}"))
    }

    /// The check cannot run because what it needs failed earlier; `message` says what.
    pub fn blocked(message: impl Into<String>) -> Self {
        Self::of(FailureKind::Blocked, message)
    }

    fn of(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            severity: Severity::Error,
        }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepFailure {}

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
