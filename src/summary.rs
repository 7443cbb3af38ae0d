//! `RunSummary`: everything a run found, in one serde model. Steps and the recorder fill
//! it; every output (summary.json now, the HTML report later) is rendered from it alone.
//! `schema_version` changes whenever a field changes meaning or disappears.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::infra::fault::{FailureKind, Severity};

use crate::evidence::{BrowserAction, Exchange, Note, Screenshot};

/// Version of the summary's shape (2: scenarios and steps carry their file and line, the
/// failure kind `usage`, and `problems`/`notes` per type come from the checks as they ran;
/// 3: a step's `severity`, the status `warning`, the failure kind `blocked` and
/// `warnings` in the counts).
pub const SCHEMA_VERSION: u32 = 3;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every scenario passed.
    Passed,
    /// The target is not conformant: at least one check failed.
    Failed,
    /// The payer's checks passed, but the app under test (the `@app` features) failed.
    #[serde(rename = "app_failed")]
    AppFailed,
    /// onramp could not test everything: the environment (exit 3) or the features and the
    /// target configuration (exit 2) kept it from it.
    Error,
    /// Stopped by Ctrl-C; what was recorded is kept.
    Interrupted,
}

impl Outcome {
    /// How the terminal says it, and its ANSI colour.
    pub fn verdict(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Passed => ("conformant", "1;32"),
            Outcome::Failed => ("NOT conformant", "1;31"),
            Outcome::AppFailed => ("conformant, but the app failed", "1;31"),
            Outcome::Error => ("could not test everything", "1;33"),
            Outcome::Interrupted => ("interrupted", "1;33"),
        }
    }

    /// How a run ended and its exit code, from the kinds of its failed steps and whether
    /// anything went wrong outside a step. Usage problems come first (fix the features or
    /// the target before anything else), then the environment, then the target.
    pub fn decide(
        interrupted: Option<crate::infra::stop::Stop>,
        failures: &[FailureKind],
        harness_errors: bool,
        ran_nothing: bool,
    ) -> (Outcome, u8) {
        if let Some(stop) = interrupted {
            (Outcome::Interrupted, stop.exit_code())
        } else if failures.contains(&FailureKind::Usage) {
            (Outcome::Error, crate::infra::exit::USAGE)
        } else if harness_errors || failures.contains(&FailureKind::Environment) {
            (Outcome::Error, crate::infra::exit::ENVIRONMENT)
        } else if !failures.is_empty() && failures.iter().all(|k| *k == FailureKind::App) {
            (Outcome::AppFailed, crate::infra::exit::FAILURES)
        } else if !failures.is_empty() {
            (Outcome::Failed, crate::infra::exit::FAILURES)
        } else if ran_nothing {
            (Outcome::Error, crate::infra::exit::USAGE)
        } else {
            (Outcome::Passed, crate::infra::exit::OK)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// A SHOULD the target does not meet.
    Warning,
    Skipped,
}

impl Status {
    /// The name summary.json gives it (`passed`, `failed`, `warning`, `skipped`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Warning => "warning",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    /// `sandbox` or `remote`.
    pub kind: String,
    /// The sandbox's persona, when the target is the sandbox.
    pub persona: Option<String>,
    /// Which features ran: a folder, or the shipped ones with their sign-in.
    pub features: String,
    pub authorize_url: String,
    pub token_url: String,
    pub fhir_base: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub client_auth: String,
    pub faults: Vec<String>,
    /// The tiers every resource read was validated with, and the profiles applied to every
    /// resource of their type.
    #[serde(default)]
    pub validation: ValidationInfo,
    /// The payer's onboarding contacts (the target's `[payer]`).
    #[serde(default)]
    pub payer: crate::config::PayerContacts,
    /// Where the Provider Directory API is, when the target has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// Where the drug formulary is, when the target has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formulary: Option<String>,
}

/// How the run validated what it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationInfo {
    pub tier: crate::validate::Tier,
    pub profiles: Vec<String>,
}

