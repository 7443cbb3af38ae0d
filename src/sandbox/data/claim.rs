//! The generated ExplanationOfBenefit's shape, as serde types written straight to JSON text.
//!
//! A member with 100,000 claims is served a hundred at a time, and the sandbox shares the
//! machine with the run it serves. Built as a tree of `serde_json` maps, a claim cost about
//! 80 µs to make, write and free (a map node and a key string per member); written from
//! these types, a few µs. Members come in FHIR's element order; absent ones are left out.

use serde::Serialize;

/// A Coding: `system`, `code` and, where given, `display`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Coding {
    pub system: &'static str,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<&'static str>,
}

impl Coding {
    pub fn new(system: &'static str, code: &'static str, display: &'static str) -> Self {
        Self {
            system,
            code,
            display: Some(display),
        }
    }

    /// A Coding without a display.
    pub fn bare(system: &'static str, code: &'static str) -> Self {
        Self {
            system,
            code,
            display: None,
        }
    }
}

/// A CodeableConcept of one Coding, with `text` where given.
#[derive(Debug, Serialize)]
pub(super) struct Concept {
    pub coding: [Coding; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'static str>,
}

impl Concept {
    /// One coding whose display is also the text (what the generator's `concept` writes).
    pub fn new(system: &'static str, code: &'static str, display: &'static str) -> Self {
        Self {
            coding: [Coding::new(system, code, display)],
            text: Some(display),
        }
    }

    /// One coding and no text.
    pub fn of(coding: Coding) -> Self {
        Self {
            coding: [coding],
            text: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Reference {
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<&'static str>,
}

impl Reference {
    pub fn to(kind: &str, id: &str) -> Self {
        Self {
            reference: format!("{kind}/{id}"),
            display: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Money {
    pub value: f64,
    pub currency: &'static str,
}

impl Money {
    pub fn usd(value: f64) -> Self {
        Self {
            value,
            currency: "USD",
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Quantity {
    pub value: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

impl Quantity {
    /// A count.
    pub fn count(value: usize) -> Self {
        Self {
            value,
            unit: None,
            system: None,
            code: None,
        }
    }

    /// A measure in a UCUM unit.
    pub fn ucum(value: usize, unit: &'static str) -> Self {
        Self {
            value,
            unit: Some(unit),
            system: Some("http://unitsofmeasure.org"),
            code: Some(unit),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Period {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Meta {
    #[serde(rename = "lastUpdated")]
    pub last_updated: String,
    pub profile: [String; 1],
}

#[derive(Debug, Serialize)]
pub(super) struct Identifier {
    #[serde(rename = "type")]
    pub kind: Concept,
    pub system: &'static str,
    pub value: String,
}

/// An amount adjudicated (`amount`) or a status said (`reason`), by `category`.
#[derive(Debug, Serialize)]
pub(super) struct Adjudication {
    pub category: Concept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Concept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// A number (`allowedunits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SupportingInfo {
    pub sequence: usize,
    pub category: Concept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Concept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Coding>,
}

#[derive(Debug, Serialize)]
pub(super) struct CareTeam {
    pub sequence: usize,
    pub provider: Reference,
    pub role: Concept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualification: Option<Concept>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Diagnosis {
    pub sequence: usize,
    pub diagnosis_codeable_concept: Concept,
    #[serde(rename = "type")]
    pub kind: [Concept; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_admission: Option<Concept>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Procedure {
    pub sequence: usize,
    #[serde(rename = "type")]
    pub kind: [Concept; 1],
    pub date: String,
    pub procedure_codeable_concept: Concept,
}

#[derive(Debug, Serialize)]
pub(super) struct Insurance {
    pub focal: bool,
    pub coverage: Reference,
}

#[derive(Debug, Serialize)]
pub(super) struct Payee {
    #[serde(rename = "type")]
    pub kind: Concept,
    pub party: Reference,
}

#[derive(Debug, Serialize)]
pub(super) struct Payment {
    #[serde(rename = "type")]
    pub kind: Concept,
    pub date: String,
    pub amount: Money,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Item {
    pub sequence: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis_sequence: Option<[usize; 1]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub information_sequence: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Concept>,
    pub product_or_service: Concept,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modifier: Vec<Concept>,
    pub serviced_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_codeable_concept: Option<Concept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    pub note_number: [usize; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<Adjudication>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<Detail>,
}

/// A pharmacy line's detail: what was dispensed, and how much.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Detail {
    pub sequence: usize,
    pub product_or_service: Concept,
    pub quantity: Quantity,
}

/// A claim this one relates to, by its identifier.
#[derive(Debug, Serialize)]
pub(super) struct Related {
    pub relationship: Concept,
    pub reference: RelatedIdentifier,
}

#[derive(Debug, Serialize)]
pub(super) struct RelatedIdentifier {
    pub system: &'static str,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub(super) struct ProcessNote {
    pub number: usize,
    pub text: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExplanationOfBenefit {
    pub resource_type: &'static str,
    pub id: String,
    pub meta: Meta,
    pub identifier: [Identifier; 1],
    pub status: &'static str,
    #[serde(rename = "type")]
    pub kind: Concept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<Concept>,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub patient: Reference,
    pub billable_period: Period,
    pub created: String,
    pub insurer: Reference,
    pub provider: Reference,
    pub related: [Related; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<Payee>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility: Option<Reference>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub care_team: Vec<CareTeam>,
    pub supporting_info: Vec<SupportingInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<Diagnosis>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub procedure: Vec<Procedure>,
    pub insurance: [Insurance; 1],
    pub item: Vec<Item>,
    pub adjudication: Vec<Adjudication>,
    pub total: Vec<Adjudication>,
    pub payment: Payment,
    pub process_note: [ProcessNote; 1],
}
