//! `report.html`: one self-contained page rendered from the [`RunSummary`] with handlebars
//! (strict mode, templates and CSS from `reports/`, embedded at build time). Screenshots are
//! inlined as data URIs; the page loads nothing, runs no script, and its Content-Security-
//! Policy forbids both. Every value from the run goes through handlebars' escaping: a
//! resource named `<script>` shows as text.

mod checklist;
mod evidence;
mod exchanges;
mod format;
mod members;
mod resources;
mod steps;
mod token;

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde::Serialize;

use crate::summary::{Outcome, RunSummary};

const TEMPLATE: &str = include_str!("../../../reports/report.hbs");
const CSS: &str = include_str!("../../../reports/report.css");

/// Why the report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("the HTML report could not be rendered: {0}")]
pub struct RenderError(String);

/// The screenshots' bytes, by their file name in the summary.
pub type Images = BTreeMap<String, Vec<u8>>;

#[derive(Serialize)]
pub(crate) struct Verdict {
    label: &'static str,
    class: &'static str,
}

#[derive(Serialize)]
struct Counts {
    scenarios: usize,
    scenarios_passed: usize,
    steps: usize,
    steps_passed: usize,
    resources: usize,
    invalid: u64,
    exchanges: usize,
}

#[derive(Serialize)]
struct View<'a> {
    run_id: &'a str,
    verdict: Verdict,
    target: &'a crate::summary::TargetInfo,
    scopes: String,
    pkce: &'static str,
    faults: String,
    /// The tiers and profiles every resource was validated with.
    validation: String,
    started_at: String,
    finished_at: String,
    duration: String,
    onramp_version: &'a str,
    fhir_version: &'a str,
    browser: &'a str,
    counts: Counts,
    /// Each part of CMS-9115-F with its verdict.
    apis: Vec<ApiView<'a>>,
    failures: Vec<steps::FailureView<'a>>,
    warnings: Vec<steps::FailureView<'a>>,
    errors: &'a [String],
    features: Vec<steps::FeatureView<'a>>,
    screenshots: Vec<evidence::ShotView<'a>>,
    recording: Option<evidence::RecordingView<'a>>,
    resources: Vec<resources::ResourceView<'a>>,
    token: Option<token::TokenView<'a>>,
    exchanges: Vec<exchanges::ExchangeView<'a>>,
    checklist: checklist::ChecklistView<'a>,
    notes: &'a [crate::evidence::Note],
    /// The inline SVG of [`super::timeline::svg`], escaped there.
    timeline_svg: String,
    slowest: Vec<exchanges::SlowView<'a>>,
    members: Vec<members::MemberView<'a>>,
}

/// One API's verdict, as the report's first table shows it.
#[derive(Serialize)]
struct ApiView<'a> {
    title: &'a str,
    verdict: &'a str,
    class: &'static str,
    tally: String,
}

fn apis(summary: &RunSummary) -> Vec<ApiView<'_>> {
    summary
        .apis
        .iter()
        .map(|api| ApiView {
            title: &api.title,
            verdict: &api.verdict,
            class: match api.verdict.as_str() {
                "conformant" => "passed",
                "not conformant" => "failed",
                "not tested" => "skipped",
                _ => "warn",
            },
            tally: api.scenarios.tally(),
        })
        .collect()
}

pub(crate) fn verdict(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Passed => Verdict {
            label: "Conformant",
            class: "passed",
        },
        Outcome::Failed => Verdict {
            label: "Not conformant",
            class: "failed",
        },
        Outcome::AppFailed => Verdict {
            label: "Conformant, but the app failed",
            class: "failed",
        },
        Outcome::Error => Verdict {
            label: "Could not test everything",
            class: "error",
        },
        Outcome::Interrupted => Verdict {
            label: "Interrupted",
            class: "interrupted",
        },
    }
}

