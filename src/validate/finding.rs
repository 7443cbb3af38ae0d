//! Findings: schema errors turned into FHIR paths and messages a person can act on.
//!
//! Only documents that failed the boolean check get here. Each (possibly contained) resource
//! is walked with the validator of its own type; errors of the keyword that stands in for
//! `ResourceList` are not reported themselves but descended into, so a bad element deep in
//! `Bundle.entry[7].resource.contained[0]` is reported where it is.

use std::borrow::Cow;
use std::fmt::Write as _;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError};
use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::{RESOURCE_KEYWORD, Registry};

/// One thing wrong with one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Index of the `Bundle.entry` the finding is in, when the document is a Bundle.
    pub entry: Option<usize>,
    /// `Type/id` (or `Type` without an id) of the resource the finding belongs to.
    pub resource: Option<String>,
    /// FHIR path, e.g. `ExplanationOfBenefit.item[2].adjudication[0].amount.value`.
    pub path: String,
    /// JSON pointer into the document, e.g. `/entry/3/resource/item/2`.
    pub pointer: String,
    /// The schema keyword that failed (`type`, `pattern`, `enum`, ...), `json` when the
    /// document is not well-formed JSON; for the structure and profile tiers, the rule.
    pub keyword: String,
    /// What is wrong, and what a fix looks like.
    pub message: String,
    /// Which tier of validation found it.
    pub tier: Tier,
    /// A stable id to look the rule up and filter on: the schema keyword, `cardinality`,
    /// `binding`, `type`, `choice`, `reference-target`, `invariant:per-1`, ...
    pub rule: String,
    /// For profile findings: the canonical URL of the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The tiers of validation, each including the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// HL7's official R4 JSON Schema (what ajv 8 says).
    Schema,
    /// What the R4 StructureDefinitions say beyond the schema.
    Structure,
    /// The profiles a resource declares or is given (CARIN Blue Button 2.0.0).
    Profile,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::Structure => "structure",
            Self::Profile => "profile",
        }
    }
}

impl Finding {
    /// A document that is not well-formed JSON.
    pub(super) fn malformed(error: &sonic_rs::Error, length: usize) -> Self {
        let text = error.to_string();
        // The error's text goes on with an excerpt of the document; the excerpt can hold
        // anything (a member's data), so only the description is kept.
        let what = if error.is_eof() || error.offset() >= length {
            "the document ends before it is complete (is it truncated?)"
        } else {
            text.split(" at line ").next().unwrap_or(&text).trim()
        };
        Self::document(format!(
            "malformed JSON at line {}, column {}: {}",
            error.line(),
            error.column(),
            lowercase_first(what)
        ))
    }

    /// A `json` finding about the document as a whole (no entry, resource or path).
    fn document(message: String) -> Self {
        Self {
            entry: None,
            resource: None,
            path: String::new(),
            pointer: String::new(),
            keyword: "json".into(),
            message,
            tier: Tier::Schema,
            rule: "json".into(),
            profile: None,
        }
    }

    /// An input with no document at all (empty, or only whitespace).
    pub(super) fn empty() -> Self {
        Self::document("no JSON document: the input is empty".into())
    }

    /// A document nested deeper than [`super::MAX_DEPTH`]: refused before it is parsed.
    pub(super) fn too_deep(line: usize, column: usize) -> Self {
        Self::document(format!(
            "JSON nested deeper than {} levels at line {line}, column {column}; FHIR resources are a few dozen levels deep, so the document was not read further",
            super::MAX_DEPTH
        ))
    }
}

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

/// A short, quoted rendering of a value for messages.
pub(super) fn show(value: &sonic_rs::Value) -> String {
    if let Some(text) = value.as_str() {
        let mut shown = quote(&text.chars().take(60).collect::<String>());
        if text.chars().nth(60).is_some() {
            shown.insert(shown.len() - 1, '…');
        }
        return shown;
    }
    if let Some(number) = value.as_raw_number() {
        return format!("the number {}", number.as_str());
    }
    if let Some(flag) = value.as_bool() {
        return format!("the boolean {flag}");
    }
    if value.is_null() {
        return "null".into();
    }
    if value.is_array() {
        return "an array".into();
    }
    "an object".into()
}

/// A JSON-style quoted string in which invisible characters (whitespace other than the
/// space, controls, byte order marks) are written as `\uXXXX`, since they are usually the
/// problem.
pub(super) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control()
                || (c.is_whitespace() && c != ' ')
                || matches!(
                    c,
                    '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}'
                ) =>
            {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn list(items: &[String], limit: usize) -> String {
    let mut text = items
        .iter()
        .take(limit)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > limit {
        let _ = write!(text, " (and {} more)", items.len() - limit);
    }
    text
}

fn lowercase_first(text: &str) -> Cow<'_, str> {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() => {
            Cow::Owned(first.to_lowercase().chain(chars).collect())
        }
        _ => Cow::Borrowed(text),
    }
}

fn type_name(resource: &sonic_rs::Value) -> Option<&str> {
    resource.get("resourceType").and_then(|name| name.as_str())
}

/// `Type/id`, `Type` when there is no id, nothing when the type is not a string.
pub(super) fn label(resource: &sonic_rs::Value) -> Option<String> {
    let name = type_name(resource)?;
    match resource.get("id").and_then(|id| id.as_str()) {
        Some(id) => Some(format!("{name}/{id}")),
        None => Some(name.to_owned()),
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

    #[test]
    fn long_strings_are_cut_in_messages() {
        let value = sonic_rs::Value::from("x".repeat(100).as_str());
        let shown = show(&value);
        assert!(shown.chars().count() < 70, "{shown}");
        assert!(shown.contains('…'));
    }

    #[test]
    fn invisible_characters_are_shown_escaped() {
        assert_eq!(quote("C\u{feff}o \u{85}\"x\""), r#""C\ufeffo \u0085\"x\"""#);
    }
}
