//! IG packages at run time: the shipped US Core, Plan-Net, Drug Formulary and CARIN
//! packages' own examples pass every tier against the profiles they declare (the few that
//! do not are listed, each with why the example is wrong); single-rule breaks of US Core
//! profiles are caught; and a package nobody shipped works with `--ig`.

mod common;

use std::collections::BTreeSet;
use std::io::Read;

use common::{run, stderr, stdout};
use onramp::validate::catalog::SHIPPED;
use onramp::validate::{Tier, Validator};
use serde_json::Value;

/// The examples (`package/example/*.json`) of a shipped package.
fn examples(name: &str, version: &str) -> Vec<(String, Vec<u8>)> {
    let shipped = SHIPPED
        .iter()
        .find(|s| s.name == name && s.version == version)
        .expect("shipped");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(shipped.bytes()));
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        let path = entry.path().expect("a path").display().to_string();
        if path.starts_with("package/example/") && path.ends_with(".json") && !path.contains("/.") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("readable");
            out.push((
                path.rsplit('/').next().unwrap_or_default().to_owned(),
                bytes,
            ));
        }
    }
    assert!(!out.is_empty(), "{name}@{version} has examples");
    out
}

/// (file, rule, FHIR path) of every finding on the package's examples, all tiers.
fn findings_on_examples(name: &str, version: &str) -> BTreeSet<(String, String, String)> {
    let validator = Validator::new(Tier::Profile);
    let mut out = BTreeSet::new();
    for (file, bytes) in examples(name, version) {
        let checked = validator.check_bytes(&bytes);
        for finding in checked.findings {
            out.insert((file.clone(), finding.rule, finding.path));
        }
    }
    out
}

fn row(file: &str, rule: &str, path: &str) -> (String, String, String) {
    (file.to_owned(), rule.to_owned(), path.to_owned())
}

