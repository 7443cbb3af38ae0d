//! Which IGs the profile tier has, and how a profile a resource declares resolves to one.
//!
//! onramp ships six FHIR packages (`schemas/packages/`, provenance in `schemas/README.md`):
//! CARIN Blue Button 2.0.0, US Core 6.1.0 and 3.1.1, Da Vinci Plan-Net 1.1.0 and US Drug
//! Formulary 2.0.1, and R4's own profiles (vital signs and the rest). A user adds any other
//! with `--ig FILE.tgz` or `[validation] igs`. All take one path: read the package, derive
//! its rules ([`super::ig`]), once per process, when a resource first needs them.
//!
//! A declaration `url|version` resolves to that version. An unversioned one resolves to the
//! version in use for that IG: the one the user loaded, else the shipped default (US Core
//! 6.1.0 over 3.1.1). A profile whose own constraint requires a versioned declaration (CARIN's
//! `*-meta-profile-version`) is not claimed by an unversioned one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex, RwLock};

use super::ig::{self, TypeIndex};
use super::model::Model;
use super::package::{Package, PackageError};
use super::profile::{Profile, Profiles};
use super::terminology::Expansion;

/// A package onramp ships.
#[derive(Debug)]
pub struct Shipped {
    pub name: &'static str,
    pub version: &'static str,
    /// Profiles under `{canonical}/StructureDefinition/` are its.
    pub canonical: &'static str,
    /// Whether an unversioned declaration resolves to this version by default.
    pub default: bool,
    file: &'static str,
    bytes: &'static [u8],
}

impl Shipped {
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Its file in `schemas/packages/`.
    pub fn file_name(&self) -> &'static str {
        self.file
    }

    /// The package as shipped.
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }
}

/// The shipped packages.
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "hl7.fhir.r4.core",
        version: "4.0.1",
        canonical: "http://hl7.org/fhir",
        default: true,
        file: "hl7.fhir.r4.core-profiles-4.0.1.tgz",
        bytes: include_bytes!("../../schemas/packages/hl7.fhir.r4.core-profiles-4.0.1.tgz"),
    },
    Shipped {
        name: "hl7.fhir.us.carin-bb",
        version: "2.0.0",
        canonical: "http://hl7.org/fhir/us/carin-bb",
        default: true,
        file: "hl7.fhir.us.carin-bb-2.0.0.tgz",
        bytes: include_bytes!("../../schemas/packages/hl7.fhir.us.carin-bb-2.0.0.tgz"),
    },
    Shipped {
        name: "hl7.fhir.us.core",
        version: "6.1.0",
        canonical: "http://hl7.org/fhir/us/core",
        default: true,
        file: "hl7.fhir.us.core-6.1.0.tgz",
        bytes: include_bytes!("../../schemas/packages/hl7.fhir.us.core-6.1.0.tgz"),
    },
    Shipped {
        name: "hl7.fhir.us.core",
        version: "3.1.1",
        canonical: "http://hl7.org/fhir/us/core",
        default: false,
        file: "hl7.fhir.us.core-3.1.1.tgz",
        bytes: include_bytes!("../../schemas/packages/hl7.fhir.us.core-3.1.1.tgz"),
    },
    Shipped {
        name: "hl7.fhir.us.davinci-pdex-plan-net",
        version: "1.1.0",
        canonical: "http://hl7.org/fhir/us/davinci-pdex-plan-net",
        default: true,
        file: "hl7.fhir.us.davinci-pdex-plan-net-1.1.0.tgz",
        bytes: include_bytes!("../../schemas/packages/hl7.fhir.us.davinci-pdex-plan-net-1.1.0.tgz"),
    },
    Shipped {
        name: "hl7.fhir.us.davinci-drug-formulary",
        version: "2.0.1",
        canonical: "http://hl7.org/fhir/us/davinci-drug-formulary",
        default: true,
        file: "hl7.fhir.us.davinci-drug-formulary-2.0.1.tgz",
        bytes: include_bytes!(
            "../../schemas/packages/hl7.fhir.us.davinci-drug-formulary-2.0.1.tgz"
        ),
    },
];

