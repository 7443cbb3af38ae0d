//! The synthetic demo health plan, written by this project.
//!
//! Member 0 is the payer guide's test member, John Allen (10/19/1950, plan member ID
//! 123456789123, ZIP 02114). Members 1.. are generated. Every resource is a pure function of
//! (member, index), computed when asked for, so a plan of 10,000 members with 10 claims each
//! costs no memory and serves the same bytes every time.
//!
//! Each member has a Patient, a Coverage and `eobs_per_member` ExplanationOfBenefit cycling
//! through the four CARIN Blue Button kinds (professional, inpatient institutional,
//! outpatient institutional, pharmacy), with items, adjudications, diagnoses, totals and
//! payment. The claims reference the payer Organization, provider Organizations,
//! Practitioners and Locations drawn from pools that neighbouring members partly share, so
//! that every member has resources outside their compartment (what `foreign-patient` leaks).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::claim::{
    Adjudication, CareTeam, Coding, Concept, Detail, Diagnosis, ExplanationOfBenefit, Identifier,
    Insurance, Item, Meta, Money, Payee, Payment, Period, Procedure, ProcessNote, Quantity,
    Reference, Related, RelatedIdentifier, SupportingInfo,
};
use super::clinical;
use super::{Doc, Identity, Member, REQUIRED_TYPES, Store};

/// The guide's test member.
pub const JOHN_ALLEN: (&str, &str, &str, &str, &str) =
    ("John", "Allen", "10/19/1950", "123456789123", "02114");
const JOHN_ALLEN_ID: &str = "john-allen";
/// The payer Organization every member's Coverage and claims name.
pub const PAYER_ID: &str = "demo-health-plan";
const PAYER_NAME: &str = "Demo Health Plan";
/// The plan every member's Coverage names (`class` plan): `(value, name)`. The Provider
/// Directory's and the formulary's plan InsurancePlan carry it too.
pub const PLAN: (&str, &str) = ("DHP-GOLD-PPO", "Demo Gold PPO");
const MEMBER_ID_SYSTEM: &str = "https://demo-health-plan.example/fhir/member-id";
const CLAIM_ID_SYSTEM: &str = "https://demo-health-plan.example/fhir/claim-id";
const LAST_UPDATED: &str = "2026-01-15T09:30:00Z";

const FIRST_NAMES: [&str; 16] = [
    "Maria", "Wei", "Aisha", "Carlos", "Olga", "Kenji", "Fatima", "Liam", "Noor", "Grace", "Mateo",
    "Priya", "Samuel", "Yara", "Daniel", "Chloe",
];
const LAST_NAMES: [&str; 16] = [
    "Garcia",
    "Chen",
    "Okafor",
    "Novak",
    "Silva",
    "Tanaka",
    "Haddad",
    "Murphy",
    "Kowalski",
    "Nguyen",
    "Rossi",
    "Patel",
    "Johansson",
    "Mensah",
    "Dubois",
    "Reyes",
];
const PLACES: [(&str, &str, &str); 6] = [
    ("Boston", "MA", "02114"),
    ("Worcester", "MA", "01608"),
    ("Providence", "RI", "02903"),
    ("Hartford", "CT", "06103"),
    ("Pittsburgh", "PA", "15213"),
    ("Austin", "TX", "78701"),
];
const PROVIDER_WORDS: [&str; 8] = [
    "Harbor",
    "Maple",
    "Riverside",
    "Summit",
    "Lakeview",
    "Cedar",
    "Beacon",
    "Granite",
];
const DIAGNOSES: [(&str, &str); 10] = [
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("M54.50", "Low back pain, unspecified"),
    (
        "Z00.00",
        "Encounter for general adult medical examination without abnormal findings",
    ),
    ("R07.9", "Chest pain, unspecified"),
    (
        "K21.9",
        "Gastro-esophageal reflux disease without esophagitis",
    ),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    ("N39.0", "Urinary tract infection, site not specified"),
];
const CPT: [(&str, &str); 8] = [
    ("99213", "Office visit, established patient, low complexity"),
    (
        "99214",
        "Office visit, established patient, moderate complexity",
    ),
    ("80053", "Comprehensive metabolic panel"),
    ("85025", "Complete blood count with differential"),
    ("93000", "Electrocardiogram, complete"),
    ("71046", "Chest X-ray, 2 views"),
    ("36415", "Routine venipuncture"),
    ("99231", "Subsequent hospital care, low complexity"),
];
const REVENUE: [&str; 5] = ["0300", "0301", "0450", "0551", "0636"];
const DRUGS: [(&str, &str); 5] = [
    ("00093-0150-01", "Lisinopril 10 MG Oral Tablet"),
    ("00591-0405-10", "Metformin 500 MG Oral Tablet"),
    ("68180-0513-01", "Atorvastatin 20 MG Oral Tablet"),
    ("00378-1801-10", "Omeprazole 20 MG Delayed Release Capsule"),
    ("16729-0131-17", "Amlodipine 5 MG Oral Tablet"),
];

/// The four CARIN Blue Button kinds of claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Professional,
    Inpatient,
    Outpatient,
    Pharmacy,
}

impl Kind {
    fn of(index: usize) -> Self {
        [
            Self::Professional,
            Self::Inpatient,
            Self::Outpatient,
            Self::Pharmacy,
        ][index % 4]
    }

    fn profile(self) -> &'static str {
        match self {
            Self::Professional => "C4BB-ExplanationOfBenefit-Professional-NonClinician",
            Self::Inpatient => "C4BB-ExplanationOfBenefit-Inpatient-Institutional",
            Self::Outpatient => "C4BB-ExplanationOfBenefit-Outpatient-Institutional",
            Self::Pharmacy => "C4BB-ExplanationOfBenefit-Pharmacy",
        }
    }

    /// The claim's `type`.
    fn claim_type(self) -> Concept {
        let (code, display) = match self {
            Self::Professional => ("professional", "Professional"),
            Self::Pharmacy => ("pharmacy", "Pharmacy"),
            Self::Inpatient | Self::Outpatient => ("institutional", "Institutional"),
        };
        Concept::new(
            "http://terminology.hl7.org/CodeSystem/claim-type",
            code,
            display,
        )
    }

    /// The claim's `subType`: inpatient or outpatient for an institutional claim.
    fn sub_type(self) -> Option<Concept> {
        let (code, display) = match self {
            Self::Inpatient => ("inpatient", "Inpatient"),
            Self::Outpatient => ("outpatient", "Outpatient"),
            Self::Professional | Self::Pharmacy => return None,
        };
        Some(Concept::new(
            "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType",
            code,
            display,
        ))
    }
}

