//! Deriving the profile tier's rules from a FHIR package at run time: each profile's
//! snapshot becomes a tree of what it adds to the R4 definition of its type ([`Model`]):
//! tighter cardinality, narrower types and reference targets, `pattern[x]`/`fixed[x]`,
//! required bindings to value sets (expanded by [`Terminology`]), slices with how an item
//! is told to belong to each, and the profile's own constraints. What R4 itself says is the
//! structure tier's, so a rule is reported once.
//!
//! The shipped IGs and a user's `--ig` package take this same path. What cannot be derived
//! faithfully (a slice told apart by `profile` or `exists`, a target profile of a package not
//! loaded) is left unjudged and listed in [`DerivedIg::limits`], never guessed.

use std::collections::{HashMap, HashSet};

use super::derived::{FileCodes, FileConstraint};
use super::model::{ClassId, ClassKind, Element, Model, TypeRef};
use super::package::{ElementDefinition, Package, StructureDefinition};
use super::terminology::{Expansion, Terminology};
use serde::Deserialize;

const SD: &str = "http://hl7.org/fhir/StructureDefinition/";
const SYSTEM: &str = "http://hl7.org/fhirpath/System.";
const FHIR_TYPE: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
/// FHIR's extension marking which types of a choice are must-support.
const TYPE_MUST_SUPPORT: &str =
    "http://hl7.org/fhir/StructureDefinition/elementdefinition-type-must-support";
/// US Core's "Additional USCDI Requirement": must-support in all but name (Inferno's kit
/// counts it so).
const USCDI_REQUIREMENT: &str = "http://hl7.org/fhir/us/core/StructureDefinition/uscdi-requirement";

/// One package's profiles, derived.
#[derive(Debug, Default)]
pub struct DerivedIg {
    pub name: String,
    pub version: String,
    pub origin: String,
    /// Constraint table id (its key, or `key@Profile` when two profiles mean two things) →
    /// the constraint.
    pub constraints: HashMap<String, FileConstraint>,
    pub profiles: Vec<(String, FileProfile)>,
    /// The profiles the package's server CapabilityStatements support, per resource type.
    pub supported: HashMap<String, Vec<String>>,
    /// The searches its server CapabilityStatements make SHALL, per resource type: each a
    /// list of parameter codes (`patient`, `category`) given together.
    pub searches: HashMap<String, Vec<Vec<String>>>,
    /// Its SearchParameters, per base type and code.
    pub search_parameters: HashMap<String, HashMap<String, SearchDefinition>>,
    /// The `_include`s its server CapabilityStatements list, per resource type
    /// (`PractitionerRole:location`).
    pub includes: HashMap<String, Vec<String>>,
    /// The `_revinclude`s they list, per resource type (`PractitionerRole:practitioner` of
    /// Practitioner).
    pub revincludes: HashMap<String, Vec<String>>,
    /// The value sets the profiles bind to (required) or test membership of, expanded.
    pub value_sets: HashMap<String, HashMap<String, FileCodes>>,
    /// Value sets named but not expandable here (not in any loaded package, or composed of
    /// external terminology only as a whole): bindings to them are not evaluated.
    pub unlisted: Vec<String>,
    /// Profiles a resource claims only with a versioned `meta.profile` (the profile's own
    /// constraint requires it, as CARIN's do).
    pub versioned_only: HashSet<String>,
    /// What was left unjudged, one sentence each.
    pub limits: Vec<String>,
}

/// What a SearchParameter of the package defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDefinition {
    /// `token`, `reference`, `date`, `string`, …
    pub kind: String,
    /// Its FHIRPath expression (`Observation.subject.where(resolve() is Patient)`).
    pub expression: String,
    /// The types a reference parameter points at.
    pub target: Vec<String>,
}

/// Where a profile's target profiles are looked up: every structure definition loaded, by URL.
pub type TypeIndex = HashMap<String, String>;

