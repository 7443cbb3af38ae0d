//! The R4 structure rules, compiled once from `schemas/fhir.r4.structure.json`.
//!
//! That file is derived by `schemas/structure.py` from HL7's R4 StructureDefinitions and
//! value sets (see `schemas/README.md`); nothing here is written by hand. Every complex
//! type, resource and backbone element becomes a [`Class`]: its elements with cardinality,
//! types, reference targets, required binding and constraints, and a sorted table from
//! JSON member name to element, so a walker finds an element with a binary search and
//! never builds a second tree.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::fhirpath::{self, Compiled};

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
    members: NameTable,
    /// Element name → element (FHIRPath navigates by element name).
    names: NameTable,
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
    fn empty(name: String, kind: ClassKind) -> Self {
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

impl ValueSet {
    /// `(system, code)`: a Coding.
    pub fn coding(&self, system: Option<&str>, code: &str) -> Membership {
        let Some(system) = system else {
            return Membership::Unknown;
        };
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
    pub compiled: Result<Compiled, String>,
}

/// All of it.
#[derive(Debug)]
pub struct Model {
    pub classes: Vec<Class>,
    types: HashMap<Box<str>, TypeRef>,
    pub value_sets: Vec<ValueSet>,
    value_set_index: UrlMap<ValueSetId>,
    pub constraints: Vec<Constraint>,
    constraint_index: HashMap<Box<str>, ConstraintId>,
    /// Constraints on every element (`ele-1`).
    pub every_element: Box<[ConstraintId]>,
    /// Resource types the derivation left out (their definitions were not HL7's R4 ones).
    pub not_derived: Box<[Box<str>]>,
    /// Constrained types and the type they constrain (`SimpleQuantity` → `Quantity`).
    constrains: HashMap<Box<str>, Box<str>>,
}

static GLOBAL: LazyLock<Model> =
    LazyLock::new(|| Model::load(STRUCTURE_JSON).expect("the embedded structure rules load"));

impl Model {
    /// The rules derived from R4, shared by the whole process.
    pub fn global() -> &'static Model {
        &GLOBAL
    }

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

    fn load(text: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Compiler::new(file).compile()
    }
}

// --- the file's shape --------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    every_element: Vec<String>,
    constraints: HashMap<String, FileConstraint>,
    types: HashMap<String, FileType>,
    value_sets: HashMap<String, HashMap<String, FileCodes>>,
    #[serde(default)]
    not_derived: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct FileConstraint {
    pub key: String,
    pub severity: String,
    pub expression: String,
    pub human: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum FileCodes {
    Listed(Vec<String>),
    /// `"*"`: cannot be listed here.
    Unlisted(#[expect(dead_code, reason = "the marker string itself carries nothing")] String),
}

#[derive(Deserialize)]
struct FileType {
    kind: String,
    #[serde(default)]
    constrains: Option<String>,
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    elements: Vec<FileElement>,
}

#[derive(Deserialize)]
struct FileElement {
    name: String,
    min: u32,
    max: String,
    #[serde(default)]
    choice: bool,
    #[serde(default)]
    types: Vec<FileElementType>,
    #[serde(default, rename = "ref")]
    content_reference: Option<String>,
    #[serde(default)]
    binding: Option<String>,
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    elements: Option<Vec<FileElement>>,
    #[serde(default)]
    system: bool,
}

#[derive(Deserialize)]
struct FileElementType {
    code: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    targets: Vec<String>,
}

/// Parse a cardinality's upper bound.
pub(super) fn max_of(text: &str) -> u32 {
    if text == "*" {
        u32::MAX
    } else {
        text.parse().unwrap_or(u32::MAX)
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

/// The indexes of a class's choice elements.
fn choices_of(elements: &[Element]) -> Box<[u16]> {
    elements
        .iter()
        .enumerate()
        .filter(|(_, e)| e.choice)
        .map(|(at, _)| at as u16)
        .collect()
}

/// Build the value set table of a derived file.
pub(super) fn value_sets_of(
    sets: HashMap<String, HashMap<String, FileCodes>>,
) -> (Vec<ValueSet>, UrlMap<ValueSetId>) {
    let mut urls: Vec<_> = sets.into_iter().collect();
    urls.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(urls.len());
    let mut index = UrlMap::default();
    for (url, systems) in urls {
        let mut systems: Vec<SystemCodes> = systems
            .into_iter()
            .map(|(system, codes)| {
                let codes = match codes {
                    FileCodes::Listed(mut codes) => {
                        codes.sort_unstable();
                        Some(codes.into_iter().map(String::into_boxed_str).collect())
                    }
                    FileCodes::Unlisted(_) => None,
                };
                (system.into_boxed_str(), codes)
            })
            .collect();
        systems.sort_by(|a, b| a.0.cmp(&b.0));
        index.insert(url.clone().into_boxed_str(), out.len() as ValueSetId);
        out.push(ValueSet {
            url: url.into_boxed_str(),
            systems: systems.into_boxed_slice(),
        });
    }
    (out, index)
}

/// Compile one constraint of a derived file.
pub(super) fn constraint_of(item: FileConstraint) -> Constraint {
    let compiled = fhirpath::compile(&item.expression);
    Constraint {
        key: item.key.into_boxed_str(),
        human: item.human.into_boxed_str(),
        error: item.severity == "error",
        compiled,
        expression: item.expression.into_boxed_str(),
    }
}

struct Compiler {
    file: File,
    classes: Vec<Class>,
    types: HashMap<Box<str>, TypeRef>,
    constraint_index: HashMap<Box<str>, ConstraintId>,
    value_set_index: UrlMap<ValueSetId>,
    /// (class, element) whose type is a content reference to a backbone path.
    pending: Vec<(ClassId, usize, String)>,
    /// Backbone path → class.
    backbones: HashMap<String, ClassId>,
}

impl Compiler {
    fn new(file: File) -> Self {
        Self {
            file,
            classes: Vec::new(),
            types: HashMap::new(),
            constraint_index: HashMap::new(),
            value_set_index: UrlMap::default(),
            pending: Vec::new(),
            backbones: HashMap::new(),
        }
    }

    fn compile(mut self) -> Result<Model, String> {
        let mut constraints = Vec::new();
        let mut names: Vec<String> = self.file.constraints.keys().cloned().collect();
        names.sort_unstable();
        for name in names {
            let item = self
                .file
                .constraints
                .remove(&name)
                .ok_or("constraint vanished")?;
            self.constraint_index
                .insert(name.into_boxed_str(), constraints.len() as ConstraintId);
            constraints.push(constraint_of(item));
        }
        let (value_sets, value_set_index) =
            value_sets_of(std::mem::take(&mut self.file.value_sets));
        self.value_set_index = value_set_index;

        // Name every type first, so elements can point at types defined later.
        let mut type_names: Vec<String> = self.file.types.keys().cloned().collect();
        type_names.sort_unstable();
        let mut constrains = HashMap::new();
        for name in &type_names {
            let entry = &self.file.types[name];
            let reference = match entry.kind.as_str() {
                "primitive" => TypeRef::Primitive(Prim::of(name).unwrap_or(Prim::String)),
                "complex" | "resource" => {
                    let id = self.classes.len() as ClassId;
                    self.classes.push(Class::empty(
                        name.clone(),
                        if entry.kind == "resource" {
                            ClassKind::Resource
                        } else {
                            ClassKind::Complex
                        },
                    ));
                    TypeRef::Class(id)
                }
                other => return Err(format!("type {name} has unknown kind {other}")),
            };
            if let Some(base) = &entry.constrains {
                constrains.insert(name.clone().into_boxed_str(), base.clone().into_boxed_str());
            }
            self.types.insert(name.clone().into_boxed_str(), reference);
        }
        for name in &type_names {
            let Some(TypeRef::Class(id)) = self.types.get(name.as_str()).copied() else {
                continue;
            };
            let entry = self.file.types.get_mut(name).ok_or("type vanished")?;
            let elements = std::mem::take(&mut entry.elements);
            let own = std::mem::take(&mut entry.constraints);
            let own = self.constraint_ids(&own)?;
            let (elements, members, names_, required) = self.elements(id, name, elements)?;
            let class = &mut self.classes[id as usize];
            class.elements = elements;
            class.members = members;
            class.names = names_;
            class.choices = choices_of(&class.elements);
            class.required = required;
            class.quantity = name == "Quantity"
                || self
                    .file
                    .types
                    .get(name)
                    .and_then(|t| t.constrains.as_deref())
                    == Some("Quantity");
            class.constraints = own;
        }
        for (class, element, path) in std::mem::take(&mut self.pending) {
            let target = *self
                .backbones
                .get(&path)
                .ok_or_else(|| format!("content reference to unknown {path}"))?;
            let elements = &mut self.classes[class as usize].elements;
            let mut list = elements[element].types.to_vec();
            list.push(ElementType {
                code: "BackboneElement".into(),
                ty: TypeRef::Class(target),
                targets: Box::new([]),
            });
            elements[element].types = list.into_boxed_slice();
        }
        let every_element = self.constraint_ids(&self.file.every_element.clone())?;
        Ok(Model {
            classes: self.classes,
            types: self.types,
            value_sets,
            value_set_index: self.value_set_index,
            constraints,
            constraint_index: self.constraint_index,
            every_element,
            not_derived: self
                .file
                .not_derived
                .iter()
                .map(|n| n.clone().into_boxed_str())
                .collect(),
            constrains,
        })
    }

    fn constraint_ids(&self, ids: &[String]) -> Result<Box<[ConstraintId]>, String> {
        ids.iter()
            .map(|id| {
                self.constraint_index
                    .get(id.as_str())
                    .copied()
                    .ok_or_else(|| format!("unknown constraint {id}"))
            })
            .collect()
    }

    #[expect(
        clippy::type_complexity,
        reason = "the four tables of one class, built together"
    )]
    fn elements(
        &mut self,
        owner_id: ClassId,
        owner: &str,
        list: Vec<FileElement>,
    ) -> Result<(Box<[Element]>, NameTable, NameTable, Box<[u16]>), String> {
        let mut elements = Vec::with_capacity(list.len());
        let mut members = Vec::new();
        let mut names = Vec::new();
        let mut required = Vec::new();
        for (index, item) in list.into_iter().enumerate() {
            let path = format!("{owner}.{}", item.name);
            let mut types = Vec::with_capacity(item.types.len());
            for ty in &item.types {
                let reference = if let Some(profile) = &ty.profile {
                    match self.types.get(profile.as_str()) {
                        Some(found) => *found,
                        None => self.type_ref_of(&ty.code),
                    }
                } else {
                    self.type_ref_of(&ty.code)
                };
                types.push(ElementType {
                    code: ty.code.clone().into_boxed_str(),
                    ty: reference,
                    targets: ty
                        .targets
                        .iter()
                        .map(|t| t.clone().into_boxed_str())
                        .collect(),
                });
            }
            if let Some(children) = item.elements {
                // A backbone element: a class of its own, named by its path.
                let id = self.classes.len() as ClassId;
                self.classes
                    .push(Class::empty(path.clone(), ClassKind::Backbone));
                self.backbones.insert(path.clone(), id);
                let (e, m, n, r) = self.elements(id, &path, children)?;
                let class = &mut self.classes[id as usize];
                class.elements = e;
                class.members = m;
                class.names = n;
                class.choices = choices_of(&class.elements);
                class.required = r;
                for ty in &mut types {
                    ty.ty = TypeRef::Class(id);
                }
            }
            if let Some(reference) = &item.content_reference {
                self.pending.push((owner_id, index, reference.clone()));
            }
            let binding = match &item.binding {
                Some(url) => Some(
                    *self
                        .value_set_index
                        .get(url.as_str())
                        .ok_or_else(|| format!("{path}: unknown value set {url}"))?,
                ),
                None => None,
            };
            let element = Element {
                name: item.name.clone().into_boxed_str(),
                path: path.into_boxed_str(),
                min: item.min,
                max: max_of(&item.max),
                choice: item.choice,
                types: types.into_boxed_slice(),
                binding,
                constraints: self.constraint_ids(&item.constraints)?,
                system: item.system,
            };
            let at = index as u16;
            if element.choice {
                for (t, _) in element.types.iter().enumerate() {
                    members.push((element.json_name(t).into_boxed_str(), at, t as u16));
                }
            } else {
                members.push((element.name.clone(), at, 0));
            }
            names.push((element.name.clone(), at, 0));
            if element.min > 0 {
                required.push(at);
            }
            elements.push(element);
        }
        Ok((
            elements.into_boxed_slice(),
            NameTable::new(members),
            NameTable::new(names),
            required.into_boxed_slice(),
        ))
    }

    fn type_ref_of(&self, code: &str) -> TypeRef {
        if code == "Resource" {
            return TypeRef::Resource;
        }
        match self.types.get(code) {
            Some(found) => *found,
            None => Prim::of(code).map_or(TypeRef::Unknown, TypeRef::Primitive),
        }
    }
}