/// A small deterministic sequence (splitmix64) seeded from the resource's coordinates.
struct Dice(u64);

impl Dice {
    fn new(a: usize, b: usize, salt: u64) -> Self {
        Self((a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64).rotate_left(32) ^ salt)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Whole cents between `low` and `high` dollars, as a FHIR decimal.
    fn dollars(&mut self, low: u64, high: u64) -> f64 {
        let cents = low * 100 + self.next() % ((high - low) * 100 + 1);
        cents as f64 / 100.0
    }
}

/// `YYYY-MM-DD` of day `n` after 2023-01-01 (months of 28 days keep every date real).
fn service_date(n: usize) -> String {
    let year = 2023 + (n / 336) % 3;
    let month = 1 + (n / 28) % 12;
    let day = 1 + n % 28;
    format!("{year}-{month:02}-{day:02}")
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)], "text": display })
}

fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

/// The CARIN Blue Button version the generated resources conform to, and declare (its
/// profiles require `meta.profile` with the version).
const CARIN_VERSION: &str = "2.0.0";

fn profile_url(profile: &str) -> String {
    format!("http://hl7.org/fhir/us/carin-bb/StructureDefinition/{profile}|{CARIN_VERSION}")
}

fn meta(profile: &str) -> Value {
    json!({
        "lastUpdated": LAST_UPDATED,
        "profile": [profile_url(profile)]
    })
}

/// The generated plan: John Allen plus `members - 1` generated members.
#[derive(Debug, Clone)]
pub struct Generated {
    members: usize,
    eobs_per_member: usize,
}

impl Generated {
    /// A plan of `members` members (at least one: John Allen), each with
    /// `eobs_per_member` claims.
    pub fn new(members: usize, eobs_per_member: usize) -> Self {
        Self {
            members: members.max(1),
            eobs_per_member,
        }
    }

    fn pool(&self) -> usize {
        2 * self.members + 1
    }

    fn patient_id(index: usize) -> String {
        if index == 0 {
            JOHN_ALLEN_ID.to_owned()
        } else {
            format!("m{index:05}")
        }
    }

    fn member_index(&self, patient_id: &str) -> Option<usize> {
        let index = if patient_id == JOHN_ALLEN_ID {
            0
        } else {
            let digits = patient_id.strip_prefix('m')?;
            if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let index: usize = digits.parse().ok()?;
            if index == 0 || Self::patient_id(index) != patient_id {
                return None;
            }
            index
        };
        (index < self.members).then_some(index)
    }

    fn identity(index: usize) -> Identity {
        if index == 0 {
            let (first, last, birth, member_id, zip) = JOHN_ALLEN;
            return Identity {
                first_name: first.into(),
                last_name: last.into(),
                birth_date: birth.into(),
                member_id: member_id.into(),
                zip: zip.into(),
            };
        }
        let mut dice = Dice::new(index, 0, 0x1D);
        let first = dice.pick(&FIRST_NAMES);
        let last = dice.pick(&LAST_NAMES);
        let year = 1940 + dice.below(66);
        let month = 1 + dice.below(12);
        let day = 1 + dice.below(28);
        let place = PLACES[index % PLACES.len()];
        Identity {
            first_name: first.into(),
            last_name: last.into(),
            birth_date: format!("{month:02}/{day:02}/{year}"),
            member_id: format!("9115{index:08}"),
            zip: place.2.into(),
        }
    }

    // --- which shared resources a member's data references -------------------------------

    /// Provider Organization `k` of the claim `j` of member `i`.
    fn provider_of(&self, member: usize, claim: usize) -> usize {
        (2 * member + claim % 3) % self.pool()
    }

    fn practitioner_of(&self, member: usize, claim: usize) -> usize {
        (2 * member + claim % 3) % self.pool()
    }

    /// The Location of a professional claim's items.
    fn location_of(&self, member: usize, claim: usize) -> usize {
        (member + (claim / 4) % 2) % self.pool()
    }

    /// The Organization managing Location `k`.
    fn manager_of(&self, location: usize) -> usize {
        (2 * location) % self.pool()
    }

    /// The claims whose references repeat for the rest of the member's claims: every
    /// reference above depends on the claim index modulo 3, 4 or 8.
    fn claims_of_a_cycle(&self) -> std::ops::Range<usize> {
        0..self.eobs_per_member.min(24)
    }

    fn providers(&self, member: usize) -> BTreeSet<usize> {
        let mut set: BTreeSet<usize> = self
            .claims_of_a_cycle()
            .map(|j| self.provider_of(member, j))
            .collect();
        set.extend(self.locations(member).iter().map(|&l| self.manager_of(l)));
        set
    }

    fn practitioners(&self, member: usize) -> BTreeSet<usize> {
        self.claims_of_a_cycle()
            .filter(|&j| Kind::of(j) != Kind::Pharmacy)
            .map(|j| self.practitioner_of(member, j))
            .collect()
    }

    fn locations(&self, member: usize) -> BTreeSet<usize> {
        self.claims_of_a_cycle()
            .filter(|&j| Kind::of(j) == Kind::Professional)
            .map(|j| self.location_of(member, j))
            .collect()
    }

    /// Ids, in order, of the member's resources of a shared type.
    fn shared_ids(&self, member: usize, kind: &str) -> Vec<String> {
        match kind {
            "Organization" => std::iter::once(PAYER_ID.to_owned())
                .chain(
                    self.providers(member)
                        .into_iter()
                        .map(|k| format!("provider-{k}")),
                )
                .collect(),
            "Practitioner" => self
                .practitioners(member)
                .into_iter()
                .map(|k| format!("practitioner-{k}"))
                .collect(),
            "Location" => self
                .locations(member)
                .into_iter()
                .map(|k| format!("location-{k}"))
                .collect(),
            _ => Vec::new(),
        }
    }

    // --- resources -----------------------------------------------------------------------

