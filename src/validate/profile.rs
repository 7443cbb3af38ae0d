//! The profile tier: a resource checked against the profiles of any IG, natively.
//!
//! Each profile is a tree ([`ProfileNode`]) of what it adds to the R4 definition of its
//! type, derived from its package's snapshot by [`super::ig`]: tighter cardinality, narrower
//! types and reference targets, patterns, required bindings to value sets, slices with their
//! discriminators, its own constraints. Everything R4 itself says is the structure tier's,
//! so a rule is reported once.
//!
//! A resource is checked against the profiles its `meta.profile` names, resolved by
//! [`Catalog`], and against the profiles the caller gives for its type. A declared profile
//! onramp does not have (an IG not loaded, a version not held) is counted, not guessed.

use std::collections::HashMap;
use std::fmt::Write as _;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::derived;
use super::fhirpath::{Budget, Env, Memo, Node, Verdict};
use super::finding::{Finding, Tier, label, quote, show};
use super::ig::{DerivedIg, FileMatch, FileNode, MustSupport};
use super::model::{
    self, ClassId, Constraint, ConstraintId, Membership, Model, TypeRef, ValueSet, ValueSetId,
};
use super::must_support::{self, Match, matches_pattern};
use super::structure::{
    BUDGET_BASE, BUDGET_PER_MEMBER, Bundle, Contained, Resolver, Undecided, count_undecided,
    type_and_id, undecided_key,
};

/// One C4BB profile.
#[derive(Debug)]
pub struct Profile {
    pub url: Box<str>,
    /// The last segment of the URL (`C4BB-Coverage`).
    short: Box<str>,
    /// `C4BBCoverage`.
    pub name: Box<str>,
    /// The resource type it constrains.
    pub resource_type: Box<str>,
    pub version: Box<str>,
    root: ProfileNode,
    /// The IG it belongs to.
    pub ig: &'static Profiles,
    /// Claimed only by a `meta.profile` that names its version (its own constraint says so).
    pub versioned_only: bool,
    /// Its must-support elements.
    pub must_support: Box<[must_support::Element]>,
}

impl Profile {
    /// The name a report shows: the last segment of its URL (`C4BB-Coverage`).
    pub fn short(&self) -> &str {
        &self.short
    }
}

/// What a profile says of one element (or of one slice of it).
#[derive(Debug)]
struct ProfileNode {
    name: Box<str>,
    choice: bool,
    slice: Option<Box<str>>,
    min: Option<u32>,
    max: Option<u32>,
    /// Allowed type codes, when narrower than R4's.
    types: Option<Box<[Box<str>]>>,
    /// Allowed reference target types, when narrower than R4's.
    target_types: Option<Box<[Box<str>]>>,
    target_profiles: Box<[Box<str>]>,
    pattern: Option<serde_json::Value>,
    fixed: Option<serde_json::Value>,
    binding: Option<ValueSetId>,
    /// A binding to a value set that cannot be listed here: not judged.
    constraints: Box<[ConstraintId]>,
    slicing: Option<Slicing>,
    slices: Box<[ProfileNode]>,
    children: Box<[ProfileNode]>,
    /// The children's names, sorted as [`model::by_length`] orders them, with their index.
    child_names: Box<[(Box<str>, usize)]>,
    matches: Box<[Match]>,
}

impl ProfileNode {
    /// The index of the child named `name` (an element name, without `[x]`).
    fn child(&self, name: &str) -> Option<usize> {
        self.child_names
            .binary_search_by(|(n, _)| model::by_length(n, name))
            .ok()
            .map(|at| self.child_names[at].1)
    }

    /// For a member the model does not know: the choice child whose name it starts with
    /// (`valueQuantity` → `value[x]`).
    fn choice_child(&self, json: &str) -> Option<usize> {
        self.children.iter().position(|c| {
            c.choice
                && json.len() > c.name.len()
                && json.starts_with(&*c.name)
                && json[c.name.len()..].starts_with(|ch: char| ch.is_ascii_uppercase())
        })
    }
}

#[derive(Debug)]
struct Slicing {
    closed: bool,
    /// Sliced by type (`$this`): the types restriction reports a wrong type.
    by_type: bool,
}

/// One IG's derived rules: its value sets and constraints, which its profiles refer to.
#[derive(Debug)]
pub struct Profiles {
    /// `hl7.fhir.us.carin-bb`.
    pub name: Box<str>,
    pub version: Box<str>,
    /// Where the package came from (a file, or "shipped").
    pub origin: Box<str>,
    pub value_sets: Vec<ValueSet>,
    value_set_index: model::UrlMap<ValueSetId>,
    constraints: Vec<Constraint>,
    /// The IG's CapabilityStatement's profiles per resource type.
    pub supported: HashMap<Box<str>, Box<[Box<str>]>>,
    /// The searches its CapabilityStatement makes SHALL, per resource type.
    pub searches: HashMap<String, Vec<Vec<String>>>,
    /// Its SearchParameters, per base type and code.
    pub search_parameters: HashMap<String, HashMap<String, super::ig::SearchDefinition>>,
    /// The `_include`s its CapabilityStatement lists, per resource type.
    pub includes: HashMap<String, Vec<String>>,
    /// The `_revinclude`s its CapabilityStatement lists, per resource type.
    pub revincludes: HashMap<String, Vec<String>>,
}

