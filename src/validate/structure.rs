//! The structure tier: what the R4 StructureDefinitions say that the JSON Schema cannot.
//!
//! One walk over the parsed document, guided by [`Model`]: cardinality (1..1 primitives
//! included), an object where a complex type belongs and an array only where an element
//! repeats, no empty objects or arrays, one variant of a choice, real calendar dates,
//! integers that are integers, required bindings to value sets listed here, reference
//! targets, and the constraints of the definitions (`ele-1` natively, the rest through
//! [`fhirpath`]). Rules come from the derived file, never from code here.
//!
//! Where the schema tier already reports a problem at a place, this tier says nothing more
//! there (see [`super::Validator`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::fhirpath::{BUDGET_SPENT, Budget, Env, Host, Memo, Node, Verdict};
use super::finding::{Finding, Tier, label, quote, show};
use super::model::{
    ClassId, ClassKind, ConstraintId, Element, ElementType, Membership, Model, Prim, TypeRef,
    UrlMap, ValueSet, ValueSetId,
};
use crate::infra::words::MONTHS;

/// The one expression of `ele-1`, which [`Walk`] checks without the evaluator.
const ELE_1: &str = "hasValue() or (children().count() > id.count())";

/// A step from a resource's root to a value.
#[derive(Debug, Clone, Copy)]
pub enum Segment<'d> {
    Name(&'d str),
    Index(usize),
}

/// Resources a reference may name within the document: Bundle entries by `fullUrl` and by
/// `Type/id`.
#[derive(Default)]
pub struct Bundle<'d> {
    by_reference: HashMap<&'d str, &'d Value>,
    by_type_id: HashMap<(&'d str, &'d str), &'d Value>,
}

impl<'d> Bundle<'d> {
    pub fn of(document: &'d Value) -> Option<Self> {
        if document.get("resourceType").and_then(|t| t.as_str()) != Some("Bundle") {
            return None;
        }
        let mut bundle = Self::default();
        for entry in document.get("entry").and_then(|e| e.as_array())?.iter() {
            let Some(resource) = entry.get("resource") else {
                continue;
            };
            if let Some(full_url) = entry.get("fullUrl").and_then(|u| u.as_str()) {
                bundle.by_reference.insert(full_url, resource);
            }
            if let (Some(kind), Some(id)) = (
                resource.get("resourceType").and_then(|t| t.as_str()),
                resource.get("id").and_then(|i| i.as_str()),
            ) {
                bundle.by_type_id.insert((kind, id), resource);
            }
        }
        Some(bundle)
    }

    /// The resource a (non-local) reference names, if it is in the Bundle.
    pub fn find(&self, reference: &str) -> Option<&'d Value> {
        if let Some(found) = self.by_reference.get(reference) {
            return Some(found);
        }
        let (kind, id) = type_and_id(reference)?;
        self.by_type_id.get(&(kind, id)).copied()
    }
}

/// `Type` and `id` of a literal reference: `Type/id`, `Type/id/_history/v`, or an absolute
/// URL ending so.
pub fn type_and_id(reference: &str) -> Option<(&str, &str)> {
    let reference = reference.split(['?', '#']).next()?;
    let parts: Vec<&str> = reference.split('/').collect();
    let n = parts.len();
    let (kind, id) = if n >= 4 && parts[n - 2] == "_history" {
        (parts[n - 4], parts[n - 3])
    } else if n >= 2 {
        (parts[n - 2], parts[n - 1])
    } else {
        return None;
    };
    if kind.is_empty() || id.is_empty() || !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    Some((kind, id))
}

/// FHIRPath steps a resource's constraints may take before any of it is walked, and more
/// per member walked: linear constraints take a few dozen per member, so only work that
/// grows faster than the document (a hostile one's) reaches the limit.
pub const BUDGET_BASE: u64 = 1_000_000;
pub const BUDGET_PER_MEMBER: u64 = 1_000;

/// A resource's contained resources by id, listed once per resource: a search per `#id`
/// reference would make a resource with N contained resources and N references N² work.
pub struct Contained<'d> {
    root: usize,
    by_id: HashMap<&'d str, &'d Value>,
}

impl<'d> Contained<'d> {
    pub fn of(root: &'d Value) -> Self {
        let mut by_id = HashMap::new();
        for resource in root
            .get("contained")
            .and_then(|c| c.as_array())
            .into_iter()
            .flat_map(|c| c.iter())
        {
            if let Some(id) = resource.get("id").and_then(|i| i.as_str()) {
                // The first of two with one id is the one a reader finds.
                by_id.entry(id).or_insert(resource);
            }
        }
        Self {
            root: root as *const Value as usize,
            by_id,
        }
    }

    /// The contained resource with `id`.
    pub fn find(&self, id: &str) -> Option<&'d Value> {
        self.by_id.get(id).copied()
    }

    fn is_of(&self, root: &Value) -> bool {
        self.root == root as *const Value as usize
    }
}

/// A resource being walked: where its paths start and what its findings carry.
#[derive(Clone)]
struct Scope<'d> {
    /// The resource's type name: where its FHIR paths start.
    root_type: &'d str,
    /// Pointer of the resource within the document.
    pointer: String,
    entry: Option<usize>,
    label: Option<String>,
    /// `%resource` and `%rootResource`.
    resource: Node<'d>,
    root: Node<'d>,
}

