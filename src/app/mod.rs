//! The app under test, judged from what a member sees: what it must show (the member's name
//! and their claims, taken from the data the payer holds for them) and whether the page
//! shows it, matched as a person reads (case, spacing, punctuation and word order aside).
//! Pure: the run reads the data and the page, this decides.

use serde_json::Value;

/// The member's name as the payer holds it: the given and the family name of the Patient's
/// first official (else usual, else first) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName {
    pub given: String,
    pub family: String,
}

impl MemberName {
    /// The Patient's name, when it has a given and a family name.
    pub fn of_patient(patient: &Value) -> Option<Self> {
        let names = patient.get("name")?.as_array()?;
        let by_use = |wanted: &str| {
            names
                .iter()
                .find(|n| n.get("use").and_then(Value::as_str) == Some(wanted))
        };
        let name = by_use("official")
            .or_else(|| by_use("usual"))
            .or_else(|| names.first())?;
        let given = name
            .get("given")
            .and_then(Value::as_array)
            .and_then(|g| g.first())
            .and_then(Value::as_str)?;
        let family = name.get("family").and_then(Value::as_str)?;
        Self::new(given, family)
    }

    /// A name from its parts; none when either is blank.
    pub fn new(given: &str, family: &str) -> Option<Self> {
        let (given, family) = (given.trim(), family.trim());
        (!given.is_empty() && !family.is_empty()).then(|| Self {
            given: given.to_owned(),
            family: family.to_owned(),
        })
    }

    /// Whether `text` shows this name: the given and the family name each as whole words,
    /// in either order, whatever the case, spacing or punctuation ("Allen, John").
    pub fn shown_in(&self, text: &str) -> bool {
        let text = format!(" {} ", words(text));
        [&self.given, &self.family]
            .iter()
            .all(|part| text.contains(&format!(" {} ", words(part))))
    }
}

impl std::fmt::Display for MemberName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.given, self.family)
    }
}

