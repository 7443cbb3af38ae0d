//! The demo health plan's members and their FHIR data, behind one [`Store`] interface.
//!
//! Two stores exist: [`generate::Generated`], the project's own synthetic plan (John Allen
//! and as many generated members as asked for, each resource computed on demand so that
//! 100,000 ExplanationOfBenefit cost no memory), and [`load::Loaded`], a folder of the user's
//! own FHIR files grouped per Patient. The rest of the sandbox sees members by index and
//! resources by compartment, never how they are made.

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

    /// One resource, if the member may see it.
    fn read(&self, member: usize, kind: &str, id: &str) -> Option<Value>;

    /// A resource of `kind` the member may *not* see, for the `foreign-patient` fault.
    fn foreign(&self, member: usize, kind: &str) -> Option<Value>;
}

/// The types the Patient Access API must serve at the least (from the payer's guide).
pub const REQUIRED_TYPES: [&str; 6] = [
    "ExplanationOfBenefit",
    "Coverage",
    "Organization",
    "Patient",
    "Practitioner",
    "Location",
];