/// Counts of constraints the walk could not decide.
pub type Undecided = HashMap<Box<str>, u64>;

/// Count one evaluation of `key` that could not be decided (the key is copied only the
/// first time).
pub fn count_undecided(undecided: &mut Undecided, key: &str) {
    match undecided.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            undecided.insert(key.into(), 1);
        }
    }
}

/// The walk over one document.
pub struct Walk<'d, 'o> {
    model: &'static Model,
    bundle: Option<&'o Bundle<'d>>,
    scope: Scope<'d>,
    path: Vec<Segment<'d>>,
    pub findings: &'o mut Vec<Finding>,
    pub undecided: &'o mut Undecided,
    ele_1_native: bool,
    /// Whether the document has `_name` companions at all.
    companions: bool,
    /// Whether Bundle entries' resources are walked too (or left to [`check_entry`]).
    entry_resources: bool,
    /// The work the constraints may do, raised as members are walked.
    budget: Budget,
    memo: Memo<'d>,
    /// The contained resources of the resource at the root of the scope.
    contained: Option<Contained<'d>>,
}

/// Check `document` (a resource or a Bundle of them) against the R4 structure rules; a
/// Bundle's entry resources too unless `entry_resources` is false (then [`check_entry`]
/// checks each).
pub fn check<'d>(
    document: &'d Value,
    bundle: Option<&Bundle<'d>>,
    companions: bool,
    entry_resources: bool,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
) {
    let model = Model::global();
    let Some(kind) = document.get("resourceType").and_then(|t| t.as_str()) else {
        return;
    };
    let Some(class) = model.resource(kind) else {
        return;
    };
    let mut walk = Walk::new(
        document,
        model.class(class).name.as_ref(),
        bundle,
        companions,
        entry_resources,
        findings,
        undecided,
    );
    // Bundle entries start their own paths, as the schema tier's findings do.
    walk.object(document, class, kind == "Bundle");
}

/// Check the resource of `Bundle.entry[n]` of `document`, with the paths and labels of an
/// entry (what [`check`] does for every entry when asked to).
pub fn check_entry<'d>(
    document: &'d Value,
    bundle: Option<&Bundle<'d>>,
    companions: bool,
    n: usize,
    resource: &'d Value,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
) {
    let mut walk = Walk::new(
        document, "Bundle", bundle, companions, true, findings, undecided,
    );
    walk.entry_resource(n, resource);
}

impl<'d, 'o> Walk<'d, 'o> {
    /// A walk that starts at `document`, whose paths start with `root_type`.
    fn new(
        document: &'d Value,
        root_type: &'d str,
        bundle: Option<&'o Bundle<'d>>,
        companions: bool,
        entry_resources: bool,
        findings: &'o mut Vec<Finding>,
        undecided: &'o mut Undecided,
    ) -> Self {
        let model = Model::global();
        let node = Node::resource(model, document);
        Walk {
            model,
            bundle,
            scope: Scope {
                root_type,
                pointer: String::new(),
                entry: None,
                label: label(document),
                resource: node,
                root: node,
            },
            path: Vec::new(),
            findings,
            undecided,
            ele_1_native: model
                .every_element
                .iter()
                .all(|id| &*model.constraint(*id).expression == ELE_1),
            companions,
            entry_resources,
            budget: Budget::new(BUDGET_BASE),
            memo: Memo::default(),
            contained: None,
        }
    }

    /// The FHIRPath steps the walk's constraints took (the work counted, for tests).
    pub fn steps(&self) -> u64 {
        self.budget.spent()
    }
}

