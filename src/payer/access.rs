//! Patient Access semantics beyond the schema, judged on what [`crate::payer::fhir`] read:
//! searchset Bundles, totals consistent with what was received, no duplicates across pages,
//! every resource in the authorized member's compartment (or referenced by their data), and
//! references among returned resources that resolve (a reference to a contained resource,
//! `#id`, is R4's ref-1, which validation judges). Pure functions over search results;
//! nothing here fetches. (Reading imports validation, judging imports reading: the arrows
//! run one way, `access` → `fhir` → `validate`.)

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::payer::fhir::{ResourceSummary, SearchResult};

use super::failure::StepFailure;

/// The types the Patient Access API serves at the least: the payer guide's list, and what
/// a target requires when its file names none (`[resources] required`).
pub const REQUIRED_TYPES: [&str; 6] = [
    "ExplanationOfBenefit",
    "Coverage",
    "Organization",
    "Patient",
    "Practitioner",
    "Location",
];

/// What a check found: problems fail it; notes say what it could not look at, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Verdict {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

/// Every page is a `searchset` Bundle.
pub fn searchset(result: &SearchResult) -> Verdict {
    let mut verdict = Verdict::default();
    for page in &result.pages {
        match (page.resource_type.as_deref(), page.bundle_type.as_deref()) {
            (Some("Bundle"), Some("searchset")) => {}
            (Some("Bundle"), other) => verdict.problem(format!(
                "{} page {} is a Bundle of type {}, not searchset",
                result.kind,
                page.number,
                other.unwrap_or("(none)")
            )),
            (other, _) => verdict.problem(format!(
                "{} page {} is {}, not a Bundle",
                result.kind,
                page.number,
                other.map_or_else(|| "not a FHIR resource".to_owned(), |t| format!("a {t}"))
            )),
        }
    }
    verdict
        .problems
        .extend(result.page_problems.iter().cloned());
    verdict.notes.extend(result.page_notes.iter().cloned());
    verdict
}

/// `Bundle.total`, when given, matches the matches received over all pages.
pub fn total(result: &SearchResult) -> Verdict {
    let mut verdict = Verdict::default();
    let received: usize = result.pages.iter().map(|p| p.matches).sum();
    let Some(first) = result.pages.first() else {
        return verdict;
    };
    match first.total {
        // What the paging check already failed: the pages after it were not read.
        Some(total) if result.unfinished => verdict.notes.push(format!(
            "{}: Bundle.total says {total}; not compared, because the search was not read to its end (see the paging check)",
            result.kind
        )),
        Some(total) if total as usize != received => verdict.problem(format!(
            "{}: Bundle.total says {total} but {received} matching entries were received over {} page{}{}",
            result.kind,
            result.pages.len(),
            if result.pages.len() == 1 { "" } else { "s" },
            if (total as usize) > received { " (a next link is missing, or pages came back short)" } else { "" }
        )),
        Some(_) => {}
        None => verdict.notes.push(format!("{}: the server gives no Bundle.total (it is optional)", result.kind)),
    }
    for page in &result.pages[1..] {
        if let (Some(later), Some(total)) = (page.total, first.total)
            && later != total
        {
            verdict.problem(format!(
                "{}: page {} says total {later}, page 1 said {total}",
                result.kind, page.number
            ));
        }
    }
    verdict
}

/// No resource appears twice across the pages.
pub fn duplicates(result: &SearchResult) -> Verdict {
    let mut verdict = Verdict::default();
    let mut first_seen: HashMap<String, &ResourceSummary> = HashMap::new();
    for resource in &result.resources {
        let Some(id) = &resource.id else {
            verdict.problem(format!(
                "{} page {} entry {} has no id",
                result.kind, resource.page, resource.entry
            ));
            continue;
        };
        let key = format!("{}/{id}", resource.kind);
        if let Some(earlier) = first_seen.get(&key) {
            verdict.problem(format!(
                "{key} appears twice: page {} entry {} and page {} entry {}",
                earlier.page, earlier.entry, resource.page, resource.entry
            ));
        } else {
            first_seen.insert(key, resource);
        }
    }
    verdict
}

/// `Type/id` of a reference that can point at a returned resource; `None` for contained
/// (`#x`), `urn:` and otherwise unresolvable references.
pub fn reference_target(reference: &str) -> Option<(String, String)> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = match reference.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => reference,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let segments = match segments.iter().position(|s| *s == "_history") {
        Some(at) => &segments[..at],
        None => &segments[..],
    };
    let [.., kind, id] = segments else {
        return None;
    };
    kind.chars().next().filter(char::is_ascii_uppercase)?;
    Some(((*kind).to_owned(), (*id).to_owned()))
}

