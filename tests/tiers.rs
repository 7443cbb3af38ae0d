//! The structure and profile tiers, rule class by rule class: each fixture starts from data
//! that is valid at every tier (a resource the embedded sandbox generates, or a document of
//! its own), breaks one rule, and must get exactly the findings it lists: tier, rule id and
//! FHIR path.

use onramp::sandbox::data::Store;
use onramp::sandbox::data::generate::Generated;
use onramp::validate::{Finding, Tier, Validator};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    set: serde_json::Map<String, Value>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    replace: Vec<(String, String)>,
    #[serde(default)]
    profile: Option<String>,
    expect: Vec<Expected>,
    #[serde(default)]
    unknown: Vec<String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Expected {
    tier: String,
    rule: String,
    path: String,
    #[serde(default)]
    entry: Option<usize>,
}

fn fixtures() -> Vec<Case> {
    serde_json::from_str::<Fixtures>(include_str!("fixtures/validate/tiers.json"))
        .expect("tiers.json parses")
        .cases
}

/// A sandbox resource, valid at every tier.
fn base(name: &str) -> Value {
    let plan = Generated::new(1, 4);
    let (kind, index) = match name {
        "EOB:professional" => ("ExplanationOfBenefit", 0),
        "EOB:inpatient" => ("ExplanationOfBenefit", 1),
        "EOB:outpatient" => ("ExplanationOfBenefit", 2),
        "EOB:pharmacy" => ("ExplanationOfBenefit", 3),
        "Organization" => ("Organization", 1),
        other => (other, 0),
    };
    plan.page(0, kind, index, 1)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the sandbox has no {name}"))
}

fn set(document: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    let parent = document
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("nothing at {parent}"));
    match parent {
        Value::Object(map) => {
            map.insert(last.to_owned(), value);
        }
        Value::Array(items) => {
            let index: usize = last.parse().expect("an index");
            if index < items.len() {
                items[index] = value;
            } else {
                items.push(value);
            }
        }
        _ => panic!("{pointer}: not in an object or array"),
    }
}

fn remove(document: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    match document.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(last)
                .unwrap_or_else(|| panic!("nothing at {pointer}"));
        }
        Some(Value::Array(items)) => {
            items.remove(last.parse().expect("an index"));
        }
        _ => panic!("nothing at {pointer}"),
    }
}

fn text_of(case: &Case) -> String {
    if let Some(document) = &case.document {
        return document.clone();
    }
    let mut document = base(case.base.as_deref().expect("a base or a document"));
    for pointer in &case.remove {
        remove(&mut document, pointer);
    }
    for (pointer, value) in &case.set {
        set(&mut document, pointer, value.clone());
    }
    let mut text = serde_json::to_string(&document).expect("serializes");
    for (from, to) in &case.replace {
        assert!(
            text.contains(from.as_str()),
            "{}: no {from} to replace",
            case.name
        );
        text = text.replace(from.as_str(), to);
    }
    text
}

fn got(findings: &[Finding]) -> Vec<Expected> {
    let mut out: Vec<Expected> = findings
        .iter()
        .map(|f| Expected {
            tier: f.tier.name().to_owned(),
            rule: f.rule.clone(),
            path: f.path.clone(),
            entry: f.entry,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_rule_class_is_caught_with_its_path_and_rule_id() {
    let mut failures = Vec::new();
    for case in fixtures() {
        let validator = Validator::new(Tier::Profile)
            .with_profiles(case.profile.as_slice())
            .expect("a known profile");
        let text = text_of(&case);
        let checked = validator.check_bytes(text.as_bytes());
        let mut expected = case.expect.clone();
        for e in &mut expected {
            if e.entry.is_none() {
                e.entry = checked
                    .findings
                    .iter()
                    .find(|f| f.path == e.path)
                    .and_then(|f| f.entry);
            }
        }
        expected.sort();
        let actual = got(&checked.findings);
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {actual:?}\n  messages {:?}",
                case.name,
                checked
                    .findings
                    .iter()
                    .map(|f| &f.message)
                    .collect::<Vec<_>>()
            ));
        }
        let unknown: Vec<String> = checked
            .unknown_profiles
            .iter()
            .map(|(u, _)| u.to_string())
            .collect();
        if unknown != case.unknown {
            failures.push(format!(
                "{}: profiles not checked {unknown:?}, expected {:?}",
                case.name, case.unknown
            ));
        }
        for finding in &checked.findings {
            assert!(
                !finding.message.is_empty(),
                "{}: a finding without a message",
                case.name
            );
            if finding.tier == Tier::Profile {
                assert!(
                    finding.profile.is_some(),
                    "{}: a profile finding names its profile",
                    case.name
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_bases_are_valid_at_every_tier() {
    for name in [
        "Patient",
        "Coverage",
        "Organization",
        "Practitioner",
        "Location",
        "EOB:professional",
        "EOB:inpatient",
        "EOB:outpatient",
        "EOB:pharmacy",
    ] {
        let text = serde_json::to_string(&base(name)).expect("serializes");
        let checked = Validator::new(Tier::Profile).check_bytes(text.as_bytes());
        assert!(
            checked.findings.is_empty(),
            "{name}: {:?}",
            checked.findings
        );
        assert!(
            checked.unknown_profiles.is_empty(),
            "{name} declares a profile onramp has"
        );
    }
}

#[test]
fn the_schema_tier_alone_lets_all_of_it_through() {
    // The point of the other tiers: HL7's JSON Schema accepts every structure mutation above
    // that keeps the JSON types (what ajv 8 says too).
    let validator = Validator::new(Tier::Schema);
    let mut passed = 0;
    let mut structure = 0;
    for case in fixtures() {
        if !case.expect.iter().any(|e| e.tier == "structure") {
            continue;
        }
        structure += 1;
        if validator
            .check_bytes(text_of(&case).as_bytes())
            .findings
            .is_empty()
        {
            passed += 1;
        }
    }
    assert!(structure >= 40, "{structure} structure cases");
    assert_eq!(
        passed, structure,
        "the schema tier caught some structure cases"
    );
}

#[test]
fn a_bundle_gets_the_findings_of_its_entries_each_at_its_entry() {
    // Twelve entries: enough for the entries to be checked in parallel.
    let cases: Vec<Case> = fixtures()
        .into_iter()
        .filter(|c| c.base.is_some() && c.replace.is_empty() && c.profile.is_none())
        .take(12)
        .collect();
    assert_eq!(cases.len(), 12);
    let validator = Validator::new(Tier::Profile);
    let parallel = Validator::new(Tier::Profile).with_parallel_entries(true);
    let mut expected = Vec::new();
    let mut entries = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let text = text_of(case);
        for mut one in got(&validator.check_bytes(text.as_bytes()).findings) {
            one.entry = Some(n);
            expected.push(one);
        }
        let resource: Value = serde_json::from_str(&text).expect("JSON");
        entries.push(serde_json::json!({ "fullUrl": format!("https://example.org/r/{n}"), "resource": resource }));
    }
    let bundle =
        serde_json::json!({ "resourceType": "Bundle", "type": "collection", "entry": entries });
    let checked = validator.check_bytes(bundle.to_string().as_bytes());
    expected.sort();
    assert_eq!(got(&checked.findings), expected);
    // On every core, the same findings in the same order.
    let apart = parallel.check_bytes(bundle.to_string().as_bytes());
    assert_eq!(apart.findings, checked.findings);
    assert_eq!(checked.resources, 13);
    assert_eq!(
        checked.invalid,
        expected
            .iter()
            .map(|e| e.entry)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64
    );
}
