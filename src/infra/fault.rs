//! Whose fault a "no" is: the payer broke a cited rule (conformance), onramp could not test
//! (environment), the user's setup is wrong (usage), the app under test did not connect or
//! show the member's data (app), or an earlier failure left nothing to judge (blocked). Every layer speaks this vocabulary, from the protocol client's answers to
//! the exit code, so it lives below all of them.

use serde::{Deserialize, Serialize};

/// Whose fault a failed step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The target did something wrong.
    Conformance,
    /// onramp could not test: no browser, the target unreachable.
    Environment,
    /// The features or the target configuration are wrong (a step no definition matches,
    /// a `${member.…}` the target lacks).
    Usage,
    /// The app under test (driven by the `@app` features) did not connect to the payer or
    /// did not show the member's data: its own verdict, never the payer's.
    App,
    /// The check could not run because something it needs failed earlier (reported as
    /// skipped, with the reason).
    Blocked,
}

/// How much a failed check weighs: a MUST broken is an error; a SHOULD, a warning that
/// does not change the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}
