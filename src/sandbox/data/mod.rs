//! The demo health plan's members and their FHIR data, behind one [`Store`] interface.
//!
//! Two stores exist: [`generate::Generated`], the project's own synthetic plan (John Allen
//! and as many generated members as asked for, each resource computed on demand so that
//! 100,000 ExplanationOfBenefit cost no memory), and [`load::Loaded`], a folder of the user's
//! own FHIR files grouped per Patient. The rest of the sandbox sees members by index and
//! resources by compartment, never how they are made.

pub mod books;
mod claim;
pub mod clinical;
pub mod generate;
pub mod load;

use serde_json::Value;

/// What the identity form asks for, as the plan has it on file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub first_name: String,
    pub last_name: String,
    /// `MM/DD/YYYY`, as the form asks for it.
    pub birth_date: String,
    pub member_id: String,
    pub zip: String,
}

impl Identity {
    /// Whether what a person typed into the form is this identity: names compare without
    /// regard to case, every field without surrounding whitespace.
    pub fn matches(&self, typed: &Identity) -> bool {
        self.first_name
            .trim()
            .eq_ignore_ascii_case(typed.first_name.trim())
            && self
                .last_name
                .trim()
                .eq_ignore_ascii_case(typed.last_name.trim())
            && self.birth_date.trim() == typed.birth_date.trim()
            && self.member_id.trim() == typed.member_id.trim()
            && self.zip.trim() == typed.zip.trim()
    }
}

/// A member of the plan: who they are and which Patient resource is theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub index: usize,
    pub patient_id: String,
    /// `None` when the data lacks something the form asks for (a loaded Patient without a
    /// birth date, say): such a member cannot sign in.
    pub identity: Option<Identity>,
}

/// Resources of one type in one member's compartment, a page at a time.
pub trait Store: Send + Sync {
    /// How many members the plan has.
    fn member_count(&self) -> usize;

    /// The member at `index`.
    fn member(&self, index: usize) -> Option<Member>;

    /// The member whose identity is what was typed into the form.
    fn find_member(&self, typed: &Identity) -> Option<Member>;

    /// Resource types served, sorted.
    fn resource_types(&self) -> Vec<String>;

    /// How many resources of `kind` the member may see.
    fn count(&self, member: usize, kind: &str) -> usize;

    /// The member's resources of `kind` from `offset`, at most `limit` of them, in a stable
    /// order.
    fn page(&self, member: usize, kind: &str, offset: usize, limit: usize) -> Vec<Value>;

    /// The same page as [`Store::page`], in the form cheapest to serve: a store that can
    /// write a resource's JSON text without building a [`Value`] first hands out the text.
    fn serve(&self, member: usize, kind: &str, offset: usize, limit: usize) -> Vec<Doc> {
        self.page(member, kind, offset, limit)
            .into_iter()
            .map(Doc::Value)
            .collect()
    }

    /// One resource, if the member may see it.
    fn read(&self, member: usize, kind: &str, id: &str) -> Option<Value>;

    /// A resource of `kind` the member may *not* see, for the `foreign-patient` fault.
    fn foreign(&self, member: usize, kind: &str) -> Option<Value>;
}

/// A resource on its way out of the store: a JSON value, or the JSON text of one with its
/// type and id (what a search entry's `fullUrl` needs). Whatever must look inside or change
/// it (a search filter, `_include`, a fault) asks for the value, parsed once on demand.
#[derive(Debug, Clone)]
pub enum Doc {
    Value(Value),
    Text {
        kind: &'static str,
        id: String,
        json: Vec<u8>,
    },
}

impl Doc {
    /// The resource as a value, parsed from its text the first time it is asked for.
    pub fn value_mut(&mut self) -> &mut Value {
        if let Doc::Text { json, .. } = self {
            // Text a store wrote from its own types always parses; null would say otherwise.
            *self = Doc::Value(serde_json::from_slice(json).unwrap_or(Value::Null));
        }
        match self {
            Doc::Value(value) => value,
            Doc::Text { .. } => unreachable!("replaced by its value above"),
        }
    }

    pub fn into_value(mut self) -> Value {
        std::mem::take(self.value_mut())
    }

    /// `resourceType` and `id`, empty where the resource has none.
    pub fn kind_and_id(&self) -> (&str, &str) {
        match self {
            Doc::Text { kind, id, .. } => (kind, id),
            Doc::Value(value) => {
                let text = |name| value.get(name).and_then(Value::as_str).unwrap_or_default();
                (text("resourceType"), text("id"))
            }
        }
    }

    /// Appends the resource's JSON text to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Doc::Text { json, .. } => out.extend_from_slice(json),
            Doc::Value(value) => {
                // Writing a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
    }
}

pub use crate::payer::access::REQUIRED_TYPES;