impl Default for ValidationInfo {
    fn default() -> Self {
        Self {
            tier: crate::validate::Tier::Schema,
            profiles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    pub keyword: String,
    pub text: String,
    pub line: usize,
    pub status: Status,
    /// When the step started, in milliseconds since the run's time zero.
    #[serde(default)]
    pub start_ms: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// For a step that did not pass: `error` (a MUST) or `warning` (a SHOULD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// The part of CMS-9115-F a result is about: the Patient Access API (the member's claims
/// and clinical data, behind their sign-in), the Provider Directory API, or the drug
/// formulary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    #[default]
    PatientAccess,
    ProviderDirectory,
    DrugFormulary,
}

impl Api {
    pub const ALL: [Api; 3] = [
        Api::PatientAccess,
        Api::ProviderDirectory,
        Api::DrugFormulary,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::PatientAccess => "Patient Access API",
            Self::ProviderDirectory => "Provider Directory API",
            Self::DrugFormulary => "Drug Formulary",
        }
    }

    /// The API a scenario is about, by its feature's tags (`@directory`, `@formulary`).
    pub fn of_tags(tags: &[String]) -> Api {
        let tagged = |name: &str| tags.iter().any(|t| t.trim_start_matches('@') == name);
        if tagged("directory") {
            Self::ProviderDirectory
        } else if tagged("formulary") {
            Self::DrugFormulary
        } else {
            Self::PatientAccess
        }
    }

    /// The API of one of the public books.
    pub fn of_book(book: crate::payer::public::Book) -> Api {
        match book {
            crate::payer::public::Book::Directory => Self::ProviderDirectory,
            crate::payer::public::Book::Formulary => Self::DrugFormulary,
        }
    }

    pub fn is_patient_access(&self) -> bool {
        *self == Self::PatientAccess
    }
}

/// One API's verdict: what the reviewer of each part of CMS-9115-F reads first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiVerdict {
    pub api: Api,
    pub title: String,
    /// `conformant`, `not conformant`, `could not test`, `usage error` or `not tested`
    /// (every scenario skipped, as when the target names no such API).
    pub verdict: String,
    pub scenarios: Counts,
}

