//! FHIR R4 search semantics for the parameters a Patient Access API serves (FHIR R4
//! "Search", §3.1.1.4 token, reference and date): what a parameter's value means and whether a
//! resource matches it. The sandbox answers searches with it; the run checks with it that what
//! a server returned matches what was asked.
//!
//! Which parameters exist is data: the CARIN IG's (`schemas/carin-bb/capability.json`, each
//! with its FHIRPath expression) and the few core ones it relies on (`_id`, `_lastUpdated`,
//! `Coverage.patient`, `ExplanationOfBenefit.payee`). The expressions are unions of plain
//! paths (`ExplanationOfBenefit.billablePeriod | ExplanationOfBenefit.item.serviced`),
//! evaluated here without a FHIRPath engine; a choice element (`serviced`) matches each of
//! its typed names (`servicedDate`, `servicedPeriod`). Pure: no I/O.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::payer::discovery::Carin;
use crate::payer::failure::StepFailure;
use crate::validate::catalog::{Catalog, FORMULARY, PLAN_NET, US_CORE};

/// The IGs whose SearchParameters define parameters here, in the order they are looked up.
pub const SEARCH_IGS: &[&str] = &[US_CORE, PLAN_NET, FORMULARY];

/// The plain element paths below `base` of a SearchParameter's expression, when it is a
/// union of such paths, maybe narrowed by type (`Condition.onset.as(dateTime)`,
/// `(Goal.target.due as date)`, `CarePlan.subject.where(resolve() is Patient)`). `None` for
/// anything else (an extension's value picked by URL): such a parameter is not used here.
pub fn plain_paths(base: &str, expression: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in expression.split('|') {
        let mut part = part.trim();
        if let Some(inner) = part.strip_prefix('(').and_then(|p| p.strip_suffix(')')) {
            part = inner.trim();
        }
        if let Some((path, _)) = part.split_once(" as ") {
            part = path.trim();
        }
        // Plan-Net writes one part of a union without its base (`name | alias`).
        let rest = match part.strip_prefix(base).and_then(|p| p.strip_prefix('.')) {
            Some(rest) => rest,
            None if part.starts_with(|c: char| c.is_ascii_lowercase()) => part,
            None => return None,
        };
        let rest = rest
            .strip_suffix(".where(resolve() is Patient)")
            .unwrap_or(rest);
        let rest = rest.find(".as(").map_or(rest, |at| &rest[..at]);
        let mut rest = url_filters(rest)?;
        // An extension picked by URL stands for its value (Plan-Net's `network`).
        if rest.ends_with(']') {
            rest.push_str(".value");
        }
        let plain = steps(&rest)
            .all(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()));
        if !plain {
            return None;
        }
        if !out.contains(&rest) {
            out.push(rest);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `extension.where(url='U').value` written as the step `extension[U]` then `value`.
fn url_filters(path: &str) -> Option<String> {
    const WHERE: &str = ".where(url='";
    let mut out = String::new();
    let mut rest = path;
    while let Some(at) = rest.find(WHERE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + WHERE.len()..];
        let end = after.find("')")?;
        out.push('[');
        out.push_str(&after[..end]);
        out.push(']');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// The steps of a path: each a member name and, for `extension[U]`, the extension's URL.
fn steps(path: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut rest = path;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (step, after) = match (rest.find('['), rest.find('.')) {
            (Some(open), dot) if dot.is_none_or(|d| open < d) => {
                let close = rest[open..].find(']').map_or(rest.len(), |c| open + c);
                let step = &rest[..(close + 1).min(rest.len())];
                (step, rest.get(close + 2..).unwrap_or(""))
            }
            (_, Some(dot)) => (&rest[..dot], &rest[dot + 1..]),
            (_, None) => (rest, ""),
        };
        rest = after;
        Some(match step.split_once('[') {
            Some((name, url)) => (name, Some(url.trim_end_matches(']'))),
            None => (step, None),
        })
    })
}

/// A search parameter's type (FHIR R4 §3.1.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Token,
    Reference,
    Date,
    /// §3.1.1.4.13: starts with the value, ignoring case and accents.
    String,
}

/// A search parameter of one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub code: String,
    pub kind: ParamType,
    /// Paths below the resource (`billablePeriod`, `item.serviced`; an extension by URL as
    /// `extension[URL].value`).
    pub paths: Vec<String>,
    /// The types a reference parameter points at, when its definition says (for chains).
    pub target: Vec<String>,
}

