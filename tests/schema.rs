//! The committed FHIR R4 schema is exactly what `schemas/regenerate.py` derives from HL7's
//! published file, and it has the shape onramp relies on.

use sha2::{Digest, Sha256};

/// sha256 of `schemas/fhir.r4.schema.json`; `schemas/README.md` records the same value.
const DERIVED_SHA256: &str = "8f3c41fd6f6ebc39f9dfab325cfe2a1f685e741131d5eaf5639ca6729c3add94";

fn schema() -> serde_json::Value {
    serde_json::from_str(onramp::validate::SCHEMA_JSON).expect("the schema is JSON")
}

#[test]
fn committed_schema_has_the_recorded_sha256() {
    let digest = Sha256::digest(onramp::validate::SCHEMA_JSON.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex, DERIVED_SHA256,
        "regenerate with schemas/regenerate.py and record the new sha256"
    );
    let readme = include_str!("../schemas/README.md");
    assert!(
        readme.contains(DERIVED_SHA256),
        "schemas/README.md records a different sha256"
    );
}

#[test]
fn every_resource_type_has_a_definition() {
    let schema = schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-06/schema#");
    let definitions = schema["definitions"].as_object().expect("definitions");
    assert_eq!(definitions.len(), 680);
    let mapping = schema["discriminator"]["mapping"]
        .as_object()
        .expect("mapping");
    assert_eq!(mapping.len(), 146);
    for name in mapping.keys() {
        let definition = definitions
            .get(name)
            .unwrap_or_else(|| panic!("no definition for {name}"));
        assert_eq!(
            definition["properties"]["resourceType"]["const"],
            name.as_str()
        );
    }
    let one_of = schema["oneOf"].as_array().expect("root oneOf");
    assert_eq!(one_of.len(), 146);
}

#[test]
fn descriptions_are_removed_but_description_elements_kept() {
    fn walk(node: &serde_json::Value, names: bool, found: &mut usize) {
        match node {
            serde_json::Value::Object(members) => {
                for (key, value) in members {
                    if !names && key == "description" && value.is_string() {
                        *found += 1;
                    }
                    walk(
                        value,
                        !names && (key == "properties" || key == "definitions"),
                        found,
                    );
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, false, found)),
            _ => {}
        }
    }
    let schema = schema();
    let mut found = 0;
    walk(&schema, false, &mut found);
    assert_eq!(found, 0, "description keywords remain");
    assert!(schema["definitions"]["ActivityDefinition"]["properties"]["description"].is_object());
}

/// The target-file schema accepts the template `onramp init` writes and a remote target,
/// and refuses what the loader refuses.
#[test]
fn the_target_schema_matches_the_target_loader() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schemas/target.schema.json"))
            .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let as_json = |toml_text: &str| -> serde_json::Value {
        let value: toml::Value = toml::from_str(toml_text).expect("TOML");
        serde_json::to_value(value).expect("JSON")
    };
    let built_in = onramp::config::BUILT_IN.iter().map(|(_, text)| *text);
    for text in std::iter::once(onramp::config::TARGET_TEMPLATE).chain(built_in) {
        let target = as_json(text);
        assert!(
            validator.is_valid(&target),
            "{text}\n{:?}",
            validator
                .iter_errors(&target)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
    }
    let remote = as_json(
        "name = \"acme\"\n[endpoints]\nauthorize = \"https://a/x\"\ntoken = \"https://a/t\"\nfhir_base = \"https://a/r4\"\n[client]\nid = \"${ID}\"\nsecret = \"${SECRET}\"\nredirect_uri = \"http://localhost:1/cb\"\nauth = \"basic\"\n",
    );
    assert!(validator.is_valid(&remote));
    let example_app = include_str!("../examples/app/target.toml");
    assert!(validator.is_valid(&as_json(example_app)));
    let validating = "[sandbox]\n[validation]\ntier = \"structure\"\nprofiles = []\n";
    assert!(validator.is_valid(&as_json(validating)));
    let target =
        onramp::config::Target::from_toml(validating, std::path::Path::new("t.toml"), |_| None)
            .expect("loads");
    assert_eq!(target.validation.tier, onramp::validate::Tier::Structure);
    assert!(target.validation.profiles.is_empty());
    for bad in [
        "[sandbox]\nmembers = 0\n",
        "[sandbox]\n[endpoints]\nauthorize = \"a\"\ntoken = \"b\"\nfhir_base = \"c\"\n",
        "[sandbox]\n[client]\nid = \"x\"\nsecret = \"y\"\nauth = \"digest\"\n",
        "[sandbox]\ncolour = \"blue\"\n",
        "[sandbox]\npersona = \"acme\"\n",
        "sign_in = \"demo-plan\"\nfeatures = \"f\"\n[sandbox]\n",
        "[sandbox]\n[browser]\ntimeout = \"soon\"\n",
        "[sandbox]\n[member]\nzip = \"1\"\n[[members]]\nzip = \"2\"\n",
        "members = []\n[sandbox]\n",
        "[sandbox]\n[validation]\ntier = \"all\"\n",
        "[sandbox]\n[validation]\nprofiles = [\"not a url\"]\n",
        "[sandbox]\n[validation]\nigs = [\"\"]\n",
        "[sandbox]\n[validation]\nstrict = true\n",
        "[sandbox]\n[app]\nname = \"no url\"\n",
        "[sandbox]\n[app]\nurl = \"ftp://app.example/\"\n",
        "[sandbox]\n[app]\nurl = \"http://a/\"\ncommand = []\n",
        "[sandbox]\n[app]\nurl = \"http://a/\"\ncolour = \"blue\"\n",
    ] {
        assert!(!validator.is_valid(&as_json(bad)), "schema accepts {bad:?}");
        assert!(
            onramp::config::Target::from_toml(bad, std::path::Path::new("t.toml"), |_| None)
                .is_err(),
            "loader accepts {bad:?}"
        );
    }
}

