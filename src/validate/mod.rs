//! FHIR R4 validation in three tiers, each including the ones before it.
//!
//! - **schema**: HL7's official R4 JSON Schema, one compiled validator per resource type,
//!   built once, lazily, shared by every thread ([`Registry`]). Its verdicts are ajv 8's.
//!   Hot path: parse with `sonic-rs`, then a boolean `is_valid`; only a document that fails
//!   is walked again to collect errors, each from the validator of the (possibly contained)
//!   resource it belongs to.
//! - **structure**: what the R4 StructureDefinitions say beyond the schema ([`structure`],
//!   rules derived into `schemas/fhir.r4.structure.json`).
//! - **profile**: the CARIN Blue Button 2.0.0 profiles a resource declares or is given
//!   ([`profile`], rules derived into `schemas/carin-bb/profiles.json`).
//!
//! Every [`Finding`] has a FHIR path, a JSON pointer, its tier, a stable rule id and a
//! message a person can act on. [`Validator`] runs the tiers asked for over one document.
//!
//! This module does not fetch anything; [`files`] reads local files and streams for
//! `onramp validate`.

mod fhirpath;
pub mod files;
mod finding;
pub mod model;
pub mod output;
pub mod profile;
mod schema;
mod sonic;
pub mod structure;

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use jsonschema::{Draft, Keyword, PatternOptions, ValidationError, Validator as SchemaValidator};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

pub use finding::{Finding, Tier};
pub use schema::{FHIR_VERSION, RESOURCE_KEYWORD, SCHEMA_JSON, Schema};
use sonic::Sonic;

/// What checking one document found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Checked {
    /// Resources seen: the document itself, plus each `Bundle.entry.resource` of a Bundle.
    pub resources: u64,
    /// Resources with at least one finding.
    pub invalid: u64,
    /// Findings in document order (schema, then structure, then profile, per resource).
    pub findings: Vec<Finding>,
    /// Constraints that applied but could not be evaluated here, with how many times.
    pub undecided: Vec<(Box<str>, u64)>,
    /// Profiles resources declared that onramp does not have (or not in that version), with
    /// how many resources declared each.
    pub unknown_profiles: Vec<(Box<str>, u64)>,
    /// Resources checked against at least one profile.
    pub profiled: u64,
}

/// A parsed document and where it repeated member names (which parsing resolved to the
/// last value, as `JSON.parse` does).
#[derive(Debug)]
pub struct Parsed {
    pub document: sonic_rs::Value,
    /// JSON pointers of the repeated members.
    pub repeated: Vec<String>,
    /// Whether some object has a `_name` member (a primitive's id and extensions).
    pub companions: bool,
}

/// The tiers to run and the profiles to apply.
#[derive(Debug, Clone)]
pub struct Validator {
    tier: Tier,
    /// Profiles applied to every resource of their type, declared or not.
    given: Vec<&'static profile::Profile>,
    /// Whether a Bundle's entries are checked on every core.
    parallel_entries: bool,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new(Tier::Profile)
    }
}

impl Validator {
    /// Run the tiers up to `tier`.
    pub fn new(tier: Tier) -> Self {
        Self {
            tier,
            given: Vec::new(),
            parallel_entries: false,
        }
    }

    /// Check the entries of a large Bundle on every core (rayon's pool). Worth it for a
    /// Bundle read from a file; not for the pages of a run, whose checking already overlaps
    /// the next page's fetch, and whose pool the embedded sandbox is using to make them.
    pub fn with_parallel_entries(mut self, parallel: bool) -> Self {
        self.parallel_entries = parallel;
        self
    }

    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Apply these profiles (canonical URLs, optionally `|version`) to every resource of
    /// their type, whether it declares them or not. An unknown URL is an error naming it.
    pub fn with_profiles<S: AsRef<str>>(mut self, urls: &[S]) -> Result<Self, String> {
        for url in urls {
            let url = url.as_ref();
            let found = profile::Profiles::global().find(url).ok_or_else(|| {
                format!(
                    "unknown profile {url}: onramp has the CARIN Blue Button 2.0.0 profiles ({})",
                    profile::Profiles::global().names().join(", ")
                )
            })?;
            if !self.given.iter().any(|p| std::ptr::eq(*p, found)) {
                self.given.push(found);
            }
        }
        Ok(self)
    }

