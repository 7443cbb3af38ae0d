//! Reading the derived structure file (`schemas/fhir.r4.structure.json`) into the
//! [`Model`]: classes, elements, value sets, and each constraint compiled once
//! ([`constraint_of`], which the profile tier shares). The model itself knows nothing of
//! how it was read, so the FHIRPath evaluator that reads the model sits below this.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::fhirpath::compile;
use super::model::*;

static GLOBAL: LazyLock<Model> =
    LazyLock::new(|| Model::load(STRUCTURE_JSON).expect("the embedded structure rules load"));

impl Model {
    /// The rules derived from R4, shared by the whole process.
    pub fn global() -> &'static Model {
        &GLOBAL
    }

    pub(super) fn load(text: &str) -> Result<Self, String> {
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

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct FileConstraint {
    pub key: String,
    pub severity: String,
    pub expression: String,
    pub human: String,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub(super) enum FileCodes {
    Listed(Vec<String>),
    /// `"*"`: cannot be listed here.
    Unlisted(String),
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
    let compiled = compile(&item.expression);
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