#[test]
fn the_schema_is_r4_4_0_1s() {
    let schema = schema();
    let defs = &schema["definitions"];
    // 4.0.0's FHIRVersion enum ended at 4.0.0; 4.0.1 lists itself.
    for path in [
        "/CapabilityStatement/properties/fhirVersion/enum",
        "/StructureDefinition/properties/fhirVersion/enum",
        "/ImplementationGuide/properties/fhirVersion/items/enum",
    ] {
        let versions = defs.pointer(path).and_then(|v| v.as_array()).expect(path);
        assert!(versions.iter().any(|v| v == "4.0.1"), "{path}");
    }
    // 4.0.1 made Meta a type of the open choice elements.
    assert!(defs.pointer("/Extension/properties/valueMeta").is_some());
    // The source package's own additions are gone.
    for medplum in [
        "/Meta/properties/project",
        "/Reference/properties/resource",
        "/Project",
    ] {
        assert!(defs.pointer(medplum).is_none(), "{medplum}");
    }
    // An R4 server's own CapabilityStatement is valid at the schema tier.
    let statement = serde_json::json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-07",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"]
    });
    let validator = onramp::validate::Validator::new(onramp::validate::Tier::Schema);
    let checked = validator.check_bytes(statement.to_string().as_bytes());
    assert!(checked.findings.is_empty(), "{:?}", checked.findings);
}

#[test]
fn the_carin_expectations_are_what_the_script_derived() {
    let bytes = include_bytes!("../schemas/carin-bb/capability.json");
    let digest: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest, "f962140e0c47ebf033ad389718f01816a8363334a0f4cc11c2127418392a9a03",
        "regenerated? record the new sha256 in schemas/README.md and here"
    );
}

#[test]
fn the_onboarding_schema_accepts_the_template_and_refuses_unknown_keys() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schemas/onboarding.schema.json"))
            .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let template: toml::Value = toml::from_str(onramp::checklist::MANIFEST_TEMPLATE).expect("TOML");
    let template = serde_json::to_value(template).expect("JSON");
    assert!(
        validator.is_valid(&template),
        "{:?}",
        validator
            .iter_errors(&template)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    assert!(!validator.is_valid(&serde_json::json!({"company": "x", "colour": "blue"})));
    assert!(!validator.is_valid(&serde_json::json!({"customers": "everyone"})));
}

/// The derived structure rules and CARIN profiles are what `schemas/structure.py` wrote
/// from the pinned sources; `schemas/README.md` records the same sha256s.
#[test]
fn the_structure_rules_and_profiles_are_what_the_script_derived() {
    let readme = include_str!("../schemas/README.md");
    for (name, bytes, expected) in [
        (
            "fhir.r4.structure.json",
            onramp::validate::model::STRUCTURE_JSON.as_bytes(),
            STRUCTURE_SHA256,
        ),
        (
            "fhir.r4.terminology.json",
            &std::fs::read("schemas/fhir.r4.terminology.json").unwrap(),
            TERMINOLOGY_SHA256,
        ),
        (
            "carin-profiles.python.json",
            &std::fs::read("tests/fixtures/validate/carin-profiles.python.json").unwrap(),
            PROFILES_SHA256,
        ),
    ]
    .into_iter()
    .chain(onramp::validate::catalog::SHIPPED.iter().map(|shipped| {
        let name = shipped.file_name();
        let expected = PACKAGE_SHA256
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no sha256 pinned for {name}"))
            .1;
        (name, shipped.bytes(), expected)
    })) {
        let digest: String = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest, expected,
            "{name} changed: regenerate with schemas/structure.py and record the new sha256"
        );
        assert!(
            readme.contains(expected),
            "schemas/README.md records another sha256 for {name}"
        );
    }
}