    /// The profiles given to every resource of their type.
    pub fn given_profiles(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.given.iter().map(|p| p.url.as_ref())
    }

    /// Parse `bytes` as one JSON document and check it.
    pub fn check_bytes(&self, bytes: &[u8]) -> Checked {
        match parse_document(bytes) {
            Ok(parsed) => self.check_parsed(&parsed),
            Err(finding) => Checked {
                resources: 1,
                invalid: 1,
                findings: vec![*finding],
                ..Checked::default()
            },
        }
    }

    /// Check a parsed document, reporting the member names it repeated.
    pub fn check_parsed(&self, parsed: &Parsed) -> Checked {
        self.check_with(&parsed.document, &parsed.repeated, parsed.companions)
    }

    /// Check a parsed document (a resource, or a Bundle whose entries are counted and
    /// reported one by one).
    pub fn check(&self, document: &sonic_rs::Value) -> Checked {
        self.check_with(document, &[], sonic::has_companions(document))
    }

    fn check_with(
        &self,
        document: &sonic_rs::Value,
        repeated: &[String],
        companions: bool,
    ) -> Checked {
        let mut checked = Registry::global().check(document);
        if self.tier == Tier::Schema {
            return checked;
        }
        let bundle = structure::Bundle::of(document);
        let mut more = Vec::new();
        let mut undecided = structure::Undecided::new();
        for pointer in repeated {
            more.push(structure::repeated_member(document, pointer));
        }
        // A page of a search is a Bundle of a hundred claims: its entries are checked on
        // every core (the schema tier checked the whole Bundle already).
        let entries: Vec<(usize, &sonic_rs::Value)> = match &bundle {
            Some(_) => document
                .get("entry")
                .and_then(|e| e.as_array())
                .map(|entries| {
                    entries
                        .iter()
                        .enumerate()
                        .filter_map(|(n, e)| e.get("resource").map(|r| (n, r)))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let apart = self.parallel_entries && entries.len() >= PARALLEL_ENTRIES;
        structure::check(
            document,
            bundle.as_ref(),
            companions,
            !apart,
            &mut more,
            &mut undecided,
        );
        let mut unknown = HashMap::new();
        if self.tier == Tier::Profile {
            checked.profiled = profile::check(
                document,
                bundle.as_ref(),
                companions,
                !apart,
                &self.given,
                &mut more,
                &mut undecided,
                &mut unknown,
            );
        }
        if apart {
            use rayon::prelude::*;
            let bundle = bundle.as_ref();
            let parts: Vec<EntryPart> = entries
                .par_iter()
                .map(|(n, resource)| {
                    let mut part = EntryPart::default();
                    structure::check_entry(
                        document,
                        bundle,
                        companions,
                        *n,
                        resource,
                        &mut part.findings,
                        &mut part.undecided,
                    );
                    if self.tier == Tier::Profile {
                        part.profiled = profile::check_entry(
                            bundle,
                            companions,
                            &self.given,
                            *n,
                            resource,
                            &mut part.findings,
                            &mut part.undecided,
                            &mut part.unknown,
                        );
                    }
                    part
                })
                .collect();
            for part in parts {
                more.extend(part.findings);
                for (key, count) in part.undecided {
                    *undecided.entry(key).or_default() += count;
                }
                for (url, count) in part.unknown {
                    *unknown.entry(url).or_default() += count;
                }
                checked.profiled += part.profiled;
            }
        }
        // Where a lower tier already spoke, the tiers above it add nothing at the same
        // place: one problem, one finding.
        let mut said: std::collections::HashSet<String> =
            checked.findings.iter().map(|f| f.pointer.clone()).collect();
        more.retain(|f| f.tier != Tier::Structure || !said.contains(&f.pointer));
        said.extend(
            more.iter()
                .filter(|f| f.tier == Tier::Structure)
                .map(|f| f.pointer.clone()),
        );
        more.retain(|f| f.tier != Tier::Profile || !said.contains(&f.pointer));
        if !more.is_empty() {
            checked.findings.extend(more);
            // Document order: by entry, then tier.
            checked
                .findings
                .sort_by_key(|f| (f.entry.map_or(0, |e| e + 1), f.tier));
            checked.invalid = count_invalid(&checked.findings);
        }
        let mut undecided: Vec<(Box<str>, u64)> = undecided.into_iter().collect();
        undecided.sort();
        checked.undecided = undecided;
        let mut unknown: Vec<(Box<str>, u64)> = unknown.into_iter().collect();
        unknown.sort();
        checked.unknown_profiles = unknown;
        checked
    }
}

/// Bundles with at least this many entry resources have them checked in parallel.
const PARALLEL_ENTRIES: usize = 8;

/// What checking one Bundle entry's resource found.
#[derive(Default)]
struct EntryPart {
    findings: Vec<Finding>,
    undecided: structure::Undecided,
    unknown: HashMap<Box<str>, u64>,
    profiled: u64,
}

fn count_invalid(findings: &[Finding]) -> u64 {
    let mut entries: Vec<Option<usize>> = findings.iter().map(|f| f.entry).collect();
    entries.sort_unstable();
    entries.dedup();
    entries.len() as u64
}

/// Compiled validators for every resource type of the schema.
pub struct Registry {
    /// Resource type names, sorted; a type's index is its validator's.
    resource_types: Vec<String>,
    /// The schema document, indexed once; every validator resolves its `$ref`s here.
    references: jsonschema::Registry<'static>,
    validators: Box<[OnceLock<SchemaValidator<Sonic>>]>,
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(|| Registry::new(Schema::embedded()));

impl Registry {
    fn new(schema: Schema) -> Self {
        let (document, resource_types) = schema.into_document();
        let validators = resource_types.iter().map(|_| OnceLock::new()).collect();
        let references = jsonschema::Registry::new()
            .draft(Draft::Draft6)
            .add(Schema::URI, document)
            .and_then(|builder| builder.prepare())
            .expect("the embedded FHIR schema indexes");
        Self {
            resource_types,
            references,
            validators,
        }
    }

    /// The registry for the embedded FHIR R4 schema, shared by the whole process.
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// Every resource type the schema defines, sorted.
    pub fn resource_types(&self) -> &[String] {
        &self.resource_types
    }

    /// Whether `name` is an R4 resource type.
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.type_index(name).is_some()
    }

    fn type_index(&self, name: &str) -> Option<usize> {
        self.resource_types
            .binary_search_by(|probe| probe.as_str().cmp(name))
            .ok()
    }

    /// The validator for the type at `index`, compiled on first use.
    fn validator(&self, index: usize) -> &SchemaValidator<Sonic> {
        self.validators[index].get_or_init(|| {
            let name = &self.resource_types[index];
            jsonschema::options_for::<Sonic>()
                .with_draft(Draft::Draft6)
                // FHIR's patterns need no backtracking; the linear-time engine keeps
                // hostile strings from costing more than their length.
                .with_pattern_options(PatternOptions::regex())
                .with_keyword(RESOURCE_KEYWORD, |_, _, _| Ok(Box::new(ContainedResource)))
                .with_registry(&self.references)
                .build(&Schema::reference_to(name))
                .unwrap_or_else(|error| panic!("the embedded schema for {name} compiles: {error}"))
        })
    }

    /// Whether `resource` is a valid R4 resource of the type it names.
    pub fn is_valid_resource(&self, resource: &sonic_rs::Value) -> bool {
        resource
            .get("resourceType")
            .and_then(|name| name.as_str())
            .and_then(|name| self.type_index(name))
            .is_some_and(|index| self.validator(index).is_valid(resource))
    }

    /// Parse `bytes` as one JSON document and check it.
    pub fn check_bytes(&self, bytes: &[u8]) -> Checked {
        match parse(bytes) {
            Ok(document) => self.check(&document),
            Err(finding) => Checked {
                resources: 1,
                invalid: 1,
                findings: vec![*finding],
                ..Checked::default()
            },
        }
    }

    /// Check a parsed document against the schema alone: a resource, or a Bundle whose
    /// entries are counted and reported one by one.
    pub fn check(&self, document: &sonic_rs::Value) -> Checked {
        let entries = bundle_entry_count(document);
        let resources = 1 + entries;
        if self.is_valid_resource(document) {
            return Checked {
                resources,
                ..Checked::default()
            };
        }
        let mut findings = Vec::new();
        finding::collect(self, document, &mut findings);
        Checked {
            resources,
            invalid: count_invalid(&findings),
            findings,
            ..Checked::default()
        }
    }
}

/// Parse one JSON document exactly (numbers as written) and with `JSON.parse` semantics for
/// repeated member names. A parse failure is a finding with keyword `json`.
pub fn parse(bytes: &[u8]) -> Result<sonic_rs::Value, Box<Finding>> {
    parse_document(bytes).map(|parsed| parsed.document)
}

/// [`parse`], and where the document repeated member names.
pub fn parse_document(bytes: &[u8]) -> Result<Parsed, Box<Finding>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(Finding::empty()));
    }
    if let Some(at) = deeper_than(bytes, MAX_DEPTH) {
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        return Err(Box::new(Finding::too_deep(line, column)));
    }
    match sonic_rs::from_slice::<sonic_rs::Value>(bytes) {
        Ok(mut document) => {
            let (repeated, companions) = sonic::dedupe(&mut document);
            Ok(Parsed {
                document,
                repeated,
                companions,
            })
        }
        Err(error) => Err(Box::new(Finding::malformed(&error, bytes.len()))),
    }
}

