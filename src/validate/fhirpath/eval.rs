//! Evaluating a parsed expression over a parsed resource, typed by the structure model.
//!
//! Items are borrowed from the document (a [`Node`] is a JSON value, its `_name` companion
//! and its FHIR type); nothing is copied into a second tree. Three-valued logic and empty
//! propagation follow FHIRPath N1. Anything the evaluator cannot decide exactly (a reference
//! it cannot resolve, a value set it cannot list, a function outside its list, a singleton
//! that is not one) stops the evaluation with [`Stop`]: the constraint is then "not
//! evaluated", never guessed.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::parse::{Expr, Literal, Op, TypeOp};
use crate::validate::model::{ClassKind, Membership, Model, Prim, TypeRef, ValueSet};

/// A FHIR value in the document.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The JSON value: an object for complex types and resources, a scalar for primitives
    /// (`None` for a primitive that has only an id or extensions).
    pub value: Option<&'a Value>,
    /// A primitive's `_name` companion (its id and extensions).
    pub ext: Option<&'a Value>,
    pub ty: TypeRef,
}

impl<'a> Node<'a> {
    /// A resource, typed by its `resourceType`.
    pub fn resource(model: &Model, value: &'a Value) -> Self {
        let ty = value
            .get("resourceType")
            .and_then(|t| t.as_str())
            .and_then(|t| model.resource(t))
            .map_or(TypeRef::Unknown, TypeRef::Class);
        Self {
            value: Some(value),
            ext: None,
            ty,
        }
    }
}

/// One item of a collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    Node(Node<'a>),
    Bool(bool),
    Int(i64),
    Dec(f64),
    Str(Cow<'a, str>),
    DateTime(Cow<'a, str>),
    Time(Cow<'a, str>),
    Quantity(f64, Cow<'a, str>),
}

/// Why an evaluation stopped without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop(pub String);

type Result<T> = std::result::Result<T, Stop>;
pub type Collection<'a> = Vec<Item<'a>>;

fn stop<T>(why: impl Into<String>) -> Result<T> {
    Err(Stop(why.into()))
}

/// What the evaluation may look up outside the focus.
pub trait Host<'a> {
    /// The resource a reference (`Type/id`, `#id`, a full URL) points at, if it is at hand.
    fn resolve(&self, reference: &str) -> Option<Node<'a>>;
    /// A value set by canonical URL.
    fn value_set(&self, url: &str) -> Option<&'a ValueSet>;
}

/// The fixed parts of one evaluation.
pub struct Env<'a, 'h> {
    pub model: &'static Model,
    /// `%resource`.
    pub resource: Node<'a>,
    /// `%rootResource`.
    pub root: Node<'a>,
    /// `%context`.
    pub context: Node<'a>,
    pub host: &'h dyn Host<'a>,
    /// Whether the document has `_name` companions at all (most have none: no need to look).
    pub companions: bool,
    /// The work the document's constraints may still do.
    pub budget: &'h Budget,
    /// What the document's constraints computed that depends on the document alone.
    pub memo: &'h Memo<'a>,
}

/// Why an evaluation stopped when the document's budget ran out.
pub const BUDGET_SPENT: &str = "the evaluation budget of the resource is spent";

/// The work the constraints of one document may do: a step per expression evaluated and per
/// item it yields. Its owner raises the limit with the size of what it has walked, so a
/// constraint that grows faster than its input (a hostile document's) stops with
/// [`BUDGET_SPENT`] instead of running for minutes.
#[derive(Debug)]
pub struct Budget {
    spent: Cell<u64>,
    limit: Cell<u64>,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Self {
            spent: Cell::new(0),
            limit: Cell::new(limit),
        }
    }

    /// Allow `more` steps.
    pub fn raise(&self, more: u64) {
        self.limit.set(self.limit.get().saturating_add(more));
    }

    /// The steps spent so far: the work counted, for benchmarks and tests.
    pub fn spent(&self) -> u64 {
        self.spent.get()
    }

    fn spend(&self, steps: u64) -> Result<()> {
        let spent = self.spent.get().saturating_add(steps);
        self.spent.set(spent);
        if spent > self.limit.get() {
            return stop(BUDGET_SPENT);
        }
        Ok(())
    }
}

/// Collections that depend on the document alone (`%resource.descendants().reference`,
/// `%rootResource.contained.id`), computed once per resource and indexed, so that `in`
/// against them is a lookup: dom-3 and ref-1 stay linear in the number of contained
/// resources and references.
#[derive(Default)]
pub struct Memo<'a> {
    sets: RefCell<HashMap<(usize, usize, usize), Rc<ItemSet<'a>>>>,
}

/// A collection indexed for `=`. A string equals only a string with the same characters,
/// so strings are hashed; every other item is compared one by one, as before.
#[derive(Default)]
struct ItemSet<'a> {
    items: Collection<'a>,
    strings: HashSet<Cow<'a, str>>,
    /// Positions in `items` of the items that are not strings.
    others: Vec<usize>,
}

impl<'a> ItemSet<'a> {
    /// `items` indexed as they are (duplicates kept).
    fn of(items: Collection<'a>, model: &Model) -> Self {
        let mut set = Self::default();
        for (at, item) in items.iter().enumerate() {
            match scalar(item, model) {
                Some(Scalar::Str(text)) => {
                    set.strings.insert(text);
                }
                _ => set.others.push(at),
            }
        }
        set.items = items;
        set
    }

    /// Add `item` unless an equal one is in: whether it was added.
    fn insert(&mut self, item: Item<'a>, model: &Model) -> bool {
        if let Some(Scalar::Str(text)) = scalar(&item, model) {
            if !self.strings.insert(text) {
                return false;
            }
        } else {
            let items = &self.items;
            if self
                .others
                .iter()
                .any(|&at| equal(&item, &items[at], model) == Some(true))
            {
                return false;
            }
            self.others.push(self.items.len());
        }
        self.items.push(item);
        true
    }

    /// Whether an item equal to `item` is in: `None` when that cannot be told.
    fn contains(&self, item: &Item<'_>, model: &Model) -> Option<bool> {
        match scalar(item, model) {
            Some(Scalar::Str(text)) => {
                if self.strings.contains(&text) {
                    return Some(true);
                }
                any_equal(item, self.others.iter().map(|&at| &self.items[at]), model)
            }
            _ => any_equal(item, self.items.iter(), model),
        }
    }
}

/// Whether one of `candidates` equals `item`: `None` when none does and some cannot be told.
fn any_equal<'x, 'a: 'x>(
    item: &Item<'_>,
    candidates: impl Iterator<Item = &'x Item<'a>>,
    model: &Model,
) -> Option<bool> {
    let mut found = Some(false);
    for candidate in candidates {
        match equal(item, candidate, model) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => found = None,
        }
    }
    found
}

/// Whether `expr` depends on the document alone, not on the focus, `$this` or `%context`:
/// its value is the same wherever in the resource it is evaluated.
fn document_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(_) | Expr::Empty => true,
        Expr::This | Expr::Index | Expr::Total | Expr::Member(None, _) | Expr::Call(None, ..) => {
            false
        }
        Expr::Variable(name) => name != "context",
        Expr::Member(Some(base), _) | Expr::Negate(base) | Expr::Type(_, base, _) => {
            document_constant(base)
        }
        Expr::Indexer(a, b) | Expr::Binary(_, a, b) => document_constant(a) && document_constant(b),
        Expr::Call(Some(base), name, args) => {
            document_constant(base)
                && match name.as_str() {
                    // Criteria and projections see each input item, never the focus.
                    "where" | "select" | "all" | "exists" => {
                        args.iter().all(|arg| !mentions_context(arg))
                    }
                    // Type names, not expressions.
                    "ofType" | "as" | "is" => true,
                    _ => args.iter().all(document_constant),
                }
        }
    }
}

/// Whether `expr` reads `%context` anywhere.
fn mentions_context(expr: &Expr) -> bool {
    match expr {
        Expr::Variable(name) => name == "context",
        Expr::Member(Some(base), _) | Expr::Negate(base) | Expr::Type(_, base, _) => {
            mentions_context(base)
        }
        Expr::Indexer(a, b) | Expr::Binary(_, a, b) => mentions_context(a) || mentions_context(b),
        Expr::Call(base, _, args) => {
            base.as_deref().is_some_and(mentions_context) || args.iter().any(mentions_context)
        }
        _ => false,
    }
}

