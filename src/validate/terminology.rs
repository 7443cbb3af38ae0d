//! Value sets expanded offline, honestly: from the CodeSystems and ValueSets of the loaded
//! packages and of R4 itself (`schemas/fhir.r4.terminology.json`, derived by
//! `schemas/structure.py`), plus any expansions the user adds (`--terminology DIR`).
//!
//! An expansion is per code system: the codes, or "cannot be listed here" for a system whose
//! codes are not held (LOINC, SNOMED CT, RxNorm, CPT, VSAC's value sets, …). A code of such a
//! system is never a finding; a value set none of whose content can be worked out is not
//! expanded at all, and bindings to it are counted as not evaluated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

use super::package::{CodeSystem, ComposeSet, Concept, Package, ValueSet};

/// R4's own code systems and value sets, as committed.
const R4_TERMINOLOGY: &str = include_str!("../../schemas/fhir.r4.terminology.json");

/// Codes per system; `None`: the system's codes cannot be listed here.
pub type Expansion = BTreeMap<String, Option<BTreeSet<String>>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct R4File {
    code_systems: Vec<CodeSystem>,
    value_sets: Vec<ValueSet>,
}

static R4: LazyLock<R4File> = LazyLock::new(|| {
    serde_json::from_str(R4_TERMINOLOGY).expect("the embedded R4 terminology loads")
});

/// The value sets and code systems one derivation may use, first added first found.
pub struct Terminology<'p> {
    value_sets: HashMap<&'p str, &'p ValueSet>,
    code_systems: HashMap<&'p str, &'p CodeSystem>,
    /// Expansions given whole (a `--terminology` folder).
    given: &'p HashMap<String, Expansion>,
    expanded: HashMap<String, Option<Expansion>>,
}

impl<'p> Terminology<'p> {
    /// The packages' terminology first (in the order given), then R4's.
    pub fn new(packages: &[&'p Package], given: &'p HashMap<String, Expansion>) -> Self {
        let mut terminology = Self {
            value_sets: HashMap::new(),
            code_systems: HashMap::new(),
            given,
            expanded: HashMap::new(),
        };
        for package in packages {
            for set in &package.value_sets {
                terminology.value_sets.entry(&set.url).or_insert(set);
            }
            for system in &package.code_systems {
                terminology
                    .code_systems
                    .entry(&system.url)
                    .or_insert(system);
            }
        }
        let r4: &'static R4File = &R4;
        for set in &r4.value_sets {
            terminology.value_sets.entry(&set.url).or_insert(set);
        }
        for system in &r4.code_systems {
            terminology
                .code_systems
                .entry(&system.url)
                .or_insert(system);
        }
        terminology
    }

    /// The expansion of `url` (without `|version`), or `None` when it is not held or cannot
    /// be worked out.
    pub fn expand(&mut self, url: &str) -> Option<Expansion> {
        self.expand_within(url, &mut Vec::new())
    }

    fn expand_within(&mut self, url: &str, stack: &mut Vec<String>) -> Option<Expansion> {
        if let Some(given) = self.given.get(url) {
            return Some(given.clone());
        }
        if let Some(done) = self.expanded.get(url) {
            return done.clone();
        }
        if stack.iter().any(|u| u == url) {
            return None;
        }
        stack.push(url.to_owned());
        let result = self.compose(url, stack);
        stack.pop();
        self.expanded.insert(url.to_owned(), result.clone());
        result
    }

    fn compose(&mut self, url: &str, stack: &mut Vec<String>) -> Option<Expansion> {
        let compose = self.value_sets.get(url)?.compose.as_ref()?;
        let mut systems = Expansion::new();
        for include in &compose.include {
            match (&include.system, include.value_set.as_slice()) {
                (None, [import]) => {
                    let inner = self.expand_within(import.split('|').next()?, stack)?;
                    for (system, codes) in inner {
                        merge(&mut systems, &system, codes);
                    }
                }
                (Some(system), []) => {
                    let codes = self.included(system, include);
                    merge(&mut systems, system, codes);
                }
                _ => return None,
            }
        }
        for exclude in &compose.exclude {
            let system = exclude.system.as_deref()?;
            match (systems.get_mut(system), &exclude.concept) {
                (None, _) => {}
                (Some(None), _) => {}
                (Some(Some(codes)), Some(concepts)) => {
                    for concept in concepts {
                        codes.remove(&concept.code);
                    }
                }
                (Some(Some(_)), None) => return None,
            }
        }
        Some(systems)
    }

    /// The codes one `include` of a system adds, or `None` when they cannot be listed.
    fn included(&self, system: &str, include: &ComposeSet) -> Option<BTreeSet<String>> {
        if let Some(concepts) = &include.concept {
            return Some(concepts.iter().map(|c| c.code.clone()).collect());
        }
        if let Some(filters) = &include.filter {
            return match filters.as_slice() {
                [only]
                    if only.property == "concept"
                        && (only.op == "is-a" || only.op == "descendent-of") =>
                {
                    self.descendants(system, &only.value, only.op == "is-a")
                }
                _ => None,
            };
        }
        let found = self.complete(system)?;
        let mut codes = BTreeSet::new();
        all_codes(&found.concept, &mut codes);
        Some(codes)
    }

    fn complete(&self, system: &str) -> Option<&'p CodeSystem> {
        self.code_systems
            .get(system)
            .copied()
            .filter(|s| s.content == "complete")
    }

