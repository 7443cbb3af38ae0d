//! Must Support, as Inferno's test kits judge it: over every resource checked against a
//! profile (in a run, or in one `onramp validate` call), each must-support element of the
//! profile appears at least once. A value made only of a data-absent-reason extension does
//! not count; a slice counts by the items that belong to it (by its discriminator: pattern,
//! binding, extension URL or type), a choice element by any of its types, and an element
//! with a pattern or fixed value only where the value has it.
//!
//! Also here, because both tiers use them: how an item is told to belong to a slice
//! ([`Match`]), and FHIR's pattern semantics ([`matches_pattern`]).

use std::collections::BTreeMap;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::model::{Membership, ValueSet, ValueSetId};

const DATA_ABSENT_REASON: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";

/// How an item is told to belong to a slice.
#[derive(Debug, PartialEq)]
pub enum Match {
    /// The value at the path contains the pattern.
    Pattern(Box<[Box<str>]>, serde_json::Value),
    /// The value at the path is in the value set (`None`: one that cannot be listed).
    Binding(Box<[Box<str>]>, Option<ValueSetId>),
    /// An extension's `url`.
    Url(Box<str>),
    /// A choice element's JSON name (`valueQuantity`).
    Type(Box<str>),
}

/// One must-support element of a profile, compiled.
#[derive(Debug)]
pub struct Element {
    /// Its id in the profile (`Patient.extension:race`, `Observation.value[x]`).
    pub id: Box<str>,
    pub steps: Box<[Step]>,
    pub pattern: Option<serde_json::Value>,
    /// How many of its first steps are the previous element's first steps ([`shared_steps`]):
    /// what those found is reused, not walked again.
    pub shared: usize,
}

/// Fill in each element's [`Element::shared`]: a profile lists its elements in tree order,
/// so an element mostly walks its parent's path (or a sibling's) and one step more.
pub fn shared_steps(elements: &mut [Element]) {
    for n in 1..elements.len() {
        let (before, after) = elements.split_at_mut(n);
        let (previous, element) = (&before[n - 1], &mut after[0]);
        element.shared = previous
            .steps
            .iter()
            .zip(element.steps.iter())
            .take_while(|(a, b)| a == b)
            .count();
    }
}

/// One step of a must-support element's path.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub name: Box<str>,
    pub choice: bool,
    pub matches: Box<[Match]>,
}

/// How many resources of one profile were seen, and how many carried each must-support
/// element.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    /// The profile's short name.
    pub profile: Box<str>,
    pub resources: u64,
    /// Element id → resources that carry it, in the profile's order.
    pub elements: Vec<(Box<str>, u64)>,
}

impl Coverage {
    /// The elements no resource carried.
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.elements
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(id, _)| &**id)
    }

    /// Add another count of the same profile.
    pub fn add(&mut self, other: &Coverage) {
        self.resources += other.resources;
        for ((_, mine), (_, theirs)) in self.elements.iter_mut().zip(&other.elements) {
            *mine += theirs;
        }
    }
}

/// Must-support coverage per profile URL.
pub type Tally = BTreeMap<Box<str>, Coverage>;

/// Add `other`'s counts into `all`.
pub fn merge(all: &mut Tally, other: &Tally) {
    for (url, coverage) in other {
        match all.get_mut(url) {
            Some(mine) => mine.add(coverage),
            None => {
                all.insert(url.clone(), coverage.clone());
            }
        }
    }
}

/// Count one resource checked against a profile with these must-support elements.
///
/// The values each element's path leads to are found step by step; the steps an element
/// shares with the one before it ([`Element::shared`]) are not walked again, so a claim's
/// forty slices of `supportingInfo` look through its `supportingInfo` once each, not its
/// whole tree.
pub fn count(
    tally: &mut Tally,
    url: &str,
    short: &str,
    elements: &[Element],
    resource: &Value,
    value_sets: &[ValueSet],
) {
    let coverage = tally.entry(url.into()).or_insert_with(|| Coverage {
        profile: short.into(),
        resources: 0,
        elements: elements.iter().map(|e| (e.id.clone(), 0)).collect(),
    });
    coverage.resources += 1;
    // levels[k]: the values the last element walked reached after k steps.
    let mut levels: Vec<Vec<&Value>> = vec![vec![resource]];
    for (element, (_, seen)) in elements.iter().zip(coverage.elements.iter_mut()) {
        levels.truncate(element.shared + 1);
        while levels.len() <= element.steps.len() {
            let current = levels.last().map(Vec::as_slice).unwrap_or_default();
            if current.is_empty() {
                break;
            }
            let next = step_values(current, &element.steps[levels.len() - 1], value_sets);
            levels.push(next);
        }
        let carried = levels.len() == element.steps.len() + 1
            && levels.last().is_some_and(|values| {
                values.iter().any(|value| {
                    !absent_only(value)
                        && element
                            .pattern
                            .as_ref()
                            .is_none_or(|pattern| matches_pattern(value, pattern))
                })
            });
        if carried {
            *seen += 1;
        }
    }
}

