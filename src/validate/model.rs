//! The R4 structure rules, compiled once from `schemas/fhir.r4.structure.json`.
//!
//! That file is derived by `schemas/structure.py` from HL7's R4 StructureDefinitions and
//! value sets (see `schemas/README.md`); nothing here is written by hand. Every complex
//! type, resource and backbone element becomes a [`Class`]: its elements with cardinality,
//! types, reference targets, required binding and constraints, and a sorted table from
//! JSON member name to element, so a walker finds an element with a binary search and
//! never builds a second tree.

use std::collections::HashMap;

use super::fhirpath::{Compiled, NotCompiled};

/// The derived rules as committed.
pub const STRUCTURE_JSON: &str = include_str!("../../schemas/fhir.r4.structure.json");

/// Index of a [`Class`] in [`Model::classes`].
pub type ClassId = u32;
/// Index of a [`ValueSet`] in [`Model::value_sets`].
pub type ValueSetId = u32;
/// Index of a [`Constraint`] in [`Model::constraints`].
pub type ConstraintId = u32;

/// The FHIR primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    String,
    Code,
    Id,
    Markdown,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    Time,
    Xhtml,
}

impl Prim {
    const ALL: [(&'static str, Prim); 20] = [
        ("boolean", Prim::Boolean),
        ("integer", Prim::Integer),
        ("positiveInt", Prim::PositiveInt),
        ("unsignedInt", Prim::UnsignedInt),
        ("decimal", Prim::Decimal),
        ("string", Prim::String),
        ("code", Prim::Code),
        ("id", Prim::Id),
        ("markdown", Prim::Markdown),
        ("uri", Prim::Uri),
        ("url", Prim::Url),
        ("canonical", Prim::Canonical),
        ("oid", Prim::Oid),
        ("uuid", Prim::Uuid),
        ("base64Binary", Prim::Base64Binary),
        ("date", Prim::Date),
        ("dateTime", Prim::DateTime),
        ("instant", Prim::Instant),
        ("time", Prim::Time),
        ("xhtml", Prim::Xhtml),
    ];

    pub fn of(code: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == code)
            .map(|(_, p)| *p)
    }

    /// The type's FHIR name (`dateTime`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("string", |(name, _)| name)
    }

    /// The type it specializes, in R4's primitive hierarchy.
    fn parent(self) -> Option<Self> {
        match self {
            Self::Code | Self::Id | Self::Markdown => Some(Self::String),
            Self::Url | Self::Canonical | Self::Oid | Self::Uuid => Some(Self::Uri),
            Self::PositiveInt | Self::UnsignedInt => Some(Self::Integer),
            _ => None,
        }
    }

    /// Whether a value of this type is a `name` (FHIRPath `is`).
    pub fn is_a(self, name: &str) -> bool {
        let mut current = Some(self);
        while let Some(prim) = current {
            if prim.name() == name {
                return true;
            }
            current = prim.parent();
        }
        false
    }

    /// Whether the JSON value is a string (everything but booleans and numbers).
    pub fn is_text(self) -> bool {
        !matches!(
            self,
            Self::Boolean | Self::Integer | Self::PositiveInt | Self::UnsignedInt | Self::Decimal
        )
    }
}

/// What an element's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRef {
    /// A primitive: a JSON scalar, with an optional `_name` companion.
    Primitive(Prim),
    /// A complex type, a backbone element or a particular resource type.
    Class(ClassId),
    /// Any resource, dispatched on its `resourceType`.
    Resource,
    /// A type the rules do not describe (one the derivation left out).
    Unknown,
}

/// One of an element's types.
#[derive(Debug, Clone)]
pub struct ElementType {
    /// The FHIR type code (`Period`, `dateTime`, `Reference`).
    pub code: Box<str>,
    pub ty: TypeRef,
    /// For `Reference`: the resource types it may point at (`Resource` for any).
    pub targets: Box<[Box<str>]>,
}

/// One element of a class.
#[derive(Debug, Clone)]
pub struct Element {
    /// The element's name without `[x]`.
    pub name: Box<str>,
    /// `Coverage.class.value`: where the definitions place it.
    pub path: Box<str>,
    pub min: u32,
    /// `u32::MAX` for `*`.
    pub max: u32,
    pub choice: bool,
    pub types: Box<[ElementType]>,
    pub binding: Option<ValueSetId>,
    pub constraints: Box<[ConstraintId]>,
    /// A FHIRPath System type (an element's `id`, `Extension.url`), not an Element.
    pub system: bool,
}

impl Element {
    /// `1..1`, `0..*`.
    pub fn cardinality(&self) -> String {
        let max = if self.max == u32::MAX {
            "*".to_owned()
        } else {
            self.max.to_string()
        };
        format!("{}..{max}", self.min)
    }

    /// The JSON member name of the element with type `index` (`valueQuantity`).
    pub fn json_name(&self, index: usize) -> String {
        if !self.choice {
            return self.name.to_string();
        }
        let code = &self.types[index].code;
        let mut name = self.name.to_string();
        let mut chars = code.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
        name
    }
}