/// Parameters of FHIR R4 core that the CARIN IG's CapabilityStatement names but does not
/// define, and R4's `patient` of the clinical types US Core reads: `(base, code, type,
/// paths)`.
const CORE: &[(&str, &str, ParamType, &str)] = &[
    (
        "AllergyIntolerance",
        "patient",
        ParamType::Reference,
        "patient",
    ),
    ("CarePlan", "patient", ParamType::Reference, "subject"),
    ("CareTeam", "patient", ParamType::Reference, "subject"),
    ("Condition", "patient", ParamType::Reference, "subject"),
    (
        "DiagnosticReport",
        "patient",
        ParamType::Reference,
        "subject",
    ),
    (
        "DocumentReference",
        "patient",
        ParamType::Reference,
        "subject",
    ),
    ("Encounter", "patient", ParamType::Reference, "subject"),
    ("Goal", "patient", ParamType::Reference, "subject"),
    ("Immunization", "patient", ParamType::Reference, "patient"),
    (
        "MedicationRequest",
        "patient",
        ParamType::Reference,
        "subject",
    ),
    ("Observation", "patient", ParamType::Reference, "subject"),
    ("Procedure", "patient", ParamType::Reference, "subject"),
    ("*", "_id", ParamType::Token, "id"),
    ("*", "_lastUpdated", ParamType::Date, "meta.lastUpdated"),
    ("Coverage", "patient", ParamType::Reference, "beneficiary"),
    (
        "Coverage",
        "beneficiary",
        ParamType::Reference,
        "beneficiary",
    ),
    (
        "ExplanationOfBenefit",
        "payee",
        ParamType::Reference,
        "payee.party",
    ),
];

impl Parameter {
    /// The parameter `code` of `base`, if core or an IG defines it here (CARIN's, then
    /// those of [`SEARCH_IGS`]).
    pub fn of(base: &str, code: &str) -> Option<Parameter> {
        if let Some((_, _, kind, path)) = CORE
            .iter()
            .find(|(b, c, _, _)| (*b == base || *b == "*") && *c == code)
        {
            return Some(Parameter {
                code: code.to_owned(),
                kind: *kind,
                paths: vec![(*path).to_owned()],
                target: Vec::new(),
            });
        }
        let (kind, expression, target) = match Carin::get()
            .search_parameters
            .get(base)
            .and_then(|p| p.get(code))
        {
            Some(defined) => (
                defined.kind.clone(),
                defined.expression.clone()?,
                defined.target.clone(),
            ),
            None => SEARCH_IGS.iter().find_map(|name| {
                let (ig, _) = Catalog::global().ig(name)?;
                let defined = ig.search_parameters.get(base)?.get(code)?;
                Some((
                    defined.kind.clone(),
                    defined.expression.clone(),
                    defined.target.clone(),
                ))
            })?,
        };
        let kind = match kind.as_str() {
            "token" => ParamType::Token,
            "reference" => ParamType::Reference,
            "date" => ParamType::Date,
            "string" => ParamType::String,
            _ => return None,
        };
        Some(Parameter {
            code: code.to_owned(),
            kind,
            paths: plain_paths(base, &expression)?,
            target,
        })
    }

    /// The codes of `base`'s parameters core, CARIN and the IGs of [`SEARCH_IGS`] define.
    fn codes_of(base: &str, only: Option<&str>) -> Vec<String> {
        let mut codes: Vec<String> = CORE
            .iter()
            .filter(|(b, _, kind, _)| {
                (*b == base || (*b == "*" && only.is_none()))
                    && only.is_none_or(|_| *kind == ParamType::Reference)
            })
            .map(|(_, code, _, _)| (*code).to_owned())
            .collect();
        if let Some(defined) = Carin::get().search_parameters.get(base) {
            codes.extend(
                defined
                    .iter()
                    .filter(|(_, p)| only.is_none_or(|k| p.kind == k))
                    .map(|(code, _)| code.clone()),
            );
        }
        for name in SEARCH_IGS {
            if let Some((ig, _)) = Catalog::global().ig(name)
                && let Some(defined) = ig.search_parameters.get(base)
            {
                codes.extend(
                    defined
                        .iter()
                        .filter(|(_, p)| only.is_none_or(|k| p.kind == k))
                        .map(|(code, _)| code.clone()),
                );
            }
        }
        codes.sort();
        codes.dedup();
        codes
    }

    /// Every parameter of `base` this module knows.
    pub fn all_of(base: &str) -> Vec<Parameter> {
        Self::codes_of(base, None)
            .iter()
            .filter_map(|code| Parameter::of(base, code))
            .collect()
    }

    /// Every reference parameter of `base` (what `_include=Base:*` follows).
    pub fn references_of(base: &str) -> Vec<Parameter> {
        Self::codes_of(base, Some("reference"))
            .iter()
            .filter_map(|code| Parameter::of(base, code))
            .filter(|p| p.kind == ParamType::Reference)
            .collect()
    }

    /// The `Type/id`s the reference values of `resource` at this parameter name.
    pub fn referenced(&self, resource: &Value) -> Vec<String> {
        self.values(resource)
            .filter_map(|v| v.get("reference").and_then(Value::as_str))
            .map(reference_key)
            .filter(|key| key.contains('/'))
            .collect()
    }