/// The value of a document-constant `expr`, computed once per resource and indexed.
fn memoized<'a>(
    expr: &'a Expr,
    focus: &[Item<'a>],
    frame: &Frame<'_, 'a>,
    env: &Env<'a, '_>,
) -> Result<Rc<ItemSet<'a>>> {
    let address = |node: Node<'_>| node.value.map_or(0, |v| v as *const Value as usize);
    let key = (
        expr as *const Expr as usize,
        address(env.resource),
        address(env.root),
    );
    if let Some(set) = env.memo.sets.borrow().get(&key) {
        return Ok(Rc::clone(set));
    }
    let set = Rc::new(ItemSet::of(eval(expr, focus, frame, env)?, env.model));
    env.memo.sets.borrow_mut().insert(key, Rc::clone(&set));
    Ok(set)
}

struct Frame<'x, 'a> {
    this: &'x Item<'a>,
    index: usize,
}

/// Evaluate `expr` with `%context` (and `$this`) the env's context.
pub fn evaluate<'a>(expr: &'a Expr, env: &Env<'a, '_>) -> Result<Collection<'a>> {
    let this = Item::Node(env.context);
    let focus = [this.clone()];
    eval(
        expr,
        &focus,
        &Frame {
            this: &this,
            index: 0,
        },
        env,
    )
}

/// Evaluate `expr`, counting the work against the document's budget.
fn eval<'a>(
    expr: &'a Expr,
    focus: &[Item<'a>],
    frame: &Frame<'_, 'a>,
    env: &Env<'a, '_>,
) -> Result<Collection<'a>> {
    env.budget.spend(1)?;
    let out = step(expr, focus, frame, env)?;
    env.budget.spend(out.len() as u64)?;
    Ok(out)
}

fn step<'a>(
    expr: &'a Expr,
    focus: &[Item<'a>],
    frame: &Frame<'_, 'a>,
    env: &Env<'a, '_>,
) -> Result<Collection<'a>> {
    Ok(match expr {
        Expr::Literal(literal) => vec![literal_item(literal)],
        Expr::Empty => Vec::new(),
        Expr::This => vec![frame.this.clone()],
        Expr::Index => vec![Item::Int(frame.index as i64)],
        Expr::Total => return stop("$total is not supported"),
        Expr::Variable(name) => variable(name, env)?,
        Expr::Member(base, name) => {
            let input: Cow<'_, [Item<'a>]> = match base {
                Some(base) => Cow::Owned(eval(base, focus, frame, env)?),
                None => {
                    // A leading type name (`Patient.name`) names the focus's own type.
                    if is_type_step(name, focus, env.model) {
                        return Ok(focus.to_vec());
                    }
                    Cow::Borrowed(focus)
                }
            };
            let mut out = Vec::new();
            for item in input.iter() {
                children_named(item, name, env.model, env.companions, &mut out);
            }
            out
        }
        Expr::Call(base, name, args) => {
            let input: Cow<'_, [Item<'a>]> = match base {
                Some(base) => Cow::Owned(eval(base, focus, frame, env)?),
                None => Cow::Borrowed(focus),
            };
            call(name, &input, args, focus, frame, env)?
        }
        Expr::Indexer(base, index) => {
            let input = eval(base, focus, frame, env)?;
            let at = singleton_int(&eval(index, focus, frame, env)?)?;
            match at {
                Some(at) if at >= 0 => input.into_iter().nth(at as usize).into_iter().collect(),
                _ => Vec::new(),
            }
        }
        Expr::Negate(inner) => {
            let value = eval(inner, focus, frame, env)?;
            match value.as_slice() {
                [] => Vec::new(),
                [item] => match scalar(item, env.model) {
                    Some(Scalar::Int(i)) => vec![Item::Int(-i)],
                    Some(Scalar::Dec(d)) => vec![Item::Dec(-d)],
                    _ => return stop("unary minus on a non-number"),
                },
                _ => return stop("unary minus on a collection"),
            }
        }
        Expr::Type(op, inner, name) => {
            let value = eval(inner, focus, frame, env)?;
            match op {
                TypeOp::Is => match value.as_slice() {
                    [] => Vec::new(),
                    [item] => vec![Item::Bool(is_type(item, name, env.model))],
                    _ => return stop("is on a collection"),
                },
                TypeOp::As => value
                    .into_iter()
                    .filter(|item| is_type(item, name, env.model))
                    .collect(),
            }
        }
        Expr::Binary(op, left, right) => binary(*op, left, right, focus, frame, env)?,
    })
}

/// A literal, borrowed from the compiled expression (which outlives every document).
fn literal_item<'a>(literal: &'a Literal) -> Item<'a> {
    match literal {
        Literal::Bool(b) => Item::Bool(*b),
        Literal::String(s) => Item::Str(Cow::Borrowed(s)),
        Literal::Integer(i) => Item::Int(*i),
        Literal::Decimal(d) => Item::Dec(*d),
        Literal::DateTime(d) => Item::DateTime(Cow::Borrowed(d)),
        Literal::Time(t) => Item::Time(Cow::Borrowed(t)),
        Literal::Quantity(v, u) => Item::Quantity(*v, Cow::Borrowed(u)),
    }
}

fn variable<'a>(name: &str, env: &Env<'a, '_>) -> Result<Collection<'a>> {
    Ok(match name {
        "resource" => vec![Item::Node(env.resource)],
        "rootResource" => vec![Item::Node(env.root)],
        "context" => vec![Item::Node(env.context)],
        "ucum" => vec![Item::Str(Cow::Borrowed("http://unitsofmeasure.org"))],
        "sct" => vec![Item::Str(Cow::Borrowed("http://snomed.info/sct"))],
        "loinc" => vec![Item::Str(Cow::Borrowed("http://loinc.org"))],
        other if other.starts_with("vs-") => vec![Item::Str(Cow::Owned(format!(
            "http://hl7.org/fhir/ValueSet/{}",
            &other[3..]
        )))],
        other => return stop(format!("%{other} is not known")),
    })
}

fn is_type_step(name: &str, focus: &[Item<'_>], model: &Model) -> bool {
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return false;
    }
    !focus.is_empty()
        && focus.iter().all(|item| match item {
            Item::Node(node) => {
                model.is_a(node.ty, name)
                    && match node.ty {
                        TypeRef::Class(id) => model.class(id).element(name).is_none(),
                        _ => true,
                    }
            }
            _ => false,
        })
}

// --- navigation --------------------------------------------------------------------------

/// Push the children of `item` named `name` (FHIRPath element names: `value` finds
/// `valueQuantity`).
fn children_named<'a>(
    item: &Item<'a>,
    name: &str,
    model: &Model,
    companions: bool,
    out: &mut Collection<'a>,
) {
    let Item::Node(node) = item else {
        return;
    };
    // A primitive's children live in its `_name` companion.
    if let TypeRef::Primitive(_) = node.ty {
        if let Some(ext) = node.ext.and_then(|e| e.as_object()) {
            match name {
                "extension" => push_values(
                    ext.get(&"extension"),
                    None,
                    model.type_ref("Extension"),
                    out,
                ),
                "id" => push_values(ext.get(&"id"), None, TypeRef::Primitive(Prim::String), out),
                _ => {}
            }
        }
        return;
    }
    let Some(object) = node.value.and_then(|v| v.as_object()) else {
        return;
    };
    let class = match node.ty {
        TypeRef::Class(id) => Some(model.class(id)),
        TypeRef::Resource => object
            .get(&"resourceType")
            .and_then(|t| t.as_str())
            .and_then(|t| model.resource(t))
            .map(|id| model.class(id)),
        _ => None,
    };
    let Some(class) = class else {
        // Untyped: plain JSON navigation.
        push_values(
            object.get(&name),
            companion(object, name),
            TypeRef::Unknown,
            out,
        );
        return;
    };
    let Some(element) = class.element(name) else {
        return;
    };
    if element.choice {
        // The one JSON member (`valueQuantity`, or `_valueString`) the choice took.
        for (key, value) in object.iter() {
            let json = key.strip_prefix('_').unwrap_or(key);
            if !json.starts_with(name) || json.len() == name.len() {
                continue;
            }
            let Some((found, index)) = class.member(json) else {
                continue;
            };
            if !std::ptr::eq(found, element) {
                continue;
            }
            let ty = element.types[index].ty;
            if json.len() == key.len() {
                let ext = if companions {
                    companion(object, json)
                } else {
                    None
                };
                push_values(Some(value), ext, ty, out);
            } else if object.get(&json).is_none() {
                push_values(None, Some(value), ty, out);
            }
        }
        return;
    }
    let ty = element.types.first().map_or(TypeRef::Unknown, |t| t.ty);
    let value = object.get(&name);
    let ext = if companions && matches!(ty, TypeRef::Primitive(_)) {
        companion(object, name)
    } else {
        None
    };
    push_values(value, ext, ty, out);
}