/// Every resource belongs to the member: Patient is theirs; resources with a `patient`,
/// `subject` or `beneficiary` point at them; every other resource (Organization,
/// Practitioner, Location, ...) is referenced by the member's data.
///
/// The member is the token response's `patient`, else the one Patient the Patient search
/// returned (`patients` is how many it returned, `None` when it did not run). When neither
/// says who the member is, nothing can be shown to be theirs, and the check fails.
pub fn membership(
    result: &SearchResult,
    patient_id: Option<&str>,
    patients: Option<usize>,
    all: &BTreeMap<String, Arc<SearchResult>>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let Some(patient_id) = patient_id else {
        verdict.problem(format!(
            "{}: whose data this is cannot be established: the token response names no patient (SMART App Launch 2.0: `patient` is returned with patient-level scopes) and the Patient search returned {}, not exactly one Patient",
            result.kind,
            match patients {
                Some(n) => format!("{n} Patients"),
                None => "nothing (it did not run)".to_owned(),
            }
        ));
        return verdict;
    };
    let mut owners = Owners::new(patient_id);
    let owned_kind = |kind: &str| matches!(kind, "ExplanationOfBenefit" | "Coverage");
    let mut shared = Vec::new();
    for resource in &result.resources {
        let label = resource.label();
        if &*resource.kind == "Patient" {
            if resource.id.as_deref() != Some(patient_id) {
                verdict.problem(format!(
                    "{label} is not the authorized member's Patient (Patient/{patient_id})"
                ));
            }
        } else if !resource.owners.is_empty() {
            for owner in &resource.owners {
                if !owners.is_member(owner) {
                    verdict.problem(format!(
                        "{label} belongs to {owner}, not the authorized member Patient/{patient_id}"
                    ));
                }
            }
        } else if owned_kind(&resource.kind) {
            verdict.problem(format!(
                "{label} names no patient, so it cannot be shown to belong to the member"
            ));
        } else {
            shared.push(resource);
        }
    }
    if shared.is_empty() {
        return verdict;
    }
    let unread: Vec<&str> = all
        .values()
        .filter(|r| r.failure.is_some() && r.kind != result.kind)
        .map(|r| r.kind.as_str())
        .collect();
    if !unread.is_empty() {
        verdict.notes.push(format!(
            "{}: whether each is referenced by the member's data was not checked, because {} could not be read",
            result.kind,
            unread.join(", ")
        ));
        return verdict;
    }
    let referenced = member_references(patient_id, all);
    for resource in shared {
        let key = (
            resource.kind.to_string(),
            resource.id.clone().unwrap_or_default(),
        );
        if !referenced.contains(&key) {
            verdict.problem(format!(
                "{} is not referenced by the member's data; it may belong to someone else",
                resource.label()
            ));
        }
    }
    verdict
}

/// Whether an owner reference (`patient`, `subject`, `beneficiary`) names the member: read
/// once per distinct reference, since a member's 100,000 claims all name the same one.
struct Owners<'a> {
    member: (String, String),
    known: HashMap<&'a str, bool>,
}

impl<'a> Owners<'a> {
    fn new(patient_id: &str) -> Self {
        Self {
            member: ("Patient".to_owned(), patient_id.to_owned()),
            known: HashMap::new(),
        }
    }

    fn is_member(&mut self, reference: &'a str) -> bool {
        let member = &self.member;
        *self
            .known
            .entry(reference)
            .or_insert_with(|| reference_target(reference).as_ref() == Some(member))
    }
}

/// `Type/id` of everything the member's data references, followed through returned
/// resources that are themselves referenced (a Location's managing Organization, say).
/// Each distinct reference is followed once.
fn member_references(
    patient_id: &str,
    all: &BTreeMap<String, Arc<SearchResult>>,
) -> BTreeSet<(String, String)> {
    let by_key: HashMap<(&str, &str), &ResourceSummary> = all
        .values()
        .flat_map(|r| r.resources.iter())
        .filter_map(|r| Some(((&*r.kind, r.id.as_deref()?), r)))
        .collect();
    let mut owners = Owners::new(patient_id);
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut queue: Vec<&ResourceSummary> = all
        .values()
        .flat_map(|r| r.resources.iter())
        .filter(|r| {
            (&*r.kind == "Patient" && r.id.as_deref() == Some(patient_id))
                || r.owners.iter().any(|o| owners.is_member(o))
        })
        .collect();
    let mut followed: HashSet<&str> = HashSet::new();
    while let Some(resource) = queue.pop() {
        for reference in &resource.references {
            if !followed.insert(reference) {
                continue;
            }
            let Some(key) = reference_target(reference) else {
                continue;
            };
            if let Some(next) = by_key.get(&(key.0.as_str(), key.1.as_str()))
                && !seen.contains(&key)
            {
                queue.push(next);
            }
            seen.insert(key);
        }
    }
    seen
}