impl Profiles {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Build an IG's profiles from its derivation; both live as long as the process.
    pub(super) fn build(ig: DerivedIg) -> Result<(&'static Profiles, &'static [Profile]), String> {
        let (value_sets, value_set_index) = derived::value_sets_of(ig.value_sets);
        let mut names: Vec<String> = ig.constraints.keys().cloned().collect();
        names.sort_unstable();
        let mut constraints = Vec::new();
        let mut constraint_index = HashMap::new();
        let mut table = ig.constraints;
        for name in names {
            let item = table.remove(&name).ok_or("constraint vanished")?;
            constraint_index.insert(name, constraints.len() as ConstraintId);
            constraints.push(derived::constraint_of(item));
        }
        let profiles: &'static Profiles = Box::leak(Box::new(Profiles {
            name: ig.name.into(),
            version: ig.version.into(),
            origin: ig.origin.into(),
            value_sets,
            value_set_index,
            constraints,
            supported: ig
                .supported
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.into(),
                        v.into_iter().map(String::into_boxed_str).collect(),
                    )
                })
                .collect(),
            searches: ig.searches,
            search_parameters: ig.search_parameters,
            includes: ig.includes,
            revincludes: ig.revincludes,
        }));
        let builder = Builder {
            value_set_index: &profiles.value_set_index,
            constraint_index: &constraint_index,
        };
        let mut list = Vec::new();
        for (url, entry) in ig.profiles {
            list.push(Profile {
                short: url.rsplit('/').next().unwrap_or(&url).into(),
                versioned_only: ig.versioned_only.contains(&url),
                url: url.into_boxed_str(),
                name: entry.name.into_boxed_str(),
                resource_type: entry.kind.into_boxed_str(),
                version: entry.version.into_boxed_str(),
                root: builder.node(entry.root)?,
                must_support: builder.must_support(entry.must_support)?,
                ig: profiles,
            });
        }
        Ok((profiles, Box::leak(list.into_boxed_slice())))
    }
}

struct Builder<'t> {
    value_set_index: &'t model::UrlMap<ValueSetId>,
    constraint_index: &'t HashMap<String, ConstraintId>,
}

impl Builder<'_> {
    /// A slice's tests, compiled.
    fn matches(&self, id: &str, tests: Vec<FileMatch>) -> Result<Box<[Match]>, String> {
        let path = |p: &str| -> Box<[Box<str>]> {
            if p == "$this" {
                Box::new([])
            } else {
                p.split('.').map(Into::into).collect()
            }
        };
        let mut matches = Vec::new();
        for m in tests {
            matches.push(match m.kind.as_str() {
                "pattern" => Match::Pattern(path(&m.path), m.value),
                "binding" => Match::Binding(
                    path(&m.path),
                    m.value
                        .as_str()
                        .and_then(|url| self.value_set_index.get(url).copied()),
                ),
                "value" => Match::Url(m.value.as_str().unwrap_or_default().into()),
                "type" => Match::Type(m.value.as_str().unwrap_or_default().into()),
                other => return Err(format!("{id}: unknown discriminator {other}")),
            });
        }
        Ok(matches.into_boxed_slice())
    }

    /// A profile's must-support elements, compiled.
    fn must_support(
        &self,
        elements: Vec<MustSupport>,
    ) -> Result<Box<[must_support::Element]>, String> {
        let mut out = Vec::with_capacity(elements.len());
        for element in elements {
            let mut steps = Vec::with_capacity(element.steps.len());
            for step in element.steps {
                steps.push(must_support::Step {
                    matches: self.matches(&element.id, step.matches)?,
                    name: step.name.into_boxed_str(),
                    choice: step.choice,
                });
            }
            out.push(must_support::Element {
                id: element.id.into_boxed_str(),
                steps: steps.into_boxed_slice(),
                pattern: element.pattern,
                shared: 0,
            });
        }
        must_support::shared_steps(&mut out);
        Ok(out.into_boxed_slice())
    }

    fn node(&self, node: FileNode) -> Result<ProfileNode, String> {
        let matches = self.matches(&node.id, node.matches)?;
        let constraints = node
            .constraints
            .iter()
            .map(|key| {
                self.constraint_index
                    .get(key)
                    .copied()
                    .ok_or_else(|| format!("{}: unknown constraint {key}", node.id))
            })
            .collect::<Result<_, _>>()?;
        let children: Vec<ProfileNode> = node
            .children
            .into_iter()
            .map(|n| self.node(n))
            .collect::<Result<_, _>>()?;
        let mut child_names: Vec<(Box<str>, usize)> = children
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        child_names.sort_by(|a, b| model::by_length(&a.0, &b.0));
        Ok(ProfileNode {
            binding: node
                .binding
                .as_deref()
                .and_then(|url| self.value_set_index.get(url).copied()),
            slicing: node.slicing.map(|s| Slicing {
                closed: s.rules == "closed",
                by_type: s
                    .discriminator
                    .iter()
                    .any(|d| d.kind == "type" && d.path == "$this"),
            }),
            slices: node
                .slices
                .into_iter()
                .map(|n| self.node(n))
                .collect::<Result<_, _>>()?,
            children: children.into_boxed_slice(),
            child_names: child_names.into_boxed_slice(),
            matches,
            name: node.name.into_boxed_str(),
            choice: node.choice,
            slice: node.slice.map(String::into_boxed_str),
            min: node.min,
            max: node.max.as_deref().map(derived::max_of),
            types: node
                .types
                .map(|t| t.into_iter().map(String::into_boxed_str).collect()),
            target_types: node
                .target_types
                .map(|t| t.into_iter().map(String::into_boxed_str).collect()),
            target_profiles: node
                .target_profiles
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            pattern: node.pattern,
            fixed: node.fixed,
            constraints,
        })
    }
}