    fn patient(&self, index: usize) -> Value {
        let identity = Self::identity(index);
        let mut dice = Dice::new(index, 1, 0x2E);
        let (city, state, zip) = PLACES[index % PLACES.len()];
        let (year, month, day) = {
            let mut parts = identity.birth_date.split('/');
            let month = parts.next().unwrap_or("01").to_owned();
            let day = parts.next().unwrap_or("01").to_owned();
            let year = parts.next().unwrap_or("1950").to_owned();
            (year, month, day)
        };
        let gender = if index == 0 {
            "male"
        } else {
            ["female", "male", "other"][dice.below(3)]
        };
        // US Core's race, ethnicity and birth sex, which C4BB-Patient makes must-support.
        let (race, race_name) = [
            ("2106-3", "White"),
            ("2054-5", "Black or African American"),
            ("2028-9", "Asian"),
        ][index % 3];
        let (ethnicity, ethnicity_name) = [
            ("2186-5", "Not Hispanic or Latino"),
            ("2135-2", "Hispanic or Latino"),
        ][index % 2];
        let birth_sex = match gender {
            "male" => "M",
            "female" => "F",
            _ => "UNK",
        };
        json!({
            "resourceType": "Patient",
            "id": Self::patient_id(index),
            "meta": meta("C4BB-Patient"),
            "extension": [
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                    "extension": [
                        { "url": "ombCategory", "valueCoding": { "system": "urn:oid:2.16.840.1.113883.6.238", "code": race, "display": race_name } },
                        { "url": "text", "valueString": race_name }
                    ]
                },
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
                    "extension": [
                        { "url": "ombCategory", "valueCoding": { "system": "urn:oid:2.16.840.1.113883.6.238", "code": ethnicity, "display": ethnicity_name } },
                        { "url": "text", "valueString": ethnicity_name }
                    ]
                },
                { "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": birth_sex }
            ],
            "identifier": [
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB", "Member Number"),
                    "system": MEMBER_ID_SYSTEM,
                    "value": identity.member_id,
                    "assigner": { "reference": format!("Organization/{PAYER_ID}"), "display": PAYER_NAME }
                },
                {
                    "type": concept("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "um", "Unique Member ID"),
                    "system": "https://demo-health-plan.example/fhir/unique-member-id",
                    "value": format!("UM-{}", identity.member_id)
                }
            ],
            "active": true,
            "name": [{ "use": "official", "family": identity.last_name, "given": [identity.first_name] }],
            "telecom": [{ "system": "phone", "value": format!("+1-555-01{:02}", index % 100), "use": "home" }],
            "gender": gender,
            "birthDate": format!("{year}-{month}-{day}"),
            "deceasedBoolean": false,
            "address": [{
                "use": "home",
                "type": "physical",
                "line": [format!("{} {} Street", 1 + dice.below(900), dice.pick(&PROVIDER_WORDS))],
                "city": city,
                "state": state,
                "postalCode": zip,
                "country": "US",
                "period": { "start": "2015-01-01" }
            }],
            "communication": [{
                "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "en", "display": "English" }], "text": "English" },
                "preferred": true
            }]
        })
    }

    fn coverage(&self, index: usize) -> Value {
        let identity = Self::identity(index);
        let patient = Self::patient_id(index);
        json!({
            "resourceType": "Coverage",
            "id": format!("coverage-{patient}"),
            "meta": meta("C4BB-Coverage"),
            "identifier": [{
                "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB", "Member Number"),
                "system": MEMBER_ID_SYSTEM,
                "value": identity.member_id
            }],
            "status": "active",
            "type": concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIP", "health insurance plan policy"),
            "subscriberId": identity.member_id,
            "beneficiary": reference("Patient", &patient),
            "relationship": concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self", "Self"),
            "period": { "start": "2023-01-01", "end": "2026-12-31" },
            "payor": [{ "reference": format!("Organization/{PAYER_ID}"), "display": PAYER_NAME }],
            "class": [
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"),
                    "value": "DHP-EMPLOYER-100",
                    "name": "Demo Employer Group"
                },
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"),
                    "value": PLAN.0,
                    "name": PLAN.1
                }
            ]
        })
    }

    fn payer() -> Value {
        json!({
            "resourceType": "Organization",
            "id": PAYER_ID,
            "meta": meta("C4BB-Organization"),
            "identifier": [
                {
                    "type": concept("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "payerid", "Payer ID"),
                    "system": "https://demo-health-plan.example/fhir/payer-id",
                    "value": "DHP-9115"
                },
                {
                    "type": concept("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "naiccode", "NAIC Code"),
                    "system": "urn:oid:2.16.840.1.113883.6.300",
                    "value": "99115"
                }
            ],
            "active": true,
            "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")],
            "name": PAYER_NAME,
            "telecom": [
                { "system": "phone", "value": "+1-555-0100", "use": "work" },
                { "system": "url", "value": "https://demo-health-plan.example" }
            ],
            "address": [{ "line": ["100 Example Plaza"], "city": "Boston", "state": "MA", "postalCode": "02110", "country": "US" }]
        })
    }

    fn provider(&self, k: usize) -> Value {
        let mut dice = Dice::new(k, 2, 0x3F);
        let (city, state, zip) = PLACES[k % PLACES.len()];
        let word = PROVIDER_WORDS[k % PROVIDER_WORDS.len()];
        json!({
            "resourceType": "Organization",
            "id": format!("provider-{k}"),
            "meta": meta("C4BB-Organization"),
            "identifier": [
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "NPI", "National provider identifier"),
                    "system": "http://hl7.org/fhir/sid/us-npi",
                    "value": format!("1{:09}", 100_000_000 + k * 7919 % 800_000_000)
                },
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "TAX", "Tax ID number"),
                    "system": "urn:oid:2.16.840.1.113883.4.4",
                    "value": format!("{:02}-{:07}", 10 + k % 89, 1_000_000 + k * 7_919 % 8_000_000)
                }
            ],
            "active": true,
            "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")],
            "name": format!("{word} {} {}", ["Medical Group", "Community Hospital", "Family Practice", "Health Center"][k % 4], k),
            "telecom": [{ "system": "phone", "value": format!("+1-555-02{:02}", dice.below(100)), "use": "work" }],
            "address": [{ "line": [format!("{} {word} Avenue", 10 + dice.below(890))], "city": city, "state": state, "postalCode": zip, "country": "US" }]
        })
    }

    fn practitioner(&self, k: usize) -> Value {
        let mut dice = Dice::new(k, 3, 0x4A);
        json!({
            "resourceType": "Practitioner",
            "id": format!("practitioner-{k}"),
            "meta": meta("C4BB-Practitioner"),
            "identifier": [
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "NPI", "National provider identifier"),
                    "system": "http://hl7.org/fhir/sid/us-npi",
                    "value": format!("1{:09}", 500_000_000 + k * 104_729 % 400_000_000)
                },
                {
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "TAX", "Tax ID number"),
                    "system": "urn:oid:2.16.840.1.113883.4.4",
                    "value": format!("{:02}-{:07}", 20 + k % 79, 2_000_000 + k * 104_729 % 7_000_000)
                }
            ],
            "active": true,
            "name": [{ "family": dice.pick(&LAST_NAMES), "given": [dice.pick(&FIRST_NAMES)], "prefix": ["Dr."] }]
        })
    }

    fn location(&self, k: usize) -> Value {
        let (city, state, zip) = PLACES[k % PLACES.len()];
        let word = PROVIDER_WORDS[k % PROVIDER_WORDS.len()];
        json!({
            "resourceType": "Location",
            "id": format!("location-{k}"),
            "meta": { "lastUpdated": LAST_UPDATED },
            "status": "active",
            "name": format!("{word} clinic, site {k}"),
            "mode": "instance",
            "type": [concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "OF", "Outpatient facility")],
            "address": { "line": [format!("{} {word} Road", 20 + k % 700)], "city": city, "state": state, "postalCode": zip, "country": "US" },
            "managingOrganization": reference("Organization", &format!("provider-{}", self.manager_of(k)))
        })
    }

    fn adjudication(code: &'static str, display: &'static str, amount: f64) -> Adjudication {
        Adjudication {
            category: Concept::new(
                "http://terminology.hl7.org/CodeSystem/adjudication",
                code,
                display,
            ),
            reason: None,
            amount: Some(Money::usd(amount)),
            value: None,
        }
    }

    /// An adjudication that says a status, not an amount (CARIN's discriminator slices).
    fn status(
        discriminator: &'static str,
        reason: &'static str,
        display: &'static str,
    ) -> Adjudication {
        Adjudication {
            category: Concept::of(Coding::bare(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator",
                discriminator,
            )),
            reason: Some(Concept::new(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus",
                reason,
                display,
            )),
            amount: None,
            value: None,
        }
    }

    /// An adjudication that gives a reason from X12's claim adjustment reason codes
    /// (CARIN's `adjustmentreason` slices).
    fn adjustment_reason() -> Adjudication {
        Adjudication {
            category: Concept::of(Coding::bare(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator",
                "adjustmentreason",
            )),
            reason: Some(Concept::of(Coding::new(
                "https://x12.org/codes/claim-adjustment-reason-codes",
                "45",
                "Charge exceeds fee schedule/maximum allowable",
            ))),
            amount: None,
            value: None,
        }
    }

    /// The units the payer allowed on a line (CARIN's `allowedunits` slice).
    fn allowed_units(units: f64) -> Adjudication {
        Adjudication {
            category: Concept::of(Coding::bare(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator",
                "allowedunits",
            )),
            reason: None,
            amount: None,
            value: Some(units),
        }
    }

    fn supporting(sequence: usize, code: &'static str, display: &'static str) -> SupportingInfo {
        SupportingInfo {
            sequence,
            category: Concept::new(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType",
                code,
                display,
            ),
            code: None,
            timing_date: None,
            timing_period: None,
            value_quantity: None,
            value_string: None,
            value_reference: None,
            reason: None,
        }
    }

    /// A supporting information item whose `code` is one of a code system's.
    fn supporting_code(
        sequence: usize,
        category: (&'static str, &'static str),
        system: &'static str,
        code: &'static str,
    ) -> SupportingInfo {
        SupportingInfo {
            code: Some(Concept::of(Coding::bare(system, code))),
            ..Self::supporting(sequence, category.0, category.1)
        }
    }

    /// A supporting information item whose value is a string.
    fn supporting_text(
        sequence: usize,
        category: (&'static str, &'static str),
        text: String,
    ) -> SupportingInfo {
        SupportingInfo {
            value_string: Some(text),
            ..Self::supporting(sequence, category.0, category.1)
        }
    }

    /// Claim `claim` of `member`, one of the four CARIN kinds in turn.
    fn claim(&self, member: usize, claim: usize) -> ExplanationOfBenefit {
        let kind = Kind::of(claim);
        let mut dice = Dice::new(member, claim + 10, 0x5B);
        let patient = Self::patient_id(member);
        let start = service_date(member * 13 + claim * 17 + dice.below(20));
        let diagnoses: Vec<(&str, &str)> = (0..1 + dice.below(3))
            .map(|_| dice.pick(&DIAGNOSES))
            .collect();
        let header_amounts = Self::has_header_amounts(kind, claim);
        let (items, totals) = Self::claim_lines(
            kind,
            &mut dice,
            &start,
            header_amounts,
            Self::is_transport(kind, claim),
        );
        let provider = format!("provider-{}", self.provider_of(member, claim));
        let supporting_info =
            Self::claim_supporting_info(kind, &mut dice, &start, member, claim, &provider);
        let clinical = kind != Kind::Pharmacy;
        let procedure = (kind == Kind::Inpatient).then(|| Procedure {
            sequence: 1,
            kind: [Concept::new(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimProcedureType",
                "principal",
                "Principal",
            )],
            date: format!("{start}T08:00:00-05:00"),
            procedure_codeable_concept: Concept::of(Coding::new(
                "http://www.cms.gov/Medicare/Coding/ICD10",
                "02703ZZ",
                "Dilation of coronary artery, one artery, percutaneous approach",
            )),
        });
        ExplanationOfBenefit {
            resource_type: "ExplanationOfBenefit",
            id: format!("eob-{patient}-{claim}"),
            // Adjudicated the evening of the service: _lastUpdated searches have something to tell apart.
            meta: Meta {
                last_updated: format!("{start}T18:30:00Z"),
                profile: [profile_url(kind.profile())],
            },
            identifier: [Identifier {
                kind: Concept::new(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType",
                    "uc",
                    "Unique Claim ID",
                ),
                system: CLAIM_ID_SYSTEM,
                value: format!("CLM-{member:06}-{claim:06}"),
            }],
            status: "active",
            kind: kind.claim_type(),
            sub_type: kind.sub_type(),
            use_: "claim",
            patient: Reference::to("Patient", &patient),
            billable_period: Period {
                start: start.clone(),
                end: start.clone(),
            },
            created: format!("{start}T12:00:00-05:00"),
            insurer: Reference {
                reference: format!("Organization/{PAYER_ID}"),
                display: Some(PAYER_NAME),
            },
            provider: Reference::to("Organization", &provider),
            // Each claim replaces an earlier submission of itself: CARIN's `related`.
            related: [Related {
                relationship: Concept::new(
                    "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                    "prior",
                    "Prior Claim",
                ),
                reference: RelatedIdentifier {
                    system: CLAIM_ID_SYSTEM,
                    value: format!("CLM-{member:06}-{claim:06}-0"),
                },
            }],
            payee: Some(Payee {
                kind: Concept::new(
                    "http://terminology.hl7.org/CodeSystem/payeetype",
                    "provider",
                    "Provider",
                ),
                party: Reference::to("Organization", &provider),
            }),
            // Where the service was given: CARIN's professional lines carry a place-of-service
            // code, so the Location is the claim's facility.
            facility: (kind == Kind::Professional).then(|| {
                Reference::to(
                    "Location",
                    &format!("location-{}", self.location_of(member, claim)),
                )
            }),
            outcome: "complete",
            care_team: vec![self.care_team(kind, member, claim)],
            supporting_info,
            diagnosis: if clinical {
                Self::claim_diagnosis(kind, &diagnoses)
            } else {
                Vec::new()
            },
            procedure: procedure.into_iter().collect(),
            insurance: [Insurance {
                focal: true,
                coverage: Reference::to("Coverage", &format!("coverage-{patient}")),
            }],
            item: items,
            adjudication: Self::claim_adjudication(kind, header_amounts.then_some(&totals)),
            total: totals.total(),
            payment: totals.payment(start),
            process_note: [ProcessNote {
                number: 1,
                text: "Processed under the member's Demo Gold PPO plan.",
            }],
        }
    }

    /// The lines of a claim of `kind` serviced on `start`, and what they add up to.
    /// The adjudication of one line: its amounts (unless the claim says them), the
    /// professional line's payment status, and what CARIN's slices ask of each kind.
    fn line_adjudication(kind: Kind, amounts: Option<[f64; 4]>) -> Vec<Adjudication> {
        let Some([charge, allowed, copay, benefit]) = amounts else {
            // A line with adjudication needs its amounts: one without amounts has none.
            return Vec::new();
        };
        let mut adjudication = vec![
            Self::adjudication("submitted", "Submitted Amount", charge),
            Self::adjudication("eligible", "Eligible Amount", allowed),
            Self::adjudication("copay", "CoPay", copay),
            Self::adjudication("benefit", "Benefit Amount", benefit),
        ];
        if kind == Kind::Professional {
            // CARIN's professional claims say the payment status per line.
            adjudication.push(Self::status(
                "benefitpaymentstatus",
                "innetwork",
                "In Network",
            ));
        }
        if kind == Kind::Pharmacy {
            // The line's first submission was rejected, then paid (CARIN's rejectreason).
            adjudication.push(Adjudication {
                category: Concept::of(Coding::bare(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator",
                    "rejectreason",
                )),
                reason: Some(Concept::of(Coding::bare(
                    "http://terminology.hl7.org/CodeSystem/NCPDPRejectCode",
                    "79",
                ))),
                amount: None,
                value: None,
            });
        } else {
            // Allowed below the charge: the fee schedule (X12 reason 45), one unit.
            adjudication.push(Self::adjustment_reason());
            adjudication.push(Self::allowed_units(1.0));
        }
        adjudication
    }

    /// Line `sequence` of a claim of `kind` serviced on `start`, with its adjudication.
    fn line(
        kind: Kind,
        dice: &mut Dice,
        sequence: usize,
        start: &str,
        transport: bool,
        adjudication: Vec<Adjudication>,
    ) -> Item {
        const PLACE_OF_SERVICE: &str =
            "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set";
        const CPT_SYSTEM: &str = "http://www.ama-assn.org/go/cpt";
        match kind {
            Kind::Pharmacy => {
                let (ndc, name) = dice.pick(&DRUGS);
                let quantity = 30 * (1 + dice.below(3));
                Item {
                    sequence,
                    diagnosis_sequence: None,
                    information_sequence: Vec::new(),
                    revenue: None,
                    product_or_service: Concept::new("http://hl7.org/fhir/sid/ndc", ndc, name),
                    modifier: Vec::new(),
                    serviced_date: start.to_owned(),
                    location_codeable_concept: None,
                    quantity: Some(Quantity::count(quantity)),
                    note_number: [1],
                    adjudication,
                    detail: vec![Detail {
                        sequence: 1,
                        product_or_service: Concept::new("http://hl7.org/fhir/sid/ndc", ndc, name),
                        quantity: Quantity::count(quantity),
                    }],
                }
            }
            Kind::Professional => {
                let (code, name) = dice.pick(&CPT);
                Item {
                    sequence,
                    diagnosis_sequence: Some([1]),
                    information_sequence: if transport && sequence == 1 {
                        (5..12).collect()
                    } else {
                        Vec::new()
                    },
                    revenue: None,
                    product_or_service: Concept::new(CPT_SYSTEM, code, name),
                    modifier: vec![Concept::of(Coding::new(
                        CPT_SYSTEM,
                        "25",
                        "Significant, separately identifiable E/M service",
                    ))],
                    serviced_date: start.to_owned(),
                    location_codeable_concept: Some(Concept::new(PLACE_OF_SERVICE, "11", "Office")),
                    quantity: None,
                    note_number: [1],
                    adjudication,
                    detail: Vec::new(),
                }
            }
            Kind::Inpatient | Kind::Outpatient => {
                let (code, name) = dice.pick(&CPT);
                let revenue = Coding::bare(
                    "https://www.nubc.org/CodeSystem/RevenueCodes",
                    dice.pick(&REVENUE),
                );
                let place = if kind == Kind::Inpatient {
                    Concept::new(PLACE_OF_SERVICE, "21", "Inpatient Hospital")
                } else {
                    Concept::new(PLACE_OF_SERVICE, "22", "On Campus-Outpatient Hospital")
                };
                Item {
                    sequence,
                    diagnosis_sequence: None,
                    information_sequence: Vec::new(),
                    revenue: Some(Concept::of(revenue)),
                    product_or_service: Concept::new(CPT_SYSTEM, code, name),
                    modifier: vec![Concept::of(Coding::new(
                        CPT_SYSTEM,
                        "59",
                        "Distinct procedural service",
                    ))],
                    serviced_date: start.to_owned(),
                    location_codeable_concept: Some(place),
                    quantity: Some(Quantity::count(1)),
                    note_number: [1],
                    adjudication,
                    detail: Vec::new(),
                }
            }
        }
    }

    /// `header_amounts`: the amounts are the claim's, not its lines' (CARIN lets an
    /// institutional claim say them at one level, not both); `transport`: the supporting
    /// information from sequence 5 on is an ambulance ride the first line refers to.
    fn claim_lines(
        kind: Kind,
        dice: &mut Dice,
        start: &str,
        header_amounts: bool,
        transport: bool,
    ) -> (Vec<Item>, Totals) {
        let item_count = match kind {
            Kind::Inpatient => 3 + dice.below(5),
            Kind::Pharmacy => 1,
            _ => 1 + dice.below(4),
        };
        let mut items = Vec::with_capacity(item_count);
        let (mut submitted, mut eligible, mut paid, mut member_paid) = (0.0, 0.0, 0.0, 0.0);
        for sequence in 1..=item_count {
            let charge = dice.dollars(40, 900);
            let allowed = (charge * 0.75 * 100.0).round() / 100.0;
            let copay = [0.0_f64, 10.0, 20.0, 35.0][dice.below(4)].min(allowed);
            let benefit = ((allowed - copay) * 100.0).round() / 100.0;
            submitted += charge;
            eligible += allowed;
            paid += benefit;
            member_paid += copay;
            let adjudication = Self::line_adjudication(
                kind,
                (!header_amounts).then_some([charge, allowed, copay, benefit]),
            );
            items.push(Self::line(
                kind,
                dice,
                sequence,
                start,
                transport,
                adjudication,
            ));
        }
        (
            items,
            Totals {
                submitted,
                eligible,
                paid,
                member_paid,
            },
        )
    }

    /// The supporting information of a claim of `kind` serviced on `start`.
    fn claim_supporting_info(
        kind: Kind,
        dice: &mut Dice,
        start: &str,
        member: usize,
        claim: usize,
        provider: &str,
    ) -> Vec<SupportingInfo> {
        let mut supporting_info = vec![SupportingInfo {
            timing_date: Some(start.to_owned()),
            ..Self::supporting(1, "clmrecvddate", "Claim Received Date")
        }];
        match kind {
            Kind::Pharmacy => supporting_info.extend(Self::pharmacy_info(dice)),
            Kind::Inpatient | Kind::Outpatient => {
                let mut next = 2;
                if kind == Kind::Inpatient {
                    supporting_info.push(SupportingInfo {
                        timing_period: Some(Period {
                            start: start.to_owned(),
                            end: start.to_owned(),
                        }),
                        ..Self::supporting(2, "admissionperiod", "Admission Period")
                    });
                    next = 3;
                }
                let bill = if kind == Kind::Inpatient {
                    "0111"
                } else {
                    "0131"
                };
                let nubc = [
                    (
                        ("typeofbill", "Type of Bill"),
                        "https://www.nubc.org/CodeSystem/TypeOfBill",
                        bill,
                    ),
                    (
                        ("pointoforigin", "Point Of Origin"),
                        "https://www.nubc.org/CodeSystem/PointOfOrigin",
                        "1",
                    ),
                    (
                        ("admtype", "Admission Type"),
                        "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit",
                        "3",
                    ),
                    (
                        ("discharge-status", "Discharge Status"),
                        "https://www.nubc.org/CodeSystem/PatDischargeStatus",
                        "01",
                    ),
                ];
                for (category, system, code) in nubc {
                    supporting_info.push(Self::supporting_code(next, category, system, code));
                    next += 1;
                }
                if kind == Kind::Inpatient {
                    supporting_info.push(Self::supporting_code(
                        next,
                        ("drg", "DRG"),
                        "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/MS-DRG-Classifications-and-Software",
                        "247",
                    ));
                    next += 1;
                }
                supporting_info.extend(Self::record_numbers(next, member, claim));
            }
            Kind::Professional => {
                supporting_info.push(SupportingInfo {
                    value_reference: Some(Reference::to("Organization", provider)),
                    ..Self::supporting(2, "servicefacility", "Service Facility")
                });
                supporting_info.extend(Self::record_numbers(3, member, claim));
                if Self::is_transport(kind, claim) {
                    supporting_info.extend(Self::transport(5));
                }
            }
        }
        supporting_info
    }

    /// A pharmacy claim's supporting information after the received date.
    fn pharmacy_info(dice: &mut Dice) -> Vec<SupportingInfo> {
        let days = 30 * (1 + dice.below(3));
        let refills = dice.below(3);
        vec![
            SupportingInfo {
                value_quantity: Some(Quantity::count(days)),
                ..Self::supporting(2, "dayssupply", "Days Supply")
            },
            SupportingInfo {
                code: Some(Concept::of(Coding::bare(
                    "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode",
                    "0",
                ))),
                ..Self::supporting(3, "dawcode", "Dispense As Written (DAW) Code")
            },
            SupportingInfo {
                value_quantity: Some(Quantity::count(refills)),
                ..Self::supporting(4, "refillnum", "Refill Number")
            },
            SupportingInfo {
                value_quantity: Some(Quantity::count(3)),
                ..Self::supporting(5, "refillsauthorized", "Refills Authorized")
            },
            Self::supporting_code(
                6,
                ("brandgenericindicator", "Brand Generic Indicator"),
                "http://terminology.hl7.org/CodeSystem/NCPDPBrandGenericIndicator",
                "1",
            ),
            Self::supporting_code(
                7,
                ("rxorigincode", "Rx Origin Code"),
                "http://terminology.hl7.org/CodeSystem/NCPDPPrescriptionOriginCode",
                "1",
            ),
            Self::supporting_code(
                8,
                ("compoundcode", "Compound Code"),
                "http://terminology.hl7.org/CodeSystem/NCPDPCompoundCode",
                "1",
            ),
        ]
    }

    /// Every third professional claim is an ambulance ride (CARIN's transport slices).
    fn is_transport(kind: Kind, claim: usize) -> bool {
        kind == Kind::Professional && claim.is_multiple_of(3)
    }

    /// Every other cycle, an institutional claim says its amounts at the claim level, not
    /// per line.
    fn has_header_amounts(kind: Kind, claim: usize) -> bool {
        matches!(kind, Kind::Inpatient | Kind::Outpatient) && (claim / 4) % 2 == 1
    }

    /// The provider's medical record and patient account numbers for the claim.
    fn record_numbers(sequence: usize, member: usize, claim: usize) -> [SupportingInfo; 2] {
        [
            Self::supporting_text(
                sequence,
                ("medicalrecordnumber", "Medical Record Number"),
                format!("MRN-{member:06}"),
            ),
            Self::supporting_text(
                sequence + 1,
                ("patientaccountnumber", "Patient Account Number"),
                format!("ACCT-{member:06}-{claim:04}"),
            ),
        ]
    }

    /// An ambulance ride's supporting information, from `sequence` on.
    fn transport(sequence: usize) -> Vec<SupportingInfo> {
        vec![
            SupportingInfo {
                value_quantity: Some(Quantity::ucum(160, "[lb_av]")),
                ..Self::supporting(sequence, "patientweight", "Patient Weight")
            },
            SupportingInfo {
                reason: Some(Coding::new(
                    "https://x12.org/codesystem.x12.org/ambulance-transport-reason-codes",
                    "A",
                    "Patient was transported to nearest facility for care of symptoms, complaints, or both",
                )),
                ..Self::supporting(
                    sequence + 1,
                    "ambulancetransportreason",
                    "Ambulance Transport Reason",
                )
            },
            SupportingInfo {
                value_quantity: Some(Quantity::ucum(12, "[mi_i]")),
                ..Self::supporting(
                    sequence + 2,
                    "transportationdistance",
                    "Transportation Distance",
                )
            },
            Self::supporting_text(
                sequence + 3,
                ("roudtrippurpose", "Round Trip Purpose Description"),
                "To the clinic and back home".into(),
            ),
            Self::supporting_text(
                sequence + 4,
                ("stretcherpurpose", "Stretcher Purpose Description"),
                "The member could not sit upright".into(),
            ),
            Self::supporting_text(
                sequence + 5,
                ("pickuplocation", "Pick Up Location"),
                "Member's home".into(),
            ),
            Self::supporting_text(
                sequence + 6,
                ("dropofflocation", "Drop Off Location"),
                "The clinic".into(),
            ),
        ]
    }

    /// The claim-level adjudication: the network statuses.
    fn claim_adjudication(kind: Kind, amounts: Option<&Totals>) -> Vec<Adjudication> {
        let mut adjudication = vec![Self::status(
            "billingnetworkstatus",
            "innetwork",
            "In Network",
        )];
        if kind != Kind::Professional {
            adjudication.push(Self::status(
                "benefitpaymentstatus",
                "innetwork",
                "In Network",
            ));
        }
        match kind {
            Kind::Professional => adjudication.push(Self::status(
                "renderingnetworkstatus",
                "innetwork",
                "In Network",
            )),
            Kind::Inpatient | Kind::Outpatient => {
                if let Some(totals) = amounts {
                    adjudication.extend([
                        Self::adjudication(
                            "submitted",
                            "Submitted Amount",
                            round(totals.submitted),
                        ),
                        Self::adjudication("eligible", "Eligible Amount", round(totals.eligible)),
                        Self::adjudication("benefit", "Benefit Amount", round(totals.paid)),
                    ]);
                }
                adjudication.push(Self::adjustment_reason());
            }
            Kind::Pharmacy => {}
        }
        adjudication
    }

    /// The care team of a clinical claim: its rendering or attending practitioner.
    fn care_team(&self, kind: Kind, member: usize, claim: usize) -> CareTeam {
        CareTeam {
            sequence: 1,
            provider: Reference::to(
                "Practitioner",
                &format!("practitioner-{}", self.practitioner_of(member, claim)),
            ),
            role: match kind {
                Kind::Professional => Concept::new(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole",
                    "rendering",
                    "Rendering provider",
                ),
                Kind::Pharmacy => Concept::new(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole",
                    "prescribing",
                    "Prescribing provider",
                ),
                _ => Concept::new(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole",
                    "attending",
                    "Attending",
                ),
            },
            // The rendering practitioner's specialty, from NUCC's provider taxonomy.
            qualification: (kind == Kind::Professional).then(|| {
                Concept::new(
                    "http://nucc.org/provider-taxonomy",
                    "207Q00000X",
                    "Family Medicine Physician",
                )
            }),
        }
    }

    /// The diagnoses of a clinical claim: the first principal, the others secondary or other.
    fn claim_diagnosis(kind: Kind, diagnoses: &[(&'static str, &'static str)]) -> Vec<Diagnosis> {
        diagnoses
            .iter()
            .enumerate()
            .map(|(n, &(code, name))| Diagnosis {
                sequence: n + 1,
                diagnosis_codeable_concept: Concept::of(Coding::new(
                    "http://hl7.org/fhir/sid/icd-10-cm",
                    code,
                    name,
                )),
                kind: [match (n, kind) {
                    (0, _) => Concept::new(
                        "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                        "principal",
                        "Principal Diagnosis",
                    ),
                    (_, Kind::Professional) => Concept::new(
                        "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType",
                        "secondary",
                        "Secondary",
                    ),
                    _ => Concept::new(
                        "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType",
                        "other",
                        "Other",
                    ),
                }],
                on_admission: (kind == Kind::Inpatient).then(|| {
                    Concept::of(Coding::new(
                        "https://www.nubc.org/CodeSystem/PresentOnAdmissionIndicator",
                        "Y",
                        "Diagnosis was present at the time of inpatient admission",
                    ))
                }),
            })
            .collect()
    }

    /// The member's Patient id and the Practitioner, Organization and Location their
    /// clinical data names (those of their first claim).
    fn owner_ids(&self, member: usize) -> (String, String, String, String) {
        (
            Self::patient_id(member),
            format!("practitioner-{}", self.practitioner_of(member, 0)),
            format!("provider-{}", self.provider_of(member, 0)),
            format!("location-{}", self.location_of(member, 0)),
        )
    }

    fn shared(&self, kind: &str, id: &str) -> Option<Value> {
        let number = |prefix: &str| -> Option<usize> {
            let digits = id.strip_prefix(prefix)?;
            let k: usize = digits.parse().ok()?;
            (k.to_string() == digits && k < self.pool()).then_some(k)
        };
        match kind {
            "Organization" if id == PAYER_ID => Some(Self::payer()),
            "Organization" => number("provider-").map(|k| self.provider(k)),
            "Practitioner" => number("practitioner-").map(|k| self.practitioner(k)),
            "Location" => number("location-").map(|k| self.location(k)),
            _ => None,
        }
    }
}

