//! The members' clinical data, as US Core 6.1.0 shapes it: the IG's own examples (from the
//! package onramp ships, so they pass every tier against the profiles they declare), made
//! each member's. Every reference is pointed at the member's own data: the Patient at the
//! member, a Practitioner, Organization or Location at the member's own ones, and a clinical
//! resource at the member's resource of that type. The examples' narratives describe their
//! own test patient, so they are left out. What the examples leave out of the must-support
//! elements is filled in ([`complete`]), so that the plan shows every one.
//!
//! Served for every member: AllergyIntolerance, CarePlan, CareTeam, Condition,
//! DiagnosticReport, DocumentReference, Encounter, Goal, Immunization, Medication,
//! MedicationRequest, Observation (laboratory, vital signs, smoking status and more),
//! Procedure and Provenance.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;

/// The clinical types served, sorted.
pub const CLINICAL_TYPES: [&str; 14] = [
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Medication",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "Provenance",
];

/// The templates by type, in the package's order, of the US Core version in use: 6.1.0, or
/// 3.1.1 where the target's `[validation] igs` chose it.
fn templates() -> &'static BTreeMap<&'static str, Vec<Value>> {
    static V6: LazyLock<BTreeMap<&'static str, Vec<Value>>> =
        LazyLock::new(|| templates_of("6.1.0"));
    static V3: LazyLock<BTreeMap<&'static str, Vec<Value>>> =
        LazyLock::new(|| templates_of("3.1.1"));
    if crate::payer::clinical::version() == "3.1.1" {
        &V3
    } else {
        &V6
    }
}

/// The examples of US Core `version` that pass every tier against the profiles they declare
/// (US Core 3.1.1's satO2-fiO2 does not), completed.
fn templates_of(version: &str) -> BTreeMap<&'static str, Vec<Value>> {
    let mut by_type: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let shipped = crate::validate::catalog::SHIPPED
        .iter()
        .find(|s| s.name == "hl7.fhir.us.core" && s.version == version);
    let examples = shipped
        .and_then(|s| crate::validate::package::examples(s.bytes(), &s.id()).ok())
        .unwrap_or_default();
    let validator = crate::validate::Validator::default();
    for example in examples {
        let Some(kind) = example.get("resourceType").and_then(Value::as_str) else {
            continue;
        };
        let Some(kind) = CLINICAL_TYPES.iter().find(|t| **t == kind) else {
            continue;
        };
        // Checked as the run checks it: against its declared profiles and US Core's for
        // its type.
        let checked = validator
            .clone()
            .with_profiles(&crate::payer::clinical::profiles(kind))
            .unwrap_or_else(|_| validator.clone())
            .check_bytes(example.to_string().as_bytes());
        if checked.findings.is_empty() {
            by_type.entry(kind).or_default().push(example);
        } else {
            tracing::debug!(
                "US Core {version}'s example {kind}/{} is not served: {} findings",
                example["id"].as_str().unwrap_or_default(),
                checked.findings.len()
            );
        }
    }
    complete(&mut by_type);
    by_type
}

/// Whether `resource` declares the US Core profile whose URL ends in `/name`.
fn declares(resource: &Value, name: &str) -> bool {
    resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .is_some_and(|all| {
            all.iter()
                .filter_map(Value::as_str)
                .any(|url| url.rsplit('/').next() == Some(name))
        })
}

