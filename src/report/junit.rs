//! `junit.xml`, rendered from the [`RunSummary`]: one `<testsuite>` per feature, one
//! `<testcase>` per scenario. A conformance failure is a `<failure>`; a scenario that could
//! not be tested (environment or usage) is an `<error>`, so CI tells "the payer is wrong"
//! from "the test broke". Every text is already redacted in the summary.

use std::fmt::Write as _;

use crate::summary::{FailureKind, RunSummary, ScenarioSummary, Status};

/// XML 1.0 text (or attribute value): escaped, without the control characters XML 1.0
/// cannot hold at all.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The scenarios of `summary`, grouped by feature in the order they ran.
fn features(summary: &RunSummary) -> Vec<(&str, Vec<&ScenarioSummary>)> {
    let mut grouped: Vec<(&str, Vec<&ScenarioSummary>)> = Vec::new();
    for scenario in &summary.scenarios {
        match grouped
            .iter_mut()
            .find(|(name, _)| *name == scenario.feature)
        {
            Some((_, scenarios)) => scenarios.push(scenario),
            None => grouped.push((&scenario.feature, vec![scenario])),
        }
    }
    grouped
}

fn testcase(out: &mut String, scenario: &ScenarioSummary) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{}\"",
        text(&scenario.name),
        text(&scenario.feature),
        text(&scenario.file),
        scenario.line,
        seconds(scenario.duration_ms)
    );
    let steps: String = scenario
        .steps
        .iter()
        .map(|step| {
            let mark = match step.status {
                Status::Passed => "passed ",
                Status::Failed => "FAILED ",
                Status::Warning => "WARNING",
                Status::Skipped => "skipped",
            };
            let why = match (step.status, &step.error) {
                (Status::Warning | Status::Skipped, Some(error)) => format!("\n        {error}"),
                _ => String::new(),
            };
            format!("{mark} {} {}{why}\n", step.keyword, step.text)
        })
        .collect();
    let failed = scenario.steps.iter().find(|s| s.status == Status::Failed);
    match failed {
        None if scenario.status == Status::Skipped => {
            let why = scenario
                .steps
                .iter()
                .find_map(|s| s.error.as_deref())
                .and_then(|e| e.lines().next())
                .unwrap_or("no check of it could run");
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>",
                text(why),
                text(&steps)
            );
        }
        None => {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                text(&steps)
            );
        }
        Some(step) => {
            let (element, kind) = match step.failure {
                Some(FailureKind::Conformance | FailureKind::Blocked) | None => {
                    ("failure", "conformance")
                }
                Some(FailureKind::App) => ("failure", "app"),
                Some(FailureKind::Environment) => ("error", "environment"),
                Some(FailureKind::Usage) => ("error", "usage"),
            };
            let message = step.error.as_deref().unwrap_or("the step failed");
            let first = message.lines().next().unwrap_or_default();
            let _ = writeln!(
                out,
                ">\n      <{element} type=\"{kind}\" message=\"{}\">{} {} (line {})\n{}</{element}>\n      <system-out>{}</system-out>\n    </testcase>",
                text(first),
                text(&step.keyword),
                text(&step.text),
                step.line,
                text(message),
                text(&steps)
            );
        }
    }
}

/// Whether a scenario could not be tested (an `<error>`, not a `<failure>`).
fn is_error(scenario: &ScenarioSummary) -> bool {
    scenario.steps.iter().any(|st| {
        matches!(
            st.failure,
            Some(FailureKind::Environment | FailureKind::Usage)
        )
    })
}

/// The JUnit XML document of a run.
pub fn render(summary: &RunSummary) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = |scenarios: &[&ScenarioSummary]| {
        scenarios
            .iter()
            .filter(|s| s.status == Status::Failed && !is_error(s))
            .count()
    };
    let errors = |scenarios: &[&ScenarioSummary]| scenarios.iter().filter(|s| is_error(s)).count();
    let all: Vec<&ScenarioSummary> = summary.scenarios.iter().collect();
    let _ = writeln!(
        out,
        "<testsuites name=\"onramp: {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        text(&summary.target.name),
        all.len(),
        failures(&all),
        errors(&all),
        seconds(summary.duration_ms)
    );
    for (feature, scenarios) in features(summary) {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            text(feature),
            scenarios.len(),
            failures(&scenarios),
            errors(&scenarios),
            scenarios
                .iter()
                .filter(|s| s.status == Status::Skipped)
                .count(),
            seconds(scenarios.iter().map(|s| s.duration_ms).sum()),
            text(&summary.started_at)
        );
        // Which part of CMS-9115-F the feature is about, and that API's verdict.
        if let Some(first) = scenarios.first() {
            let api = crate::summary::Api::of_tags(&first.tags);
            let verdict = summary
                .apis
                .iter()
                .find(|a| a.api == api)
                .map(|a| {
                    format!(
                        "<property name=\"api-verdict\" value=\"{}\"/>",
                        text(&a.verdict)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    <properties><property name=\"api\" value=\"{}\"/>{verdict}</properties>",
                text(api.title()),
            );
        }
        for scenario in scenarios {
            testcase(&mut out, scenario);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The JUnit XML document of a run over several targets: one `<testsuite>` per target
/// (named after it), one `<testcase>` per scenario (its class the feature).
pub fn render_many(targets: &[(&str, &RunSummary)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let count = |summary: &RunSummary| {
        let all = &summary.scenarios;
        let errors = all.iter().filter(|s| is_error(s)).count();
        let failures = all
            .iter()
            .filter(|s| s.status == Status::Failed && !is_error(s))
            .count();
        let skipped = all.iter().filter(|s| s.status == Status::Skipped).count();
        (all.len(), failures, errors, skipped)
    };
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    for (_, summary) in targets {
        let (t, f, e, _) = count(summary);
        tests += t;
        failures += f;
        errors += e;
    }
    let time = targets
        .iter()
        .map(|(_, s)| s.duration_ms)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "<testsuites name=\"onramp: {} targets\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        targets.len(),
        seconds(time)
    );
    for (name, summary) in targets {
        let (t, f, e, skipped) = count(summary);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
            text(name),
            seconds(summary.duration_ms),
            text(&summary.started_at)
        );
        for error in &summary.errors {
            let _ = writeln!(
                out,
                "    <testcase name=\"the run\" classname=\"{}\" time=\"0\">\n      <error type=\"harness\" message=\"{}\">{}</error>\n    </testcase>",
                text(name),
                text(error.lines().next().unwrap_or_default()),
                text(error)
            );
        }
        for scenario in &summary.scenarios {
            testcase(&mut out, scenario);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