impl Store for Generated {
    fn member_count(&self) -> usize {
        self.members
    }

    fn member(&self, index: usize) -> Option<Member> {
        (index < self.members).then(|| Member {
            index,
            patient_id: Self::patient_id(index),
            identity: Some(Self::identity(index)),
        })
    }

    fn find_member(&self, typed: &Identity) -> Option<Member> {
        let member_id = typed.member_id.trim();
        let index = if member_id == JOHN_ALLEN.3 {
            0
        } else {
            let digits = member_id.strip_prefix("9115").filter(|d| d.len() == 8)?;
            digits.parse().ok().filter(|&i: &usize| i > 0)?
        };
        self.member(index)
            .filter(|m| m.identity.as_ref().is_some_and(|id| id.matches(typed)))
    }

    fn resource_types(&self) -> Vec<String> {
        let mut types: Vec<String> = REQUIRED_TYPES
            .iter()
            .chain(clinical::CLINICAL_TYPES.iter())
            .map(|t| (*t).to_owned())
            .collect();
        types.sort();
        types
    }

    fn count(&self, member: usize, kind: &str) -> usize {
        if member >= self.members {
            return 0;
        }
        match kind {
            "Patient" | "Coverage" => 1,
            "ExplanationOfBenefit" => self.eobs_per_member,
            "Organization" | "Practitioner" | "Location" => self.shared_ids(member, kind).len(),
            _ => clinical::count(kind),
        }
    }