/// What kind of class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassKind {
    Resource,
    Complex,
    Backbone,
}

/// A complex type, a resource or a backbone element: its elements, found by member name.
#[derive(Debug)]
pub struct Class {
    /// The type's name (`Period`), or the backbone element's path (`Coverage.class`).
    pub name: Box<str>,
    pub kind: ClassKind,
    pub elements: Box<[Element]>,
    /// JSON member name → (element, type index).
    pub(super) members: NameTable,
    /// Element name → element (FHIRPath navigates by element name).
    pub(super) names: NameTable,
    /// The type's own constraints (a datatype's `per-1`, a resource's `dom-*`).
    pub constraints: Box<[ConstraintId]>,
    /// Elements with `min` of 1 or more.
    pub required: Box<[u16]>,
    /// Choice elements (`value[x]`).
    pub choices: Box<[u16]>,
    /// A Quantity, or a type that constrains it (SimpleQuantity, Age, ...): what FHIRPath
    /// compares as a quantity.
    pub quantity: bool,
}

impl Class {
    /// A class with nothing in it yet.
    pub(super) fn empty(name: String, kind: ClassKind) -> Self {
        Self {
            name: name.into_boxed_str(),
            kind,
            elements: Box::new([]),
            members: NameTable::default(),
            names: NameTable::default(),
            constraints: Box::new([]),
            required: Box::new([]),
            choices: Box::new([]),
            quantity: false,
        }
    }

    /// The element a JSON member belongs to, and which of its types the name chose.
    pub fn member(&self, json_name: &str) -> Option<(&Element, usize)> {
        self.member_at(json_name)
            .map(|(element, ty)| (&self.elements[element], ty))
    }

    /// The index of the element a JSON member belongs to, and of the type the name chose.
    pub fn member_at(&self, json_name: &str) -> Option<(usize, usize)> {
        self.members
            .get(json_name)
            .map(|(element, ty)| (element as usize, ty as usize))
    }

    /// The element named `name` (without `[x]`).
    pub fn element(&self, name: &str) -> Option<&Element> {
        self.names
            .get(name)
            .map(|(element, _)| &self.elements[element as usize])
    }
}

/// A code system of a value set, with its codes in the set (sorted), or `None` when that
/// system's codes cannot be listed here (licensed or external terminology): such codes are
/// not judged.
pub type SystemCodes = (Box<str>, Option<Box<[Box<str>]>>);

/// Names to two small numbers, for the few dozen names of one class: open addressing on a
/// 32-bit FNV-1a hash, probed linearly, the hash compared before the bytes. Looking a name
/// up costs one pass over it and, nearly always, one comparison.
#[derive(Debug, Default)]
pub(super) struct NameTable {
    slots: Box<[Option<Slot>]>,
}

/// A name's hash, the name, and its two numbers.
type Slot = (u32, Box<str>, u16, u16);

fn fnv(name: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

impl NameTable {
    pub(super) fn new(entries: Vec<(Box<str>, u16, u16)>) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        let size = (entries.len() * 2).next_power_of_two().max(4);
        let mut slots: Vec<Option<Slot>> = vec![None; size];
        for (name, a, b) in entries {
            let hash = fnv(&name);
            let mut at = hash as usize & (size - 1);
            while let Some((_, existing, _, _)) = &slots[at] {
                if *existing == name {
                    break; // the first entry of a name wins
                }
                at = (at + 1) & (size - 1);
            }
            if slots[at].is_none() {
                slots[at] = Some((hash, name, a, b));
            }
        }
        Self {
            slots: slots.into_boxed_slice(),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<(u16, u16)> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let hash = fnv(name);
        let mut at = hash as usize & mask;
        loop {
            match &self.slots[at] {
                None => return None,
                Some((h, n, a, b)) if *h == hash && **n == *name => return Some((*a, *b)),
                Some(_) => at = (at + 1) & mask,
            }
        }
    }
}

/// The order member tables are searched in: by length, then bytes. Most probes differ in
/// length from the name they are compared with, so few comparisons reach the bytes.
pub(super) fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// A value set's codes, per code system, as far as they can be listed here.
#[derive(Debug)]
pub struct ValueSet {
    pub url: Box<str>,
    pub systems: Box<[SystemCodes]>,
}

/// Whether a code is in a value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    In,
    NotIn,
    /// The system's codes cannot be listed here, or no system was given where one is needed.
    Unknown,
}

/// The system name of a value set nothing of which can be listed here (one held by VSAC,
/// not in any package): every code's membership is unknown.
pub const ANY_SYSTEM: &str = "*";

impl ValueSet {
    /// Whether nothing of the value set could be worked out here.
    pub fn unexpanded(&self) -> bool {
        matches!(&*self.systems, [(system, None)] if &**system == ANY_SYSTEM)
    }

    /// `(system, code)`: a Coding.
    pub fn coding(&self, system: Option<&str>, code: &str) -> Membership {
        let Some(system) = system else {
            return Membership::Unknown;
        };
        if self.unexpanded() {
            return Membership::Unknown;
        }
        match self.systems.iter().find(|(s, _)| &**s == system) {
            None => Membership::NotIn,
            Some((_, None)) => Membership::Unknown,
            Some((_, Some(codes))) => {
                if codes.binary_search_by(|c| (**c).cmp(code)).is_ok() {
                    Membership::In
                } else {
                    Membership::NotIn
                }
            }
        }
    }