/// Fill in what the examples leave out so that, together, every member's data carries every
/// must-support element of each profile served (as `the <type> resources carry every
/// must-support element` counts): a CarePlan's narrative, a resolved problem, an encounter's
/// participants and reasons, a declined immunization, a reported prescription, a lab result
/// told in words, a blood pressure without its systolic value, a pulse oximetry with the
/// inhaled oxygen concentration, a simple observation scored as a number. References name placeholders that [`repoint`] makes the
/// member's.
fn complete(by_type: &mut BTreeMap<&'static str, Vec<Value>>) {
    use serde_json::json;
    let coding = |system: &str, code: &str, display: &str| json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display });
    for plan in by_type.entry("CarePlan").or_default() {
        plan["text"] = json!({
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Assessment and plan of treatment.</p></div>"
        });
    }
    if let Some(problem) = by_type
        .entry("Condition")
        .or_default()
        .iter_mut()
        .rev()
        .find(|c| declares(c, "us-core-condition-problems-health-concerns"))
    {
        problem["clinicalStatus"] = coding(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "resolved",
            "Resolved",
        );
        problem["abatementDateTime"] = json!("2024-02-01");
    }
    for report in by_type.entry("DiagnosticReport").or_default() {
        if declares(report, "us-core-diagnosticreport-note") {
            let object = report.as_object_mut().expect("a resource");
            object
                .entry("encounter")
                .or_insert_with(|| json!({ "reference": "Encounter/any" }));
            object
                .entry("issued")
                .or_insert_with(|| json!("2024-01-12T10:00:00Z"));
            object
                .entry("performer")
                .or_insert_with(|| json!([{ "reference": "Practitioner/any" }]));
        }
    }
    if let Some(document) = by_type.entry("DocumentReference").or_default().first_mut() {
        let has_data = document["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c.pointer("/attachment/data").is_some()));
        if !has_data && let Some(content) = document["content"].as_array_mut() {
            content.push(json!({
                "attachment": { "contentType": "text/plain", "data": "RGlzY2hhcmdlIHN1bW1hcnku" }
            }));
        }
        let object = document.as_object_mut().expect("a resource");
        object
            .entry("custodian")
            .or_insert_with(|| json!({ "reference": "Organization/any" }));
        let context = object.entry("context").or_insert_with(|| json!({}));
        if context.get("encounter").is_none() {
            context["encounter"] = json!([{ "reference": "Encounter/any" }]);
        }
    }
    if let Some(encounter) = by_type.entry("Encounter").or_default().first_mut() {
        if encounter.get("hospitalization").is_none() {
            encounter["hospitalization"] = json!({
                "dischargeDisposition": coding(
                    "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                    "home",
                    "Home"
                )
            });
        }
        if encounter.get("location").is_none() {
            encounter["location"] = json!([{ "location": { "reference": "Location/any" } }]);
        }
        encounter["identifier"] =
            json!([{ "system": "http://example.org/fhir/sid/encounter", "value": "E-1036" }]);
        encounter["participant"] = json!([{
            "type": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND", "attender")],
            "period": { "start": "2024-01-10T09:00:00Z", "end": "2024-01-12T16:00:00Z" },
            "individual": { "reference": "Practitioner/any" }
        }]);
        encounter["reasonCode"] = json!([coding("http://snomed.info/sct", "386661006", "Fever")]);
        encounter["reasonReference"] = json!([{ "reference": "Condition/any" }]);
        encounter["serviceProvider"] = json!({ "reference": "Organization/any" });
    }
    for goal in by_type.entry("Goal").or_default() {
        if goal.get("startCodeableConcept").is_none() {
            goal["startDate"] = json!("2024-01-15");
        }
    }
    let immunizations = by_type.entry("Immunization").or_default();
    if let Some(first) = immunizations.first() {
        let mut declined = first.clone();
        declined["status"] = json!("not-done");
        declined["statusReason"] = coding(
            "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "PATOBJ",
            "patient objection",
        );
        immunizations.push(declined);
    }
    let requests = by_type.entry("MedicationRequest").or_default();
    for request in requests.iter_mut() {
        request["category"] = json!([coding(
            "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "community",
            "Community"
        )]);
    }
    if let Some(request) = requests
        .iter_mut()
        .find(|r| r.get("reportedBoolean").is_none())
    {
        request["reportedReference"] = json!({ "reference": "Practitioner/any" });
    }
    complete_observations(by_type.entry("Observation").or_default());
}

/// The Observations [`complete`] adds: a lab result in words, a blood pressure without its
/// systolic value, a simple observation scored as a number; and a pulse oximetry's inhaled
/// oxygen concentration.
fn complete_observations(observations: &mut Vec<Value>) {
    use serde_json::json;
    let coding = |system: &str, code: &str, display: &str| json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display });
    let mut more = Vec::new();
    if let Some(lab) = observations
        .iter()
        .find(|o| declares(o, "us-core-observation-lab") && o.get("valueQuantity").is_some())
    {
        let mut told = lab.clone();
        if let Some(object) = told.as_object_mut() {
            object.remove("valueQuantity");
            object.remove("referenceRange");
            object.insert("valueString".into(), json!("Within the reference range"));
        }
        more.push(told);
    }
    if let Some(pressure) = observations
        .iter()
        .find(|o| declares(o, "us-core-blood-pressure"))
    {
        let mut absent = pressure.clone();
        if let Some(systolic) = absent
            .pointer_mut("/component/0")
            .and_then(Value::as_object_mut)
        {
            systolic.remove("valueQuantity");
            systolic.insert(
                "dataAbsentReason".into(),
                coding(
                    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "unknown",
                    "Unknown",
                ),
            );
        }
        more.push(absent);
    }
    if let Some(simple) = observations.iter().find(|o| {
        declares(o, "us-core-simple-observation") && o.get("valueCodeableConcept").is_some()
    }) {
        let mut scored = simple.clone();
        if let Some(object) = scored.as_object_mut() {
            object.remove("valueCodeableConcept");
            object.insert(
                "valueQuantity".into(),
                json!({ "value": 9, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}" }),
            );
        }
        more.push(scored);
    }
    observations.extend(more);
    if let Some(oximetry) = observations
        .iter_mut()
        .find(|o| declares(o, "us-core-pulse-oximetry") && o.get("component").is_some())
        && let Some(components) = oximetry["component"].as_array_mut()
    {
        components.push(json!({
            "code": coding("http://loinc.org", "3150-0", "Inhaled oxygen concentration"),
            "valueQuantity": { "value": 40, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%" }
        }));
    }
}

/// Whether `kind` is one of the clinical types served.
pub fn is_clinical(kind: &str) -> bool {
    CLINICAL_TYPES.contains(&kind)
}

/// How many `kind` resources every member has.
pub fn count(kind: &str) -> usize {
    templates().get(kind).map_or(0, Vec::len)
}

/// The member's own ids and references: who the member is and which shared resources are
/// theirs.
pub struct Owner<'a> {
    pub patient: &'a str,
    pub practitioner: &'a str,
    pub organization: &'a str,
    pub location: &'a str,
}