/// Derive the profiles of `package`, with `others` (its dependencies, other loaded packages)
/// for terminology and target types.
pub fn derive(
    package: &Package,
    others: &[&Package],
    types: &TypeIndex,
    given: &HashMap<String, Expansion>,
    model: &Model,
) -> DerivedIg {
    let mut packages = vec![package];
    packages.extend_from_slice(others);
    let mut deriver = Deriver {
        model,
        types,
        out: DerivedIg {
            name: package.name.clone(),
            version: package.version.clone(),
            origin: package.origin.clone(),
            ..DerivedIg::default()
        },
        bindings: HashSet::new(),
    };
    let mut definitions: Vec<&StructureDefinition> = package
        .structure_definitions
        .iter()
        .filter(|d| {
            (d.kind == "resource" || d.type_name == "Extension")
                && d.derivation.as_deref() == Some("constraint")
                && d.snapshot.is_some()
        })
        .collect();
    definitions.sort_by(|a, b| a.url.cmp(&b.url));
    for definition in definitions {
        let described = match model.type_ref(&definition.type_name) {
            TypeRef::Class(_) => {
                definition.type_name == "Extension"
                    || model.resource(&definition.type_name).is_some()
            }
            _ => false,
        };
        if !described {
            deriver.out.limits.push(format!(
                "{}: its type {} is not one onramp's R4 rules describe",
                definition.url, definition.type_name
            ));
            continue;
        }
        if let Some(profile) = deriver.profile(definition) {
            deriver.out.profiles.push((definition.url.clone(), profile));
        }
    }
    for constraint in deriver.out.constraints.values() {
        for url in member_of_urls(&constraint.expression) {
            deriver.bindings.insert(url);
        }
    }
    let mut terminology = Terminology::new(&packages, given);
    let mut bindings: Vec<String> = deriver.bindings.into_iter().collect();
    bindings.sort();
    let mut out = deriver.out;
    for url in bindings {
        match terminology.expand(&url) {
            Some(expansion) => {
                let systems = expansion
                    .into_iter()
                    .map(|(system, codes)| {
                        let codes = match codes {
                            Some(codes) => FileCodes::Listed(codes.into_iter().collect()),
                            None => FileCodes::Unlisted("*".into()),
                        };
                        (system, codes)
                    })
                    .collect();
                out.value_sets.insert(url, systems);
            }
            None => {
                // Bound, but nothing of it can be listed: kept, so its codes are counted as
                // not evaluated rather than silently passed.
                out.value_sets.insert(
                    url.clone(),
                    HashMap::from([(
                        super::model::ANY_SYSTEM.to_owned(),
                        FileCodes::Unlisted("*".into()),
                    )]),
                );
                out.unlisted.push(url);
            }
        }
    }
    capabilities(package, &mut out);
    out
}

/// What the package's server CapabilityStatements support (profiles, SHALL searches) and
/// what its SearchParameters define.
fn capabilities(package: &Package, out: &mut DerivedIg) {
    for statement in &package.capability_statements {
        for rest in statement
            .rest
            .iter()
            .filter(|r| r.mode.as_deref() != Some("client"))
        {
            for resource in &rest.resource {
                let searches = out.searches.entry(resource.type_name.clone()).or_default();
                for search in resource.shall_searches() {
                    if !searches.contains(&search) {
                        searches.push(search);
                    }
                }
                let list = out.supported.entry(resource.type_name.clone()).or_default();
                for profile in &resource.supported_profile {
                    let url = profile.split('|').next().unwrap_or(profile).to_owned();
                    if !list.contains(&url) {
                        list.push(url);
                    }
                }
                list.sort();
                // Some IGs list an include by its parameter alone: it is of this type.
                let qualified = |spec: &String| {
                    if spec.contains(':') {
                        spec.clone()
                    } else {
                        format!("{}:{spec}", resource.type_name)
                    }
                };
                let includes = out.includes.entry(resource.type_name.clone()).or_default();
                for include in resource.search_include.iter().map(qualified) {
                    if !includes.contains(&include) {
                        includes.push(include);
                    }
                }
                let revincludes = out
                    .revincludes
                    .entry(resource.type_name.clone())
                    .or_default();
                for revinclude in &resource.search_rev_include {
                    if !revincludes.contains(revinclude) {
                        revincludes.push(revinclude.clone());
                    }
                }
            }
        }
    }
    for parameter in &package.search_parameters {
        let Some(expression) = &parameter.expression else {
            continue;
        };
        for base in &parameter.base {
            out.search_parameters
                .entry(base.clone())
                .or_default()
                .insert(
                    parameter.code.clone(),
                    SearchDefinition {
                        kind: parameter.kind.clone(),
                        expression: expression.clone(),
                        target: parameter.target.clone(),
                    },
                );
        }
    }
}

/// The value sets a FHIRPath expression tests membership of (`memberOf('url')`).
fn member_of_urls(expression: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expression;
    while let Some(at) = rest.find("memberOf('") {
        rest = &rest[at + "memberOf('".len()..];
        if let Some(end) = rest.find('\'') {
            out.push(rest[..end].split('|').next().unwrap_or_default().to_owned());
            rest = &rest[end..];
        }
    }
    out
}

