//! The clinical data (US Core) in a run: every clinical type the payer's CapabilityStatement
//! lists is read with a search US Core makes SHALL and judged, the others are skipped saying
//! why, and a target that lists its clinical types requires them.

mod common;

use common::run::Run;
use serde_json::Value;

fn steps(scenario: &Value) -> Vec<(String, String, String)> {
    scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["text"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
                s["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_sandbox_serves_us_core_and_the_types_it_does_not_list_are_skipped() {
    // A target that does not list its clinical types (the built-in one lists the plan's).
    let run = Run::with_target("plain.toml", "[sandbox]\n", "@clinical");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    for kind in [
        "Condition",
        "Observation",
        "MedicationRequest",
        "Encounter",
        "CarePlan",
    ] {
        let scenario = Run::scenario(&summary, &format!("The member's {kind} resources"));
        assert_eq!(scenario["status"], "passed", "{kind}: {scenario:#}");
        assert!(
            steps(scenario)
                .iter()
                .any(|(text, _, _)| text.contains("conforms to its US Core profiles")),
            "{kind}"
        );
    }
    // Observation is read by patient and every category US Core's profiles fix: the first
    // SHALL search that needs no data.
    let notes = summary["notes"].to_string();
    assert!(
        notes.contains("read with Observation?patient&category"),
        "{notes}"
    );
    assert!(notes.contains("read with Condition?patient,"), "{notes}");
    // The sandbox serves no ServiceRequest: skipped, saying why, not failed.
    let skipped = Run::scenario(&summary, "The member's ServiceRequest resources");
    assert_eq!(skipped["status"], "skipped", "{skipped:#}");
    let why = steps(skipped)
        .into_iter()
        .map(|(_, _, error)| error)
        .collect::<String>();
    assert!(
        why.contains("lists no ServiceRequest") && why.contains("[resources] clinical"),
        "{why}"
    );
    // Every SHALL search of Observation ran and found what it should.
    for search in ["patient+category", "patient+code", "patient+category+date"] {
        let scenario = Run::scenario(&summary, &format!("Observation searched by {search} "));
        assert_eq!(scenario["status"], "passed", "{search}: {scenario:#}");
    }
    // Must Support per US Core profile, in the summary.
    let observations = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Observation")
        .expect("Observation read");
    let coverage = observations["must_support"]
        .as_object()
        .expect("must support counted");
    assert!(
        coverage.contains_key(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"
        ),
        "{coverage:?}"
    );
}

#[test]
fn a_target_that_lists_its_clinical_types_requires_them() {
    let run = Run::with_target(
        "clinical.toml",
        "[sandbox]\n\n[resources]\nclinical = [\"Condition\", \"ServiceRequest\"]\n",
        "@clinical",
    );
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let summary = run.summary();
    let condition = Run::scenario(&summary, "The member's Condition resources");
    assert_eq!(condition["status"], "passed", "{condition:#}");
    // Listed, not served: the payer's failure, not a skip.
    let service = Run::scenario(&summary, "The member's ServiceRequest resources");
    assert_eq!(service["status"], "failed", "{service:#}");
    let failed: Vec<_> = steps(service)
        .into_iter()
        .filter(|(_, status, _)| status == "failed")
        .collect();
    assert!(
        failed
            .iter()
            .any(|(text, _, error)| text.contains("as US Core requires")
                && error.contains("ServiceRequest")),
        "{failed:#?}"
    );
    // Only the listed types have scenarios.
    let names = summary["scenarios"].to_string();
    assert!(
        !names.contains("The member's Observation resources"),
        "{names}"
    );
}

#[test]
fn a_clinical_type_that_is_no_resource_type_is_a_usage_error() {
    let run = Run::with_target(
        "typo.toml",
        "[sandbox]\n\n[resources]\nclinical = [\"Conditions\"]\n",
        "@clinical",
    );
    assert_eq!(run.code(), 2, "{}", run.stdout());
    assert!(
        run.stderr()
            .contains("resources.clinical: \"Conditions\" is not an R4 resource type"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_target_held_to_us_core_3_1_1_reads_and_judges_3_1_1() {
    let run = Run::with_target(
        "us-core-3.toml",
        "[sandbox]\n\n[validation]\nigs = [\"hl7.fhir.us.core@3.1.1\"]\n\n[resources]\nclinical = [\"Condition\", \"Observation\", \"Encounter\"]\n",
        "@clinical",
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    let notes = summary["notes"].to_string();
    assert!(
        notes.contains("US Core 3.1.1's CapabilityStatement"),
        "{notes}"
    );
    // 3.1.1 has one Condition profile (6.1.0 split it in two), and the sandbox serves its
    // examples.
    let conditions = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Condition")
        .expect("Condition read");
    let coverage = conditions["must_support"].as_object().expect("counted");
    assert!(
        coverage.contains_key("http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition"),
        "{coverage:?}"
    );
    assert!(
        !coverage
            .keys()
            .any(|url| url.ends_with("us-core-condition-encounter-diagnosis")),
        "{coverage:?}"
    );
}

#[test]
fn medication_is_read_by_the_references_of_the_members_prescriptions() {
    // The built-in target lists Medication, which US Core searches by no patient.
    let run = Run::new(&["--tags", "@clinical"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    let scenario = Run::scenario(&summary, "The member's Medication resources");
    assert_eq!(scenario["status"], "passed", "{scenario:#}");
    let notes = summary["notes"].to_string();
    assert!(
        notes.contains("US Core searches Medication by no patient: its 1 resources referenced by the member's data were read one by one"),
        "{notes}"
    );
    let medication = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Medication")
        .expect("Medication read");
    assert!(
        medication["must_support"].as_object().is_some_and(|m| m
            .contains_key("http://hl7.org/fhir/us/core/StructureDefinition/us-core-medication")),
        "{medication:#}"
    );
}
