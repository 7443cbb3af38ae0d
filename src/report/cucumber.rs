//! `cucumber.json`, rendered from the [`RunSummary`] in the Cucumber JSON format (the one
//! cucumber-jvm and cucumber-js write, read by CI plugins): features with their scenarios
//! (`elements`) and steps, each step's `result` with its status, duration in nanoseconds and
//! error message. Every text is already redacted in the summary.

use serde_json::{Value, json};

use crate::summary::{RunSummary, ScenarioSummary, Status};

/// `feature-name;scenario-name`, as Cucumber ids are written.
fn id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn tags(tags: &[String]) -> Vec<Value> {
    tags.iter().map(|t| json!({ "name": t })).collect()
}

fn element(scenario: &ScenarioSummary) -> Value {
    let steps: Vec<Value> = scenario
        .steps
        .iter()
        .map(|step| {
            let status = match step.status {
                // Cucumber JSON has no warning: a SHOULD missed passes, with its message.
                Status::Passed | Status::Warning => "passed",
                Status::Failed => "failed",
                Status::Skipped => "skipped",
            };
            let mut result = json!({
                "status": status,
                "duration": step.duration_ms.saturating_mul(1_000_000),
            });
            if let Some(error) = &step.error {
                result["error_message"] = json!(error);
            }
            json!({
                "keyword": format!("{} ", step.keyword),
                "name": step.text,
                "line": step.line,
                "result": result,
            })
        })
        .collect();
    json!({
        "id": format!("{};{}", id(&scenario.feature), id(&scenario.name)),
        "keyword": "Scenario",
        "type": "scenario",
        "name": scenario.name,
        "line": scenario.line,
        "description": "",
        "tags": tags(&scenario.tags),
        "steps": steps,
    })
}

/// The Cucumber JSON document of a run.
pub fn render(summary: &RunSummary) -> String {
    let mut features: Vec<(String, String, Vec<Value>)> = Vec::new();
    for scenario in &summary.scenarios {
        match features
            .iter_mut()
            .find(|(name, file, _)| *name == scenario.feature && *file == scenario.file)
        {
            Some((_, _, elements)) => elements.push(element(scenario)),
            None => features.push((
                scenario.feature.clone(),
                scenario.file.clone(),
                vec![element(scenario)],
            )),
        }
    }
    let document: Vec<Value> = features
        .into_iter()
        .map(|(name, file, elements)| {
            json!({
                "uri": file,
                "id": id(&name),
                "keyword": "Feature",
                "name": name,
                "line": 1,
                "description": "",
                "elements": elements,
            })
        })
        .collect();
    crate::infra::json::to_string_pretty(&document).unwrap_or_else(|_| "[]".into())
}