struct Deriver<'a> {
    model: &'a Model,
    types: &'a TypeIndex,
    out: DerivedIg,
    bindings: HashSet<String>,
}

/// A node while the tree is built: children and slices by index into the arena.
struct Draft {
    node: FileNode,
    children: Vec<usize>,
    slices: Vec<usize>,
    extension_profile: Option<String>,
    /// The node whose step comes before this one's in a path from the root: the parent,
    /// or, for a slice, the sliced element's parent.
    up: Option<usize>,
    must_support: bool,
    /// For a choice: the types marked must-support, when the profile marks any.
    must_support_types: Vec<String>,
}

impl<'a> Deriver<'a> {
    fn profile(&mut self, definition: &StructureDefinition) -> Option<FileProfile> {
        let snapshot = &definition.snapshot.as_ref()?.element;
        let (first, rest) = snapshot.split_first()?;
        let core_keys = self.core_keys(&definition.type_name);
        let mut arena: Vec<Draft> = Vec::with_capacity(snapshot.len());
        let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(snapshot.len());
        let mut root = FileNode {
            id: first.id.clone(),
            ..FileNode::default()
        };
        root.constraints = self.own_constraints(first, &core_keys, definition);
        if root_requires_version(first, &definition.url) {
            self.out.versioned_only.insert(definition.url.clone());
        }
        arena.push(Draft::new(root));
        by_id.insert(&first.id, 0);
        for element in rest {
            let (parent_id, last) = element.id.rsplit_once('.')?;
            let Some(&parent) = by_id.get(parent_id) else {
                self.out.limits.push(format!(
                    "{}: {} has no parent element {parent_id}; the profile is not judged",
                    definition.url, element.id
                ));
                return None;
            };
            let mut draft = self.node(element, last, &core_keys, definition);
            draft.must_support = element.must_support || element.flagged(USCDI_REQUIREMENT);
            draft.must_support_types = element
                .types
                .iter()
                .filter(|t| t.flagged(TYPE_MUST_SUPPORT))
                .map(|t| t.code.clone())
                .collect();
            let at = arena.len();
            draft.up = Some(parent);
            arena.push(draft);
            by_id.insert(&element.id, at);
            if let Some((sliced_name, _)) = last.split_once(':') {
                let owner = by_id
                    .get(format!("{parent_id}.{sliced_name}").as_str())
                    .or_else(|| by_id.get(element.id.rsplit_once(':').map_or("", |p| p.0)))
                    .copied();
                let Some(owner) = owner else {
                    self.out.limits.push(format!(
                        "{}: slice {} has no sliced element; the profile is not judged",
                        definition.url, element.id
                    ));
                    return None;
                };
                arena[owner].slices.push(at);
                arena[at].up = arena[owner].up;
            } else {
                arena[parent].children.push(at);
            }
        }
        prune(&mut arena, 0);
        self.discriminate_all(&mut arena, &definition.url);
        let mut must_support = must_support_paths(&arena);
        observation_exemptions(definition, &mut must_support);
        Some(FileProfile {
            name: definition.name.clone(),
            kind: definition.type_name.clone(),
            version: definition.version.clone().unwrap_or_default(),
            root: build(&mut arena, 0),
            must_support,
        })
    }

    /// The constraint keys of R4's definition of the type (its backbone elements included).
    fn core_keys(&self, type_name: &str) -> HashSet<String> {
        let mut keys = HashSet::new();
        if let TypeRef::Class(class) = self.model.type_ref(type_name) {
            self.collect_keys(class, &mut keys);
        }
        keys
    }

    fn collect_keys(&self, class: ClassId, keys: &mut HashSet<String>) {
        let class = self.model.class(class);
        for &id in &*class.constraints {
            keys.insert(self.model.constraint(id).key.to_string());
        }
        for element in &*class.elements {
            for &id in &*element.constraints {
                keys.insert(self.model.constraint(id).key.to_string());
            }
            for ty in &*element.types {
                if let TypeRef::Class(inner) = ty.ty
                    && self.model.class(inner).kind == ClassKind::Backbone
                    && self.model.class(inner).name.starts_with(&*class.name)
                    && *self.model.class(inner).name != *class.name
                {
                    self.collect_keys(inner, keys);
                }
            }
        }
    }

    /// Whether R4 has this constraint, key and expression, somewhere (a datatype's `txt-1`
    /// copied into a snapshot without its `source`): the structure tier applies it.
    fn is_r4_rule(&self, key: &str, expression: Option<&str>) -> bool {
        self.model.constraint_id(key).is_some_and(|id| {
            expression.is_some_and(|e| *self.model.constraint(id).expression == *e)
        })
    }