    fn page(&self, member: usize, kind: &str, offset: usize, limit: usize) -> Vec<Value> {
        if member >= self.members {
            return Vec::new();
        }
        let end = offset.saturating_add(limit).min(self.count(member, kind));
        match kind {
            "Patient" => (offset..end).map(|_| self.patient(member)).collect(),
            "Coverage" => (offset..end).map(|_| self.coverage(member)).collect(),
            // A page of claims is generated on every core: a member with 100,000 claims is
            // read a thousand pages at a time, and the sandbox should not be the slow part.
            "ExplanationOfBenefit" => self
                .serve(member, kind, offset, limit)
                .into_iter()
                .map(Doc::into_value)
                .collect(),
            "Organization" | "Practitioner" | "Location" => self
                .shared_ids(member, kind)
                .get(offset..end)
                .unwrap_or_default()
                .iter()
                .filter_map(|id| self.shared(kind, id))
                .collect(),
            _ => {
                let (patient, practitioner, organization, location) = self.owner_ids(member);
                let owner = clinical::Owner {
                    patient: &patient,
                    practitioner: &practitioner,
                    organization: &organization,
                    location: &location,
                };
                (offset..end)
                    .filter_map(|n| clinical::resource(kind, n, &owner))
                    .collect()
            }
        }
    }

