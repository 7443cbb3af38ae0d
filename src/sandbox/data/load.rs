//! A folder of the user's own FHIR data as the demo plan (`onramp sandbox --data DIR`).
//!
//! Every `.json` (a resource or a Bundle, whose entries are taken one by one) and `.ndjson`
//! file under the folder is read. Each Patient is a member. A resource belongs to a member
//! when it points at their Patient through `patient`, `subject` or `beneficiary`; a resource
//! that belongs to nobody (Organization, Practitioner, Location, ...) is visible to a member
//! when the member's resources reference it, directly or through other visible resources.
//! Sign-in uses the Patient's first given and family name, birth date, member identifier
//! (the one typed `MB`, else the first) and first postal code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Identity, Member, Store};

/// Why a data folder cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{line}: not JSON: {message}", line = line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error(
        "{path}: a resource without a string `resourceType` or `id`; every served resource needs both"
    )]
    Unnamed { path: PathBuf },
    #[error("{path}: {kind}/{id} appears twice (first in {first})")]
    Duplicate {
        path: PathBuf,
        kind: String,
        id: String,
        first: PathBuf,
    },
    #[error("{path} holds no Patient resource: the sandbox needs at least one member to serve")]
    NoPatients { path: PathBuf },
}

/// The user's data, indexed.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every resource by type and id.
    resources: BTreeMap<String, BTreeMap<String, Value>>,
    /// Patient ids, in id order; a member's index is its position.
    patients: Vec<String>,
    /// Per member: the `(type, id)` of every resource they may see, in order.
    visible: Vec<BTreeMap<String, Vec<String>>>,
    /// Problems worth telling the user at start-up (members who cannot sign in).
    pub warnings: Vec<String>,
}

const OWNER_FIELDS: [&str; 3] = ["patient", "subject", "beneficiary"];

impl Loaded {
    /// Read every FHIR file under `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, LoadError> {
        let mut loaded = Self::default();
        let mut origin: HashMap<(String, String), PathBuf> = HashMap::new();
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|error| LoadError::Read {
                path: error.path().unwrap_or(dir).to_owned(),
                source: error
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("loop in the folder")),
            })?;
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            if entry.file_type().is_file()
                && (name.ends_with(".json")
                    || name.ends_with(".ndjson")
                    || name.ends_with(".jsonl"))
            {
                files.push(entry.into_path());
            }
        }
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
                path: path.clone(),
                source,
            })?;
            let documents: Vec<(Option<usize>, Value)> =
                if path.extension().is_some_and(|e| e != "json") {
                    text.lines()
                        .enumerate()
                        .filter(|(_, line)| !line.trim().is_empty())
                        .map(|(n, line)| {
                            serde_json::from_str(line)
                                .map(|v| (Some(n + 1), v))
                                .map_err(|e| LoadError::Json {
                                    path: path.clone(),
                                    line: Some(n + 1),
                                    message: e.to_string(),
                                })
                        })
                        .collect::<Result<_, _>>()?
                } else {
                    let value =
                        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
                            LoadError::Json {
                                path: path.clone(),
                                line: None,
                                message: e.to_string(),
                            }
                        })?;
                    vec![(None, value)]
                };
            for (_, document) in documents {
                for resource in flatten(document) {
                    let (Some(kind), Some(id)) = (
                        resource
                            .get("resourceType")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        resource
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    ) else {
                        return Err(LoadError::Unnamed { path: path.clone() });
                    };
                    if let Some(first) = origin.get(&(kind.clone(), id.clone())) {
                        return Err(LoadError::Duplicate {
                            path: path.clone(),
                            kind,
                            id,
                            first: first.clone(),
                        });
                    }
                    origin.insert((kind.clone(), id.clone()), path.clone());
                    loaded
                        .resources
                        .entry(kind)
                        .or_default()
                        .insert(id, resource);
                }
            }
        }
        loaded.patients = loaded
            .resources
            .get("Patient")
            .map(|patients| patients.keys().cloned().collect())
            .unwrap_or_default();
        if loaded.patients.is_empty() {
            return Err(LoadError::NoPatients {
                path: dir.to_owned(),
            });
        }
        loaded.index_compartments();
        for (index, patient_id) in loaded.patients.iter().enumerate() {
            if loaded.identity(index).is_none() {
                loaded.warnings.push(format!(
                    "Patient/{patient_id} lacks a given and family name, birth date, identifier or postal code: it cannot sign in"
                ));
            }
        }
        Ok(loaded)
    }

    fn index_compartments(&mut self) {
        let mut owned: Vec<BTreeSet<(String, String)>> = vec![BTreeSet::new(); self.patients.len()];
        let position: HashMap<&str, usize> = self
            .patients
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        for (kind, resources) in &self.resources {
            for (id, resource) in resources {
                if kind == "Patient" {
                    if let Some(&member) = position.get(id.as_str()) {
                        owned[member].insert((kind.clone(), id.clone()));
                    }
                    continue;
                }
                for field in OWNER_FIELDS {
                    let Some(target) = resource
                        .get(field)
                        .and_then(|r| r.get("reference"))
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    if let Some(&member) = target
                        .strip_prefix("Patient/")
                        .and_then(|p| position.get(p))
                    {
                        owned[member].insert((kind.clone(), id.clone()));
                    }
                }
            }
        }
        let owners: HashMap<(String, String), usize> = owned
            .iter()
            .enumerate()
            .flat_map(|(member, set)| set.iter().map(move |key| (key.clone(), member)))
            .collect();
        self.visible = owned
            .into_iter()
            .map(|own| {
                // Follow references from the member's own resources to resources nobody owns.
                let mut seen = own.clone();
                let mut queue: Vec<(String, String)> = own.into_iter().collect();
                while let Some((kind, id)) = queue.pop() {
                    let Some(resource) = self.resources.get(&kind).and_then(|r| r.get(&id)) else {
                        continue;
                    };
                    let mut targets = Vec::new();
                    references(resource, &mut targets);
                    for target in targets {
                        let Some((kind, id)) = target.split_once('/') else {
                            continue;
                        };
                        let key = (kind.to_owned(), id.to_owned());
                        let exists = self.resources.get(kind).is_some_and(|r| r.contains_key(id));
                        if exists && !owners.contains_key(&key) && seen.insert(key.clone()) {
                            queue.push(key);
                        }
                    }
                }
                let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (kind, id) in seen {
                    by_kind.entry(kind).or_default().push(id);
                }
                by_kind
            })
            .collect();
    }

    fn identity(&self, index: usize) -> Option<Identity> {
        let patient = self
            .resources
            .get("Patient")?
            .get(self.patients.get(index)?)?;
        let name = patient.get("name")?.get(0)?;
        let first = name.get("given")?.get(0)?.as_str()?;
        let last = name.get("family")?.as_str()?;
        let birth = patient.get("birthDate")?.as_str()?;
        let (year, rest) = birth.split_once('-')?;
        let (month, day) = rest.split_once('-')?;
        let identifiers = patient.get("identifier")?.as_array()?;
        let is_member_number = |identifier: &&Value| {
            identifier
                .pointer("/type/coding")
                .and_then(Value::as_array)
                .is_some_and(|codings| {
                    codings
                        .iter()
                        .any(|c| c.get("code").and_then(Value::as_str) == Some("MB"))
                })
        };
        let member_id = identifiers
            .iter()
            .find(is_member_number)
            .or_else(|| identifiers.first())?
            .get("value")?
            .as_str()?;
        let zip = patient
            .get("address")?
            .get(0)?
            .get("postalCode")?
            .as_str()?;
        Some(Identity {
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            birth_date: format!("{month}/{day}/{year}"),
            member_id: member_id.to_owned(),
            zip: zip.to_owned(),
        })
    }
}