impl<'d> Walk<'d, '_> {
    fn finding(&mut self, extra: Option<&str>, rule: impl Into<String>, message: String) {
        let mut pointer = self.scope.pointer.clone();
        let mut path = self.scope.root_type.to_owned();
        for segment in self.path.iter().copied().chain(extra.map(Segment::Name)) {
            match segment {
                Segment::Name(name) => {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    path.push('.');
                    path.push_str(name);
                }
                Segment::Index(index) => {
                    let _ = write!(pointer, "/{index}");
                    let _ = write!(path, "[{index}]");
                }
            }
        }
        let rule = rule.into();
        self.findings.push(Finding {
            entry: self.scope.entry,
            resource: self.scope.label.clone(),
            path,
            pointer,
            keyword: rule.clone(),
            message,
            tier: Tier::Structure,
            rule,
            profile: None,
        });
    }

    /// Check an object of class `class`: its members, what it lacks, its constraints.
    fn object(&mut self, value: &'d Value, class_id: ClassId, top_bundle: bool) {
        let model = self.model;
        let class = model.class(class_id);
        let Some(object) = value.as_object() else {
            return;
        };
        // Occurrences per element: on the stack for the classes there are (a Bundle entry
        // or an EOB item has a few dozen elements).
        let mut stack = [0u8; 128];
        let mut heap = Vec::new();
        let seen: &mut [u8] = if class.elements.len() <= stack.len() {
            &mut stack[..class.elements.len()]
        } else {
            heap.resize(class.elements.len(), 0);
            &mut heap
        };
        // Most objects have no `_name` companions: look for them only where there are.
        let companions = self.companions && object.iter().any(|(name, _)| name.starts_with('_'));
        self.budget.raise(BUDGET_PER_MEMBER * object.len() as u64);
        for (name, member) in object.iter() {
            if name == "resourceType" && class.kind == ClassKind::Resource {
                continue;
            }
            let (json, companion_only) = match name.strip_prefix('_') {
                Some(base) => (base, true),
                None => (name, false),
            };
            let Some((at, index)) = class.member_at(json) else {
                continue; // an unknown element: the schema tier's finding
            };
            let element = &class.elements[at];
            if companion_only {
                if object.get(&json).is_some() {
                    continue; // checked with its value
                }
                seen[at] = seen[at].saturating_add(1);
                self.path.push(Segment::Name(name));
                self.companion(element, member);
                self.path.pop();
                continue;
            }
            seen[at] = seen[at].saturating_add(1);
            let ty = &element.types[index];
            let companion = if companions && matches!(ty.ty, TypeRef::Primitive(_)) {
                companion_of(object, json)
            } else {
                None
            };
            self.path.push(Segment::Name(name));
            if top_bundle && name == "entry" {
                self.bundle_entries(element, member);
            } else {
                self.element(element, ty, member, companion);
            }
            self.path.pop();
        }
        for &required in &*class.required {
            let element = &class.elements[required as usize];
            if seen[required as usize] == 0 {
                let name = if element.choice {
                    format!("{}[x]", element.name)
                } else {
                    element.name.to_string()
                };
                let what = if element.choice {
                    let options: Vec<String> = (0..element.types.len())
                        .map(|i| element.json_name(i))
                        .collect();
                    format!(" (one of {})", options.join(", "))
                } else {
                    String::new()
                };
                self.finding(
                    Some(&name),
                    "cardinality",
                    format!(
                        "missing `{name}`{what}: {} is required ({}) by the R4 definition",
                        element.path,
                        element.cardinality()
                    ),
                );
            }
        }
        for &at in &*class.choices {
            let (at, element) = (at as usize, &class.elements[at as usize]);
            if seen[at] > 1 {
                let present: Vec<String> = (0..element.types.len())
                    .map(|i| element.json_name(i))
                    .filter(|n| object.get(&n.as_str()).is_some())
                    .collect();
                self.finding(
                    None,
                    "choice",
                    format!(
                        "{} are {} present: {}[x] takes one type only, so keep exactly one of them",
                        present.join(" and "),
                        if present.len() == 2 { "both" } else { "all" },
                        element.name
                    ),
                );
            }
        }
        let node = Node {
            value: Some(value),
            ext: None,
            ty: TypeRef::Class(class_id),
        };
        for &constraint in &*class.constraints {
            self.constraint(constraint, node);
        }
    }

    /// `Bundle.entry`: each entry's resource is a resource of its own, with its own paths.
    fn bundle_entries(&mut self, element: &'static Element, value: &'d Value) {
        let Some(entries) = value.as_array() else {
            self.element(element, &element.types[0], value, None);
            return;
        };
        let Some(TypeRef::Class(entry_class)) = element.types.first().map(|t| t.ty) else {
            return;
        };
        for (n, entry) in entries.iter().enumerate() {
            self.path.push(Segment::Index(n));
            let Some(object) = entry.as_object() else {
                self.path.pop();
                continue;
            };
            if object.is_empty() {
                self.finding(None, "invariant:ele-1", empty_object_message());
                self.path.pop();
                continue;
            }
            // The entry itself, without its resource.
            let class = self.model.class(entry_class);
            let resource = entry.get("resource");
            let mut seen = vec![0u8; class.elements.len()];
            for (name, member) in object.iter() {
                let json = name.strip_prefix('_').unwrap_or(name);
                let Some((at, index)) = class.member_at(json) else {
                    continue;
                };
                let el = &class.elements[at];
                seen[at] = seen[at].saturating_add(1);
                if name == "resource" {
                    continue;
                }
                let ty = &el.types[index];
                let companion = if name.starts_with('_') || !self.companions {
                    None
                } else {
                    companion_of(object, json)
                };
                self.path.push(Segment::Name(name));
                if name.starts_with('_') {
                    if object.get(&json).is_none() {
                        self.companion(el, member);
                    }
                } else {
                    self.element(el, ty, member, companion);
                }
                self.path.pop();
            }
            for &required in &*class.required {
                if seen[required as usize] == 0 {
                    let el = &class.elements[required as usize];
                    self.finding(
                        Some(&el.name),
                        "cardinality",
                        format!(
                            "missing `{}`: {} is required ({})",
                            el.name,
                            el.path,
                            el.cardinality()
                        ),
                    );
                }
            }
            let entry_node = Node {
                value: Some(entry),
                ext: None,
                ty: TypeRef::Class(entry_class),
            };
            for &constraint in &*element.constraints {
                self.constraint(constraint, entry_node);
            }
            if let Some(resource) = resource
                && self.entry_resources
            {
                self.entry_resource(n, resource);
            }
            self.path.pop();
        }
    }

    /// A Bundle entry's resource: a resource of its own, with its own paths.
    fn entry_resource(&mut self, n: usize, resource: &'d Value) {
        let Some(kind) = resource.get("resourceType").and_then(|t| t.as_str()) else {
            return;
        };
        let Some(class) = self.model.resource(kind) else {
            return;
        };
        let node = Node::resource(self.model, resource);
        let mut pointer = self.scope.pointer.clone();
        let _ = write!(pointer, "/entry/{n}/resource");
        let scope = Scope {
            root_type: self.model.class(class).name.as_ref(),
            pointer,
            entry: Some(n),
            label: label(resource),
            resource: node,
            root: node,
        };
        let saved = std::mem::replace(&mut self.scope, scope);
        let saved_path = std::mem::take(&mut self.path);
        self.object(resource, class, false);
        self.scope = saved;
        self.path = saved_path;
    }

    /// One element's member: an array for repeating elements, one value otherwise.
    fn element(
        &mut self,
        element: &'static Element,
        ty: &'static ElementType,
        value: &'d Value,
        companion: Option<&'d Value>,
    ) {
        let repeats = element.max > 1;
        if let Some(items) = value.as_array() {
            if !repeats {
                self.finding(
                    None,
                    "type",
                    format!(
                        "{} takes one value ({}), but an array was given: write the value itself, without [ ]",
                        element.path,
                        element.cardinality()
                    ),
                );
                return;
            }
            if items.is_empty() {
                self.finding(
                    None,
                    "empty",
                    "an empty array: FHIR JSON leaves an element out rather than writing [] (R4 JSON §2.6.2)".into(),
                );
                return;
            }
            let count = items.len() as u64;
            if count > u64::from(element.max) {
                self.finding(
                    None,
                    "cardinality",
                    format!(
                        "{count} values, but {} allows {}",
                        element.path,
                        element.cardinality()
                    ),
                );
            } else if count < u64::from(element.min) {
                self.finding(
                    None,
                    "cardinality",
                    format!(
                        "{count} values, but {} needs {}",
                        element.path,
                        element.cardinality()
                    ),
                );
            }
            let companions = companion.and_then(|c| c.as_array());
            for (index, item) in items.iter().enumerate() {
                self.path.push(Segment::Index(index));
                let companion = companions
                    .and_then(|c| c.get(index))
                    .filter(|c| !c.is_null());
                self.value(element, ty, Some(item).filter(|v| !v.is_null()), companion);
                self.path.pop();
            }
            return;
        }
        if repeats {
            return; // not an array: the schema tier's `type` finding
        }
        if element.max == 0 {
            self.finding(
                None,
                "cardinality",
                format!(
                    "{} is not allowed here ({})",
                    element.path,
                    element.cardinality()
                ),
            );
            return;
        }
        self.value(element, ty, Some(value).filter(|v| !v.is_null()), companion);
    }

    /// A `_name` member without its value: the primitive has only an id and extensions.
    fn companion(&mut self, element: &'static Element, value: &'d Value) {
        if let Some(items) = value.as_array() {
            if element.max <= 1 {
                return;
            }
            for (index, item) in items.iter().enumerate() {
                if item.is_null() {
                    continue;
                }
                self.path.push(Segment::Index(index));
                let ty = &element.types[0];
                self.value(element, ty, None, Some(item));
                self.path.pop();
            }
            return;
        }
        let Some(ty) = element.types.first() else {
            return;
        };
        self.value(element, ty, None, Some(value));
    }

    /// One value of an element, of one of its types.
    fn value(
        &mut self,
        element: &'static Element,
        ty: &'static ElementType,
        value: Option<&'d Value>,
        companion: Option<&'d Value>,
    ) {
        let model = self.model;
        match ty.ty {
            TypeRef::Primitive(prim) => {
                if let Some(value) = value {
                    self.primitive(element, prim, value);
                }
                if let Some(companion) = companion {
                    self.primitive_companion(companion, value.is_some());
                }
                let node = Node {
                    value,
                    ext: companion,
                    ty: ty.ty,
                };
                for &constraint in &*element.constraints {
                    self.constraint(constraint, node);
                }
            }
            TypeRef::Class(class) => {
                let Some(value) = value else {
                    return;
                };
                if !value.is_object() {
                    self.finding(
                        None,
                        "type",
                        format!(
                            "expected an object ({}), found {}: {} is a complex element",
                            ty.code,
                            show(value),
                            element.path
                        ),
                    );
                    return;
                }
                let node = Node {
                    value: Some(value),
                    ext: None,
                    ty: ty.ty,
                };
                if model.class(class).kind != ClassKind::Resource && !element.system {
                    if !self.ele_1_native {
                        for &constraint in &*model.every_element {
                            self.constraint(constraint, node);
                        }
                    } else if is_empty_element(value) {
                        self.finding(None, "invariant:ele-1", empty_object_message());
                        // The element's own constraints fail on it too (con-2 on an empty
                        // Condition.evidence): both are reported, as HL7's engine does.
                        for &constraint in &*element.constraints {
                            self.constraint(constraint, node);
                        }
                        return;
                    }
                }
                if &*ty.code == "Reference" && !ty.targets.is_empty() {
                    self.reference(element, ty, value);
                }
                if let Some(set) = element.binding {
                    self.coded(element, &model.value_sets[set as usize], &ty.code, value);
                }
                self.object(value, class, false);
                for &constraint in &*element.constraints {
                    self.constraint(constraint, node);
                }
            }
            TypeRef::Resource => {
                let Some(value) = value else {
                    return;
                };
                let Some(kind) = value.get("resourceType").and_then(|t| t.as_str()) else {
                    return;
                };
                let Some(class) = model.resource(kind) else {
                    return;
                };
                // A contained resource: paths go on from the container; `%resource` is it.
                let node = Node::resource(model, value);
                let saved = self.scope.resource;
                self.scope.resource = node;
                self.object(value, class, false);
                self.scope.resource = saved;
            }
            TypeRef::Unknown => {}
        }
    }

    fn primitive(&mut self, element: &'static Element, prim: Prim, value: &'d Value) {
        match prim {
            Prim::Date | Prim::DateTime | Prim::Instant => {
                if let Some(text) = value.as_str()
                    && let Some(problem) = calendar_problem(text)
                {
                    self.finding(
                        None,
                        "date",
                        format!("{} is not a real {}: {problem}", quote(text), prim.name()),
                    );
                }
            }
            Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt => {
                if let Some(number) = value.as_raw_number()
                    && let Some(problem) = integer_problem(number.as_str(), prim)
                {
                    self.finding(None, "integer", problem);
                }
            }
            _ => {}
        }
        if let Some(set) = element.binding
            && let Some(code) = value.as_str()
        {
            let set = &self.model.value_sets[set as usize];
            if set.code(code) == Membership::NotIn {
                self.finding(None, "binding", not_in_message(quote(code), set));
            }
        }
    }

    /// A primitive's `_name` object: an Element with an id and extensions.
    fn primitive_companion(&mut self, companion: &'d Value, has_value: bool) {
        let Some(object) = companion.as_object() else {
            return;
        };
        // ele-1 on the primitive: a value, or an extension.
        if !has_value
            && object
                .get(&"extension")
                .is_none_or(|e| e.as_array().is_none_or(|a| a.is_empty()))
        {
            let ext_name = match self.path.last() {
                Some(Segment::Name(n)) => n.to_string(),
                _ => String::new(),
            };
            self.finding(
                None,
                "invariant:ele-1",
                format!("{ext_name} has neither a value nor an extension: every element needs one or the other (ele-1)"),
            );
        }
        if let Some(extensions) = object.get(&"extension").and_then(|e| e.as_array())
            && let TypeRef::Class(extension) = self.model.type_ref("Extension")
        {
            self.path.push(Segment::Name("extension"));
            for (index, item) in extensions.iter().enumerate() {
                if item.is_object() {
                    self.path.push(Segment::Index(index));
                    if is_empty_element(item) {
                        self.finding(None, "invariant:ele-1", empty_object_message());
                    } else {
                        self.object(item, extension, false);
                    }
                    self.path.pop();
                }
            }
            self.path.pop();
        }
    }

    /// A literal reference's target type against the element's allowed targets.
    fn reference(&mut self, element: &'static Element, ty: &'static ElementType, value: &'d Value) {
        if ty.targets.iter().any(|t| &**t == "Resource") {
            return;
        }
        let Some(reference) = value.get("reference").and_then(|r| r.as_str()) else {
            return;
        };
        let kind = if let Some(id) = reference.strip_prefix('#') {
            // Contained: its type is the contained resource's (ref-1 reports a missing one).
            self.contained()
                .and_then(|c| c.find(id))
                .and_then(|r| r.get("resourceType"))
                .and_then(|t| t.as_str())
        } else if reference.starts_with("urn:") {
            self.bundle
                .and_then(|b| b.find(reference))
                .and_then(|r| r.get("resourceType"))
                .and_then(|t| t.as_str())
        } else {
            type_and_id(reference).map(|(kind, _)| kind).filter(|kind| {
                self.model.resource(kind).is_some()
                    || super::Registry::global().is_resource_type(kind)
            })
        };
        let Some(kind) = kind else {
            return;
        };
        if ty.targets.iter().any(|t| &**t == kind) {
            return;
        }
        self.finding(
            Some("reference"),
            "reference-target",
            format!(
                "{} refers to {} ({}), but may only refer to {}",
                element.path,
                quote(reference),
                kind,
                one_of(&ty.targets)
            ),
        );
    }

    /// A Coding or CodeableConcept against a required binding.
    fn coded(
        &mut self,
        element: &'static Element,
        set: &'static ValueSet,
        code: &str,
        value: &'d Value,
    ) {
        match code {
            "Coding" => {
                let Some(c) = value.get("code").and_then(|c| c.as_str()) else {
                    return;
                };
                let system = value.get("system").and_then(|s| s.as_str());
                if set.coding(system, c) == Membership::NotIn {
                    self.finding(None, "binding", not_in_message(coding_text(system, c), set));
                }
            }
            "CodeableConcept" => {
                let codings = value.get("coding").and_then(|c| c.as_array());
                let Some(codings) = codings.filter(|c| !c.is_empty()) else {
                    self.finding(
                        None,
                        "binding",
                        format!(
                            "{} has no coding, but its binding to {} is required: give a code from it",
                            element.path,
                            set.name()
                        ),
                    );
                    return;
                };
                let mut shown = Vec::new();
                for coding in codings.iter() {
                    let Some(c) = coding.get("code").and_then(|c| c.as_str()) else {
                        return; // a coding without a code cannot be judged
                    };
                    let system = coding.get("system").and_then(|s| s.as_str());
                    match set.coding(system, c) {
                        Membership::In | Membership::Unknown => return,
                        Membership::NotIn => shown.push(coding_text(system, c)),
                    }
                }
                self.finding(None, "binding", not_in_message(shown.join(", "), set));
            }
            _ => {}
        }
    }

    /// Evaluate a constraint with `%context` the node; record failures and undecided ones.
    fn constraint(&mut self, id: ConstraintId, node: Node<'d>) {
        let constraint = self.model.constraint(id);
        if !constraint.error {
            return;
        }
        // The narrative's two rules share one expression (`htmlChecks()`): judged natively.
        if let key @ ("txt-1" | "txt-2") = constraint.key.as_ref() {
            let Some(div) = node.value.and_then(|v| v.as_str()) else {
                return;
            };
            let problem = if key == "txt-1" {
                super::narrative::basic_html(div).err()
            } else {
                (!super::narrative::has_content(div)).then(|| "it holds only whitespace".to_owned())
            };
            if let Some(problem) = problem {
                let human = constraint.human.clone();
                self.finding(
                    None,
                    format!("invariant:{key}"),
                    format!("{key} fails: {human}: {problem}"),
                );
            }
            return;
        }
        let compiled = match &constraint.compiled {
            Ok(compiled) => compiled,
            Err(_) => {
                count_undecided(self.undecided, &constraint.key);
                return;
            }
        };
        self.contained();
        let host = Resolver {
            model: self.model,
            root: self.scope.root,
            bundle: self.bundle,
            extra: None,
            contained: self.contained.as_ref(),
        };
        let env = Env {
            model: self.model,
            resource: self.scope.resource,
            root: self.scope.root,
            context: node,
            host: &host,
            companions: self.companions,
            budget: &self.budget,
            memo: &self.memo,
        };
        let verdict = compiled.check(&env);
        match verdict {
            Verdict::Holds => {}
            Verdict::Fails => {
                let key = constraint.key.clone();
                let human = constraint.human.clone();
                self.finding(
                    None,
                    format!("invariant:{key}"),
                    format!("{key} fails: {human} ({})", constraint.expression),
                );
            }
            Verdict::Undecided(why) => {
                count_undecided(self.undecided, &undecided_key(&constraint.key, &why));
            }
        }
    }

    /// The contained resources of the scope's root resource, listed on first need.
    fn contained(&mut self) -> Option<&Contained<'d>> {
        let root = self.scope.root.value?;
        if !self.contained.as_ref().is_some_and(|c| c.is_of(root)) {
            self.contained = Some(Contained::of(root));
        }
        self.contained.as_ref()
    }
}

