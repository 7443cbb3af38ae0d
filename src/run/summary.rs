//! `RunSummary`: everything a run found, in one serde model. Steps and the recorder fill
//! it; every output (summary.json now, the HTML report later) is rendered from it alone.
//! `schema_version` changes whenever a field changes meaning or disappears.

use serde::{Deserialize, Serialize};

use crate::evidence::{Exchange, Note, Screenshot};

/// Version of the summary's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every scenario passed.
    Passed,
    /// The target is not conformant: at least one check failed.
    Failed,
    /// onramp could not test (no browser, target unreachable, unmatched steps).
    Error,
    /// Stopped by Ctrl-C; what was recorded is kept.
    Interrupted,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Passed => crate::exit::OK,
            Outcome::Failed => crate::exit::FAILURES,
            Outcome::Error => crate::exit::ENVIRONMENT,
            Outcome::Interrupted => crate::exit::INTERRUPTED,
        }
    }
}

/// Whose fault a failed step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The target did something wrong.
    Conformance,
    /// onramp could not test.
    Environment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    /// `sandbox` or `remote`.
    pub kind: String,
    pub authorize_url: String,
    pub token_url: String,
    pub fhir_base: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub client_auth: String,
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    pub keyword: String,
    pub text: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub feature: String,
    pub name: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub duration_ms: u64,
    pub steps: Vec<StepSummary>,
}

/// A schema finding in a search result, with where it was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceFinding {
    pub page: usize,
    pub url: String,
    pub entry: Option<usize>,
    pub resource: Option<String>,
    pub path: String,
    pub pointer: String,
    pub keyword: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub count: usize,
    pub pages: usize,
    pub invalid: u64,
    pub findings: Vec<ResourceFinding>,
    /// Semantic problems (totals, duplicates, membership, references, pages).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// Why the search stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The token endpoint's answer, secrets left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub status: Option<u16>,
    pub token_type: Option<String>,
    pub expires_in: Option<serde_json::Value>,
    pub scope_requested: String,
    pub scope_granted: Option<String>,
    pub patient: Option<String>,
    pub cache_control: Option<String>,
    pub pragma: Option<String>,
    pub refreshed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub run_id: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub target: TargetInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub onramp_version: String,
    pub fhir_version: String,
    pub browser: Option<String>,
    pub scenarios: Vec<ScenarioSummary>,
    pub scenario_counts: Counts,
    pub step_counts: Counts,
    pub resources: Vec<ResourceResult>,
    pub token: Option<TokenSummary>,
    pub exchanges: Vec<Exchange>,
    pub screenshots: Vec<Screenshot>,
    pub notes: Vec<Note>,
    /// Harness problems outside any step (a file that could not be written, a parse error).
    pub errors: Vec<String>,
    /// The production-access checklist (every item missing when there is no manifest).
    pub checklist: crate::checklist::Checklist,
    /// The screenshots assembled into one animation, when there were any.
    pub recording: Option<Recording>,
}

/// The run's browser steps as one animated file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Path relative to the run's folder.
    pub file: String,
    /// `video/mp4` or `image/apng`.
    pub media_type: String,
    pub frames: usize,
}
