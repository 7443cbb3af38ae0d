//! FHIR R4 validation in three tiers, each including the ones before it.
//!
//! - **schema**: HL7's official R4 JSON Schema, one compiled validator per resource type,
//!   built once, lazily, shared by every thread ([`Registry`]). Its verdicts are ajv 8's.
//!   Hot path: parse with `sonic-rs`, then a boolean `is_valid`; only a document that fails
//!   is walked again to collect errors, each from the validator of the (possibly contained)
//!   resource it belongs to.
//! - **structure**: what the R4 StructureDefinitions say beyond the schema ([`structure`],
//!   rules derived into `schemas/fhir.r4.structure.json`).
//! - **profile**: the profiles a resource declares or is given, from the IG packages onramp
//!   ships or the user loads ([`catalog`]), derived at run time ([`ig`]) and checked by
//!   [`profile`].
//!
//! Every [`Finding`] has a FHIR path, a JSON pointer, its tier, a stable rule id and a
//! message a person can act on. [`Validator`] runs the tiers asked for over one document.
//!
//! This module does not fetch anything; [`files`] reads local files and streams for
//! `onramp validate`.

pub mod catalog;
mod derived;
mod document;
mod fhirpath;
pub mod files;
mod finding;
mod ig;
pub mod model;
pub mod must_support;
mod narrative;
pub mod output;
pub mod package;
pub mod profile;
mod registry;
mod schema;
mod sonic;
pub mod structure;
pub mod terminology;

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

pub use document::{MAX_DEPTH, Parsed, STACK_SIZE, deeper_than, head, parse, parse_document};
pub use finding::{Checked, Finding, MAX_FINDINGS, Tier};
pub use registry::Registry;
pub use schema::{FHIR_VERSION, RESOURCE_KEYWORD, SCHEMA_JSON, Schema};

/// A profile onramp does not have.
#[derive(Debug, thiserror::Error)]
#[error("unknown profile {url}: onramp has {known}")]
pub struct UnknownProfile {
    pub url: String,
    /// The profiles onramp has, by name.
    pub known: String,
}