    /// Whether `resource` matches `value` (comma-separated values match if any does).
    /// `None`: `value` is not a value of this parameter's type.
    pub fn matches(&self, resource: &Value, value: &str) -> Option<bool> {
        let mut any = false;
        for one in value.split(',') {
            let hit = match self.kind {
                ParamType::Token => {
                    let (system, code) = match one.split_once('|') {
                        Some((system, code)) => (Some(system), code),
                        None => (None, one),
                    };
                    self.values(resource)
                        .any(|v| token_matches(v, system, code))
                }
                ParamType::Reference => self.values(resource).any(|v| {
                    v.get("reference")
                        .and_then(Value::as_str)
                        .is_some_and(|r| reference_matches(one, r))
                }),
                ParamType::Date => {
                    let (prefix, search) = DatePrefix::split(one);
                    let search = DateRange::parse(search)?;
                    self.values(resource)
                        .filter_map(DateRange::of_value)
                        .any(|target| prefix.matches(search, target))
                }
                ParamType::String => {
                    let wanted = folded(one);
                    self.values(resource)
                        .flat_map(string_parts)
                        .any(|part| folded(part).starts_with(&wanted))
                }
            };
            any |= hit;
        }
        Some(any)
    }

    /// Every value the parameter's paths reach in `resource`.
    pub fn values<'a>(&'a self, resource: &'a Value) -> impl Iterator<Item = &'a Value> {
        self.paths.iter().flat_map(move |path| {
            let mut current: Vec<&Value> = vec![resource];
            for (step, url) in steps(path) {
                let mut next = Vec::new();
                for value in current {
                    let Some(object) = value.as_object() else {
                        continue;
                    };
                    for (name, member) in object {
                        let choice = name
                            .strip_prefix(step)
                            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()));
                        if name == step || choice {
                            let items = match member {
                                Value::Array(items) => items.as_slice(),
                                other => std::slice::from_ref(other),
                            };
                            next.extend(items.iter().filter(|item| {
                                url.is_none_or(|url| {
                                    item.get("url").and_then(Value::as_str) == Some(url)
                                })
                            }));
                        }
                    }
                }
                current = next;
            }
            current
        })
    }
}

impl Parameter {
    /// A value of this parameter that `resource` matches, taken from its own data, for a
    /// search that must find it: a token's `system|code` (or `system|value`), a reference,
    /// or a date with `prefix` (`gt`: the day before the resource's date, `lt`: the day after
    /// it, otherwise `ge` its first day). `None` when the resource has no value here.
    pub fn value_from(&self, resource: &Value, prefix: Option<DatePrefix>) -> Option<String> {
        let value = self.values(resource).next()?;
        let found = match self.kind {
            ParamType::Token => token_value(value)?,
            ParamType::String => string_parts(value).next()?.to_owned(),
            ParamType::Reference => reference_key(value.get("reference")?.as_str()?),
            ParamType::Date => {
                let range = DateRange::of_value(value)?;
                let day = |seconds: i64| {
                    time::OffsetDateTime::from_unix_timestamp(seconds)
                        .ok()
                        .map(|t| t.date().to_string())
                };
                match prefix {
                    Some(DatePrefix::Gt) => format!("gt{}", day(range.start.checked_sub(86_400)?)?),
                    Some(DatePrefix::Lt) => format!("lt{}", day(range.end.checked_add(86_400)?)?),
                    _ => format!("ge{}", day(range.start)?),
                }
            }
        };
        (self.matches(resource, &found) == Some(true)).then_some(found)
    }
}

/// The strings a string parameter compares (FHIR R4 §3.1.1.4.13): a string itself; a
/// HumanName's or an Address's parts, its family name or city first.
fn string_parts(value: &Value) -> impl Iterator<Item = &str> {
    const PARTS: &[&str] = &[
        "family",
        "city",
        "given",
        "line",
        "state",
        "postalCode",
        "district",
        "country",
        "prefix",
        "suffix",
        "text",
    ];
    let own = value.as_str().into_iter();
    let parts = value.as_object().into_iter().flat_map(|object| {
        PARTS
            .iter()
            .filter_map(|name| object.get(*name))
            .flat_map(|part| match part {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
                other => other.as_str().into_iter().collect(),
            })
    });
    own.chain(parts)
}

/// A string as a string search compares it: lower case, without accents (§3.1.1.4.13).
fn folded(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `[system|]code` of a token value: a Coding or CodeableConcept's first coding, an
/// Identifier, or a plain code or id.
fn token_value(value: &Value) -> Option<String> {
    let pair = |object: &serde_json::Map<String, Value>, name: &str| {
        let code = object.get(name)?.as_str()?;
        Some(match object.get("system").and_then(Value::as_str) {
            Some(system) => format!("{system}|{code}"),
            None => code.to_owned(),
        })
    };
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => match object.get("coding").and_then(Value::as_array) {
            Some(codings) => codings
                .iter()
                .filter_map(Value::as_object)
                .find_map(|c| pair(c, "code")),
            None => pair(object, "code").or_else(|| pair(object, "value")),
        },
        _ => None,
    }
}