/// The `_name` companion of member `name`.
fn companion<'a>(object: &'a sonic_rs::Object, name: &str) -> Option<&'a Value> {
    object.iter().find_map(|(key, value)| {
        (key.len() == name.len() + 1 && key.starts_with('_') && &key[1..] == name).then_some(value)
    })
}

/// Push a member's value(s) as nodes: arrays item by item, aligned with the `_name` array.
fn push_values<'a>(
    value: Option<&'a Value>,
    ext: Option<&'a Value>,
    ty: TypeRef,
    out: &mut Collection<'a>,
) {
    let values = value.and_then(|v| v.as_array());
    let exts = ext.and_then(|e| e.as_array());
    if values.is_some() || exts.is_some() {
        let count = values
            .map_or(0, |v| v.len())
            .max(exts.map_or(0, |e| e.len()));
        for index in 0..count {
            let value = values.and_then(|v| v.get(index)).filter(|v| !v.is_null());
            let ext = exts.and_then(|e| e.get(index)).filter(|e| !e.is_null());
            if value.is_some() || ext.is_some() {
                out.push(Item::Node(typed(value, ext, ty)));
            }
        }
        return;
    }
    let value = value.filter(|v| !v.is_null());
    if value.is_some() || ext.is_some() {
        out.push(Item::Node(typed(value, ext, ty)));
    }
}

fn typed<'a>(value: Option<&'a Value>, ext: Option<&'a Value>, ty: TypeRef) -> Node<'a> {
    Node { value, ext, ty }
}

/// Every child of an item, typed (`children()`).
fn children<'a>(item: &Item<'a>, model: &Model, companions: bool, out: &mut Collection<'a>) {
    let Item::Node(node) = item else {
        return;
    };
    if let TypeRef::Primitive(_) = node.ty {
        if let Some(ext) = node.ext.and_then(|e| e.as_object()) {
            for (name, _) in ext.iter() {
                if name == "id" || name == "extension" {
                    children_named(item, name, model, true, out);
                }
            }
        }
        return;
    }
    let Some(object) = node.value.and_then(|v| v.as_object()) else {
        return;
    };
    let class = match node.ty {
        TypeRef::Class(id) => Some(model.class(id)),
        _ => object
            .get(&"resourceType")
            .and_then(|t| t.as_str())
            .and_then(|t| model.resource(t))
            .map(|id| model.class(id)),
    };
    for (name, value) in object.iter() {
        if name == "resourceType" {
            continue;
        }
        if let Some(base) = name.strip_prefix('_') {
            // Visited with its value, unless the value is absent.
            if object.get(&base).is_some() {
                continue;
            }
            let ty = class
                .and_then(|c| c.member(base))
                .map_or(TypeRef::Unknown, |(e, t)| e.types[t].ty);
            push_values(None, Some(value), ty, out);
            continue;
        }
        match class.and_then(|c| c.member(name)) {
            Some((element, index)) => {
                let ty = element.types.get(index).map_or(TypeRef::Unknown, |t| t.ty);
                let ext = if companions && matches!(ty, TypeRef::Primitive(_)) {
                    companion(object, name)
                } else {
                    None
                };
                push_values(Some(value), ext, ty, out);
            }
            None => push_values(Some(value), None, TypeRef::Unknown, out),
        }
    }
}

fn descendants<'a>(item: &Item<'a>, model: &Model, companions: bool, out: &mut Collection<'a>) {
    let mut level = Vec::new();
    children(item, model, companions, &mut level);
    for child in level {
        out.push(child.clone());
        descendants(&child, model, companions, out);
    }
}

// --- values ------------------------------------------------------------------------------

/// A comparable value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Dec(f64),
    Str(Cow<'a, str>),
    DateTime(Cow<'a, str>),
    Time(Cow<'a, str>),
    Quantity(f64, Cow<'a, str>),
}

fn scalar<'a>(item: &Item<'a>, model: &Model) -> Option<Scalar<'a>> {
    Some(match item {
        Item::Bool(b) => Scalar::Bool(*b),
        Item::Int(i) => Scalar::Int(*i),
        Item::Dec(d) => Scalar::Dec(*d),
        Item::Str(s) => Scalar::Str(s.clone()),
        Item::DateTime(d) => Scalar::DateTime(d.clone()),
        Item::Time(t) => Scalar::Time(t.clone()),
        Item::Quantity(v, u) => Scalar::Quantity(*v, u.clone()),
        Item::Node(node) => match node.ty {
            TypeRef::Primitive(prim) => {
                let value = node.value?;
                match prim {
                    Prim::Boolean => Scalar::Bool(value.as_bool()?),
                    Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt => {
                        Scalar::Int(value.as_raw_number()?.as_str().parse().ok()?)
                    }
                    Prim::Decimal => Scalar::Dec(value.as_raw_number()?.as_str().parse().ok()?),
                    Prim::Date | Prim::DateTime | Prim::Instant => {
                        // A value that is no real date has no value to compare: the
                        // finding about it is the schema's or the calendar check's.
                        let text = value.as_str()?;
                        if !is_real_moment(text) {
                            return None;
                        }
                        Scalar::DateTime(Cow::Borrowed(text))
                    }
                    Prim::Time => Scalar::Time(Cow::Borrowed(value.as_str()?)),
                    _ => Scalar::Str(Cow::Borrowed(value.as_str()?)),
                }
            }
            TypeRef::Class(id) if model.class(id).quantity => {
                let object = node.value?.as_object()?;
                let value: f64 = object
                    .get(&"value")?
                    .as_raw_number()?
                    .as_str()
                    .parse()
                    .ok()?;
                let unit = object
                    .get(&"code")
                    .or_else(|| object.get(&"unit"))
                    .and_then(|u| u.as_str())
                    .unwrap_or("");
                Scalar::Quantity(value, Cow::Borrowed(unit))
            }
            TypeRef::Unknown => {
                let value = node.value?;
                if let Some(s) = value.as_str() {
                    Scalar::Str(Cow::Borrowed(s))
                } else if let Some(b) = value.as_bool() {
                    Scalar::Bool(b)
                } else if let Some(n) = value.as_raw_number() {
                    let text = n.as_str();
                    match text.parse::<i64>() {
                        Ok(i) => Scalar::Int(i),
                        Err(_) => Scalar::Dec(text.parse().ok()?),
                    }
                } else {
                    return None;
                }
            }
            _ => return None,
        },
    })
}

/// An item's text, borrowed from the document or the expression where it came from.
fn as_str<'a>(item: &Item<'a>, model: &Model) -> Option<Cow<'a, str>> {
    match scalar(item, model)? {
        Scalar::Str(s) | Scalar::DateTime(s) | Scalar::Time(s) => Some(s),
        _ => None,
    }
}

/// Equality of two items (`=`): `None` when it cannot be told (different date precisions).
fn equal(a: &Item<'_>, b: &Item<'_>, model: &Model) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && !matches!(x.ty, TypeRef::Primitive(_))
        && !matches!(y.ty, TypeRef::Primitive(_))
        && scalar(a, model).is_none()
    {
        return Some(match (x.value, y.value) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        });
    }
    let (x, y) = match (scalar(a, model), scalar(b, model)) {
        (Some(x), Some(y)) => (x, y),
        // A value and an object of a complex type are of different types, so not equal
        // (FHIRPath §6.1.1): an Identifier where a reference string is looked for (an
        // EOB's `related.reference`) must not make `in` unknown.
        (Some(_), None) | (None, Some(_)) if is_object(a) || is_object(b) => return Some(false),
        _ => return None,
    };
    match (&x, &y) {
        (Scalar::DateTime(p), Scalar::DateTime(q)) => {
            compare_moments(p, q).map(|o| o == Ordering::Equal)
        }
        (Scalar::Time(p), Scalar::Time(q)) => Some(p == q),
        _ => match compare(&x, &y) {
            Some(ordering) => Some(ordering == Ordering::Equal),
            None => Some(false),
        },
    }
}

