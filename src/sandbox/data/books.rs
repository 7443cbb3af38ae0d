//! The demo health plan's public books: its Provider Directory (Da Vinci PDex Plan-Net
//! 1.1.0) and its drug formulary (Da Vinci PDex US Drug Formulary 2.0.1), grown from the
//! IG packages' own examples, which pass every tier against their profiles.
//!
//! Each example is a template. It is copied as often as the directory's size asks (a
//! directory of 10,000 practitioners has 50,000 PractitionerRoles), copy `k` of a template
//! referencing copy `k mod n` of each template it references, so the examples' graph of
//! references is kept, whole, at any scale. Copy 0 is the example itself; the others
//! differ where a search tells them apart (names, cities, identifiers). The plan's own
//! InsurancePlan in each book is the plan the members' Coverage names. Faults that change
//! resources (`profile-violation`, `dangling-reference`, ...) are applied as the books grow.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::validate::catalog::SHIPPED;

pub use crate::payer::public::Book;

/// Where the sandbox serves `book`.
pub fn path(book: Book) -> &'static str {
    match book {
        Book::Directory => "/directory/r4",
        Book::Formulary => "/formulary/r4",
    }
}

/// How many resources of `kind` a book of `size` practitioners holds in all.
fn total(book: Book, kind: &str, size: usize) -> usize {
    match (book, kind) {
        (Book::Directory, "Practitioner") => size,
        (Book::Directory, "PractitionerRole") => size * 5,
        (Book::Directory, "Location") => size / 5,
        (
            Book::Directory,
            "HealthcareService" | "OrganizationAffiliation" | "Organization" | "Endpoint",
        ) => size / 10,
        _ => 0,
    }
}

/// One resource of a book, serialized once.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub json: Box<[u8]>,
}

/// What a growing book does to its resources on purpose.
#[derive(Debug, Default, Clone)]
pub struct Breaks {
    /// The first resource of these types loses an element its profile requires and R4 does
    /// not.
    pub profile: Vec<String>,
    /// The first resource of these types references `Organization/gone`.
    pub dangling: Vec<String>,
    /// Every resource of these types has a `meta.lastUpdated` that is no instant.
    pub invalid: Vec<String>,
}

/// The resources of one book, by type, in the order they grew.
#[derive(Debug)]
pub struct Listing {
    types: BTreeMap<String, Vec<Entry>>,
    index: HashMap<String, usize>,
    /// What a search matched, by its filters, so that each page of it does not search again
    /// (a real server keeps a cursor).
    found: Mutex<HashMap<String, Arc<Vec<usize>>>>,
    /// Per `Source:code`, which resources of `Source` reference each `Type/id` through
    /// `code`: what `_revinclude` brings, found once.
    referrers: Mutex<HashMap<String, Arc<Referrers>>>,
}

/// Per `Type/id`, the positions of the resources that reference it.
pub type Referrers = HashMap<String, Vec<usize>>;

/// The most searches [`Listing`] remembers the matches of.
const REMEMBERED: usize = 32;

/// `(family, given)` names the copies take turns with.
const NAMES: &[(&str, &str)] = &[
    ("Nguyen", "Ana"),
    ("Okafor", "Chidi"),
    ("Schmidt", "Lena"),
    ("García", "Mateo"),
    ("Kowalski", "Piotr"),
    ("Haddad", "Rania"),
    ("Tanaka", "Yuki"),
    ("Johnson", "Marcus"),
    ("Müller", "Jonas"),
    ("O'Brien", "Siobhan"),
    ("Patel", "Priya"),
    ("Silva", "Rafael"),
];

/// `(city, state, postal code, latitude, longitude)` the copies take turns with.
const PLACES: &[(&str, &str, &str, f64, f64)] = &[
    ("Boston", "MA", "02114", 42.36, -71.06),
    ("Hartford", "CT", "06103", 41.76, -72.67),
    ("Providence", "RI", "02903", 41.82, -71.41),
    ("Springfield", "MA", "01103", 42.10, -72.59),
    ("New Haven", "CT", "06510", 41.31, -72.92),
    ("Worcester", "MA", "01608", 42.26, -71.80),
];