    /// R4's element at `path` (`Type.a.b`), following types through datatypes.
    fn core_element(&self, path: &str) -> Option<&'a Element> {
        let model: &'a Model = self.model;
        let mut parts = path.split('.');
        let mut class = match model.type_ref(parts.next()?) {
            TypeRef::Class(id) => id,
            _ => return None,
        };
        let mut element: Option<&'a Element> = None;
        for part in parts {
            if let Some(previous) = element {
                class = match &*previous.types {
                    [only] => match only.ty {
                        TypeRef::Class(id) => id,
                        _ => return None,
                    },
                    _ => return None,
                };
            }
            let name = part.strip_suffix("[x]").unwrap_or(part);
            element = Some(model.class(class).element(name)?);
        }
        element
    }

    fn own_constraints(
        &mut self,
        element: &ElementDefinition,
        core_keys: &HashSet<String>,
        definition: &StructureDefinition,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for item in &element.constraint {
            let key = &item.key;
            if core_keys.contains(key)
                || key.starts_with("ele-")
                || key.starts_with("ext-")
                || key.starts_with("dom-")
                || item.source.as_deref().is_some_and(|s| s.starts_with(SD))
                || self.is_r4_rule(key, item.expression.as_deref())
            {
                continue;
            }
            let entry = FileConstraint {
                key: key.clone(),
                severity: item.severity.clone().unwrap_or_else(|| "error".into()),
                expression: item.expression.clone().unwrap_or_default(),
                human: item.human.clone().unwrap_or_default(),
            };
            let mut id = key.clone();
            if let Some(known) = self.out.constraints.get(&id)
                && !same_constraint(known, &entry)
            {
                id = format!("{key}@{}", definition.name);
            }
            self.out.constraints.insert(id.clone(), entry);
            out.push(id);
        }
        out
    }

    fn node(
        &mut self,
        element: &ElementDefinition,
        last: &str,
        core_keys: &HashSet<String>,
        definition: &StructureDefinition,
    ) -> Draft {
        let (name, slice) = match last.split_once(':') {
            Some((name, slice)) => (name, Some(slice.to_owned())),
            None => (last, None),
        };
        let choice = name.ends_with("[x]");
        let mut node = FileNode {
            id: element.id.clone(),
            name: name.strip_suffix("[x]").unwrap_or(name).to_owned(),
            choice,
            slice,
            ..FileNode::default()
        };
        let base_path = element.base.as_ref().map_or(&element.path, |b| &b.path);
        let core = self
            .core_element(base_path)
            .or_else(|| self.core_element(&element.path));
        self.cardinality(&mut node, element, core);
        let types = element_type_codes(element);
        if let Some(core) = core
            && !types.is_empty()
            && !core.system
        {
            let mut core_types: Vec<String> =
                core.types.iter().map(|t| t.code.to_string()).collect();
            core_types.sort();
            core_types.dedup();
            if types != core_types {
                node.types = Some(types);
            }
        }
        self.targets(&mut node, element, core);
        let extension_profile = match element.types.first() {
            Some(first) if first.code == "Extension" => element
                .types
                .iter()
                .flat_map(|t| t.profile.first())
                .next()
                .cloned(),
            _ => None,
        };
        for (key, value) in &element.values {
            if key.starts_with("fixed") {
                node.fixed = Some(value.clone());
            } else {
                node.pattern = Some(value.clone());
            }
        }
        if let Some(binding) = &element.binding
            && binding.strength == "required"
            && let Some(url) = &binding.value_set
        {
            let url = url.split('|').next().unwrap_or(url);
            let core_url = core
                .and_then(|c| c.binding)
                .map(|id| &*self.model.value_sets[id as usize].url);
            if core_url != Some(url) {
                node.binding = Some(url.to_owned());
                self.bindings.insert(url.to_owned());
            }
        }
        node.constraints = self.own_constraints(element, core_keys, definition);
        if let Some(slicing) = &element.slicing {
            node.slicing = Some(FileSlicing {
                discriminator: slicing
                    .discriminator
                    .iter()
                    .map(|d| FileDiscriminator {
                        kind: d.kind.clone(),
                        path: d.path.clone(),
                    })
                    .collect(),
                rules: slicing.rules.clone().unwrap_or_else(|| "open".into()),
            });
        }
        Draft {
            node,
            children: Vec::new(),
            slices: Vec::new(),
            extension_profile,
            up: None,
            must_support: false,
            must_support_types: Vec::new(),
        }
    }

    fn cardinality(
        &self,
        node: &mut FileNode,
        element: &ElementDefinition,
        core: Option<&Element>,
    ) {
        let base = element.base.as_ref();
        let core_min = core.map_or_else(|| base.and_then(|b| b.min).unwrap_or(0), |c| c.min);
        let core_max = core.map_or_else(
            || {
                base.and_then(|b| b.max.as_deref())
                    .map_or(u32::MAX, super::derived::max_of)
            },
            |c| c.max,
        );
        let min = element.min.unwrap_or(core_min);
        let max_text = element.max.clone().unwrap_or_else(|| "*".into());
        let max = super::derived::max_of(&max_text);
        if node.slice.is_some() {
            node.min = Some(min);
            node.max = Some(max_text);
            return;
        }
        if min > core_min {
            node.min = Some(min);
        }
        if max < core_max {
            node.max = Some(max_text);
        }
    }

    fn targets(
        &mut self,
        node: &mut FileNode,
        element: &ElementDefinition,
        core: Option<&Element>,
    ) {
        let mut targets: Vec<String> = Vec::new();
        for ty in element.types.iter().filter(|t| t.code == "Reference") {
            if !ty.target_profile.is_empty() {
                targets = ty.target_profile.clone();
                targets.sort();
            }
        }
        let mut core_targets: Vec<String> = core
            .into_iter()
            .flat_map(|c| c.types.iter())
            .filter(|t| &*t.code == "Reference")
            .flat_map(|t| t.targets.iter().map(|name| format!("{SD}{name}")))
            .collect();
        core_targets.sort();
        if targets.is_empty() || targets == core_targets {
            return;
        }
        let mut kinds = Vec::new();
        for url in &targets {
            match self.profile_type(url) {
                Some(kind) => kinds.push(kind),
                None => {
                    self.out.limits.push(format!(
                        "{}: the target profile {url} is in no package loaded; its reference \
                         targets are not judged",
                        node.id
                    ));
                    return;
                }
            }
        }
        kinds.sort();
        kinds.dedup();
        node.target_profiles = targets;
        node.target_types = Some(kinds);
    }

    /// The resource type a profile constrains: a loaded package's, or a core type by name.
    fn profile_type(&self, url: &str) -> Option<String> {
        let url = url.split('|').next().unwrap_or(url);
        if let Some(kind) = self.types.get(url) {
            return Some(kind.clone());
        }
        let name = url.strip_prefix(SD)?;
        (self.model.resource(name).is_some() || name == "Resource").then(|| name.to_owned())
    }

    fn discriminate_all(&mut self, arena: &mut [Draft], url: &str) {
        for at in 0..arena.len() {
            if arena[at].slices.is_empty() {
                continue;
            }
            let discriminators: Vec<(String, String)> = arena[at]
                .node
                .slicing
                .as_ref()
                .map(|s| {
                    s.discriminator
                        .iter()
                        .map(|d| (d.kind.clone(), d.path.clone()))
                        .collect()
                })
                .unwrap_or_default();
            let slices = arena[at].slices.clone();
            let mut judged = true;
            let mut all = Vec::new();
            for &slice in &slices {
                match discriminate(arena, slice, &discriminators) {
                    Ok(matches) => all.push((slice, matches)),
                    Err(why) => {
                        self.out.limits.push(format!(
                            "{url}: the slices of {} are told apart by {why}; they are not judged",
                            arena[at].node.id
                        ));
                        judged = false;
                        break;
                    }
                }
            }
            if !judged || discriminators.is_empty() {
                // Slices no item can be told to belong to: judging them would guess.
                arena[at].slices.clear();
                if let Some(slicing) = &mut arena[at].node.slicing {
                    slicing.rules = "open".into();
                }
                continue;
            }
            for (slice, matches) in all {
                arena[slice].node.matches = matches;
            }
        }
    }
}