/// sha256 of `schemas/fhir.r4.structure.json`.
const STRUCTURE_SHA256: &str = "902756b8854b3e5868ad71cba4e4a4068ff111fdbe1ccbf34dc6b1dd6c8ef333";
/// sha256 of the Python derivation of CARIN's profiles, which the Rust one must equal.
const PROFILES_SHA256: &str = "5881353a3af088daaf1823126e91e182c967eee4cbf974c93d0149f27acea50c";
/// sha256 of `schemas/fhir.r4.terminology.json`.
const TERMINOLOGY_SHA256: &str = "cc6da1343274b89a3f935959fea5666a771721c3a9da31102d9b9d44e121eefb";
/// sha256 of each package in `schemas/packages/`: HL7's as published, and the extract of
/// R4's own profiles that `schemas/structure.py` writes.
const PACKAGE_SHA256: &[(&str, &str)] = &[
    (
        "hl7.fhir.r4.core-profiles-4.0.1.tgz",
        "fabf535547bb18ef477595b80fab6bf53aad078448b51022464f182ce0381cfd",
    ),
    (
        "hl7.fhir.us.carin-bb-2.0.0.tgz",
        "59d148ab444125c8eea53c6197de08c8f1781aaaa55a03858640db4a5f8a819b",
    ),
    (
        "hl7.fhir.us.core-3.1.1.tgz",
        "ff0fcb892952090d61f8f1604a9d70081136f14b53ba370f1f102e4143ada152",
    ),
    (
        "hl7.fhir.us.core-6.1.0.tgz",
        "4c4e7fbb07ef2fdb35bdfc3f5d09a417ee0d8644ea17cb3692ca6d03c4358b1d",
    ),
    (
        "hl7.fhir.us.davinci-drug-formulary-2.0.1.tgz",
        "b68da42cd1026d87659e80b4c5b3ecfe9203f8b2755e4067733ed64b1c609d6d",
    ),
    (
        "hl7.fhir.us.davinci-pdex-plan-net-1.1.0.tgz",
        "a23776ce2b7a46dc2de6037a1336dff8025d9eebd8d2cbcfb35c8f025ed4a41a",
    ),
];

/// The rules the derivation promises: every R4 resource type but the few the package
/// redefined, `ele-1` on every element, and the core invariants claims data meets.
#[test]
fn the_structure_rules_cover_r4() {
    let model = onramp::validate::model::Model::global();
    let registry = onramp::validate::Registry::global();
    let missing: Vec<&String> = registry
        .resource_types()
        .iter()
        .filter(|t| model.resource(t).is_none())
        .collect();
    let not_derived: Vec<&str> = model.not_derived.iter().map(|t| &**t).collect();
    assert_eq!(
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        not_derived
            .iter()
            .copied()
            .filter(|t| registry.is_resource_type(t))
            .collect::<Vec<_>>()
    );
    assert!(missing.len() <= 6, "{missing:?}");
    assert_eq!(model.every_element.len(), 1);
    for key in [
        "ele-1", "ext-1", "per-1", "ref-1", "dom-2", "dom-3", "dom-4", "dom-5", "qty-3", "org-1",
        "pat-1", "bdl-1",
    ] {
        let id = model
            .constraint_id(key)
            .unwrap_or_else(|| panic!("no {key}"));
        let constraint = model.constraint(id);
        assert!(
            constraint.compiled.is_ok(),
            "{key} does not compile: {:?}",
            constraint.compiled
        );
    }
    // Every error constraint but the XHTML checks compiles.
    let failing: Vec<&str> = model
        .constraints
        .iter()
        .filter(|c| c.error && c.compiled.is_err())
        .map(|c| &*c.key)
        .collect();
    assert_eq!(
        failing,
        ["txt-1", "txt-2"],
        "constraints that do not compile"
    );
}