/// Check the resources of `document` against the profiles they declare, and `given` (a
/// Bundle's entry resources too unless `entry_resources` is false: then [`check_entry`]
/// checks each); how many resources were checked against at least one profile.
#[expect(
    clippy::too_many_arguments,
    reason = "the tier's inputs and outputs, once"
)]
pub fn check<'d>(
    document: &'d Value,
    bundle: Option<&Bundle<'d>>,
    companions: bool,
    entry_resources: bool,
    given: &[&'static Profile],
    resolve: Resolve<'_>,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
    seen: &mut Seen,
) -> u64 {
    let is_bundle = document.get("resourceType").and_then(|t| t.as_str()) == Some("Bundle");
    let context = Context {
        resolve,
        bundle,
        companions,
        given,
    };
    let mut profiled = check_resource(document, None, "", &context, findings, undecided, seen);
    if !is_bundle || !entry_resources {
        return profiled;
    }
    let Some(entries) = document.get("entry").and_then(|e| e.as_array()) else {
        return profiled;
    };
    for (n, entry) in entries.iter().enumerate() {
        if let Some(resource) = entry.get("resource") {
            let pointer = format!("/entry/{n}/resource");
            profiled += check_resource(
                resource,
                Some(n),
                &pointer,
                &context,
                findings,
                undecided,
                seen,
            );
        }
    }
    profiled
}

/// Check the resource of `Bundle.entry[n]` against the profiles it declares, and `given`;
/// whether it was checked against one.
#[expect(
    clippy::too_many_arguments,
    reason = "the tier's inputs and outputs, once"
)]
pub fn check_entry<'d>(
    bundle: Option<&Bundle<'d>>,
    companions: bool,
    given: &[&'static Profile],
    resolve: Resolve<'_>,
    n: usize,
    resource: &'d Value,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
    seen: &mut Seen,
) -> u64 {
    let context = Context {
        resolve,
        bundle,
        companions,
        given,
    };
    let pointer = format!("/entry/{n}/resource");
    check_resource(
        resource,
        Some(n),
        &pointer,
        &context,
        findings,
        undecided,
        seen,
    )
}

/// How a value set whose codes could not be judged is named among the things not
/// evaluated (`binding:us-core-provider-role`).
pub const BINDING_PREFIX: &str = "binding:";

/// What checking saw beside its findings.
#[derive(Debug, Default)]
pub struct Seen {
    /// Declared profiles onramp does not have, with how many resources declared each.
    pub unknown: HashMap<Box<str>, u64>,
    /// Must-support coverage per profile, when asked for.
    pub coverage: Option<must_support::Tally>,
    /// Declarations without a version, and the IG (`name@version`) each was checked against.
    pub resolved: std::collections::BTreeMap<Box<str>, Box<str>>,
}

/// How a declared profile (`url` or `url|version`) is found: the validator's catalog.
pub type Resolve<'r> = &'r (dyn Fn(&str) -> Option<&'static Profile> + Sync);

/// What every resource of one document is checked with.
struct Context<'d, 'b> {
    resolve: Resolve<'b>,
    bundle: Option<&'b Bundle<'d>>,
    /// Whether the document has `_name` companions at all.
    companions: bool,
    given: &'b [&'static Profile],
}