/// The items one step leads to from `current`: the members it names (any type of a choice
/// element), array items one by one, those the step's slice tests admit.
fn step_values<'d>(current: &[&'d Value], step: &Step, value_sets: &[ValueSet]) -> Vec<&'d Value> {
    let mut next = Vec::new();
    for &value in current {
        let Some(object) = value.as_object() else {
            continue;
        };
        for (name, found) in object.iter() {
            let belongs = if step.choice {
                name.len() > step.name.len()
                    && name.starts_with(&*step.name)
                    && name[step.name.len()..].starts_with(|c: char| c.is_ascii_uppercase())
            } else {
                name == &*step.name
            };
            if !belongs {
                continue;
            }
            let admitted = |item: &&'d Value| {
                step.matches
                    .iter()
                    .all(|test| test.admits(name, item, value_sets))
            };
            match found.as_array() {
                Some(items) => next.extend(items.iter().filter(admitted)),
                None => next.extend(std::iter::once(found).filter(admitted)),
            }
        }
    }
    next
}

/// A value that is only a data-absent-reason extension (and maybe an id).
fn absent_only(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let extensions = object.get(&"extension").and_then(|e| e.as_array());
    object
        .iter()
        .all(|(name, _)| name == "extension" || name == "id")
        && extensions.is_some_and(|list| {
            !list.is_empty()
                && list
                    .iter()
                    .all(|e| e.get("url").and_then(|u| u.as_str()) == Some(DATA_ABSENT_REASON))
        })
}

impl Match {
    /// Whether an item (under JSON member `json`) passes this test.
    pub fn admits(&self, json: &str, item: &Value, value_sets: &[ValueSet]) -> bool {
        match self {
            Match::Type(name) => json.trim_start_matches('_') == &**name,
            Match::Url(url) => item
                .get("url")
                .and_then(|u| u.as_str())
                .is_some_and(|u| u == &**url),
            Match::Pattern(path, pattern) => values_at(item, path)
                .iter()
                .any(|v| matches_pattern(v, pattern)),
            Match::Binding(path, set) => {
                let Some(set) = set.map(|s| &value_sets[s as usize]) else {
                    return true; // a set that cannot be listed: cannot tell it apart
                };
                values_at(item, path).iter().any(|v| in_set(v, set))
            }
        }
    }
}

/// Whether a CodeableConcept, Coding or code has a code of the set (or one not listable).
fn in_set(value: &Value, set: &ValueSet) -> bool {
    if let Some(code) = value.as_str() {
        return set.code(code) != Membership::NotIn;
    }
    let codings: Vec<&Value> = match value.get("coding").and_then(|c| c.as_array()) {
        Some(c) => c.iter().collect(),
        None => vec![value],
    };
    codings.iter().any(|c| {
        c.get("code").and_then(|x| x.as_str()).is_some_and(|code| {
            set.coding(c.get("system").and_then(|s| s.as_str()), code) != Membership::NotIn
        })
    })
}

/// The values at a dotted element path below `value` (`$this` is the empty path).
pub fn values_at<'d>(value: &'d Value, path: &[Box<str>]) -> Vec<&'d Value> {
    let mut current = vec![value];
    for step in path {
        let mut next = Vec::new();
        for v in current {
            if let Some(found) = v.get(&**step) {
                match found.as_array() {
                    Some(items) => next.extend(items.iter()),
                    None => next.push(found),
                }
            }
        }
        current = next;
    }
    current
}

/// FHIR pattern semantics: the instance has at least what the pattern has; a pattern array's
/// every item matches some item of the instance's array.
pub fn matches_pattern(instance: &Value, pattern: &serde_json::Value) -> bool {
    match pattern {
        serde_json::Value::Object(members) => {
            let Some(object) = instance.as_object() else {
                return false;
            };
            members
                .iter()
                .all(|(name, expected)| match object.get(&name.as_str()) {
                    Some(actual) => matches_pattern(actual, expected),
                    None => false,
                })
        }
        serde_json::Value::Array(items) => match instance.as_array() {
            Some(actual) => items
                .iter()
                .all(|expected| actual.iter().any(|a| matches_pattern(a, expected))),
            None => items.len() == 1 && matches_pattern(instance, &items[0]),
        },
        serde_json::Value::String(s) => instance.as_str() == Some(s.as_str()),
        serde_json::Value::Bool(b) => instance.as_bool() == Some(*b),
        serde_json::Value::Number(n) => instance
            .as_raw_number()
            .and_then(|r| r.as_str().parse::<f64>().ok())
            .zip(n.as_f64())
            .is_some_and(|(a, b)| a == b),
        serde_json::Value::Null => instance.is_null(),
    }
}