impl Listing {
    /// The book grown to `size` practitioners (the formulary does not grow), its plan
    /// InsurancePlan identified as `plan` (`(identifier, name)`).
    pub fn grow(book: Book, size: usize, plan: (&str, &str), breaks: &Breaks) -> Self {
        let templates = examples(book);
        let mut per_type: HashMap<&str, usize> = HashMap::new();
        for template in &templates {
            *per_type.entry(kind_of(template)).or_default() += 1;
        }
        let copies: HashMap<String, usize> = templates
            .iter()
            .map(|t| {
                let kind = kind_of(t);
                let total = total(book, kind, size);
                let n = total.div_ceil(per_type[kind]).max(1);
                (format!("{kind}/{}", id_of(t)), n)
            })
            .collect();
        let plan_template = templates
            .iter()
            .find(|t| declares(t, "plannet-InsurancePlan") || declares(t, "PayerInsurancePlan"))
            .map(|t| id_of(t).to_owned());
        let mut listing = Self {
            types: BTreeMap::new(),
            index: HashMap::new(),
            found: Mutex::default(),
            referrers: Mutex::default(),
        };
        for template in &templates {
            let kind = kind_of(template).to_owned();
            let n = copies[&format!("{kind}/{}", id_of(template))];
            let mut template = template.clone();
            complete(book, &mut template);
            for k in 0..n {
                let mut resource = copy(&template, k, &copies);
                if k == 0 && plan_template.as_deref() == Some(id_of(&template)) {
                    resource["identifier"] = json!([{ "value": plan.0 }]);
                    resource["name"] = json!(plan.1);
                }
                let first = listing.types.get(&kind).is_none_or(Vec::is_empty);
                breaks.apply(&kind, first, &mut resource);
                listing.push(&kind, &resource);
            }
        }
        listing
    }

    fn push(&mut self, kind: &str, resource: &Value) {
        let id = id_of(resource).to_owned();
        let json = serde_json::to_vec(resource).unwrap_or_default().into();
        let list = self.types.entry(kind.to_owned()).or_default();
        self.index.insert(format!("{kind}/{id}"), list.len());
        list.push(Entry { id, json });
    }

    /// The types it serves.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// Every resource of `kind`, in order.
    pub fn all(&self, kind: &str) -> &[Entry] {
        self.types.get(kind).map_or(&[], Vec::as_slice)
    }

    /// The resource `Type/id`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        let (kind, _) = key.split_once('/')?;
        self.types.get(kind)?.get(*self.index.get(key)?)
    }

    /// The positions among `kind`'s resources that the search `key` matches: found by
    /// `search` the first time, remembered after (the most recent [`REMEMBERED`]).
    pub fn matches(&self, key: &str, search: impl FnOnce() -> Vec<usize>) -> Arc<Vec<usize>> {
        if let Some(found) = self
            .found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Arc::clone(found);
        }
        let found = Arc::new(search());
        let mut all = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() >= REMEMBERED {
            all.clear();
        }
        all.insert(key.to_owned(), Arc::clone(&found));
        found
    }

    /// Which of `source`'s resources reference each `Type/id` through `parameter` (one
    /// reading of them all, the first time).
    pub fn referrers(
        &self,
        source: &str,
        parameter: &crate::payer::search::Parameter,
    ) -> Arc<Referrers> {
        let key = format!("{source}:{}", parameter.code);
        if let Some(known) = self
            .referrers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Arc::clone(known);
        }
        use rayon::prelude::*;
        let referenced: Vec<Vec<String>> = self
            .all(source)
            .par_iter()
            .map(|entry| {
                serde_json::from_slice::<Value>(&entry.json)
                    .map(|resource| parameter.referenced(&resource))
                    .unwrap_or_default()
            })
            .collect();
        let mut index = Referrers::new();
        for (at, targets) in referenced.into_iter().enumerate() {
            for target in targets {
                index.entry(target).or_default().push(at);
            }
        }
        let index = Arc::new(index);
        self.referrers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&index));
        index
    }
}