fn check_resource<'d>(
    resource: &'d Value,
    entry: Option<usize>,
    pointer: &str,
    context: &Context<'d, '_>,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
    seen: &mut Seen,
) -> u64 {
    let Some(kind) = resource.get("resourceType").and_then(|t| t.as_str()) else {
        return 0;
    };
    let model = Model::global();
    let Some(class) = model.resource(kind) else {
        return 0;
    };
    let mut apply: Vec<&'static Profile> = Vec::new();
    if let Some(declared) = resource
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(|p| p.as_array())
    {
        for canonical in declared.iter().filter_map(|p| p.as_str()) {
            // A profile whose own constraint requires `url|version` (CARIN 2.0.0's
            // *-meta-profile-version) is not claimed by an unversioned declaration:
            // 1upHealth's STU1-era data declares C4BB profiles unversioned, and is counted,
            // not checked; `--profile` checks such resources anyway.
            let versioned = canonical.contains('|');
            match (context.resolve)(canonical) {
                Some(profile) if &*profile.resource_type != kind => {}
                Some(profile) if versioned || !profile.versioned_only => {
                    if !versioned && !seen.resolved.contains_key(canonical) {
                        seen.resolved
                            .insert(canonical.into(), profile.ig.id().into());
                    }
                    if !apply.iter().any(|p| std::ptr::eq(*p, profile)) {
                        apply.push(profile);
                    }
                }
                _ => {
                    *seen.unknown.entry(canonical.into()).or_default() += 1;
                }
            }
        }
    }
    // Several profiles given for the type (the defaults: CARIN's claim kinds, US Core's
    // Observations) go to a resource that declares none of them; one given alone goes to
    // every resource of its type, as asked.
    let given_of_kind = context
        .given
        .iter()
        .filter(|p| &*p.resource_type == kind)
        .count();
    let declares_given = apply
        .iter()
        .any(|p| context.given.iter().any(|g| std::ptr::eq(*g, *p)));
    if given_of_kind == 1 || !declares_given {
        for profile in select(context.given, kind, resource) {
            if !apply.iter().any(|p| std::ptr::eq(*p, profile)) {
                apply.push(profile);
            }
        }
    }
    let profiled = u64::from(!apply.is_empty());
    if let Some(tally) = &mut seen.coverage {
        for profile in &apply {
            must_support::count(
                tally,
                &profile.url,
                profile.short(),
                &profile.must_support,
                resource,
                &profile.ig.value_sets,
            );
        }
    }
    for profile in apply {
        let node = Node::resource(model, resource);
        let mut walk = ProfileWalk {
            model,
            profile,
            bundle: context.bundle,
            companions: context.companions,
            root_type: model.class(class).name.as_ref(),
            pointer: pointer.to_owned(),
            entry,
            label: label(resource),
            resource: node,
            path: Vec::new(),
            findings,
            undecided,
            budget: Budget::new(BUDGET_BASE),
            memo: Memo::default(),
            contained: Contained::of(resource),
        };
        walk.object(resource, &profile.root, Some(class));
    }
    if profiled > 0 {
        let root_type = model.class(class).name.as_ref();
        let mut found = Vec::new();
        extensions_in(resource, &mut Vec::new(), &mut found);
        for (path, extension) in found {
            check_extension(
                extension, path, root_type, entry, pointer, resource, context, findings, undecided,
            );
        }
    }
    profiled
}

/// Every extension of `value` with an absolute URL, with its path, outside contained
/// resources; an extension's own sub-extensions are its definition's to judge.
fn extensions_in<'d>(
    value: &'d Value,
    path: &mut Vec<Step<'d>>,
    out: &mut Vec<(Vec<Step<'d>>, &'d Value)>,
) {
    if let Some(items) = value.as_array() {
        for (index, item) in items.iter().enumerate() {
            path.push(Step::Index(index));
            extensions_in(item, path, out);
            path.pop();
        }
        return;
    }
    let Some(object) = value.as_object() else {
        return;
    };
    for (name, member) in object.iter() {
        if name == "contained" {
            continue;
        }
        if name == "extension" || name == "modifierExtension" {
            if let Some(items) = member.as_array() {
                for (index, item) in items.iter().enumerate() {
                    if item
                        .get("url")
                        .and_then(|u| u.as_str())
                        .is_some_and(|u| u.contains("://"))
                    {
                        let mut at = path.clone();
                        at.extend([Step::Name(name), Step::Index(index)]);
                        out.push((at, item));
                    }
                }
            }
            continue;
        }
        path.push(Step::Name(name));
        extensions_in(member, path, out);
        path.pop();
    }
}

/// An extension checked against its definition, when an IG loaded has it.
#[expect(
    clippy::too_many_arguments,
    reason = "where the extension sits, and the tier's outputs"
)]
fn check_extension<'d>(
    extension: &'d Value,
    path: Vec<Step<'d>>,
    root_type: &'static str,
    entry: Option<usize>,
    pointer: &str,
    resource: &'d Value,
    context: &Context<'d, '_>,
    findings: &mut Vec<Finding>,
    undecided: &mut Undecided,
) {
    let model = Model::global();
    let Some(url) = extension.get("url").and_then(|u| u.as_str()) else {
        return;
    };
    let Some(definition) = (context.resolve)(url).filter(|p| &*p.resource_type == "Extension")
    else {
        return;
    };
    let TypeRef::Class(class) = model.type_ref("Extension") else {
        return;
    };
    let mut walk = ProfileWalk {
        model,
        profile: definition,
        bundle: context.bundle,
        companions: context.companions,
        root_type,
        pointer: pointer.to_owned(),
        entry,
        label: label(resource),
        resource: Node::resource(model, resource),
        path,
        findings,
        undecided,
        budget: Budget::new(BUDGET_BASE),
        memo: Memo::default(),
        contained: Contained::of(resource),
    };
    walk.object(extension, &definition.root, Some(class));
}