/// The page, section by section: each section is built in its own file from the summary.
fn view<'a>(summary: &'a RunSummary, images: &Images) -> View<'a> {
    let steps::Steps {
        features,
        failures,
        warnings,
    } = steps::steps(summary);
    View {
        run_id: &summary.run_id,
        verdict: if summary.outcome == Outcome::Error
            && summary.exit_code == crate::infra::exit::USAGE
        {
            // Not run as written: the payer was not judged.
            Verdict {
                label: "The features or the target do not fit",
                class: "error",
            }
        } else {
            verdict(summary.outcome)
        },
        target: &summary.target,
        scopes: summary.target.scopes.join(" "),
        pkce: if summary.target.pkce {
            "S256"
        } else {
            "not used"
        },
        faults: summary.target.faults.join(", "),
        validation: validation_line(&summary.target.validation),
        started_at: format::readable_time(&summary.started_at),
        finished_at: format::readable_time(&summary.finished_at),
        duration: format::seconds(summary.duration_ms),
        onramp_version: &summary.onramp_version,
        fhir_version: &summary.fhir_version,
        browser: summary.browser.as_deref().unwrap_or("no browser used"),
        counts: Counts {
            scenarios: summary.scenarios.len(),
            scenarios_passed: summary.scenario_counts.passed,
            steps: summary.step_counts.passed
                + summary.step_counts.failed
                + summary.step_counts.skipped,
            steps_passed: summary.step_counts.passed,
            resources: summary.resources.iter().map(|r| r.count).sum(),
            invalid: summary.resources.iter().map(|r| r.invalid).sum(),
            exchanges: summary.exchanges.len(),
        },
        apis: apis(summary),
        failures,
        warnings,
        errors: &summary.errors,
        features,
        screenshots: evidence::screenshots(summary, images),
        recording: evidence::recording(summary),
        resources: resources::resources(summary),
        token: token::token(summary),
        exchanges: exchanges::exchanges(summary),
        checklist: checklist::checklist(summary),
        notes: &summary.notes,
        timeline_svg: super::timeline::svg(&summary.timeline),
        slowest: exchanges::slowest(summary),
        members: members::members(summary),
    }
}

/// What the run validated with, in a line.
fn validation_line(validation: &crate::summary::ValidationInfo) -> String {
    let tiers = match validation.tier {
        crate::validate::Tier::Schema => "tier schema: the official R4 JSON Schema",
        crate::validate::Tier::Structure => {
            "tier structure: the official R4 JSON Schema and the R4 StructureDefinitions"
        }
        crate::validate::Tier::Profile => {
            "tier profile: the official R4 JSON Schema, the R4 StructureDefinitions and the IG profiles (CARIN Blue Button 2.0.0, US Core, Plan-Net, Drug Formulary, R4's own, and any loaded)"
        }
    };
    if validation.tier != crate::validate::Tier::Profile {
        return tiers.to_owned();
    }
    let profiles: Vec<&str> = validation
        .profiles
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    if profiles.is_empty() {
        format!("{tiers} that resources declare")
    } else {
        format!(
            "{tiers} that resources declare, and {} for every resource of its type",
            profiles.join(", ")
        )
    }
}

/// Every value put into the page: HTML-escaped, and its control characters (but line
/// breaks and tabs), line separators and bidirectional overrides written out as text
/// (`\u{1b}`), so that bytes from a payer or a file reach no one's terminal or editor raw.
fn escape(text: &str) -> String {
    let visible = if text.chars().any(|c| {
        (c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }) {
        text.split_inclusive(['\n', '\t', '\r'])
            .map(|part| {
                let (body, end) = match part.char_indices().last() {
                    Some((at, c @ ('\n' | '\t' | '\r'))) => (&part[..at], Some(c)),
                    _ => (part, None),
                };
                let mut out = crate::infra::text::inert(body).into_owned();
                out.extend(end);
                out
            })
            .collect()
    } else {
        text.to_owned()
    };
    handlebars::html_escape(&visible)
}

/// Render the report. Pure: the summary and the screenshots' bytes in, HTML out.
pub fn render(summary: &RunSummary, images: &Images) -> Result<String, RenderError> {
    render_page(TEMPLATE, &view(summary, images))
}

/// Render `template` (strict, with the report's CSS as the `css` partial) with `view`.
pub(crate) fn render_page(template: &str, view: &impl Serialize) -> Result<String, RenderError> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape);
    registry
        .register_partial("css", CSS)
        .map_err(|e| RenderError(e.to_string()))?;
    registry
        .register_template_string("page", template)
        .map_err(|e| RenderError(e.to_string()))?;
    registry
        .render("page", view)
        .map_err(|e| RenderError(e.to_string()))
}

#[cfg(test)]
mod escape_tests {
    /// Control bytes from a payer or a file reach the page as text, never raw; line breaks,
    /// tabs and ordinary text are as they were.
    #[test]
    fn values_reach_the_page_inert() {
        let html = super::render_page(
            "{{x}}|{{y}}",
            &serde_json::json!({
                "x": "a\u{1b}[2Jb\u{7}\u{1b}]0;owned\u{7}\nnext\tline\u{2028}<b>",
                "y": "plain <i>text</i>\nwith a line"
            }),
        )
        .expect("renders");
        assert!(
            !html
                .chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{2028}'),
            "{html:?}"
        );
        assert!(html.contains("a\\u{1b}[2Jb\\u{7}"), "{html}");
        assert!(html.contains("\nnext\tline\\u{2028}&lt;b&gt;"), "{html}");
        assert!(
            html.ends_with("|plain &lt;i&gt;text&lt;/i&gt;\nwith a line"),
            "{html}"
        );
    }
}