/// Whether `item` is an element of a complex type (not a primitive or a literal).
fn is_object(item: &Item<'_>) -> bool {
    matches!(item, Item::Node(node) if !matches!(node.ty, TypeRef::Primitive(_)))
}

fn equivalent(a: &Item<'_>, b: &Item<'_>, model: &Model) -> bool {
    match (scalar(a, model), scalar(b, model)) {
        (Some(Scalar::Str(x)), Some(Scalar::Str(y))) => {
            let norm = |s: &str| {
                s.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase()
            };
            norm(&x) == norm(&y)
        }
        _ => equal(a, b, model).unwrap_or(false),
    }
}

fn compare(x: &Scalar<'_>, y: &Scalar<'_>) -> Option<Ordering> {
    match (x, y) {
        (Scalar::Int(a), Scalar::Int(b)) => Some(a.cmp(b)),
        (Scalar::Int(a), Scalar::Dec(b)) => (*a as f64).partial_cmp(b),
        (Scalar::Dec(a), Scalar::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Scalar::Dec(a), Scalar::Dec(b)) => a.partial_cmp(b),
        (Scalar::Str(a), Scalar::Str(b)) => Some(a.cmp(b)),
        (Scalar::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Scalar::DateTime(a), Scalar::DateTime(b)) => compare_moments(a, b),
        (Scalar::Time(a), Scalar::Time(b)) => compare_times(a, b),
        (Scalar::Quantity(a, u), Scalar::Quantity(b, v)) if u == v => a.partial_cmp(b),
        (Scalar::Quantity(a, u), Scalar::Quantity(b, v)) => super::ucum::compare(*a, u, *b, v),
        _ => None,
    }
}

/// A date or dateTime, to the precision it was written with.
#[derive(Debug, Clone, PartialEq)]
struct Moment {
    /// Year, month, day, hour, minute, milliseconds of the minute.
    parts: [i64; 6],
    /// How many of `parts` were written.
    precision: usize,
    /// The offset from UTC in minutes, when written.
    offset: Option<i64>,
}

fn moment(text: &str) -> Option<Moment> {
    let text = text.trim_start_matches('@');
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = [0i64, 1, 1, 0, 0, 0];
    let mut precision = 0;
    for (index, piece) in date.split('-').enumerate() {
        if index > 2 || piece.is_empty() {
            return None;
        }
        parts[index] = piece.parse().ok()?;
        precision = index + 1;
    }
    let mut offset = None;
    if let Some(time) = time.filter(|t| !t.is_empty()) {
        let (clock, zone) = match time.find(['Z', '+', '-']) {
            Some(at) => (&time[..at], Some(&time[at..])),
            None => (time, None),
        };
        let mut fields = clock.split(':');
        if let Some(hour) = fields.next().filter(|h| !h.is_empty()) {
            parts[3] = hour.parse().ok()?;
            precision = 4;
        }
        if let Some(minute) = fields.next() {
            parts[4] = minute.parse().ok()?;
            precision = 5;
        }
        if let Some(second) = fields.next() {
            let seconds: f64 = second.parse().ok()?;
            parts[5] = (seconds * 1000.0).round() as i64;
            precision = 6;
        }
        offset = match zone {
            Some("Z") => Some(0),
            Some(zone) => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, m) = zone[1..].split_once(':')?;
                Some(sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?))
            }
            None => None,
        };
    }
    Some(Moment {
        parts,
        precision,
        offset,
    })
}

/// Whether a date/dateTime text names a real moment (month 1-12, a day the month has,
/// a time of day that exists).
fn is_real_moment(text: &str) -> bool {
    let Some(m) = moment(text) else {
        return false;
    };
    let [year, month, day, hour, minute, millis] = m.parts;
    (m.precision < 2 || (1..=12).contains(&month))
        && (m.precision < 3 || (1..=days_in_month(year, month)).contains(&day))
        && (m.precision < 4 || (0..24).contains(&hour))
        && (m.precision < 5 || (0..60).contains(&minute))
        && (m.precision < 6 || (0..61_000).contains(&millis))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn minutes(m: &Moment) -> i64 {
    days_from_civil(m.parts[0], m.parts[1], m.parts[2]) * 1440 + m.parts[3] * 60 + m.parts[4]
}

/// FHIRPath's date comparison: component by component; equal so far and one less precise
/// is "unknown". Times with offsets are compared in UTC; with one offset missing, only a
/// difference larger than any offset (14 hours) decides.
fn compare_moments(a: &str, b: &str) -> Option<Ordering> {
    let (mut x, mut y) = (moment(a)?, moment(b)?);
    let timed = x.precision >= 4 && y.precision >= 4;
    if timed {
        match (x.offset, y.offset) {
            (Some(p), Some(q)) => {
                x = shift(&x, -p);
                y = shift(&y, -q);
            }
            (None, None) => {}
            _ => {
                let gap = minutes(&x) - minutes(&y);
                if gap.abs() > 14 * 60 {
                    return Some(gap.cmp(&0));
                }
                return None;
            }
        }
    }
    let common = x.precision.min(y.precision);
    for index in 0..common {
        match x.parts[index].cmp(&y.parts[index]) {
            Ordering::Equal => continue,
            other => return Some(other),
        }
    }
    if x.precision == y.precision {
        Some(Ordering::Equal)
    } else {
        None
    }
}

/// The moment moved by `delta` minutes (to UTC), keeping its precision.
fn shift(m: &Moment, delta: i64) -> Moment {
    let total = minutes(m) + delta;
    let days = total.div_euclid(1440);
    let rest = total.rem_euclid(1440);
    let (year, month, day) = civil_from_days(days);
    Moment {
        parts: [year, month, day, rest / 60, rest % 60, m.parts[5]],
        precision: m.precision,
        offset: Some(0),
    }
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn compare_times(a: &str, b: &str) -> Option<Ordering> {
    let parse = |t: &str| -> Option<Vec<i64>> {
        t.trim_start_matches("@T")
            .split(':')
            .map(|p| p.parse::<f64>().ok().map(|v| (v * 1000.0) as i64))
            .collect()
    };
    let (x, y) = (parse(a)?, parse(b)?);
    for (p, q) in x.iter().zip(&y) {
        match p.cmp(q) {
            Ordering::Equal => continue,
            other => return Some(other),
        }
    }
    if x.len() == y.len() {
        Some(Ordering::Equal)
    } else {
        None
    }
}

// --- logic -------------------------------------------------------------------------------

/// A collection as a three-valued boolean: empty is unknown, one boolean is itself, any
/// other single item is true; more than one item is an error.
pub(super) fn truth(collection: &[Item<'_>], model: &Model) -> Result<Option<bool>> {
    match collection {
        [] => Ok(None),
        [item] => Ok(Some(match scalar(item, model) {
            Some(Scalar::Bool(b)) => b,
            _ => true,
        })),
        _ => stop("a collection of several items where one boolean was needed"),
    }
}

fn bool_item<'a>(value: Option<bool>) -> Collection<'a> {
    value.map(Item::Bool).into_iter().collect()
}

fn binary<'a>(
    op: Op,
    left: &'a Expr,
    right: &'a Expr,
    focus: &[Item<'a>],
    frame: &Frame<'_, 'a>,
    env: &Env<'a, '_>,
) -> Result<Collection<'a>> {
    let model = env.model;
    // The logical operators decide from one side where they can.
    match op {
        Op::And => {
            let l = truth(&eval(left, focus, frame, env)?, model)?;
            if l == Some(false) {
                return Ok(bool_item(Some(false)));
            }
            let r = truth(&eval(right, focus, frame, env)?, model)?;
            return Ok(bool_item(match (l, r) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }));
        }
        Op::Or => {
            let l = truth(&eval(left, focus, frame, env)?, model)?;
            if l == Some(true) {
                return Ok(bool_item(Some(true)));
            }
            let r = truth(&eval(right, focus, frame, env)?, model)?;
            return Ok(bool_item(match (l, r) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }));
        }
        Op::Implies => {
            let l = truth(&eval(left, focus, frame, env)?, model)?;
            if l == Some(false) {
                return Ok(bool_item(Some(true)));
            }
            let r = truth(&eval(right, focus, frame, env)?, model)?;
            return Ok(bool_item(match (l, r) {
                (_, Some(true)) => Some(true),
                (Some(true), Some(false)) => Some(false),
                _ => None,
            }));
        }
        Op::Xor => {
            let l = truth(&eval(left, focus, frame, env)?, model)?;
            let r = truth(&eval(right, focus, frame, env)?, model)?;
            return Ok(bool_item(match (l, r) {
                (Some(a), Some(b)) => Some(a != b),
                _ => None,
            }));
        }
        Op::In | Op::Contains => {
            let (item, set) = if op == Op::In {
                (left, right)
            } else {
                (right, left)
            };
            if document_constant(set) {
                let set = memoized(set, focus, frame, env)?;
                return match eval(item, focus, frame, env)?.as_slice() {
                    [] => Ok(Vec::new()),
                    [one] => {
                        env.budget.spend(set.others.len() as u64)?;
                        Ok(bool_item(set.contains(one, model)))
                    }
                    _ => stop("membership of a collection"),
                };
            }
        }
        _ => {}
    }
    let l = eval(left, focus, frame, env)?;
    let r = eval(right, focus, frame, env)?;
    Ok(match op {
        Op::Union => union(l, r, model),
        Op::Eq | Op::Ne => equality(op, &l, &r, model),
        Op::Equiv | Op::NotEquiv => {
            let same = l.len() == r.len() && l.iter().zip(&r).all(|(a, b)| equivalent(a, b, model));
            bool_item(Some(if op == Op::Equiv { same } else { !same }))
        }
        Op::Lt | Op::Gt | Op::Le | Op::Ge => comparison(op, &l, &r, model)?,
        Op::In | Op::Contains => membership(op, &l, &r, model)?,
        Op::Concat => concat(&l, &r, model)?,
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::IntDiv | Op::Mod => {
            let (Some(a), Some(b)) = (single(&l)?, single(&r)?) else {
                return Ok(Vec::new());
            };
            arithmetic(op, a, b, model)?
        }
        Op::And | Op::Or | Op::Xor | Op::Implies => unreachable!("handled above"),
    })
}

