//! A failed step and whose fault it is, carried as a type from the step to the exit code.
//!
//! A step that fails raises its [`StepFailure`] as the panic payload cucumber catches
//! ([`verdict`]); the collector takes it back by type. Nothing is parsed out of a message.

use super::summary::FailureKind;

/// A failed step: the message, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl StepFailure {
    /// The target did something wrong.
    pub fn conformance(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Conformance,
            message: message.into(),
        }
    }

    /// onramp could not test: no browser, the target unreachable.
    pub fn environment(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Environment,
            message: message.into(),
        }
    }

    /// The features or the target configuration are wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Usage,
            message: message.into(),
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