impl Breaks {
    fn apply(&self, kind: &str, first: bool, resource: &mut Value) {
        let named = |list: &[String]| list.iter().any(|k| k == kind);
        if first && named(&self.profile) {
            crate::sandbox::fhir::leave_out_required(resource);
        }
        if first && named(&self.dangling) {
            crate::sandbox::fhir::dangle(resource, "Organization/gone");
        }
        if named(&self.invalid) {
            resource["meta"]["lastUpdated"] = json!("not-an-instant");
        }
    }
}

fn kind_of(resource: &Value) -> &str {
    resource["resourceType"].as_str().unwrap_or_default()
}

fn id_of(resource: &Value) -> &str {
    resource["id"].as_str().unwrap_or_default()
}

fn declares(resource: &Value, name: &str) -> bool {
    resource["meta"]["profile"].as_array().is_some_and(|all| {
        all.iter()
            .filter_map(Value::as_str)
            .any(|p| p.ends_with(name))
    })
}

/// The id of copy `k` of the template `id`.
fn copy_id(id: &str, k: usize) -> String {
    if k == 0 {
        id.to_owned()
    } else {
        format!("{id}-{k}")
    }
}

/// Copy `k` of `template`: its id, its references (to copy `k mod n` of what it references)
/// and, past copy 0, the values searches tell apart.
fn copy(template: &Value, k: usize, copies: &HashMap<String, usize>) -> Value {
    let mut resource = template.clone();
    resource["id"] = json!(copy_id(id_of(template), k));
    repoint(&mut resource, k, copies);
    if k == 0 {
        return resource;
    }
    if let Some(identifiers) = resource.get_mut("identifier").and_then(Value::as_array_mut) {
        for identifier in identifiers {
            if let Some(value) = identifier["value"].as_str() {
                identifier["value"] = json!(format!("{value}-{k}"));
            }
        }
    }
    let (family, given) = NAMES[k % NAMES.len()];
    match kind_of(template) {
        "Practitioner" => {
            resource["name"] = json!([{
                "text": format!("{given} {family}, MD"),
                "family": family,
                "given": [given],
            }]);
        }
        "Location" => {
            let (city, state, postal, latitude, longitude) = PLACES[k % PLACES.len()];
            resource["name"] = json!(format!(
                "{} {k}",
                resource["name"].as_str().unwrap_or("Location")
            ));
            if resource["address"].is_object() {
                resource["address"]["city"] = json!(city);
                resource["address"]["state"] = json!(state);
                resource["address"]["postalCode"] = json!(postal);
            }
            if resource["position"].is_object() {
                let step = (k % 97) as f64 / 1000.0;
                resource["position"] =
                    json!({ "latitude": latitude + step, "longitude": longitude - step });
            }
        }
        _ => {
            if let Some(name) = resource["name"].as_str() {
                resource["name"] = json!(format!("{name} {k}"));
            }
        }
    }
    resource
}

const PLAN_NET_SD: &str = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/";