/// CARIN Blue Button's package name: the claims profiles a run applies by default.
pub const CARIN: &str = "hl7.fhir.us.carin-bb";

/// US Core's package name: the clinical profiles and searches a run applies by default.
pub const US_CORE: &str = "hl7.fhir.us.core";

/// Da Vinci PDex Plan-Net's package name: the Provider Directory's profiles and searches.
pub const PLAN_NET: &str = "hl7.fhir.us.davinci-pdex-plan-net";

/// Da Vinci PDex US Drug Formulary's package name: the formulary's profiles and searches.
pub const FORMULARY: &str = "hl7.fhir.us.davinci-drug-formulary";

/// One loaded IG.
#[derive(Clone, Copy)]
struct Loaded {
    ig: &'static Profiles,
    profiles: &'static [Profile],
}

#[derive(Default)]
struct State {
    loaded: Vec<Loaded>,
    /// IG name → the version an unversioned declaration resolves to, when the user chose.
    preferred: HashMap<String, String>,
    /// Package files already loaded, by path, with the IG they gave.
    files: HashMap<String, &'static Profiles>,
    /// Shipped packages that could not be derived, with why (never expected).
    broken: HashMap<String, String>,
    /// Declarations already resolved.
    resolved: HashMap<Box<str>, Option<&'static Profile>>,
}

/// Every IG loaded in this process.
pub struct Catalog {
    state: RwLock<State>,
    /// Held while a package is derived, so each is derived once.
    loading: Mutex<()>,
    /// Expansions given with `--terminology`, used by every derivation after.
    given: RwLock<HashMap<String, Expansion>>,
}

static GLOBAL: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    state: RwLock::new(State::default()),
    loading: Mutex::new(()),
    given: RwLock::new(HashMap::new()),
});

impl Catalog {
    pub fn global() -> &'static Catalog {
        &GLOBAL
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile a `meta.profile` value or a `--profile` URL names (`url` or
    /// `url|version`), loading the shipped IG it belongs to on first use.
    pub fn find(&self, canonical: &str) -> Option<&'static Profile> {
        if let Some(found) = self.read().resolved.get(canonical) {
            return *found;
        }
        let (url, version) = split(canonical);
        for shipped in self.shipped_for(url, version) {
            self.load_shipped(shipped);
        }
        let mut found = self.lookup(url, version);
        if found.is_none() && version.is_none() {
            // A profile the version in use does not have (US Core 3.1.1's us-core-condition,
            // which 6.1.0 split in two): the shipped version that has it is the only one the
            // declaration can mean.
            for shipped in SHIPPED.iter().filter(|s| owns(s, url)) {
                self.load_shipped(shipped);
            }
            found = self.lookup(url, None);
        }
        self.write().resolved.insert(canonical.into(), found);
        found
    }

