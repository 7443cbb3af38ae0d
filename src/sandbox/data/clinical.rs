//! The members' clinical data, as US Core 6.1.0 shapes it: the IG's own examples (from the
//! package onramp ships, so they pass every tier against the profiles they declare), made
//! each member's. Every reference is pointed at the member's own data: the Patient at the
//! member, a Practitioner, Organization or Location at the member's own ones, and a clinical
//! resource at the member's resource of that type. The examples' narratives describe their
//! own test patient, so they are left out.
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

/// The templates by type, in the package's order.
static TEMPLATES: LazyLock<BTreeMap<&'static str, Vec<Value>>> = LazyLock::new(|| {
    let mut by_type: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let shipped = crate::validate::catalog::SHIPPED
        .iter()
        .find(|s| s.name == "hl7.fhir.us.core" && s.version == "6.1.0");
    let examples = shipped
        .and_then(|s| crate::validate::package::examples(s.bytes(), &s.id()).ok())
        .unwrap_or_default();
    for example in examples {
        let Some(kind) = example.get("resourceType").and_then(Value::as_str) else {
            continue;
        };
        if let Some(kind) = CLINICAL_TYPES.iter().find(|t| **t == kind) {
            by_type.entry(kind).or_default().push(example);
        }
    }
    by_type
});

/// Whether `kind` is one of the clinical types served.
pub fn is_clinical(kind: &str) -> bool {
    CLINICAL_TYPES.contains(&kind)
}

/// How many `kind` resources every member has.
pub fn count(kind: &str) -> usize {
    TEMPLATES.get(kind).map_or(0, Vec::len)
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
    let mut resource = TEMPLATES.get(kind)?.get(n)?.clone();
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".into(), Value::from(id_of(kind, owner.patient, n)));
        object.remove("text");
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
