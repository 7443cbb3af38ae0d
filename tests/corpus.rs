//! Opt-in: onramp on data nobody on this team wrote.
//!
//! - `ONRAMP_CORPUS=../shared/corpus cargo test --test corpus -- --ignored`: 1upHealth's published sample
//!   data. It passes HL7's R4 JSON Schema (ajv agrees), so the schema tier finds nothing;
//!   the structure tier finds exactly the errors it really has (listed below, each with the
//!   R4 rule it breaks); declared profiles are CARIN 1.x or unversioned, so none is checked.
//! - `ONRAMP_CARIN_PACKAGE=../shared/reference/hl7.fhir.us.carin-bb-2.0.0.tgz cargo test
//!   --test corpus -- --ignored`: the CARIN Blue Button 2.0.0 IG's 32 examples pass every tier, against
//!   the 2.0.0 profiles they declare.
//!
//! Both are ignored in a plain `cargo test` (the runner lists them as ignored, saying what
//! they need); run with `--ignored`, each fails, saying so, when its variable is not set.

mod common;

use std::collections::BTreeSet;

use common::{code, run, stderr, stdout};

fn validate_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["validate", "--format", "json"];
    all.extend_from_slice(args);
    let output = run(&all);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "JSON output; stdout: {}; stderr: {}",
            stdout(&output),
            stderr(&output)
        )
    })
}

fn findings(document: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    document["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap_or_default();
            let file = file.rsplit('/').next().unwrap_or(file).to_owned();
            (
                file,
                f["resource"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{} {}",
                    f["tier"].as_str().unwrap_or_default(),
                    f["rule"].as_str().unwrap_or_default()
                ),
                f["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the shared corpus: ONRAMP_CORPUS=../shared/corpus cargo test --test corpus -- --ignored"]
fn published_sample_data_gets_exactly_its_real_errors() {
    let corpus = std::env::var("ONRAMP_CORPUS")
        .expect("set ONRAMP_CORPUS to the shared corpus folder to run this test");
    assert!(
        std::path::Path::new(&corpus).is_dir(),
        "ONRAMP_CORPUS={corpus} is not a folder"
    );
    // The schema tier: nothing (ajv 8 agrees).
    let schema = validate_json(&["--tier", "schema", &corpus]);
    assert_eq!(schema["findings"], serde_json::json!([]), "{schema}");
    assert!(schema["resources"].as_u64().unwrap_or(0) > 50);

    let all = validate_json(&[&corpus]);
    let full = "JohnAllen_FullBundle_2022-02-24.json";
    let test = "John_Allen_Test_Bundle.json";
    let row = |file: &str, resource: &str, rule: &str, path: &str| {
        (
            file.to_owned(),
            resource.to_owned(),
            rule.to_owned(),
            path.to_owned(),
        )
    };
    let expected: BTreeSet<_> = [
        // The corpus README's one: a February 30th.
        row(
            full,
            "ExplanationOfBenefit/2021289000832",
            "structure date",
            "ExplanationOfBenefit.billablePeriod.end",
        ),
        // Bundle.type is 1..1 in R4; both bundles leave it out.
        row(full, "Bundle", "structure cardinality", "Bundle.type"),
        row(test, "Bundle", "structure cardinality", "Bundle.type"),
        // Observation.effective[x] is a choice of one type; this one has two.
        row(
            full,
            "Observation/Observation-real-world-patient-glucose-7",
            "structure choice",
            "Observation",
        ),
        row(
            test,
            "Observation/Observation-real-world-patient-glucose-7",
            "structure choice",
            "Observation",
        ),
        // per-1: a claim received date from 2021-03-15 to 2020-03-15.
        row(
            full,
            "ExplanationOfBenefit/88820210315",
            "structure invariant:per-1",
            "ExplanationOfBenefit.supportingInfo[1].timingPeriod",
        ),
        row(
            test,
            "ExplanationOfBenefit/claim-3",
            "structure invariant:per-1",
            "ExplanationOfBenefit.supportingInfo[1].timingPeriod",
        ),
        // Plan-Net 1.1.0 (what an unversioned plannet-Practitioner declaration resolves to)
        // requires meta.lastUpdated; these five Practitioners declare it and have none.
        row(
            full,
            "Practitioner/1922056589",
            "profile cardinality",
            "Practitioner.meta.lastUpdated",
        ),
        row(
            full,
            "Practitioner/1134243454",
            "profile cardinality",
            "Practitioner.meta.lastUpdated",
        ),
        row(
            full,
            "Practitioner/1164746772",
            "profile cardinality",
            "Practitioner.meta.lastUpdated",
        ),
        row(
            full,
            "Practitioner/1093904633",
            "profile cardinality",
            "Practitioner.meta.lastUpdated",
        ),
        row(
            full,
            "Practitioner/1609823533",
            "profile cardinality",
            "Practitioner.meta.lastUpdated",
        ),
        // US Core: an NPI of nine digits (us-core-16), and 9999999959, whose check digit is
        // wrong (us-core-17: the Luhn sum with the 80840 prefix ends in 6, not 0).
        row(
            full,
            "Practitioner/456342468",
            "profile invariant:us-core-16",
            "Practitioner.identifier[0]",
        ),
        row(
            test,
            "Practitioner/practitioner1",
            "profile invariant:us-core-17",
            "Practitioner.identifier[0]",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(findings(&all), expected, "{all}");
    // The CARIN profiles they declare are STU1-era (1.1.0, or no version): none is checked.
    let unchecked = all["profiles_not_checked"]
        .as_object()
        .expect("profiles_not_checked");
    assert!(
        unchecked.keys().all(|url| !url.ends_with("|2.0.0")),
        "{unchecked:?}"
    );
    assert!(
        unchecked.contains_key(
            "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage|1.1.0"
        )
    );
    assert!(unchecked.contains_key("http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Inpatient-Institutional"));
}

#[test]
#[ignore = "needs the CARIN package: ONRAMP_CARIN_PACKAGE=PATH.tgz cargo test --test corpus -- --ignored"]
fn the_carin_examples_pass_every_tier() {
    let package = std::env::var("ONRAMP_CARIN_PACKAGE")
        .expect("set ONRAMP_CARIN_PACKAGE to hl7.fhir.us.carin-bb-2.0.0.tgz to run this test");
    let dir = tempfile::tempdir().expect("temp dir");
    let unpacked = std::process::Command::new("tar")
        .args(["xzf", &package, "-C"])
        .arg(dir.path())
        .arg("package/example")
        .status()
        .expect("tar runs");
    assert!(unpacked.success(), "cannot unpack {package}");
    let examples = dir.path().join("package/example");
    let examples = examples.to_str().expect("utf-8");
    let document = validate_json(&[examples]);
    assert_eq!(document["findings"], serde_json::json!([]), "{document}");
    assert_eq!(document["resources"], 32);
    // They declare 2.0.0, so every one of them was checked against its profile.
    assert_eq!(
        document["profiles_not_checked"],
        serde_json::json!({}),
        "{document}"
    );
    let output = run(&["validate", examples]);
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}
