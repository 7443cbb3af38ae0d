//! The embedded FHIR R4 JSON Schema and what onramp derives from it at start-up.
//!
//! `schemas/fhir.r4.schema.json` is HL7's schema with descriptions removed (see
//! `schemas/README.md`). Two changes are made in memory, neither of which changes a verdict:
//!
//! - the root `oneOf` and its `discriminator` are dropped: onramp dispatches on
//!   `resourceType` itself and compiles one validator per resource type;
//! - `definitions/ResourceList` (a 146-way `oneOf`, used by `Bundle.entry.resource`,
//!   `contained` and `Parameters.parameter.resource`) becomes the custom keyword
//!   [`RESOURCE_KEYWORD`]. Every branch of that `oneOf` requires a distinct `resourceType`
//!   constant, so "exactly one branch matches" is the same as "the branch named by
//!   `resourceType` matches", which the keyword checks with the per-type validator.

use serde_json::{Value, json};

/// The schema file as committed.
pub const SCHEMA_JSON: &str = include_str!("../../schemas/fhir.r4.schema.json");

/// The FHIR version the schema describes.
pub const FHIR_VERSION: &str = "4.0.1";

/// Custom keyword standing in for `{"$ref": "#/definitions/ResourceList"}`.
pub const RESOURCE_KEYWORD: &str = "x-onramp-resource";

/// The schema document as validators are compiled from it, and the resource types it names.
pub struct Schema {
    document: Value,
    resource_types: Vec<String>,
}

impl Schema {
    /// Parse and adapt the embedded schema. It is part of the binary and checked by tests, so
    /// a failure here is a build defect, not an input error.
    pub fn embedded() -> Self {
        let document: Value =
            serde_json::from_str(SCHEMA_JSON).expect("the embedded FHIR schema is valid JSON");
        Self::from_document(document).expect("the embedded FHIR schema has the expected shape")
    }

    /// Adapt a FHIR JSON Schema document; `None` when it lacks the parts onramp relies on.
    pub fn from_document(mut document: Value) -> Option<Self> {
        let root = document.as_object_mut()?;
        let mut resource_types: Vec<String> = root
            .get("discriminator")?
            .get("mapping")?
            .as_object()?
            .keys()
            .cloned()
            .collect();
        resource_types.sort_unstable();
        root.remove("oneOf");
        root.remove("discriminator");
        let definitions = root.get_mut("definitions")?.as_object_mut()?;
        if resource_types
            .iter()
            .any(|name| !definitions.contains_key(name))
        {
            return None;
        }
        definitions.insert("ResourceList".into(), json!({ RESOURCE_KEYWORD: true }));
        Some(Self {
            document,
            resource_types,
        })
    }

    /// Resource type names, sorted.
    pub fn resource_types(&self) -> &[String] {
        &self.resource_types
    }

    /// Give up the adapted document (to the reference registry, which keeps it).
    pub fn into_document(self) -> (Value, Vec<String>) {
        (self.document, self.resource_types)
    }

    /// The URI the document is registered under; `#/definitions/...` references resolve
    /// against it.
    pub const URI: &'static str = "http://hl7.org/fhir/json-schema/4.0";

    /// A schema that validates against `definitions/{name}` of the registered document.
    pub fn reference_to(name: &str) -> Value {
        json!({ "$ref": format!("{}#/definitions/{name}", Self::URI) })
    }
}