/// How deep arrays and objects may nest in a document onramp reads. FHIR resources nest a
/// few dozen levels (a Bundle of an ExplanationOfBenefit with contained resources and
/// extensions stays under 30); every walk over a document (parsing, validation, redaction,
/// rendering) is recursive, and this bound keeps each of them far inside the stack.
pub const MAX_DEPTH: usize = 512;

/// The stack of every thread that walks documents (validation workers, the run's runtime):
/// a document [`MAX_DEPTH`] levels deep needs about 10 MiB in a debug build, 2 MiB in a
/// release build. It is reserved, not used: untouched pages cost no memory.
pub const STACK_SIZE: usize = 64 << 20;

/// The byte offset where `bytes` first nests deeper than `limit` arrays and objects, if it
/// does. One pass, no recursion; brackets inside strings do not count. Strings, most of a
/// FHIR document's bytes, are skipped with `memchr` (a page of a hundred claims is 800 KB,
/// and a byte-at-a-time scan of it cost more than parsing it).
pub fn deeper_than(bytes: &[u8], limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                // To the closing quote, past escaped characters. An unterminated string
                // holds no brackets: the parser reports it.
                loop {
                    at += 1;
                    at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
                    if bytes[at] == b'"' {
                        break;
                    }
                    at += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

fn bundle_entry_count(document: &sonic_rs::Value) -> u64 {
    if document.get("resourceType").and_then(|t| t.as_str()) != Some("Bundle") {
        return 0;
    }
    document
        .get("entry")
        .and_then(|entries| entries.as_array())
        .map_or(0, |entries| {
            entries
                .iter()
                .filter(|entry| entry.get("resource").is_some())
                .count() as u64
        })
}

/// The keyword that replaces `definitions/ResourceList`: valid when the instance is a
/// resource valid against the definition its `resourceType` names.
struct ContainedResource;

impl<'i> Keyword<'i, Sonic> for ContainedResource {
    fn validate(&self, instance: &'i sonic_rs::Value) -> Result<(), ValidationError<'i>> {
        if Keyword::<Sonic>::is_valid(self, instance) {
            Ok(())
        } else {
            Err(ValidationError::custom("the resource is not valid"))
        }
    }

    fn is_valid(&self, instance: &'i sonic_rs::Value) -> bool {
        Registry::global().is_valid_resource(instance)
    }
}