    fn lookup(&self, url: &str, version: Option<&str>) -> Option<&'static Profile> {
        let state = self.read();
        let mut candidates = state
            .loaded
            .iter()
            .flat_map(|l| l.profiles.iter())
            .filter(|p| &*p.url == url);
        match version {
            Some(version) => candidates.find(|p| version_matches(&p.version, version)),
            None => {
                let all: Vec<&'static Profile> = candidates.collect();
                let preferred = all.iter().copied().find(|p| {
                    state
                        .preferred
                        .get(&*p.ig.name)
                        .is_some_and(|v| *v == *p.ig.version)
                });
                let default = all.iter().copied().find(|p| {
                    SHIPPED
                        .iter()
                        .any(|s| s.default && s.name == &*p.ig.name && s.version == &*p.ig.version)
                });
                preferred.or(default).or(all.first().copied())
            }
        }
    }

    /// The shipped packages a profile URL may be in, in the version asked or in use.
    fn shipped_for(&self, url: &str, version: Option<&str>) -> Vec<&'static Shipped> {
        let state = self.read();
        SHIPPED
            .iter()
            .filter(|s| owns(s, url))
            .filter(|s| match version {
                Some(v) => version_matches(s.version, v),
                None => match state.preferred.get(s.name) {
                    Some(chosen) => chosen == s.version,
                    None => s.default,
                },
            })
            .collect()
    }

    fn is_loaded(&self, name: &str, version: &str) -> bool {
        self.read()
            .loaded
            .iter()
            .any(|l| &*l.ig.name == name && &*l.ig.version == version)
    }

    /// Derive a shipped package, once.
    fn load_shipped(&self, shipped: &'static Shipped) {
        if self.is_loaded(shipped.name, shipped.version)
            || self.read().broken.contains_key(&shipped.id())
        {
            return;
        }
        let _guard = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_loaded(shipped.name, shipped.version) {
            return;
        }
        let result = read_shipped(shipped).and_then(|package| self.derive(package));
        if let Err(error) = result {
            tracing::warn!(
                "the shipped package {} could not be derived: {error}",
                shipped.id()
            );
            self.write().broken.insert(shipped.id(), error.to_string());
        }
    }

    /// Load a package file (`--ig`, `[validation] igs`): its version becomes the one
    /// unversioned declarations of its profiles resolve to. Loading the same file again
    /// returns the IG already derived.
    pub fn add_file(&self, path: &Path) -> Result<&'static Profiles, PackageError> {
        let key = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        if let Some(found) = self.read().files.get(&key) {
            return Ok(found);
        }
        let _guard = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        let package = Package::read_file(path)?;
        let ig = self.derive(package)?;
        let mut state = self.write();
        state.files.insert(key, ig);
        state
            .preferred
            .insert(ig.name.to_string(), ig.version.to_string());
        state.resolved.clear();
        Ok(ig)
    }

    /// Use a shipped IG's version for unversioned declarations (`hl7.fhir.us.core@3.1.1`).
    pub fn prefer_shipped(&self, id: &str) -> Result<&'static Shipped, String> {
        let shipped = SHIPPED
            .iter()
            .find(|s| s.id() == id)
            .ok_or_else(|| format!("onramp ships no package {id}; it ships {}", shipped_ids()))?;
        let mut state = self.write();
        state
            .preferred
            .insert(shipped.name.into(), shipped.version.into());
        state.resolved.clear();
        Ok(shipped)
    }

    /// Use these expansions (a `--terminology` folder) in every derivation from now on.
    pub fn add_expansions(&self, given: HashMap<String, Expansion>) {
        self.given
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(given);
    }

    fn derive(&self, package: Package) -> Result<&'static Profiles, PackageError> {
        let dependencies = dependencies_of(&package);
        let mut all: Vec<&Package> = vec![&package];
        all.extend(dependencies.iter());
        let types: TypeIndex = ig::type_index(&all);
        let given = self.given.read().unwrap_or_else(|e| e.into_inner()).clone();
        let derived = ig::derive(&package, &all[1..], &types, &given, Model::global());
        // What the derivation left unjudged, for `-v`.
        for limit in &derived.limits {
            tracing::debug!("{}: not judged: {limit}", package.id());
        }
        let (ig, profiles) = Profiles::build(derived).map_err(|what| PackageError {
            origin: package.origin.clone(),
            what,
        })?;
        let mut state = self.write();
        state.loaded.push(Loaded { ig, profiles });
        state.resolved.clear();
        Ok(ig)
    }

    /// The IG loaded under `name` in the version in use (loading the shipped one).
    pub fn ig(&self, name: &str) -> Option<(&'static Profiles, &'static [Profile])> {
        let preferred = self.read().preferred.get(name).cloned();
        let shipped = SHIPPED.iter().find(|s| {
            s.name == name
                && match &preferred {
                    Some(v) => v == s.version,
                    None => s.default,
                }
        });
        if let Some(shipped) = shipped {
            self.load_shipped(shipped);
        }
        let state = self.read();
        state
            .loaded
            .iter()
            .filter(|l| &*l.ig.name == name)
            .find(|l| preferred.as_deref().is_none_or(|v| v == &*l.ig.version))
            .map(|l| (l.ig, l.profiles))
    }

    /// What a message about an unknown profile lists: the IGs onramp has.
    pub fn describe(&self) -> String {
        let state = self.read();
        let mut names: Vec<String> = SHIPPED.iter().map(Shipped::id).collect();
        for loaded in &state.loaded {
            let id = loaded.ig.id();
            if !names.contains(&id) {
                names.push(format!("{id} (from {})", loaded.ig.origin));
            }
        }
        format!(
            "the profiles of {}; add another IG with --ig FILE.tgz",
            names.join(", ")
        )
    }
}