/// `=` and `!=`: empty when either side is; undecided when an item cannot be compared.
fn equality<'a>(op: Op, l: &[Item<'a>], r: &[Item<'a>], model: &Model) -> Collection<'a> {
    if l.is_empty() || r.is_empty() {
        return Vec::new();
    }
    let same = if l.len() != r.len() {
        Some(false)
    } else {
        let mut result = Some(true);
        for (a, b) in l.iter().zip(r) {
            match equal(a, b, model) {
                Some(true) => {}
                Some(false) => {
                    result = Some(false);
                    break;
                }
                None => result = None,
            }
        }
        result
    };
    bool_item(if op == Op::Eq { same } else { same.map(|s| !s) })
}

/// `<`, `>`, `<=`, `>=` between two single values of one kind.
fn comparison<'a>(op: Op, l: &[Item<'a>], r: &[Item<'a>], model: &Model) -> Result<Collection<'a>> {
    Ok({
        if l.is_empty() || r.is_empty() {
            return Ok(Vec::new());
        }
        let (Some(a), Some(b)) = (single(l)?, single(r)?) else {
            return Ok(Vec::new());
        };
        let (Some(x), Some(y)) = (scalar(a, model), scalar(b, model)) else {
            return stop("comparison of values that are not comparable");
        };
        match compare(&x, &y) {
            None => {
                if matches!(
                    (&x, &y),
                    (Scalar::DateTime(_), Scalar::DateTime(_)) | (Scalar::Time(_), Scalar::Time(_))
                ) {
                    Vec::new()
                } else {
                    return stop("comparison of values of different kinds");
                }
            }
            Some(ordering) => bool_item(Some(match op {
                Op::Lt => ordering == Ordering::Less,
                Op::Gt => ordering == Ordering::Greater,
                Op::Le => ordering != Ordering::Greater,
                _ => ordering != Ordering::Less,
            })),
        }
    })
}

/// `in` and `contains`: whether one item is in a collection.
fn membership<'a>(op: Op, l: &[Item<'a>], r: &[Item<'a>], model: &Model) -> Result<Collection<'a>> {
    let (item, set) = if op == Op::In { (l, r) } else { (r, l) };
    match item {
        [] => Ok(Vec::new()),
        [one] => Ok(bool_item(any_equal(one, set.iter(), model))),
        _ => stop("membership of a collection"),
    }
}

/// `&`: two strings joined, an empty side the empty string.
fn concat<'a>(l: &[Item<'a>], r: &[Item<'a>], model: &Model) -> Result<Collection<'a>> {
    Ok({
        let text = |c: &[Item<'a>]| -> Result<String> {
            match c {
                [] => Ok(String::new()),
                [one] => as_str(one, model)
                    .map(|s| s.into_owned())
                    .ok_or_else(|| Stop("& on a non-string".into())),
                _ => stop("& on a collection"),
            }
        };
        vec![Item::Str(Cow::Owned(text(l)? + &text(r)?))]
    })
}

fn arithmetic<'a>(op: Op, a: &Item<'a>, b: &Item<'a>, model: &Model) -> Result<Collection<'a>> {
    let (Some(x), Some(y)) = (scalar(a, model), scalar(b, model)) else {
        return stop("arithmetic on values that are not numbers");
    };
    Ok(match (x, y) {
        (Scalar::Str(p), Scalar::Str(q)) if op == Op::Add => {
            vec![Item::Str(Cow::Owned(format!("{p}{q}")))]
        }
        (Scalar::Int(p), Scalar::Int(q)) => match op {
            Op::Add => vec![Item::Int(p.checked_add(q).ok_or(Stop("overflow".into()))?)],
            Op::Sub => vec![Item::Int(p.checked_sub(q).ok_or(Stop("overflow".into()))?)],
            Op::Mul => vec![Item::Int(p.checked_mul(q).ok_or(Stop("overflow".into()))?)],
            Op::Div => {
                if q == 0 {
                    Vec::new()
                } else {
                    vec![Item::Dec(p as f64 / q as f64)]
                }
            }
            Op::IntDiv => p.checked_div(q).map(Item::Int).into_iter().collect(),
            _ => p.checked_rem(q).map(Item::Int).into_iter().collect(),
        },
        (p, q) => {
            let number = |s: Scalar<'_>| match s {
                Scalar::Int(i) => Some(i as f64),
                Scalar::Dec(d) => Some(d),
                _ => None,
            };
            let (Some(p), Some(q)) = (number(p), number(q)) else {
                return stop("arithmetic on values that are not numbers");
            };
            match op {
                Op::Add => vec![Item::Dec(p + q)],
                Op::Sub => vec![Item::Dec(p - q)],
                Op::Mul => vec![Item::Dec(p * q)],
                Op::Div if q != 0.0 => vec![Item::Dec(p / q)],
                Op::IntDiv if q != 0.0 => vec![Item::Int((p / q).trunc() as i64)],
                Op::Mod if q != 0.0 => vec![Item::Dec(p % q)],
                _ => Vec::new(),
            }
        }
    })
}

fn single<'x, 'a>(collection: &'x [Item<'a>]) -> Result<Option<&'x Item<'a>>> {
    match collection {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => stop("a collection of several items where one was needed"),
    }
}