/// Load IGs for the profile tier: package files (`.tgz`) or shipped packages by
/// `name@version`, after the expansions of a `--terminology` folder. An error names the
/// package or folder and what is wrong with it.
pub fn load_igs(igs: &[String], terminology: Option<&std::path::Path>) -> Result<(), String> {
    let catalog = catalog::Catalog::global();
    if let Some(dir) = terminology {
        catalog.add_expansions(terminology::read_expansions(dir)?);
    }
    for ig in igs {
        let path = std::path::Path::new(ig);
        let shipped = !path.exists() && ig.contains('@') && !ig.ends_with(".tgz");
        if shipped {
            catalog.prefer_shipped(ig)?;
        } else {
            catalog.add_file(path).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A declared profile, from every IG loaded or shipped.
fn find_profile(canonical: &str) -> Option<&'static profile::Profile> {
    catalog::Catalog::global().find(canonical)
}

/// The tiers to run and the profiles to apply.
#[derive(Debug, Clone)]
pub struct Validator {
    tier: Tier,
    /// Profiles applied to every resource of their type, declared or not.
    given: Vec<&'static profile::Profile>,
    /// Whether a Bundle's entries are checked on every core.
    parallel_entries: bool,
    /// Whether must-support coverage is counted.
    must_support: bool,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new(Tier::Profile)
    }
}

impl Validator {
    /// Run the tiers up to `tier`.
    pub fn new(tier: Tier) -> Self {
        Self {
            tier,
            given: Vec::new(),
            parallel_entries: false,
            must_support: false,
        }
    }

    /// Check the entries of a large Bundle on every core (rayon's pool). Worth it for a
    /// Bundle read from a file; not for the pages of a run, whose checking already overlaps
    /// the next page's fetch, and whose pool the embedded sandbox is using to make them.
    pub fn with_parallel_entries(mut self, parallel: bool) -> Self {
        self.parallel_entries = parallel;
        self
    }

    /// Count, per profile, the resources that carry each must-support element
    /// ([`Checked::must_support`]).
    pub fn with_must_support(mut self, count: bool) -> Self {
        self.must_support = count;
        self
    }

    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Apply these profiles (canonical URLs, optionally `|version`) to every resource of
    /// their type, whether it declares them or not. An unknown URL is an error naming it.
    pub fn with_profiles<S: AsRef<str>>(mut self, urls: &[S]) -> Result<Self, UnknownProfile> {
        for url in urls {
            let url = url.as_ref();
            let catalog = catalog::Catalog::global();
            let found = catalog.find(url).ok_or_else(|| UnknownProfile {
                url: url.to_owned(),
                known: catalog.describe(),
            })?;
            if !self.given.iter().any(|p| std::ptr::eq(*p, found)) {
                self.given.push(found);
            }
        }
        Ok(self)
    }

    /// The profiles given to every resource of their type.
    pub fn given_profiles(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.given.iter().map(|p| p.url.as_ref())
    }

    /// Parse `bytes` as one JSON document and check it.
    pub fn check_bytes(&self, bytes: &[u8]) -> Checked {
        match parse_document(bytes) {
            Ok(parsed) => self.check_parsed(&parsed),
            Err(finding) => Checked {
                resources: 1,
                invalid: 1,
                findings: vec![*finding],
                ..Checked::default()
            },
        }
    }

    /// Check a parsed document, reporting the member names it repeated.
    pub fn check_parsed(&self, parsed: &Parsed) -> Checked {
        self.check_with(&parsed.document, &parsed.repeated, parsed.companions)
    }

    /// Check a parsed document (a resource, or a Bundle whose entries are counted and
    /// reported one by one).
    pub fn check(&self, document: &sonic_rs::Value) -> Checked {
        self.check_with(document, &[], sonic::has_companions(document))
    }

    fn check_with(
        &self,
        document: &sonic_rs::Value,
        repeated: &[String],
        companions: bool,
    ) -> Checked {
        let mut checked = Registry::global().check(document);
        if self.tier == Tier::Schema {
            checked.cap();
            return checked;
        }
        let bundle = structure::Bundle::of(document);
        let mut more = Vec::new();
        let mut undecided = structure::Undecided::new();
        for pointer in repeated {
            more.push(structure::repeated_member(document, pointer));
        }
        // A page of a search is a Bundle of a hundred claims: its entries are checked on
        // every core (the schema tier checked the whole Bundle already).
        let entries: Vec<(usize, &sonic_rs::Value)> = match &bundle {
            Some(_) => document
                .get("entry")
                .and_then(|e| e.as_array())
                .map(|entries| {
                    entries
                        .iter()
                        .enumerate()
                        .filter_map(|(n, e)| e.get("resource").map(|r| (n, r)))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let apart = self.parallel_entries && entries.len() >= PARALLEL_ENTRIES;
        structure::check(
            document,
            bundle.as_ref(),
            companions,
            !apart,
            &mut more,
            &mut undecided,
        );
        let mut seen = profile::Seen {
            coverage: self.must_support.then(must_support::Tally::new),
            ..profile::Seen::default()
        };
        if self.tier == Tier::Profile {
            checked.profiled = profile::check(
                document,
                bundle.as_ref(),
                companions,
                !apart,
                &self.given,
                &find_profile,
                &mut more,
                &mut undecided,
                &mut seen,
            );
        }
        if apart {
            let bundle = bundle.as_ref();
            let parts = self.check_entries(document, bundle, companions, &entries);
            for part in parts {
                more.extend(part.findings);
                for (key, count) in part.undecided {
                    *undecided.entry(key).or_default() += count;
                }
                for (url, count) in part.seen.unknown {
                    *seen.unknown.entry(url).or_default() += count;
                }
                seen.resolved.extend(part.seen.resolved);
                if let (Some(all), Some(coverage)) = (&mut seen.coverage, part.seen.coverage) {
                    must_support::merge(all, &coverage);
                }
                checked.profiled += part.profiled;
            }
        }
        one_finding_per_place(&checked.findings, &mut more);
        if !more.is_empty() {
            checked.findings.extend(more);
            // Document order: by entry, then tier.
            checked
                .findings
                .sort_by_key(|f| (f.entry.map_or(0, |e| e + 1), f.tier));
            checked.invalid = finding::count_invalid(&checked.findings);
        }
        let mut undecided: Vec<(Box<str>, u64)> = undecided.into_iter().collect();
        undecided.sort();
        checked.undecided = undecided;
        let mut unknown: Vec<(Box<str>, u64)> = seen.unknown.into_iter().collect();
        unknown.sort();
        checked.unknown_profiles = unknown;
        checked.must_support = seen.coverage.unwrap_or_default();
        checked.resolved_profiles = seen.resolved;
        checked.cap();
        checked
    }

    /// A Bundle's entries checked on every core, each into a part of its own.
    fn check_entries(
        &self,
        document: &sonic_rs::Value,
        bundle: Option<&structure::Bundle<'_>>,
        companions: bool,
        entries: &[(usize, &sonic_rs::Value)],
    ) -> Vec<EntryPart> {
        use rayon::prelude::*;
        entries
            .par_iter()
            .map(|(n, resource)| {
                let mut part = EntryPart::default();
                if self.must_support {
                    part.seen.coverage = Some(must_support::Tally::new());
                }
                structure::check_entry(
                    document,
                    bundle,
                    companions,
                    *n,
                    resource,
                    &mut part.findings,
                    &mut part.undecided,
                );
                if self.tier == Tier::Profile {
                    part.profiled = profile::check_entry(
                        bundle,
                        companions,
                        &self.given,
                        &find_profile,
                        *n,
                        resource,
                        &mut part.findings,
                        &mut part.undecided,
                        &mut part.seen,
                    );
                }
                part
            })
            .collect()
    }
}

/// Where a lower tier already spoke, the tiers above it add nothing at the same place: one
/// problem, one finding.
fn one_finding_per_place(lower: &[Finding], more: &mut Vec<Finding>) {
    let mut said: std::collections::HashSet<String> =
        lower.iter().map(|f| f.pointer.clone()).collect();
    more.retain(|f| f.tier != Tier::Structure || !said.contains(&f.pointer));
    said.extend(
        more.iter()
            .filter(|f| f.tier == Tier::Structure)
            .map(|f| f.pointer.clone()),
    );
    more.retain(|f| f.tier != Tier::Profile || !said.contains(&f.pointer));
}

/// Bundles with at least this many entry resources have them checked in parallel.
const PARALLEL_ENTRIES: usize = 8;

/// What checking one Bundle entry's resource found.
#[derive(Default)]
struct EntryPart {
    findings: Vec<Finding>,
    undecided: structure::Undecided,
    seen: profile::Seen,
    profiled: u64,
}
