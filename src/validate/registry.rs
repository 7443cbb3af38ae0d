//! The schema tier: one compiled validator per resource type of the official R4 JSON Schema
//! ([`Registry`]), `definitions/ResourceList` replaced by a keyword that validates a
//! contained resource against the definition its `resourceType` names, and the findings of
//! a document that fails, each with its FHIR path, pointer and a message a person reads.

use std::fmt::Write as _;
use std::sync::{LazyLock, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{
    Draft, JsonType, Keyword, PatternOptions, ValidationError, Validator as SchemaValidator,
};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::document::parse;
use super::finding::{Checked, Finding, Tier, count_invalid, label, list, show, type_name};
use super::schema::{RESOURCE_KEYWORD, Schema};
use super::sonic::Sonic;

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
        collect(self, document, &mut findings);
        Checked {
            resources,
            invalid: count_invalid(&findings),
            findings,
            ..Checked::default()
        }
    }
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

// ---- the findings of a document that fails ----------------------------------------------

/// Where the resource being walked sits: the document-level facts every finding carries.
struct Scope<'d> {
    /// The resource FHIR paths start from: the document, or the Bundle entry's resource.
    path_root: &'d sonic_rs::Value,
    /// Segments from `path_root` down to the resource being walked.
    from_root: Vec<Segment>,
    /// Pointer of the resource being walked, from the document.
    pointer: String,
    entry: Option<usize>,
    resource: Option<String>,
}

#[derive(Clone)]
enum Segment {
    Name(String),
    Index(usize),
}

impl From<LocationSegment<'_>> for Segment {
    fn from(segment: LocationSegment<'_>) -> Self {
        match segment {
            LocationSegment::Property(name) => Segment::Name(name.into_owned()),
            LocationSegment::Index(index) => Segment::Index(index),
        }
    }
}

/// Collect the findings of a document that failed its boolean check.
pub(super) fn collect(registry: &Registry, document: &sonic_rs::Value, out: &mut Vec<Finding>) {
    let scope = Scope {
        path_root: document,
        from_root: Vec::new(),
        pointer: String::new(),
        entry: None,
        resource: label(document),
    };
    let is_bundle = type_name(document) == Some("Bundle");
    walk(registry, document, &scope, is_bundle, out);
}

fn walk(
    registry: &Registry,
    resource: &sonic_rs::Value,
    scope: &Scope<'_>,
    is_top_bundle: bool,
    out: &mut Vec<Finding>,
) {
    let index = match resource_type_problem(registry, resource) {
        Ok(index) => index,
        Err((keyword, message)) => {
            out.push(scope.finding(&[], keyword, message));
            return;
        }
    };
    let validator = registry.validator(index);
    let mut own: Vec<Finding> = Vec::new();
    for error in validator.iter_errors(resource) {
        let segments: Vec<Segment> = error
            .instance_path()
            .segments()
            .map(Segment::from)
            .collect();
        if let ValidationErrorKind::Custom { keyword, .. } = error.kind()
            && keyword == RESOURCE_KEYWORD
        {
            let Some(inner) = resolve(resource, &segments) else {
                continue;
            };
            let pointer = format!("{}{}", scope.pointer, error.instance_path().as_str());
            let nested = match (is_top_bundle, segments.as_slice()) {
                // A Bundle entry's resource starts its own paths and carries its own label.
                (true, [Segment::Name(e), Segment::Index(n), Segment::Name(r)])
                    if e == "entry" && r == "resource" =>
                {
                    Scope {
                        path_root: inner,
                        from_root: Vec::new(),
                        pointer,
                        entry: Some(*n),
                        resource: label(inner),
                    }
                }
                _ => {
                    let mut from_root = scope.from_root.clone();
                    from_root.extend(segments.iter().cloned());
                    Scope {
                        path_root: scope.path_root,
                        from_root,
                        pointer,
                        entry: scope.entry,
                        resource: scope.resource.clone(),
                    }
                }
            };
            walk(registry, inner, &nested, false, out);
            continue;
        }
        let entry = match (is_top_bundle, segments.as_slice()) {
            (true, [Segment::Name(e), Segment::Index(n), ..]) if e == "entry" => Some(*n),
            _ => scope.entry,
        };
        for (extra, keyword, message) in describe(resource, &segments, &error) {
            let mut all = segments.clone();
            all.extend(extra);
            let mut finding = scope.finding(&all, keyword, message);
            finding.entry = entry;
            own.push(finding);
        }
    }
    drop_shadowed_patterns(&mut own);
    out.extend(own);
}

