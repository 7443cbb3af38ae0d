//! FHIR R4 validation against the official JSON Schema.
//!
//! Owns the schema registry (one compiled validator per resource type, built once, lazily,
//! shared by every thread), the checks of one document (a resource, a Bundle, a resource
//! with contained resources), and the [`Finding`]s they produce, each with a FHIR path, a
//! JSON pointer, the failing schema keyword and a message a person can act on.
//!
//! Hot path: parse with `sonic-rs`, then a boolean `is_valid` on the type's validator. Only a
//! document that fails is walked again to collect errors, each from the validator of the
//! (possibly contained) resource it belongs to, never through a 146-way `oneOf`.
//!
//! This module does not fetch anything; [`files`] reads local files and streams for
//! `onramp validate`.

pub mod files;
mod finding;
pub mod output;
mod schema;
mod sonic;

use std::sync::{LazyLock, OnceLock};

use jsonschema::{Draft, Keyword, PatternOptions, ValidationError, Validator};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

pub use finding::Finding;
pub use schema::{FHIR_VERSION, RESOURCE_KEYWORD, SCHEMA_JSON, Schema};
use sonic::Sonic;

/// What checking one document found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Checked {
    /// Resources seen: the document itself, plus each `Bundle.entry.resource` of a Bundle.
    pub resources: u64,
    /// Resources with at least one finding.
    pub invalid: u64,
    /// Findings in document order.
    pub findings: Vec<Finding>,
}

/// Compiled validators for every resource type of the schema.
pub struct Registry {
    /// Resource type names, sorted; a type's index is its validator's.
    resource_types: Vec<String>,
    /// The schema document, indexed once; every validator resolves its `$ref`s here.
    references: jsonschema::Registry<'static>,
    validators: Box<[OnceLock<Validator<Sonic>>]>,
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
    fn validator(&self, index: usize) -> &Validator<Sonic> {
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
            },
        }
    }

    /// Check a parsed document: a resource, or a Bundle whose entries are counted and
    /// reported one by one.
    pub fn check(&self, document: &sonic_rs::Value) -> Checked {
        let entries = bundle_entry_count(document);
        let resources = 1 + entries;
        if self.is_valid_resource(document) {
            return Checked {
                resources,
                invalid: 0,
                findings: Vec::new(),
            };
        }
        let mut findings = Vec::new();
        finding::collect(self, document, &mut findings);
        let mut invalid_entries: Vec<Option<usize>> = findings.iter().map(|f| f.entry).collect();
        invalid_entries.dedup();
        invalid_entries.sort_unstable();
        invalid_entries.dedup();
        Checked {
            resources,
            invalid: invalid_entries.len() as u64,
            findings,
        }
    }
}

/// Parse one JSON document exactly (numbers as written) and with `JSON.parse` semantics for
/// repeated member names. A parse failure is a finding with keyword `json`.
pub fn parse(bytes: &[u8]) -> Result<sonic_rs::Value, Box<Finding>> {
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
            sonic::dedupe(&mut document);
            Ok(document)
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
/// does. One pass, no recursion; brackets inside strings do not count.
pub fn deeper_than(bytes: &[u8], limit: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
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
