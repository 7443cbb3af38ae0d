//! Findings: schema errors turned into FHIR paths and messages a person can act on.
//!
//! Only documents that failed the boolean check get here. Each (possibly contained) resource
//! is walked with the validator of its own type; errors of the keyword that stands in for
//! `ResourceList` are not reported themselves but descended into, so a bad element deep in
//! `Bundle.entry[7].resource.contained[0]` is reported where it is.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use sonic_rs::JsonValueTrait;

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

    /// A document nested deeper than `limit` levels: refused before it is parsed.
    pub(super) fn too_deep(line: usize, column: usize, limit: usize) -> Self {
        Self::document(format!(
            "JSON nested deeper than {} levels at line {line}, column {column}; FHIR resources are a few dozen levels deep, so the document was not read further",
            limit
        ))
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

pub(super) fn list(items: &[String], limit: usize) -> String {
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

pub(super) fn lowercase_first(text: &str) -> Cow<'_, str> {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() => {
            Cow::Owned(first.to_lowercase().chain(chars).collect())
        }
        _ => Cow::Borrowed(text),
    }
}

pub(super) fn type_name(resource: &sonic_rs::Value) -> Option<&str> {
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
    /// Must-support coverage per profile URL, when the validator counts it.
    pub must_support: super::must_support::Tally,
    /// Profiles declared without a version, and the IG (`name@version`) each was checked
    /// against.
    pub resolved_profiles: std::collections::BTreeMap<Box<str>, Box<str>>,
    /// Findings past [`MAX_FINDINGS`], counted but not listed.
    pub left_off: u64,
}

/// Findings listed per document: a broken 100 MB claim can have millions, and a person
/// reads the first ones; the rest are counted ("and N more").
pub const MAX_FINDINGS: usize = 10_000;

impl Checked {
    /// Keep the first [`MAX_FINDINGS`] findings and count the rest (the count of invalid
    /// resources is taken from all of them first).
    pub fn cap(&mut self) {
        if self.findings.len() > MAX_FINDINGS {
            self.left_off += (self.findings.len() - MAX_FINDINGS) as u64;
            self.findings.truncate(MAX_FINDINGS);
            self.findings.shrink_to_fit();
        }
    }
}

pub(super) fn count_invalid(findings: &[Finding]) -> u64 {
    let mut entries: Vec<Option<usize>> = findings.iter().map(|f| f.entry).collect();
    entries.sort_unstable();
    entries.dedup();
    entries.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

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