/// What became of one reference among the returned resources ([`references`]).
enum Resolved {
    /// Among them, or not one to judge here (a local or `urn:` reference, a type not read).
    Fine,
    /// Its type was read, and it is not there.
    Missing(String, String),
    /// Its type's search failed.
    Unchecked(String),
}

/// References from these resources to the required types resolve among what was returned.
pub fn references(result: &SearchResult, all: &BTreeMap<String, Arc<SearchResult>>) -> Verdict {
    let mut verdict = Verdict::default();
    let returned: HashSet<(&str, &str)> = all
        .values()
        .flat_map(|r| r.resources.iter())
        .filter_map(|r| Some((&*r.kind, r.id.as_deref()?)))
        .collect();
    let mut unchecked: BTreeSet<String> = BTreeSet::new();
    // Each distinct reference is resolved once: a member's claims name the same few.
    let mut resolved: HashMap<&str, Resolved> = HashMap::new();
    let resolve = |reference: &str| {
        // A local reference (`#id`) is within the resource: whether it resolves is R4's
        // ref-1, which the validation of the resource judges.
        if reference.starts_with('#') {
            return Resolved::Fine;
        }
        let Some((kind, id)) = reference_target(reference) else {
            return Resolved::Fine;
        };
        match all.get(&kind) {
            Some(search) if search.failure.is_some() => Resolved::Unchecked(kind),
            Some(_) if !returned.contains(&(kind.as_str(), id.as_str())) => {
                Resolved::Missing(kind, id)
            }
            Some(_) | None => Resolved::Fine,
        }
    };
    for resource in &result.resources {
        for reference in &resource.references {
            let outcome = resolved
                .entry(reference)
                .or_insert_with(|| resolve(reference));
            match outcome {
                Resolved::Fine => {}
                Resolved::Missing(kind, id) => verdict.problem(format!(
                    "{} references {kind}/{id}, which is not among the {kind} resources returned",
                    resource.label()
                )),
                Resolved::Unchecked(kind) => {
                    unchecked.insert(kind.clone());
                }
            }
        }
    }
    if !unchecked.is_empty() {
        let list: Vec<String> = unchecked.into_iter().collect();
        verdict.notes.push(format!(
            "{}: references to {} were not checked because that search failed",
            result.kind,
            list.join(", ")
        ));
    }
    verdict
}

/// A read without an access token (CARIN BB 2.0.0 CapabilityStatement, security): refused
/// with 401, 403 or 404; a 2xx means member data is readable by anyone.
pub fn refused_anonymously(status: u16) -> Result<(), StepFailure> {
    match status {
        401 | 403 | 404 => Ok(()),
        status if (200..300).contains(&status) => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status} to a read without an access token: member data is readable by anyone"
        ))),
        status => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status} to a read without an access token; CARIN BB 2.0.0 (CapabilityStatement, security) says 401, 403 or 404"
        ))),
    }
}