/// How an undecided constraint is counted: by its key, and said so when the budget ran out
/// ("dom-3 (budget exceeded)"), so a reader knows the document, not the rule, stopped it.
pub fn undecided_key(key: &str, why: &str) -> String {
    if why == BUDGET_SPENT {
        format!("{key} (budget exceeded)")
    } else {
        key.to_owned()
    }
}

/// The finding for a member name an object repeated (at `pointer`, the repeated member).
pub fn repeated_member(document: &Value, pointer: &str) -> Finding {
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut entry = None;
    let mut root = document;
    let mut from = 0;
    if document.get("resourceType").and_then(|t| t.as_str()) == Some("Bundle")
        && segments.len() > 3
        && segments[0] == "entry"
        && segments[2] == "resource"
        && let Ok(n) = segments[1].parse::<usize>()
        && let Some(resource) = document
            .get("entry")
            .and_then(|e| e.as_array())
            .and_then(|e| e.get(n))
            .and_then(|e| e.get("resource"))
    {
        entry = Some(n);
        root = resource;
        from = 3;
    }
    let mut path = root
        .get("resourceType")
        .and_then(|t| t.as_str())
        .unwrap_or("Resource")
        .to_owned();
    let mut node = Some(root);
    for segment in &segments[from..] {
        let index = node
            .filter(|n| n.is_array())
            .and_then(|_| segment.parse::<usize>().ok());
        match index {
            Some(index) => {
                let _ = write!(path, "[{index}]");
                node = node.and_then(|n| n.as_array()).and_then(|a| a.get(index));
            }
            None => {
                path.push('.');
                path.push_str(segment);
                node = node.and_then(|n| n.get(segment.as_str()));
            }
        }
    }
    let name = segments.last().cloned().unwrap_or_default();
    Finding {
        entry,
        resource: label(root),
        path,
        pointer: pointer.to_owned(),
        keyword: "duplicate".into(),
        message: format!(
            "`{name}` appears more than once in the same object: JSON readers keep only one of the values (which one differs), so name each member once"
        ),
        tier: Tier::Structure,
        rule: "duplicate".into(),
        profile: None,
    }
}

