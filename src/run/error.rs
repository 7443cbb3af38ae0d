//! Why a run could not start or could not write its report, and the exit code each means
//! (a run that starts always builds a [`crate::summary::RunSummary`]).

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::features::FeaturesError;
use crate::summary::RunSummary;

/// Why a run could not start, or could not write its report. (A run that starts always
/// builds a [`RunSummary`].)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Features(#[from] FeaturesError),
    #[error("{} of the features {} no step definition (nothing was run):\n{}", crate::infra::words::plural(steps.len(), "step"), if steps.len() == 1 { "has" } else { "have" }, steps.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n"))]
    Unbound { steps: Vec<Unbound> },
    #[error("the sign-in needs a browser, and none can start (nothing was run)")]
    Tools(#[source] crate::browser::BrowserError),
    #[error("--tags {tags:?} is not a tag expression: {reason}")]
    Tags { tags: String, reason: String },
    #[error(
        "--sandbox-fault applies to the embedded sandbox, but the target {target} is a remote environment"
    )]
    FaultsNeedSandbox { target: String },
    #[error("{source_file}: {message}")]
    Member {
        source_file: String,
        message: String,
    },
    #[error("cannot create the report folder {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox did not start")]
    Sandbox(#[source] crate::sandbox::SandboxError),
    #[error("no loopback port is free for the redirect URI")]
    NoLoopbackPort,
    #[error("the sandbox's endpoint {url} is not a URL")]
    SandboxUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("cannot make the HTTP client")]
    Http(#[source] crate::payer::http::HttpError),
    #[error("cannot make the OAuth client")]
    OAuth(#[source] crate::payer::oauth::OAuthConfigError),
    #[error(transparent)]
    Profile(#[from] crate::validate::UnknownProfile),
    #[error(transparent)]
    Recording(#[from] crate::report::recording::NeedsFfmpeg),
    #[error("cannot start {what} for the run")]
    Start {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("onramp failed during this target's run; this is a defect in onramp: please report it")]
    Crashed,
    #[error("--target {target}: {error}")]
    OneOf {
        target: String,
        error: Box<RunError>,
    },
    #[error("the run finished ({outcome}) but its report in {dir} could not be written")]
    Report {
        outcome: String,
        dir: PathBuf,
        #[source]
        source: crate::report::ReportError,
    },
}

impl RunError {
    /// The exit code: configuration and usage problems are 2, the rest 3.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::OneOf { error, .. } => error.exit_code(),
            RunError::Config(_)
            | RunError::Unbound { .. }
            | RunError::Features(_)
            | RunError::Tags { .. }
            | RunError::Member { .. }
            | RunError::FaultsNeedSandbox { .. }
            | RunError::Recording(_)
            | RunError::Profile(_)
            | RunError::Sandbox(crate::sandbox::SandboxError::Data(_)) => crate::infra::exit::USAGE,
            RunError::Output { .. }
            | RunError::Tools(_)
            | RunError::Sandbox(_)
            | RunError::NoLoopbackPort
            | RunError::SandboxUrl { .. }
            | RunError::Http(_)
            | RunError::OAuth(_)
            | RunError::Start { .. }
            | RunError::Crashed
            | RunError::Report { .. } => crate::infra::exit::ENVIRONMENT,
        }
    }
}

/// A finished run: its summary and where the report went.
#[derive(Debug)]
pub struct RunReport {
    pub summary: RunSummary,
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
}

/// A step of the features no definition matches (or more than one does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbound {
    /// `features/x.feature:12`.
    pub at: String,
    /// The step as written, keyword first.
    pub step: String,
    /// Why: no definition, or several.
    pub why: String,
    /// The known steps closest to it, as people write them.
    pub closest: Vec<String>,
}

impl std::fmt::Display for Unbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.at, self.step, self.why)?;
        if !self.closest.is_empty() {
            write!(f, "; did you mean: {}", self.closest.join(" | "))?;
        }
        Ok(())
    }
}