impl Draft {
    fn new(node: FileNode) -> Self {
        Self {
            node,
            children: Vec::new(),
            slices: Vec::new(),
            extension_profile: None,
            up: None,
            must_support: false,
            must_support_types: Vec::new(),
        }
    }
}

fn same_constraint(a: &FileConstraint, b: &FileConstraint) -> bool {
    a.key == b.key && a.severity == b.severity && a.expression == b.expression && a.human == b.human
}

/// Whether the root's own constraints require `meta.profile` to name this profile with a
/// version (`…/C4BB-Coverage|2.0.`).
fn root_requires_version(root: &ElementDefinition, url: &str) -> bool {
    let versioned = format!("{url}|");
    root.constraint.iter().any(|c| {
        c.expression
            .as_deref()
            .is_some_and(|e| e.contains("meta.profile") && e.contains(&versioned))
    })
}

/// The element's type codes, sorted, System types read as their FHIR type.
fn element_type_codes(element: &ElementDefinition) -> Vec<String> {
    let mut codes: Vec<String> = element
        .types
        .iter()
        .map(|t| {
            if t.code.starts_with(SYSTEM) {
                t.extension
                    .iter()
                    .find(|e| e.url == FHIR_TYPE)
                    .and_then(|e| e.value_url.clone())
                    .unwrap_or_else(|| "string".into())
            } else {
                t.code.clone()
            }
        })
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// How to tell an item belongs to the slice at `slice`: one test per discriminator, or why
/// it cannot be told here.
fn discriminate(
    arena: &[Draft],
    slice: usize,
    discriminators: &[(String, String)],
) -> Result<Vec<FileMatch>, String> {
    let mut tests = Vec::new();
    for (kind, path) in discriminators {
        if kind == "type" && path == "$this" {
            tests.push(FileMatch {
                kind: "type".into(),
                path: "$this".into(),
                value: serde_json::Value::from(arena[slice].node.slice.clone().unwrap_or_default()),
            });
            continue;
        }
        if kind != "value" && kind != "pattern" {
            return Err(format!("{kind} at {path}"));
        }
        let mut target = Some(slice);
        // The deepest node on the path that fixes a value, and the path to it: a slice that
        // fixes `code` by pattern fixes `code.coding.code` with it.
        let mut fixing: Option<(usize, String)> = None;
        if path != "$this" {
            let mut walked = Vec::new();
            for part in path.split('.') {
                target = target.and_then(|at| {
                    arena[at]
                        .children
                        .iter()
                        .copied()
                        .find(|&c| arena[c].node.name == part && arena[c].node.slice.is_none())
                });
                walked.push(part);
                if let Some(at) = target
                    && (arena[at].node.pattern.is_some() || arena[at].node.fixed.is_some())
                {
                    fixing = Some((at, walked.join(".")));
                }
            }
        }
        if target.is_none()
            && let Some((at, prefix)) = fixing
        {
            let node = &arena[at].node;
            if let Some(value) = node.pattern.as_ref().or(node.fixed.as_ref()) {
                tests.push(FileMatch {
                    kind: "pattern".into(),
                    path: prefix,
                    value: value.clone(),
                });
                continue;
            }
        }
        match target {
            None if path == "url" => {
                let profile = arena[slice].extension_profile.clone().ok_or_else(|| {
                    format!(
                        "url, of an extension slice without a profile ({})",
                        arena[slice].node.id
                    )
                })?;
                tests.push(FileMatch {
                    kind: "value".into(),
                    path: "url".into(),
                    value: serde_json::Value::from(profile),
                });
            }
            None => return Err(format!("{kind} at {path}, which the slice does not fix")),
            Some(at) => {
                let node = &arena[at].node;
                if let Some(value) = node.pattern.as_ref().or(node.fixed.as_ref()) {
                    tests.push(FileMatch {
                        kind: "pattern".into(),
                        path: path.clone(),
                        value: value.clone(),
                    });
                } else if let Some(url) = &node.binding {
                    tests.push(FileMatch {
                        kind: "binding".into(),
                        path: path.clone(),
                        value: serde_json::Value::from(url.clone()),
                    });
                } else {
                    return Err(format!("{kind} at {path}, which the slice does not fix"));
                }
            }
        }
    }
    Ok(tests)
}

/// Every must-support element of the profile as a path from the root: each step an element
/// name, and for a slice, how its items are told apart. A slice whose items cannot be told
/// apart here (its tests were dropped) is left out: its coverage cannot be counted.
/// The Observation elements Inferno's US Core kit does not ask a server to show, after
/// ONC's and US Core 4.0.0's clarification: a server that always sends values need not show
/// `dataAbsentReason` (blood pressure's components excepted); vital signs other than blood
/// pressure and pulse oximetry need no `component`; blood pressure's value is in its
/// components. Each rule names the profiles it applies to by their published ids.
fn observation_exemptions(definition: &StructureDefinition, must_support: &mut Vec<MustSupport>) {
    const VITAL_SIGNS: [&str; 2] = [
        "http://hl7.org/fhir/StructureDefinition/vitalsigns",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs",
    ];
    const BLOOD_PRESSURE: [&str; 3] = [
        "bp",
        "us-core-blood-pressure",
        "us-core-average-blood-pressure",
    ];
    if definition.type_name != "Observation" {
        return;
    }
    let id = definition.url.rsplit('/').next().unwrap_or_default();
    let blood_pressure = BLOOD_PRESSURE.contains(&id);
    let pulse_oximetry = definition.name == "USCorePulseOximetryProfile";
    let vital_sign = definition
        .base_definition
        .as_deref()
        .is_some_and(|base| VITAL_SIGNS.contains(&base));
    let absent_reason = |path: &str| {
        let last = path.rsplit('.').next().unwrap_or(path);
        last == "dataAbsentReason"
            && (path == "dataAbsentReason"
                || (path.starts_with("component") && path.matches('.').count() == 1))
    };
    must_support.retain(|element| {
        let path = element
            .id
            .strip_prefix("Observation.")
            .unwrap_or(&element.id);
        let exempt = if blood_pressure {
            path.starts_with("value") || path == "dataAbsentReason"
        } else {
            let component = path.starts_with("component");
            absent_reason(path) || (vital_sign && !pulse_oximetry && component)
        };
        !exempt
    });
}

fn must_support_paths(arena: &[Draft]) -> Vec<MustSupport> {
    let mut out = Vec::new();
    'elements: for (at, draft) in arena.iter().enumerate().skip(1) {
        if !draft.must_support {
            continue;
        }
        // A choice's type slice (`value[x]:valueString`) is the choice element itself, as
        // Inferno counts it: the element is listed once.
        let node = &draft.node;
        if node.slice.is_some()
            && !node.matches.is_empty()
            && node.matches.iter().all(|m| m.kind == "type")
        {
            continue;
        }
        let mut steps = Vec::new();
        let mut current = Some(at);
        while let Some(index) = current {
            if index == 0 {
                break;
            }
            let node = &arena[index].node;
            if node.slice.is_some() && node.matches.is_empty() {
                continue 'elements;
            }
            // An element the profile prohibits (max 0, as Plan-Net's Network does
            // `telecom`) cannot be supported, whatever its flag says.
            if node.max.as_deref() == Some("0") {
                continue 'elements;
            }
            steps.push(MustSupportStep {
                name: node.name.clone(),
                choice: node.choice,
                matches: node.matches.clone(),
            });
            current = arena[index].up;
        }
        steps.reverse();
        let pattern = draft
            .node
            .pattern
            .clone()
            .or_else(|| draft.node.fixed.clone());
        if node.choice && !draft.must_support_types.is_empty() {
            // One element per must-support type (`effectiveDateTime`), as the profile says.
            for code in &draft.must_support_types {
                let json = format!("{}{}", node.name, upper_first(code));
                let mut steps = steps.clone();
                if let Some(last) = steps.last_mut() {
                    last.matches.push(FileMatch {
                        kind: "type".into(),
                        path: "$this".into(),
                        value: serde_json::Value::from(json.clone()),
                    });
                }
                let id = match node.id.strip_suffix(&format!("{}[x]", node.name)) {
                    Some(head) => format!("{head}{json}"),
                    None => format!("{}:{json}", node.id),
                };
                out.push(MustSupport {
                    id,
                    steps,
                    pattern: pattern.clone(),
                });
            }
            continue;
        }
        out.push(MustSupport {
            id: node.id.clone(),
            steps,
            pattern,
        });
    }
    out
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Drop children that add nothing to R4; keep the path to anything that does.
fn prune(arena: &mut [Draft], at: usize) {
    let children = std::mem::take(&mut arena[at].children);
    let mut kept = Vec::with_capacity(children.len());
    for child in children {
        prune(arena, child);
        if meaningful(&arena[child]) {
            kept.push(child);
        }
    }
    arena[at].children = kept;
    for slice in arena[at].slices.clone() {
        prune(arena, slice);
    }
}

fn meaningful(draft: &Draft) -> bool {
    let node = &draft.node;
    node.min.is_some()
        || node.max.is_some()
        || node.types.is_some()
        || !node.target_profiles.is_empty()
        || node.pattern.is_some()
        || node.fixed.is_some()
        || node.binding.is_some()
        || !node.constraints.is_empty()
        || !draft.slices.is_empty()
        || !draft.children.is_empty()
        || node.slice.is_some()
}

/// The arena's tree from `at` as the nodes the profile tier reads.
fn build(arena: &mut [Draft], at: usize) -> FileNode {
    let children = std::mem::take(&mut arena[at].children);
    let slices = std::mem::take(&mut arena[at].slices);
    let mut node = std::mem::take(&mut arena[at].node);
    node.children = children.into_iter().map(|c| build(arena, c)).collect();
    node.slices = slices.into_iter().map(|s| build(arena, s)).collect();
    node
}

/// A derived profile as the tier reads it.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct FileProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: String,
    pub root: FileNode,
    /// Its must-support elements (not in the Python derivation).
    #[serde(default)]
    pub must_support: Vec<MustSupport>,
}