    fn serve(&self, member: usize, kind: &str, offset: usize, limit: usize) -> Vec<Doc> {
        if kind != "ExplanationOfBenefit" {
            return self
                .page(member, kind, offset, limit)
                .into_iter()
                .map(Doc::Value)
                .collect();
        }
        // A page of claims is written on every core: a member with 100,000 claims is read a
        // thousand pages at a time, and the sandbox should not be the slow part.
        use rayon::prelude::*;
        let end = offset.saturating_add(limit).min(self.count(member, kind));
        (offset..end)
            .into_par_iter()
            .map(|j| {
                let claim = self.claim(member, j);
                Doc::Text {
                    kind: "ExplanationOfBenefit",
                    // Serializing plain structs of strings and numbers cannot fail.
                    json: serde_json::to_vec(&claim).unwrap_or_default(),
                    id: claim.id,
                }
            })
            .collect()
    }

    fn read(&self, member: usize, kind: &str, id: &str) -> Option<Value> {
        let patient = Self::patient_id(member);
        match kind {
            "Patient" => (self.member_index(id) == Some(member)).then(|| self.patient(member)),
            "Coverage" => (id == format!("coverage-{patient}")).then(|| self.coverage(member)),
            "ExplanationOfBenefit" => {
                let claim: usize = id.strip_prefix(&format!("eob-{patient}-"))?.parse().ok()?;
                (claim < self.eobs_per_member && id == format!("eob-{patient}-{claim}"))
                    .then(|| serde_json::to_value(self.claim(member, claim)).ok())
                    .flatten()
            }
            "Organization" | "Practitioner" | "Location" => {
                if self.shared_ids(member, kind).iter().any(|mine| mine == id) {
                    self.shared(kind, id)
                } else {
                    None
                }
            }
            _ => {
                let n = clinical::index_of(kind, &patient, id)?;
                self.page(member, kind, n, 1).into_iter().next()
            }
        }
    }