/// More value sets (a profile's IG's), by canonical URL.
pub type ValueSets = (&'static [ValueSet], &'static UrlMap<ValueSetId>);

/// What `resolve()` and `memberOf()` may use while checking one resource.
pub struct Resolver<'d, 'b> {
    pub model: &'static Model,
    pub root: Node<'d>,
    pub bundle: Option<&'b Bundle<'d>>,
    /// More value sets (a profile's), looked up first.
    pub extra: Option<ValueSets>,
    /// The root's contained resources by id, which `#id` references resolve to.
    pub contained: Option<&'b Contained<'d>>,
}

impl<'d> Host<'d> for Resolver<'d, '_> {
    fn resolve(&self, reference: &str) -> Option<Node<'d>> {
        if let Some(id) = reference.strip_prefix('#') {
            let root = self.root.value?;
            let found = self.contained.filter(|c| c.is_of(root))?.find(id)?;
            return Some(Node::resource(self.model, found));
        }
        let found = self.bundle?.find(reference)?;
        Some(Node::resource(self.model, found))
    }

    fn value_set(&self, url: &str) -> Option<&'d ValueSet> {
        if let Some((sets, index)) = self.extra
            && let Some(&id) = index.get(url)
        {
            return Some(&sets[id as usize]);
        }
        self.model.value_set(url)
    }
}