fn singleton_int(collection: &[Item<'_>]) -> Result<Option<i64>> {
    match single(collection)? {
        None => Ok(None),
        Some(Item::Int(i)) => Ok(Some(*i)),
        Some(Item::Node(node)) => Ok(node
            .value
            .and_then(|v| v.as_raw_number())
            .and_then(|n| n.as_str().parse().ok())),
        Some(_) => stop("an integer was needed"),
    }
}

/// `a | b`: the items of both, each once, in order.
fn union<'a>(l: Collection<'a>, r: Collection<'a>, model: &Model) -> Collection<'a> {
    let mut set = ItemSet::default();
    for item in l.into_iter().chain(r) {
        set.insert(item, model);
    }
    set.items
}

// --- types -------------------------------------------------------------------------------

fn is_type(item: &Item<'_>, name: &str, model: &Model) -> bool {
    let name = name
        .strip_prefix("FHIR.")
        .map(|n| (n, false))
        .or_else(|| name.strip_prefix("System.").map(|n| (n, true)))
        .unwrap_or((name, false));
    let (name, system) = name;
    match item {
        Item::Bool(_) => name == "Boolean",
        Item::Int(_) => name == "Integer",
        Item::Dec(_) => name == "Decimal",
        Item::Str(_) => name == "String",
        Item::DateTime(_) => name == "DateTime" || name == "Date",
        Item::Time(_) => name == "Time",
        Item::Quantity(..) => name == "Quantity",
        Item::Node(node) => {
            if system {
                return false;
            }
            match node.ty {
                TypeRef::Primitive(prim) => prim.is_a(name),
                TypeRef::Resource => node
                    .value
                    .and_then(|v| v.get("resourceType"))
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t == name || name == "Resource" || name == "DomainResource"),
                TypeRef::Class(id) => {
                    model.is_a(node.ty, name)
                        || (model.class(id).kind == ClassKind::Backbone
                            && name == "BackboneElement")
                }
                TypeRef::Unknown => false,
            }
        }
    }
}

// --- functions ---------------------------------------------------------------------------

/// The argument of `ofType`/`is`/`as`: a type name written as an identifier.
fn type_argument(args: &[Expr]) -> Result<String> {
    match args.first() {
        Some(Expr::Member(None, name)) => Ok(name.clone()),
        Some(Expr::Member(Some(base), name)) => match &**base {
            Expr::Member(None, namespace) => Ok(format!("{namespace}.{name}")),
            _ => stop("a type name was expected"),
        },
        _ => stop("a type name was expected"),
    }
}

/// A function call being evaluated: its name, the collection it was called on, its
/// argument expressions (evaluated against the focus the call was made from), and where.
struct Call<'c, 'a, 'h> {
    name: &'c str,
    input: &'c [Item<'a>],
    args: &'a [Expr],
    focus: &'c [Item<'a>],
    frame: &'c Frame<'c, 'a>,
    env: &'c Env<'a, 'h>,
}

impl<'a> Call<'_, 'a, '_> {
    /// Argument `index`, evaluated against the focus the call was made from, not its
    /// input (`a.startsWith(b)`: `b` from where `a` was).
    fn argument(&self, index: usize) -> Result<Collection<'a>> {
        match self.args.get(index) {
            Some(arg) => eval(arg, self.focus, self.frame, self.env),
            None => Ok(Vec::new()),
        }
    }

    /// Argument `index` as one string, if it has a value.
    fn string_argument(&self, index: usize) -> Result<Option<Cow<'a, str>>> {
        let value = self.argument(index)?;
        match single(&value)? {
            None => Ok(None),
            Some(item) => {
                Ok(Some(as_str(item, self.env.model).ok_or_else(|| {
                    Stop(format!("{}() needs a string", self.name))
                })?))
            }
        }
    }

    /// Argument `index` (a criteria or projection) evaluated for one input item.
    fn per_item(&self, index: usize, item: &Item<'a>, at: usize) -> Result<Collection<'a>> {
        let one = [item.clone()];
        eval(
            &self.args[index],
            &one,
            &Frame {
                this: item,
                index: at,
            },
            self.env,
        )
    }

    /// The input as one string, if it has a value.
    fn input_string(&self) -> Result<Option<Cow<'a, str>>> {
        match single(self.input)? {
            None => Ok(None),
            Some(item) => Ok(as_str(item, self.env.model)),
        }
    }
}

/// A function's implementation.
type Apply = for<'c, 'a, 'h> fn(&Call<'c, 'a, 'h>) -> Result<Collection<'a>>;

/// A function of the evaluator: its name, how many arguments it takes, and what it does.
struct Function {
    name: &'static str,
    arity: std::ops::RangeInclusive<usize>,
    apply: Apply,
}

/// Every function the evaluator has: the one list [`known_function`] (what a constraint may
/// call) and [`call`] (what a call does) both read.
#[rustfmt::skip]
static FUNCTIONS: &[Function] = &[
    Function { name: "empty", arity: 0..=0, apply: f_empty },
    Function { name: "exists", arity: 0..=1, apply: f_exists },
    Function { name: "all", arity: 1..=1, apply: f_all },
    Function { name: "allTrue", arity: 0..=0, apply: f_all_true },
    Function { name: "anyTrue", arity: 0..=0, apply: f_all_true },
    Function { name: "allFalse", arity: 0..=0, apply: f_all_true },
    Function { name: "anyFalse", arity: 0..=0, apply: f_all_true },
    Function { name: "count", arity: 0..=0, apply: f_count },
    Function { name: "not", arity: 0..=0, apply: f_not },
    Function { name: "where", arity: 1..=1, apply: f_where },
    Function { name: "select", arity: 1..=1, apply: f_select },
    Function { name: "first", arity: 0..=0, apply: f_first },
    Function { name: "last", arity: 0..=0, apply: f_last },
    Function { name: "tail", arity: 0..=0, apply: f_tail },
    Function { name: "single", arity: 0..=0, apply: f_single },
    Function { name: "skip", arity: 1..=1, apply: f_skip },
    Function { name: "take", arity: 1..=1, apply: f_skip },
    Function { name: "distinct", arity: 0..=0, apply: f_distinct },
    Function { name: "isDistinct", arity: 0..=0, apply: f_is_distinct },
    Function { name: "subsetOf", arity: 1..=1, apply: f_subset_of },
    Function { name: "supersetOf", arity: 1..=1, apply: f_subset_of },
    Function { name: "intersect", arity: 1..=1, apply: f_intersect },
    Function { name: "exclude", arity: 1..=1, apply: f_exclude },
    Function { name: "union", arity: 1..=1, apply: f_union },
    Function { name: "combine", arity: 1..=1, apply: f_combine },
    Function { name: "iif", arity: 2..=3, apply: f_iif },
    Function { name: "trace", arity: 1..=2, apply: f_trace },
    Function { name: "ofType", arity: 1..=1, apply: f_of_type },
    Function { name: "is", arity: 1..=1, apply: f_is },
    Function { name: "as", arity: 1..=1, apply: f_of_type },
    Function { name: "hasValue", arity: 0..=0, apply: f_has_value },
    Function { name: "getValue", arity: 0..=0, apply: f_get_value },
    Function { name: "children", arity: 0..=0, apply: f_children },
    Function { name: "descendants", arity: 0..=0, apply: f_descendants },
    Function { name: "extension", arity: 1..=1, apply: f_extension },
    Function { name: "toInteger", arity: 0..=0, apply: f_to_integer },
    Function { name: "toDecimal", arity: 0..=0, apply: f_to_decimal },
    Function { name: "toString", arity: 0..=0, apply: f_to_string },
    Function { name: "startsWith", arity: 1..=1, apply: f_starts_with },
    Function { name: "endsWith", arity: 1..=1, apply: f_starts_with },
    Function { name: "contains", arity: 1..=1, apply: f_starts_with },
    Function { name: "matches", arity: 1..=1, apply: f_starts_with },
    Function { name: "indexOf", arity: 1..=1, apply: f_starts_with },
    Function { name: "replaceMatches", arity: 2..=2, apply: f_replace_matches },
    Function { name: "replace", arity: 2..=2, apply: f_replace_matches },
    Function { name: "length", arity: 0..=0, apply: f_length },
    Function { name: "upper", arity: 0..=0, apply: f_upper },
    Function { name: "lower", arity: 0..=0, apply: f_upper },
    Function { name: "substring", arity: 1..=2, apply: f_substring },
    Function { name: "resolve", arity: 0..=0, apply: f_resolve },
    Function { name: "memberOf", arity: 1..=1, apply: f_member_of },
];

/// [`FUNCTIONS`] by name.
static BY_NAME: std::sync::LazyLock<HashMap<&'static str, &'static Function>> =
    std::sync::LazyLock::new(|| FUNCTIONS.iter().map(|f| (f.name, f)).collect());

/// Whether the evaluator has function `name` taking `arguments` arguments.
pub fn known_function(name: &str, arguments: usize) -> bool {
    BY_NAME
        .get(name)
        .is_some_and(|function| function.arity.contains(&arguments))
}