#[test]
fn us_core_6_1_0_examples_pass_every_tier() {
    let expected: BTreeSet<_> = [
        // HL7's R4 JSON Schema defines no `_questionnaire` (nor any `_` member) for the
        // canonical QuestionnaireResponse.questionnaire: ajv 8 rejects these two examples.
        row(
            "QuestionnaireResponse-glascow-coma-score.json",
            "additionalProperties",
            "QuestionnaireResponse._questionnaire",
        ),
        row(
            "QuestionnaireResponse-hunger-vital-sign-example.json",
            "additionalProperties",
            "QuestionnaireResponse._questionnaire",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(findings_on_examples("hl7.fhir.us.core", "6.1.0"), expected);
}

#[test]
fn plan_net_drug_formulary_and_carin_examples_pass_every_tier() {
    for (name, version) in [
        ("hl7.fhir.us.davinci-pdex-plan-net", "1.1.0"),
        ("hl7.fhir.us.davinci-drug-formulary", "2.0.1"),
        ("hl7.fhir.us.carin-bb", "2.0.0"),
    ] {
        let found = findings_on_examples(name, version);
        assert!(found.is_empty(), "{name}@{version}: {found:#?}");
    }
}

/// US Core 3.1.1's examples, through the binary (choosing 3.1.1 for unversioned
/// declarations is a process-wide choice).
#[test]
fn us_core_3_1_1_examples_pass_when_3_1_1_is_chosen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (file, bytes) in examples("hl7.fhir.us.core", "3.1.1") {
        std::fs::write(dir.path().join(file), bytes).expect("written");
    }
    let folder = dir.path().display().to_string();
    let output = run(&[
        "validate",
        "--format",
        "json",
        "--ig",
        "hl7.fhir.us.core@3.1.1",
        &folder,
    ]);
    let document: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON; stderr: {}", stderr(&output)));
    let found: BTreeSet<(String, String)> = document["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap_or_default();
            (
                file.rsplit('/').next().unwrap_or(file).to_owned(),
                format!(
                    "{} {}",
                    f["rule"].as_str().unwrap_or_default(),
                    f["path"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect();
    // us-core-pulse-oximetry 3.1.1 cannot be met: its FlowRate slice fixes the unit L/min and
    // keeps R4 vital signs' required binding to ucum-vitals-common, which has no L/min.
    let expected: BTreeSet<(String, String)> = [(
        "Observation-satO2-fiO2.json".to_owned(),
        "binding Observation.component[0].valueQuantity".to_owned(),
    )]
    .into_iter()
    .collect();
    assert_eq!(found, expected, "{}", stdout(&output));
    // The same examples against 6.1.0 (the default) break its newer rules.
    let output = run(&["validate", "--format", "json", &folder]);
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let rules: BTreeSet<&str> = document["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(rules.contains("invariant:us-core-17"), "{rules:?}");
}

/// One US Core 6.1.0 example, changed by `change`: exactly the findings listed.
fn broken(file: &str, change: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
    let (_, bytes) = examples("hl7.fhir.us.core", "6.1.0")
        .into_iter()
        .find(|(name, _)| name == file)
        .unwrap_or_else(|| panic!("{file} is an example"));
    let mut resource: Value = serde_json::from_slice(&bytes).expect("JSON");
    change(&mut resource);
    let bytes = serde_json::to_vec(&resource).expect("serialises");
    let mut found: Vec<(String, String)> = Validator::new(Tier::Profile)
        .check_bytes(&bytes)
        .findings
        .into_iter()
        .map(|f| (f.rule, f.path))
        .collect();
    found.sort();
    found
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn single_rule_breaks_of_us_core_profiles_are_caught() {
    // Cardinality: us-core-patient requires an identifier.
    let found = broken("Patient-example.json", |r| {
        r.as_object_mut().expect("object").remove("identifier");
    });
    assert_eq!(found, pairs(&[("cardinality", "Patient.identifier")]));

    // Slices: blood pressure needs its systolic and its diastolic component.
    let found = broken("Observation-blood-pressure.json", |r| {
        r["component"]
            .as_array_mut()
            .expect("components")
            .truncate(1);
    });
    assert_eq!(
        found,
        pairs(&[
            ("cardinality", "Observation.component"),
            ("cardinality", "Observation.component"),
        ])
    );

    // A required binding to one of the package's own value sets.
    let found = broken("Observation-some-day-smoker.json", |r| {
        r["status"] = Value::from("preliminary");
    });
    assert_eq!(found, pairs(&[("binding", "Observation.status")]));

    // The profile's invariants: us-core-6 (a name with a given or family name).
    let found = broken("Patient-example.json", |r| {
        r["name"] = serde_json::json!([{ "use": "official", "text": "Amy Shaw" }]);
    });
    assert_eq!(found, pairs(&[("invariant:us-core-6", "Patient.name[0]")]));

    // us-core-16: an NPI is ten digits.
    let found = broken("Practitioner-practitioner-1.json", |r| {
        r["identifier"][0]["value"] = Value::from("123456789");
    });
    assert_eq!(
        found,
        pairs(&[("invariant:us-core-16", "Practitioner.identifier[0]")])
    );

    // A slice fixed by pattern: the encounter-diagnosis category.
    let found = broken("Condition-encounter-diagnosis-example1.json", |r| {
        r["category"] = serde_json::json!([{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "problem-list-item"
        }] }]);
    });
    assert_eq!(found, pairs(&[("cardinality", "Condition.category")]));
}

/// A package of one profile nobody shipped: US Core's patient profile, renamed, with
/// birthDate required.
fn custom_package(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = SHIPPED
        .iter()
        .find(|s| s.name == "hl7.fhir.us.core" && s.version == "6.1.0")
        .expect("shipped");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(shipped.bytes()));
    let mut patient: Option<Value> = None;
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        if entry
            .path()
            .expect("a path")
            .ends_with("StructureDefinition-us-core-patient.json")
        {
            let mut text = Vec::new();
            entry.read_to_end(&mut text).expect("readable");
            patient = Some(serde_json::from_slice(&text).expect("JSON"));
        }
    }
    let mut profile = patient.expect("us-core-patient");
    profile["url"] = Value::from("http://example.org/fhir/StructureDefinition/strict-patient");
    profile["name"] = Value::from("StrictPatient");
    profile["version"] = Value::from("0.1.0");
    for element in profile["snapshot"]["element"]
        .as_array_mut()
        .expect("elements")
    {
        if element["id"] == "Patient.birthDate" {
            element["min"] = Value::from(1);
        }
    }
    let path = dir.join("example.strict-0.1.0.tgz");
    let file = std::fs::File::create(&path).expect("created");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    for (name, value) in [
        (
            "package/package.json",
            serde_json::json!({"name": "example.strict", "version": "0.1.0",
                "canonical": "http://example.org/fhir", "dependencies": {"hl7.fhir.r4.core": "4.0.1"}}),
        ),
        ("package/StructureDefinition-strict-patient.json", profile),
    ] {
        let data = serde_json::to_vec(&value).expect("serialises");
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, &data[..])
            .expect("appended");
    }
    builder.into_inner().expect("tar").finish().expect("gzip");
    path
}

#[test]
fn a_package_nobody_shipped_is_loaded_with_ig() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let package = custom_package(dir.path());
    let patient = serde_json::json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"profile": ["http://example.org/fhir/StructureDefinition/strict-patient"]},
        "identifier": [{"system": "http://example.org/mrn", "value": "1"}],
        "name": [{"family": "Shaw", "given": ["Amy"]}],
        "gender": "female"
    });
    let file = dir.path().join("patient.json");
    std::fs::write(&file, serde_json::to_vec(&patient).expect("JSON")).expect("written");
    let file = file.display().to_string();

    // Without the package: declared, not checked.
    let output = run(&["validate", "--format", "json", &file]);
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["findings"], serde_json::json!([]));
    assert_eq!(
        document["profiles_not_checked"]["http://example.org/fhir/StructureDefinition/strict-patient"],
        1
    );

    // With it: its rule is judged.
    let package = package.display().to_string();
    let output = run(&["validate", "--format", "json", "--ig", &package, &file]);
    let document: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON; stderr: {}", stderr(&output)));
    let findings: Vec<(&str, &str)> = document["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default(),
                f["path"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [("cardinality", "Patient.birthDate")],
        "{document}"
    );

    // A file that is not a package: a usage error naming it, no panic.
    let output = run(&["validate", "--ig", &file, &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("patient.json"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("gzipped tar"),
        "{}",
        stderr(&output)
    );
}

/// Must Support, Inferno's way: per profile, over every resource checked against it, how
/// many carry each must-support element; a data-absent-reason alone does not count.
#[test]
fn must_support_is_counted_per_profile_over_all_resources() {
    let validator = Validator::new(Tier::Profile).with_must_support(true);
    let mut tally = onramp::validate::must_support::Tally::new();
    for (_, bytes) in examples("hl7.fhir.us.carin-bb", "2.0.0") {
        let checked = validator.check_bytes(&bytes);
        onramp::validate::must_support::merge(&mut tally, &checked.must_support);
    }
    let patient = &tally["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient"];
    // Inferno's CARIN kit lists 33 for C4BB-Patient: 3 extensions, 2 slices, 28 elements.
    assert_eq!(patient.elements.len(), 33);
    assert_eq!(patient.resources, 2);
    let count = |id: &str| {
        patient
            .elements
            .iter()
            .find(|(e, _)| &**e == id)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{id} is must-support"))
    };
    assert_eq!(count("Patient.deceased[x]"), 0);
    assert_eq!(count("Patient.birthDate"), 2);
    assert!(patient.missing().any(|id| id == "Patient.address.country"));

    // One patient whose birthDate is only a data-absent reason: not carried.
    let (_, bytes) = examples("hl7.fhir.us.carin-bb", "2.0.0")
        .into_iter()
        .find(|(name, _)| name.starts_with("Patient-"))
        .expect("a patient example");
    let mut patient: Value = serde_json::from_slice(&bytes).expect("JSON");
    patient.as_object_mut().expect("object").remove("birthDate");
    patient["_birthDate"] = serde_json::json!({"extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        "valueCode": "unknown"
    }]});
    let checked = validator.check_bytes(&serde_json::to_vec(&patient).expect("JSON"));
    let coverage = checked.must_support.values().next().expect("one profile");
    assert_eq!(coverage.resources, 1);
    assert!(coverage.missing().any(|id| id == "Patient.birthDate"));
}