    fn foreign(&self, member: usize, kind: &str) -> Option<Value> {
        let other = (member + 1) % self.members;
        match kind {
            "Patient" | "Coverage" | "ExplanationOfBenefit" if other != member => {
                self.page(other, kind, 0, 1).into_iter().next()
            }
            _ if clinical::is_clinical(kind) && other != member => {
                self.page(other, kind, 0, 1).into_iter().next()
            }
            "Organization" | "Practitioner" | "Location" => {
                let mine = self.shared_ids(member, kind);
                let prefix = match kind {
                    "Organization" => "provider-",
                    "Practitioner" => "practitioner-",
                    _ => "location-",
                };
                (0..self.pool())
                    .map(|k| format!("{prefix}{k}"))
                    .find(|id| !mine.contains(id))
                    .and_then(|id| self.shared(kind, &id))
            }
            _ => None,
        }
    }
}

/// What a claim's lines add up to.
struct Totals {
    submitted: f64,
    eligible: f64,
    paid: f64,
    member_paid: f64,
}

/// Money rounded to the cent.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Totals {
    /// The claim's totals: submitted, eligible, paid and the member's liability.
    fn total(&self) -> Vec<Adjudication> {
        vec![
            Generated::adjudication("submitted", "Submitted Amount", round(self.submitted)),
            Generated::adjudication("eligible", "Eligible Amount", round(self.eligible)),
            Generated::adjudication("benefit", "Benefit Amount", round(self.paid)),
            Adjudication {
                category: Concept::new(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication",
                    "memberliability",
                    "Member liability",
                ),
                reason: None,
                amount: Some(Money::usd(round(self.member_paid))),
                value: None,
            },
        ]
    }

    /// The payment of the claim, made on `date`.
    fn payment(&self, date: String) -> Payment {
        Payment {
            kind: Concept::new(
                "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus",
                "paid",
                "Paid",
            ),
            date,
            amount: Money::usd(round(self.paid)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{Tier, Validator};

    /// The generated claims are the same from one release to the next (the fixtures of
    /// users' tests and every benchmark read them): their digest is pinned.
    #[test]
    fn generated_claims_do_not_change() {
        use sha2::Digest as _;
        let plan = Generated::new(3, 8);
        let mut digest = sha2::Sha256::new();
        for member in 0..3 {
            for resource in plan.page(member, "ExplanationOfBenefit", 0, 100) {
                digest.update(serde_json::to_string(&resource).expect("serializes"));
            }
        }
        let hex: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "9e99ee90d8ae27d5f3473d7def4f147e632049bf551dc243540d1edf8ceaf30e"
        );
    }

    /// Every generated resource is valid at every tier: R4 structure, and the CARIN profile
    /// it declares and the ones the run applies by default.
    #[test]
    fn generated_members_conform_to_carin() {
        let (profiles, _) = crate::validate::catalog::Catalog::global()
            .ig(crate::validate::catalog::CARIN)
            .expect("CARIN ships");
        let defaults: Vec<&str> = profiles
            .supported
            .values()
            .flat_map(|urls| urls.iter().map(|u| &**u))
            .collect();
        let validator = Validator::new(Tier::Profile)
            .with_profiles(&defaults)
            .expect("the IG's profiles");
        let plan = Generated::new(3, 8);
        let mut problems = Vec::new();
        for member in 0..3 {
            for kind in REQUIRED_TYPES {
                for resource in plan.page(member, kind, 0, 100) {
                    let text = serde_json::to_string(&resource).expect("serializes");
                    let checked = validator.check_bytes(text.as_bytes());
                    for finding in checked.findings {
                        problems.push(format!(
                            "{} {} [{} {}] {}",
                            finding.resource.unwrap_or_default(),
                            finding.path,
                            finding.tier.name(),
                            finding.rule,
                            finding.message
                        ));
                    }
                }
            }
        }
        problems.sort();
        problems.dedup();
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}