/// A document's resources: a Bundle's entries (recursively), or the resource itself.
fn flatten(document: Value) -> Vec<Value> {
    if document.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        && let Some(Value::Array(entries)) = document.get("entry")
    {
        return entries
            .iter()
            .filter_map(|entry| entry.get("resource").cloned())
            .flat_map(flatten)
            .collect();
    }
    vec![document]
}

/// Every `reference` string in a resource that looks like `Type/id`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                if name == "reference"
                    && let Some(text) = member.as_str()
                {
                    out.push(text.to_owned());
                } else {
                    references(member, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

impl Store for Loaded {
    fn member_count(&self) -> usize {
        self.patients.len()
    }

    fn member(&self, index: usize) -> Option<Member> {
        Some(Member {
            index,
            patient_id: self.patients.get(index)?.clone(),
            identity: self.identity(index),
        })
    }

    fn find_member(&self, typed: &Identity) -> Option<Member> {
        (0..self.patients.len())
            .filter_map(|index| self.member(index))
            .find(|member| {
                member
                    .identity
                    .as_ref()
                    .is_some_and(|identity| identity.matches(typed))
            })
    }

    fn resource_types(&self) -> Vec<String> {
        let mut types: BTreeSet<String> = self.resources.keys().cloned().collect();
        types.extend(super::REQUIRED_TYPES.iter().map(|t| (*t).to_owned()));
        types.into_iter().collect()
    }

    fn count(&self, member: usize, kind: &str) -> usize {
        self.visible
            .get(member)
            .and_then(|v| v.get(kind))
            .map_or(0, Vec::len)
    }

    fn page(&self, member: usize, kind: &str, offset: usize, limit: usize) -> Vec<Value> {
        let Some(ids) = self.visible.get(member).and_then(|v| v.get(kind)) else {
            return Vec::new();
        };
        ids.iter()
            .skip(offset)
            .take(limit)
            .filter_map(|id| self.resources.get(kind)?.get(id).cloned())
            .collect()
    }

    fn read(&self, member: usize, kind: &str, id: &str) -> Option<Value> {
        let visible = self.visible.get(member)?.get(kind)?;
        if visible.iter().any(|mine| mine == id) {
            self.resources.get(kind)?.get(id).cloned()
        } else {
            None
        }
    }

    fn foreign(&self, member: usize, kind: &str) -> Option<Value> {
        let visible = self.visible.get(member).and_then(|v| v.get(kind));
        self.resources
            .get(kind)?
            .iter()
            .find(|(id, _)| !visible.is_some_and(|mine| mine.contains(id)))
            .map(|(_, resource)| resource.clone())
    }
}