/// The `_name` companion of member `name`, if the object has one.
fn companion_of<'d>(object: &'d sonic_rs::Object, name: &str) -> Option<&'d Value> {
    object.iter().find_map(|(key, value)| {
        (key.len() == name.len() + 1 && key.starts_with('_') && &key[1..] == name).then_some(value)
    })
}

/// An object with nothing in it but (perhaps) an `id`: ele-1 fails on it.
fn is_empty_element(value: &Value) -> bool {
    // Names are unique once parsed: two members or more are never all `id`.
    value.as_object().is_some_and(|o| match o.len() {
        0 => true,
        1 => o.iter().next().is_some_and(|(name, _)| name == "id"),
        _ => false,
    })
}

fn empty_object_message() -> String {
    "an empty element ({} or only an id): every element needs a value or children (ele-1); leave it out instead".into()
}

fn coding_text(system: Option<&str>, code: &str) -> String {
    match system {
        Some(system) => format!("{system}|{code}"),
        None => quote(code),
    }
}

fn not_in_message(what: String, set: &ValueSet) -> String {
    let listed = set.listed();
    let codes = set.some_codes(12);
    let more = if listed > codes.len() {
        format!(" (and {} more)", listed - codes.len())
    } else {
        String::new()
    };
    format!(
        "{what} is not in the value set {} (required binding): use one of {}{more}",
        set.name(),
        codes.join(", ")
    )
}