/// The id of the member's `n`th `kind` resource.
pub fn id_of(kind: &str, patient: &str, n: usize) -> String {
    format!("{}-{patient}-{n}", kind.to_ascii_lowercase())
}

/// The member's `n`th `kind` resource.
pub fn resource(kind: &str, n: usize, owner: &Owner) -> Option<Value> {
    let mut resource = templates().get(kind)?.get(n)?.clone();
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".into(), Value::from(id_of(kind, owner.patient, n)));
        // The examples' narratives are of their own test patient; a CarePlan's, which US
        // Core makes must-support, is the one [`complete`] wrote.
        if kind != "CarePlan" {
            object.remove("text");
        }
    }
    repoint(&mut resource, owner);
    Some(resource)
}

/// The member's `n` for an id of theirs.
pub fn index_of(kind: &str, patient: &str, id: &str) -> Option<usize> {
    let prefix = format!("{}-{patient}-", kind.to_ascii_lowercase());
    let n: usize = id.strip_prefix(&prefix)?.parse().ok()?;
    (n < count(kind) && id == id_of(kind, patient, n)).then_some(n)
}

/// Point every reference in `value` at the member's own data.
fn repoint(value: &mut Value, owner: &Owner) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| repoint(item, owner)),
        Value::Object(object) => {
            let target = object
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|reference| target(reference, owner));
            match target {
                Some(Some(reference)) => {
                    object.insert("reference".into(), Value::from(reference));
                }
                Some(None) => {
                    // Nothing of the member's to point at: the reference keeps its words only.
                    object.remove("reference");
                    object
                        .entry("display")
                        .or_insert_with(|| Value::from("not held by this plan"));
                }
                None => {}
            }
            for (_, member) in object.iter_mut() {
                repoint(member, owner);
            }
        }
        _ => {}
    }
}

/// Where a `Type/id` reference points for the member: `Some(Some(new))`, `Some(None)` when
/// the member has nothing of that type, `None` when it is not a relative reference.
fn target(reference: &str, owner: &Owner) -> Option<Option<String>> {
    let (kind, _) = reference.split_once('/')?;
    if reference.starts_with('#') || reference.contains(':') || reference.matches('/').count() != 1
    {
        return None;
    }
    Some(match kind {
        "Patient" => Some(format!("Patient/{}", owner.patient)),
        "Practitioner" => Some(format!("Practitioner/{}", owner.practitioner)),
        "Organization" => Some(format!("Organization/{}", owner.organization)),
        "Location" => Some(format!("Location/{}", owner.location)),
        _ if count(kind) > 0 => Some(format!("{kind}/{}", id_of(kind, owner.patient, 0))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_data_and_every_reference_is_the_members() {
        let owner = Owner {
            patient: "m-1",
            practitioner: "practitioner-3",
            organization: "provider-2",
            location: "location-4",
        };
        for kind in CLINICAL_TYPES {
            assert!(count(kind) > 0, "{kind} has examples");
            for n in 0..count(kind) {
                let resource = resource(kind, n, &owner).expect("a resource");
                assert_eq!(resource["id"], id_of(kind, "m-1", n));
                assert_eq!(index_of(kind, "m-1", &id_of(kind, "m-1", n)), Some(n));
                let text = resource.to_string();
                for foreign in ["Patient/example", "Practitioner/practitioner-1"] {
                    assert!(!text.contains(foreign), "{kind}/{n} still names {foreign}");
                }
                // Valid at every tier, against the US Core profiles it declares.
                let checked = crate::validate::Validator::default().check_bytes(text.as_bytes());
                assert!(
                    checked.findings.is_empty(),
                    "{kind}/{n}: {:#?}",
                    checked.findings
                );
            }
        }
    }
}