/// Of the profiles given for this resource's type, the ones it is checked against. One
/// profile given for the type is applied to every resource of it, as asked (a pharmacy
/// claim held to the inpatient profile fails its patterns). Of several (the CARIN profiles
/// of a claim's kinds), the ones that fit it best: a profile whose top-level patterns
/// (`type`, `subType`, `use`) the resource does not match is not for it, and of those that
/// match, the ones with the most such patterns win (C4BB-ExplanationOfBenefit-Pharmacy over
/// the general C4BB-ExplanationOfBenefit).
fn select(given: &[&'static Profile], kind: &str, resource: &Value) -> Vec<&'static Profile> {
    let of_kind: Vec<&'static Profile> = given
        .iter()
        .copied()
        .filter(|p| &*p.resource_type == kind)
        .collect();
    if let [only] = of_kind.as_slice() {
        return vec![*only];
    }
    let candidates: Vec<(&'static Profile, usize)> = of_kind
        .into_iter()
        .filter_map(|p| p.selects(resource).map(|n| (p, n)))
        .collect();
    let best = candidates.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let best: Vec<&'static Profile> = candidates
        .into_iter()
        .filter(|(_, n)| *n == best)
        .map(|(p, _)| p)
        .collect();
    // Of those, the ones whose required slices the resource has, if any has them all: a
    // laboratory Observation is for US Core's lab profile, not for its 20 other Observation
    // profiles without a pattern on `code`. When none has them all, all stay, so that a
    // missing slice is reported rather than the profile dropped.
    let fitting: Vec<&'static Profile> = best
        .iter()
        .copied()
        .filter(|p| p.has_required_slices(resource))
        .collect();
    if fitting.is_empty() { best } else { fitting }
}

impl Profile {
    /// The top-level elements it requires (`min` ≥ 1) that R4 leaves optional, by JSON
    /// name without a choice's type (`code`, `effective`), in the profile's order.
    pub fn required_beyond_r4(&self) -> Vec<&str> {
        let model = Model::global();
        let Some(class) = model
            .resource(&self.resource_type)
            .map(|id| model.class(id))
        else {
            return Vec::new();
        };
        self.root
            .children
            .iter()
            .filter(|child| child.slice.is_none() && child.min.unwrap_or(0) > 0)
            .filter(|child| class.element(&child.name).is_some_and(|e| e.min == 0))
            .map(|child| &*child.name)
            .collect()
    }

    /// Whether the resource has an item for each required slice (`min` ≥ 1) of its
    /// top-level elements, told apart by the slice's discriminator.
    fn has_required_slices(&self, resource: &Value) -> bool {
        self.root.children.iter().all(|child| {
            child
                .slices
                .iter()
                .filter(|slice| slice.min.unwrap_or(0) > 0 && !slice.matches.is_empty())
                .all(|slice| {
                    let Some(found) = resource.get(&*child.name) else {
                        return false;
                    };
                    let items: Vec<&Value> = match found.as_array() {
                        Some(items) => items.iter().collect(),
                        None => vec![found],
                    };
                    items.iter().any(|item| {
                        slice
                            .matches
                            .iter()
                            .all(|test| test.admits(&child.name, item, &self.ig.value_sets))
                    })
                })
        })
    }

    /// How many of its top-level patterns the resource matches, or `None` if it misses one.
    fn selects(&self, resource: &Value) -> Option<usize> {
        let mut matched = 0;
        for child in &*self.root.children {
            let Some(pattern) = &child.pattern else {
                continue;
            };
            let value = resource.get(&*child.name)?;
            if !matches_pattern(value, pattern) {
                return None;
            }
            matched += 1;
        }
        Some(matched)
    }
}

#[derive(Clone, Copy)]
enum Step<'d> {
    Name(&'d str),
    Index(usize),
}

struct ProfileWalk<'d, 'o> {
    model: &'static Model,
    profile: &'static Profile,
    bundle: Option<&'o Bundle<'d>>,
    companions: bool,
    root_type: &'static str,
    pointer: String,
    entry: Option<usize>,
    label: Option<String>,
    resource: Node<'d>,
    path: Vec<Step<'d>>,
    findings: &'o mut Vec<Finding>,
    undecided: &'o mut Undecided,
    /// The work the profile's constraints may do, raised as members are walked.
    budget: Budget,
    memo: Memo<'d>,
    contained: Contained<'d>,
}

/// One value of an element: its JSON name (for choices), position and value.
struct Occurrence<'d> {
    json: &'d str,
    index: Option<usize>,
    value: Option<&'d Value>,
    /// A primitive's `_name` companion.
    ext: Option<&'d Value>,
    ty: TypeRef,
}

impl<'d> ProfileWalk<'d, '_> {
    fn finding(&mut self, extra: Option<&str>, rule: impl Into<String>, message: String) {
        let mut pointer = self.pointer.clone();
        let mut path = self.root_type.to_owned();
        for step in self.path.iter().copied().chain(extra.map(Step::Name)) {
            match step {
                Step::Name(name) => {
                    pointer.push('/');
                    pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    path.push('.');
                    path.push_str(name);
                }
                Step::Index(index) => {
                    let _ = write!(pointer, "/{index}");
                    let _ = write!(path, "[{index}]");
                }
            }
        }
        let rule = rule.into();
        // The same rule reached twice (an element's rule and its slice's, as a profile's
        // snapshot repeats it) is one finding.
        let repeated = self
            .findings
            .iter()
            .rev()
            .take_while(|f| f.entry == self.entry)
            .any(|f| f.pointer == pointer && f.rule == rule && f.message == message);
        if repeated {
            return;
        }
        self.findings.push(Finding {
            entry: self.entry,
            resource: self.label.clone(),
            path,
            pointer,
            keyword: rule.clone(),
            message,
            tier: Tier::Profile,
            rule,
            profile: Some(self.profile.url.to_string()),
        });
    }

    /// An object against a profile node: its children, then its constraints. The object's
    /// members are read once and handed to the children they belong to.
    fn object(&mut self, value: &'d Value, node: &'static ProfileNode, class: Option<ClassId>) {
        let Some(object) = value.as_object() else {
            return;
        };
        if !node.children.is_empty() {
            let found = self.occurrences(object, node, class);
            let mut rest = found.as_slice();
            for (index, child) in node.children.iter().enumerate() {
                let count = rest.iter().take_while(|(c, _)| *c == index).count();
                let (mine, others) = rest.split_at(count);
                rest = others;
                self.element(child, mine, class);
            }
        }
        let ty = class.map_or(TypeRef::Unknown, TypeRef::Class);
        self.constraints(
            node,
            Node {
                value: Some(value),
                ext: None,
                ty,
            },
        );
    }

    /// The values of `node`'s children in `object`, as (child index, occurrence), by child
    /// and in document order within a child.
    fn occurrences(
        &self,
        object: &'d sonic_rs::Object,
        node: &ProfileNode,
        class: Option<ClassId>,
    ) -> Vec<(usize, Occurrence<'d>)> {
        let model = self.model;
        let class = class.map(|c| model.class(c));
        let mut out = Vec::with_capacity(object.len());
        self.budget.raise(BUDGET_PER_MEMBER * object.len() as u64);
        // Most objects have no `_name` companions: look for them only where there are.
        let companions = self.companions && object.iter().any(|(name, _)| name.starts_with('_'));
        for (name, value) in object.iter() {
            let json = name.strip_prefix('_').unwrap_or(name);
            let is_companion = name.len() != json.len();
            // The element a member belongs to: R4's model knows a choice's JSON names.
            let element = class.and_then(|c| c.member(json));
            let element_name = match element {
                Some((element, _)) => &*element.name,
                None => json,
            };
            let Some(child) = node.child(element_name).or_else(|| node.choice_child(json)) else {
                continue;
            };
            if is_companion && object.get(&json).is_some() {
                continue;
            }
            let ty = element.map_or(TypeRef::Unknown, |(e, t)| e.types[t].ty);
            let companion = if is_companion {
                Some(value)
            } else if !companions {
                None
            } else {
                object.iter().find_map(|(key, v)| {
                    (key.len() == json.len() + 1 && key.starts_with('_') && &key[1..] == json)
                        .then_some(v)
                })
            };
            let values = if is_companion { None } else { Some(value) };
            let occurrence = |index, value, ext| Occurrence {
                json: name,
                index,
                value,
                ext,
                ty,
            };
            match (
                values.and_then(|v| v.as_array()),
                companion.and_then(|c| c.as_array()),
            ) {
                (Some(items), exts) => {
                    for (index, item) in items.iter().enumerate() {
                        let ext = exts.and_then(|e| e.get(index)).filter(|e| !e.is_null());
                        let item = Some(item).filter(|v| !v.is_null());
                        out.push((child, occurrence(Some(index), item, ext)));
                    }
                }
                (None, Some(exts)) if values.is_none() => {
                    for (index, ext) in exts.iter().enumerate() {
                        out.push((child, occurrence(Some(index), None, Some(ext))));
                    }
                }
                _ => out.push((child, occurrence(None, values, companion))),
            }
        }
        // Stable: document order within a child.
        out.sort_by_key(|(child, _)| *child);
        out
    }

    fn element(
        &mut self,
        node: &'static ProfileNode,
        occurrences: &[(usize, Occurrence<'d>)],
        class: Option<ClassId>,
    ) {
        let count = occurrences.len() as u32;
        // Written only for a finding: this runs for every element of every resource.
        let shown = || {
            if node.choice {
                format!("{}[x]", node.name)
            } else {
                node.name.to_string()
            }
        };
        if let Some(min) = node.min
            && count < min
        {
            let shown = shown();
            self.finding(
                Some(&shown),
                "cardinality",
                format!(
                    "{} requires {} (at least {min}), found {count}",
                    self.profile.short(),
                    shown,
                ),
            );
        }
        if let Some(max) = node.max
            && count > max
        {
            let at = occurrences
                .first()
                .map(|(_, o)| o.json)
                .unwrap_or(&node.name);
            self.finding(
                Some(at),
                "cardinality",
                format!(
                    "{} allows at most {max} {}, found {count}",
                    self.profile.short(),
                    shown()
                ),
            );
        }
        let in_slice = self.slices_of(node, occurrences);
        for (at, (_, occurrence)) in occurrences.iter().enumerate() {
            self.path.push(Step::Name(occurrence.json));
            if let Some(index) = occurrence.index {
                self.path.push(Step::Index(index));
            }
            self.occurrence(node, occurrence, class);
            match in_slice[at] {
                Some(s) => self.occurrence(&node.slices[s], occurrence, class),
                None => {
                    if let Some(slicing) = &node.slicing
                        && slicing.closed
                        && !slicing.by_type
                        && !node.slices.is_empty()
                    {
                        self.finding(
                            None,
                            "slice",
                            format!(
                                "{} slices {} closed, and this one is in none of its slices ({})",
                                self.profile.short(),
                                shown(),
                                node.slices
                                    .iter()
                                    .filter_map(|s| s.slice.as_deref())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                }
            }
            if occurrence.index.is_some() {
                self.path.pop();
            }
            self.path.pop();
        }
    }

    /// Which slice each occurrence belongs to; a slice found too few or too many times is a
    /// finding.
    fn slices_of(
        &mut self,
        node: &'static ProfileNode,
        occurrences: &[(usize, Occurrence<'d>)],
    ) -> Vec<Option<usize>> {
        let mut in_slice: Vec<Option<usize>> = vec![None; occurrences.len()];
        if node.slicing.is_some() && !node.slices.is_empty() {
            for (at, (_, occurrence)) in occurrences.iter().enumerate() {
                in_slice[at] = node
                    .slices
                    .iter()
                    .position(|slice| self.matches(slice, occurrence));
            }
            for (s, slice) in node.slices.iter().enumerate() {
                let found = in_slice.iter().filter(|i| **i == Some(s)).count() as u32;
                let name = || format!("{}:{}", node.name, slice.slice.as_deref().unwrap_or(""));
                if let Some(min) = slice.min
                    && found < min
                {
                    self.finding(
                        Some(&node.name),
                        "cardinality",
                        format!(
                            "{} requires {} (at least {min}{}), found {found}",
                            self.profile.short(),
                            name(),
                            describe_match(slice)
                        ),
                    );
                }
                if let Some(max) = slice.max
                    && found > max
                {
                    self.finding(
                        Some(&node.name),
                        "cardinality",
                        format!(
                            "{} allows at most {max} {}{}, found {found}",
                            self.profile.short(),
                            name(),
                            describe_match(slice)
                        ),
                    );
                }
            }
        }
        in_slice
    }

    /// One occurrence against a node's own rules, then its children.
    fn occurrence(
        &mut self,
        node: &'static ProfileNode,
        occurrence: &Occurrence<'d>,
        _class: Option<ClassId>,
    ) {
        let profile: &'static str = self.profile.short();
        if let Some(types) = &node.types
            && node.choice
        {
            let chosen = &occurrence.json.trim_start_matches('_')[node.name.len()..];
            if !types.iter().any(|t| t.eq_ignore_ascii_case(chosen)) {
                self.finding(
                    None,
                    "type",
                    format!(
                        "{profile} allows {}[x] only as {}, not {}",
                        node.name,
                        types.join(" or "),
                        occurrence.json.trim_start_matches('_')
                    ),
                );
                return;
            }
        }
        let Some(value) = occurrence.value else {
            self.constraints(
                node,
                Node {
                    value: None,
                    ext: occurrence.ext,
                    ty: occurrence.ty,
                },
            );
            return;
        };
        if let Some(pattern) = &node.pattern
            && !matches_pattern(value, pattern)
        {
            self.finding(
                None,
                "pattern",
                format!(
                    "{profile} requires {} here{}, found {}",
                    compact(pattern),
                    node.slice
                        .as_deref()
                        .map(|s| format!(" (slice {s})"))
                        .unwrap_or_default(),
                    shown_value(value)
                ),
            );
        }
        if let Some(fixed) = &node.fixed
            && !equals_exactly(value, fixed)
        {
            self.finding(
                None,
                "fixed",
                format!(
                    "{profile} fixes this to {}, found {}",
                    compact(fixed),
                    shown_value(value)
                ),
            );
        }
        if let Some(set) = node.binding {
            self.binding(&self.profile.ig.value_sets[set as usize], value);
        }
        if let Some(targets) = &node.target_types
            && let Some(reference) = value.get("reference").and_then(|r| r.as_str())
            && let Some(kind) = self.reference_type(reference)
            && !targets.iter().any(|t| &**t == kind)
        {
            let allowed: Vec<&str> = node
                .target_profiles
                .iter()
                .map(|p| p.rsplit('/').next().unwrap_or(p))
                .collect();
            self.finding(
                Some("reference"),
                "reference-target",
                format!(
                    "{profile} requires a reference to {} here, but {} points at a {kind}",
                    allowed.join(" or "),
                    quote(reference)
                ),
            );
        }
        let class = match occurrence.ty {
            TypeRef::Class(id) => Some(id),
            _ => None,
        };
        if !node.children.is_empty() {
            self.object(value, node, class);
        } else {
            self.constraints(
                node,
                Node {
                    value: Some(value),
                    ext: occurrence.ext,
                    ty: occurrence.ty,
                },
            );
        }
    }

    fn reference_type(&self, reference: &'d str) -> Option<&'d str> {
        if let Some(id) = reference.strip_prefix('#') {
            return self
                .resource
                .value?
                .get("contained")?
                .as_array()?
                .iter()
                .find(|r| r.get("id").and_then(|i| i.as_str()) == Some(id))?
                .get("resourceType")?
                .as_str();
        }
        if reference.starts_with("urn:") {
            return self.bundle?.find(reference)?.get("resourceType")?.as_str();
        }
        type_and_id(reference).map(|(kind, _)| kind)
    }

    /// A code of a system the value set's codes cannot be listed for: counted, per value
    /// set, as not evaluated.
    fn not_judged(&mut self, set: &ValueSet) {
        count_undecided(self.undecided, &format!("{BINDING_PREFIX}{}", set.name()));
    }

    fn binding(&mut self, set: &'static ValueSet, value: &'d Value) {
        let profile = self.profile.short();
        if let Some(code) = value.as_str() {
            let membership = set.code(code);
            if membership == Membership::Unknown {
                self.not_judged(set);
            }
            if membership == Membership::NotIn {
                self.finding(
                    None,
                    "binding",
                    format!(
                        "{profile}: {} is not in {} (required)",
                        quote(code),
                        set.name()
                    ),
                );
            }
            return;
        }
        let codings: Vec<&Value> = match value.get("coding").and_then(|c| c.as_array()) {
            Some(codings) => codings.iter().collect(),
            None if value.get("code").is_some() => vec![value],
            None => {
                self.finding(
                    None,
                    "binding",
                    format!(
                        "{profile} requires a code from {} here; this has none",
                        set.name()
                    ),
                );
                return;
            }
        };
        let mut shown = Vec::new();
        for coding in codings {
            let Some(code) = coding.get("code").and_then(|c| c.as_str()) else {
                return;
            };
            let system = coding.get("system").and_then(|s| s.as_str());
            match set.coding(system, code) {
                Membership::In => return,
                Membership::Unknown => {
                    self.not_judged(set);
                    return;
                }
                Membership::NotIn => shown.push(match system {
                    Some(system) => format!("{system}|{code}"),
                    None => quote(code),
                }),
            }
        }
        let listed: Vec<&str> = set.some_codes(10);
        self.finding(
            None,
            "binding",
            format!(
                "{profile}: {} is not in {} (required): use one of {}",
                shown.join(", "),
                set.name(),
                listed.join(", ")
            ),
        );
    }

    fn constraints(&mut self, node: &'static ProfileNode, context: Node<'d>) {
        for &id in &*node.constraints {
            let constraint = &self.profile.ig.constraints[id as usize];
            if !constraint.error {
                continue;
            }
            let Ok(compiled) = &constraint.compiled else {
                count_undecided(self.undecided, &constraint.key);
                continue;
            };
            let host = Resolver {
                model: self.model,
                root: self.resource,
                bundle: self.bundle,
                extra: Some((
                    &self.profile.ig.value_sets,
                    &self.profile.ig.value_set_index,
                )),
                contained: Some(&self.contained),
            };
            let env = Env {
                model: self.model,
                resource: self.resource,
                root: self.resource,
                context,
                host: &host,
                companions: self.companions,
                budget: &self.budget,
                memo: &self.memo,
            };
            let verdict = compiled.check(&env);
            match verdict {
                Verdict::Holds => {}
                Verdict::Fails => {
                    let message = format!(
                        "{}: {} fails: {} ({})",
                        self.profile.short(),
                        constraint.key,
                        constraint.human,
                        constraint
                            .expression
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    self.finding(None, format!("invariant:{}", constraint.key), message);
                }
                Verdict::Undecided(why) => {
                    count_undecided(self.undecided, &undecided_key(&constraint.key, &why));
                }
            }
        }
    }

    /// Whether an occurrence belongs to `slice`.
    fn matches(&self, slice: &ProfileNode, occurrence: &Occurrence<'d>) -> bool {
        slice
            .matches
            .iter()
            .all(|test| match (test, occurrence.value) {
                (Match::Type(name), _) => occurrence.json.trim_start_matches('_') == &**name,
                (_, None) => false,
                (test, Some(value)) => {
                    test.admits(occurrence.json, value, &self.profile.ig.value_sets)
                }
            })
    }
}

/// A fixed value: exactly equal, nothing more or less.
fn equals_exactly(instance: &Value, fixed: &serde_json::Value) -> bool {
    match fixed {
        serde_json::Value::Object(members) => instance.as_object().is_some_and(|object| {
            object.len() == members.len()
                && members.iter().all(|(name, expected)| {
                    object
                        .get(&name.as_str())
                        .is_some_and(|actual| equals_exactly(actual, expected))
                })
        }),
        serde_json::Value::Array(items) => instance.as_array().is_some_and(|actual| {
            actual.len() == items.len()
                && actual.iter().zip(items).all(|(a, e)| equals_exactly(a, e))
        }),
        other => matches_pattern(instance, other),
    }
}

/// A pattern, shortly: `system|code` for codings, else compact JSON.
fn compact(pattern: &serde_json::Value) -> String {
    if let Some(codings) = pattern.get("coding").and_then(|c| c.as_array()) {
        let shown: Vec<String> = codings
            .iter()
            .map(|c| {
                format!(
                    "{}|{}",
                    c.get("system").and_then(|s| s.as_str()).unwrap_or(""),
                    c.get("code").and_then(|s| s.as_str()).unwrap_or("")
                )
            })
            .collect();
        return format!("a coding {}", shown.join(" and "));
    }
    if let Some(text) = pattern.as_str() {
        return format!("{text:?}");
    }
    let text = pattern.to_string();
    if text.len() > 120 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(117).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

fn shown_value(value: &Value) -> String {
    if let Some(codings) = value.get("coding").and_then(|c| c.as_array()) {
        let shown: Vec<String> = codings
            .iter()
            .take(4)
            .map(|c| {
                format!(
                    "{}|{}",
                    c.get("system").and_then(|s| s.as_str()).unwrap_or(""),
                    c.get("code").and_then(|s| s.as_str()).unwrap_or("")
                )
            })
            .collect();
        return if shown.is_empty() {
            "no coding".into()
        } else {
            shown.join(", ")
        };
    }
    show(value)
}

fn describe_match(slice: &ProfileNode) -> String {
    // The first test says enough to recognise the slice.
    let Some(test) = slice.matches.first() else {
        return String::new();
    };
    match test {
        Match::Pattern(path, pattern) => {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" {}", path.join("."))
            };
            format!(":{at} {}", compact(pattern))
        }
        Match::Binding(path, _) => format!(": {} from the slice's value set", path.join(".")),
        Match::Url(url) => format!(": url {url}"),
        Match::Type(name) => format!(": as {name}"),
    }
}