/// A token value (a code, Coding, CodeableConcept, Identifier or plain string) matches
/// `[system|]code` (FHIR R4 §3.1.1.4.10).
fn token_matches(value: &Value, system: Option<&str>, code: &str) -> bool {
    let pair = |system_of: Option<&str>, code_of: Option<&str>| {
        code_of == Some(code)
            && match system {
                None => true,
                Some("") => system_of.is_none(),
                Some(wanted) => system_of == Some(wanted),
            }
    };
    match value {
        Value::String(text) => system.is_none() && text == code,
        Value::Object(object) => {
            let text = |name: &str| object.get(name).and_then(Value::as_str);
            if let Some(codings) = object.get("coding").and_then(Value::as_array) {
                return codings.iter().any(|c| token_matches(c, system, code));
            }
            pair(text("system"), text("code")) || pair(text("system"), text("value"))
        }
        _ => false,
    }
}

/// `Type/id` of a reference or a search value (an absolute URL, a `_history` suffix or a
/// bare id compare by what they name).
/// Whether a reference search value (`Patient/p1`, a bare `p1`, or an absolute URL) names
/// what `reference` points at (FHIR R4 §3.1.1.4.8: `[parameter]=[id]`,
/// `[parameter]=[type]/[id]` and `[parameter]=[url]`). A bare id matches a reference of any
/// type with that id: for a parameter with one target type, as `patient`, that is exactly
/// the type-qualified form. The one rule both the sandbox and the run's checks apply.
pub fn reference_matches(value: &str, reference: &str) -> bool {
    let (wanted, target) = (reference_key(value), reference_key(reference));
    if wanted.is_empty() {
        return false;
    }
    if wanted.contains('/') {
        wanted == target
    } else {
        target.rsplit('/').next() == Some(wanted.as_str())
    }
}

fn reference_key(text: &str) -> String {
    let path = match text.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => text,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let segments = match segments.iter().position(|s| *s == "_history") {
        Some(at) => &segments[..at],
        None => &segments[..],
    };
    match segments {
        [.., kind, id] => format!("{kind}/{id}"),
        [id] => (*id).to_owned(),
        [] => String::new(),
    }
}

/// A date prefix (FHIR R4 §3.1.1.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

impl DatePrefix {
    /// The prefix of a date value and the date after it (`eq` when there is none).
    pub fn split(value: &str) -> (DatePrefix, &str) {
        let prefixes = [
            ("eq", Self::Eq),
            ("ne", Self::Ne),
            ("gt", Self::Gt),
            ("lt", Self::Lt),
            ("ge", Self::Ge),
            ("le", Self::Le),
            ("sa", Self::Sa),
            ("eb", Self::Eb),
        ];
        for (text, prefix) in prefixes {
            if let Some(rest) = value.strip_prefix(text) {
                return (prefix, rest);
            }
        }
        (Self::Eq, value)
    }

    /// Whether `target` matches `search` under this prefix (FHIR R4 §3.1.1.4.2: a date is a
    /// range as wide as its precision; `gt` means the range above the search value overlaps
    /// the target's, `eq` that the search range contains the target's).
    pub fn matches(self, search: DateRange, target: DateRange) -> bool {
        let contains = search.start <= target.start && target.end <= search.end;
        match self {
            Self::Eq => contains,
            Self::Ne => !contains,
            Self::Gt => target.end > search.end,
            Self::Lt => target.start < search.start,
            Self::Ge => target.end > search.end || contains,
            Self::Le => target.start < search.start || contains,
            Self::Sa => target.start >= search.end,
            Self::Eb => target.end <= search.start,
        }
    }
}

/// A half-open range of time, in seconds since the epoch (unbounded ends at the extremes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