    /// A bare `code`: in the set when some system of it has that code.
    pub fn code(&self, code: &str) -> Membership {
        if self.unexpanded() {
            return Membership::Unknown;
        }
        let mut unknown = false;
        for (_, codes) in &*self.systems {
            match codes {
                None => unknown = true,
                Some(codes) if codes.binary_search_by(|c| (**c).cmp(code)).is_ok() => {
                    return Membership::In;
                }
                Some(_) => {}
            }
        }
        if unknown {
            Membership::Unknown
        } else {
            Membership::NotIn
        }
    }

    /// The set's name for messages: the last segment of its URL.
    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }

    /// Up to `limit` codes, for a message.
    pub fn some_codes(&self, limit: usize) -> Vec<&str> {
        self.systems
            .iter()
            .filter_map(|(_, codes)| codes.as_deref())
            .flatten()
            .map(|c| &**c)
            .take(limit)
            .collect()
    }

    /// How many codes are listed.
    pub fn listed(&self) -> usize {
        self.systems
            .iter()
            .filter_map(|(_, codes)| codes.as_ref().map(|c| c.len()))
            .sum()
    }
}

/// A FHIRPath constraint of the definitions.
#[derive(Debug)]
pub struct Constraint {
    pub key: Box<str>,
    pub human: Box<str>,
    pub expression: Box<str>,
    /// Only `error` constraints are applied; `warning`s are best practice.
    pub error: bool,
    /// The compiled expression, or why it cannot be evaluated.
    pub compiled: Result<Compiled, NotCompiled>,
}

/// All of it.
#[derive(Debug)]
pub struct Model {
    pub classes: Vec<Class>,
    pub(super) types: HashMap<Box<str>, TypeRef>,
    pub value_sets: Vec<ValueSet>,
    pub(super) value_set_index: UrlMap<ValueSetId>,
    pub constraints: Vec<Constraint>,
    pub(super) constraint_index: HashMap<Box<str>, ConstraintId>,
    /// Constraints on every element (`ele-1`).
    pub every_element: Box<[ConstraintId]>,
    /// Resource types the derivation left out (their definitions were not HL7's R4 ones).
    pub not_derived: Box<[Box<str>]>,
    /// Constrained types and the type they constrain (`SimpleQuantity` → `Quantity`).
    pub(super) constrains: HashMap<Box<str>, Box<str>>,
}

impl Model {
    /// What a type name (`Period`, `date`, `Patient`) is.
    pub fn type_ref(&self, name: &str) -> TypeRef {
        self.types.get(name).copied().unwrap_or(TypeRef::Unknown)
    }

    /// The class of a resource type, if the rules describe it.
    pub fn resource(&self, name: &str) -> Option<ClassId> {
        match self.types.get(name) {
            Some(TypeRef::Class(id)) if self.classes[*id as usize].kind == ClassKind::Resource => {
                Some(*id)
            }
            _ => None,
        }
    }

    pub fn class(&self, id: ClassId) -> &Class {
        &self.classes[id as usize]
    }

    pub fn value_set(&self, url: &str) -> Option<&ValueSet> {
        self.value_set_index
            .get(url)
            .map(|id| &self.value_sets[*id as usize])
    }

    pub fn constraint(&self, id: ConstraintId) -> &Constraint {
        &self.constraints[id as usize]
    }

    /// The constraint with this table id (its key, or `key@Type` for a key two
    /// definitions use differently).
    pub fn constraint_id(&self, id: &str) -> Option<ConstraintId> {
        self.constraint_index.get(id).copied()
    }

    /// Whether `name` is a type the class `id` is, or derives from (`Quantity` for
    /// SimpleQuantity, `Resource`/`DomainResource` for any resource).
    pub fn is_a(&self, ty: TypeRef, name: &str) -> bool {
        match ty {
            TypeRef::Class(id) => {
                let class = self.class(id);
                match class.kind {
                    ClassKind::Resource => {
                        &*class.name == name || name == "Resource" || name == "DomainResource"
                    }
                    ClassKind::Complex => {
                        &*class.name == name
                            || name == "Element"
                            || self
                                .constrains
                                .get(&*class.name)
                                .is_some_and(|b| &**b == name)
                    }
                    ClassKind::Backbone => name == "BackboneElement" || name == "Element",
                }
            }
            TypeRef::Primitive(_) | TypeRef::Resource | TypeRef::Unknown => false,
        }
    }
}

/// 64-bit FNV-1a, for the maps keyed by canonical URLs that constraints look up on every
/// evaluation (`memberOf`): a URL hashes several times faster than with SipHash, and the
/// keys come from the derived files, not from input.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// A map keyed by canonical URL.
pub type UrlMap<V> = HashMap<Box<str>, V, std::hash::BuildHasherDefault<Fnv>>;