impl ApiVerdict {
    /// The verdict of each API some scenario of `scenarios` is about.
    pub fn of(scenarios: &[ScenarioSummary]) -> Vec<ApiVerdict> {
        let mut out = Vec::new();
        for api in Api::ALL {
            let theirs: Vec<&ScenarioSummary> = scenarios
                .iter()
                .filter(|s| Api::of_tags(&s.tags) == api)
                .collect();
            if theirs.is_empty() {
                continue;
            }
            let mut counts = Counts::default();
            for scenario in &theirs {
                match scenario.status {
                    Status::Passed => counts.passed += 1,
                    Status::Failed => counts.failed += 1,
                    Status::Warning => counts.warnings += 1,
                    Status::Skipped => counts.skipped += 1,
                }
            }
            let failed = |kind: FailureKind| {
                theirs
                    .iter()
                    .flat_map(|s| &s.steps)
                    .any(|step| step.status == Status::Failed && step.failure == Some(kind))
            };
            let verdict = if failed(FailureKind::Conformance) {
                "not conformant"
            } else if failed(FailureKind::Environment) {
                "could not test"
            } else if failed(FailureKind::Usage) {
                "usage error"
            } else if counts.passed + counts.warnings == 0 {
                "not tested"
            } else {
                "conformant"
            };
            out.push(ApiVerdict {
                api,
                title: api.title().to_owned(),
                verdict: verdict.to_owned(),
                scenarios: counts,
            });
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub feature: String,
    /// The feature file, as the run named it (`features/token.feature`).
    pub file: String,
    pub name: String,
    pub line: usize,
    pub tags: Vec<String>,
    pub status: Status,
    /// When the scenario started, in milliseconds since the run's time zero.
    #[serde(default)]
    pub start_ms: u64,
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
    /// `schema`, `structure` or `profile`.
    #[serde(default = "schema_tier")]
    pub tier: crate::validate::Tier,
    /// The rule's stable id (`cardinality`, `binding`, `invariant:per-1`, ...).
    #[serde(default)]
    pub rule: String,
    /// For profile findings: the profile's canonical URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

fn schema_tier() -> crate::validate::Tier {
    crate::validate::Tier::Schema
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceResult {
    #[serde(rename = "type")]
    pub kind: String,
    /// The API it was read from (omitted for the Patient Access API).
    #[serde(default, skip_serializing_if = "Api::is_patient_access")]
    pub api: Api,
    pub count: usize,
    pub pages: usize,
    pub invalid: u64,
    pub findings: Vec<ResourceFinding>,
    /// What the checks of this type found, as their steps judged it (totals, duplicates,
    /// membership, references, pages).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// Why the search stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Where the search's time went.
    #[serde(default)]
    pub timing: SearchTiming,
    /// Constraints that applied but could not be evaluated here, with how often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_evaluated: BTreeMap<String, u64>,
    /// Profiles resources declared that onramp does not check (another IG or CARIN version,
    /// or no version), with how many resources declared each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles_not_checked: BTreeMap<String, u64>,
    /// How many findings of each rule each tier made (`{"structure": {"binding": 3}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finding_counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Must-support coverage per profile URL: how many of the resources checked against it
    /// carry each of its must-support elements.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub must_support: BTreeMap<String, crate::validate::must_support::Coverage>,
    /// Findings counted past the cap of a page (a few broken giants), not listed.
    #[serde(default, skip_serializing_if = "crate::infra::json::is_zero")]
    pub findings_not_listed: u64,
}

/// Findings counted by tier and rule.
pub fn finding_counts(findings: &[ResourceFinding]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for finding in findings {
        let rule = if finding.rule.is_empty() {
            &finding.keyword
        } else {
            &finding.rule
        };
        *counts
            .entry(finding.tier.name().to_owned())
            .or_default()
            .entry(rule.clone())
            .or_default() += 1;
    }
    counts
}

/// Where a search's time went, in milliseconds: waiting for pages (the server's time and
/// the network's), parsing them, and validating and reducing their entries (overlapped
/// with fetching the next page, so the parts add up to more than the search took).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchTiming {
    pub fetch_ms: u64,
    pub parse_ms: u64,
    pub check_ms: u64,
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
    #[serde(default)]
    pub warnings: usize,
    pub skipped: usize,
}

impl Counts {
    /// `N passed, M failed` and `, K skipped` when any were, as the verdict lines say it.
    pub fn tally(&self) -> String {
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        format!("{} passed, {} failed{skipped}", self.passed, self.failed)
    }
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub run_id: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`, `SIGHUP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    pub target: TargetInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub onramp_version: String,
    pub fhir_version: String,
    pub browser: Option<String>,
    pub scenarios: Vec<ScenarioSummary>,
    /// Each API's verdict (Patient Access, Provider Directory, Drug Formulary), for the
    /// APIs some scenario is about.
    #[serde(default)]
    pub apis: Vec<ApiVerdict>,
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
    /// The app under test's pages (the `@app` scenarios) as one animation: the screen
    /// recording the payer asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_recording: Option<Recording>,
    /// What the browser was made to do in the sign-ins, timed.
    #[serde(default)]
    pub browser_actions: Vec<BrowserAction>,
    /// Every feature, scenario, step, browser action and exchange on one time axis.
    #[serde(default)]
    pub timeline: Timeline,
    /// Every member the target lists, when the `@isolation` checks signed them in: who
    /// they are, and what the other members' tokens got of their data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberSummary>,
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

/// One member of the target, as the `@isolation` checks saw them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemberSummary {
    pub label: String,
    /// Their Patient id, once known.
    pub patient: Option<String>,
    /// Why they have no token (their sign-in or code exchange failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// How many resources of each type their own token was served.
    pub resources: Vec<MemberResources>,
    /// Requests the other members' tokens made for this member's data, and how many were
    /// refused (4xx) or answered without it.
    pub asked: usize,
    pub refused: usize,
    pub answered_without: usize,
    /// Answers to another member's token that held this member's data.
    pub leaks: Vec<MemberLeak>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemberResources {
    pub kind: String,
    pub count: usize,
}

/// One answer that served a member's data to another member's token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemberLeak {
    /// The label of the member whose token asked.
    pub reader: String,
    pub kind: String,
    pub way: String,
    pub url: String,
    pub status: Option<u16>,
    pub resources: Vec<String>,
}

// ---- the timeline: where a run's time went ------------------------------------------------
//
// Every feature, scenario, step, browser action and HTTP exchange as a span on one time axis
// (milliseconds since the run's time zero), and the slowest exchanges named; built by
// [`crate::run::summarize`] from the summary's own records, drawn by report.html.

/// How many of the slowest exchanges are named.
pub const SLOWEST: usize = 5;

/// The run on one time axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The axis' length: the end of the last span.
    pub duration_ms: u64,
    pub spans: Vec<Span>,
    /// The slowest HTTP exchanges, slowest first.
    pub slowest: Vec<Slow>,
}

/// Which row of the timeline a span belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Feature,
    Scenario,
    Step,
    Browser,
    Http,
}

/// One thing that took time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub lane: Lane,
    pub label: String,
    pub start_ms: u64,
    pub duration_ms: u64,
    /// `passed`, `failed`, `warning` or `skipped` for features, scenarios and steps; `ok`
    /// or `failed` for browser actions; for HTTP `ok` (1xx–3xx), `client-error` (4xx, often
    /// what a negative check asked for), `server-error` (5xx) or `failed` (no answer).
    pub status: String,
    /// The exchange's `index` in `exchanges`, for HTTP spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<usize>,
}

/// One of the slowest exchanges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slow {
    /// The exchange's `index` in `exchanges`.
    pub exchange: usize,
    /// `GET /fhir/ExplanationOfBenefit?patient=…`: method, path and query.
    pub label: String,
    pub context: String,
    pub duration_ms: u64,
}

/// An exchange's method and where it went, without scheme and host: every exchange of a
/// run goes to the same few servers, the path is what tells them apart.
pub fn exchange_label(exchange: &Exchange) -> String {
    let place = match url::Url::parse(&exchange.url) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => exchange.url.clone(),
    };
    format!("{} {place}", exchange.method)
}
