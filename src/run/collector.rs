//! A cucumber writer that turns the run's events into scenario and step summaries, next to
//! cucumber's own terminal, JUnit and JSON writers. It only listens: it writes no output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use cucumber::event::{self, Cucumber, Feature, Rule, Scenario, Step, StepError};
use cucumber::gherkin;
use cucumber::{Event, World, Writer, parser, writer};

use super::StepFailure;
use super::summary::{FailureKind, ScenarioSummary, Status, StepSummary};

/// What the collector gathered.
#[derive(Debug, Default)]
pub struct Collected {
    pub scenarios: Vec<ScenarioSummary>,
    /// Features that failed to parse, hook failures.
    pub errors: Vec<String>,
    open: HashMap<(String, usize), Open>,
}

#[derive(Debug)]
struct Open {
    summary: ScenarioSummary,
    started: SystemTime,
    step_started: SystemTime,
    definition: gherkin::Scenario,
}

/// The writer; clone the handle to read what it gathered after the run.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    pub collected: Arc<Mutex<Collected>>,
}

impl writer::NonTransforming for Collector {}

fn millis(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A scenario's name with its Examples row filled in (`<type>` → `Coverage`).
fn scenario_name(scenario: &gherkin::Scenario) -> String {
    let mut name = scenario.name.clone();
    if let Some(table) = scenario.examples.first().and_then(|e| e.table.as_ref())
        && let [header, values, ..] = table.rows.as_slice()
    {
        for (key, value) in header.iter().zip(values) {
            name = name.replace(&format!("<{key}>"), value);
        }
    }
    name
}

/// Read a failed step's message and whose fault it is.
fn failure_of(error: &StepError) -> (String, FailureKind) {
    match error {
        StepError::NotFound => (
            "no step definition matches this text; check the wording against the shipped features"
                .into(),
            FailureKind::Environment,
        ),
        StepError::AmbiguousMatch(e) => (
            format!("more than one step definition matches: {e}"),
            FailureKind::Environment,
        ),
        StepError::Panic(info) => {
            let text = info
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the step failed".into());
            let kind = StepFailure::kind_of_message(&text);
            (text, kind)
        }
    }
}

impl Collector {
    fn scenario_event<W>(
        &self,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        event: Scenario<W>,
        at: SystemTime,
    ) {
        let mut collected = self.collected.lock().unwrap_or_else(|p| p.into_inner());
        let key = (feature.name.clone(), scenario.position.line);
        match event {
            Scenario::Started => {
                let summary = ScenarioSummary {
                    feature: feature.name.clone(),
                    name: scenario_name(scenario),
                    tags: feature
                        .tags
                        .iter()
                        .chain(&scenario.tags)
                        .map(|t| format!("@{t}"))
                        .collect(),
                    status: Status::Passed,
                    duration_ms: 0,
                    steps: Vec::new(),
                };
                collected.open.insert(
                    key,
                    Open {
                        summary,
                        started: at,
                        step_started: at,
                        definition: scenario.clone(),
                    },
                );
            }
            Scenario::Step(step, event) | Scenario::Background(step, event) => {
                let Some(open) = collected.open.get_mut(&key) else {
                    return;
                };
                match event {
                    Step::Started => open.step_started = at,
                    Step::Passed(..) | Step::Skipped | Step::Failed(..) => {
                        let (status, error, failure) = match &event {
                            Step::Passed(..) => (Status::Passed, None, None),
                            Step::Skipped => (
                                Status::Skipped,
                                Some("no step definition matches this text".to_owned()),
                                Some(FailureKind::Environment),
                            ),
                            Step::Failed(_, _, _, error) => {
                                let (message, kind) = failure_of(error);
                                (Status::Failed, Some(message), Some(kind))
                            }
                            Step::Started => unreachable!("matched above"),
                        };
                        if status != Status::Passed {
                            open.summary.status = Status::Failed;
                        }
                        open.summary.steps.push(StepSummary {
                            keyword: step.keyword.trim().to_owned(),
                            text: step.value.clone(),
                            status,
                            duration_ms: millis(open.step_started, at),
                            error,
                            failure,
                        });
                    }
                }
            }
            Scenario::Hook(kind, event::Hook::Failed(_, info)) => {
                let text = info
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("the {kind:?} hook failed"));
                collected.errors.push(text);
                if let Some(open) = collected.open.get_mut(&key) {
                    open.summary.status = Status::Failed;
                }
            }
            Scenario::Hook(..) | Scenario::Log(_) => {}
            Scenario::Finished => {
                let Some(mut open) = collected.open.remove(&key) else {
                    return;
                };
                // Steps after a failure never ran: list them as skipped.
                let ran = open.summary.steps.len();
                let defined = open.definition.steps.len();
                for step in open.definition.steps.iter().skip(ran.min(defined)) {
                    open.summary.steps.push(StepSummary {
                        keyword: step.keyword.trim().to_owned(),
                        text: step.value.clone(),
                        status: Status::Skipped,
                        duration_ms: 0,
                        error: None,
                        failure: None,
                    });
                }
                open.summary.duration_ms = millis(open.started, at);
                collected.scenarios.push(open.summary);
            }
        }
    }
}

impl<W: World> Writer<W> for Collector {
    type Cli = cucumber::cli::Empty;

    async fn handle_event(&mut self, event: parser::Result<Event<Cucumber<W>>>, _: &Self::Cli) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                self.collected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .errors
                    .push(format!("feature error: {error}"));
                return;
            }
        };
        let at = event.at;
        if let Cucumber::Feature(feature, feature_event) = event.value {
            match feature_event {
                Feature::Scenario(scenario, retryable) => {
                    self.scenario_event(&feature, &scenario, retryable.event, at)
                }
                Feature::Rule(_, Rule::Scenario(scenario, retryable)) => {
                    self.scenario_event(&feature, &scenario, retryable.event, at);
                }
                Feature::Started | Feature::Finished | Feature::Rule(..) => {}
            }
        }
    }
}