fn shipped_ids() -> String {
    SHIPPED
        .iter()
        .map(Shipped::id)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn read_shipped(shipped: &Shipped) -> Result<Package, PackageError> {
    Package::read(shipped.bytes, format!("{} (shipped)", shipped.id()))
}

/// The shipped packages a package depends on (same name and version, else same name), read.
fn dependencies_of(package: &Package) -> Vec<Package> {
    let mut out = Vec::new();
    for (name, version) in &package.dependencies {
        let found = SHIPPED
            .iter()
            .find(|s| s.name == name && s.version == version)
            .or_else(|| SHIPPED.iter().find(|s| s.name == name && s.default));
        if let Some(shipped) = found
            && !(shipped.name == package.name && shipped.version == package.version)
            && let Ok(read) = read_shipped(shipped)
        {
            out.push(read);
        }
    }
    out
}

/// Whether a profile URL is under a shipped package's canonical base.
fn owns(shipped: &Shipped, url: &str) -> bool {
    url.strip_prefix(shipped.canonical)
        .is_some_and(|rest| rest.starts_with("/StructureDefinition/"))
}

/// `url|version` → (`url`, `Some(version)`).
fn split(canonical: &str) -> (&str, Option<&str>) {
    match canonical.split_once('|') {
        Some((url, version)) => (url, Some(version)),
        None => (canonical, None),
    }
}

/// A declared version matches a package's: equal, or a prefix ending at a dot (`2.0` of 2.0.0).
fn version_matches(have: &str, asked: &str) -> bool {
    have == asked
        || have
            .strip_prefix(asked)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_exactly_or_by_leading_parts() {
        assert!(version_matches("2.0.0", "2.0.0"));
        assert!(version_matches("2.0.0", "2.0"));
        assert!(!version_matches("2.0.0", "2.0.1"));
        assert!(!version_matches("2.0.10", "2.0.1"));
    }
}

#[cfg(test)]
mod shipped_tests {
    use super::*;

    #[test]
    fn every_shipped_package_derives() {
        for shipped in SHIPPED {
            let started = std::time::Instant::now();
            let package = read_shipped(shipped).unwrap();
            let read = started.elapsed();
            let deps = dependencies_of(&package);
            let mut all: Vec<&Package> = vec![&package];
            all.extend(deps.iter());
            let types = ig::type_index(&all);
            let derived = ig::derive(
                &package,
                &all[1..],
                &types,
                &HashMap::new(),
                Model::global(),
            );
            eprintln!(
                "{}: {} profiles, {} value sets, {} unlisted, read {:?}, total {:?}",
                shipped.id(),
                derived.profiles.len(),
                derived.value_sets.len(),
                derived.unlisted.len(),
                read,
                started.elapsed()
            );
            for limit in &derived.limits {
                eprintln!("  limit: {limit}");
            }
            for url in &derived.unlisted {
                eprintln!("  unlisted: {url}");
            }
            Profiles::build(derived).unwrap();
        }
    }
}
