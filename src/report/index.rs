//! The outputs of a run over several targets, beside each target's own folder:
//! `index.html` (one row per target, linking its report), `junit.xml` (one testsuite per
//! target) and `summary.json` (each target's outcome). Rendered from the targets'
//! summaries alone.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReportError;
use super::html::{RenderError, Verdict, verdict};
use crate::summary::{Outcome, RunSummary};

const TEMPLATE: &str = include_str!("../../reports/index.hbs");

/// Version of the combined summary's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// One target of a run over several.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetOutcome {
    /// As `--target` named it.
    pub target: String,
    /// Its name in its summary (or the `--target` text when it never ran).
    pub name: String,
    /// Its folder, relative to the index.
    pub dir: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub duration_ms: u64,
    pub scenarios: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Why it could not run or report, when it could not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The combined `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Combined {
    pub schema_version: u32,
    pub run_id: String,
    /// The worst of the targets' outcomes, and its exit code.
    pub outcome: Outcome,
    pub exit_code: u8,
    pub started_at: String,
    pub duration_ms: u64,
    pub jobs: usize,
    pub onramp_version: String,
    /// The signal that stopped the run (`SIGINT`, `SIGTERM`, `SIGHUP`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    pub targets: Vec<TargetOutcome>,
}

/// How bad an exit code is: usage errors first (nothing meaningful ran), then the
/// environment, then conformance failures; a signal outranks them all.
fn rank(code: u8) -> u8 {
    match code {
        crate::infra::exit::OK => 0,
        crate::infra::exit::FAILURES => 1,
        crate::infra::exit::ENVIRONMENT => 2,
        crate::infra::exit::USAGE => 3,
        _ => 4,
    }
}

/// The worst of `outcomes`: its outcome and exit code.
pub fn worst(outcomes: &[TargetOutcome]) -> (Outcome, u8) {
    outcomes
        .iter()
        .max_by_key(|t| rank(t.exit_code))
        .map_or((Outcome::Error, crate::infra::exit::USAGE), |t| {
            (t.outcome, t.exit_code)
        })
}

impl TargetOutcome {
    /// A target that ran, from its summary.
    pub fn of(target: &str, dir: &str, summary: &RunSummary) -> Self {
        let counts = &summary.scenario_counts;
        Self {
            target: target.to_owned(),
            name: summary.target.name.clone(),
            dir: dir.to_owned(),
            outcome: summary.outcome,
            exit_code: summary.exit_code,
            duration_ms: summary.duration_ms,
            scenarios: summary.scenarios.len(),
            passed: counts.passed + counts.warnings,
            failed: counts.failed,
            skipped: counts.skipped,
            errors: summary.errors.clone(),
        }
    }
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    kind: &'a str,
    persona: Option<&'a str>,
    fhir_base: &'a str,
    verdict: Verdict,
    exit_code: u8,
    scenarios: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    duration: String,
    dir: &'a str,
    problems: &'a [String],
}

#[derive(Serialize)]
struct View<'a> {
    count: usize,
    verdict: Verdict,
    started_at: &'a str,
    duration: String,
    onramp_version: &'a str,
    jobs: usize,
    run_id: &'a str,
    targets: Vec<Row<'a>>,
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// `index.html`. `summaries` holds each target's summary, where it ran.
pub fn render(
    combined: &Combined,
    summaries: &[Option<&RunSummary>],
) -> Result<String, RenderError> {
    let rows = combined
        .targets
        .iter()
        .zip(summaries)
        .map(|(t, summary)| Row {
            name: &t.name,
            kind: summary.map_or("not run", |s| s.target.kind.as_str()),
            persona: summary.and_then(|s| s.target.persona.as_deref()),
            fhir_base: summary.map_or("", |s| s.target.fhir_base.as_str()),
            verdict: verdict(t.outcome),
            exit_code: t.exit_code,
            scenarios: t.scenarios,
            passed: t.passed,
            failed: t.failed,
            skipped: t.skipped,
            duration: seconds(t.duration_ms),
            dir: &t.dir,
            problems: &t.errors,
        })
        .collect();
    let view = View {
        count: combined.targets.len(),
        verdict: verdict(combined.outcome),
        started_at: &combined.started_at,
        duration: seconds(combined.duration_ms),
        onramp_version: &combined.onramp_version,
        jobs: combined.jobs,
        run_id: &combined.run_id,
        targets: rows,
    };
    super::html::render_page(TEMPLATE, &view)
}

/// Write `index.html`, `junit.xml` and `summary.json` into `dir`; the files written.
pub fn write(
    dir: &Path,
    combined: &Combined,
    summaries: &[Option<&RunSummary>],
) -> Result<Vec<String>, ReportError> {
    let mut files = Vec::new();
    let json = crate::infra::json::to_vec_pretty(combined).unwrap_or_default();
    super::write(dir, "summary.json", &json, &mut files)?;
    let suites: Vec<(&str, &RunSummary)> = combined
        .targets
        .iter()
        .zip(summaries)
        .filter_map(|(t, s)| Some((t.dir.as_str(), (*s)?)))
        .collect();
    super::write(
        dir,
        "junit.xml",
        super::junit::render_many(&suites).as_bytes(),
        &mut files,
    )?;
    let html = render(combined, summaries)?;
    super::write(dir, "index.html", html.as_bytes(), &mut files)?;
    Ok(files)
}
