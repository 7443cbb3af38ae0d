//! The one cucumber writer of a run: it turns the runner's events into scenario and step
//! records (redacted at the door by the run's [`Recorder`]) and prints them to the terminal
//! as they happen. Every other output (summary.json, report.html, junit.xml,
//! cucumber.json) is rendered later from the same records, so nothing reaches any output
//! without passing the same redaction.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use cucumber::event::{self, Cucumber, Feature, Rule, Scenario, Step, StepError};
use cucumber::gherkin;
use cucumber::{Event, World, Writer, parser, writer};

use super::StepFailure;
use super::failure::{ScenarioKey, Verdicts};
use crate::evidence::Recorder;
use crate::infra::console::Console;
use crate::summary::{FailureKind, ScenarioSummary, Severity, Status, StepSummary};

/// What the collector gathered.
#[derive(Debug, Default)]
pub struct Collected {
    pub scenarios: Vec<ScenarioSummary>,
    /// Hook failures and other problems outside any step.
    pub errors: Vec<String>,
    open: HashMap<ScenarioKey, Open>,
}

#[derive(Debug)]
struct Open {
    summary: ScenarioSummary,
    started: SystemTime,
    step_started: SystemTime,
    definition: gherkin::Scenario,
}

/// The writer; clone the handle to read what it gathered after the run.
#[derive(Debug, Clone)]
pub struct Collector {
    pub collected: Arc<Mutex<Collected>>,
    /// Told when a scenario with a failed step has finished (for `--fail-fast`).
    pub failed: Arc<tokio::sync::Notify>,
    /// Whether the scenario under way has a failed step.
    failing: Arc<std::sync::atomic::AtomicBool>,
    recorder: Arc<Recorder>,
    verdicts: Arc<Verdicts>,
    terminal: Option<Terminal>,
}

/// The key a scenario's checks report under (see [`Verdicts`]).
pub fn scenario_key(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> ScenarioKey {
    (
        crate::payer::recipe::display_path(feature.path.as_deref()),
        scenario.position.line,
    )
}

impl writer::NonTransforming for Collector {}

/// Live output on standard output, as the run's [`Console`] says: every feature, scenario
/// and step (normal), or nothing (`--quiet`: the failures are listed after the verdict);
/// coloured only when asked or on a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub console: Console,
}

impl Terminal {
    fn paint(self, code: &str, text: &str) -> String {
        self.console.paint_out(code, text)
    }

    fn line(self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    fn feature(self, name: &str) {
        if !self.console.quiet() {
            self.line(&self.paint("1", &format!("Feature: {name}")));
        }
    }

    fn scenario(self, name: &str) {
        if !self.console.quiet() {
            self.line(&format!("  Scenario: {name}"));
        }
    }

    /// A step as it ends.
    fn step(self, step: &StepSummary) {
        // Quiet, nothing shows as it happens: the failures are listed after the verdict.
        if self.console.quiet() {
            return;
        }
        let (mark, code) = match step.status {
            Status::Passed => ("✔", "32"),
            Status::Failed => ("✘", "31"),
            Status::Warning => ("!", "33"),
            Status::Skipped => ("-", "2"),
        };
        let text = crate::infra::text::inert(&step.text);
        self.line(&self.paint(code, &format!("   {mark}  {} {text}", step.keyword)));
        if let Some(error) = &step.error {
            // A failure quotes the target (an OperationOutcome, a URL): its lines are the
            // message's own, anything else in them is escaped.
            for line in error.lines() {
                let line = crate::infra::text::inert(line);
                self.line(&self.paint(code, &format!("      {line}")));
            }
        }
    }
}

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

/// A failed step's failure, as a type.
fn failure_of(error: &StepError) -> StepFailure {
    match error {
        StepError::NotFound => StepFailure::usage(
            "no step definition matches this text; check the wording against the shipped features (onramp init writes them)",
        ),
        StepError::AmbiguousMatch(e) => {
            StepFailure::usage(format!("more than one step definition matches: {e}"))
        }
        StepError::Panic(info) => {
            if let Some(failure) = info.downcast_ref::<StepFailure>() {
                return failure.clone();
            }
            // A panic that is not a step's verdict is a defect in onramp.
            let text = info
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the step failed".into());
            StepFailure::environment(format!("onramp failed inside this step: {text}"))
        }
    }
}

/// How a step that did not pass is reported: its status, failure kind and severity.
fn reported(failure: &StepFailure) -> (Status, Option<FailureKind>, Option<Severity>) {
    match (failure.kind, failure.severity) {
        (FailureKind::Blocked, _) => (Status::Skipped, None, None),
        (kind, Severity::Warning) => (Status::Warning, Some(kind), Some(Severity::Warning)),
        (kind, Severity::Error) => (Status::Failed, Some(kind), Some(Severity::Error)),
    }
}

impl Collector {
    pub fn new(
        recorder: Arc<Recorder>,
        verdicts: Arc<Verdicts>,
        terminal: Option<Terminal>,
    ) -> Self {
        Self {
            collected: Arc::default(),
            failed: Arc::default(),
            failing: Arc::default(),
            recorder,
            verdicts,
            terminal,
        }
    }

