//! The clinical half of the Patient Access API as US Core defines it, read from the US Core
//! package in use (6.1.0 unless the target or `--ig` chose another): which types hold a
//! member's clinical data, which searches US Core's server CapabilityStatement makes SHALL
//! for each, and the first search that reads all of a member's resources of a type without
//! knowing their values yet. Data, not code: a newer US Core brings its own. Pure: no I/O.

use crate::payer::search::{ParamType, Parameter};
use crate::validate::catalog::{Catalog, US_CORE};
use crate::validate::model::Model;
use crate::validate::must_support::Match;

/// The most codes a search value lists (a value set too large to list in a URL is no
/// value to search with).
const MOST_CODES: usize = 60;

/// The types of US Core's CapabilityStatement that hold a member's data: a SHALL search of
/// each names `patient`. Sorted; `Patient` itself is not among them.
pub fn types() -> Vec<String> {
    let Some((us_core, _)) = Catalog::global().ig(US_CORE) else {
        return Vec::new();
    };
    let mut out: Vec<String> = us_core
        .searches
        .iter()
        .filter(|(kind, searches)| {
            kind.as_str() != "Patient" && searches.iter().any(|s| s.iter().any(|c| c == "patient"))
        })
        .map(|(kind, _)| kind.clone())
        .collect();
    out.sort();
    out
}

/// Whether a SHALL search of US Core's for `kind` names `patient` (a type of the member's
/// data); otherwise (Medication) its resources are read by the references to them.
pub fn searched_by_patient(kind: &str) -> bool {
    Catalog::global()
        .ig(US_CORE)
        .and_then(|(us_core, _)| us_core.searches.get(kind))
        .is_some_and(|all| all.iter().any(|s| s.iter().any(|c| c == "patient")))
}

/// The searches US Core's CapabilityStatement makes SHALL for `kind`, each its parameter
/// codes joined by `+` (`patient+category+date`), in the statement's order.
pub fn searches(kind: &str) -> Vec<String> {
    Catalog::global()
        .ig(US_CORE)
        .and_then(|(us_core, _)| us_core.searches.get(kind))
        .map(|all| all.iter().map(|s| s.join("+")).collect())
        .unwrap_or_default()
}

/// The US Core version in use (`6.1.0`), for messages.
pub fn version() -> String {
    Catalog::global().ig(US_CORE).map_or_else(
        || "(not loaded)".to_owned(),
        |(ig, _)| ig.version.to_string(),
    )
}

/// The profiles US Core's CapabilityStatement supports for `kind`.
pub fn profiles(kind: &str) -> Vec<String> {
    Catalog::global()
        .ig(US_CORE)
        .and_then(|(us_core, _)| us_core.supported.get(kind))
        .map(|urls| urls.iter().map(|u| u.to_string()).collect())
        .unwrap_or_default()
}

/// The query that reads every `kind` of the member's with a search US Core makes SHALL:
/// `patient` alone where it is one; else the fewest-parameter SHALL search whose other
/// parameters are tokens onramp can fill without data, each with every code US Core's
/// profiles of `kind` fix there (Observation's `category`) or that R4 binds it to
/// (MedicationRequest's `intent`). `None` when no SHALL search can be filled so.
pub fn first_query(kind: &str, patient: &str) -> Option<Vec<(String, String)>> {
    let mut all: Vec<Vec<String>> = Catalog::global()
        .ig(US_CORE)?
        .0
        .searches
        .get(kind)?
        .iter()
        .filter(|s| s.iter().any(|c| c == "patient"))
        .cloned()
        .collect();
    all.sort_by_key(Vec::len);
    all.into_iter().find_map(|search| {
        search
            .iter()
            .map(|code| {
                if code == "patient" {
                    return Some((code.clone(), format!("Patient/{patient}")));
                }
                let parameter = Parameter::of(kind, code)?;
                (parameter.kind == ParamType::Token)
                    .then(|| codes_at(kind, &parameter))
                    .flatten()
                    .map(|codes| (code.clone(), codes.join(",")))
            })
            .collect()
    })
}