/// What the examples leave out and their profiles make must-support (or a search needs a
/// value of), added where a template has none: references name other templates.
fn complete(book: Book, resource: &mut Value) {
    let kind = kind_of(resource).to_owned();
    if book == Book::Formulary {
        if kind == "MedicationKnowledge" {
            add(
                resource,
                "doseForm",
                json!({ "coding": [{ "system": "http://snomed.info/sct", "code": "385055001", "display": "Tablet" }] }),
            );
        }
        return;
    }
    let network = declares(resource, "plannet-Network");
    add(
        resource,
        "identifier",
        json!([{ "value": format!("{kind}-ID") }]),
    );
    for identifier in items(resource, "identifier") {
        let code = if network { "NPI" } else { "PRN" };
        add(
            identifier,
            "type",
            json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code }] }),
        );
        if network {
            add(
                identifier,
                "system",
                json!("http://hl7.org/fhir/sid/us-npi"),
            );
            identifier["value"] = json!("1234567893");
        }
    }
    match kind.as_str() {
        "Endpoint" => {
            add(
                resource,
                "managingOrganization",
                json!({ "reference": "Organization/Acme" }),
            );
            add(
                resource,
                "contact",
                json!([{ "system": "email", "value": "fhir-support@acme.example" }]),
            );
            add(
                resource,
                "payloadMimeType",
                json!(["application/fhir+json"]),
            );
        }
        "HealthcareService" => complete_service(resource),
        "InsurancePlan" => complete_plan(resource),
        "Location" => complete_location(resource),
        "Organization" => complete_organization(resource, network),
        "OrganizationAffiliation" => {
            add(
                resource,
                "period",
                json!({ "start": "2026-01-01", "end": "2026-12-31" }),
            );
            add(resource, "telecom", phone(Vec::new()));
            add(resource, "endpoint", endpoints());
        }
        "Practitioner" => complete_practitioner(resource),
        "PractitionerRole" => complete_role(resource),
        _ => {}
    }
}

/// A phone number, with `with` as its extensions.
fn phone(with: Vec<Value>) -> Value {
    let mut telecom = json!({ "system": "phone", "value": "(860)-555-0100", "rank": 1 });
    if !with.is_empty() {
        telecom["extension"] = Value::Array(with);
    }
    json!([telecom])
}

/// Plan-Net's hours of a contact point.
fn hours() -> Value {
    json!({
        "url": format!("{PLAN_NET_SD}contactpoint-availabletime"),
        "extension": [
            { "url": "daysOfWeek", "valueCode": "mon" },
            { "url": "daysOfWeek", "valueCode": "wed" },
            { "url": "availableStartTime", "valueTime": "08:00:00" },
            { "url": "availableEndTime", "valueTime": "17:00:00" },
        ],
    })
}

/// Plan-Net's "reached through" extension of a contact point.
fn via() -> Value {
    json!({ "url": format!("{PLAN_NET_SD}via-intermediary"), "valueReference": { "reference": "Organization/Acme" } })
}

fn endpoints() -> Value {
    json!([{ "reference": "Endpoint/AcmeOfCTPortalEndpoint" }])
}

fn available() -> Value {
    json!([{ "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"], "allDay": false, "availableStartTime": "08:00:00", "availableEndTime": "17:00:00" }])
}

fn closed() -> Value {
    json!([{ "description": "Closed for the holidays", "during": { "start": "2026-12-24", "end": "2026-12-26" } }])
}

fn geolocation() -> Value {
    json!({ "url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [
        { "url": "latitude", "valueDecimal": 41.76 }, { "url": "longitude", "valueDecimal": -72.67 },
    ] })
}

fn address() -> Value {
    json!([{
        "extension": [geolocation()],
        "type": "physical", "text": "1 Main Street, Hartford, CT 06103", "line": ["1 Main Street"],
        "city": "Hartford", "state": "CT", "postalCode": "06103", "country": "US",
    }])
}

fn complete_service(resource: &mut Value) {
    add(
        resource,
        "type",
        json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "8", "display": "Home Care/Housekeeping Assistance" }] }]),
    );
    add(resource, "comment", json!("Walk-ins welcome"));
    add(resource, "telecom", phone(vec![hours()]));
    add(
        resource,
        "coverageArea",
        json!([{ "reference": "Location/StateOfCTLocation" }]),
    );
    add(resource, "appointmentRequired", json!(false));
    add(resource, "availableTime", available());
    add(resource, "notAvailable", closed());
    add(
        resource,
        "availabilityExceptions",
        json!("Closed on public holidays"),
    );
    add(resource, "endpoint", endpoints());
}

