//! Isolation between members: whether an answer given to one member's token holds another
//! member's data. SMART App Launch 2.0 ("Scopes and Launch Context"): a `patient/` scope
//! gives access to the resources of the patient in context, and only to them; the CMS
//! Patient Access rule (45 CFR 170.215, 42 CFR 422.119) makes a member's own claims the data
//! their app may read. A server may refuse a read of someone else's resource (401, 403,
//! 404) or answer a search for it with an empty Bundle (or ignore a parameter and return
//! the reader's own data): none of that is judged here. Only the other member's data in an
//! answer is a leak.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::failure::StepFailure;
use crate::infra::words::listed;

/// Whose data to look for: a member's Patient id, and the ids of their `kind` resources
/// (those that name them as patient, subject or beneficiary, or their Patient itself).
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub kind: &'a str,
    pub patient: &'a str,
    pub ids: &'a BTreeSet<String>,
}

/// How one member's token asks for another member's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    /// `GET Type/id`
    Read,
    /// `GET Type?_id=id`
    IdSearch,
    /// `GET Type?patient=Patient/id` (or `beneficiary`, `subject`)
    PatientSearch,
}

impl Way {
    /// How the report says it.
    pub fn describe(self) -> &'static str {
        match self {
            Way::Read => "read by id",
            Way::IdSearch => "search by _id",
            Way::PatientSearch => "search by their Patient",
        }
    }
}

/// The search parameters of `kind` that name a member's Patient: those of `patient`,
/// `beneficiary` and `subject` that the CARIN IG (or R4 core, for Coverage) defines for it,
/// else `patient` (which R4 defines for nearly every type in the Patient compartment).
/// None for Patient itself, whose own search is by `_id`.
pub fn patient_parameters(kind: &str) -> Vec<String> {
    if kind == "Patient" {
        return Vec::new();
    }
    let known: Vec<String> = ["patient", "beneficiary", "subject"]
        .into_iter()
        .filter(|code| {
            crate::payer::search::Parameter::of(kind, code)
                .is_some_and(|p| p.kind == crate::payer::search::ParamType::Reference)
        })
        .map(str::to_owned)
        .collect();
    if known.is_empty() {
        vec!["patient".to_owned()]
    } else {
        known
    }
}

/// The `Type/id` of every resource in `body` (a resource, or a Bundle's entries) that is
/// the owner's.
pub fn leaked(body: &Value, owner: Owner<'_>) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |resource: &Value| {
        if is_owners(resource, owner) {
            let kind = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let id = resource.get("id").and_then(Value::as_str).unwrap_or("?");
            found.push(format!("{kind}/{id}"));
        }
    };
    if body.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        for entry in body
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(resource) = entry.get("resource") {
                look(resource);
            }
        }
    } else {
        look(body);
    }
    found
}

/// Whether `resource` is the owner's: their Patient, one of their `kind` resources, or any
/// resource naming their Patient as patient, subject or beneficiary.
fn is_owners(resource: &Value, owner: Owner<'_>) -> bool {
    let kind = resource.get("resourceType").and_then(Value::as_str);
    let id = resource.get("id").and_then(Value::as_str);
    if kind == Some("Patient") && id == Some(owner.patient) {
        return true;
    }
    if kind == Some(owner.kind) && id.is_some_and(|id| owner.ids.contains(id)) {
        return true;
    }
    let theirs = ("Patient".to_owned(), owner.patient.to_owned());
    ["patient", "subject", "beneficiary"].iter().any(|field| {
        resource
            .get(*field)
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .and_then(crate::payer::access::reference_target)
            .is_some_and(|target| target == theirs)
    })
}

/// What one member's token got when it asked for another member's resources.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Member numbers (0 is the run's).
    pub reader: usize,
    pub owner: usize,
    pub kind: String,
    pub way: Way,
    /// The request, redacted.
    pub url: String,
    /// `None` when no answer came.
    pub status: Option<u16>,
    /// The owner's resources in the answer.
    pub leaked: Vec<String>,
    /// How the answer reads: refused, not found, empty, or what went wrong.
    pub verdict: String,
}

/// The requests that ask, with a reader's token, for `owner`'s resources the way `way` says:
/// a read or an `_id` search of `sample` of their ids, or a search by each parameter that
/// names a Patient (`parameters`).
pub fn probe_paths(
    owner: Owner<'_>,
    way: Way,
    parameters: &[String],
    sample: usize,
) -> Vec<String> {
    let kind = owner.kind;
    match way {
        Way::Read => owner
            .ids
            .iter()
            .take(sample)
            .map(|id| format!("{kind}/{id}"))
            .collect(),
        Way::IdSearch => owner
            .ids
            .iter()
            .take(sample)
            .map(|id| format!("{kind}?_id={id}"))
            .collect(),
        Way::PatientSearch => parameters
            .iter()
            .map(|p| format!("{kind}?{p}=Patient/{}", owner.patient))
            .collect(),
    }
}

/// The verdict on `probes` of `kind`: a token served another member's data is a leak
/// (SMART App Launch 2.0: a patient/ scope reaches the patient in context only); `label`
/// names a member by number.
pub fn no_leaks(
    kind: &str,
    probes: &[Probe],
    label: impl Fn(usize) -> String,
) -> Result<(), StepFailure> {
    let leaks: Vec<String> = probes
        .iter()
        .filter(|p| !p.leaked.is_empty())
        .map(|p| {
            format!(
                "{}'s token: GET {} answered {} with {}'s {}",
                label(p.reader),
                p.url,
                p.status.unwrap_or_default(),
                label(p.owner),
                shown(&p.leaked)
            )
        })
        .collect();
    if leaks.is_empty() {
        return Ok(());
    }
    Err(StepFailure::conformance(listed(
        &format!(
            "one member's token was served another member's {kind} ({} of {} requests; SMART App Launch 2.0: a patient/ scope reaches the patient in context only):",
            leaks.len(),
            probes.len()
        ),
        &leaks,
    )))
}

