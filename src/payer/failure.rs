//! A "no" and whose fault it is ([`StepFailure`]): what every judgement of the protocol
//! client returns, what a step hands in, and what the collector records; carried as a type
//! from the judgement to the exit code, never parsed out of a message.

use crate::infra::fault::{FailureKind, Severity};

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

    /// The app under test did not do what the `@app` features ask of it.
    pub fn app(message: impl Into<String>) -> Self {
        Self::of(FailureKind::App, message)
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

    pub(crate) fn of(kind: FailureKind, message: impl Into<String>) -> Self {
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
