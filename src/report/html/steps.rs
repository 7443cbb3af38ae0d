//! The report's failures, warnings and features: every scenario and step, a failure open,
//! a skip collapsed with its reason a click away.

use serde::Serialize;

use super::format::seconds;
use crate::summary::{FailureKind, RunSummary, Status};

#[derive(Serialize)]
pub(super) struct FailureView<'a> {
    feature: &'a str,
    scenario: &'a str,
    keyword: &'a str,
    step: &'a str,
    message: &'a str,
    kind: &'static str,
    kind_label: &'static str,
}

#[derive(Serialize)]
pub(super) struct StepView<'a> {
    keyword: &'a str,
    text: &'a str,
    status: &'static str,
    duration: String,
    error: Option<&'a str>,
    /// `err` for a failure, `warn` for a SHOULD not met, `note` (neutral) for why a step
    /// was skipped.
    error_class: &'static str,
}

#[derive(Serialize)]
pub(super) struct ScenarioView<'a> {
    name: &'a str,
    /// Failed scenarios show their steps at once.
    open: bool,
    tags: String,
    status: &'static str,
    duration: String,
    steps: Vec<StepView<'a>>,
}

#[derive(Serialize)]
pub(super) struct FeatureView<'a> {
    name: &'a str,
    scenarios: Vec<ScenarioView<'a>>,
}

/// The features with their scenarios, and the failed and warned steps listed on their own.
pub(super) struct Steps<'a> {
    pub features: Vec<FeatureView<'a>>,
    pub failures: Vec<FailureView<'a>>,
    pub warnings: Vec<FailureView<'a>>,
}

pub(super) fn steps(summary: &RunSummary) -> Steps<'_> {
    let mut features: Vec<FeatureView<'_>> = Vec::new();
    let (mut failures, mut warnings) = (Vec::new(), Vec::new());
    for scenario in &summary.scenarios {
        for step in &scenario.steps {
            let Some(error) = &step.error else { continue };
            let (list, kind, kind_label) = match (step.status, step.failure) {
                (Status::Warning, _) => (
                    &mut warnings,
                    "warning",
                    "a SHOULD the target does not meet (the verdict stands)",
                ),
                (Status::Failed, Some(FailureKind::Environment)) => {
                    (&mut failures, "environment", "onramp could not test this")
                }
                (Status::Failed, Some(FailureKind::App)) => (
                    &mut failures,
                    "app",
                    "the app under test did not connect or show the member's data",
                ),
                (Status::Failed, Some(FailureKind::Usage)) => (
                    &mut failures,
                    "environment",
                    "the features or the target configuration need fixing",
                ),
                (Status::Failed, _) => {
                    (&mut failures, "conformance", "the target is not conformant")
                }
                (Status::Passed | Status::Skipped, _) => continue,
            };
            {
                list.push(FailureView {
                    feature: &scenario.feature,
                    scenario: &scenario.name,
                    keyword: &step.keyword,
                    step: &step.text,
                    message: error,
                    kind,
                    kind_label,
                });
            }
        }
        let view = ScenarioView {
            name: &scenario.name,
            // A failure is open; a skip is collapsed, its reason a click away.
            open: scenario.status == Status::Failed,
            tags: scenario.tags.join(" "),
            status: scenario.status.name(),
            duration: seconds(scenario.duration_ms),
            steps: scenario
                .steps
                .iter()
                .enumerate()
                .map(|(at, step)| StepView {
                    keyword: &step.keyword,
                    text: &step.text,
                    status: step.status.name(),
                    duration: seconds(step.duration_ms),
                    // A reason the step before gave already is not repeated.
                    error: step.error.as_deref().filter(|error| {
                        step.status == Status::Failed
                            || at == 0
                            || scenario.steps[at - 1].error.as_deref() != Some(*error)
                    }),
                    error_class: match step.status {
                        Status::Failed => "err",
                        Status::Warning => "warn",
                        Status::Passed | Status::Skipped => "note",
                    },
                })
                .collect(),
        };
        match features.iter_mut().find(|f| f.name == scenario.feature) {
            Some(feature) => feature.scenarios.push(view),
            None => features.push(FeatureView {
                name: &scenario.feature,
                scenarios: vec![view],
            }),
        }
    }
    Steps {
        features,
        failures,
        warnings,
    }
}