/// The first three of `labels`, and how many more.
fn shown(labels: &[String]) -> String {
    let mut text = labels
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if labels.len() > 3 {
        text.push_str(&format!(" and {} more", labels.len() - 3));
    }
    text
}

/// The members that signed in as a patient an earlier member already is: for each, its
/// index, the earlier member's, and the Patient id (members whose patient is unknown are
/// passed over).
pub fn same_patient(ids: &[Option<String>]) -> Vec<(usize, usize, &str)> {
    let mut first: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut shared = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let Some(id) = id.as_deref() else { continue };
        match first.get(id) {
            Some(&earlier) => shared.push((index, earlier, id)),
            None => {
                first.insert(id, index);
            }
        }
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests of each way, and the verdict: a probe that got the owner's data fails
    /// the check, naming who read whose what.
    #[test]
    fn a_token_served_another_members_data_is_a_leak() {
        let ids = BTreeSet::from(["e1".to_owned(), "e2".to_owned()]);
        let owner = Owner {
            kind: "ExplanationOfBenefit",
            patient: "p2",
            ids: &ids,
        };
        assert_eq!(
            probe_paths(owner, Way::Read, &[], 1),
            ["ExplanationOfBenefit/e1"]
        );
        assert_eq!(
            probe_paths(owner, Way::IdSearch, &[], 3),
            ["ExplanationOfBenefit?_id=e1", "ExplanationOfBenefit?_id=e2"]
        );
        assert_eq!(
            probe_paths(owner, Way::PatientSearch, &["patient".to_owned()], 3),
            ["ExplanationOfBenefit?patient=Patient/p2"]
        );
        let probe = |leaked: &[&str]| Probe {
            reader: 0,
            owner: 1,
            kind: "ExplanationOfBenefit".into(),
            way: Way::Read,
            url: "http://fhir.example/ExplanationOfBenefit/e1".into(),
            status: Some(if leaked.is_empty() { 404 } else { 200 }),
            leaked: leaked.iter().map(|s| (*s).to_owned()).collect(),
            verdict: String::new(),
        };
        let label = |member: usize| format!("member {}", member + 1);
        assert_eq!(
            no_leaks("ExplanationOfBenefit", &[probe(&[])], label),
            Ok(())
        );
        let failure = no_leaks("ExplanationOfBenefit", &[probe(&[]), probe(&["e1"])], label)
            .expect_err("a leak");
        assert!(
            failure.message.contains("(1 of 2 requests")
                && failure.message.contains("member 1's token: GET http://fhir.example/ExplanationOfBenefit/e1 answered 200 with member 2's e1"),
            "{}",
            failure.message
        );
    }
    use serde_json::json;

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_other_members_resources_are_found_in_a_read_or_a_bundle() {
        let theirs = ids(&["c2"]);
        let owner = Owner {
            kind: "Coverage",
            patient: "p2",
            ids: &theirs,
        };
        // A read of their Coverage, by id or by what it names.
        assert_eq!(
            leaked(&json!({"resourceType": "Coverage", "id": "c2"}), owner),
            ["Coverage/c2"]
        );
        assert_eq!(
            leaked(
                &json!({"resourceType": "Coverage", "id": "new", "beneficiary": {"reference": "https://x/r4/Patient/p2"}}),
                owner
            ),
            ["Coverage/new"]
        );
        // The reader's own data, an OperationOutcome, an empty Bundle: no leak.
        assert!(
            leaked(
                &json!({"resourceType": "Coverage", "id": "c1", "beneficiary": {"reference": "Patient/p1"}}),
                owner
            )
            .is_empty()
        );
        assert!(leaked(&json!({"resourceType": "OperationOutcome"}), owner).is_empty());
        assert!(
            leaked(
                &json!({"resourceType": "Bundle", "type": "searchset", "total": 0}),
                owner
            )
            .is_empty()
        );
        // Their Patient brought in by an _include counts too.
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Coverage", "id": "c1", "beneficiary": {"reference": "Patient/p1"}}},
            {"resource": {"resourceType": "Patient", "id": "p2"}, "search": {"mode": "include"}}
        ]});
        assert_eq!(leaked(&bundle, owner), ["Patient/p2"]);
    }

    #[test]
    fn the_patient_parameters_are_r4s() {
        assert_eq!(
            patient_parameters("Coverage"),
            ["patient", "beneficiary"],
            "R4 Coverage has patient and beneficiary, not subject"
        );
        assert_eq!(patient_parameters("ExplanationOfBenefit"), ["patient"]);
        assert!(patient_parameters("Patient").is_empty());
        assert_eq!(patient_parameters("Condition"), ["patient"]);
    }

    /// Two members who are one patient are found, each against the first who was; a member
    /// whose patient is unknown is passed over.
    #[test]
    fn members_who_are_one_patient_are_found() {
        let ids = |list: &[Option<&str>]| -> Vec<Option<String>> {
            list.iter().map(|id| id.map(str::to_owned)).collect()
        };
        assert!(same_patient(&ids(&[Some("a"), Some("b"), None])).is_empty());
        assert_eq!(
            same_patient(&ids(&[Some("a"), None, Some("a"), Some("a")])),
            [(2, 0, "a"), (3, 0, "a")]
        );
    }
}