fn complete_plan(resource: &mut Value) {
    for identifier in items(resource, "identifier") {
        add(
            identifier,
            "assigner",
            json!({ "reference": "Organization/Acme" }),
        );
    }
    add(resource, "alias", json!(["Acme Plan"]));
    add(
        resource,
        "period",
        json!({ "start": "2026-01-01", "end": "2026-12-31" }),
    );
    add(
        resource,
        "contact",
        json!([{
            "purpose": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/contactentity-type", "code": "PATINF" }] },
            "name": { "text": "Member services" },
            "telecom": [{ "system": "phone", "value": "(860)-555-0101" }],
        }]),
    );
    for plan in items(resource, "plan") {
        add(
            plan,
            "coverageArea",
            json!([{ "reference": "Location/StateOfCTLocation" }]),
        );
    }
}

fn complete_location(resource: &mut Value) {
    add(resource, "alias", json!(["Main office"]));
    add(resource, "description", json!("Where members are seen"));
    add(resource, "telecom", phone(vec![hours()]));
    for telecom in items(resource, "telecom") {
        add(telecom, "extension", json!([]));
        if let Some(list) = telecom["extension"].as_array_mut() {
            list.push(via());
        }
    }
    if id_of(resource) != "StateOfCTLocation" {
        add(
            resource,
            "partOf",
            json!({ "reference": "Location/StateOfCTLocation" }),
        );
    }
    add(
        resource,
        "availabilityExceptions",
        json!("Closed on public holidays"),
    );
    add(resource, "endpoint", endpoints());
}

fn complete_organization(resource: &mut Value, network: bool) {
    add(resource, "endpoint", endpoints());
    add(resource, "address", address());
    if !network {
        let qualification = json!({ "url": format!("{PLAN_NET_SD}qualification"), "extension": [
            { "url": "code", "valueCodeableConcept": { "coding": [{ "system": "http://nucc.org/provider-taxonomy", "code": "261QP2300X" }] } },
            { "url": "status", "valueCode": "active" },
            { "url": "issuer", "valueReference": { "display": "State of Connecticut" } },
        ] });
        add(resource, "extension", json!([]));
        if let Some(list) = resource["extension"].as_array_mut() {
            list.push(qualification);
        }
        add(resource, "telecom", phone(vec![via()]));
        for telecom in items(resource, "telecom") {
            add(telecom, "extension", json!([via()]));
        }
        for address in items(resource, "address") {
            add(address, "type", json!("physical"));
            add(address, "text", json!("1 Main Street, Hartford, CT 06103"));
            add(address, "country", json!("US"));
            add(address, "extension", json!([geolocation()]));
        }
    }
    add(
        resource,
        "contact",
        json!([{ "name": { "text": "Provider relations" } }]),
    );
    for contact in items(resource, "contact") {
        add(
            contact,
            "telecom",
            json!([{ "system": "phone", "value": "(860)-555-0102", "use": "work" }]),
        );
        for telecom in items(contact, "telecom") {
            add(telecom, "system", json!("phone"));
            add(telecom, "value", json!("(860)-555-0102"));
            add(telecom, "use", json!("work"));
        }
    }
}

fn complete_practitioner(resource: &mut Value) {
    add(resource, "telecom", phone(Vec::new()));
    add(resource, "address", address());
    for qualification in items(resource, "qualification") {
        add(
            qualification,
            "identifier",
            json!([{ "value": "LIC-0001" }]),
        );
        add(qualification, "period", json!({ "start": "2010-06-01" }));
    }
    for language in items(resource, "communication") {
        add(
            language,
            "extension",
            json!([{ "url": format!("{PLAN_NET_SD}communication-proficiency"), "valueCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/LanguageProficiencyCS", "code": "30" }] } }]),
        );
    }
}