fn call<'a>(
    name: &str,
    input: &[Item<'a>],
    args: &'a [Expr],
    focus: &[Item<'a>],
    frame: &Frame<'_, 'a>,
    env: &Env<'a, '_>,
) -> Result<Collection<'a>> {
    let Some(function) = BY_NAME.get(name) else {
        return stop(format!("{name}() is not supported"));
    };
    (function.apply)(&Call {
        name,
        input,
        args,
        focus,
        frame,
        env,
    })
}

/// `empty()`
fn f_empty<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(vec![Item::Bool(input.is_empty())])
}

/// `exists()`
fn f_exists<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let args = c.args;
    let model = c.env.model;
    Ok({
        if args.is_empty() {
            vec![Item::Bool(!input.is_empty())]
        } else {
            let mut any = false;
            for (at, item) in input.iter().enumerate() {
                if truth(&c.per_item(0, item, at)?, model)? == Some(true) {
                    any = true;
                    break;
                }
            }
            vec![Item::Bool(any)]
        }
    })
}

/// `all()`
fn f_all<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok({
        // An item whose criteria is empty (its inputs are missing) leaves the answer
        // open; FHIRPath would say false, which would blame the constraint for the
        // missing data instead of the rule that requires it.
        let mut all = Some(true);
        for (at, item) in input.iter().enumerate() {
            match truth(&c.per_item(0, item, at)?, model)? {
                Some(true) => {}
                Some(false) => {
                    all = Some(false);
                    break;
                }
                None => all = None,
            }
        }
        match all {
            Some(all) => vec![Item::Bool(all)],
            None => return stop("the criteria of all() was empty for an item"),
        }
    })
}

/// `allTrue()` / `anyTrue()` / `allFalse()` / `anyFalse()`
fn f_all_true<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    let input = c.input;
    let model = c.env.model;
    Ok({
        let mut values = Vec::with_capacity(input.len());
        for item in input {
            match scalar(item, model) {
                Some(Scalar::Bool(b)) => values.push(b),
                _ => return stop(format!("{name}() on a non-boolean")),
            }
        }
        vec![Item::Bool(match name {
            "allTrue" => values.iter().all(|b| *b),
            "anyTrue" => values.iter().any(|b| *b),
            "allFalse" => values.iter().all(|b| !*b),
            _ => values.iter().any(|b| !*b),
        })]
    })
}

/// `count()`
fn f_count<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(vec![Item::Int(input.len() as i64)])
}

/// `not()`
fn f_not<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok(match truth(input, model)? {
        None => Vec::new(),
        Some(b) => vec![Item::Bool(!b)],
    })
}

/// `where()`
fn f_where<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok({
        let mut out = Vec::new();
        for (at, item) in input.iter().enumerate() {
            if truth(&c.per_item(0, item, at)?, model)? == Some(true) {
                out.push(item.clone());
            }
        }
        out
    })
}

/// `select()`
fn f_select<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok({
        let mut out = Vec::new();
        for (at, item) in input.iter().enumerate() {
            out.extend(c.per_item(0, item, at)?);
        }
        out
    })
}

/// `first()`
fn f_first<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(input.first().cloned().into_iter().collect())
}

/// `last()`
fn f_last<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(input.last().cloned().into_iter().collect())
}

/// `tail()`
fn f_tail<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(input.iter().skip(1).cloned().collect())
}

/// `single()`
fn f_single<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(match input {
        [] => Vec::new(),
        [one] => vec![one.clone()],
        _ => return stop("single() on several items"),
    })
}

/// `skip()` / `take()`
fn f_skip<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    let input = c.input;
    Ok({
        let n = singleton_int(&c.argument(0)?)?.unwrap_or(0).max(0) as usize;
        if name == "skip" {
            input.iter().skip(n).cloned().collect()
        } else {
            input.iter().take(n).cloned().collect()
        }
    })
}

/// `distinct()`
fn f_distinct<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok(union(input.to_vec(), Vec::new(), model))
}

/// `isDistinct()`
fn f_is_distinct<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok({
        let distinct = union(input.to_vec(), Vec::new(), model);
        vec![Item::Bool(distinct.len() == input.len())]
    })
}

/// `subsetOf()` / `supersetOf()`
fn f_subset_of<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    let input = c.input;
    let model = c.env.model;
    Ok({
        let other = c.argument(0)?;
        let (small, big) = if name == "subsetOf" {
            (input, other.as_slice())
        } else {
            (other.as_slice(), input)
        };
        let big = ItemSet::of(big.to_vec(), model);
        vec![Item::Bool(
            small.iter().all(|i| big.contains(i, model) == Some(true)),
        )]
    })
}

/// `intersect()`
fn f_intersect<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok({
        let other = ItemSet::of(c.argument(0)?, model);
        let mut out = ItemSet::default();
        for item in input {
            if other.contains(item, model) == Some(true) {
                out.insert(item.clone(), model);
            }
        }
        out.items
    })
}

/// `exclude()`
fn f_exclude<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok({
        let other = ItemSet::of(c.argument(0)?, model);
        input
            .iter()
            .filter(|i| other.contains(i, model) != Some(true))
            .cloned()
            .collect()
    })
}

/// `union()`
fn f_union<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok(union(input.to_vec(), c.argument(0)?, model))
}

/// `combine()`
fn f_combine<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok({
        let mut out = input.to_vec();
        out.extend(c.argument(0)?);
        out
    })
}

/// `iif()`
fn f_iif<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let model = c.env.model;
    Ok({
        let condition = truth(&c.argument(0)?, model)?;
        if condition == Some(true) {
            c.argument(1)?
        } else {
            c.argument(2)?
        }
    })
}

/// `trace()`
fn f_trace<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(input.to_vec())
}

/// `ofType()` and `as()`: the items of the type named (`as` on one item is `ofType` on it).
fn f_of_type<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let args = c.args;
    let model = c.env.model;
    Ok({
        let ty = type_argument(args)?;
        input
            .iter()
            .filter(|i| is_type(i, &ty, model))
            .cloned()
            .collect()
    })
}

/// `is()`
fn f_is<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let args = c.args;
    let model = c.env.model;
    Ok({
        let ty = type_argument(args)?;
        match input {
            [] => Vec::new(),
            [one] => vec![Item::Bool(is_type(one, &ty, model))],
            _ => return stop("is() on several items"),
        }
    })
}

/// `hasValue()`
fn f_has_value<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(vec![Item::Bool(match input {
        [Item::Node(node)] => matches!(node.ty, TypeRef::Primitive(_)) && node.value.is_some(),
        [
            Item::Bool(_)
            | Item::Int(_)
            | Item::Dec(_)
            | Item::Str(_)
            | Item::DateTime(_)
            | Item::Time(_),
        ] => true,
        _ => false,
    })])
}

/// `getValue()`
fn f_get_value<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(match input {
        [Item::Node(node)] if matches!(node.ty, TypeRef::Primitive(_)) && node.value.is_some() => {
            input.to_vec()
        }
        _ => Vec::new(),
    })
}

/// `children()`
fn f_children<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    Ok(each_input(c, children))
}

/// `descendants()`
fn f_descendants<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    Ok(each_input(c, descendants))
}

/// What `walk` collects from each item of the call's input, in order.
fn each_input<'a>(
    c: &Call<'_, 'a, '_>,
    walk: fn(&Item<'a>, &Model, bool, &mut Collection<'a>),
) -> Collection<'a> {
    let mut out = Vec::new();
    for item in c.input {
        walk(item, c.env.model, c.env.companions, &mut out);
    }
    out
}

/// `extension()`
fn f_extension<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let env = c.env;
    let model = c.env.model;
    Ok({
        let Some(url) = c.string_argument(0)? else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for item in input {
            children_named(item, "extension", model, env.companions, &mut all);
        }
        all.into_iter()
            .filter(|ext| match ext {
                Item::Node(node) => node
                    .value
                    .and_then(|v| v.get("url"))
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| u == url),
                _ => false,
            })
            .collect()
    })
}

/// `toInteger()`
fn f_to_integer<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok(match single(input)? {
        None => Vec::new(),
        Some(item) => match scalar(item, model) {
            Some(Scalar::Int(i)) => vec![Item::Int(i)],
            Some(Scalar::Str(s)) => s.parse().map(Item::Int).into_iter().collect(),
            Some(Scalar::Bool(b)) => vec![Item::Int(i64::from(b))],
            _ => Vec::new(),
        },
    })
}