impl DateRange {
    /// A FHIR date, dateTime or instant as the range its precision covers (a day, a month,
    /// a second). Without a zone, UTC.
    pub fn parse(text: &str) -> Option<DateRange> {
        use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
        let text = text.trim();
        let (date_part, time_part) = match text.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (text, None),
        };
        let numbers: Vec<&str> = date_part.split('-').collect();
        let number = |s: &str, len: usize| -> Option<i32> {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
        };
        let day_start = |year: i32, month: u8, day: u8| -> Option<i64> {
            let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
            Some(
                PrimitiveDateTime::new(date, Time::MIDNIGHT)
                    .assume_utc()
                    .unix_timestamp(),
            )
        };
        match (numbers.as_slice(), time_part) {
            ([year], None) => {
                let year = number(year, 4)?;
                Some(DateRange {
                    start: day_start(year, 1, 1)?,
                    end: day_start(year + 1, 1, 1)?,
                })
            }
            ([year, month], None) => {
                let (year, month) = (number(year, 4)?, u8::try_from(number(month, 2)?).ok()?);
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                Some(DateRange {
                    start: day_start(year, month, 1)?,
                    end: day_start(next_year, next_month, 1)?,
                })
            }
            ([year, month, day], None) => {
                let start = day_start(
                    number(year, 4)?,
                    u8::try_from(number(month, 2)?).ok()?,
                    u8::try_from(number(day, 2)?).ok()?,
                )?;
                Some(DateRange {
                    start,
                    end: start + 86_400,
                })
            }
            ([year, month, day], Some(clock)) => {
                let start = day_start(
                    number(year, 4)?,
                    u8::try_from(number(month, 2)?).ok()?,
                    u8::try_from(number(day, 2)?).ok()?,
                )?;
                let (clock, offset) = match clock.find(['Z', '+', '-']) {
                    Some(at) => (&clock[..at], &clock[at..]),
                    None => (clock, "Z"),
                };
                let offset_seconds = if offset == "Z" {
                    0
                } else {
                    let sign = if offset.starts_with('-') { -1 } else { 1 };
                    let (h, m) = offset[1..].split_once(':')?;
                    let offset = UtcOffset::from_hms(
                        i8::try_from(number(h, 2)?).ok()?,
                        i8::try_from(number(m, 2)?).ok()?,
                        0,
                    )
                    .ok()?;
                    sign * i64::from(offset.whole_seconds().abs())
                };
                let parts: Vec<&str> = clock.split(':').collect();
                let (hour, minute, second, precision) = match parts.as_slice() {
                    [h, m] => (number(h, 2)?, number(m, 2)?, 0, 60),
                    [h, m, s] => {
                        let whole = s.split('.').next()?;
                        (number(h, 2)?, number(m, 2)?, number(whole, 2)?, 1)
                    }
                    _ => return None,
                };
                let at = start + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
                Some(DateRange {
                    start: at,
                    end: at + precision,
                })
            }
            _ => None,
        }
    }

    /// The range of a date-like value: a string (date, dateTime, instant) or a Period.
    pub fn of_value(value: &Value) -> Option<DateRange> {
        match value {
            Value::String(text) => Self::parse(text),
            Value::Object(period) => {
                let start = period
                    .get("start")
                    .and_then(Value::as_str)
                    .and_then(Self::parse)
                    .map_or(i64::MIN, |r| r.start);
                let end = period
                    .get("end")
                    .and_then(Value::as_str)
                    .and_then(Self::parse)
                    .map_or(i64::MAX, |r| r.end);
                (period.contains_key("start") || period.contains_key("end"))
                    .then_some(DateRange { start, end })
            }
            _ => None,
        }
    }
}

/// A resource's `Type/id`.
pub fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        resource.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}

/// The entries of a search's pages the server marked as matches (or left unmarked) of the
/// searched type `kind`.
pub fn matches<'e>(
    kind: &'e str,
    entries: &'e [(Option<String>, Value)],
) -> impl Iterator<Item = &'e Value> {
    entries.iter().filter_map(move |(mode, resource)| {
        let of_kind = resource.get("resourceType").and_then(Value::as_str) == Some(kind);
        (of_kind && mode.as_deref() != Some("include")).then_some(resource)
    })
}

/// The entries of a searchset's pages: each resource with its `search.mode`.
pub fn entries(pages: &[Value]) -> Vec<(Option<String>, Value)> {
    pages
        .iter()
        .flat_map(|page| {
            page.get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|entry| {
            let mode = entry
                .pointer("/search/mode")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some((mode, entry.get("resource")?.clone()))
        })
        .collect()
}

/// The parameter a step asks to search `kind` by, with the comparator it names (`ge`, …):
/// a usage error when onramp knows no such parameter or the comparator is not for a date.
pub fn searchable(
    kind: &str,
    code: &str,
    comparator: &str,
) -> Result<(Parameter, Option<DatePrefix>), StepFailure> {
    let parameter = Parameter::of(kind, code).ok_or_else(|| {
        StepFailure::usage(format!(
            "onramp knows no search parameter {code} of {kind} (the CARIN IG's and _id, _lastUpdated)"
        ))
    })?;
    let prefix = (!comparator.is_empty()).then(|| DatePrefix::split(comparator).0);
    if prefix.is_some() && parameter.kind != ParamType::Date {
        return Err(StepFailure::usage(format!(
            "{code} is no date parameter; a comparator makes no sense"
        )));
    }
    Ok((parameter, prefix))
}

/// The type and parameter of an `_include` value (`Type:parameter`, or `Type:*`): a usage
/// error when it is not of that form or the parameter is no reference onramp knows.
pub fn includable(include: &str) -> Result<(&str, &str), StepFailure> {
    let (kind, code) = include
        .split_once(':')
        .ok_or_else(|| StepFailure::usage(format!("_include={include} is not Type:parameter")))?;
    if code != "*" && Parameter::of(kind, code).is_none_or(|p| p.kind != ParamType::Reference) {
        return Err(StepFailure::usage(format!(
            "{code} is no reference parameter of {kind} that onramp knows"
        )));
    }
    Ok((kind, code))
}

/// The matches (of `kind`, not included) that do not satisfy `parameter` = `value`.
pub fn unsatisfied(
    kind: &str,
    entries: &[(Option<String>, Value)],
    parameter: &Parameter,
    value: &str,
) -> Vec<String> {
    matches(kind, entries)
        .filter(|r| parameter.matches(r, value) != Some(true))
        .map(key)
        .collect()
}

/// The resources of other types than `kind` a search returned without `search.mode` =
/// `include` (FHIR R4 Search §3.1.1.5.1), each with the mode it has.
pub fn unmarked(kind: &str, entries: &[(Option<String>, Value)]) -> Vec<String> {
    let unmarked: BTreeSet<String> = entries
        .iter()
        .filter(|(mode, resource)| {
            resource.get("resourceType").and_then(Value::as_str) != Some(kind)
                && mode.as_deref() != Some("include")
        })
        .map(|(mode, resource)| {
            format!(
                "{} has search.mode {}",
                key(resource),
                mode.as_deref().unwrap_or("(none)")
            )
        })
        .collect();
    unmarked.into_iter().collect()
}

/// What an `_include` search of `kind` returned, against what its matches reference
/// through `code` (`*` for every reference; FHIR R4 Search §3.1.1.5.1).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inclusion {
    /// Referenced by a match, of a type the server serves, and not included.
    pub missing: Vec<String>,
    /// Included, though no match references it.
    pub extra: Vec<String>,
    /// The types the matches reference that the server does not serve (not expected).
    pub unserved: BTreeSet<String>,
    /// The matches reference nothing through `code`, and nothing was included.
    pub nothing: bool,
}