/// An extension is checked against its definition when an IG loaded has it: US Core 3.1.1's
/// birth sex takes M, F or UNK, and its race's OMB category a code of its value set.
#[test]
fn extensions_are_checked_against_their_definitions() {
    let (_, bytes) = examples("hl7.fhir.us.core", "3.1.1")
        .into_iter()
        .find(|(name, _)| name == "Patient-example.json")
        .expect("the patient example");
    let mut patient: Value = serde_json::from_slice(&bytes).expect("JSON");
    for extension in patient["extension"].as_array_mut().expect("extensions") {
        let url = extension["url"].as_str().unwrap_or_default().to_owned();
        if url.ends_with("us-core-birthsex") {
            extension["valueCode"] = Value::from("X");
        }
        if url.ends_with("us-core-race") {
            extension["extension"][0]["valueCoding"]["code"] = Value::from("9999-9");
        }
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("patient.json");
    std::fs::write(&file, serde_json::to_vec(&patient).expect("JSON")).expect("written");
    let file = file.display().to_string();
    let output = run(&[
        "validate",
        "--format",
        "json",
        "--ig",
        "hl7.fhir.us.core@3.1.1",
        &file,
    ]);
    let document: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON; stderr: {}", stderr(&output)));
    let found: BTreeSet<(String, String, String)> = document["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("rule"), text("path"), text("profile"))
        })
        .collect();
    assert!(
        found.iter().any(|(rule, path, profile)| rule == "binding"
            && path.ends_with(".valueCode")
            && profile.ends_with("us-core-birthsex")),
        "{found:#?}"
    );
    assert!(
        found.iter().any(|(rule, path, profile)| rule == "binding"
            && path.ends_with(".extension[0].valueCoding")
            && profile.ends_with("us-core-race")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}