/// A must-support element: its id in the profile, and how to find it in a resource.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MustSupport {
    pub id: String,
    pub steps: Vec<MustSupportStep>,
    /// A value it must have to count (its pattern or fixed value).
    pub pattern: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MustSupportStep {
    /// The element name, without `[x]`.
    pub name: String,
    pub choice: bool,
    /// For a slice: the tests an item passes to belong to it.
    pub matches: Vec<FileMatch>,
}

/// A derived profile node.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileNode {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub choice: bool,
    #[serde(default)]
    pub slice: Option<String>,
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub target_types: Option<Vec<String>>,
    #[serde(default)]
    pub target_profiles: Vec<String>,
    #[serde(default)]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub fixed: Option<serde_json::Value>,
    #[serde(default)]
    pub binding: Option<String>,
    #[serde(default)]
    pub constraints: Vec<String>,
    #[serde(default)]
    pub slicing: Option<FileSlicing>,
    #[serde(default)]
    pub slices: Vec<FileNode>,
    #[serde(default)]
    pub children: Vec<FileNode>,
    #[serde(default, rename = "match")]
    pub matches: Vec<FileMatch>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
pub struct FileSlicing {
    pub discriminator: Vec<FileDiscriminator>,
    pub rules: String,
}

#[derive(Debug, PartialEq, Deserialize)]
pub struct FileDiscriminator {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileMatch {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    pub value: serde_json::Value,
}

/// Every structure definition's type, by URL, over `packages`.
pub fn type_index(packages: &[&Package]) -> TypeIndex {
    let mut index = TypeIndex::new();
    for package in packages {
        for definition in &package.structure_definitions {
            index
                .entry(definition.url.clone())
                .or_insert_with(|| definition.type_name.clone());
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::catalog::SHIPPED;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Python {
        constraints: HashMap<String, FileConstraint>,
        profiles: HashMap<String, FileProfile>,
        value_sets: HashMap<String, HashMap<String, FileCodes>>,
        unlisted_value_sets: Vec<String>,
    }

    #[test]
    fn carin_derives_as_the_python_script_did() {
        let python: Python = serde_json::from_str(include_str!(
            "../../tests/fixtures/validate/carin-profiles.python.json"
        ))
        .unwrap();
        let shipped = SHIPPED
            .iter()
            .find(|s| s.name == "hl7.fhir.us.carin-bb")
            .unwrap();
        let package = crate::validate::catalog::read_shipped(shipped).unwrap();
        let types = type_index(&[&package]);
        let derived = derive(&package, &[], &types, &HashMap::new(), Model::global());
        let mut missing = Vec::new();
        let mut derived = derived;
        // The Python derivation has the resource profiles only, not the extensions'.
        derived.profiles.retain(|(_, p)| p.kind != "Extension");
        for (_, profile) in &mut derived.profiles {
            profile.must_support.clear();
        }
        for (url, profile) in &derived.profiles {
            match python.profiles.get(url) {
                Some(expected) if expected == profile => {}
                Some(expected) => {
                    let a = format!("{expected:#?}");
                    let b = format!("{profile:#?}");
                    let first = a
                        .lines()
                        .zip(b.lines())
                        .position(|(x, y)| x != y)
                        .unwrap_or(0);
                    let show = |t: &str| {
                        t.lines()
                            .skip(first.saturating_sub(30))
                            .take(40)
                            .collect::<Vec<_>>()
                            .join("\n")
                    };
                    panic!(
                        "{url} differs at line {first}:\n--- python\n{}\n--- rust\n{}",
                        show(&a),
                        show(&b)
                    );
                }
                None => missing.push(url.clone()),
            }
        }
        assert!(missing.is_empty(), "not in python: {missing:?}");
        assert_eq!(derived.profiles.len(), python.profiles.len());
        assert_eq!(derived.constraints, python.constraints);
        assert_eq!(derived.unlisted, python.unlisted_value_sets);
        let listed: HashMap<String, HashMap<String, FileCodes>> = derived
            .value_sets
            .into_iter()
            .filter(|(url, _)| !derived.unlisted.contains(url))
            .collect();
        assert_eq!(listed, python.value_sets);
        assert!(derived.limits.is_empty(), "{:?}", derived.limits);
    }
}