/// Judge the entries of an `_include` search: `served` says which types the server serves.
pub fn inclusion(
    kind: &str,
    code: &str,
    entries: &[(Option<String>, Value)],
    served: impl Fn(&str) -> bool,
) -> Inclusion {
    let parameters = if code == "*" {
        Parameter::references_of(kind)
    } else {
        Parameter::of(kind, code).into_iter().collect()
    };
    let matched: BTreeSet<String> = matches(kind, entries).map(key).collect();
    let referenced: BTreeSet<String> = matches(kind, entries)
        .flat_map(|r| parameters.iter().flat_map(move |p| p.referenced(r)))
        .filter(|target| !matched.contains(target))
        .collect();
    let kind_of = |target: &String| target.split('/').next().unwrap_or_default().to_owned();
    let (expected, unserved): (BTreeSet<String>, BTreeSet<String>) =
        referenced.into_iter().partition(|t| served(&kind_of(t)));
    let included: BTreeSet<String> = entries
        .iter()
        .filter(|(mode, r)| {
            mode.as_deref() == Some("include")
                || r.get("resourceType").and_then(Value::as_str) != Some(kind)
        })
        .map(|(_, r)| key(r))
        .collect();
    Inclusion {
        missing: expected.difference(&included).cloned().collect(),
        extra: included
            .difference(&expected)
            .filter(|extra| !matched.contains(*extra))
            .cloned()
            .collect(),
        unserved: unserved.iter().map(kind_of).collect(),
        nothing: expected.is_empty() && included.is_empty(),
    }
}