/// A string that fails `type` fails nothing else worth saying: drop `pattern` findings on an
/// element that also has a `type` finding.
fn drop_shadowed_patterns(findings: &mut Vec<Finding>) {
    let typed: Vec<String> = findings
        .iter()
        .filter(|f| f.keyword == "type")
        .map(|f| f.pointer.clone())
        .collect();
    if typed.is_empty() {
        return;
    }
    findings.retain(|f| f.keyword != "pattern" || !typed.contains(&f.pointer));
}

impl Scope<'_> {
    fn finding(&self, below: &[Segment], keyword: &str, message: String) -> Finding {
        let mut pointer = self.pointer.clone();
        for segment in below {
            pointer.push('/');
            match segment {
                Segment::Name(name) => {
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"))
                }
                Segment::Index(index) => {
                    let _ = write!(pointer, "{index}");
                }
            }
        }
        let path = fhir_path(self.path_root, self.from_root.iter().chain(below));
        Finding {
            entry: self.entry,
            resource: self.resource.clone(),
            path,
            pointer,
            keyword: keyword.to_owned(),
            message,
            tier: Tier::Schema,
            rule: keyword.to_owned(),
            profile: None,
        }
    }
}

/// The index of the resource's type, or the finding for why there is none.
fn resource_type_problem(
    registry: &Registry,
    resource: &sonic_rs::Value,
) -> Result<usize, (&'static str, String)> {
    if !resource.is_object() {
        return Err((
            "type",
            format!(
                "expected a FHIR resource (a JSON object), found {}",
                show(resource)
            ),
        ));
    }
    match resource.get("resourceType") {
        None => Err((
            "required",
            "missing `resourceType`: every FHIR resource names its type, e.g. \"resourceType\": \"Patient\"".into(),
        )),
        Some(name) => match name.as_str() {
            Some(text) => registry.type_index(text).ok_or_else(|| {
                (
                    "oneOf",
                    format!(
                        "unknown resourceType {}: not one of the {} FHIR R4 resource types (names are case-sensitive)",
                        show(name),
                        registry.resource_types().len()
                    ),
                )
            }),
            None => Err((
                "type",
                format!("`resourceType` must be a string naming an R4 resource type, found {}", show(name)),
            )),
        },
    }
}

/// What an error says, as (segments below the error's location, keyword, message) triples.
fn describe(
    resource: &sonic_rs::Value,
    at: &[Segment],
    error: &ValidationError<'_>,
) -> Vec<(Vec<Segment>, &'static str, String)> {
    let node = resolve(resource, at);
    let element = primitive_of(error.schema_path().as_str());
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(single) => article(*single).to_owned(),
                TypeKind::Multiple(set) => set.iter().map(article).collect::<Vec<_>>().join(" or "),
            };
            let found = node.map_or_else(|| "nothing".to_owned(), show);
            let message = if node.is_some_and(|n| n.is_null()) {
                format!("null is not allowed in FHIR JSON (expected {expected}): leave the element out instead")
            } else if matches!(kind, TypeKind::Single(JsonType::Array)) {
                format!("expected an array (this element repeats, so it is written as [...] even for one value), found {found}")
            } else {
                format!("expected {expected}, found {found}")
            };
            vec![(Vec::new(), "type", message)]
        }
        ValidationErrorKind::Pattern { pattern } => {
            let shown = node.map_or_else(|| "the value".to_owned(), show);
            vec![(Vec::new(), "pattern", pattern_message(&shown, element, pattern, node))]
        }
        ValidationErrorKind::Enum { options } => {
            let shown = node.map_or_else(|| "the value".to_owned(), show);
            let allowed: Vec<String> = options
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            vec![(
                Vec::new(),
                "enum",
                format!("{shown} is not an allowed code here; use one of: {}", list(&allowed, 12)),
            )]
        }
        ValidationErrorKind::Constant { expected_value } => vec![(
            Vec::new(),
            "const",
            format!("expected {expected_value}, found {}", node.map_or_else(|| "nothing".into(), show)),
        )],
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            let message = format!("missing required element `{name}`");
            vec![(vec![Segment::Name(name)], "required", message)]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                let owner = element.map_or_else(String::new, |e| format!(" of {e}"));
                let hint = if name.starts_with('_') {
                    " (a `_name` element carries the id and extensions of primitive `name`, so `name` must be an element too)"
                } else {
                    " (names are case-sensitive; check the spelling, or carry extra data in an `extension`)"
                };
                (
                    vec![Segment::Name(name.clone())],
                    "additionalProperties",
                    format!("unknown element `{name}`: not part of the R4 definition{owner}{hint}"),
                )
            })
            .collect(),
        other => vec![(Vec::new(), keyword_name(other), error.to_string())],
    }
}