/// `text` in lower case, with every run of characters other than letters and digits one
/// space.
fn words(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` in lower case with its whitespace collapsed, for finding a value as written.
fn spaced(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What of one claim (an ExplanationOfBenefit) an app may show, each as people write it: its
/// id and identifiers, its total and payment amounts, its provider, and its dates.
pub fn claim_marks(eob: &Value) -> Vec<String> {
    let mut marks = Vec::new();
    let text = |pointer: &str| eob.pointer(pointer).and_then(Value::as_str);
    if let Some(id) = text("/id").filter(|id| id.len() >= 6) {
        marks.push(id.to_owned());
    }
    for identifier in eob
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(value) = identifier
            .get("value")
            .and_then(Value::as_str)
            .filter(|v| v.len() >= 4)
        {
            marks.push(value.to_owned());
        }
    }
    let totals = eob
        .get("total")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/amount/value"));
    for amount in totals.chain(eob.pointer("/payment/amount/value")) {
        marks.extend(amount_marks(amount));
    }
    if let Some(provider) = text("/provider/display").filter(|p| p.len() >= 4) {
        marks.push(provider.to_owned());
    }
    for pointer in ["/billablePeriod/start", "/created"] {
        if let Some(date) = text(pointer) {
            marks.extend(date_marks(date));
        }
    }
    marks.sort();
    marks.dedup();
    marks
}

/// What of one resource of any type an app may show, each as people write it: for a claim,
/// [`claim_marks`]; otherwise the words of its codes and references (`display`, `text`, at
/// least four letters; not its narrative) and its dates.
pub fn resource_marks(resource: &Value) -> Vec<String> {
    if resource.get("resourceType").and_then(Value::as_str) == Some("ExplanationOfBenefit") {
        return claim_marks(resource);
    }
    let mut marks = Vec::new();
    let Some(object) = resource.as_object() else {
        return marks;
    };
    for (name, value) in object {
        if name == "text" || name == "id" || name == "meta" || name == "resourceType" {
            continue;
        }
        words_of(value, &mut marks);
        if let Some(date) = value.as_str().filter(|_| looks_dated(name)) {
            marks.extend(date_marks(date));
        }
        if let Some(start) = value.pointer("/start").and_then(Value::as_str) {
            marks.extend(date_marks(start));
        }
    }
    marks.sort();
    marks.dedup();
    marks
}

/// Whether a member holds a date (`effectiveDateTime`, `authoredOn`, `recordedDate`, …).
fn looks_dated(name: &str) -> bool {
    name.ends_with("DateTime")
        || name.ends_with("Date")
        || name.ends_with("On")
        || matches!(name, "date" | "issued" | "authored")
}

/// Every `display` and `text` string (of four letters or more) below `value`.
fn words_of(value: &Value, marks: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| words_of(item, marks)),
        Value::Object(object) => {
            for (name, member) in object {
                match (name.as_str(), member) {
                    ("display" | "text", Value::String(words))
                        if words.chars().filter(|c| c.is_alphabetic()).count() >= 4 =>
                    {
                        marks.push(words.clone());
                    }
                    _ => words_of(member, marks),
                }
            }
        }
        _ => {}
    }
}

/// An amount as an app writes it: `1234.50` and `1,234.50` (none for zero).
fn amount_marks(amount: &Value) -> Vec<String> {
    let Some(value) = amount.as_f64().filter(|v| v.abs() >= 0.01) else {
        return Vec::new();
    };
    let plain = format!("{value:.2}");
    let (whole, cents) = plain.split_once('.').unwrap_or((&plain, "00"));
    let (sign, digits) = whole.strip_prefix('-').map_or(("", whole), |d| ("-", d));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let with_commas = format!("{sign}{grouped}.{cents}");
    if with_commas == plain {
        vec![plain]
    } else {
        vec![plain, with_commas]
    }
}

/// A FHIR date (or dateTime) as an app writes it: `2021-03-04`, `03/04/2021`, `3/4/2021`,
/// `Mar 4, 2021` and `March 4, 2021`.
fn date_marks(date: &str) -> Vec<String> {
    use crate::infra::words::MONTHS;
    let day_part = date.get(..10).unwrap_or(date);
    let mut parts = day_part.split('-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Vec::new();
    };
    let (Ok(month), Ok(day)) = (m.parse::<usize>(), d.parse::<u32>()) else {
        return Vec::new();
    };
    let Some(name) = month.checked_sub(1).and_then(|i| MONTHS.get(i)) else {
        return Vec::new();
    };
    vec![
        day_part.to_owned(),
        format!("{m}/{d}/{y}"),
        format!("{month}/{day}/{y}"),
        format!("{} {day}, {y}", &name[..3]),
        format!("{name} {day}, {y}"),
    ]
}

/// The first of `marks` that `text` shows (case and spacing aside).
pub fn first_shown<'m>(text: &str, marks: &'m [String]) -> Option<&'m str> {
    let text = spaced(text);
    marks
        .iter()
        .find(|mark| text.contains(&spaced(mark)))
        .map(String::as_str)
}

/// Whether `text` shows `wanted` (case and spacing aside).
pub fn shows(text: &str, wanted: &str) -> bool {
    spaced(text).contains(&spaced(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A clinical resource is shown by the words of its codes or by its dates, never by its
    /// narrative or ids.
    #[test]
    fn a_clinical_resource_is_shown_by_its_words_and_dates() {
        let request = json!({
            "resourceType": "MedicationRequest", "id": "mr-1",
            "text": {"status": "generated", "div": "<div>Narrative words</div>"},
            "contained": [{"resourceType": "Medication", "id": "m",
                "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "582620", "display": "Nizatidine 15 MG/ML Oral Solution"}]}}],
            "medicationReference": {"reference": "#m"},
            "authoredOn": "2008-04-05", "intent": "order"
        });
        let marks = resource_marks(&request);
        assert!(
            marks.contains(&"Nizatidine 15 MG/ML Oral Solution".to_owned()),
            "{marks:?}"
        );
        assert!(marks.contains(&"April 5, 2008".to_owned()), "{marks:?}");
        assert!(
            !marks
                .iter()
                .any(|m| m.contains("Narrative") || m == "mr-1" || m == "order")
        );
        assert_eq!(
            first_shown(
                "His prescriptions: nizatidine 15 mg/ml oral solution",
                &marks
            ),
            Some("Nizatidine 15 MG/ML Oral Solution")
        );
    }

    /// A name is shown whatever its case, spacing, punctuation or order; another member's
    /// is not, nor half of it.
    #[test]
    fn a_name_is_matched_as_a_person_reads_it() {
        let patient = json!({"resourceType": "Patient", "name": [
            {"use": "nickname", "given": ["Johnny"], "family": "A"},
            {"use": "official", "given": ["John", "Q"], "family": "Allen"}
        ]});
        let name = MemberName::of_patient(&patient).expect("a name");
        assert_eq!(name.to_string(), "John Allen");
        assert!(name.shown_in("Welcome, JOHN   allen!"));
        assert!(name.shown_in("Member: Allen, John"));
        assert!(!name.shown_in("Welcome, Johnny Allenby"));
        assert!(!name.shown_in("Welcome, John Smith"));
        assert!(MemberName::of_patient(&json!({"name": [{"family": "Allen"}]})).is_none());
        assert!(MemberName::new(" ", "Allen").is_none());
    }

    /// A claim's identifiers, amounts, provider and dates are each written as apps write
    /// them; zero amounts and short ids are left out (they would match anything).
    #[test]
    fn a_claim_is_found_by_what_an_app_shows_of_it() {
        let eob = json!({
            "resourceType": "ExplanationOfBenefit", "id": "eob-1",
            "identifier": [{"value": "CLM-000123"}, {"value": "9"}],
            "total": [{"amount": {"value": 1234.5}}, {"amount": {"value": 0}}],
            "provider": {"display": "Boston Clinic"},
            "billablePeriod": {"start": "2021-03-04"}
        });
        let marks = claim_marks(&eob);
        for expected in [
            "CLM-000123",
            "1234.50",
            "1,234.50",
            "Boston Clinic",
            "2021-03-04",
            "03/04/2021",
            "3/4/2021",
            "Mar 4, 2021",
            "March 4, 2021",
        ] {
            assert!(
                marks.iter().any(|m| m == expected),
                "{expected} in {marks:?}"
            );
        }
        assert!(
            !marks
                .iter()
                .any(|m| m == "9" || m == "0.00" || m == "eob-1")
        );
        assert_eq!(
            first_shown("Your claims: paid $1,234.50 on …", &marks),
            Some("1,234.50")
        );
        assert_eq!(first_shown("No claims yet", &marks), None);
        assert!(shows("Signed  in\nas a member", "signed in as A MEMBER"));
    }
}