impl Inclusion {
    /// What is wrong with it, one line each: the missing, then the extra (`code` as asked).
    pub fn problems(&self, code: &str) -> Vec<String> {
        let missing = self
            .missing
            .iter()
            .map(|missing| format!("{missing} is referenced by a match but was not included"));
        let extra = self.extra.iter().map(|extra| {
            format!("{extra} was included, but no match references it through {code}")
        });
        missing.chain(extra).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// US Core's SearchParameter expressions become element paths; what is not a plain path
    /// (an extension picked by URL) gives no parameter rather than a wrong one.
    #[test]
    fn search_parameter_expressions_become_paths() {
        let paths = |base: &str, expression: &str| plain_paths(base, expression);
        assert_eq!(
            paths(
                "Observation",
                "Observation.subject.where(resolve() is Patient)"
            ),
            Some(vec!["subject".to_owned()])
        );
        assert_eq!(
            paths(
                "Condition",
                "Condition.onset.as(dateTime)|Condition.onset.as(Period)"
            ),
            Some(vec!["onset".to_owned()])
        );
        assert_eq!(
            paths("Goal", "(Goal.target.due as date)"),
            Some(vec!["target.due".to_owned()])
        );
        assert_eq!(
            paths(
                "ExplanationOfBenefit",
                "ExplanationOfBenefit.billablePeriod | ExplanationOfBenefit.item.serviced"
            ),
            Some(vec![
                "billablePeriod".to_owned(),
                "item.serviced".to_owned()
            ])
        );
        assert_eq!(
            paths(
                "Patient",
                "Patient.extension.where(url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.value.code"
            ),
            None
        );
        assert_eq!(paths("Condition", "Observation.code"), None);
        // US Core's parameters are known by the types they are for.
        let category = Parameter::of("Observation", "category").expect("US Core's category");
        assert_eq!(category.kind, ParamType::Token);
        let date = Parameter::of("Immunization", "date").expect("US Core's date");
        assert_eq!(date.paths, vec!["occurrence".to_owned()]);
        assert!(Parameter::of("Patient", "race").is_none());
    }

    /// An _include is judged on what the matches reference: the missing, the extra, and the
    /// types the server does not serve, which are not expected.
    #[test]
    fn an_include_returns_what_the_matches_reference() {
        let eob = serde_json::json!({
            "resourceType": "ExplanationOfBenefit", "id": "e",
            "patient": {"reference": "Patient/p"},
            "insurer": {"reference": "Organization/o"},
        });
        let entry = |mode: &str, resource: Value| (Some(mode.to_owned()), resource);
        let patient = serde_json::json!({"resourceType": "Patient", "id": "p"});
        let stranger = serde_json::json!({"resourceType": "Practitioner", "id": "x"});
        let right = [entry("match", eob.clone()), entry("include", patient)];
        assert_eq!(
            inclusion("ExplanationOfBenefit", "patient", &right, |_| true),
            Inclusion::default()
        );
        let wrong = [entry("match", eob.clone()), entry("include", stranger)];
        let judged = inclusion("ExplanationOfBenefit", "patient", &wrong, |_| true);
        assert_eq!(judged.missing, ["Patient/p"]);
        assert_eq!(judged.extra, ["Practitioner/x"]);
        let unserved = inclusion(
            "ExplanationOfBenefit",
            "patient",
            &[entry("match", eob)],
            |t| t != "Patient",
        );
        assert!(unserved.missing.is_empty());
        assert_eq!(
            unserved.unserved.into_iter().collect::<Vec<_>>(),
            ["Patient"]
        );
        assert!(unserved.nothing);
    }
    use serde_json::json;

    fn eob() -> Value {
        json!({
            "resourceType": "ExplanationOfBenefit", "id": "e1",
            "meta": {"lastUpdated": "2024-03-05T18:30:00Z"},
            "identifier": [{"system": "https://plan/claim", "value": "CLM-1"}],
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
            "patient": {"reference": "Patient/p1"},
            "billablePeriod": {"start": "2024-03-05", "end": "2024-03-07"},
            "item": [{"servicedDate": "2024-03-06"}],
            "payee": {"party": {"reference": "https://x/r4/Organization/o1"}}
        })
    }

    fn matches(code: &str, value: &str) -> bool {
        Parameter::of("ExplanationOfBenefit", code)
            .unwrap_or_else(|| panic!("{code} is known"))
            .matches(&eob(), value)
            .unwrap_or_else(|| panic!("{value} is a value"))
    }

    #[test]
    fn values_taken_from_a_resource_find_it() {
        let value = |code: &str, prefix: Option<DatePrefix>| {
            Parameter::of("ExplanationOfBenefit", code).and_then(|p| p.value_from(&eob(), prefix))
        };
        assert_eq!(value("_id", None).as_deref(), Some("e1"));
        assert_eq!(
            value("type", None).as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/claim-type|pharmacy")
        );
        assert_eq!(
            value("identifier", None).as_deref(),
            Some("https://plan/claim|CLM-1")
        );
        assert_eq!(value("patient", None).as_deref(), Some("Patient/p1"));
        assert_eq!(
            value("_lastUpdated", Some(DatePrefix::Gt)).as_deref(),
            Some("gt2024-03-04")
        );
        assert_eq!(
            value("_lastUpdated", Some(DatePrefix::Lt)).as_deref(),
            Some("lt2024-03-06")
        );
        assert_eq!(
            value("billable-period-start", None).as_deref(),
            Some("ge2024-03-05")
        );
        assert_eq!(value("service-date", None).as_deref(), Some("ge2024-03-05"));
        assert_eq!(value("care-team", None), None);
    }

    #[test]
    fn tokens_match_codes_identifiers_and_ids_with_or_without_a_system() {
        assert!(matches("_id", "e1"));
        assert!(matches("_id", "x,e1"));
        assert!(!matches("_id", "e2"));
        assert!(matches("type", "pharmacy"));
        assert!(matches(
            "type",
            "http://terminology.hl7.org/CodeSystem/claim-type|pharmacy"
        ));
        assert!(!matches("type", "http://other|pharmacy"));
        assert!(matches("identifier", "https://plan/claim|CLM-1"));
        assert!(matches("identifier", "CLM-1"));
        assert!(!matches("identifier", "CLM-2"));
    }

    #[test]
    fn references_compare_by_what_they_name() {
        assert!(matches("patient", "Patient/p1"));
        assert!(matches("patient", "https://server/r4/Patient/p1"));
        assert!(!matches("patient", "Patient/p2"));
        assert!(matches("payee", "Organization/o1"));
        // FHIR R4 §3.1.1.4.8: `[parameter]=[id]`, as most clients send it.
        assert!(matches("patient", "p1"));
        assert!(!matches("patient", "p2"));
        assert!(!matches("patient", ""));
        assert!(
            !matches("patient", "Organization/p1"),
            "the type, when named, counts"
        );
        for (value, reference, same) in [
            ("p1", "Patient/p1", true),
            ("p1", "https://server/r4/Patient/p1", true),
            ("p1", "Patient/p1/_history/2", true),
            ("Patient/p1", "p1", false),
            ("https://other/fhir/Patient/p1", "Patient/p1", true),
            ("p1", "Patient/p11", false),
            ("p1", "#p1", false),
        ] {
            assert_eq!(
                reference_matches(value, reference),
                same,
                "{value} ~ {reference}"
            );
        }
    }

    #[test]
    fn dates_are_ranges_compared_as_r4_says() {
        // billablePeriod covers 5 to 7 March; the item was served on the 6th.
        assert!(matches("service-date", "2024-03-06"));
        assert!(matches("service-date", "2024-03"));
        assert!(!matches("service-date", "eq2024-03-08"));
        assert!(matches("service-date", "ge2024-03-01"));
        assert!(
            matches("service-date", "gt2024-03-06"),
            "the period goes on after the 6th"
        );
        assert!(!matches("service-date", "gt2024-03-07"));
        assert!(
            matches("service-date", "lt2024-03-06"),
            "the period starts before the 6th"
        );
        assert!(!matches("service-date", "lt2024-03-05"));
        assert!(matches("billable-period-start", "2024-03-05"));
        assert!(!matches("billable-period-start", "2024-03-06"));
        assert!(
            matches("service-start-date", "2024-03-06"),
            "the item's date counts"
        );
        assert!(matches("_lastUpdated", "gt2024-03-05T12:00:00Z"));
        assert!(!matches("_lastUpdated", "lt2024-03-05T12:00:00Z"));
        assert!(
            matches("_lastUpdated", "lt2024-03-05T13:00:00-06:00"),
            "19:00 UTC"
        );
        assert!(matches("_lastUpdated", "sa2024-03-04"));
        assert!(!matches("_lastUpdated", "eb2024-03-05"));
        assert_eq!(
            Parameter::of("ExplanationOfBenefit", "service-date")
                .expect("known")
                .matches(&eob(), "not-a-date"),
            None
        );
    }

    #[test]
    fn date_ranges_have_the_width_of_their_precision() {
        let day = DateRange::parse("2024-02-29").expect("a leap day");
        assert_eq!(day.end - day.start, 86_400);
        assert!(DateRange::parse("2023-02-29").is_none(), "not a date");
        let year = DateRange::parse("2024").expect("a year");
        assert_eq!(year.end - year.start, 366 * 86_400);
        let second = DateRange::parse("2024-03-05T18:30:00.123Z").expect("an instant");
        assert_eq!(second.end - second.start, 1);
    }

    /// A step's search parameter is one onramp knows, a comparator only for a date, an
    /// _include a reference: anything else is the user's mistake, not the payer's.
    #[test]
    fn a_miswritten_search_is_a_usage_error() {
        use crate::infra::fault::FailureKind::Usage;
        let (parameter, prefix) = searchable("ExplanationOfBenefit", "service-date", "ge").unwrap();
        assert_eq!(parameter.code, "service-date");
        assert_eq!(prefix, Some(DatePrefix::Ge));
        assert_eq!(
            searchable("Coverage", "nonsense", "").unwrap_err().kind,
            Usage
        );
        assert_eq!(
            searchable("ExplanationOfBenefit", "patient", "ge")
                .unwrap_err()
                .kind,
            Usage
        );
        assert_eq!(
            includable("ExplanationOfBenefit:patient").unwrap(),
            ("ExplanationOfBenefit", "patient")
        );
        assert_eq!(includable("ExplanationOfBenefit:*").unwrap().1, "*");
        assert_eq!(includable("ExplanationOfBenefit").unwrap_err().kind, Usage);
        assert_eq!(
            includable("ExplanationOfBenefit:service-date")
                .unwrap_err()
                .kind,
            Usage
        );
    }

    /// A match that does not satisfy the search is named; an included resource is not a match;
    /// a resource of another type without search.mode = include is named with its mode.
    #[test]
    fn matches_and_inclusions_are_judged_by_mode() {
        let pages = [serde_json::json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Coverage", "id": "a"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Coverage", "id": "b"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Coverage", "id": "c"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "Patient", "id": "p"}},
            {"resource": {"resourceType": "Organization", "id": "o"}, "search": {"mode": "include"}},
        ]})];
        let entries = entries(&pages);
        assert_eq!(entries.len(), 5);
        let id = Parameter::of("Coverage", "_id").unwrap();
        assert_eq!(unsatisfied("Coverage", &entries, &id, "a"), ["Coverage/b"]);
        assert_eq!(
            unmarked("Coverage", &entries),
            ["Patient/p has search.mode (none)"]
        );
    }
}