fn one_of(targets: &[Box<str>]) -> String {
    match targets {
        [one] => format!("a {one}"),
        many => {
            let names: Vec<&str> = many.iter().map(|t| &**t).collect();
            format!("one of {}", names.join(", "))
        }
    }
}

/// Why a date, dateTime or instant names no real day, if it does not. Only the calendar is
/// judged here; the lexical form is the schema's.
pub fn calendar_problem(text: &str) -> Option<String> {
    let date = text.split('T').next()?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => return None,
    };
    let day: i64 = match parts.next() {
        Some(d) => d.parse().ok()?,
        None => return None,
    };
    if !(1..=12).contains(&month) || day < 1 {
        return None; // the schema's pattern catches these
    }
    let most = super::fhirpath::days_in_month(year, month);
    if day > most {
        let name = MONTHS[(month - 1) as usize];
        return Some(format!("{name} {year} has {most} days"));
    }
    None
}

/// Why a JSON number is not a valid value of an integer type, if it is not.
pub fn integer_problem(text: &str, prim: Prim) -> Option<String> {
    let lexical = {
        let digits = text.strip_prefix('-').unwrap_or(text);
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
    };
    if !lexical {
        return Some(format!(
            "the number {text} is not a valid {}: it must be a whole number written without a decimal point or exponent",
            prim.name()
        ));
    }
    let (low, high) = match prim {
        Prim::PositiveInt => (1, i128::from(i32::MAX)),
        Prim::UnsignedInt => (0, i128::from(i32::MAX)),
        _ => (i128::from(i32::MIN), i128::from(i32::MAX)),
    };
    // Digits beyond what an i128 holds (39 nines) are out of range too, not unjudged.
    let out_of_range = text.parse::<i128>().map_or(true, |v| v < low || v > high);
    if out_of_range {
        return Some(format!(
            "the number {text} is out of range for a {} ({low} to {high})",
            prim.name()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hostile shapes of issue 26: each is N times something small.
    fn shape(name: &str, n: usize) -> serde_json::Value {
        use serde_json::json;
        let contained: Vec<_> = (0..n)
            .map(|i| json!({"resourceType": "Practitioner", "id": format!("p{i}"), "name": [{"family": format!("F{i}")}]}))
            .collect();
        match name {
            "referenced" => json!({"resourceType": "Patient", "id": "x", "contained": contained,
                "generalPractitioner": (0..n).map(|i| json!({"reference": format!("#p{i}")})).collect::<Vec<_>>()}),
            "unreferenced" => json!({"resourceType": "Patient", "id": "x", "contained": contained}),
            "bundle" => {
                json!({"resourceType": "Bundle", "type": "collection", "entry": (0..n).map(|i| json!({
                "fullUrl": format!("urn:uuid:00000000-0000-0000-0000-{i:012}"),
                "resource": {"resourceType": "Patient", "id": format!("p{i}"), "name": [{"family": format!("F{i}")}]}})).collect::<Vec<_>>()})
            }
            "questionnaire" => json!({"resourceType": "Questionnaire", "status": "active",
                "item": (0..n).map(|i| json!({"linkId": format!("q{i}"), "type": "string", "text": format!("Q{i}")})).collect::<Vec<_>>()}),
            other => panic!("no shape {other}"),
        }
    }

    /// The FHIRPath steps the structure tier takes on a document, and its undecided rules.
    fn steps(document: &serde_json::Value) -> (u64, Undecided) {
        let document: Value = sonic_rs::from_str(&document.to_string()).unwrap();
        let bundle = Bundle::of(&document);
        let mut findings = Vec::new();
        let mut undecided = Undecided::new();
        let model = Model::global();
        let kind = document["resourceType"].as_str().unwrap();
        let class = model.resource(kind).unwrap();
        let mut walk = Walk::new(
            &document,
            kind,
            bundle.as_ref(),
            false,
            true,
            &mut findings,
            &mut undecided,
        );
        walk.object(&document, class, kind == "Bundle");
        let steps = walk.steps();
        // Only the shape without references breaks a rule: dom-3, once.
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        let expected: &[&str] = if document.get("contained").is_some()
            && document.get("generalPractitioner").is_none()
        {
            &["invariant:dom-3"]
        } else {
            &[]
        };
        assert_eq!(rules, expected);
        (steps, undecided)
    }

    /// Doubling each hostile shape at most about doubles the constraints' counted work: the
    /// whole-resource rules (dom-3 over contained resources, ref-1 and `#id` lookups, bdl-7,
    /// que-2) are linear, where they were N² and N³.
    #[test]
    fn constraint_work_is_linear_in_the_document() {
        for name in ["referenced", "unreferenced", "bundle", "questionnaire"] {
            let (small, undecided) = steps(&shape(name, 1_000));
            assert!(undecided.is_empty(), "{name}: {undecided:?}");
            let (large, undecided) = steps(&shape(name, 2_000));
            assert!(undecided.is_empty(), "{name}: {undecided:?}");
            let ratio = large as f64 / small as f64;
            assert!(
                ratio < 2.1,
                "{name}: {small} steps for 1,000, {large} for 2,000 ({ratio:.2}x)"
            );
        }
    }

    /// Work that outgrows the document stops at its budget and is counted as not evaluated,
    /// saying why, instead of running on.
    #[test]
    fn a_spent_budget_leaves_the_rule_undecided() {
        let document: Value = sonic_rs::from_str(&shape("unreferenced", 50).to_string()).unwrap();
        let mut findings = Vec::new();
        let mut undecided = Undecided::new();
        let mut walk = Walk::new(
            &document,
            "Patient",
            None,
            false,
            true,
            &mut findings,
            &mut undecided,
        );
        // Far below what dom-3 takes over 50 contained resources.
        walk.budget = Budget::new(10);
        let constraint = Model::global()
            .class(Model::global().resource("Patient").unwrap())
            .constraints
            .iter()
            .copied()
            .find(|&id| &*Model::global().constraint(id).key == "dom-3")
            .unwrap();
        walk.constraint(constraint, Node::resource(Model::global(), &document));
        assert_eq!(
            undecided.get("dom-3 (budget exceeded)"),
            Some(&1),
            "{undecided:?}"
        );
        assert!(findings.is_empty());
    }

    #[test]
    fn calendars_know_their_months() {
        assert!(calendar_problem("2021-02-30").is_some());
        assert!(calendar_problem("2021-02-29").is_some());
        assert!(calendar_problem("2020-02-29").is_none());
        assert!(calendar_problem("1900-02-29").is_some());
        assert!(calendar_problem("2000-02-29T10:00:00Z").is_none());
        assert!(calendar_problem("2021-04-31").is_some());
        assert!(calendar_problem("2021").is_none());
        assert!(calendar_problem("2021-04").is_none());
        assert_eq!(
            calendar_problem("2021-02-30").as_deref(),
            Some("February 2021 has 28 days")
        );
    }

    #[test]
    fn integers_are_whole_and_in_range() {
        assert!(integer_problem("1", Prim::PositiveInt).is_none());
        assert!(integer_problem("1.5", Prim::PositiveInt).is_some());
        assert!(integer_problem("1.0", Prim::Integer).is_some());
        assert!(integer_problem("1e2", Prim::Integer).is_some());
        assert!(integer_problem("0", Prim::PositiveInt).is_some());
        assert!(integer_problem("0", Prim::UnsignedInt).is_none());
        assert!(integer_problem("-1", Prim::UnsignedInt).is_some());
        assert!(integer_problem("2147483648", Prim::Integer).is_some());
        assert!(integer_problem("-2147483648", Prim::Integer).is_none());
        // Beyond an i128: out of range all the same.
        for huge in [
            "999999999999999999999999999999999999999",
            "-9999999999999999999999999999999999999999",
        ] {
            assert!(integer_problem(huge, Prim::Integer).is_some(), "{huge}");
            assert!(integer_problem(huge, Prim::UnsignedInt).is_some(), "{huge}");
        }
        assert!(integer_problem("007", Prim::Integer).is_some());
    }

    #[test]
    fn references_name_their_type() {
        assert_eq!(type_and_id("Patient/1"), Some(("Patient", "1")));
        assert_eq!(
            type_and_id("https://x.org/fhir/Patient/1"),
            Some(("Patient", "1"))
        );
        assert_eq!(type_and_id("Patient/1/_history/2"), Some(("Patient", "1")));
        assert_eq!(type_and_id("urn:uuid:123"), None);
        assert_eq!(type_and_id("patient/1"), None);
    }
}