/// Every code a token parameter's element may hold without data to look at: the patterns
/// and slice bindings US Core's profiles of `kind` put there, or else R4's required binding.
fn codes_at(kind: &str, parameter: &Parameter) -> Option<Vec<String>> {
    let [path] = parameter.paths.as_slice() else {
        return None;
    };
    let mut codes: Vec<String> = Vec::new();
    if let Some((us_core, profiles)) = Catalog::global().ig(US_CORE) {
        let supported = us_core.supported.get(kind);
        for profile in profiles
            .iter()
            .filter(|p| &*p.resource_type == kind && supported.is_some_and(|s| s.contains(&p.url)))
        {
            for element in profile.must_support.iter() {
                let names: Vec<&str> = element.steps.iter().map(|s| &*s.name).collect();
                if names.join(".") != *path {
                    continue;
                }
                if let Some(pattern) = &element.pattern {
                    codes.extend(codings(pattern));
                }
                for test in element.steps.last().map_or(&[][..], |s| &s.matches) {
                    match test {
                        Match::Pattern(at, pattern) if at.is_empty() => {
                            codes.extend(codings(pattern));
                        }
                        Match::Binding(at, Some(set)) if at.is_empty() => {
                            let set = &us_core.value_sets[*set as usize];
                            if set.systems.iter().any(|(_, codes)| codes.is_none()) {
                                return None;
                            }
                            for (system, listed) in set.systems.iter() {
                                for code in listed.iter().flat_map(|c| c.iter()) {
                                    codes.push(format!("{system}|{code}"));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if codes.is_empty() {
        codes = required_binding(kind, path)?;
    }
    codes.sort();
    codes.dedup();
    (!codes.is_empty() && codes.len() <= MOST_CODES).then_some(codes)
}

/// `system|code` of each Coding of a pattern (a CodeableConcept or a Coding).
fn codings(pattern: &serde_json::Value) -> Vec<String> {
    let list: Vec<&serde_json::Value> = match pattern.get("coding").and_then(|c| c.as_array()) {
        Some(list) => list.iter().collect(),
        None => vec![pattern],
    };
    list.iter()
        .filter_map(|c| {
            let code = c.get("code")?.as_str()?;
            Some(match c.get("system").and_then(|s| s.as_str()) {
                Some(system) => format!("{system}|{code}"),
                None => code.to_owned(),
            })
        })
        .collect()
}

/// The codes of R4's required binding of a `code` element at `path` (one step).
fn required_binding(kind: &str, path: &str) -> Option<Vec<String>> {
    let model = Model::global();
    let class = model.class(model.resource(kind)?);
    let element = class.element(path)?;
    let set = &model.value_sets[element.binding? as usize];
    if !element.types.iter().any(|t| &*t.code == "code") || set.unexpanded() {
        return None;
    }
    let mut out = Vec::new();
    for (_, codes) in set.systems.iter() {
        out.extend(codes.as_ref()?.iter().map(|c| c.to_string()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_core_names_the_clinical_types_and_their_shall_searches() {
        let types = types();
        for kind in [
            "AllergyIntolerance",
            "Condition",
            "Observation",
            "MedicationRequest",
            "Encounter",
            "Procedure",
        ] {
            assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
        }
        assert!(!types.iter().any(|t| t == "Patient" || t == "Medication"));
        let observation = searches("Observation");
        assert!(observation.contains(&"patient+category".to_owned()));
        assert!(observation.contains(&"patient+category+date".to_owned()));
        assert!(observation.contains(&"patient+code".to_owned()));
    }

    #[test]
    fn the_first_search_is_a_shall_one_filled_without_data() {
        // Condition: `patient` alone is SHALL.
        assert_eq!(
            first_query("Condition", "p1").unwrap(),
            vec![("patient".to_owned(), "Patient/p1".to_owned())]
        );
        // MedicationRequest: patient+intent, with every intent R4 binds.
        let query = first_query("MedicationRequest", "p1").unwrap();
        assert_eq!(query[0], ("patient".into(), "Patient/p1".into()));
        assert_eq!(query[1].0, "intent");
        assert!(query[1].1.split(',').any(|c| c == "order"), "{query:?}");
        assert!(query[1].1.split(',').any(|c| c == "plan"), "{query:?}");
        // Observation: patient+category, with the categories US Core's profiles fix.
        let query = first_query("Observation", "p1").unwrap();
        let category = &query[1].1;
        for code in ["laboratory", "vital-signs", "social-history", "survey"] {
            assert!(
                category
                    .split(',')
                    .any(|c| c.ends_with(&format!("|{code}"))),
                "{code} in {category}"
            );
        }
        // CarePlan: the assess-plan category US Core requires.
        let query = first_query("CarePlan", "p1").unwrap();
        assert!(query[1].1.contains("|assess-plan"), "{query:?}");
    }
}