    fn scenario_event<W>(
        &self,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        event: Scenario<W>,
        at: SystemTime,
    ) {
        let mut collected = self.collected.lock().unwrap_or_else(|p| p.into_inner());
        let key = scenario_key(feature, scenario);
        match event {
            Scenario::Started => {
                let summary = scenario_record(
                    feature,
                    scenario,
                    Status::Passed,
                    self.recorder.wall_offset(at),
                );
                if let Some(terminal) = self.terminal {
                    terminal.scenario(&summary.name);
                }
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
                self.step_event(&mut collected, &key, &step, &event, at);
            }
            Scenario::Hook(kind, event::Hook::Failed(_, info)) => {
                let text = info
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("the {kind:?} hook failed"));
                collected.errors.push(self.recorder.redact(&text));
                if let Some(open) = collected.open.get_mut(&key) {
                    open.summary.status = Status::Failed;
                }
            }
            Scenario::Hook(..) | Scenario::Log(_) => {}
            Scenario::Finished => self.scenario_finished(&mut collected, &key, at),
        }
    }

    /// A step of an open scenario started or ended: its record, with the verdict a check
    /// left waiting.
    fn step_event<W>(
        &self,
        collected: &mut Collected,
        key: &ScenarioKey,
        step: &gherkin::Step,
        event: &Step<W>,
        at: SystemTime,
    ) {
        let Some(open) = collected.open.get_mut(key) else {
            return;
        };
        let failed = match event {
            Step::Started => {
                open.step_started = at;
                return;
            }
            // A check that failed let the scenario go on: its verdict waits here.
            Step::Passed(..) => self.verdicts.take(&(key.clone(), step.position.line)),
            Step::Skipped => Some(failure_of(&StepError::NotFound)),
            Step::Failed(_, _, _, error) => Some(failure_of(error)),
        };
        let (status, failure, severity) = match &failed {
            None => (Status::Passed, None, None),
            Some(failed) => reported(failed),
        };
        let error = failed.map(|f| f.message);
        if status == Status::Failed {
            open.summary.status = Status::Failed;
            self.failing
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let record = StepSummary {
            keyword: step.keyword.trim().to_owned(),
            text: self.recorder.redact(&step.value),
            line: step.position.line,
            status,
            start_ms: self.recorder.wall_offset(open.step_started),
            duration_ms: millis(open.step_started, at),
            error: error.map(|e| self.recorder.redact(&e)),
            failure,
            severity,
        };
        if let Some(terminal) = self.terminal {
            terminal.step(&record);
        }
        open.summary.steps.push(record);
    }

    /// A scenario ended: the steps that never ran listed as skipped, its status settled.
    fn scenario_finished(&self, collected: &mut Collected, key: &ScenarioKey, at: SystemTime) {
        let Some(mut open) = collected.open.remove(key) else {
            return;
        };
        // Steps after a failure never ran: list them as skipped, naming the step
        // they waited for.
        let ran = open.summary.steps.len();
        let defined = open.definition.steps.len();
        let waited_for = open
            .summary
            .steps
            .last()
            .filter(|last| last.status != Status::Passed)
            .map(|last| {
                format!(
                    "not run: it needs \"{} {}\" (line {}), which did not complete",
                    last.keyword, last.text, last.line
                )
            });
        for step in open.definition.steps.iter().skip(ran.min(defined)) {
            let record = skipped_step(
                step,
                &self.recorder,
                self.recorder.wall_offset(at),
                waited_for.clone(),
            );
            if let Some(terminal) = self.terminal {
                terminal.step(&record);
            }
            open.summary.steps.push(record);
        }
        // A scenario none of whose checks could run (each skipped, saying why) did
        // not pass: it is skipped.
        let checks: Vec<Status> = open
            .definition
            .steps
            .iter()
            .zip(&open.summary.steps)
            .filter(|(defined, _)| defined.ty == gherkin::StepType::Then)
            .map(|(_, ran)| ran.status)
            .collect();
        if open.summary.status == Status::Passed
            && !checks.is_empty()
            && checks.iter().all(|s| *s == Status::Skipped)
        {
            open.summary.status = Status::Skipped;
        }
        open.summary.duration_ms = millis(open.started, at);
        collected.scenarios.push(open.summary);
        if self
            .failing
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.failed.notify_one();
        }
    }
}

