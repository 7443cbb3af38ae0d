//! Validation fidelity: project-written fixtures whose verdicts are ajv 8's on the same
//! official schema (`bench/ajv-fixtures.js` re-checks them), plus the library's guarantees
//! (dispatch over all resource types, exact numbers, findings with paths and origins).

use onramp::validate::{Registry, parse};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    document: String,
    valid: bool,
    keyword: Option<String>,
    path: Option<String>,
    entry: Option<usize>,
}

fn fixtures() -> Vec<Case> {
    let text = include_str!("fixtures/validate/cases.json");
    serde_json::from_str::<Fixtures>(text)
        .expect("cases.json parses")
        .cases
}

#[test]
fn every_fixture_gets_the_expected_verdict_and_finding() {
    let registry = Registry::global();
    let mut failures = Vec::new();
    for case in fixtures() {
        let checked = registry.check_bytes(case.document.as_bytes());
        let valid = checked.findings.is_empty();
        if valid != case.valid {
            failures.push(format!(
                "{}: expected {}, got {:?}",
                case.name,
                if case.valid { "valid" } else { "invalid" },
                checked.findings
            ));
            continue;
        }
        if case.valid {
            assert_eq!(checked.invalid, 0, "{}", case.name);
            continue;
        }
        assert!(checked.invalid >= 1, "{}: invalid count", case.name);
        let wanted = |f: &onramp::validate::Finding| {
            case.keyword.as_deref().is_none_or(|k| f.keyword == k)
                && case.path.as_deref().is_none_or(|p| f.path == p)
                && case.entry.is_none_or(|e| f.entry == Some(e))
        };
        if !checked.findings.iter().any(wanted) {
            failures.push(format!(
                "{}: no finding with keyword {:?}, path {:?}, entry {:?} in {:?}",
                case.name, case.keyword, case.path, case.entry, checked.findings
            ));
        }
        for finding in &checked.findings {
            assert!(!finding.message.is_empty(), "{}: empty message", case.name);
        }
    }
    assert!(
        failures.is_empty(),
        "fixture failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn dispatch_knows_all_146_resource_types() {
    let registry = Registry::global();
    assert_eq!(registry.resource_types().len(), 146);
    for name in registry.resource_types() {
        let document = format!(r#"{{"resourceType":"{name}"}}"#);
        let checked = registry.check_bytes(document.as_bytes());
        // Some types require elements; none may be unknown to the dispatcher.
        assert!(
            checked.findings.iter().all(|f| f.keyword != "oneOf"),
            "{name}: {:?}",
            checked.findings
        );
    }
}

#[test]
fn numbers_are_kept_exactly_as_written() {
    let document = parse(br#"{"a":1.50,"b":1e400,"c":123456789012345678901234567890,"d":-0}"#)
        .expect("well-formed");
    let text = sonic_rs::to_string(&document).expect("serializes");
    assert_eq!(
        text,
        r#"{"a":1.50,"b":1e400,"c":123456789012345678901234567890,"d":-0}"#
    );
}

#[test]
fn bundle_findings_name_the_entry_and_the_entry_resource() {
    let bundle = br#"{"resourceType":"Bundle","id":"b","type":"searchset","entry":[
        {"resource":{"resourceType":"Patient","id":"ok"}},
        {"resource":{"resourceType":"ExplanationOfBenefit","id":"eob-7","item":[{},{},
            {"adjudication":[{"amount":{"value":"12.00"}}]}]}}]}"#;
    let checked = Registry::global().check_bytes(bundle);
    assert_eq!(checked.resources, 3);
    let finding = checked
        .findings
        .iter()
        .find(|f| f.keyword == "type")
        .expect("the string amount is reported");
    assert_eq!(finding.entry, Some(1));
    assert_eq!(
        finding.resource.as_deref(),
        Some("ExplanationOfBenefit/eob-7")
    );
    assert_eq!(
        finding.path,
        "ExplanationOfBenefit.item[2].adjudication[0].amount.value"
    );
    assert_eq!(
        finding.pointer,
        "/entry/1/resource/item/2/adjudication/0/amount/value"
    );
    assert!(finding.message.contains("\"12.00\""), "{}", finding.message);
}

#[test]
fn invalid_counts_resources_not_findings() {
    let bundle = br#"{"resourceType":"Bundle","type":"collection","entry":[
        {"resource":{"resourceType":"Patient","gender":"x","birthDate":"x"}},
        {"resource":{"resourceType":"Patient"}},
        {"resource":{"resourceType":"Patient","active":"yes"}}]}"#;
    let checked = Registry::global().check_bytes(bundle);
    assert_eq!(checked.resources, 4);
    assert_eq!(checked.invalid, 2);
    assert_eq!(checked.findings.len(), 3);
}

#[test]
fn malformed_json_reports_where_without_echoing_the_document() {
    let checked = Registry::global()
        .check_bytes(br#"{"resourceType":"Patient","secret":"SSN-123-45-6789",}"#);
    let finding = &checked.findings[0];
    assert_eq!(finding.keyword, "json");
    assert!(
        finding.message.contains("line 1, column"),
        "{}",
        finding.message
    );
    assert!(!finding.message.contains("SSN"), "{}", finding.message);
}

#[test]
fn validators_are_shared_across_threads() {
    let document = br#"{"resourceType":"Patient","gender":"mal"}"#;
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || Registry::global().check_bytes(document)))
        .collect();
    for handle in handles {
        let checked = handle.join().expect("no panic");
        assert_eq!(checked.findings.len(), 1);
        assert_eq!(checked.findings[0].path, "Patient.gender");
    }
}