    fn descendants(
        &self,
        system: &str,
        code: &str,
        include_self: bool,
    ) -> Option<BTreeSet<String>> {
        let found = self.complete(system)?;
        if found
            .hierarchy_meaning
            .as_deref()
            .is_some_and(|m| m != "is-a")
            || found
                .property
                .iter()
                .any(|p| p.to_string().contains("subsumedBy"))
        {
            return None;
        }
        let top = find(&found.concept, code)?;
        let mut codes = BTreeSet::new();
        if include_self {
            codes.insert(code.to_owned());
        }
        all_codes(&top.concept, &mut codes);
        Some(codes)
    }
}

fn find<'c>(concepts: &'c [Concept], code: &str) -> Option<&'c Concept> {
    concepts.iter().find_map(|c| {
        if c.code == code {
            Some(c)
        } else {
            find(&c.concept, code)
        }
    })
}

fn all_codes(concepts: &[Concept], out: &mut BTreeSet<String>) {
    for concept in concepts {
        out.insert(concept.code.clone());
        all_codes(&concept.concept, out);
    }
}

/// Add a system's codes; `None` (cannot be listed) absorbs everything.
fn merge(systems: &mut Expansion, system: &str, codes: Option<BTreeSet<String>>) {
    match systems.get_mut(system) {
        None => {
            systems.insert(system.to_owned(), codes);
        }
        Some(known) => match (known.as_mut(), codes) {
            (Some(known), Some(codes)) => known.extend(codes),
            _ => *known = None,
        },
    }
}

/// Expansions given whole: every ValueSet JSON file in `dir` that has an `expansion`.
pub fn read_expansions(dir: &std::path::Path) -> Result<HashMap<String, Expansion>, String> {
    #[derive(Deserialize)]
    struct Given {
        #[serde(default)]
        url: String,
        #[serde(default)]
        expansion: Option<GivenExpansion>,
    }
    #[derive(Deserialize)]
    struct GivenExpansion {
        #[serde(default)]
        contains: Vec<Contains>,
    }
    #[derive(Deserialize)]
    struct Contains {
        #[serde(default)]
        system: Option<String>,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        contains: Vec<Contains>,
    }
    fn add(items: &[Contains], out: &mut Expansion) {
        for item in items {
            if let (Some(system), Some(code)) = (&item.system, &item.code) {
                out.entry(system.clone())
                    .or_insert_with(|| Some(BTreeSet::new()))
                    .get_or_insert_with(BTreeSet::new)
                    .insert(code.clone());
            }
            add(&item.contains, out);
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "{}: cannot be read ({e}); give a folder of ValueSet JSON files",
            dir.display()
        )
    })?;
    let mut out = HashMap::new();
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let given: Given = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a ValueSet ({e})", path.display()))?;
        let Some(expansion) = given.expansion else {
            return Err(format!(
                "{}: has no expansion; give ValueSets with expansion.contains",
                path.display()
            ));
        };
        if given.url.is_empty() {
            return Err(format!("{}: a ValueSet without url", path.display()));
        }
        let mut codes = Expansion::new();
        add(&expansion.contains, &mut codes);
        out.insert(given.url, codes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_systems_expand_and_unknown_systems_are_not_listed() {
        let given = HashMap::new();
        let mut terminology = Terminology::new(&[], &given);
        // R4's observation-category, whole.
        let set = terminology
            .expand("http://hl7.org/fhir/ValueSet/observation-category")
            .unwrap();
        let codes = set["http://terminology.hl7.org/CodeSystem/observation-category"]
            .as_ref()
            .unwrap();
        assert!(codes.contains("vital-signs") && codes.contains("laboratory"));
        assert!(
            terminology
                .expand("http://example.org/ValueSet/none")
                .is_none()
        );
    }
}