/// The refusal of a read without a token, at its best: a 401 with a Bearer challenge
/// (RFC 6750 §3, RFC 7235 §3.1: a SHOULD, so a warning); a read that was not refused leaves
/// nothing to judge.
pub fn challenged(status: u16, www_authenticate: Option<&str>) -> Result<(), StepFailure> {
    if !matches!(status, 401 | 403 | 404) {
        return Err(StepFailure::blocked("the read was not refused"));
    }
    match (status, www_authenticate) {
        (401, Some(challenge)) if challenge.trim_start().len() >= 6 => Ok(()),
        (401, _) => Err(StepFailure::warning(
            "the 401 has no WWW-Authenticate header; RFC 6750 §3 and RFC 7235 §3.1 ask for a Bearer challenge, so that an app knows to authenticate",
        )),
        (status, _) => Err(StepFailure::warning(format!(
            "the refusal is {status}; CARIN allows it, but the recommended answer is 401 with WWW-Authenticate: Bearer (RFC 6750 §3)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read without a token is refused with 401, 403 or 404, best with a Bearer challenge.
    #[test]
    fn a_read_without_a_token_is_refused_and_challenged() {
        use crate::infra::fault::{FailureKind, Severity};
        for status in [401, 403, 404] {
            assert_eq!(refused_anonymously(status), Ok(()));
        }
        assert!(
            refused_anonymously(200)
                .expect_err("open")
                .message
                .contains("readable by anyone")
        );
        assert_eq!(
            refused_anonymously(500).expect_err("500").kind,
            FailureKind::Conformance
        );
        assert_eq!(challenged(401, Some("Bearer realm=\"x\"")), Ok(()));
        assert_eq!(
            challenged(401, None).expect_err("no challenge").severity,
            Severity::Warning
        );
        assert!(
            challenged(403, None)
                .expect_err("403")
                .message
                .contains("the refusal is 403")
        );
        assert_eq!(
            challenged(200, None).expect_err("not refused").kind,
            FailureKind::Blocked
        );
    }
    use crate::payer::fhir::PageInfo;

    fn resource(kind: &str, id: &str, owners: &[&str], references: &[&str]) -> ResourceSummary {
        ResourceSummary {
            kind: kind.into(),
            id: Some(id.into()),
            page: 1,
            entry: 0,
            owners: owners.iter().map(|s| Arc::from(*s)).collect(),
            references: references.iter().map(|s| Arc::from(*s)).collect(),
            contained: Vec::new(),
        }
    }

    fn result(kind: &str, resources: Vec<ResourceSummary>, total: Option<u64>) -> SearchResult {
        SearchResult {
            kind: kind.into(),
            pages: vec![PageInfo {
                number: 1,
                url: "u".into(),
                status: 200,
                duration_ms: 1,
                resource_type: Some("Bundle".into()),
                bundle_type: Some("searchset".into()),
                total,
                matches: resources.len(),
                entries: resources.len(),
                parse_us: 0,
                check_us: 0,
            }],
            resources,
            ..SearchResult::default()
        }
    }

    #[test]
    fn references_are_read_in_every_form() {
        assert_eq!(
            reference_target("Patient/p1"),
            Some(("Patient".into(), "p1".into()))
        );
        assert_eq!(
            reference_target("https://x.example/r4/Organization/o1"),
            Some(("Organization".into(), "o1".into()))
        );
        assert_eq!(
            reference_target("Practitioner/d1/_history/3"),
            Some(("Practitioner".into(), "d1".into()))
        );
        assert_eq!(reference_target("#contained"), None);
        assert_eq!(reference_target("urn:uuid:1234"), None);
        assert_eq!(reference_target("p1"), None);
    }

    #[test]
    fn totals_must_match_what_was_received() {
        assert!(
            total(&result(
                "Coverage",
                vec![resource("Coverage", "c", &[], &[])],
                Some(1)
            ))
            .problems
            .is_empty()
        );
        let short = total(&result(
            "ExplanationOfBenefit",
            vec![resource("ExplanationOfBenefit", "e", &[], &[])],
            Some(12),
        ));
        assert!(
            short.problems[0].contains("total says 12 but 1"),
            "{short:?}"
        );
    }

    #[test]
    fn duplicates_across_pages_are_found() {
        let twice = result(
            "Patient",
            vec![
                resource("Patient", "p", &[], &[]),
                resource("Patient", "p", &[], &[]),
            ],
            None,
        );
        assert_eq!(duplicates(&twice).problems.len(), 1);
    }

    #[test]
    fn foreign_and_unreferenced_resources_are_flagged() {
        let mut all = BTreeMap::new();
        all.insert(
            "Patient".into(),
            Arc::new(result(
                "Patient",
                vec![resource("Patient", "me", &[], &[])],
                Some(1),
            )),
        );
        all.insert(
            "ExplanationOfBenefit".into(),
            Arc::new(result(
                "ExplanationOfBenefit",
                vec![
                    resource(
                        "ExplanationOfBenefit",
                        "mine",
                        &["Patient/me"],
                        &["Patient/me", "Organization/o1", "Location/l1"],
                    ),
                    resource(
                        "ExplanationOfBenefit",
                        "theirs",
                        &["Patient/other"],
                        &["Patient/other", "Organization/o2"],
                    ),
                ],
                Some(2),
            )),
        );
        all.insert(
            "Location".into(),
            Arc::new(result(
                "Location",
                vec![resource("Location", "l1", &[], &["Organization/o3"])],
                Some(1),
            )),
        );
        all.insert(
            "Organization".into(),
            Arc::new(result(
                "Organization",
                vec![
                    resource("Organization", "o1", &[], &[]),
                    resource("Organization", "o2", &[], &[]),
                    resource("Organization", "o3", &[], &[]),
                ],
                Some(3),
            )),
        );
        let eob = membership(&all["ExplanationOfBenefit"], Some("me"), Some(1), &all);
        assert_eq!(eob.problems.len(), 1, "{eob:?}");
        assert!(eob.problems[0].contains("ExplanationOfBenefit/theirs belongs to Patient/other"));
        let orgs = membership(&all["Organization"], Some("me"), Some(1), &all);
        assert_eq!(
            orgs.problems,
            vec![
                "Organization/o2 is not referenced by the member's data; it may belong to someone else"
            ]
        );
        let refs = references(&all["ExplanationOfBenefit"], &all);
        let unknown = membership(&all["Location"], None, Some(2), &all);
        assert!(
            unknown.problems[0].contains("cannot be established")
                && unknown.problems[0].contains("2 Patients"),
            "{unknown:?}"
        );
        assert!(
            refs.problems.iter().any(|p| p.contains("Patient/other")),
            "{refs:?}"
        );
    }
}