/// `toDecimal()`
fn f_to_decimal<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let model = c.env.model;
    Ok(match single(input)? {
        None => Vec::new(),
        Some(item) => match scalar(item, model) {
            Some(Scalar::Int(i)) => vec![Item::Dec(i as f64)],
            Some(Scalar::Dec(d)) => vec![Item::Dec(d)],
            Some(Scalar::Str(s)) => s.parse().map(Item::Dec).into_iter().collect(),
            _ => Vec::new(),
        },
    })
}

/// `toString()`
fn f_to_string<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    Ok(match single(input)? {
        None => Vec::new(),
        Some(item) => match item {
            Item::Node(node) if matches!(node.ty, TypeRef::Primitive(_)) => {
                let Some(value) = node.value else {
                    return Ok(Vec::new());
                };
                let text = if let Some(s) = value.as_str() {
                    s.to_owned()
                } else if let Some(n) = value.as_raw_number() {
                    n.as_str().to_owned()
                } else if let Some(b) = value.as_bool() {
                    b.to_string()
                } else {
                    return Ok(Vec::new());
                };
                vec![Item::Str(Cow::Owned(text))]
            }
            Item::Str(s) => vec![Item::Str(s.clone())],
            Item::Int(i) => vec![Item::Str(Cow::Owned(i.to_string()))],
            Item::Dec(d) => vec![Item::Str(Cow::Owned(d.to_string()))],
            Item::Bool(b) => vec![Item::Str(Cow::Owned(b.to_string()))],
            Item::DateTime(s) | Item::Time(s) => vec![Item::Str(s.clone())],
            _ => return stop("toString() of a complex value"),
        },
    })
}

/// `startsWith()` / `endsWith()` / `contains()` / `matches()` / `indexOf()`
fn f_starts_with<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    Ok({
        let Some(text) = c.input_string()? else {
            return Ok(Vec::new());
        };
        let Some(arg) = c.string_argument(0)? else {
            return Ok(Vec::new());
        };
        match name {
            "startsWith" => vec![Item::Bool(text.starts_with(&*arg))],
            "endsWith" => vec![Item::Bool(text.ends_with(&*arg))],
            "contains" => vec![Item::Bool(text.contains(&*arg))],
            "indexOf" => vec![Item::Int(
                text.find(&*arg)
                    .map_or(-1, |at| text[..at].chars().count() as i64),
            )],
            _ => {
                let re = regex::Regex::new(&arg)
                    .map_err(|_| Stop(format!("the pattern {arg} is not supported")))?;
                vec![Item::Bool(re.is_match(&text))]
            }
        }
    })
}

/// `replaceMatches()` / `replace()`
fn f_replace_matches<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    Ok({
        let Some(text) = c.input_string()? else {
            return Ok(Vec::new());
        };
        let (Some(pattern), Some(with)) = (c.string_argument(0)?, c.string_argument(1)?) else {
            return Ok(Vec::new());
        };
        let replaced = if name == "replace" {
            text.replace(&*pattern, &with)
        } else {
            let re = regex::Regex::new(&pattern)
                .map_err(|_| Stop(format!("the pattern {pattern} is not supported")))?;
            re.replace_all(&text, &*with).into_owned()
        };
        vec![Item::Str(Cow::Owned(replaced))]
    })
}

/// `length()`
fn f_length<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    Ok(match c.input_string()? {
        None => Vec::new(),
        Some(text) => vec![Item::Int(text.chars().count() as i64)],
    })
}

/// `upper()` / `lower()`
fn f_upper<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let name = c.name;
    Ok(match c.input_string()? {
        None => Vec::new(),
        Some(text) => vec![Item::Str(Cow::Owned(if name == "upper" {
            text.to_uppercase()
        } else {
            text.to_lowercase()
        }))],
    })
}

/// `substring()`
fn f_substring<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let args = c.args;
    Ok({
        let Some(text) = c.input_string()? else {
            return Ok(Vec::new());
        };
        let Some(start) = singleton_int(&c.argument(0)?)? else {
            return Ok(Vec::new());
        };
        let chars: Vec<char> = text.chars().collect();
        if start < 0 || start as usize >= chars.len() {
            return Ok(Vec::new());
        }
        let length = if args.len() > 1 {
            singleton_int(&c.argument(1)?)?.unwrap_or(0).max(0) as usize
        } else {
            chars.len()
        };
        let end = (start as usize + length).min(chars.len());
        vec![Item::Str(Cow::Owned(
            chars[start as usize..end].iter().collect(),
        ))]
    })
}

/// `resolve()`
fn f_resolve<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let env = c.env;
    let model = c.env.model;
    Ok({
        let mut out = Vec::new();
        for item in input {
            let reference = match item {
                Item::Node(node) if matches!(node.ty, TypeRef::Class(_)) => node
                    .value
                    .and_then(|v| v.get("reference"))
                    .and_then(|r| r.as_str())
                    .map(str::to_owned),
                other => as_str(other, model).map(Cow::into_owned),
            };
            let Some(reference) = reference else {
                continue;
            };
            match env.host.resolve(&reference) {
                Some(found) => out.push(Item::Node(found)),
                None => return stop(format!("{reference} cannot be resolved here")),
            }
        }
        out
    })
}

/// `memberOf()`
fn f_member_of<'a>(c: &Call<'_, 'a, '_>) -> Result<Collection<'a>> {
    let input = c.input;
    let env = c.env;
    let model = c.env.model;
    Ok({
        let Some(url) = c.string_argument(0)? else {
            return Ok(Vec::new());
        };
        let url = url.split('|').next().unwrap_or_default();
        // Nothing to test is decided whatever the value set (FHIRPath: a function of an
        // empty collection is empty): a rendering member without a qualification fails
        // EOB-careteam-qualification even though its value set is VSAC's.
        let Some(item) = single(input)? else {
            return Ok(Vec::new());
        };
        let Some(set) = env.host.value_set(url) else {
            return stop(format!("the value set {url} is not at hand"));
        };
        match member_of(item, set, model) {
            Membership::In => vec![Item::Bool(true)],
            Membership::NotIn => vec![Item::Bool(false)],
            Membership::Unknown => {
                return stop(format!("membership of {url} cannot be decided here"));
            }
        }
    })
}

/// Whether a code, Coding or CodeableConcept is in a value set.
fn member_of(item: &Item<'_>, set: &ValueSet, model: &Model) -> Membership {
    if let Some(Scalar::Str(code)) = scalar(item, model) {
        return set.code(&code);
    }
    let Item::Node(node) = item else {
        return Membership::Unknown;
    };
    let Some(object) = node.value.and_then(|v| v.as_object()) else {
        return Membership::Unknown;
    };
    let coding = |c: &Value| -> Membership {
        match c.get("code").and_then(|v| v.as_str()) {
            Some(code) => set.coding(c.get("system").and_then(|s| s.as_str()), code),
            None => Membership::Unknown,
        }
    };
    if let Some(codings) = object.get(&"coding").and_then(|c| c.as_array()) {
        let mut result = Membership::NotIn;
        for c in codings.iter() {
            match coding(c) {
                Membership::In => return Membership::In,
                Membership::Unknown => result = Membership::Unknown,
                Membership::NotIn => {}
            }
        }
        return result;
    }
    if object.get(&"code").is_some() {
        return coding(node.value.unwrap_or(&Value::new()));
    }
    Membership::NotIn
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The days of a month of a year.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_compare_by_precision() {
        assert_eq!(
            compare_moments("2021-01-01", "2021-02-01"),
            Some(Ordering::Less)
        );
        assert_eq!(compare_moments("2021", "2021-01-05"), None);
        assert_eq!(compare_moments("2020", "2021-01-05"), Some(Ordering::Less));
        assert_eq!(
            compare_moments("2021-02-01T10:00:00Z", "2021-02-01T09:00:00Z"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_moments("2021-02-01T10:00:00+02:00", "2021-02-01T09:00:00Z"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_moments("2021-02-01T10:00:00", "2021-02-01T09:00:00Z"),
            None
        );
        assert_eq!(
            compare_moments("2021-02-01T10:00:00.000Z", "2021-02-01T10:00:00Z"),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 1, 18_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