fn complete_role(resource: &mut Value) {
    add(resource, "extension", json!([]));
    if let Some(list) = resource["extension"].as_array_mut() {
        if !list.iter().any(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/newpatients"))
        }) {
            list.push(json!({ "url": format!("{PLAN_NET_SD}newpatients"), "extension": [
                { "url": "acceptingPatients", "valueCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS", "code": "newpt" }] } },
            ] }));
        }
        let qualifications = list.iter_mut().filter(|e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/qualification"))
        });
        for extension in qualifications {
            if let Some(parts) = extension["extension"].as_array_mut() {
                parts.push(
                    json!({ "url": "identifier", "valueIdentifier": { "value": "LIC-0002" } }),
                );
                parts.push(json!({ "url": "period", "valuePeriod": { "start": "2012-01-01" } }));
                parts.push(json!({ "url": "whereValid", "valueCodeableConcept": { "coding": [{ "system": "https://www.usps.com/", "code": "CT" }] } }));
            }
        }
    }
    add(resource, "period", json!({ "start": "2026-01-01" }));
    add(resource, "telecom", phone(vec![hours(), via()]));
    add(resource, "availableTime", available());
    add(resource, "notAvailable", closed());
    add(resource, "endpoint", endpoints());
}

/// Set `name` on an object that has none.
fn add(resource: &mut Value, name: &str, value: Value) {
    if let Some(object) = resource.as_object_mut() {
        object.entry(name.to_owned()).or_insert(value);
    }
}

/// The items of the array `name` (none when there is no such array).
fn items<'v>(resource: &'v mut Value, name: &str) -> impl Iterator<Item = &'v mut Value> {
    resource
        .get_mut(name)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Point every `Type/id` reference at copy `k mod n` of the template it names.
fn repoint(value: &mut Value, k: usize, copies: &HashMap<String, usize>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members.iter_mut() {
                if name == "reference"
                    && let Some(target) = member.as_str()
                    && let Some(n) = copies.get(target)
                    && let Some((kind, id)) = target.split_once('/')
                {
                    *member = json!(format!("{kind}/{}", copy_id(id, k % n)));
                } else {
                    repoint(member, k, copies);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| repoint(item, k, copies)),
        _ => {}
    }
}

/// The examples of the book's IG package (the shipped one, whose examples a test reads),
/// sorted by type and id, without their narratives (they describe the example, not its
/// copies).
fn examples(book: Book) -> Vec<Value> {
    let Some(shipped) = SHIPPED.iter().find(|s| s.name == book.package()) else {
        return Vec::new();
    };
    let mut out: Vec<Value> =
        crate::validate::package::examples(shipped.bytes(), shipped.file_name())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| kind_of(r) != "GraphDefinition")
            .collect();
    for resource in &mut out {
        if let Some(object) = resource.as_object_mut() {
            object.remove("text");
        }
    }
    out.sort_by(|a, b| (kind_of(a), id_of(a)).cmp(&(kind_of(b), id_of(b))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_grows_with_its_references_whole() {
        let listing = Listing::grow(
            Book::Directory,
            60,
            ("PLAN-1", "Plan One"),
            &Breaks::default(),
        );
        assert_eq!(listing.all("Practitioner").len(), 60);
        assert_eq!(listing.all("PractitionerRole").len(), 300);
        for kind in listing.kinds() {
            for entry in listing.all(kind) {
                let resource: Value = serde_json::from_slice(&entry.json).expect("JSON");
                let mut references = Vec::new();
                collect(&resource, &mut references);
                for reference in references {
                    assert!(
                        listing.get(&reference).is_some(),
                        "{kind}/{} → {reference}",
                        entry.id
                    );
                }
            }
        }
        let formulary = Listing::grow(
            Book::Formulary,
            60,
            ("PLAN-1", "Plan One"),
            &Breaks::default(),
        );
        assert!(formulary.all("Basic").len() >= 7);
        let plan: Value = serde_json::from_slice(
            &formulary
                .get("InsurancePlan/PayerInsurancePlanA1002")
                .expect("the plan")
                .json,
        )
        .expect("JSON");
        assert_eq!(plan["identifier"][0]["value"], "PLAN-1");
    }

    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    match (name.as_str(), member.as_str()) {
                        ("reference", Some(text)) => out.push(text.to_owned()),
                        _ => collect(member, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            _ => {}
        }
    }
}