impl Collected {
    /// Close the scenarios still under way when the run was stopped (a signal, the
    /// deadline): what they did is kept, their other steps are skipped, saying why.
    pub fn close_open(&mut self, reason: &str, recorder: &Recorder) {
        let mut open: Vec<Open> = self.open.drain().map(|(_, o)| o).collect();
        open.sort_by_key(|o| o.started);
        for mut scenario in open {
            let ran = scenario.summary.steps.len();
            for step in scenario.definition.steps.iter().skip(ran) {
                let record = skipped_step(step, recorder, 0, Some(reason.to_owned()));
                scenario.summary.steps.push(record);
            }
            if scenario.summary.status == Status::Passed {
                scenario.summary.status = Status::Skipped;
            }
            self.scenarios.push(scenario.summary);
        }
    }

    /// A run in which `scenarios` were never run because of `reason` (a preflight that
    /// found the target unreachable): every step skipped, saying why, and `errors`.
    pub fn not_run(
        scenarios: &[(&gherkin::Feature, &gherkin::Scenario)],
        reason: &str,
        errors: Vec<String>,
        recorder: &Recorder,
    ) -> Self {
        Self {
            scenarios: skipped(scenarios, reason, recorder),
            errors,
            open: HashMap::new(),
        }
    }
}

fn skipped(
    scenarios: &[(&gherkin::Feature, &gherkin::Scenario)],
    reason: &str,
    recorder: &Recorder,
) -> Vec<ScenarioSummary> {
    scenarios
        .iter()
        .map(|(feature, scenario)| ScenarioSummary {
            steps: scenario
                .steps
                .iter()
                .map(|step| skipped_step(step, recorder, 0, Some(reason.to_owned())))
                .collect(),
            ..scenario_record(feature, scenario, Status::Skipped, 0)
        })
        .collect()
}

/// The record of `scenario` of `feature`, without its steps yet.
fn scenario_record(
    feature: &gherkin::Feature,
    scenario: &gherkin::Scenario,
    status: Status,
    start_ms: u64,
) -> ScenarioSummary {
    ScenarioSummary {
        feature: feature.name.clone(),
        file: crate::payer::recipe::display_path(feature.path.as_deref()),
        name: scenario_name(scenario),
        line: scenario.position.line,
        tags: feature
            .tags
            .iter()
            .chain(&scenario.tags)
            .map(|t| format!("@{t}"))
            .collect(),
        status,
        start_ms,
        duration_ms: 0,
        steps: Vec::new(),
    }
}

/// The record of a step that did not run, and why (`error`).
fn skipped_step(
    step: &gherkin::Step,
    recorder: &Recorder,
    start_ms: u64,
    error: Option<String>,
) -> StepSummary {
    StepSummary {
        keyword: step.keyword.trim().to_owned(),
        text: recorder.redact(&step.value),
        line: step.position.line,
        status: Status::Skipped,
        start_ms,
        duration_ms: 0,
        error,
        failure: None,
        severity: None,
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
                    .push(self.recorder.redact(&format!("feature error: {error}")));
                return;
            }
        };
        let at = event.at;
        if let Cucumber::Feature(feature, feature_event) = event.value {
            match feature_event {
                Feature::Started => {
                    if let Some(terminal) = self.terminal {
                        terminal.feature(&feature.name);
                    }
                }
                Feature::Scenario(scenario, retryable) => {
                    self.scenario_event(&feature, &scenario, retryable.event, at);
                }
                Feature::Rule(_, Rule::Scenario(scenario, retryable)) => {
                    self.scenario_event(&feature, &scenario, retryable.event, at);
                }
                Feature::Finished | Feature::Rule(..) => {}
            }
        }
    }
}
