//! The public half of CMS-9115-F: the Provider Directory API (Da Vinci PDex Plan-Net 1.1.0)
//! and the drug formulary (Da Vinci PDex US Drug Formulary 2.0.1). What each must serve is
//! read from its IG's server CapabilityStatement, as data: the types and their profiles,
//! the SHALL search parameters, the `_include`s and `_revinclude`s, and the chains its
//! SearchParameters allow. A newer package brings its own. Pure: no I/O.

use crate::validate::catalog::{Catalog, FORMULARY, PLAN_NET};

/// One of the public APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Book {
    /// The Provider Directory API (42 CFR 422.120, Plan-Net).
    Directory,
    /// The drug formulary (42 CFR 422.119(b)(2), US Drug Formulary).
    Formulary,
}

/// The Patient Access types a Provider Directory must not serve to anyone: what the check
/// that it holds no member's data asks it for.
pub const PATIENT_TYPES: &[&str] = &["Patient", "Coverage", "ExplanationOfBenefit"];

impl Book {
    pub const ALL: [Book; 2] = [Book::Directory, Book::Formulary];

    /// Its IG's package name.
    pub fn package(self) -> &'static str {
        match self {
            Self::Directory => PLAN_NET,
            Self::Formulary => FORMULARY,
        }
    }

    /// What it is, for messages and the report.
    pub fn title(self) -> &'static str {
        match self {
            Self::Directory => "Provider Directory",
            Self::Formulary => "Drug Formulary",
        }
    }

    /// How the features and the target name it (`directory`, `formulary`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Formulary => "formulary",
        }
    }

    /// Its IG, as messages cite it (`Plan-Net 1.1.0`).
    pub fn ig(self) -> String {
        let name = match self {
            Self::Directory => "Plan-Net",
            Self::Formulary => "US Drug Formulary",
        };
        let version = Catalog::global().ig(self.package()).map_or_else(
            || "(not loaded)".to_owned(),
            |(ig, _)| ig.version.to_string(),
        );
        format!("{name} {version}")
    }

    /// The types its IG's CapabilityStatement makes SHALL, sorted.
    pub fn types(self) -> Vec<String> {
        let Some((ig, _)) = Catalog::global().ig(self.package()) else {
            return Vec::new();
        };
        let mut out: Vec<String> = ig.supported.keys().map(|k| k.to_string()).collect();
        out.sort();
        out
    }

    /// The profiles its IG supports for every type: what the run applies to what it reads.
    pub fn profiles(self) -> Vec<String> {
        let Some((ig, _)) = Catalog::global().ig(self.package()) else {
            return Vec::new();
        };
        let mut out: Vec<String> = ig
            .supported
            .values()
            .flat_map(|urls| urls.iter().map(|u| u.to_string()))
            .collect();
        out.sort();
        out
    }

    /// Each type's SHALL search parameters, one row each: `(type, code)`.
    pub fn searches(self) -> Vec<(String, String)> {
        let Some((ig, _)) = Catalog::global().ig(self.package()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for kind in self.types() {
            for search in ig.searches.get(&kind).into_iter().flatten() {
                out.push((kind.clone(), search.join("+")));
            }
        }
        out
    }

    /// Each `_include` its IG lists: `(type, Type:parameter)`.
    pub fn includes(self) -> Vec<(String, String)> {
        self.listed(|ig| &ig.includes)
    }

    /// Each `_revinclude` its IG lists: `(type searched, Source:parameter)`.
    pub fn revincludes(self) -> Vec<(String, String)> {
        self.listed(|ig| &ig.revincludes)
    }

    fn listed(
        self,
        pick: impl Fn(
            &crate::validate::profile::Profiles,
        ) -> &std::collections::HashMap<String, Vec<String>>,
    ) -> Vec<(String, String)> {
        let Some((ig, _)) = Catalog::global().ig(self.package()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for kind in self.types() {
            for spec in pick(ig).get(&kind).into_iter().flatten() {
                out.push((kind.clone(), spec.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_net_and_the_formulary_say_what_they_serve() {
        assert_eq!(
            Book::Directory.types(),
            [
                "Endpoint",
                "HealthcareService",
                "InsurancePlan",
                "Location",
                "Organization",
                "OrganizationAffiliation",
                "Practitioner",
                "PractitionerRole"
            ]
        );
        assert_eq!(
            Book::Formulary.types(),
            ["Basic", "InsurancePlan", "Location", "MedicationKnowledge"]
        );
        let searches = Book::Directory.searches();
        assert!(searches.contains(&("PractitionerRole".into(), "network".into())));
        assert!(searches.contains(&("Location".into(), "address-city".into())));
        assert!(Book::Directory.revincludes().contains(&(
            "Practitioner".into(),
            "PractitionerRole:practitioner".into()
        )));
        // USDF lists the parameter alone; it is of the type listing it.
        assert!(
            Book::Formulary
                .includes()
                .contains(&("Basic".into(), "Basic:formulary".into()))
        );
        // The chains the shipped feature tries are chains Plan-Net's parameters allow.
        for (kind, chain) in [
            ("PractitionerRole", "location.address-city"),
            ("PractitionerRole", "practitioner.name"),
            ("PractitionerRole", "network.name"),
            ("HealthcareService", "location.address-state"),
            ("OrganizationAffiliation", "participating-organization.name"),
            ("InsurancePlan", "administered-by.name"),
        ] {
            assert!(
                include_str!("../../features/provider-directory.feature").contains(chain),
                "{chain}"
            );
            let (reference, chained) = chain.split_once('.').expect("a chain");
            let parameter = crate::payer::search::Parameter::of(kind, reference).expect(chain);
            assert!(
                parameter
                    .target
                    .iter()
                    .any(|t| crate::payer::search::Parameter::of(t, chained).is_some()),
                "{kind}?{chain}"
            );
        }
    }
}