fn keyword_name(kind: &ValidationErrorKind) -> &'static str {
    match kind {
        ValidationErrorKind::AdditionalItems { .. } => "additionalItems",
        ValidationErrorKind::AnyOf { .. } => "anyOf",
        ValidationErrorKind::OneOfMultipleValid { .. }
        | ValidationErrorKind::OneOfNotValid { .. } => "oneOf",
        ValidationErrorKind::Not { .. } => "not",
        ValidationErrorKind::FalseSchema => "false",
        ValidationErrorKind::Format { .. } => "format",
        ValidationErrorKind::MinItems { .. } => "minItems",
        ValidationErrorKind::MaxItems { .. } => "maxItems",
        ValidationErrorKind::MinLength { .. } => "minLength",
        ValidationErrorKind::MaxLength { .. } => "maxLength",
        ValidationErrorKind::UniqueItems => "uniqueItems",
        ValidationErrorKind::BacktrackLimitExceeded { .. }
        | ValidationErrorKind::RegexEngineFailure { .. } => "pattern",
        _ => "schema",
    }
}

/// The FHIR type whose definition holds the failing keyword, from the keyword's canonical
/// location (`/definitions/date/pattern` → `date`).
fn primitive_of(schema_path: &str) -> Option<&str> {
    let rest = &schema_path[schema_path.rfind("/definitions/")? + "/definitions/".len()..];
    rest.split('/').next().filter(|name| !name.is_empty())
}

fn pattern_message(
    shown: &str,
    element: Option<&str>,
    pattern: &str,
    node: Option<&sonic_rs::Value>,
) -> String {
    let rule = match element {
        Some("id") => {
            let length = node
                .and_then(|n| n.as_str())
                .map_or(0, |s| s.chars().count());
            let extra = if length > 64 {
                format!(" (this one has {length})")
            } else {
                String::new()
            };
            format!("1 to 64 characters from A-Z, a-z, 0-9, '-' and '.'{extra}")
        }
        Some("date") => "YYYY, YYYY-MM or YYYY-MM-DD, with a real month and day".into(),
        Some("dateTime") => {
            "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss) with a zone (Z or +hh:mm)"
                .into()
        }
        Some("instant") => "YYYY-MM-DDThh:mm:ss(.sss) with a zone (Z or +hh:mm)".into(),
        Some("time") => "hh:mm:ss(.sss), 24-hour".into(),
        Some("code") => "no leading or trailing whitespace, and only single spaces inside".into(),
        Some("string" | "markdown") => {
            "not empty, and no whitespace but space, tab, CR and LF".into()
        }
        Some("uri" | "url" | "canonical") => "no whitespace anywhere".into(),
        Some("oid") => "urn:oid: followed by dotted numbers".into(),
        Some("uuid") => "urn:uuid: followed by a lowercase UUID".into(),
        _ => format!("it must match {pattern}"),
    };
    match element {
        Some(name) => format!("{shown} is not a valid FHIR {name}: {rule}"),
        None => format!("{shown} does not match the required pattern: {rule}"),
    }
}

fn article(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Array => "an array",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

fn resolve<'d>(mut node: &'d sonic_rs::Value, segments: &[Segment]) -> Option<&'d sonic_rs::Value> {
    for segment in segments {
        node = match segment {
            Segment::Index(index) => node.as_array()?.get(*index)?,
            Segment::Name(name) => node.as_object()?.get(name)?,
        };
    }
    Some(node)
}

/// `Type.element[2].child`: the pointer's segments, with array positions in brackets.
fn fhir_path<'s>(root: &sonic_rs::Value, segments: impl Iterator<Item = &'s Segment>) -> String {
    let mut path = type_name(root).unwrap_or("Resource").to_owned();
    for segment in segments {
        match segment {
            Segment::Index(index) => {
                let _ = write!(path, "[{index}]");
            }
            Segment::Name(name) => {
                path.push('.');
                path.push_str(name);
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_comes_from_the_canonical_keyword_location() {
        assert_eq!(primitive_of("/definitions/date/pattern"), Some("date"));
        assert_eq!(
            primitive_of(
                "/definitions/Patient/properties/name/items/$ref/definitions/HumanName/additionalProperties"
            ),
            Some("HumanName")
        );
        assert_eq!(primitive_of("/properties/x"), None);
    }

    #[test]
    fn paths_index_arrays_and_name_members() {
        let doc: sonic_rs::Value =
            sonic_rs::from_str(r#"{"resourceType":"ExplanationOfBenefit","item":[{},{},{"adjudication":[{"amount":{}}]}]}"#)
                .unwrap();
        let segments = [
            Segment::Name("item".into()),
            Segment::Index(2),
            Segment::Name("adjudication".into()),
            Segment::Index(0),
            Segment::Name("amount".into()),
            Segment::Name("value".into()),
        ];
        assert_eq!(
            fhir_path(&doc, segments.iter()),
            "ExplanationOfBenefit.item[2].adjudication[0].amount.value"
        );
    }
}
